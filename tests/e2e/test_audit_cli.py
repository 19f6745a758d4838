"""`profilebot audit HANDLE [--json]` end to end: every view of a student's data by someone
else is listed (who, what, when; the command line as a null viewer), the student's own views
are not, a refused view leaves no row, only an admin may look, and no answer is ever in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cli_driver import Profilebot

from storage import Database, metadata

ROSTER = """name,role,handle,group,advisor
Ada Ng,advisor,ada,,
Max Root,admin,max,,
Tina Park,teacher,tina,7B,
Ana Diaz,student,ana,7B,ada
"""
NOTE = "my-note-nobody-else-reads-0815"
CHECKIN = ["2", "3", "/skip", NOTE, "no"]  # mood, energy, highlight, note for advisor, meeting


@pytest.fixture
def school(profilebot: Profilebot) -> Iterator[Profilebot]:
    profilebot.env["QUIET_HOURS"] = "off"
    (profilebot.workdir / "roster.csv").write_text(ROSTER)
    profilebot("people", "import", "roster.csv")
    profilebot("survey", "send", "--flow", "weekly_checkin", "--group", "7B")
    profilebot.chat("ana", CHECKIN)
    yield profilebot


def test_every_view_by_someone_else_is_listed(school: Profilebot) -> None:
    started = datetime.now(UTC)
    school("profile", "show", "ana", "--as", "ana")  # her own: not a disclosure
    school("plan", "show", "ana", "--json", "--as", "ana")
    assert school.json("audit", "ana") == []
    school("profile", "show", "ana", "--json", "--as", "tina")
    school("plan", "show", "ana", "--as", "ada")
    school("summary", "--advisor", "ada", "--as", "ada")
    school("survey", "results", "1", "--format", "csv", "--as", "tina")
    school("profile", "card", "ana", "--format", "html", "--output", "ana.html")
    school("profile", "show", "ana", "--include-private")
    listed = school.json("audit", "ana")
    assert [(row["viewer"], row["action"], row["subject"]) for row in listed] == [
        ("tina", "viewed_profile", "ana"),
        ("ada", "viewed_plan", "ana"),
        ("ada", "viewed_summary", "ana"),
        ("tina", "viewed_survey_results", "ana"),
        (None, "viewed_card", "ana"),
        (None, "viewed_profile", "ana"),
    ]
    assert all(set(row) == {"at", "viewer", "action", "subject"} for row in listed)
    times = [datetime.fromisoformat(row["at"]) for row in listed]
    assert times == sorted(times)
    assert started - timedelta(seconds=1) <= times[0] <= datetime.now(UTC)
    text = school("audit", "ana", "--as", "max").splitlines()
    assert len(text) == len(listed)
    assert text[0].endswith("viewed_profile         tina")
    assert text[-1].endswith("viewed_profile         the command line's administrator")


def test_a_refused_view_or_audit_is_one_line_and_leaves_no_row(school: Profilebot) -> None:
    for args in (
        ["plan", "show", "ana", "--as", "tina"],
        ["profile", "show", "ana", "--include-private", "--as", "ada"],
        ["audit", "ana", "--as", "ada"],
        ["audit", "ana", "--as", "ana"],
    ):
        done = school.run(*args)
        assert done.returncode == 1 and done.stdout == ""
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert done.stderr.startswith("profilebot: Sorry, only ")
        assert "Ana" not in done.stderr
    assert school.json("audit", "ana") == []
    assert school("audit", "ana").strip() == "nobody else has been shown Ana Diaz's data"


def test_no_answer_is_ever_written_to_the_audit(school: Profilebot) -> None:
    school("summary", "--advisor", "ada", "--json", "--as", "ada")
    school("survey", "results", "1", "--as", "tina")
    assert NOTE in school("summary", "--advisor", "ada", "--json")
    db = Database(school.env["DATABASE_URL"])
    try:
        with db.read() as conn:
            rows = conn.execute(metadata.tables["audit_log"].select()).all()
    finally:
        db.dispose()
    assert len(rows) == 3
    assert all(NOTE not in " ".join(str(value) for value in row) for row in rows)
