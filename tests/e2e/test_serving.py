"""The real `profilebot run` and `profilebot worker` processes against the fake platforms.

- two workers on one PostgreSQL deliver a fan-out: every message exactly once, counted at the
  fake Telegram and Slack, never a proactive one to a student who sent /stop, nothing to an
  unreachable one;
- two workers on one PostgreSQL run the scheduler too: each scheduled check-in is started once
  and its opening delivered once;
- a worker SIGKILLed in the middle of a 2,000-student fan-out, then started again: nothing
  lost, nothing sent twice but the one message that was in flight;
- `run` serving Telegram and Slack in one process; `worker` stopped by SIGTERM.

Except in the scheduler's test, the fan-out is queued in bulk as the scheduler would leave it
(proactive outbox rows, due at once: tests/fanout.py), thousands of students in a moment.
Where thousands of messages go out, the workers run with a faster pacing (tests/pacing.py):
what is tested is that each goes once, not how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import aiohttp
import pytest
from sqlalchemy import select, update

from storage import (
    OPTED_OUT,
    UNREACHABLE,
    Audience,
    Database,
    InviteStore,
    OutboxStore,
    PeopleStore,
    ScheduleStore,
)
from storage._tables import conversation, person
from tests.fanout import OPENING, Student, add_students, queue_fanout
from tests.faults import stopped_by_sigterm
from tests.slack.driver import SlackDriver
from tests.slack.fake_web_api import FakeSlackAPI
from tests.telegram.fake_bot_api import FakeBotAPI

ROOT = Path(__file__).parents[2]
SIGNING_SECRET = "serving-secret"
_UNSET = (
    "TELEGRAM_WEBHOOK_URL",
    "TELEGRAM_WEBHOOK_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "PROFILEBOT_FLOWS_DIR",
)


class Processes:
    """`profilebot` processes started by a test, their output in one log, all killed at the end."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = {**{k: v for k, v in os.environ.items() if k not in _UNSET}, **env}
        self.env.update(PYTHONPATH=str(ROOT), DEFAULT_TIMEZONE="UTC")
        self.log_path = workdir / "processes.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.started: list[asyncio.subprocess.Process] = []

    async def start(self, *args: str, paced_for_tests: bool = True) -> asyncio.subprocess.Process:
        module = "tests.pacing" if paced_for_tests else "bot.cli"
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", module, *args),
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=self._log,
        )
        self.started.append(process)
        return process

    async def close(self) -> None:
        for process in self.started:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._log.close()
        print(self.log_path.read_text())  # pytest shows it when the test fails


@contextlib.contextmanager
def _no_error_in(processes: Processes) -> Iterator[None]:
    yield
    log = processes.log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll (the database, mostly) while the fakes in this event loop keep serving."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what}: not within {timeout:.0f} s"
        await asyncio.sleep(0.05)


def _nothing_pending(db: Database) -> Callable[[], bool]:
    outbox = OutboxStore(db)
    return lambda: not outbox.pending(limit=1)


def _telegram_env(fake: FakeBotAPI) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.url}


def _slack_env(fake: FakeSlackAPI) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": fake.token, "SLACK_API_BASE_URL": fake.base_url}


def _on_telegram(fake: FakeBotAPI, students: list[Student]) -> None:
    for student in students:
        fake.user(int(student.user_id), "Student", started=True)


def _on_slack(fake: FakeSlackAPI, students: list[Student]) -> None:
    for student in students:
        fake.add_user(student.user_id)


def _sqlite(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'profilebot.db'}")
    db.upgrade()
    return db


@pytest.mark.postgres
async def test_two_workers_on_postgresql_deliver_a_fan_out_exactly_once(
    postgres_database: Database, tmp_path: Path
) -> None:
    db = postgres_database
    url = db.url.render_as_string(hide_password=False)
    people = PeopleStore(db)
    async with FakeBotAPI() as telegram, FakeSlackAPI() as slack:
        on_telegram = add_students(db, "telegram", 300)
        on_slack = add_students(db, "slack", 100, workspace=slack.team_id)
        stopped = add_students(db, "telegram", 5, start=300)  # they sent /stop
        gone = add_students(db, "telegram", 5, start=305)  # they blocked the bot
        gone_slack = add_students(db, "slack", 5, start=100, workspace=slack.team_id)
        _on_telegram(telegram, on_telegram + stopped + gone)
        _on_slack(slack, on_slack + gone_slack)
        with db.begin() as conn:
            stopped_ids = [s.person_id for s in stopped]
            conn.execute(update(person).where(person.c.id.in_(stopped_ids)).values(opted_out=True))
        for student in gone:
            people.set_reachable("telegram", None, reachable=False, user_id=student.user_id)
        for student in gone_slack:
            people.set_reachable("slack", slack.team_id, reachable=False, user_id=student.user_id)
        queue_fanout(db, on_telegram + stopped + gone, "telegram")
        queue_fanout(db, on_slack + gone_slack, "slack")
        # what answers a stopped student's own message still goes
        [answer] = OutboxStore(db).queue(
            [OPENING[0]],
            person_id=stopped[0].person_id,
            platform="telegram",
            address=stopped[0].address,
        )

        processes = Processes(
            tmp_path, {"DATABASE_URL": url, **_telegram_env(telegram), **_slack_env(slack)}
        )
        try:
            with _no_error_in(processes):
                workers = [await processes.start("worker") for _ in range(2)]
                await _until(_nothing_pending(db), 120, "the fan-out delivered")
                for worker in workers:
                    assert await stopped_by_sigterm(worker) == 0
        finally:
            await processes.close()

        sent = Counter(chat for chat, _ in telegram.delivered())
        assert sent == Counter(
            {int(s.user_id): 2 for s in on_telegram} | {int(stopped[0].user_id): 1}
        )
        posted = Counter(channel for channel, _ in slack.posted())
        assert posted == Counter({s.address: 2 for s in on_slack})
        for student in on_telegram:  # in order: the greeting, then the question
            texts = [t for chat, t in telegram.delivered() if chat == int(student.user_id)]
            assert texts[0] == OPENING[0].text and texts[1].startswith(OPENING[1].text)
        assert telegram.errors == [] and slack.errors == []

    outbox = OutboxStore(db)
    reasons = Counter(
        m.last_error
        for s in stopped + gone + gone_slack
        for m in outbox.for_person(s.person_id)
        if m.status == "dead"
    )
    assert reasons == {OPTED_OUT: 2 * len(stopped), UNREACHABLE: 2 * (len(gone) + len(gone_slack))}
    assert outbox.get(answer).status == "sent"


@pytest.mark.postgres
async def test_two_workers_start_and_deliver_each_scheduled_check_in_exactly_once(
    postgres_database: Database, tmp_path: Path
) -> None:
    """Both workers run the scheduler and delivery on one PostgreSQL: every student's weekly
    check-in is started once and its opening delivered once, counted at the fakes."""
    db = postgres_database
    url = db.url.render_as_string(hide_password=False)
    async with FakeBotAPI() as telegram, FakeSlackAPI() as slack:
        on_telegram = add_students(db, "telegram", 150)
        on_slack = add_students(db, "slack", 50, workspace=slack.team_id)
        _on_telegram(telegram, on_telegram)
        _on_slack(slack, on_slack)
        # an occurrence 5 minutes ago, of a schedule added 10 minutes ago: due right now
        now = datetime.now(UTC)
        due = now - timedelta(minutes=5)
        ScheduleStore(db).add(
            "weekly_checkin",
            f"FREQ=DAILY;BYHOUR={due.hour};BYMINUTE={due.minute}",
            Audience(everyone=True),
            now=now - timedelta(minutes=10),
            default_zone="UTC",
        )

        processes = Processes(
            tmp_path,
            {
                "DATABASE_URL": url,
                "QUIET_HOURS": "off",  # whatever the hour the test runs at
                **_telegram_env(telegram),
                **_slack_env(slack),
            },
        )
        try:
            with _no_error_in(processes):
                workers = [await processes.start("worker") for _ in range(2)]
                students = len(on_telegram) + len(on_slack)
                await _until(
                    lambda: len(telegram.delivered()) + len(slack.posted()) >= 2 * students,
                    120,
                    "every opening delivered",
                )
                await _until(_nothing_pending(db), 60, "the outbox emptied")
                for worker in workers:
                    assert await stopped_by_sigterm(worker) == 0
        finally:
            await processes.close()

        with db.begin() as conn:
            started = Counter(
                conn.execute(
                    select(conversation.c.person_id).where(
                        conversation.c.flow_id == "weekly_checkin"
                    )
                ).scalars()
            )
        assert started == Counter({s.person_id: 1 for s in on_telegram + on_slack})
        sent = Counter(chat for chat, _ in telegram.delivered())
        assert sent == Counter({int(s.user_id): 2 for s in on_telegram})
        posted = Counter(channel for channel, _ in slack.posted())
        assert posted == Counter({s.address: 2 for s in on_slack})
        assert telegram.errors == [] and slack.errors == []


async def test_a_worker_killed_mid_fan_out_loses_nothing_and_repeats_at_most_one(
    tmp_path: Path,
) -> None:
    db = _sqlite(tmp_path)
    async with FakeBotAPI() as telegram:
        students = add_students(db, "telegram", 2000)
        _on_telegram(telegram, students)
        queue_fanout(db, students, "telegram", [OPENING[1]])
        processes = Processes(
            tmp_path,
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'profilebot.db'}",
                **_telegram_env(telegram),
                # one send at a time: at most one message is out but not yet marked sent
                "PROFILEBOT_TEST_CONCURRENCY": "1",
            },
        )
        try:
            worker = await processes.start("worker")
            await _until(lambda: len(telegram.send_log) >= 600, 60, "600 messages sent")
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            killed_at = len(telegram.send_log)
            assert killed_at < len(students)  # killed in the middle

            worker = await processes.start("worker")
            await _until(_nothing_pending(db), 120, "the fan-out delivered after the restart")
            assert await stopped_by_sigterm(worker) == 0
        finally:
            await processes.close()

    sent = Counter(chat for _, chat in telegram.send_log)
    assert set(sent) == {int(s.user_id) for s in students}  # nothing lost
    assert sum(n - 1 for n in sent.values()) <= 1  # nothing twice, but the one in flight
    assert telegram.errors == []


async def test_run_serves_telegram_and_slack_in_one_process(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    people = PeopleStore(db)
    ana = people.add("Ana Diaz", "student")
    code = InviteStore(db).issue(ana.id).code
    people.add("Sam Lee", "student", email="sam@school.example")
    port = _free_port()
    async with FakeBotAPI() as telegram, FakeSlackAPI() as slack:
        slack.add_user("U0SAM", email="sam@school.example", real_name="Sam Lee")
        user = telegram.user(1001, "Ana")
        processes = Processes(
            tmp_path,
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'profilebot.db'}",
                **_telegram_env(telegram),
                **_slack_env(slack),
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            },
        )
        events = f"http://127.0.0.1:{port}/slack/events"
        try:
            with _no_error_in(processes):
                bot = await processes.start(
                    "run",
                    "--platform",
                    "telegram",
                    "--platform",
                    "slack",
                    "--port",
                    str(port),
                    paced_for_tests=False,
                )
                telegram.push_text(user, f"/start {code}")
                # Ana links her Telegram account: the welcome and the first question
                await telegram.wait_until(lambda: len(telegram.sent(1001)) >= 2, 30)
                async with SlackDriver(events, SIGNING_SECRET) as driver:
                    await _until_serving(driver, bot)
                    # Sam writes on Slack, found on the roster by email: the same
                    assert (await driver.message("U0SAM", "hi")).status == 200
                    await slack.wait_until(lambda: len(slack.messages("U0SAM")) >= 2, 30)
                assert await stopped_by_sigterm(bot) == 0
        finally:
            await processes.close()


async def test_a_worker_stops_on_sigterm_and_hands_back_what_it_held(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    async with FakeBotAPI() as telegram:
        students = add_students(db, "telegram", 200)
        _on_telegram(telegram, students)
        queue_fanout(db, students, "telegram", [OPENING[1]])
        processes = Processes(
            tmp_path,
            {"DATABASE_URL": f"sqlite:///{tmp_path / 'profilebot.db'}", **_telegram_env(telegram)},
        )
        try:
            with _no_error_in(processes):
                # the real command and pacing: 25 messages a second, so 8 s for all of them
                worker = await processes.start("worker", paced_for_tests=False)
                await _until(lambda: len(telegram.send_log) >= 10, 30, "delivery started")
                assert await stopped_by_sigterm(worker, within=8.0) == 0
        finally:
            await processes.close()
        sent = Counter(chat for _, chat in telegram.send_log)
    assert set(sent.values()) == {1} and len(sent) < len(students)
    # what it had claimed and not sent is free for the next process at once
    now = datetime.now(UTC)
    left = OutboxStore(db).claim(platform="telegram", limit=1000, now=now, wall=now, lease=1)
    assert len(left.messages) == len(students) - len(sent)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until_serving(driver: SlackDriver, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        assert process.returncode is None, f"the bot exited with {process.returncode}"
        with contextlib.suppress(aiohttp.ClientError, OSError):
            response = await driver.url_verification("ready?")
            if response.status == 200:
                return
        assert loop.time() < deadline, "the Slack side did not answer"
        await asyncio.sleep(0.1)
