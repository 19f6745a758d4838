"""Slack end to end: events per second, ack and reply latency, profilebot vs a minimal Bolt app.

    .venv/bin/python bench/slack.py [--quick] [--repeat R] [--students N] [--open-students M]
                                    [--rate E] [--write] [--json] [--check]
    .venv/bin/python bench/slack.py --profile [cpu|wall] [--quick]

Both apps run in their own process and serve ``POST /slack/events`` over HTTP on 127.0.0.1;
this process runs the fake Slack Web API (``tests/slack/fake_web_api.py``) and the load
driver (``tests/slack/driver.SlackDriver``), which signs every event like Slack does. Every
simulated student is a workspace member with a DM; it types the 13 answers of ``this_is_me``
(one ``message.im`` event each, the same typed script as the end-to-end test) and sends its
next answer only once its previous event was acknowledged and every ``chat.postMessage`` the
app makes for it has reached the fake.

- ours: ``SlackBot`` in HTTP mode (``SlackBot.run_http``: ``http_app()`` plus the delivery
  worker, what ``profilebot run --platform slack`` runs when ``SLACK_SIGNING_SECRET`` is set)
  on a SQLite file database, pacing effectively off. Its students are on the roster with
  their email and join by writing "hello" (untimed): ``users.info`` gives the email, the
  account is linked and ``this_is_me`` opens. Each event is one durable turn (de-duplication,
  engine, answer, profile, outbox, commit) that runs before the ack; the outbox worker posts
  the replies and the answered question is rewritten (``chat.update``).
- floor: a Bolt ``AsyncApp`` whose ``message`` listener only does ``await say("ok")`` (Bolt's
  defaults: the event is acknowledged at once and the listener runs after), served by Bolt's
  own aiohttp ``web_app()``; no storage.

Two phases per app and run:

- closed loop (throughput): all ``--students`` start at once and each answers as soon as its
  reply arrived; events/s = answers / time from the first event to the last reply;
- open loop (latency): events posted at a fixed ``--rate`` (50/s) across ``--open-students``
  students, round-robin over those whose previous reply arrived.

Ack latency of an event: ``DriverResponse.elapsed``, from sending the signed POST to having
the whole HTTP answer. Reply latency: from just before the POST to the moment the fake
receives the first ``chat.postMessage`` to that DM after it.

``--write`` replaces the section ``## Slack end to end (bench/slack.py)`` of
docs/benchmarks.md (the rest of the file is kept); ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file (slack.py) would
# shadow the legacy ``slack`` package that slack_sdk installs: move that folder last, and put
# the repository root (for tests/, where the fake Web API and the driver live) first.
sys.path.sort(key=lambda p: Path(p or ".").resolve() == Path(__file__).resolve().parent)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import aiohttp
import slack_bolt
import slack_sdk
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.say.async_say import AsyncSay
from slack_sdk.web.async_client import AsyncWebClient

from bench.turns import machine_info, percentile
from bot.adapters.slack import EVENTS_PATH, SlackBot
from bot.app import App
from bot.config import load_settings
from bot.delivery import Pacer
from bot.runtime import tune_for_serving
from tests.slack.driver import SlackDriver
from tests.slack.fake_web_api import FakeSlackAPI, dm_channel_id

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Slack end to end (bench/slack.py)"

TARGET_RATIO = 0.5  # ours / floor, closed-loop events per second
TARGET_ACK_P99_MS = 100.0
TARGET_RATE = 50.0  # open loop, events per second

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PACER = Pacer(per_address_rate=1e6, per_address_burst=1000, overall_rate=1e6, overall_burst=1000)
"""Pacing effectively off: this measures the bot, not Slack's rate limits."""

QUIET_S = 0.15  # calibration: an event's messages are all out after this long without one more
PHASE_TIMEOUT_S = 180.0
START_TIMEOUT_S = 60.0

HELLO = "hello"
# The typed answers to this_is_me's 13 questions: the end-to-end test's typed run
# (tests/slack/test_slack_conversations.py::test_this_is_me_by_typing_gives_the_same_structured_
# answers): labels and numbers, values, a typed "skip" (Slack keeps "/skip" for slash commands).
SCRIPT: tuple[str, ...] = (
    "Sam",
    "being creative, working in a team, 12",
    "music, tech_coding",
    "skip",
    "1, doing",
    "4",
    "with a partner",
    "morning",
    "progress, challenge",
    "staying focused",
    "small_steps, ask_teacher",
    "Build a robot that plays chess",
    "skip",
)

KINDS = ("ours", "floor")
LABELS = {
    "ours": "ours (profilebot, SQLite)",
    "floor": 'floor (Bolt listener: say("ok"), no storage)',
}


# ----------------------------------------------------------------------------- the fake


class BenchFake(FakeSlackAPI):
    """The fake Web API, telling the driver when a ``chat.postMessage`` reaches it (and where)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_post: Callable[[str, int], None] | None = None

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        received_ns = time.perf_counter_ns()
        result = super()._chat_post_message(params)
        if self.on_post is not None:
            self.on_post(str(result["channel"]), received_ns)
        return result


def _user_id(i: int) -> str:
    return f"U0BENCH{i:05d}"


def _email(i: int) -> str:
    return f"student{i:05d}@school.example"


# ----------------------------------------------------------------------------- the driver


@dataclass(slots=True)
class Student:
    """One student's DM: which event goes next and what is still due for the one in flight."""

    user: str
    channel: str
    turn: int = 0  # the next event: 0 is "hello", 1..len(SCRIPT) the answers
    awaiting: int = 0  # chat.postMessage calls still due for the event in flight
    acked: bool = True  # the event in flight has its HTTP answer
    sent_ns: int = 0  # when the event in flight was posted; 0 once its first reply came


class Driver:
    """Posts students' signed events to the app and times the acks and the replies.

    ``counts[turn]`` is how many messages the app posts for event ``turn`` (calibrated on one
    student first): the student is ready for its next event once its ack and all of them came.
    """

    def __init__(self, fake: BenchFake, slack: SlackDriver, counts: Sequence[int]) -> None:
        self.fake = fake
        self.slack = slack
        self.counts = counts
        self.students: dict[str, Student] = {}
        self.reply_ns: list[int] = []
        self.ack_ns: list[int] = []
        self.bad_acks: list[int] = []
        self.unexpected = 0
        self.on_ready: Callable[[Student], None] = lambda student: None
        self._tasks: set[asyncio.Task[None]] = set()
        fake.on_post = self._posted

    def add(self, student: Student) -> None:
        self.students[student.channel] = student

    def push(self, student: Student) -> None:
        text = HELLO if student.turn == 0 else SCRIPT[student.turn - 1]
        student.awaiting = self.counts[student.turn]
        student.acked = False
        student.sent_ns = time.perf_counter_ns()
        task = asyncio.ensure_future(self._send(student, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, student: Student, text: str) -> None:
        try:
            response = await self.slack.message(student.user, text)
        except (aiohttp.ClientError, TimeoutError):
            self.bad_acks.append(-1)
            return
        self.ack_ns.append(int(response.elapsed * 1e9))
        if response.status != 200:
            self.bad_acks.append(response.status)
            return
        student.acked = True
        self._maybe_ready(student)

    def _posted(self, channel: str, received_ns: int) -> None:
        student = self.students.get(channel)
        if student is None:
            return  # the calibration student
        if student.awaiting == 0:
            self.unexpected += 1
            return
        if student.sent_ns:
            self.reply_ns.append(received_ns - student.sent_ns)
            student.sent_ns = 0
        student.awaiting -= 1
        self._maybe_ready(student)

    def _maybe_ready(self, student: Student) -> None:
        if student.awaiting == 0 and student.acked:
            student.turn += 1
            student.acked = False  # until pushed again
            self.on_ready(student)


async def _until(
    done: asyncio.Event, proc: asyncio.subprocess.Process, timeout: float, what: str
) -> None:
    """Wait for ``done``; fail early if the app process exits, or after ``timeout``."""
    waiting = asyncio.ensure_future(done.wait())
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({waiting, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        exited.cancel()
    if not done.is_set():
        reason = f"app exited ({proc.returncode})" if proc.returncode is not None else "timeout"
        raise RuntimeError(f"{what}: {reason}")


def _more_messages(fake: FakeSlackAPI, channel: str, than: int) -> Callable[[], bool]:
    return lambda: len(fake.messages(channel)) > than


async def calibrate(
    fake: BenchFake, slack: SlackDriver, user: str, proc: asyncio.subprocess.Process
) -> list[int]:
    """Messages the app posts per event, from one student going through slowly (a warm-up)."""
    channel = dm_channel_id(user)
    counts = []
    for turn in range(len(SCRIPT) + 1):
        before = len(fake.messages(channel))
        response = await slack.message(user, HELLO if turn == 0 else SCRIPT[turn - 1])
        if response.status != 200:
            raise RuntimeError(f"calibration: event {turn} answered {response.status}")
        try:
            await fake.wait_until(_more_messages(fake, channel, before), 20.0)
        except AssertionError:
            raise RuntimeError(
                f"calibration: no reply to event {turn} (app exit code {proc.returncode})"
            ) from None
        seen = len(fake.messages(channel))
        while True:
            await asyncio.sleep(QUIET_S)
            now = len(fake.messages(channel))
            if now == seen:
                break
            seen = now
        counts.append(seen - before)
    return counts


async def join_all(
    driver: Driver, students: Sequence[Student], proc: asyncio.subprocess.Process
) -> None:
    """Untimed: every student writes "hello" (ours: matched by email, opens this_is_me)."""
    remaining = len(students)
    done = asyncio.Event()

    def ready(student: Student) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            done.set()

    driver.on_ready = ready
    for student in students:
        driver.push(student)
    await _until(done, proc, PHASE_TIMEOUT_S, "joining")


@dataclass(slots=True)
class Phase:
    """One measured phase of one app in one run."""

    events: int
    wall_s: float
    events_per_s: float
    reply_p50_ms: float
    reply_p99_ms: float
    reply_max_ms: float
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    app_cpu_s: float
    fake_cpu_s: float
    pushed_per_s: float = float("nan")  # open loop: the rate events really went in at
    max_push_lag_ms: float = float("nan")  # open loop: latest push behind its schedule
    starved: int = 0  # open loop: pushes that found no student ready
    api_calls: dict[str, int] = field(default_factory=dict)  # Web API method -> calls

    @property
    def app_cpu_ms_per_event(self) -> float:
        return self.app_cpu_s / self.events * 1e3 if self.events else float("nan")

    @property
    def app_cpu_share(self) -> float:
        return self.app_cpu_s / self.wall_s if self.wall_s else float("nan")

    @property
    def fake_cpu_share(self) -> float:
        return self.fake_cpu_s / self.wall_s if self.wall_s else float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _phase(
    driver: Driver, events: int, wall_s: float, app_cpu_s: float, fake_cpu_s: float
) -> Phase:
    replies = sorted(driver.reply_ns)
    acks = sorted(driver.ack_ns)
    return Phase(
        events=events,
        wall_s=wall_s,
        events_per_s=events / wall_s,
        reply_p50_ms=percentile(replies, 50),
        reply_p99_ms=percentile(replies, 99),
        reply_max_ms=replies[-1] / 1e6 if replies else float("nan"),
        ack_p50_ms=percentile(acks, 50),
        ack_p99_ms=percentile(acks, 99),
        ack_max_ms=acks[-1] / 1e6 if acks else float("nan"),
        app_cpu_s=app_cpu_s,
        fake_cpu_s=fake_cpu_s,
    )


def _reset(driver: Driver) -> None:
    driver.reply_ns = []
    driver.ack_ns = []


async def closed_loop(
    driver: Driver, students: Sequence[Student], proc: asyncio.subprocess.Process
) -> Phase:
    """Throughput: everyone answers at once, each the moment its reply arrives."""
    last = len(SCRIPT)
    remaining = len(students)
    done = asyncio.Event()

    def ready(student: Student) -> None:
        nonlocal remaining
        if student.turn <= last:
            driver.push(student)
            return
        remaining -= 1
        if remaining == 0:
            done.set()

    driver.on_ready = ready
    _reset(driver)
    calls = len(driver.fake.calls)
    app_cpu, fake_cpu = _cpu_seconds(proc.pid), time.process_time()
    started = time.perf_counter()
    for student in students:
        driver.push(student)
    await _until(done, proc, PHASE_TIMEOUT_S, "closed loop")
    wall = time.perf_counter() - started
    phase = _phase(
        driver,
        len(students) * last,
        wall,
        _cpu_seconds(proc.pid) - app_cpu,
        time.process_time() - fake_cpu,
    )
    phase.api_calls = dict(Counter(c.method for c in driver.fake.calls[calls:]))
    return phase


async def open_loop(
    driver: Driver, students: Sequence[Student], proc: asyncio.subprocess.Process, rate: float
) -> Phase:
    """Latency: events posted at ``rate`` per second, whatever the app is doing."""
    last = len(SCRIPT)
    ready_students: deque[Student] = deque(students)
    kick = asyncio.Event()
    remaining = len(students)
    done = asyncio.Event()

    def ready(student: Student) -> None:
        nonlocal remaining
        if student.turn <= last:
            ready_students.append(student)
            kick.set()
            return
        remaining -= 1
        if remaining == 0:
            done.set()

    driver.on_ready = ready
    _reset(driver)
    total = len(students) * last
    interval_ns = 1e9 / rate
    starved, max_lag_ns = 0, 0
    calls = len(driver.fake.calls)
    app_cpu, fake_cpu = _cpu_seconds(proc.pid), time.process_time()
    started = time.perf_counter_ns()
    for k in range(total):
        due = started + k * interval_ns
        delay = (due - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        if not ready_students:
            starved += 1
            while not ready_students:
                kick.clear()
                await _until(kick, proc, PHASE_TIMEOUT_S, "open loop")
        driver.push(ready_students.popleft())
        max_lag_ns = max(max_lag_ns, int(time.perf_counter_ns() - due))
    pushed_s = (time.perf_counter_ns() - started) / 1e9
    await _until(done, proc, PHASE_TIMEOUT_S, "open loop")
    wall = (time.perf_counter_ns() - started) / 1e9
    phase = _phase(
        driver, total, wall, _cpu_seconds(proc.pid) - app_cpu, time.process_time() - fake_cpu
    )
    phase.pushed_per_s = total / pushed_s
    phase.max_push_lag_ms = max_lag_ns / 1e6
    phase.starved = starved
    phase.api_calls = dict(Counter(c.method for c in driver.fake.calls[calls:]))
    return phase


# ----------------------------------------------------------------------------- one run


def prepare_roster(workdir: Path, students: int) -> Path:
    """A database with every student on the roster by email (ours), copied for each run."""
    path = workdir / "roster.db"
    app = App.create(load_settings(database_url=f"sqlite:///{path}"))
    try:
        for i in range(students):
            app.people.add(f"Student {i}", "student", email=_email(i))
    finally:
        app.db.dispose()
    return path


@dataclass(slots=True)
class RunResult:
    kind: str
    closed: Phase
    open: Phase
    counts: list[int]
    problems: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_one(
    kind: str,
    roster: Path,
    workdir: Path,
    run: int,
    *,
    closed_students: int,
    open_students: int,
    rate: float,
    profile_out: Path | None = None,
    profile_clock: str = "cpu",
) -> RunResult:
    database = workdir / f"{kind}-{run}.db"
    if kind == "ours":
        shutil.copyfile(roster, database)
    log_path = workdir / f"{kind}-{run}.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    async with BenchFake() as fake:
        for i in range(1 + closed_students + open_students):
            fake.add_user(_user_id(i), email=_email(i), real_name=f"Student {i}")
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve",
                kind,
                "--port",
                str(port),
                "--base-url",
                fake.base_url,
                "--token",
                fake.token,
                "--database",
                str(database),
                *(["--profile-out", str(profile_out)] if profile_out else []),
                *(["--profile-clock", profile_clock] if profile_out else []),
                stdout=log,
                stderr=log,
                cwd=str(ROOT),
                env=env,
            )
        url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        async with SlackDriver(url, SIGNING_SECRET, response_url=fake.response_url) as slack:
            # Slack keeps connections open; many students at once need more than aiohttp's 100.
            slack._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=30.0),
            )
            try:
                result = await _drive(fake, slack, proc, kind, closed_students, open_students, rate)
            except RuntimeError as exc:
                raise RuntimeError(f"{kind}, run {run + 1}: {exc}\n{_tail(log_path)}") from None
            finally:
                await _stop(proc)
        result.problems += [f"{kind}: Slack refused {e.method}: {e.error}" for e in fake.errors[:5]]
    if proc.returncode not in (0, -signal.SIGTERM):
        result.problems.append(f"{kind}: app exited with {proc.returncode}: {_tail(log_path)}")
    if kind == "ours":
        result.problems += _check_database(database)
    return result


async def _wait_up(slack: SlackDriver, proc: asyncio.subprocess.Process) -> None:
    """Until the app answers Slack's ``url_verification`` handshake (it is serving)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError("the app did not start serving")
        with contextlib.suppress(aiohttp.ClientError, OSError):
            if (await slack.url_verification()).status == 200:
                return
        await asyncio.sleep(0.1)


async def _drive(
    fake: BenchFake,
    slack: SlackDriver,
    proc: asyncio.subprocess.Process,
    kind: str,
    closed_students: int,
    open_students: int,
    rate: float,
) -> RunResult:
    await _wait_up(slack, proc)
    counts = await calibrate(fake, slack, _user_id(0), proc)
    driver = Driver(fake, slack, counts)
    students = [
        Student(_user_id(i), dm_channel_id(_user_id(i)))
        for i in range(1, 1 + closed_students + open_students)
    ]
    for student in students:
        driver.add(student)
    closed, opened = students[:closed_students], students[closed_students:]
    await join_all(driver, students, proc)
    throughput = await closed_loop(driver, closed, proc)
    latency = await open_loop(driver, opened, proc, rate)
    problems = []
    if driver.unexpected:
        problems.append(f"{kind}: {driver.unexpected} messages nobody was waiting for")
    if driver.bad_acks:
        shown = dict(Counter(driver.bad_acks))
        problems.append(f"{kind}: {len(driver.bad_acks)} events not acknowledged 200: {shown}")
    return RunResult(kind, throughput, latency, counts, problems)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _check_database(path: Path) -> list[str]:
    """Every conversation finished and every outbox message sent: the run did real work."""
    con = sqlite3.connect(str(path))
    try:
        open_conversations = con.execute(
            "SELECT count(*) FROM conversation WHERE status IN ('active', 'paused', 'stopped')"
        ).fetchone()[0]
        finished = con.execute(
            "SELECT count(*) FROM conversation WHERE status = 'completed'"
        ).fetchone()[0]
        unsent = con.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()[0]
    finally:
        con.close()
    problems = []
    if open_conversations:
        problems.append(f"ours: {open_conversations} conversations left open")
    if not finished:
        problems.append("ours: no conversation completed")
    if unsent:
        problems.append(f"ours: {unsent} outbox messages not sent")
    return problems


# ----------------------------------------------------------------------------- the apps


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def serve_ours(port: int, base_url: str, token: str, database: str) -> None:
    """profilebot as ``profilebot run --platform slack`` runs it in HTTP mode, pacing off.

    ``bot.adapters.slack.serve`` builds ``SlackBot(app)`` (the default pacer: 20 messages/s
    overall) and runs ``run_http``; this does the same with ``PACER`` and on 127.0.0.1.
    """
    app = App.create(
        load_settings(
            database_url=f"sqlite:///{database}",
            slack_bot_token=token,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_base_url=base_url,
        )
    )
    stop = _stop_event()
    try:
        async with SlackBot(app, pacer=PACER) as bot:
            tune_for_serving()  # as `serve` does
            await bot.run_http(stop, port=port, host="127.0.0.1")
    finally:
        app.db.dispose()


def floor_app(base_url: str, token: str) -> AsyncApp:
    """The floor: a Bolt app whose only listener posts "ok" back (Bolt's defaults otherwise)."""
    bolt = AsyncApp(
        client=AsyncWebClient(token=token, base_url=base_url), signing_secret=SIGNING_SECRET
    )

    @bolt.event("message")
    async def reply(say: AsyncSay) -> None:
        await say("ok")

    return bolt


async def serve_floor(port: int, base_url: str, token: str) -> None:
    runner = web.AppRunner(floor_app(base_url, token).web_app(path=EVENTS_PATH), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await _stop_event().wait()
    finally:
        await runner.cleanup()


def profiled(run: Callable[[], None], out: str, clock: str) -> None:
    """``run()`` under cProfile in every thread (turns run in worker threads); stats to ``out``.

    ``clock`` "cpu" times each thread's CPU (``time.thread_time``: waiting for a lock, the
    network or a sleep costs nothing); "wall" times wall-clock (waits show up).
    """
    timer = time.thread_time if clock == "cpu" else time.perf_counter
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_new_thread(*_: object) -> None:
        profile = cProfile.Profile(timer)
        with lock:
            profiles.append(profile)
        profile.enable()  # from now on this thread's calls go to its own profile

    main_profile = cProfile.Profile(timer)
    profiles.append(main_profile)
    threading.setprofile(start_in_new_thread)
    main_profile.enable()
    try:
        run()  # asyncio.run: joins its worker threads before returning
    finally:
        main_profile.disable()
        threading.setprofile(None)
        pstats.Stats(*profiles).dump_stats(out)


def profile_report(path: Path, top: int) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- report


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def summarize(results: list[RunResult]) -> dict[str, Any]:
    by = {kind: [r for r in results if r.kind == kind] for kind in KINDS}
    med: dict[str, Any] = {}
    for kind, rows in by.items():
        med[kind] = {
            "events_per_s": _median(r.closed.events_per_s for r in rows),
            "closed_reply_p50_ms": _median(r.closed.reply_p50_ms for r in rows),
            "closed_reply_p99_ms": _median(r.closed.reply_p99_ms for r in rows),
            "closed_ack_p50_ms": _median(r.closed.ack_p50_ms for r in rows),
            "closed_ack_p99_ms": _median(r.closed.ack_p99_ms for r in rows),
            "closed_ack_max_ms": _median(r.closed.ack_max_ms for r in rows),
            "cpu_ms_per_event": _median(r.closed.app_cpu_ms_per_event for r in rows),
            "app_cpu_share": _median(r.closed.app_cpu_share for r in rows),
            "fake_cpu_share": _median(r.closed.fake_cpu_share for r in rows),
            "open_ack_p50_ms": _median(r.open.ack_p50_ms for r in rows),
            "open_ack_p99_ms": _median(r.open.ack_p99_ms for r in rows),
            "open_ack_max_ms": _median(r.open.ack_max_ms for r in rows),
            "open_reply_p50_ms": _median(r.open.reply_p50_ms for r in rows),
            "open_reply_p99_ms": _median(r.open.reply_p99_ms for r in rows),
            "open_reply_max_ms": _median(r.open.reply_max_ms for r in rows),
            "pushed_per_s": _median(r.open.pushed_per_s for r in rows),
        }
    med["ratio"] = _median(
        o.closed.events_per_s / f.closed.events_per_s
        for o, f in zip(by["ours"], by["floor"], strict=True)
    )
    return med


def targets(med: dict[str, Any], rate: float) -> list[tuple[str, str, bool]]:
    ours = med["ours"]
    return [
        (
            f"ours ≥ {TARGET_RATIO} × the floor's events/s",
            f"{med['ratio']:.2f} × ({ours['events_per_s']:,.0f} vs "
            f"{med['floor']['events_per_s']:,.0f} events/s)",
            med["ratio"] >= TARGET_RATIO,
        ),
        (
            f"ours ack p99 < {TARGET_ACK_P99_MS:.0f} ms at {rate:.0f} events/s (open loop)",
            f"{ours['open_ack_p99_ms']:.1f} ms"
            + (
                f" (events went in at {ours['pushed_per_s']:.0f}/s)"
                if _saturated(ours, rate)
                else ""
            ),
            ours["open_ack_p99_ms"] < TARGET_ACK_P99_MS,
        ),
        (
            f"ours ack p99 < {TARGET_ACK_P99_MS:.0f} ms in the closed loop (saturated)",
            f"{ours['closed_ack_p99_ms']:.1f} ms",
            ours["closed_ack_p99_ms"] < TARGET_ACK_P99_MS,
        ),
    ]


def _saturated(k: dict[str, Any], rate: float) -> str:
    if k["pushed_per_s"] >= 0.98 * rate:
        return ""
    return (
        f" Ours could not keep up with {rate:.0f} events/s: the events went in at "
        f"{k['pushed_per_s']:.0f}/s (median), so its latency is that of a saturated app."
    )


def _ms(x: float) -> str:
    return f"{x:.1f}"


def render(report: dict[str, Any], command: str) -> str:
    m, med, results = report["machine"], report["median"], report["results"]
    lines: list[str] = []
    add = lines.append
    add(SECTION)
    add("")
    add(
        "Events per second end to end (signed `message.im` event in → Bolt → engine → storage "
        "→ `chat.postMessage` out at the fake Web API), the time to acknowledge each event "
        "and the time from an event to the first reply to it, for profilebot and, in the same "
        "run against the same fake, the floor: a minimal Bolt `AsyncApp` whose `message` "
        'listener only does `await say("ok")` (no engine, no storage). The students type the '
        "13 answers of `this_is_me` (the typed script of the end-to-end test: labels, numbers, "
        "values, a typed `skip`); each sends its next answer once its previous event was "
        "acknowledged and all the replies to it arrived."
    )
    add("")
    add(
        "Setup: the fake (`tests/slack/fake_web_api.py`, on 127.0.0.1, validating every "
        "message's blocks) and the load driver (`tests/slack/driver.py`, which signs each "
        "event as Slack does) run in the benchmark's process; each app runs in a process of "
        "its own and serves `POST /slack/events` over HTTP, so on this 2-core machine the app "
        "has a core to itself. profilebot runs `SlackBot.run_http` (what `profilebot run "
        "--platform slack` runs in HTTP mode: `http_app()` plus the delivery worker) on a "
        "SQLite file with pacing effectively off (`Pacer(per_address_rate=1e6, "
        "per_address_burst=1000, overall_rate=1e6, overall_burst=1000)`) — a launcher in "
        "`bench/slack.py` instead of the CLI, because the CLI's default pacer (20 messages/s "
        "overall, Slack's own limits) would cap the measurement at about 10 events/s. Its "
        "turn runs before the ack (`process_before_response=True`, up to 2 s); its students "
        "are on the roster by email and joined by writing `hello` (`users.info` → email → "
        "linked, `this_is_me` opened) before the timed phases. The floor uses Bolt's defaults: "
        "the event is acknowledged at once and the listener runs after it. Web API calls per "
        f"event (closed loop): ours {_calls_per_event(results, 'ours')}, floor "
        f"{_calls_per_event(results, 'floor')}."
    )
    add("")
    add(
        "- **closed loop** (throughput): every student starts at once and answers the moment "
        "its reply arrives; events/s = answers / time from the first event to the last reply."
    )
    add(
        f"- **open loop** (latency): events posted at {report['rate']:.0f}/s, round-robin over "
        f"{report['open_students']} students whose previous reply had arrived (when none has, "
        "the post waits: `posted/s` below the target rate means the app could not keep up)."
    )
    add(
        "- **ack**: `DriverResponse.elapsed`, from sending the signed POST to having the whole "
        "HTTP answer, measured in the driver (its own event loop's delays included); "
        "**reply**: from just before the POST to the fake receiving the first "
        "`chat.postMessage` to that DM."
    )
    add("")
    add(
        "Run it with `make bench-slack` or `.venv/bin/python bench/slack.py [--quick]`; "
        "`--write` rewrites this section, `--profile [cpu|wall]` runs ours once with its app "
        "process under cProfile (every thread) and prints the top functions."
    )
    add("")
    add(f"Command: `{command}`  ")
    add(
        f"Machine: {m['cores']} cores, {m['cpu']}, {m['os']}, Python {m['python']}, "
        f"slack_bolt {report['slack_bolt']}, slack_sdk {report['slack_sdk']}, "
        f"SQLite {m['sqlite']}; 1-minute load average {report['load'][0]:.1f} before the "
        f"runs and {report['load'][1]:.1f} after (other work shares the machine)  "
    )
    add(f"Date: {report['date']}  ")
    add(f"Code: {report['code']}")
    add("")
    add(
        f"{report['students']} students in the closed loop ({report['students'] * len(SCRIPT)} "
        f"events), {report['open_students']} in the open loop "
        f"({report['open_students'] * len(SCRIPT)} events); {report['repeat']} run(s), the "
        "apps alternating which goes first; medians in bold."
    )
    add("")
    add(
        "| | closed: events/s | closed: ack p50 / p99 / max ms | closed: reply p50 / p99 ms "
        "| app CPU ms/event | open: posted/s | open: ack p50 / p99 / max ms "
        "| open: reply p50 / p99 / max ms |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        for i, r in enumerate(x for x in results if x.kind == kind):
            c, o = r.closed, r.open
            add(
                f"| {kind}, run {i + 1} | {c.events_per_s:,.0f} | "
                f"{_ms(c.ack_p50_ms)} / {_ms(c.ack_p99_ms)} / {_ms(c.ack_max_ms)} | "
                f"{_ms(c.reply_p50_ms)} / {_ms(c.reply_p99_ms)} | "
                f"{c.app_cpu_ms_per_event:.2f} | {o.pushed_per_s:.0f} | "
                f"{_ms(o.ack_p50_ms)} / {_ms(o.ack_p99_ms)} / {_ms(o.ack_max_ms)} | "
                f"{_ms(o.reply_p50_ms)} / {_ms(o.reply_p99_ms)} / {_ms(o.reply_max_ms)} |"
            )
    for kind in KINDS:
        k = med[kind]
        add(
            f"| **{LABELS[kind]}, median** | **{k['events_per_s']:,.0f}** | "
            f"{_ms(k['closed_ack_p50_ms'])} / **{_ms(k['closed_ack_p99_ms'])}** / "
            f"{_ms(k['closed_ack_max_ms'])} | "
            f"{_ms(k['closed_reply_p50_ms'])} / {_ms(k['closed_reply_p99_ms'])} | "
            f"{k['cpu_ms_per_event']:.2f} | {k['pushed_per_s']:.0f} | "
            f"{_ms(k['open_ack_p50_ms'])} / **{_ms(k['open_ack_p99_ms'])}** / "
            f"{_ms(k['open_ack_max_ms'])} | "
            f"{_ms(k['open_reply_p50_ms'])} / **{_ms(k['open_reply_p99_ms'])}** / "
            f"{_ms(k['open_reply_max_ms'])} |"
        )
    add("")
    ours, floor = med["ours"], med["floor"]
    add(
        f"Ours / floor, closed-loop events/s: **{med['ratio']:.2f}** (median of the per-run "
        f"ratios). At {report['rate']:.0f} events/s, ack p99: ours "
        f"**{_ms(ours['open_ack_p99_ms'])} ms**, floor **{_ms(floor['open_ack_p99_ms'])} ms**; "
        f"event to first reply p99: ours **{_ms(ours['open_reply_p99_ms'])} ms**, floor "
        f"**{_ms(floor['open_reply_p99_ms'])} ms**." + _saturated(ours, report["rate"])
    )
    add("")
    add(
        "CPU in the closed loop (share of one core, medians): "
        f"ours {ours['app_cpu_share']:.0%} (the app process, all threads), fake and driver "
        f"{ours['fake_cpu_share']:.0%} during its run; floor {floor['app_cpu_share']:.0%}, "
        f"fake and driver {floor['fake_cpu_share']:.0%}. "
        f"Messages per event (calibrated on a first student): ours "
        f"{_counts(results, 'ours')}, floor {_counts(results, 'floor')}."
    )
    add("")
    add("Targets:")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    for name, measured, ok in report["targets"]:
        add(f"| {name} | {measured} | {'PASS' if ok else 'FAIL'} |")
    if report["problems"]:
        add("")
        add("Problems: " + "; ".join(report["problems"][:10]))
    return "\n".join(lines) + "\n"


def _calls_per_event(results: list[RunResult], kind: str) -> str:
    phase = next(r.closed for r in results if r.kind == kind)
    calls = dict(sorted(phase.api_calls.items()))
    total = sum(calls.values()) / phase.events
    parts = ", ".join(f"{n / phase.events:.2f} `{m}`" for m, n in calls.items())
    return f"{total:.2f} ({parts})"


def _counts(results: list[RunResult], kind: str) -> str:
    counts = next(r.counts for r in results if r.kind == kind)
    return f"`hello` {counts[0]}, answers {'/'.join(str(c) for c in counts[1:])}"


def code_version() -> str:
    """The commit measured, and whether the work tree had changes on top of it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


def write_docs(text: str) -> None:
    """Replace (or append) the Slack section, keeping everything else in the file."""
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = current.find(SECTION)
    if start < 0:
        DOCS.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(SECTION))
    rest = current[end + 1 :] if end >= 0 else ""
    DOCS.write_text(current[:start] + text + ("\n" + rest if rest else ""))


# ----------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace, workdir: Path) -> list[RunResult]:
    clock = time.perf_counter()
    roster = prepare_roster(workdir, 1 + args.students + args.open_students)
    print(f"roster: {time.perf_counter() - clock:.1f} s", file=sys.stderr)
    results = []
    for run in range(args.repeat):
        for kind in KINDS if run % 2 == 0 else KINDS[::-1]:
            result = await run_one(
                kind,
                roster,
                workdir,
                run,
                closed_students=args.students,
                open_students=args.open_students,
                rate=args.rate,
            )
            results.append(result)
            c, o = result.closed, result.open
            print(
                f"run {run + 1}/{args.repeat} {kind}: {c.events_per_s:.0f} events/s "
                f"(ack p99 {c.ack_p99_ms:.1f} ms, reply p99 {c.reply_p99_ms:.1f} ms, "
                f"{c.app_cpu_ms_per_event:.2f} CPU ms/event); at {o.pushed_per_s:.0f}/s "
                f"ack p99 {o.ack_p99_ms:.1f} ms, reply p50 {o.reply_p50_ms:.1f} "
                f"p99 {o.reply_p99_ms:.1f} ms"
                + (f"; problems: {result.problems}" if result.problems else ""),
                file=sys.stderr,
            )
    return results


async def profile(args: argparse.Namespace, workdir: Path) -> str:
    """One run of ours with the app process profiled; the profile's top rows."""
    roster = prepare_roster(workdir, 1 + args.students + args.open_students)
    out = workdir / "ours.prof"
    result = await run_one(
        "ours",
        roster,
        workdir,
        0,
        closed_students=args.students,
        open_students=args.open_students,
        rate=args.rate,
        profile_out=out,
        profile_clock=args.profile,
    )
    c, o = result.closed, result.open
    head = (
        f"under cProfile ({args.profile} time): {c.events_per_s:.0f} events/s, "
        f"{c.app_cpu_ms_per_event:.2f} app CPU ms/event, ack p99 {c.ack_p99_ms:.1f} ms "
        f"(closed loop); open loop ack p99 {o.ack_p99_ms:.1f} ms; the profile covers the "
        f"whole app process (start, calibration, joining, both phases)\n"
    )
    if args.profile_keep:
        shutil.copyfile(out, args.profile_keep)
        head += f"stats saved to {args.profile_keep}\n"
    return head + profile_report(out, args.top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--students", type=int, default=None, help="closed loop (default 100)")
    parser.add_argument("--open-students", type=int, default=None, help="open loop (50)")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="open loop events/s")
    parser.add_argument("--repeat", type=int, default=None, help="runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (smoke test)")
    parser.add_argument("--write", action="store_true", help="rewrite the docs section")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="cpu",
        choices=("cpu", "wall"),
        help="one run of ours only, its app process under cProfile (all threads, CPU time or "
        "wall-clock time); print the top rows",
    )
    parser.add_argument("--top", type=int, default=40, help="profile rows to print")
    parser.add_argument("--profile-keep", help="with --profile: also save the pstats file here")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--profile-clock", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve == "ours":

        def serve() -> None:
            asyncio.run(serve_ours(args.port, args.base_url, args.token, args.database))

        if args.profile_out:
            profiled(serve, args.profile_out, args.profile_clock)
        else:
            serve()
        return 0
    if args.serve == "floor":
        asyncio.run(serve_floor(args.port, args.base_url, args.token))
        return 0

    args.students = args.students or (30 if args.quick else 100)
    args.open_students = args.open_students or (15 if args.quick else 50)
    args.repeat = args.repeat or (1 if args.quick else 3)
    command = "bench/slack.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="profilebot-bench-slack-") as tmp:
            print(asyncio.run(profile(args, Path(tmp))))
        return 0
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="profilebot-bench-slack-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))

    med = summarize(results)
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": machine_info(),
        "slack_bolt": slack_bolt.version.__version__,
        "slack_sdk": slack_sdk.version.__version__,
        "code": code_version(),
        "load": (load_before, os.getloadavg()[0]),
        "students": args.students,
        "open_students": args.open_students,
        "rate": args.rate,
        "repeat": args.repeat,
        "results": results,
        "median": med,
        "targets": targets(med, args.rate),
        "problems": [p for r in results for p in r.problems],
    }
    text = render(report, command.strip())
    if args.json:
        print(json.dumps({**report, "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(text)
    if args.write:
        write_docs(text)
        print(f"wrote {DOCS.relative_to(ROOT)}", file=sys.stderr)
    if report["problems"]:
        return 1
    return 1 if args.check and not all(ok for _, _, ok in report["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
