"""`profilebot consent` end to end: grant and revoke recorded with who, when and a note, the
history kept and the latest deciding; `consent list [--json]`; the under-13 flag by hand; and
`profilebot chat` skipping the family question of `this_is_me` until a parent's consent is on
record, then asking it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cli_driver import Profilebot

from storage import ConsentStore, Database

ROSTER = """name,role,handle,group,advisor
Max Root,admin,max,,
Tina Park,teacher,tina,7B,
Ana Diaz,student,ana,7B,
Bo Chen,student,bo,7B,
"""
# this_is_me up to its last question: name, strengths, interests, dislikes (/skip), learning,
# noise, social, time of day, motivation, challenges (/skip), supports, dreams
THIS_IS_ME = ["Ana", "1", "1", "/skip", "1", "3", "1", "1", "1", "/skip", "1", "Be a vet"]
FAMILY = "Is there anything about your family, culture, languages or community"
SECRET = "We speak Portuguese at home-c0n5"


@pytest.fixture
def school(profilebot: Profilebot) -> Profilebot:
    (profilebot.workdir / "roster.csv").write_text(ROSTER)
    profilebot("people", "import", "roster.csv")
    return profilebot


def test_grant_revoke_and_list(school: Profilebot) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    assert [s["consent"] for s in school.json("consent", "list")] == ["none", "none"]
    out = school("consent", "grant", "ana", "--by", "Maria Diaz", "--note", "paper form #12")
    assert out.startswith("recorded: Maria Diaz granted consent for ana at ")
    listed = school.json("consent", "list")
    assert [s["handle"] for s in listed] == ["ana", "bo"]  # students only, by handle
    ana = listed[0]
    assert set(ana) == {"handle", "consent", "by", "at", "note", "under_13"}
    assert (ana["consent"], ana["by"], ana["note"], ana["under_13"]) == (
        "granted",
        "Maria Diaz",
        "paper form #12",
        None,
    )
    assert started <= datetime.fromisoformat(ana["at"]) <= datetime.now(UTC)
    assert listed[1] == {
        "handle": "bo",
        "consent": "none",
        "by": None,
        "at": None,
        "note": None,
        "under_13": None,
    }
    school("consent", "revoke", "ana", "--by", "Maria Diaz", "--note", "phoned the office")
    ana = school.json("consent", "list")[0]
    assert (ana["consent"], ana["note"]) == ("revoked", "phoned the office")
    db = Database(school.env["DATABASE_URL"])
    try:
        history = ConsentStore(db).history("ana")  # the revoke deleted nothing
    finally:
        db.dispose()
    assert [(e.granted, e.note) for e in history] == [
        (True, "paper form #12"),
        (False, "phoned the office"),
    ]
    text = school("consent", "list").splitlines()
    assert text[0].split()[:5] == ["ana", "revoked", "by", "Maria", "Diaz,"]
    assert text[0].endswith("under 13: unknown")
    assert text[1].split()[:2] == ["bo", "none"]


def test_under_13_by_hand_shows_in_the_list(school: Profilebot) -> None:
    assert school("consent", "under-13", "bo", "--yes") == "bo is now under 13\n"
    assert [s["under_13"] for s in school.json("consent", "list")] == [None, True]
    school("consent", "under-13", "bo", "--no")
    assert school.json("consent", "list")[1]["under_13"] is False
    school("consent", "under-13", "bo", "--unset")
    assert school.json("consent", "list")[1]["under_13"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["consent", "grant", "nobody", "--by", "X"], "no person with handle 'nobody'"),
        (["consent", "revoke", "tina", "--by", "X"], "'tina' is not a student"),
        (["consent", "grant", "ana", "--by", " "], "--by needs the name of the parent"),
        (["consent", "under-13", "ana"], "say one of --yes (under 13), --no"),
        (["consent", "under-13", "ana", "--yes", "--no"], "say one of --yes (under 13), --no"),
        (["consent", "list", "--as", "tina"], "Sorry, only an admin can record or see"),
        (["consent", "grant", "ana", "--by", "X", "--as", "ana"], "Sorry, only an admin"),
    ],
)
def test_mistakes_are_one_line_exit_1_and_change_nothing(
    school: Profilebot, args: list[str], message: str
) -> None:
    result = school.run(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("profilebot: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
    assert [s["consent"] for s in school.json("consent", "list")] == ["none", "none"]


def test_chat_skips_the_family_question_until_consent_then_asks_it(school: Profilebot) -> None:
    without = school.chat("ana", THIS_IS_ME)
    assert FAMILY not in without
    assert "Your profile is saved" in without  # the interview ended after the dreams
    school("consent", "grant", "ana", "--by", "Maria Diaz")
    asked = school.chat("ana", [*THIS_IS_ME, SECRET], "--flow", "this_is_me", "--restart")
    assert FAMILY in asked
    assert asked.index(FAMILY) < asked.index("Your profile is saved")
    assert SECRET in school("profile", "show", "ana", "--include-private")
    school("consent", "revoke", "ana", "--by", "Maria Diaz")
    again = school.chat("ana", THIS_IS_ME, "--flow", "this_is_me", "--restart")
    assert FAMILY not in again and "Your profile is saved" in again
