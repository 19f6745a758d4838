"""profilebot's Telegram adapter running against the fake Bot API, for end-to-end tests.

``running_bot(fake, app)`` runs the real ``TelegramBot`` with long polling (the default) or,
with ``webhook=True``, behind its aiohttp webhook served on 127.0.0.1, with a pump that
delivers every update pushed to the fake the way Telegram would (one POST at a time, retried
until answered 2xx). Either way the test drives it the same: ``fake.push_*`` / ``press`` and
``Running.next_message`` / ``next_question`` / ``settle``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.adapters.telegram import TelegramBot
from bot.app import App
from bot.config import load_settings
from bot.delivery import Pacer
from storage import OutboxRecord
from tests.telegram.fake_bot_api import FakeBotAPI, FakeUser
from tests.waiting import wait_for

JSONDict = dict[str, Any]

FAST = Pacer(per_address_rate=1000.0, per_address_burst=50, overall_rate=10_000.0, overall_burst=50)
"""Pacing off, for tests about conversations rather than rate limits."""

WEBHOOK_SECRET = "harness-secret_123"
WEBHOOK_PATH = "/telegram/hook"


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


def button_labels(message: JSONDict) -> list[str]:
    """The texts of a message's inline buttons, row by row ([] without a keyboard)."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


@dataclass
class Running:
    fake: FakeBotAPI
    app: App
    bot: TelegramBot
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    presses: int = 0
    """Callback queries pushed through :meth:`press` and :meth:`callback`."""

    def add_student(
        self, name: str, user_id: int, *, handle: str | None = None, consent: bool = False
    ) -> Student:
        """A student on the roster with an invite; ``consent``: a parent's consent to
        sensitive questions on record (this_is_me's family question is asked)."""
        person = self.app.people.add(name, "student", handle=handle)
        if consent:
            self.app.consent.record(person.handle, granted=True, by="A parent")
        code = self.app.invites.issue(person.id).code
        return Student(self.fake.user(user_id, name.split()[0]), person.id, code)

    async def join(self, student: Student) -> JSONDict:
        """``/start <code>`` and the first message back."""
        self.fake.push_text(student.user, f"/start {student.code}")
        return await self.next_message(student)

    def messages(self, student: Student) -> list[JSONDict]:
        return self.fake.sent(student.user.id)

    def message(self, student: Student, message_id: int) -> JSONDict:
        """One bot message in the student's chat as it reads now (after any edits)."""
        return next(m for m in self.messages(student) if m["message_id"] == message_id)

    def texts(self, student: Student) -> list[str]:
        return [str(m.get("text", "")) for m in self.messages(student)]

    async def next_message(self, student: Student, timeout: float = 10.0) -> JSONDict:
        """The next message the bot sends this student (after the ones already seen)."""
        await self.fake.wait_until(lambda: len(self.messages(student)) > student.seen, timeout)
        message = self.messages(student)[student.seen]
        student.seen += 1
        return message

    async def next_question(self, student: Student, timeout: float = 10.0) -> JSONDict:
        """Skip to the next message that asks a question (per the outbox row it was sent for)."""
        while True:
            message = await self.next_message(student, timeout)
            await self.settle(timeout)  # its outbox row is marked sent only after the send
            if str(message["message_id"]) in self.question_message_ids(student):
                return message

    async def rest(self, student: Student, timeout: float = 10.0) -> list[JSONDict]:
        """Every message not seen yet, once the bot is idle."""
        await self.settle(timeout)
        messages = self.messages(student)[student.seen :]
        student.seen += len(messages)
        return messages

    def question_message_ids(self, student: Student) -> set[str]:
        return {
            r.platform_message_id
            for r in self.app.outbox.for_person(student.person_id)
            if r.platform_message_id is not None and r.reply.is_question
        }

    def record_of(self, student: Student, message: JSONDict) -> OutboxRecord:
        """The outbox row a bot message was sent for (its ``reply.step_id`` names the step)."""
        return next(
            r
            for r in self.app.outbox.for_person(student.person_id)
            if r.platform_message_id == str(message["message_id"])
        )

    def step_of(self, student: Student, message: JSONDict) -> str | None:
        return self.record_of(student, message).reply.step_id

    async def press(
        self, student: Student, message: JSONDict, label: str, timeout: float = 10.0
    ) -> None:
        """Tap the button labelled ``label`` (as the message reads now); wait for its answer."""
        answered = len(self.fake.callback_answers)
        self.fake.press(student.user, message["message_id"], label)
        self.presses += 1
        await self.fake.wait_until(lambda: len(self.fake.callback_answers) > answered, timeout)

    async def callback(
        self, student: Student, message: JSONDict, data: str, timeout: float = 10.0
    ) -> None:
        """Send any callback data from a bot message; wait until the bot answered the query."""
        answered = len(self.fake.callback_answers)
        self.fake.push_callback(student.user, message["message_id"], data)
        self.presses += 1
        await self.fake.wait_until(lambda: len(self.fake.callback_answers) > answered, timeout)

    async def pick(self, student: Student, question: JSONDict, *labels: str) -> JSONDict:
        """Toggle each label of a multi-select question, then Done; the next question."""
        for label in labels:
            current = self.message(student, question["message_id"])
            await self.press(student, current, label)
            await self.settle()
        await self.press(student, question, "Done ✓")
        return await self.next_question(student)

    async def tap(self, student: Student, question: JSONDict, label: str) -> JSONDict:
        """Tap one button of a question that it answers; the next question."""
        await self.press(student, question, label)
        return await self.next_question(student)

    async def type(self, student: Student, text: str) -> JSONDict:
        """Type an answer; the next question."""
        self.fake.push_text(student.user, text)
        return await self.next_question(student)

    def start_flow(self, student: Student, flow_id: str) -> None:
        """Open a flow for the student the way an advisor or a schedule would, then deliver."""
        self.app.service.open(
            student.person_id,
            self.app.registry.get(flow_id),
            platform="telegram",
            address=str(student.user.id),
        )
        self.bot.worker.wake()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every update is confirmed, the outbox is empty and edits are done."""

        def idle() -> bool:
            return (
                not self.fake.pending_updates
                and not self.bot.edits_in_flight
                and not self.app.outbox.pending(platform="telegram")
            )

        for _ in range(3):  # the last mark_sent may still be on its way
            await self.wait_for(idle, timeout)
            await asyncio.sleep(0.02)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await wait_for(self.fake, predicate, timeout)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeBotAPI,
    app: App,
    *,
    pacer: Pacer | None = FAST,
    poll_timeout: int = 1,
    webhook: bool = False,
) -> AsyncIterator[Running]:
    """The bot long-polling the fake (or behind its webhook) until the block ends."""
    stop = asyncio.Event()
    async with TelegramBot(app, pacer=pacer) as bot:
        running = Running(fake, app, bot, stop)
        if not webhook:
            running.tasks.append(asyncio.create_task(bot.run_polling(stop, timeout=poll_timeout)))
            try:
                yield running
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*running.tasks), 10)
            return
        runner = web.AppRunner(bot.webhook_app(WEBHOOK_PATH, WEBHOOK_SECRET), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        try:
            await bot.application.bot.set_webhook(
                f"http://127.0.0.1:{port}{WEBHOOK_PATH}", secret_token=WEBHOOK_SECRET
            )
            running.tasks.append(asyncio.create_task(bot.worker.run(stop)))
            running.tasks.append(asyncio.create_task(_pump(fake, stop)))
            try:
                yield running
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*running.tasks), 10)
        finally:
            await runner.cleanup()


async def _pump(fake: FakeBotAPI, stop: asyncio.Event) -> None:
    """Telegram's side of a webhook: POST each pending update, in order, until answered 2xx."""
    while not stop.is_set():
        with contextlib.suppress(AssertionError):  # wait_until's timeout: check stop again
            await fake.wait_until(lambda: bool(fake.pending_updates) or stop.is_set(), 0.5)
        if stop.is_set():
            return
        for update in fake.pending_updates:
            status = await fake.post_to_webhook(update)
            if not 200 <= status < 300:
                await asyncio.sleep(0.2)  # Telegram backs off, then redelivers
                break


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'profilebot.db'}"
