"""profilebot's Telegram adapter running against the fake Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.adapters.telegram import TelegramBot
from bot.app import App
from bot.config import load_settings
from bot.delivery import Pacer
from tests.telegram.fake_bot_api import FakeBotAPI, FakeUser

JSONDict = dict[str, Any]

FAST = Pacer(per_address_rate=1000.0, per_address_burst=50, overall_rate=10_000.0, overall_burst=50)
"""Pacing off, for tests about conversations rather than rate limits."""


def make_app(fake: FakeBotAPI, database_url: str, **settings: Any) -> App:
    return App.create(
        load_settings(
            database_url=database_url,
            telegram_bot_token=fake.token,
            telegram_api_base_url=fake.url,
            **settings,
        )
    )


@dataclass
class Student:
    """A roster student and their Telegram account, linked by redeeming an invite."""

    user: FakeUser
    person_id: int
    code: str
    seen: int = 0


@dataclass
class Running:
    fake: FakeBotAPI
    app: App
    bot: TelegramBot
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def add_student(self, name: str, user_id: int, *, handle: str | None = None) -> Student:
        person = self.app.people.add(name, "student", handle=handle)
        code = self.app.invites.issue(person.id).code
        return Student(self.fake.user(user_id, name.split()[0]), person.id, code)

    async def join(self, student: Student) -> JSONDict:
        """``/start <code>`` and the first message back."""
        self.fake.push_text(student.user, f"/start {student.code}")
        return await self.next_message(student)

    def messages(self, student: Student) -> list[JSONDict]:
        return self.fake.sent(student.user.id)

    async def next_message(self, student: Student, timeout: float = 5.0) -> JSONDict:
        """The next message the bot sends this student (after the ones already seen)."""
        await self.fake.wait_until(lambda: len(self.messages(student)) > student.seen, timeout)
        message = self.messages(student)[student.seen]
        student.seen += 1
        return message

    async def next_question(self, student: Student, timeout: float = 5.0) -> JSONDict:
        """Skip to the next message that asks a question (per the outbox row it was sent for)."""
        while True:
            message = await self.next_message(student, timeout)
            await self.settle(timeout)  # its outbox row is marked sent only after the send
            if str(message["message_id"]) in self.question_message_ids(student):
                return message

    def question_message_ids(self, student: Student) -> set[str]:
        return {
            r.platform_message_id
            for r in self.app.outbox.for_person(student.person_id)
            if r.platform_message_id is not None and r.reply.is_question
        }

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until every update is confirmed and the outbox is empty."""

        def idle() -> bool:
            return not self.fake.pending_updates and not self.app.outbox.pending(
                platform="telegram"
            )

        for _ in range(3):  # the last mark_sent may still be on its way
            await self.fake.wait_until(idle, timeout)
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeBotAPI, app: App, *, pacer: Pacer | None = FAST, poll_timeout: int = 1
) -> AsyncIterator[Running]:
    """The bot long-polling the fake until the block ends."""
    stop = asyncio.Event()
    async with TelegramBot(app, pacer=pacer) as bot:
        running = Running(fake, app, bot, stop)
        task = asyncio.create_task(bot.run_polling(stop, timeout=poll_timeout))
        running.tasks.append(task)
        try:
            yield running
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'profilebot.db'}"
