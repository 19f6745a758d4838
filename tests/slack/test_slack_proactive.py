"""The bot's own initiative on Slack, end to end: a scheduled check-in arrives in the DM, the
student answers, a reminder comes for what is left (time moved with `schedule run-due --now`),
and a teacher's survey's counts move as the class answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import SurveyStore
from tests.e2e.cli_driver import Profilebot
from tests.slack.harness import Running, Student, slack_bot
from tests.telegram.test_telegram_proactive import SURVEY, command_line, next_wednesday_ten


async def _linked(bot: Running, admin: Profilebot, name: str, user: str, **add: str) -> Student:
    """A student on the roster whose Slack account an administrator linked (its email is not
    the roster's, so writing did not link it); no conversation is under way."""
    bot.fake.add_user(user, email=f"{user.lower()}@home.example", real_name=name)
    person = bot.app.people.add(name, "student", **add)
    student = Student(user, bot.fake.dm_channel(user), person.id, "")
    await bot.say(student, "hello")
    await bot.next_message(student)  # "I don't know who you are yet"
    workspace = bot.bot.team_id
    admin(
        *("people", "link", person.handle, "--platform", "slack"),
        *("--account", user, "--workspace", workspace),
    )
    await bot.settle()
    return student


async def test_a_scheduled_check_in_arrives_is_answered_and_reminded(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        admin = command_line(tmp_path)
        sam = await _linked(bot, admin, "Sam Lee", "U0SAM", handle="sam")
        admin.json(
            *("schedule", "add", "--flow", "weekly_checkin", "--everyone"),
            *("--on", "wed", "--at", "10:00"),
        )
        wednesday = next_wednesday_ten(datetime.now(UTC))
        due = admin.json("schedule", "run-due", "--now", wednesday.isoformat())
        assert [i["person"] for i in due["started"]] == ["sam"]
        bot.bot.worker.wake()
        mood = await bot.next_question(sam)
        assert bot.step_of(sam, mood) == "mood"
        energy = await bot.tap(sam, mood, "4")
        assert bot.step_of(sam, energy) == "energy"

        later = (wednesday + timedelta(days=1, hours=1)).isoformat()
        assert [
            i["person"] for i in admin.json("schedule", "run-due", "--now", later)["reminded"]
        ] == ["sam"]
        bot.bot.worker.wake()
        reminder = await bot.next_question(sam)
        assert bot.step_of(sam, reminder) == "energy"
        assert reminder["text"].startswith("Just a reminder:")
    assert bot.fake.errors == []


async def test_a_survey_reaches_the_class_and_its_counts_move(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club_survey.yaml").write_text(SURVEY)
    async with slack_bot(tmp_path, profilebot_flows_dir=flows) as bot:
        bot.app.people.add("Mr Lee", "teacher", handle="mr-lee", group="7B")
        admin = command_line(tmp_path, PROFILEBOT_FLOWS_DIR=str(flows), QUIET_HOURS="off")
        ana = await _linked(bot, admin, "Ana Diaz", "U0ANA", group="7B")
        sent = admin.json(
            "survey", "send", "--flow", "club_survey", "--group", "7B", "--as", "mr-lee"
        )
        assert sent["started"] == 1

        def counts() -> dict[str, int]:
            return dict(admin.json("survey", "status", str(sent["id"]))["counts"])

        def completed() -> int:  # what the bot waits on: a read, not a process that
            return SurveyStore(bot.app.db).counts(sent["id"]).completed  # blocks the loop

        bot.bot.worker.wake()
        club = await bot.next_question(ana)
        assert counts()["in_progress"] == 1
        why = await bot.tap(ana, club, "robotics")
        assert bot.step_of(ana, why) == "why"
        await bot.say(ana, "I like building things")
        await bot.wait_for(lambda: completed() == 1)
        assert counts()["completed"] == 1
        assert counts()["in_progress"] == 0
    assert bot.fake.errors == []
