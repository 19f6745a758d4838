"""profilebot's Slack adapter served over real HTTP, driven by signed requests, for e2e tests.

``running_bot(fake, app)`` runs the real ``SlackBot`` (a Bolt ``AsyncApp``) behind its aiohttp
``/slack/events`` endpoint on 127.0.0.1, with its delivery worker posting to the fake Web API.
Tests talk to it through ``Running``: ``say`` / ``click`` / ``tick`` as a student would, and
read what the student sees with ``next_message`` / ``next_question`` / ``fake.messages``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.adapters.slack import EVENTS_PATH, SlackBot
from bot.app import App
from bot.config import load_settings
from bot.delivery import Pacer
from storage import OutboxRecord
from tests.slack.driver import DriverResponse, SlackDriver
from tests.slack.fake_web_api import FakeSlackAPI
from tests.waiting import wait_for

JSONDict = dict[str, Any]

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FAST = Pacer(per_address_rate=1000.0, per_address_burst=50, overall_rate=10_000.0, overall_burst=50)
"""Pacing off, for tests about conversations rather than rate limits."""


def make_app(fake: FakeSlackAPI, database_url: str, **settings: Any) -> App:
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": fake.token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_base_url": fake.base_url,
        **settings,
    }
    return App.create(load_settings(**values))


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'profilebot.db'}"


@dataclass
class Student:
    """A roster student and their Slack account (matched by email, or by a linked code)."""

    user: str
    channel: str
    person_id: int
    code: str
    seen: int = 0


@dataclass
class Running:
    fake: FakeSlackAPI
    app: App
    bot: SlackBot
    driver: SlackDriver
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def add_student(
        self, name: str, user: str, *, email: str | None = None, consent: bool = False
    ) -> Student:
        """A student on the roster and in the workspace (same email: they join by writing);
        ``consent``: a parent's consent to sensitive questions on record."""
        email = email or f"{user.lower()}@school.example"
        self.fake.add_user(user, email=email, real_name=name)
        person = self.app.people.add(name, "student", email=email)
        if consent:
            self.app.consent.record(person.handle, granted=True, by="A parent")
        code = self.app.invites.issue(person.id).code
        return Student(user, self.fake.dm_channel(user), person.id, code)

    # -- what the student does -----------------------------------------------------------------

    async def say(self, student: Student | str, text: str, **options: Any) -> DriverResponse:
        user = student.user if isinstance(student, Student) else student
        return await self.driver.message(user, text, **options)

    async def click(
        self, student: Student, message: JSONDict, label: str, **options: Any
    ) -> DriverResponse:
        """Click the button labelled ``label`` on ``message`` as it reads now."""
        current = self.message(student, message["ts"])
        return await self.driver.click_button(
            student.user, current, action_id_of(current, label), **options
        )

    async def tick(self, student: Student, message: JSONDict, *labels: str) -> DriverResponse:
        """Tick ``labels`` in a multi-select question, box by box as Slack does, then Submit."""
        current = self.message(student, message["ts"])
        state: JSONDict = {}
        for block, element in _checkbox_groups(current):
            by_label = {o["text"]["text"]: o for o in element["options"]}
            ticked = [by_label[label] for label in labels if label in by_label]
            if ticked:
                await self.driver.check_boxes(
                    student.user, current, element["action_id"], [o["value"] for o in ticked]
                )
            state[block["block_id"]] = {
                element["action_id"]: {"type": "checkboxes", "selected_options": ticked}
            }
        missing = set(labels) - set(checkbox_labels(current))
        if missing:
            raise LookupError(f"no boxes {sorted(missing)} in {checkbox_labels(current)}")
        submit = action_id_of(current, "Submit")
        block, _ = _element(current, submit)
        action = self.driver.button_action(submit, block_id=block["block_id"], text="Submit")
        payload = self.driver.block_actions_payload(
            student.user, [action], message=current, state_values=state
        )
        return await self.driver.block_actions(payload)

    async def type(self, student: Student, text: str) -> JSONDict:
        """Type an answer in the DM; the next question."""
        await self.say(student, text)
        return await self.next_question(student)

    async def tap(self, student: Student, question: JSONDict, label: str) -> JSONDict:
        """Click a button that answers the question; the next question."""
        await self.click(student, question, label)
        return await self.next_question(student)

    async def pick(self, student: Student, question: JSONDict, *labels: str) -> JSONDict:
        """Tick boxes of a multi-select question and Submit; the next question."""
        await self.tick(student, question, *labels)
        return await self.next_question(student)

    async def command(self, student: Student | str, text: str, **options: Any) -> DriverResponse:
        user = student.user if isinstance(student, Student) else student
        return await self.driver.slash_command(user, text, **options)

    # -- what the student sees -----------------------------------------------------------------

    def messages(self, student: Student) -> list[JSONDict]:
        return self.fake.messages(student.channel)

    def message(self, student: Student, ts: str) -> JSONDict:
        return next(m for m in self.messages(student) if m["ts"] == ts)

    async def next_message(self, student: Student, timeout: float = 10.0) -> JSONDict:
        await self.wait_for(lambda: len(self.messages(student)) > student.seen, timeout)
        message = self.messages(student)[student.seen]
        student.seen += 1
        return message

    async def next_question(self, student: Student, timeout: float = 10.0) -> JSONDict:
        """Skip to the next message that asks a question (per its outbox row)."""
        while True:
            message = await self.next_message(student, timeout)
            await self.settle(timeout)
            record = self.record_of(student, message)
            if record is not None and record.reply.is_question:
                return message

    async def rest(self, student: Student, timeout: float = 10.0) -> list[JSONDict]:
        """Every message not seen yet, once the bot is idle."""
        await self.settle(timeout)
        messages = self.messages(student)[student.seen :]
        student.seen += len(messages)
        return messages

    def record_of(self, student: Student, message: JSONDict) -> OutboxRecord | None:
        """The outbox row a message was sent for (None for the first parts of a long one)."""
        return next(
            (
                r
                for r in self.app.outbox.for_person(student.person_id)
                if r.platform_message_id == message["ts"]
            ),
            None,
        )

    def step_of(self, student: Student, message: JSONDict) -> str | None:
        record = self.record_of(student, message)
        return None if record is None else record.reply.step_id

    def start_flow(self, student: Student, flow_id: str) -> None:
        """Open a flow the way an advisor or a schedule would, then deliver."""
        self.app.service.open(
            student.person_id,
            self.app.registry.get(flow_id),
            platform="slack",
            address=student.channel,
        )
        self.bot.worker.wake()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until no turn is running and the outbox is empty."""

        def idle() -> bool:
            return not self.bot.busy and not self.app.outbox.pending(platform="slack")

        for _ in range(3):  # the last mark_sent may still be on its way
            await self.wait_for(idle, timeout)
            await asyncio.sleep(0.02)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await wait_for(self.fake, predicate, timeout)


def action_id_of(message: JSONDict, label: str) -> str:
    """The action id of the button labelled ``label`` (its text, ignoring a leading number)."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") != "button":
                continue
            text = element["text"]["text"]
            if text == label or text.split(" ", 1)[-1] == label or label in text:
                return str(element["action_id"])
    raise LookupError(f"no button {label!r} in {button_labels(message)}")


