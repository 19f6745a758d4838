"""Roles on every command: each command that shows someone's data, run in-process as each kind
of person (`--as`) and as the command line's administrator, is allowed or refused as the table
says; a refusal names no student and writes no audit row; an allowed view of Ana's data by
anyone but Ana writes one. Every registered command is in the table, so a new one cannot be
forgotten: a view with `--as` and its row per role, or a command that shows no student's data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_driver import Profilebot, make_profilebot
from typer.core import TyperGroup
from typer.testing import CliRunner

from bot.cli import app
from bot.errors import NotAllowedError
from storage import AuditStore, Database, PeopleStore, ProfileStore

ROSTER = """name,role,handle,group,advisor
Ada Ng,advisor,ada,,
Olu Ben,advisor,olu,,
Max Root,admin,max,,
Tina Park,teacher,tina,7B,
Theo Ruiz,teacher,theo,8A,
Ana Diaz,student,ana,7B,ada
Bo Chen,student,bo,7B,olu
"""
FINISH_CHECKIN = ["3", "3", "/skip", "/skip", "no"]  # mood, energy, highlight, note, meeting
PRIVATE = "ana-keeps-this-private-4711"

ROLES: dict[str, str | None] = {
    "the student": "ana",
    "a classmate": "bo",
    "her advisor": "ada",
    "another advisor": "olu",
    "her teacher": "tina",
    "another teacher": "theo",
    "an admin": "max",
    "the command line": None,
}
EVERYONE = set(ROLES)
ADMINS = {"an admin", "the command line"}

# command -> (its arguments, who may run it, whether it shows Ana's data: audited)
VIEWS: dict[str, tuple[list[str], set[str], bool]] = {
    "profile show": (
        ["profile", "show", "ana", "--json"],
        ADMINS | {"the student", "her advisor", "her teacher"},
        True,
    ),
    "profile show --include-private": (
        ["profile", "show", "ana", "--include-private", "--json"],
        ADMINS | {"the student"},
        True,
    ),
    "plan show": (["plan", "show", "ana"], ADMINS | {"the student", "her advisor"}, True),
    "profile card": (
        ["profile", "card", "ana", "--format", "html", "--output", "card.html"],
        ADMINS | {"the student", "her advisor"},
        True,
    ),
    "summary": (["summary", "--advisor", "ada", "--json"], ADMINS | {"her advisor"}, True),
    "survey results": (["survey", "results", "1"], ADMINS | {"her teacher"}, True),
    "survey status": (["survey", "status", "1"], ADMINS | {"her teacher"}, False),
    "survey remind": (["survey", "remind", "1"], ADMINS | {"her teacher"}, False),
    "survey send": (
        ["survey", "send", "--flow", "goal_setting", "--group", "7B", "--again"],
        ADMINS | {"her teacher"},
        False,
    ),
    "audit": (["audit", "ana", "--json"], ADMINS, False),
    "export": (["export", "ana", "--output", "ana.json"], ADMINS | {"the student"}, True),
    "safety list": (["safety", "list", "--json"], ADMINS, False),  # and counselors
    "consent grant": (["consent", "grant", "ana", "--by", "Maria Diaz"], ADMINS, False),
    "consent revoke": (["consent", "revoke", "ana", "--by", "Maria Diaz"], ADMINS, False),
    "consent list": (["consent", "list", "--json"], ADMINS, False),
    "consent under-13": (["consent", "under-13", "ana", "--yes"], ADMINS, False),
}
"""Every command with ``--as``: each is run as every role."""

NO_STUDENT_DATA = {
    "chat": "a conversation in the terminal: `--as` is who talks, their own data only",
    "run": "the bot itself",
    "worker": "delivery and the scheduler",
    "flows check": "flow files",
    "flows list": "flow files",
    "people add": "writes the roster; prints the new person and an invite",
    "people import": "writes the roster; prints counts",
    "people link": "links an account; prints the handle",
    "roster import": "writes the roster from OneRoster files; prints counts",
    "schedule add": "schedules: flows and audiences",
    "schedule list": "schedules: flows and audiences",
    "schedule remove": "schedules",
    "schedule pause": "schedules",
    "schedule resume": "schedules",
    "schedule run-due": "what started, by handle, never an answer",
    "calendar add-break": "the school calendar",
    "calendar import": "the school calendar",
    "calendar list": "the school calendar",
    "inbound failed": "parked messages: platform, person, error class, never the text",
    "inbound retry": "replays a parked message",
    "db upgrade": "the schema",
    "db prune": "deletes old transcripts; prints counts per table",
}
"""Commands that show no student's data (the administrator's command line only)."""


def _commands(group: TyperGroup, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, TyperGroup):
            found.update(_commands(command, path + " "))
        else:
            found[path] = command
    return found


_ROOT = typer.main.get_command(app)
assert isinstance(_ROOT, TyperGroup)
COMMANDS = _commands(_ROOT)


ERASE = ["erase", "ana", "--yes"]
"""Shows nothing, deletes everything: for admins only (tested apart: it can run only once)."""


def test_every_command_is_in_the_table() -> None:
    views = {name.split(" --")[0] for name in VIEWS} | {"erase"}
    assert views.isdisjoint(NO_STUDENT_DATA)
    assert set(COMMANDS) == views | set(NO_STUDENT_DATA)


@pytest.mark.parametrize("name", sorted({name.split(" --")[0] for name in VIEWS} | {"erase"}))
def test_every_view_takes_as(name: str) -> None:
    options = {opt for param in COMMANDS[name].params for opt in param.opts}
    assert "--as" in options


@pytest.fixture(scope="module")
def school_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The school once: Ana (advised by Ada, in Tina's 7B) with a private answer and a
    completed survey of 7B; Bo, her classmate, advised by Olu."""
    folder = tmp_path_factory.mktemp("school")
    with pytest.MonkeyPatch.context() as patch:
        profilebot = make_profilebot(folder, patch)
        profilebot.env["QUIET_HOURS"] = "off"
        (folder / "roster.csv").write_text(ROSTER)
        profilebot("people", "import", "roster.csv")
        profilebot("survey", "send", "--flow", "weekly_checkin", "--group", "7B")
        profilebot.chat("ana", FINISH_CHECKIN)
        db = Database(profilebot.env["DATABASE_URL"])
        ana = PeopleStore(db).get("ana")
        ProfileStore(db).set(ana.id, "family.story", PRIVATE, private=True)
        ProfileStore(db).set(ana.id, "preferred_name", "Ana")
        db.dispose()
    yield folder / "profilebot.db"


