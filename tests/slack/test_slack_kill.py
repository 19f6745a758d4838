"""SIGKILL the real `profilebot run --platform slack` (HTTP mode) mid-conversation, start it
again, and let Slack redeliver what got no answer: every answer counts once, nothing is sent
twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.adapters.slack import EVENTS_PATH
from bot.app import App
from storage._tables import answer
from tests.slack.driver import DriverResponse, SlackDriver
from tests.slack.fake_web_api import FakeSlackAPI
from tests.slack.harness import SIGNING_SECRET, make_app, sqlite_url

JSONDict = dict[str, Any]
ROOT = Path(__file__).parents[2]
SAM = "U0SAM"
SAM_EMAIL = "sam.lee@school.example"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_bot(
    fake: FakeSlackAPI, tmp_path: Path, port: int, log: IO[bytes]
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url(tmp_path),
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": fake.base_url,
        "DEFAULT_TIMEZONE": "UTC",
        "PYTHONPATH": str(ROOT),
    }
    for name in ("SLACK_APP_TOKEN", "PROFILEBOT_FLOWS_DIR"):
        env.pop(name, None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "--platform",
        "slack",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )


async def _wait_until_serving(
    driver: SlackDriver, process: asyncio.subprocess.Process, timeout: float = 20.0
) -> None:
    """Poll Slack's signed ``url_verification`` handshake until the bot answers 200."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        assert process.returncode is None, f"the bot exited with {process.returncode}"
        with contextlib.suppress(aiohttp.ClientError, OSError):
            response = await driver.url_verification("ready?")
            if response.status == 200 and response.json() == {"challenge": "ready?"}:
                return
        assert loop.time() < deadline, f"the bot did not answer within {timeout} s"
        await asyncio.sleep(0.1)


async def _wait_until_delivered(app: App, timeout: float = 10.0) -> None:
    """Until the bot has marked every Slack message sent (it posts first, then marks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.outbox.pending(platform="slack"):
        assert loop.time() < deadline, "the outbox was not emptied"
        await asyncio.sleep(0.05)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
    await process.wait()


class KillOnNextCall:
    """SIGKILLs the bot the moment it next calls ``chat.update`` or ``chat.postMessage``.

    Armed right before the strengths answer, this fires after the bot has committed that turn
    (it closes the question and delivers the next one only then) and before it acknowledges
    the request. The call is dropped, as if Slack never got it, so no message can be
    half-delivered (posted, but not yet marked sent) when the process dies.
    """

    METHODS = ("chat.update", "chat.postMessage")

    def __init__(self, fake: FakeSlackAPI) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.dropped: list[JSONDict] = []
        for method in self.METHODS:
            fake._handlers[method] = self._wrap(fake._handlers[method])  # type: ignore[assignment]

    def arm(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def _wrap(self, original: Callable[[JSONDict], JSONDict]) -> Callable[[JSONDict], JSONDict]:
        def handler(params: JSONDict) -> JSONDict:
            process, self.process = self.process, None
            if process is None:
                return original(params)
            process.send_signal(signal.SIGKILL)  # the answer goes to a dead process
            self.dropped.append(params)
            return {"channel": str(params.get("channel")), "ts": "0.000000"}

        return handler


@pytest.mark.parametrize("kill", ["just_after", "at_its_next_slack_call"])
async def test_a_killed_slack_bot_resumes_at_the_same_question(tmp_path: Path, kill: str) -> None:
    """``just_after``: 50 ms after the answer is sent, as the Telegram test does (the bot has
    usually acknowledged by then). ``at_its_next_slack_call``: at the bot's first Slack call
    after the answer's turn committed (closing the question, or posting the next one), so
    the committed turn's effects on Slack are cut off mid-way; a request left without a 2xx
    is delivered again, as Slack would."""
    port = _free_port()
    log = (tmp_path / "bot.log").open("ab")
    async with FakeSlackAPI() as fake:
        killer = KillOnNextCall(fake)
        app = make_app(fake, sqlite_url(tmp_path))
        app.people.add("Sam Lee", "student", email=SAM_EMAIL)
        fake.add_user(SAM, email=SAM_EMAIL, real_name="Sam Lee")
        dm = fake.dm_channel(SAM)
        url = f"http://127.0.0.1:{port}{EVENTS_PATH}"

        def seen(count: int) -> bool:
            return len(fake.messages(dm)) >= count

        async with SlackDriver(url, SIGNING_SECRET, response_url=fake.response_url) as driver:
            process = await _start_bot(fake, tmp_path, port, log)
            try:
                await _wait_until_serving(driver, process)
                assert (await driver.message(SAM, "hi")).status == 200
                await fake.wait_until(lambda: seen(2), 15)  # the intro + preferred_name
                assert (await driver.message(SAM, "Sammy")).status == 200
                await fake.wait_until(lambda: seen(3), 15)  # the strengths question
                await _wait_until_delivered(app)

                # The strengths question, answered by number... and the bot dies around it.
                sent_before = len(driver.sent)
                if kill == "at_its_next_slack_call":
                    killer.arm(process)
                in_flight = asyncio.create_task(driver.message(SAM, "1"))
                await asyncio.sleep(0.05)
                await _kill(process)
                outcome: DriverResponse | BaseException
                try:
                    outcome = await in_flight
                except (aiohttp.ClientError, OSError) as exc:
                    outcome = exc
                [strengths_request] = driver.sent[sent_before:]
                acked = isinstance(outcome, DriverResponse) and 200 <= outcome.status < 300
                if kill == "at_its_next_slack_call":
                    assert len(killer.dropped) == 1

                process = await _start_bot(fake, tmp_path, port, log)
                await _wait_until_serving(driver, process)
                if not acked:  # Slack redelivers an event that got no 2xx
                    retry = await driver.resend(
                        strengths_request, retry_num=1, retry_reason="http_error"
                    )
                    assert retry.status == 200, retry
                await fake.wait_until(lambda: seen(4), 15)  # the interests question

                assert (await driver.message(SAM, "2")).status == 200
                await fake.wait_until(lambda: seen(5), 15)  # the dislikes question
                await _wait_until_delivered(app)
            finally:
                await _kill(process)
                log.close()
                print((tmp_path / "bot.log").read_text())  # pytest shows it if the test fails

        with app.db.begin() as conn:
            rows = conn.execute(select(answer.c.step_id, answer.c.raw).order_by(answer.c.id)).all()
        assert [tuple(r) for r in rows] == [
            ("preferred_name", "Sammy"),
            ("strengths", "1"),
            ("interests", "2"),
        ], f"strengths request outcome: {outcome!r}"
        posted = [
            str(params.get("text", ""))
            for params in fake.calls_to("chat.postMessage")
            if not any(params is dropped for dropped in killer.dropped)
        ]
        duplicates = [text for text, n in Counter(posted).items() if n > 1]
        assert duplicates == [], f"strengths request outcome: {outcome!r}"
        assert len(posted) == len(fake.messages(dm)) == 5, posted
        assert fake.errors == []
