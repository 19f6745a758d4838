"""`/card` and `/summary` in chat (bot/view_chat.py), whatever the platform: a student gets
their own card as a PDF document; naming someone else is for staff, and a student naming a
classmate learns nothing, not even whether the handle exists; every other refusal is the one
roles check's polite line, with nothing attached."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.notices import FileKind
from bot.view_chat import FOR_ADVISORS, ViewChat
from storage import Database, RosterEntry
from tests.flows_app import app_with_flows
from tests.summary_term import backdate_roster

NOON = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def app(sqlite_database: Database, tmp_path: Path) -> App:
    app = app_with_flows(sqlite_database, tmp_path / "flows", FrozenClock(NOON), {})
    app.roster.import_people(
        [
            RosterEntry(2, "Mia Advisor", "advisor", handle="mia"),
            RosterEntry(3, "Max Advisor", "advisor", handle="max"),
            RosterEntry(4, "Tina Teacher", "teacher", handle="tina", groups=("7B",)),
            RosterEntry(5, "Adam Admin", "admin", handle="adam"),
            RosterEntry(6, "Ana Diaz", "student", handle="ana", groups=("7B",), advisor="mia"),
            RosterEntry(7, "Bo Chen", "student", handle="bo", groups=("7B",), advisor="max"),
        ]
    )
    backdate_roster(app.db)
    return app


def _ask(app: App, who: str, command: str, argument: str = "") -> tuple[list[str], list[str]]:
    """What ``who`` is answered: the replies' texts, and the files' kinds and names."""
    views = ViewChat(app, "/")
    person = app.people.get(who)
    answer = views.card(person, argument) if command == "card" else views.summary(person, argument)
    files = [f"{f.kind}:{f.filename}" for n in answer.notices for f in n.files]
    return [r.text for r in answer.replies], files


def test_a_student_gets_their_own_card_as_a_pdf(app: App) -> None:
    views = ViewChat(app, "/")
    [notice] = views.card(app.people.get("ana"), "").notices
    [pdf] = notice.files
    assert (pdf.kind, pdf.filename, pdf.mime_type) == (
        FileKind.DOCUMENT,
        "card-ana.pdf",
        "application/pdf",
    )
    assert pdf.data.startswith(b"%PDF")
    assert _ask(app, "ana", "card", "ana")[1] == ["document:card-ana.pdf"]


def test_a_student_naming_anyone_else_learns_nothing(app: App) -> None:
    classmate = _ask(app, "ana", "card", "bo")
    nobody = _ask(app, "ana", "card", "nobody")
    assert classmate == nobody == (["Sorry, you can only see your own: send /card."], [])
    assert _ask(app, "ana", "summary", "mia") == (
        ["Sorry, you can only see your own: send /summary."],
        [],
    )


def test_staff_see_what_the_roles_check_allows(app: App) -> None:
    assert _ask(app, "mia", "card", "ana") == ([], ["document:card-ana.pdf"])
    not_theirs = "Sorry, only the student, their advisor or an admin can see a student's card."
    assert _ask(app, "mia", "card", "bo") == ([not_theirs], [])  # another advisor's advisee
    assert _ask(app, "tina", "card", "ana") == ([not_theirs], [])  # a teacher is not an advisor
    assert _ask(app, "adam", "card", "bo") == ([], ["document:card-bo.pdf"])
    [unknown], _ = _ask(app, "adam", "card", "nobody")
    assert "nobody" in unknown


def test_cards_are_for_students(app: App) -> None:
    assert _ask(app, "mia", "card") == (
        ["Sorry, mia is not a student: cards are for students."],
        [],
    )
    assert _ask(app, "adam", "card", "tina")[0] == [
        "Sorry, tina is not a student: cards are for students."
    ]


def test_summary_for_the_advisor_themself_or_an_admin(app: App) -> None:
    assert _ask(app, "mia", "summary") == ([], ["photo:" + _chart_name(app, "mia")])
    [refused], files = _ask(app, "max", "summary", "mia")
    assert (
        refused
        == "Sorry, only the advisor themself or an admin can see an advisor's weekly summary."
    )
    assert files == []
    assert _ask(app, "adam", "summary", "mia")[1] == ["photo:" + _chart_name(app, "mia")]
    assert _ask(app, "ana", "summary") == (
        [FOR_ADVISORS],
        [],
    )


def _chart_name(app: App, advisor: str) -> str:
    [notice] = ViewChat(app, "/").summary(app.people.get(advisor), "").notices
    [chart] = notice.files
    assert chart.data.startswith(b"\x89PNG")
    return chart.filename


def _audit(app: App, handle: str) -> list[tuple[str, str | None, str, str]]:
    return [
        (r.at.isoformat(), r.viewer, r.via, r.action)
        for r in app.audit.views(app.people.get(handle))
    ]


def test_what_staff_are_shown_in_chat_is_audited_at_the_clocks_time(app: App) -> None:
    """A card or a summary someone else is shown writes a row per student, marked as chat, at
    the app's clock; a student's own card, and anything refused, writes none."""
    _ask(app, "ana", "card")
    _ask(app, "tina", "card", "ana")  # refused
    _ask(app, "ana", "card", "bo")  # refused
    assert _audit(app, "ana") == _audit(app, "bo") == []
    _ask(app, "mia", "card", "ana")
    _ask(app, "mia", "summary")
    at = NOON.isoformat()
    assert _audit(app, "ana") == [
        (at, "mia", "chat", "viewed_card"),
        (at, "mia", "chat", "viewed_summary"),
    ]
    _ask(app, "adam", "summary", "max")
    assert _audit(app, "bo") == [(at, "adam", "chat", "viewed_summary")]
