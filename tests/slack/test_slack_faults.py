"""One bad message never stops the Slack bot: a turn that keeps failing is parked.

Fault injection (``tests.faults``): the turn of one particular message raises every time.
Then 150 more events arrive from other students.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from bot.intake import MAX_ATTEMPTS, sorry_text
from tests.faults import POISON, answers_of, exclusively_locked, inject, stopped_by_sigterm
from tests.slack.driver import SlackDriver
from tests.slack.fake_web_api import FakeSlackAPI
from tests.slack.harness import SIGNING_SECRET, Running, Student, make_app, slack_bot, sqlite_url
from tests.slack.test_slack_kill import _free_port, _wait_until_serving

ROOT = Path(__file__).parents[2]
OTHERS = 50
ANSWERS = ("Kid", "1", "2")  # preferred name, strengths, interests: 3 × 50 = 150 events
SORRY = sorry_text("/profilebot ")


async def _join_all(bot: Running, students: list[Student]) -> None:
    """Each student writes first (matched by email) and gets "This is me"'s first question."""
    for student in students:
        assert (await bot.say(student, "hi")).status == 200
    for student in students:
        await bot.next_question(student)


async def test_a_message_that_keeps_failing_is_parked_and_everyone_else_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = inject(patch=monkeypatch.setattr)
    async with slack_bot(tmp_path) as bot:
        sam = bot.add_student("Sam Lee", "U0SAM")
        others = [bot.add_student(f"Student {n}", f"U0S{n:03d}") for n in range(OTHERS)]
        await _join_all(bot, [sam, *others])
        await bot.settle()

        poisoned = await bot.say(sam, POISON)
        assert poisoned.acked_in_time  # acknowledged: Slack stops retrying it
        poison_request = bot.driver.sent[-1]
        poison_event = json.loads(poison_request.body)["event_id"]
        for text in ANSWERS:
            responses = await asyncio.gather(*(bot.say(s, text) for s in others))
            assert all(r.acked_in_time for r in responses)
        await bot.settle(30)

        for student in others:
            assert [raw for _, raw in answers_of(bot.app, student.person_id)] == list(ANSWERS)
            last = bot.messages(student)[-1]
            assert bot.step_of(student, last) not in (None, "preferred_name", "strengths")
        assert SORRY in [m["text"] for m in bot.messages(sam)]
        assert answers_of(bot.app, sam.person_id) == []
        assert fault.raised == MAX_ATTEMPTS
        [parked] = bot.app.failed.parked()
        assert parked.letter.platform == "slack"
        assert parked.letter.event_key == f"slack:{bot.bot.team_id}:{poison_event}"
        assert parked.error == "InjectedFault"
        assert parked.person_handle == "sam-lee"

        # Slack's own retry of the parked event is a duplicate: nothing is tried again
        retry = await bot.driver.resend(poison_request, retry_num=1)
        assert retry.status == 200
        await bot.settle()
        assert fault.raised == MAX_ATTEMPTS
        assert len(bot.app.failed.parked()) == 1

        # the student carries on
        await bot.say(sam, "Sammy")
        await bot.settle()
        assert answers_of(bot.app, sam.person_id) == [("preferred_name", "Sammy")]
        assert bot.step_of(sam, bot.messages(sam)[-1]) == "strengths"
    assert bot.fake.errors == []


async def test_text_that_is_not_valid_unicode_is_cleaned_and_taken_as_an_answer(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        sam = bot.add_student("Sam Lee", "U0SAM")
        await _join_all(bot, [sam])
        assert (await bot.say(sam, "Sa\udc91m")).status == 200
        await bot.settle()
        assert answers_of(bot.app, sam.person_id) == [("preferred_name", "Sa\ufffdm")]
        assert bot.step_of(sam, bot.messages(sam)[-1]) == "strengths"
        assert bot.app.failed.parked() == []


async def test_a_locked_database_fails_the_event_for_slack_to_retry_and_nothing_is_parked(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        sam = bot.add_student("Sam Lee", "U0SAM")
        await _join_all(bot, [sam])
        await bot.settle()
        with exclusively_locked(tmp_path / "profilebot.db"):
            first = await bot.say(sam, "Sammy")
            await bot.wait_for(lambda: not bot.bot.busy, 30)  # the turn gave up on the lock
        assert bot.app.failed.parked() == []
        assert answers_of(bot.app, sam.person_id) == []
        # Slack redelivers the event; now it goes through, once
        retried = await bot.driver.resend(bot.driver.sent[-1], retry_num=1)
        assert retried.status == 200
        await bot.settle()
        assert first.status in (200, 500)  # acked after its budget, or failed in it
        assert answers_of(bot.app, sam.person_id) == [("preferred_name", "Sammy")]
        assert bot.app.failed.parked() == []


async def _run_bot(fake: FakeSlackAPI, tmp_path: Path, port: int) -> asyncio.subprocess.Process:
    """The real `profilebot run --platform slack` (HTTP mode) with the poisoned-message fault."""
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url(tmp_path),
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": fake.base_url,
        "DEFAULT_TIMEZONE": "UTC",
        "PYTHONPATH": str(ROOT),
        "PROFILEBOT_FAULT_TEXT": POISON,
    }
    for name in ("SLACK_APP_TOKEN", "PROFILEBOT_FLOWS_DIR"):
        env.pop(name, None)
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.faults", "run", "--platform", "slack"),
        *("--port", str(port)),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_sigterm_stops_the_bot_promptly_after_a_poisoned_message_and_while_locked(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        users = [f"U0T{n:03d}" for n in range(4)]
        for n, user in enumerate(users):
            fake.add_user(user, email=f"{user.lower()}@school.example", real_name=f"Kid {n}")
            app.people.add(f"Kid {n}", "student", email=f"{user.lower()}@school.example")
        port = _free_port()
        url = f"http://127.0.0.1:{port}/slack/events"
        process = await _run_bot(fake, tmp_path, port)
        try:
            async with SlackDriver(url, SIGNING_SECRET, response_url=fake.response_url) as driver:
                await _wait_until_serving(driver, process)
                for user in users:
                    assert (await driver.message(user, "hi")).status == 200
                assert (await driver.message(users[0], POISON)).status == 200
                assert len(app.failed.parked()) == 1
                assert await stopped_by_sigterm(process) == 0

                process = await _run_bot(fake, tmp_path, port)
                await _wait_until_serving(driver, process)
                with exclusively_locked(tmp_path / "profilebot.db"):
                    pending = [
                        asyncio.ensure_future(driver.message(user, "Kid")) for user in users[1:]
                    ]
                    await asyncio.sleep(1.0)  # the turns are waiting for the lock now
                    assert await stopped_by_sigterm(process) == 0
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert len(app.failed.parked()) == 1