def button_labels(message: JSONDict) -> list[str]:
    return [
        element["text"]["text"]
        for block in message.get("blocks") or []
        for element in block.get("elements") or []
        if element.get("type") == "button"
    ]


def checkbox_labels(message: JSONDict) -> list[str]:
    return [
        option["text"]["text"]
        for block in message.get("blocks") or []
        for element in block.get("elements") or []
        if element.get("type") == "checkboxes"
        for option in element["options"]
    ]


def _checkbox_groups(message: JSONDict) -> list[tuple[JSONDict, JSONDict]]:
    return [
        (block, element)
        for block in message.get("blocks") or []
        for element in block.get("elements") or []
        if element.get("type") == "checkboxes"
    ]


def _element(message: JSONDict, action_id: str) -> tuple[JSONDict, JSONDict]:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return block, element
    raise LookupError(action_id)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeSlackAPI, app: App, *, pacer: Pacer | None = FAST
) -> AsyncIterator[Running]:
    """The bot serving ``/slack/events`` on 127.0.0.1 until the block ends."""
    stop = asyncio.Event()
    async with SlackBot(app, pacer=pacer) as bot:
        runner = web.AppRunner(bot.http_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        try:
            async with SlackDriver(url, SIGNING_SECRET, response_url=fake.response_url) as driver:
                running = Running(fake, app, bot, driver, stop)
                running.tasks.append(asyncio.create_task(bot.worker.run(stop)))
                try:
                    yield running
                finally:
                    stop.set()
                    await asyncio.wait_for(asyncio.gather(*running.tasks), 10)
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def slack_bot(
    tmp_path: Path, *, pacer: Pacer | None = FAST, **settings: Any
) -> AsyncIterator[Running]:
    """A fake Slack, an app on a SQLite file in ``tmp_path`` and the bot serving it.

    ``bot.fake`` and ``bot.app`` stay readable after the block (what was sent, what is stored).
    """
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), **settings)
        async with running_bot(fake, app, pacer=pacer) as bot:
            yield bot
