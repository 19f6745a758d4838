"""One bad message never stops the Telegram bot: a turn that keeps failing is parked.

Fault injection (``tests.faults``): the turn of one particular message raises every time.
Then 150 more updates arrive from other students — more than one ``getUpdates`` returns.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.intake import MAX_ATTEMPTS, sorry_text
from tests.faults import POISON, answers_of, exclusively_locked, inject, stopped_by_sigterm
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import Running, Student, make_app, running_bot, sqlite_url

ROOT = Path(__file__).parents[2]
OTHERS = 50
ANSWERS = ("Kid", "1", "2")  # preferred name, strengths, interests: 3 × 50 = 150 updates
SORRY = sorry_text("/")


async def _join_all(bot: Running, students: list[Student]) -> None:
    for student in students:
        bot.fake.push_text(student.user, f"/start {student.code}")
    for student in students:
        await bot.next_question(student)  # "what should I call you?"


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_a_message_that_keeps_failing_is_parked_and_everyone_else_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: bool
) -> None:
    fault = inject(patch=monkeypatch.setattr)
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app, webhook=webhook) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            others = [bot.add_student(f"Student {n}", 2000 + n) for n in range(OTHERS)]
            await _join_all(bot, [sam, *others])
            await bot.settle()

            poisoned = fake.push_text(sam.user, POISON)
            for text in ANSWERS:
                for student in others:
                    fake.push_text(student.user, text)
            await bot.wait_for(
                lambda: all(len(answers_of(app, s.person_id)) == len(ANSWERS) for s in others),
                60,
            )
            await bot.settle(30)

            # everyone else was answered: each got the question after their last answer
            for student in others:
                assert [raw for _, raw in answers_of(app, student.person_id)] == list(ANSWERS)
                last = bot.messages(student)[-1]
                assert bot.step_of(student, last) not in (None, "preferred_name", "strengths")
            # the student got an apology, and nothing of the message was applied
            assert SORRY in bot.texts(sam)
            assert answers_of(app, sam.person_id) == []
            # the update was tried MAX_ATTEMPTS times, parked once, and confirmed
            assert fault.raised == MAX_ATTEMPTS
            [parked] = app.failed.parked()
            assert (
                parked.letter.event_key
                == f"telegram:{fake.token.split(':')[0]}:{poisoned['update_id']}"
            )
            assert parked.letter.platform == "telegram"
            assert parked.error == "InjectedFault"
            assert parked.attempts == MAX_ATTEMPTS
            assert parked.person_handle == "sam-lee"
            assert fake.pending_updates == []

            # the student carries on: their next message works
            bot.fake.push_text(sam.user, "Sammy")
            await bot.wait_for(lambda: len(answers_of(app, sam.person_id)) == 1, 10)
            await bot.settle()
            assert answers_of(app, sam.person_id) == [("preferred_name", "Sammy")]
            assert bot.step_of(sam, bot.messages(sam)[-1]) == "strengths"
            assert len(app.failed.parked()) == 1
        assert fake.errors == []


async def test_text_that_is_not_valid_unicode_is_cleaned_and_taken_as_an_answer(
    tmp_path: Path,
) -> None:
    """A lone surrogate is valid JSON (``"\\udc91"``) but no database stores it."""
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await _join_all(bot, [sam])
            fake.push_text(sam.user, "Sa\udc91m\x00")
            strengths = await bot.next_question(sam)
            assert bot.step_of(sam, strengths) == "strengths"
            assert answers_of(app, sam.person_id) == [("preferred_name", "Sa\ufffdm")]
            assert app.failed.parked() == []


async def test_a_locked_database_is_waited_out_with_nothing_lost_or_parked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transient failures are retried with backoff, never parked: the lock outlasts a turn's
    wait for it (the busy timeout), so turns fail while it is held."""
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            students = [bot.add_student(f"Student {n}", 2000 + n) for n in range(5)]
            await _join_all(bot, students)
            await bot.settle()
            with exclusively_locked(tmp_path / "profilebot.db"):
                for student in students:
                    fake.push_text(student.user, "Kid")
                await asyncio.sleep(7)  # longer than a turn waits for the lock
            await bot.wait_for(
                lambda: all(len(answers_of(app, s.person_id)) == 1 for s in students), 60
            )
            await bot.settle(30)
            for student in students:
                assert bot.step_of(student, bot.messages(student)[-1]) == "strengths"
            assert app.failed.parked() == []
            assert fake.pending_updates == []


async def _run_bot(fake: FakeBotAPI, tmp_path: Path) -> asyncio.subprocess.Process:
    """The real `profilebot run --platform telegram`, with the poisoned-message fault."""
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url(tmp_path),
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.url,
        "DEFAULT_TIMEZONE": "UTC",
        "PYTHONPATH": str(ROOT),
        "PROFILEBOT_FAULT_TEXT": POISON,
    }
    for name in ("TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "PROFILEBOT_FLOWS_DIR"):
        env.pop(name, None)
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.faults", "run", "--platform", "telegram"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_sigterm_stops_the_bot_promptly_after_a_poisoned_message_and_while_locked(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        people = [app.people.add(f"Student {n}", "student") for n in range(4)]
        users = [fake.user(3000 + n, f"Student{n}") for n in range(4)]
        process = await _run_bot(fake, tmp_path)
        try:
            for person, user in zip(people, users, strict=True):
                fake.push_text(user, f"/start {app.invites.issue(person.id).code}")
            await fake.wait_until(lambda: all(fake.sent(u.id) for u in users), 30)
            fake.push_text(users[0], POISON)
            await fake.wait_until(lambda: len(app.failed.parked()) == 1, 30)
            await fake.wait_until(lambda: not fake.pending_updates, 30)
            assert await stopped_by_sigterm(process) == 0

            # again, while every turn waits for a lock another process holds
            polls = len(fake.offsets_seen)
            process = await _run_bot(fake, tmp_path)
            await fake.wait_until(lambda: len(fake.offsets_seen) > polls, 30)  # it is polling
            with exclusively_locked(tmp_path / "profilebot.db"):
                for user in users[1:]:
                    fake.push_text(user, "Kid")
                await asyncio.sleep(1.0)  # the turns are waiting for the lock now
                assert await stopped_by_sigterm(process) == 0

            # nothing was lost: the next run takes the messages the stopped one could not
            process = await _run_bot(fake, tmp_path)
            await fake.wait_until(
                lambda: all(len(answers_of(app, p.id)) == 1 for p in people[1:]), 30
            )
            assert await stopped_by_sigterm(process) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert len(app.failed.parked()) == 1