@pytest.fixture
def school(
    school_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Profilebot]:
    profilebot = make_profilebot(tmp_path, monkeypatch)
    profilebot.env["QUIET_HOURS"] = "off"
    for part in school_file.parent.glob(school_file.name + "*"):  # and its WAL, if any
        shutil.copy(part, tmp_path / part.name)
    yield profilebot


def _anas_audit(profilebot: Profilebot) -> int:
    db = Database(profilebot.env["DATABASE_URL"])
    try:
        return len(AuditStore(db).views(PeopleStore(db).get("ana").id))
    finally:
        db.dispose()


@pytest.mark.parametrize("command", list(VIEWS))
def test_each_role_is_allowed_or_refused_as_the_table_says(
    school: Profilebot, command: str
) -> None:
    args, allowed, audited = VIEWS[command]
    for role, handle in ROLES.items():
        before = _anas_audit(school)
        as_them = [*args, "--as", handle] if handle else args
        result = CliRunner().invoke(app, as_them, env=school.env)
        after = _anas_audit(school)
        if role in allowed:
            assert result.exit_code == 0, (role, result.output, result.exception)
            shows_ana = audited and role != "the student"
            assert (after > before) is shows_ana, role
        else:
            assert isinstance(result.exception, NotAllowedError), (role, result.output)
            refusal = str(result.exception)
            assert refusal.startswith("Sorry, only ") and "\n" not in refusal
            for name in ("Ana", "ana", "Bo", "Diaz"):
                assert name not in refusal, (role, refusal)
            assert result.output == ""
            assert after == before, role
        if "--include-private" in args and role in allowed:
            assert PRIVATE in result.output


def test_private_fields_stay_private_by_default(school: Profilebot) -> None:
    for handle in ("ana", "ada", "tina", "max"):
        assert PRIVATE not in school("profile", "show", "ana", "--json", "--as", handle)
    assert PRIVATE not in school("profile", "show", "ana")


def test_only_an_admin_may_erase(school: Profilebot) -> None:
    for role, handle in ROLES.items():
        if role in ADMINS:
            continue
        result = CliRunner().invoke(app, [*ERASE, "--as", handle], env=school.env)
        assert isinstance(result.exception, NotAllowedError), role
        assert "ana" not in str(result.exception).lower()
    assert _anas_audit(school) == 0  # Ana is still there, untouched
    assert '"person": "ana"' in school(*ERASE, "--as", "max", "--json")
