"""The bot's own initiative on Telegram, end to end: a scheduled check-in arrives, the student
answers, a reminder comes for what is left (time moved with `schedule run-due --now`), and a
teacher's survey's counts move as the class answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import SurveyStore
from tests.e2e.cli_driver import Profilebot
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import Running, Student, make_app, running_bot, sqlite_url

SURVEY = """\
id: club_survey
version: 1
title: Club survey
audience: student
steps:
  - id: club
    ask: Which club would you join?
    type: choice
    options: [robotics, drama, chess]
  - id: why
    ask: What draws you to it?
    type: text
"""


def next_wednesday_ten(after: datetime) -> datetime:
    """10:00 UTC on the first Wednesday after ``after``."""
    day = after.date() + timedelta(days=1)
    while day.weekday() != 2:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def command_line(tmp_path: Path, **env: str) -> Profilebot:
    """The `profilebot` command on the bot's database, as an administrator runs it."""
    workdir = tmp_path / "admin"
    workdir.mkdir(exist_ok=True)
    return Profilebot(
        workdir, {"DATABASE_URL": sqlite_url(tmp_path), "DEFAULT_TIMEZONE": "UTC", **env}
    )


async def _linked(bot: Running, admin: Profilebot, student: Student, handle: str) -> None:
    """The student wrote to the bot once (a stranger then), and an administrator linked their
    account: they have no conversation under way."""
    bot.fake.push_text(student.user, "hello")
    await bot.next_message(student)
    admin("people", "link", handle, "--platform", "telegram", "--account", str(student.user.id))
    await bot.settle()


async def test_a_scheduled_check_in_arrives_is_answered_and_reminded(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001, handle="sam")
            admin = command_line(tmp_path)
            await _linked(bot, admin, sam, "sam")
            added = admin.json(
                *("schedule", "add", "--flow", "weekly_checkin", "--person", "sam"),
                *("--on", "wed", "--at", "10:00"),
            )

            wednesday = next_wednesday_ten(datetime.now(UTC))
            due = admin.json("schedule", "run-due", "--now", wednesday.isoformat())
            assert [(i["person"], i["flow"], i["schedule"]) for i in due["started"]] == [
                ("sam", "weekly_checkin", added["id"])
            ]
            bot.bot.worker.wake()
            mood = await bot.next_question(sam)
            assert bot.step_of(sam, mood) == "mood"
            assert "weekly check-in" in bot.texts(sam)[-2]

            energy = await bot.tap(sam, mood, "4")
            assert bot.step_of(sam, energy) == "energy"
            # the student stops answering; a day later the question comes again
            later = admin.json(
                "schedule", "run-due", "--now", (wednesday + timedelta(days=1, hours=1)).isoformat()
            )
            assert [i["person"] for i in later["reminded"]] == ["sam"]
            assert later["started"] == []
            bot.bot.worker.wake()
            reminder = await bot.next_question(sam)
            assert bot.step_of(sam, reminder) == "energy"
            assert reminder["text"].startswith("Just a reminder:")
            # the same instant again does nothing
            again = admin.json(
                "schedule", "run-due", "--now", (wednesday + timedelta(days=1, hours=1)).isoformat()
            )
            assert again["reminded"] == [] and again["started"] == []
        assert fake.errors == []


async def test_a_survey_reaches_the_class_and_its_counts_move(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club_survey.yaml").write_text(SURVEY)
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), profilebot_flows_dir=flows)
        async with running_bot(fake, app) as bot:
            app.people.add("Mr Lee", "teacher", handle="mr-lee", group="7B")
            # sent now, whatever the hour the test runs at (quiet hours have tests of their own)
            admin = command_line(tmp_path, PROFILEBOT_FLOWS_DIR=str(flows), QUIET_HOURS="off")
            students = []
            for n, name in enumerate(("Ana Diaz", "Bo Chen")):
                person = app.people.add(name, "student", group="7B")
                student = Student(fake.user(1001 + n, name.split()[0]), person.id, "")
                await _linked(bot, admin, student, person.handle)
                students.append(student)
            sent = admin.json(
                "survey", "send", "--flow", "club_survey", "--group", "7B", "--as", "mr-lee"
            )
            assert (sent["started"], sent["no_account"], sent["skipped"]) == (2, 0, 0)

            def counts() -> dict[str, int]:
                return dict(admin.json("survey", "status", str(sent["id"]))["counts"])

            def completed() -> int:  # what the bot waits on: a read, not a process that
                return SurveyStore(app.db).counts(sent["id"]).completed  # blocks the loop

            bot.bot.worker.wake()
            questions = [await bot.next_question(s) for s in students]
            assert counts()["in_progress"] == 2 and counts()["completed"] == 0
            ana, bo = students
            why = await bot.tap(ana, questions[0], "robotics")
            bot.fake.push_text(ana.user, "I like building things")
            await bot.wait_for(lambda: completed() == 1)
            assert counts()["completed"] == 1
            assert bot.step_of(ana, why) == "why"
            assert (counts()["in_progress"], counts()["started"]) == (1, 2)
            await bot.tap(bo, questions[1], "chess")
            bot.fake.push_text(bo.user, "strategy")
            await bot.wait_for(lambda: completed() == 2)
            assert counts()["completed"] == 2
            assert counts()["in_progress"] == 0
        assert fake.errors == []
