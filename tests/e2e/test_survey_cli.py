"""`profilebot survey send|status|remind` end to end: the JSON contract, who may send, the repeat
guard, a student without an account answering in the terminal, and one clear line for every
mistake, with nothing sent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cli_driver import Profilebot

from storage import Database, OutboxStore, PeopleStore, metadata

ROSTER = """name,role,handle,group,telegram_id
Tina Park,teacher,tina,7B;7C,
Theo Ruiz,teacher,theo,8A,
Ana Diaz,student,ana,7B,1001
Bo Chen,student,bo,7B,
Cy Lam,student,cy,7B,1003
Dee Kay,student,dee,8A,1004
"""
FINISH_CHECKIN = ["3", "3", "/skip", "/skip", "no"]  # mood, energy, highlight, note, meeting


@pytest.fixture
def school(profilebot: Profilebot) -> Iterator[Profilebot]:
    """Two classes on the roster (Cy has opted out), quiet hours off so the clock never
    decides what the tests see."""
    profilebot.env["QUIET_HOURS"] = "off"
    (profilebot.workdir / "roster.csv").write_text(ROSTER)
    profilebot("people", "import", "roster.csv")
    db = _db(profilebot)
    person = metadata.tables["person"]
    with db.begin() as conn:
        conn.execute(person.update().where(person.c.handle == "cy").values(opted_out=True))
    db.dispose()
    yield profilebot


def _db(profilebot: Profilebot) -> Database:
    return Database(profilebot.env["DATABASE_URL"])


def _messages(profilebot: Profilebot, handle: str) -> list[str]:
    db = _db(profilebot)
    try:
        person = PeopleStore(db).get(handle)
        return [m.reply.text for m in OutboxStore(db).for_person(person.id)]
    finally:
        db.dispose()


def _surveys(profilebot: Profilebot) -> int:
    db = _db(profilebot)
    try:
        with db.read() as conn:
            return len(conn.execute(metadata.tables["survey"].select()).all())
    finally:
        db.dispose()


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_send_status_answer_and_remind(school: Profilebot) -> None:
    sent = school.json(
        "survey", "send", "--flow", "weekly_checkin", "--group", "7B", "--as", "tina"
    )
    assert sent == {"id": 1, "started": 2, "no_account": 1, "skipped": 1}
    assert "Time for your weekly check-in" in _messages(school, "ana")[0]
    assert _messages(school, "bo") == []  # waits for an account (or the terminal)
    assert _messages(school, "cy") == []  # opted out: skipped

    status = school.json("survey", "status", "1")
    assert status["id"] == 1 and status["flow"] == "weekly_checkin" and status["group"] == "7B"
    assert status["sent_at"].startswith("20")
    assert status["counts"] == {
        "started": 2,
        "completed": 0,
        "expired": 0,
        "in_progress": 2,
        "no_account": 1,
        "opted_out": 1,
        "unreachable": 0,
    }

    out = school.chat("bo", FINISH_CHECKIN)  # the waiting conversation begins in the terminal
    assert "Time for your weekly check-in" in out and "Your check-in is saved" in out
    counts = school.json("survey", "status", "1")["counts"]
    assert (counts["completed"], counts["in_progress"], counts["no_account"]) == (1, 1, 0)

    assert school("survey", "remind", "1").strip() == "reminded 1 of survey 1's non-responders"
    reminder = _messages(school, "ana")[-1]
    assert reminder.startswith("Just a reminder:") and "feeling this week" in reminder
    text = school("survey", "status", "1", "--as", "tina")
    assert text.splitlines()[1] == "1 completed, 1 in progress, 0 expired (of 2 started)"
    assert text.splitlines()[2] == "0 waiting for a chat account, 1 opted out, 0 unreachable"


def test_output_is_one_summary_line_or_one_json_document(school: Profilebot) -> None:
    result = school.run("survey", "send", "--flow", "weekly_checkin", "--group", "8A", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"id": 1, "started": 1, "no_account": 0, "skipped": 0}
    assert result.stderr == ""
    out = school("survey", "send", "--flow", "goal_setting", "--group", "7B")
    assert out == (
        "sent goal_setting to 7B (survey 2): 2 started, 1 of them waits for a chat account, "
        "1 skipped (opted out)\n"
    )


def test_the_same_flow_to_the_same_group_within_a_week_needs_again(school: Profilebot) -> None:
    school("survey", "send", "--flow", "weekly_checkin", "--group", "7B")
    before = _messages(school, "ana")
    result = school.run("survey", "send", "--flow", "weekly_checkin", "--group", "7B")
    assert result.returncode == 1
    assert _one_line(result.stderr) == (
        f"profilebot: weekly_checkin was sent to 7B on {_sent_day(school)} (survey 1); "
        "to send it again within 7 days, add --again"
    )
    assert _messages(school, "ana") == before and _surveys(school) == 1
    again = school.json("survey", "send", "--flow", "weekly_checkin", "--group", "7B", "--again")
    assert again["id"] == 2
    # Ana's first check-in is under way: the second waits for it to end, nothing new now
    assert _messages(school, "ana") == before


def _sent_day(profilebot: Profilebot) -> str:
    return str(profilebot.json("survey", "status", "1")["sent_at"])[:10]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--group", "8A", "--as", "tina"),
            "Sorry, only a teacher of 8A or an admin can send 8A a survey.",
        ),
        (
            ("--group", "7B", "--as", "ana"),
            "Sorry, only a teacher of 7B or an admin can send 7B a survey.",
        ),
        (("--group", "7B", "--as", "ghost"), "no person with handle 'ghost'"),
        (("--group", "9Z"), "no group named '9Z'"),
    ],
)
def test_a_refused_or_mistaken_send_sends_nothing(
    school: Profilebot, args: tuple[str, ...], expected: str
) -> None:
    result = school.run("survey", "send", "--flow", "weekly_checkin", *args)
    assert result.returncode == 1
    assert _one_line(result.stderr) == f"profilebot: {expected}"
    assert _surveys(school) == 0
    assert all(_messages(school, h) == [] for h in ("ana", "bo", "dee"))


def test_mistakes_in_status_and_remind_are_one_line(school: Profilebot) -> None:
    result = school.run("survey", "send", "--flow", "nope", "--group", "7B")
    assert result.returncode == 1
    assert "unknown flow 'nope' (known flows: goal_setting" in _one_line(result.stderr)
    for command in ("status", "remind", "results"):
        for survey_id in ("7", "0", "99999999999999999999"):  # the last: no SQL integer
            result = school.run("survey", command, survey_id)
            assert result.returncode == 1
            assert _one_line(result.stderr) == f"profilebot: no survey {survey_id}"
    for command in ("pause", "resume", "remove"):
        result = school.run("schedule", command, "99999999999999999999")
        assert result.returncode == 1 and "no schedule 99999999999999999999" in result.stderr
    result = school.run("inbound", "retry", "99999999999999999999")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    school("survey", "send", "--flow", "weekly_checkin", "--group", "8A")
    result = school.run("survey", "remind", "1", "--as", "tina")
    assert result.returncode == 1
    assert "Sorry, only a teacher of 8A" in _one_line(result.stderr)
    assert not any(m.startswith("Just a reminder") for m in _messages(school, "dee"))
    result = school.run("survey", "status", "1", "--as", "ana")
    assert result.returncode == 1 and "Sorry" in _one_line(result.stderr)


def test_linking_an_account_sends_the_conversation_that_waited(school: Profilebot) -> None:
    school("survey", "send", "--flow", "weekly_checkin", "--group", "7B")
    assert _messages(school, "bo") == []
    out = school("people", "link", "bo", "--platform", "telegram", "--account", "1002")
    assert out.strip() == (
        "linked telegram account 1002 to Bo Chen (bo); the conversation waiting for them is "
        "on its way"
    )
    texts = _messages(school, "bo")
    assert "Time for your weekly check-in" in texts[0]
    assert texts[-1] == "How have you been feeling this week?"
    assert school.json("survey", "status", "1")["counts"]["no_account"] == 0
    out = school("people", "link", "bo", "--platform", "slack", "--account", "U0BO")
    assert out.strip() == "linked slack account U0BO to Bo Chen (bo)"  # nothing waits now
    assert _messages(school, "bo") == texts
