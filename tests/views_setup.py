"""A small school for the chat views' end-to-end tests (tests/telegram/test_telegram_views.py,
tests/slack/test_slack_views.py): two advisors, an admin, two teachers, three students (Ana
and Bo with a goal each) and a term of check-ins written by ``tests.summary_term``, on a
clock frozen inside one ISO week (``WEEK``) so that the week's summary is always the same.

Ana is the student who needs her advisor this week (she wants to meet, her mood is low and
she left a note); Bo checked in as usual. Ana's check-in of the week is written here
(``this_weeks_checkin``) or answered through the bot by the test itself.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import App
from storage import PersonRecord
from tests.summary_term import Term, backdate_roster, week_day, weeks_before

WEEK = "2026-W50"
WEDNESDAY = datetime(2026, 12, 9, 10, tzinfo=UTC)
"""Where the app's clock stands: inside ``WEEK``."""
FRIDAY_15 = datetime(2026, 12, 11, 15, tzinfo=UTC)
"""The default weekly summary's occurrence in ``WEEK`` (advisors here are on UTC)."""
HOSTILE = "<script>alert(1)</script> *bold* <!channel> & co"
NEXT_STEP = "Ask <b>Ms Lee</b> & *the class*"
ARM = "Finish the robot arm"
NOVELS = "Read two novels"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SETTINGS = {"default_timezone": "UTC", "quiet_hours": "off"}
"""The app's settings for these tests: advisors on UTC, nothing held back at night."""


@dataclass(frozen=True)
class School:
    ada: PersonRecord
    """Advises Ana and Bo."""
    olu: PersonRecord
    """Another advisor (advises Cy)."""
    max: PersonRecord
    """An admin."""
    tina: PersonRecord
    """Teaches 7B (Ana and Bo's group)."""
    theo: PersonRecord
    """Teaches 8A."""
    ana: PersonRecord
    bo: PersonRecord
    cy: PersonRecord
    arm: int
    """Ana's goal's id."""


def school(app: App) -> School:
    """The people, goals and the earlier weeks' check-ins (none yet of ``WEEK`` but Bo's)."""
    people = app.people
    term = Term(app.db)
    ada = people.add("Ada Ng", "advisor", handle="ada")
    olu = people.add("Olu Ben", "advisor", handle="olu")
    admin = people.add("Max Root", "admin", handle="max")
    tina = people.add("Tina Park", "teacher", handle="tina", group="7B")
    theo = people.add("Theo Ruiz", "teacher", handle="theo", group="8A")
    ana = people.add("Ana Diaz", "student", handle="ana", advisor="ada", group="7B")
    bo = people.add("Bo Chen", "student", handle="bo", advisor="ada", group="7B")
    cy = people.add("Cy Dunn", "student", handle="cy", advisor="olu", group="8A")
    for student in (ana, bo, cy):
        app.profiles.set(student.id, "preferred_name", student.first_name)
    arm, novels = term.goal(ana, ARM), term.goal(bo, NOVELS)
    for k, week in enumerate(weeks_before(WEEK, 4)[:-1]):
        term.checkin(ana, week_day(week), mood=4, progress={arm: 3}, next_steps={arm: "Plan"})
        term.checkin(bo, week_day(week), mood=4, progress={novels: 2 + k})
    this_week = WEDNESDAY - timedelta(hours=1)
    term.checkin(bo, this_week, mood=4, progress={novels: 4}, next_steps={novels: "Chapter 3"})
    backdate_roster(app.db)  # on the roster since before the term, whatever the real date
    return School(ada, olu, admin, tina, theo, ana, bo, cy, arm)


def this_weeks_checkin(app: App, school: School) -> None:
    """Ana's check-in of ``WEEK``, as if she had answered it: mood 1, a note, wants to meet."""
    Term(app.db).checkin(
        school.ana,
        WEDNESDAY - timedelta(minutes=30),
        mood=1,
        energy=2,
        note=HOSTILE,
        wants_meeting=True,
        progress={school.arm: 2},
        next_steps={school.arm: NEXT_STEP},
    )


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text, by poppler's pdftotext."""
    assert shutil.which("pdftotext"), "pdftotext is missing: apt-get install poppler-utils"
    path = tmp_path / "received.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout
