"""The one-page card for student-led conferences (bot/conference_card.py, `profile card`):
the PDF opens, its text holds the student's name and goals, it is one page however much the
student wrote, private fields are there only for the student, student text is shown literally,
and only the student, their advisor and an admin may see it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.conference_card import card_html, card_pdf
from bot.errors import InputError, NotAllowedError
from dialogues import Inbound
from storage import Database, RosterEntry
from tests.flows_app import app_with_flows

NOON = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
FAMILY = "My gran lives with us; we speak Tamil at home"
GOAL_ANSWERS = [
    "Read 20 <b>novels</b> & more",
    "1",
    "I love stories",
    "Pick a book list",
    "Read every evening",
    "done",
    "2027-03-01",
    "A weekly chat with the librarian",
    "no",
]


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text by poppler's pdftotext (CI installs poppler-utils; here it must exist)."""
    assert shutil.which("pdftotext"), "pdftotext is missing: apt-get install poppler-utils"
    path = tmp_path / "card.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])


@pytest.fixture
def app(database: Database, tmp_path: Path) -> App:
    return _school(database, tmp_path)


@pytest.fixture
def sqlite_app(sqlite_database: Database, tmp_path: Path) -> App:
    """The same school on SQLite alone, for what does not depend on the database (the page)."""
    return _school(sqlite_database, tmp_path)


def _school(database: Database, tmp_path: Path) -> App:
    app = app_with_flows(database, tmp_path / "flows", FrozenClock(NOON), {})
    app.roster.import_people(
        [
            RosterEntry(2, "Mia Advisor", "advisor", handle="mia"),
            RosterEntry(3, "Max Advisor", "advisor", handle="max"),
            RosterEntry(4, "Tina Teacher", "teacher", handle="tina", groups=("7B",)),
            RosterEntry(5, "Adam Admin", "admin", handle="adam"),
            RosterEntry(6, "Ana López", "student", handle="ana", groups=("7B",), advisor="mia"),
            RosterEntry(7, "Bo Chen", "student", handle="bo", groups=("7B",), advisor="max"),
        ]
    )
    ana = app.people.get("ana")
    app.profiles.set(ana.id, "preferred_name", "Ana")
    app.profiles.set(ana.id, "strengths", ["creative", "not_giving_up"])
    app.profiles.set(ana.id, "interests", ["reading_writing", "music"])
    app.profiles.set(ana.id, "dreams", f"Write a book {SCRIPT} *bold* <!channel> & co")
    app.profiles.set(ana.id, "identity.family_culture", FAMILY, private=True)
    app.service.open(ana.id, app.registry.get("goal_setting"), platform="telegram", address="6")
    for text in GOAL_ANSWERS:
        app.service.handle(ana.id, Inbound.of_text(text), platform="telegram", address="6")
    assert app.plans.plan(ana.id)["goals"], "the goal_setting answers made no goal"
    return app


def test_the_pdf_holds_the_name_and_goals_on_one_page(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    ana = app.people.get("ana")
    pdf = card_pdf(app, ana, actor=app.actor("ana"))
    assert pdf.startswith(b"%PDF-")
    text = _pdftotext(pdf, tmp_path)
    assert "Ana" in text and "Ana López" in text
    assert "Read 20 <b>novels</b> & more" in text
    assert "I love stories" in text and "Read every evening" in text
    assert "Being creative" in text  # option labels, not their values
    assert _pages(pdf, tmp_path) == 1


def test_a_student_who_wrote_a_lot_still_gets_one_page(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    ana = app.people.get("ana")
    for field in ("motivation", "challenges", "supports", "dislikes"):
        app.profiles.set(ana.id, field, [f"{field} {n} " * 6 for n in range(8)])
    app.profiles.set(ana.id, "dreams", "a dream that goes on and on " * 40)
    for _ in range(5):
        app.service.open(
            ana.id, app.registry.get("goal_setting"), platform="telegram", address="6", fresh=True
        )
        for text in GOAL_ANSWERS:
            app.service.handle(ana.id, Inbound.of_text(text), platform="telegram", address="6")
    pdf = card_pdf(app, ana, actor=None, paper="Letter")
    assert _pages(pdf, tmp_path) == 1
    text = _pdftotext(pdf, tmp_path)
    assert "Read 20" in text
    assert "and 3 more goals in my plan" in text  # 6 goals: 3 shown, not cut off unsaid
    assert "and 4 more" in text  # 8 items under a heading: 4 shown


def test_the_type_is_as_large_as_fits(sqlite_app: App, tmp_path: Path) -> None:
    app = sqlite_app
    ana = app.people.get("ana")
    roomy = _word_height(card_pdf(app, ana, actor=None), "writing", tmp_path)
    for field in ("motivation", "dislikes", "challenges", "supports"):
        app.profiles.set(ana.id, field, [f"{field} number {n} in a few words" for n in range(5)])
    for _ in range(3):
        app.service.open(
            ana.id, app.registry.get("goal_setting"), platform="telegram", address="6", fresh=True
        )
        for text in GOAL_ANSWERS:
            app.service.handle(ana.id, Inbound.of_text(text), platform="telegram", address="6")
    full = card_pdf(app, ana, actor=None)
    assert _pages(full, tmp_path) == 1
    assert _word_height(full, "writing", tmp_path) < roomy  # smaller type, not a second page


def _word_height(pdf: bytes, word: str, tmp_path: Path) -> float:
    """The height of ``word``'s first occurrence on the page (poppler's ``pdftotext -bbox``)."""
    path = tmp_path / "bbox.pdf"
    path.write_bytes(pdf)
    page = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(rf'yMin="([0-9.]+)" xMax="[0-9.]+" yMax="([0-9.]+)">{word}</word>', page)
    assert found, f"{word!r} is not on the page"
    return float(found[2]) - float(found[1])


@pytest.mark.parametrize(("who", "shown"), [("ana", True), ("mia", False), ("adam", False)])
def test_private_fields_only_on_the_students_own_card(
    app: App, who: str, shown: bool, tmp_path: Path, database: Database
) -> None:
    ana = app.people.get("ana")
    html = card_html(app, ana, actor=app.actor(who))
    assert (FAMILY in html) is shown
    assert ("Family, culture" in html) is shown
    if database.dialect == "sqlite" and who != "mia":
        assert (FAMILY in _pdftotext(card_pdf(app, ana, actor=app.actor(who)), tmp_path)) is (shown)


def test_student_text_is_shown_literally(app: App) -> None:
    html = card_html(app, app.people.get("ana"), actor=None)
    assert SCRIPT not in html and "<b>novels" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Read 20 &lt;b&gt;novels&lt;/b&gt; &amp; more" in html
    assert "*bold* &lt;!channel&gt; &amp; co" in html


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("ana", True),
        ("mia", True),
        ("adam", True),
        (None, True),
        ("max", False),
        ("tina", False),
        ("bo", False),
    ],
)
def test_who_may_see_a_card(app: App, who: str | None, allowed: bool) -> None:
    ana = app.people.get("ana")
    if allowed:
        assert "Ana López" in card_html(app, ana, actor=app.actor(who))
        return
    with pytest.raises(NotAllowedError) as refused:
        card_html(app, ana, actor=app.actor(who))
    assert "Ana" not in str(refused.value)  # someone refused learns nothing of the student


def test_only_students_have_a_card(app: App) -> None:
    with pytest.raises(InputError, match=r"^tina is not a student: cards are for students$"):
        card_html(app, app.people.get("tina"), actor=None)


def test_the_command_writes_the_file_and_refuses_in_one_line(
    sqlite_app: App, tmp_path: Path
) -> None:
    app = sqlite_app
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    env["DATABASE_URL"] = app.db.url.render_as_string(hide_password=False)
    env["PROFILEBOT_FLOWS_DIR"] = str(tmp_path / "flows")

    def card(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "profile", "card", "ana", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    out = tmp_path / "ana.pdf"
    done = card("--as", "ana", "--format", "pdf", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing of the page's text logged
    assert FAMILY in _pdftotext(out.read_bytes(), tmp_path)
    page = tmp_path / "ana.html"
    assert card("--format", "html", "--output", str(page)).returncode == 0
    assert "Read 20 &lt;b&gt;novels" in page.read_text(encoding="utf-8")
    refused = card("--as", "bo", "--format", "pdf", "--output", str(tmp_path / "no.pdf"))
    assert refused.returncode == 1 and not (tmp_path / "no.pdf").exists()
    assert refused.stderr.strip() == (
        "profilebot: Sorry, only the student, their advisor or an admin can see a student's card."
    )
    bad = card("--format", "docx", "--output", str(tmp_path / "x"))
    assert (bad.returncode, bad.stderr.strip()) == (
        1,
        "profilebot: --format 'docx': use html or pdf",
    )
