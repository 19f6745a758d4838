"""Telegram end to end: updates per second and reply latency, profilebot vs a hand-written bot.

    .venv/bin/python bench/telegram.py [--quick] [--repeat R] [--students N] [--open-students M]
                                       [--rate U] [--write] [--json] [--check]
    .venv/bin/python bench/telegram.py --profile [cpu|wall] [--quick]

Both bots run in their own process and long-poll the same fake Bot API
(``tests/telegram/fake_bot_api.py``), which runs in this process on 127.0.0.1 together with
the load driver. Every simulated student is a Telegram user that types the same 13 answers of
``this_is_me`` (one update each); it sends its next answer only once the bot's reply to the
previous one has reached the fake.

- ours: ``TelegramBot.run_polling`` (the product's long polling) on a SQLite file database;
  students were added and given invite codes beforehand, and link their Telegram account with
  ``/start <code>`` (untimed), which opens ``this_is_me``. Each update is one durable turn
  (de-duplication, engine, answer, profile, outbox, commit), then the outbox delivers the
  replies (pacing effectively off) and the answered question is edited.
- baseline: a minimal python-telegram-bot ``Application`` with a ``ConversationHandler`` (one
  state per question, each handler stores the answer in ``context.user_data`` and replies with
  the next question via ``reply_text``), no persistence, polled by PTB's own ``Updater``.

Two phases per bot and run:

- closed loop (throughput): all ``--students`` start at once and each answers as soon as its
  reply arrives; updates/s = answers / time from the first push to the last reply;
- open loop (latency): updates pushed at a fixed ``--rate`` (100/s) across ``--open-students``
  students, round-robin over those whose previous reply arrived.

Latency of one update: from the moment the fake makes it available (``push_text`` returned)
to the moment the fake receives the first ``sendMessage`` to that chat after it.

``--write`` replaces the section ``## Telegram end to end (bench/telegram.py)`` of
docs/benchmarks.md (the rest of the file is kept); ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file (telegram.py)
# would shadow python-telegram-bot: move that folder last, and put the repository root
# (for tests/, where the fake Bot API lives) first.
sys.path.sort(key=lambda p: Path(p or ".").resolve() == Path(__file__).resolve().parent)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import telegram
from telegram import Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bench import _common as common
from bench._common import median, ms, percentile
from bot.adapters.telegram import TelegramBot
from bot.app import App
from bot.config import load_settings
from bot.delivery import Pacer
from bot.runtime import tune_for_serving
from dialogues import FlowRegistry, Step, StepType
from tests.telegram.fake_bot_api import FakeBotAPI, FakeUser

SECTION = "## Telegram end to end (bench/telegram.py)"

TARGET_RATIO = 0.5  # ours / baseline, closed-loop updates per second
TARGET_P99_MS = 50.0  # open loop at TARGET_RATE updates/s
TARGET_RATE = 100.0

PACER = Pacer(per_address_rate=1e6, per_address_burst=1000, overall_rate=1e6, overall_burst=1000)
"""Pacing effectively off: this measures the bot, not Telegram's rate limits."""

USER_ID_BASE = 500_000

# The typed answers to this_is_me's 13 questions (the same as the end-to-end test's typed run:
# option numbers, values, labels, an own "other", a scale label, /skip on an optional one).
SCRIPT: tuple[str, ...] = (
    "Ana",
    "2, 5",
    "music, Science and how things work, knitting",
    "/skip",
    "doing",
    "silent",
    "3",
    "EVENING",
    "1",
    "Maths",
    "asking a friend",
    "Not sure yet",
    "We speak Tagalog at home",
)

KINDS = ("ours", "baseline")
LABELS = {
    "ours": "ours (profilebot, SQLite)",
    "baseline": "baseline (PTB ConversationHandler, in memory)",
}


# ----------------------------------------------------------------------------- the fake


class BenchFake(FakeBotAPI):
    """The fake Bot API, telling the driver when a ``sendMessage`` reaches it (and to whom)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_send: Callable[[int, int], None] | None = None

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        received_ns = time.perf_counter_ns()
        message = await super()._send_message(params)
        if self.on_send is not None:
            self.on_send(int(message["chat"]["id"]), received_ns)
        return message


# ----------------------------------------------------------------------------- the driver


@dataclass(slots=True)
class Chat:
    """One student's private chat: which update goes next and what is still due for it."""

    user: FakeUser
    start: str  # "/start <invite code>"
    turn: int = 0  # the next update: 0 is /start, 1..len(SCRIPT) the answers
    awaiting: int = 0  # messages still due for the update in flight
    pushed_ns: int = 0  # when the update in flight was pushed; 0 once its first reply came


class Driver:
    """Pushes students' updates into the fake and times the bot's replies to them.

    ``counts[turn]`` is how many messages the bot sends for update ``turn`` (calibrated on
    one student first): the student is ready for its next update once all have arrived.
    """

    def __init__(self, fake: BenchFake, counts: Sequence[int]) -> None:
        self.fake = fake
        self.counts = counts
        self.chats: dict[int, Chat] = {}
        self.latencies_ns: list[int] = []
        self.unexpected = 0
        self.on_ready: Callable[[Chat], None] = lambda chat: None
        fake.on_send = self._sent

    def add(self, chat: Chat) -> None:
        self.chats[chat.user.id] = chat

    def push(self, chat: Chat) -> None:
        text = chat.start if chat.turn == 0 else SCRIPT[chat.turn - 1]
        chat.awaiting = self.counts[chat.turn]
        self.fake.push_text(chat.user, text)
        chat.pushed_ns = time.perf_counter_ns()

    def _sent(self, chat_id: int, received_ns: int) -> None:
        chat = self.chats.get(chat_id)
        if chat is None:
            return  # the calibration student
        if chat.awaiting == 0:
            self.unexpected += 1
            return
        if chat.pushed_ns:
            self.latencies_ns.append(received_ns - chat.pushed_ns)
        if chat.pushed_ns:
            self.latencies_ns.append(received_ns - chat.pushed_ns)
            chat.pushed_ns = 0
        chat.awaiting -= 1
        if chat.awaiting == 0:
            chat.turn += 1
            self.on_ready(chat)

    def reset(self) -> None:
        self.latencies_ns = []


async def calibrate(
    fake: BenchFake, user: FakeUser, start: str, proc: asyncio.subprocess.Process
) -> list[int]:
    """Messages the bot sends per update, from one student going through slowly (a warm-up)."""

    async def send(turn: int) -> None:
        fake.push_text(user, start if turn == 0 else SCRIPT[turn - 1])

    def sent() -> int:
        return len(fake.sent(user.id))

    return await common.calibrate(
        len(SCRIPT) + 1, send, sent, fake.wait_until, proc, "update", "bot"
    )


@dataclass(slots=True)
class Phase:
    """One measured phase of one bot in one run."""

    updates: int
    wall_s: float
    updates_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bot_cpu_s: float
    fake_cpu_s: float
    pushed_per_s: float = float("nan")  # open loop: the rate updates really went in at
    max_push_lag_ms: float = float("nan")  # open loop: latest push behind its schedule
    starved: int = 0  # open loop: pushes that found no student ready
    api_calls: dict[str, int] = field(default_factory=dict)  # Bot API method -> calls

    @property
    def bot_cpu_ms_per_update(self) -> float:
        return self.bot_cpu_s / self.updates * 1e3 if self.updates else float("nan")

    @property
    def bot_cpu_share(self) -> float:
        return self.bot_cpu_s / self.wall_s if self.wall_s else float("nan")

    @property
    def fake_cpu_share(self) -> float:
        return self.fake_cpu_s / self.wall_s if self.wall_s else float("nan")


def _phase(latencies_ns: list[int], m: common.Measured) -> Phase:
    ordered = sorted(latencies_ns)
    return Phase(
        updates=m.count,
        wall_s=m.wall_s,
        updates_per_s=m.count / m.wall_s,
        p50_ms=percentile(ordered, 50),
        p90_ms=percentile(ordered, 90),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1] / 1e6 if ordered else float("nan"),
        bot_cpu_s=m.proc_cpu_s,
        fake_cpu_s=m.fake_cpu_s,
        pushed_per_s=m.pushed_per_s,
        max_push_lag_ms=m.max_push_lag_ms,
        starved=m.starved,
        api_calls=m.api_calls,
    )


async def closed_loop(
    driver: Driver, chats: Sequence[Chat], proc: asyncio.subprocess.Process
) -> Phase:
    """Throughput: everyone answers at once, each the moment its reply arrives."""
    measured = await common.closed_loop(driver, chats, proc, len(SCRIPT), "bot")
    return _phase(driver.latencies_ns, measured)


async def open_loop(
    driver: Driver, chats: Sequence[Chat], proc: asyncio.subprocess.Process, rate: float
) -> Phase:
    """Latency: updates pushed at ``rate`` per second, whatever the bot is doing."""
    measured = await common.open_loop(driver, chats, proc, rate, len(SCRIPT), "bot")
    return _phase(driver.latencies_ns, measured)


# ----------------------------------------------------------------------------- one run


@dataclass(slots=True)
class Roster:
    """A database with every student added and invited (ours), copied for each run."""

    path: Path
    codes: list[str]  # [0] is the calibration student


def prepare_roster(workdir: Path, students: int) -> Roster:
    path = workdir / "roster.db"
    app = App.create(load_settings(database_url=f"sqlite:///{path}"))
    try:
        codes = []
        for i in range(students):
            person = app.people.add(f"Student {i}", "student", handle=f"student{i:05d}")
            codes.append(app.invites.issue(person.id).code)
    finally:
        app.db.dispose()
    return Roster(path, codes)


@dataclass(slots=True)
class RunResult:
    kind: str
    closed: Phase
    open: Phase
    counts: list[int]
    problems: list[str] = field(default_factory=list)


async def run_one(
    kind: str,
    roster: Roster,
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
        shutil.copyfile(roster.path, database)
    log_path = workdir / f"{kind}-{run}.log"
    async with BenchFake() as fake:
        proc = await common.launch(
            str(Path(__file__).resolve()),
            kind,
            ["--base-url", fake.url, "--token", fake.token, "--database", str(database)],
            log_path,
            profile_out=profile_out,
            profile_clock=profile_clock,
        )
        try:
            result = await _drive(fake, proc, kind, roster, closed_students, open_students, rate)
        except RuntimeError as exc:
            raise RuntimeError(f"{kind}, run {run + 1}: {exc}\n{common.tail(log_path)}") from None
        finally:
            await common.stop(proc)
        result.problems += [
            f"{kind}: Telegram refused {e.method}: {e.description}" for e in fake.errors[:5]
        ]
    result.problems += common.exit_problems(kind, proc, log_path, "bot")
    if kind == "ours":
        result.problems += common.check_database(database)
    return result


async def _drive(
    fake: BenchFake,
    proc: asyncio.subprocess.Process,
    kind: str,
    roster: Roster,
    closed_students: int,
    open_students: int,
    rate: float,
) -> RunResult:
    deadline = time.monotonic() + 60
    while not fake.calls_to("getUpdates"):  # the bot is up and polling
        if proc.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError("the bot did not start polling")
        with contextlib.suppress(AssertionError):
            await fake.wait_until(lambda: bool(fake.calls_to("getUpdates")), 0.5)
    chats = [
        Chat(fake.user(USER_ID_BASE + i, f"Student{i}"), f"/start {code}")
        for i, code in enumerate(roster.codes)
    ]
    counts = await calibrate(fake, chats[0].user, chats[0].start, proc)
    driver = Driver(fake, counts)
    closed = chats[1 : 1 + closed_students]
    opened = chats[1 + closed_students : 1 + closed_students + open_students]
    for chat in closed + opened:
        driver.add(chat)
    await common.first_turn(driver, closed + opened, proc, "linking", "bot")
    common.quiet_heap()
    throughput = await closed_loop(driver, closed, proc)
    common.quiet_heap()
    latency = await open_loop(driver, opened, proc, rate)
    problems = []
    if driver.unexpected:
        problems.append(f"{kind}: {driver.unexpected} messages nobody was waiting for")
    return RunResult(kind, throughput, latency, counts, problems)


# ----------------------------------------------------------------------------- the bots


async def serve_ours(base_url: str, token: str, database: str) -> None:
    """profilebot as `profilebot run --platform telegram` runs it, pacing off."""
    app = App.create(
        load_settings(
            database_url=f"sqlite:///{database}",
            telegram_bot_token=token,
            telegram_api_base_url=base_url,
        )
    )
    stop = common.stop_event()
    try:
        async with TelegramBot(app, pacer=PACER) as bot:
            tune_for_serving()  # as `serve` does
            await bot.run_polling(stop)
    finally:
        app.db.dispose()


OUTRO = "Thanks! Your profile is saved."


def baseline_questions() -> list[tuple[str, str]]:
    """(step id, question text) of this_is_me, templates filled with a constant."""
    flow = FlowRegistry().get("this_is_me")
    return [
        (node.id, re.sub(r"\{\{.*?\}\}", "there", node.ask))
        for node in flow.iter_steps()
        if isinstance(node, Step) and node.type is not StepType.MESSAGE
    ]


def baseline_handler() -> ConversationHandler[ContextTypes.DEFAULT_TYPE]:
    """What a developer writes by hand: one state per question, answers in user_data."""
    questions = baseline_questions()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None
        await update.message.reply_text(questions[0][1])
        return 0

    def state(i: int) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Any]:
        async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
            message = update.message
            assert message is not None and context.user_data is not None
            context.user_data[questions[i][0]] = message.text
            if i + 1 < len(questions):
                await message.reply_text(questions[i + 1][1])
                return i + 1
            await message.reply_text(OUTRO)
            return ConversationHandler.END

        return answer

    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={i: [MessageHandler(filters.TEXT, state(i))] for i in range(len(questions))},
        fallbacks=[],
    )


async def serve_baseline(base_url: str, token: str) -> None:
    """The baseline bot, polled by PTB's own Updater (its defaults)."""
    application = Application.builder().token(token).base_url(f"{base_url}/bot").build()
    application.add_handler(baseline_handler())
    stop = common.stop_event()
    async with application:
        updater = application.updater
        assert updater is not None
        await application.start()
        await updater.start_polling()
        await stop.wait()
        await updater.stop()
        await application.stop()


# ----------------------------------------------------------------------------- report


def summarize(results: list[RunResult]) -> dict[str, Any]:
    by = {kind: [r for r in results if r.kind == kind] for kind in KINDS}
    med: dict[str, Any] = {}
    for kind, rows in by.items():
        med[kind] = {
            "updates_per_s": median(r.closed.updates_per_s for r in rows),
            "closed_p50_ms": median(r.closed.p50_ms for r in rows),
            "closed_p99_ms": median(r.closed.p99_ms for r in rows),
            "cpu_ms_per_update": median(r.closed.bot_cpu_ms_per_update for r in rows),
            "bot_cpu_share": median(r.closed.bot_cpu_share for r in rows),
            "fake_cpu_share": median(r.closed.fake_cpu_share for r in rows),
            "open_p50_ms": median(r.open.p50_ms for r in rows),
            "open_p99_ms": median(r.open.p99_ms for r in rows),
            "open_max_ms": median(r.open.max_ms for r in rows),
            "pushed_per_s": median(r.open.pushed_per_s for r in rows),
        }
    med["ratio"] = median(
        o.closed.updates_per_s / b.closed.updates_per_s
        for o, b in zip(by["ours"], by["baseline"], strict=True)
    )
    return med


def targets(med: dict[str, Any], rate: float) -> list[tuple[str, str, bool]]:
    ours = med["ours"]
    return [
        (
            f"ours ≥ {TARGET_RATIO} × the baseline's updates/s",
            f"{med['ratio']:.2f} × ({ours['updates_per_s']:,.0f} vs "
            f"{med['baseline']['updates_per_s']:,.0f} updates/s)",
            med["ratio"] >= TARGET_RATIO,
        ),
        (
            f"ours p99 < {TARGET_P99_MS:.0f} ms at {rate:.0f} updates/s",
            f"{ours['open_p99_ms']:.1f} ms"
            + (
                f" (updates went in at {ours['pushed_per_s']:.0f}/s)"
                if common.saturated(ours, rate, "update", "bot")
                else ""
            ),
            ours["open_p99_ms"] < TARGET_P99_MS,
        ),
    ]


def render(report: dict[str, Any], command: str) -> str:
    med, results = report["median"], report["results"]
    lines: list[str] = []
    add = lines.append
    add(SECTION)
    add("")
    add(
        "Updates per second end to end (fake Bot API → bot → storage → `sendMessage` back at "
        "the fake), and the time from an update becoming available to the first reply to it, "
        "for profilebot and, in the same run against the same fake, a minimal "
        "python-telegram-bot bot written by hand (`ConversationHandler`, one state per "
        "question, answers in `context.user_data`, no storage). The students type the 13 "
        "answers of `this_is_me` (numbers, values, labels, an own option, a scale label, "
        "`/skip`); each sends its next answer once the reply to the previous one arrived."
    )
    add("")
    add(
        "Setup: the fake (`tests/telegram/fake_bot_api.py`, on 127.0.0.1) and the load driver "
        "run in the benchmark's process; each bot runs in a process of its own and long-polls "
        "the fake, so on this 2-core machine the bot has a core to itself, as it would "
        "against Telegram. profilebot runs `TelegramBot.run_polling` on a SQLite file "
        "(the default) with pacing effectively off (`Pacer(per_address_rate=1e6, "
        "per_address_burst=1000, overall_rate=1e6, overall_burst=1000)`); its students were "
        "added with invite codes and linked their account with `/start <code>` before the "
        "timed phases. The baseline is polled by PTB's own `Updater` "
        "(`app.updater.start_polling()`, PTB's defaults: updates handled one at a time), the "
        "code a developer would write. Bot API calls per update besides `getUpdates` "
        f"(closed loop): ours {_calls_per_update(results, 'ours')}, baseline "
        f"{_calls_per_update(results, 'baseline')}."
    )
    add("")
    add(
        "- **closed loop** (throughput): every student starts at once and answers the moment "
        "its reply arrives; updates/s = answers / time from the first push to the last reply."
    )
    add(
        f"- **open loop** (latency): updates pushed at {report['rate']:.0f}/s, round-robin over "
        f"{report['open_students']} students whose previous reply had arrived (when none has, "
        "the push waits: `pushed/s` below the target rate means the bot could not keep up)."
    )
    add("")
    add(
        "Before each timed phase the benchmark's own process collects and freezes its heap "
        "(`gc.freeze`): its full garbage collections (~100 ms with the fake's record of every "
        "call) would otherwise stall the fake at random moments and land in whichever bot's "
        "latency they hit. The bots' processes are not touched (profilebot freezes its "
        "start-up heap itself when it starts serving)."
    )
    add("")
    add(
        "The machine is shared, and the latency tail follows whatever else runs on it: on "
        "2026-11-30, with other tenants busy (1-minute load about 1 before the run), three "
        "full runs of the same code gave open-loop p99s of 45–78 ms, while the p50 stayed at "
        "9–10 ms; the same evening, on a quiet machine, the runs below."
    )
    add("")
    add(
        "Run it with `make bench-telegram` or `.venv/bin/python bench/telegram.py [--quick]`; "
        "`--write` rewrites this section, `--profile [cpu|wall]` runs ours once with its bot "
        "process under cProfile (every thread) and prints the top functions."
    )
    add("")
    versions = f"python-telegram-bot {report['ptb']}, SQLite {report['machine']['sqlite']}"
    lines += common.provenance(command, report, versions)
    add("")
    add(
        f"{report['students']} students in the closed loop ({report['students'] * len(SCRIPT)} "
        f"updates), {report['open_students']} in the open loop "
        f"({report['open_students'] * len(SCRIPT)} updates); {report['repeat']} run(s), the "
        "bots alternating which goes first; medians in bold."
    )
    add("")
    add(
        "| | closed: updates/s | closed: p50 ms | closed: p99 ms | bot CPU ms/update "
        "| open: pushed/s | open: p50 ms | open: p99 ms | open: max ms |"
    )
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        for i, r in enumerate(x for x in results if x.kind == kind):
            c, o = r.closed, r.open
            add(
                f"| {kind}, run {i + 1} | {c.updates_per_s:,.0f} | {ms(c.p50_ms)} | "
                f"{ms(c.p99_ms)} | {c.bot_cpu_ms_per_update:.2f} | {o.pushed_per_s:.0f} | "
                f"{ms(o.p50_ms)} | {ms(o.p99_ms)} | {ms(o.max_ms)} |"
            )
    for kind in KINDS:
        k = med[kind]
        add(
            f"| **{LABELS[kind]}, median** | **{k['updates_per_s']:,.0f}** | "
            f"{ms(k['closed_p50_ms'])} | {ms(k['closed_p99_ms'])} | "
            f"{k['cpu_ms_per_update']:.2f} | {k['pushed_per_s']:.0f} | "
            f"**{ms(k['open_p50_ms'])}** | **{ms(k['open_p99_ms'])}** | "
            f"{ms(k['open_max_ms'])} |"
        )
    add("")
    ours, base = med["ours"], med["baseline"]
    add(
        f"Ours / baseline, closed-loop updates/s: **{med['ratio']:.2f}** (median of the "
        f"per-run ratios). At {report['rate']:.0f} updates/s, p99 from update available to "
        f"reply received: ours **{ms(ours['open_p99_ms'])} ms**, baseline "
        f"**{ms(base['open_p99_ms'])} ms**."
        + common.saturated(ours, report["rate"], "update", "bot")
    )
    add("")
    counts = {kind: _counts(results, kind) for kind in KINDS}
    add(common.cpu_sentence(med, "baseline", "bot_cpu_share", "bot", "update", counts))
    add("")
    lines += common.targets_table(report["targets"], report["problems"])
    return "\n".join(lines) + "\n"


def _calls_per_update(results: list[RunResult], kind: str) -> str:
    phase = next(r.closed for r in results if r.kind == kind)
    return common.calls_per(phase.api_calls, phase.updates, skip=("getUpdates",))


def _counts(results: list[RunResult], kind: str) -> str:
    return common.counts_text(next(r.counts for r in results if r.kind == kind), "/start")


# ----------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace, workdir: Path) -> list[RunResult]:
    clock = time.perf_counter()
    roster = prepare_roster(workdir, 1 + args.students + args.open_students)
    print(f"roster: {time.perf_counter() - clock:.1f} s", file=sys.stderr)

    async def one(kind: str, run: int) -> RunResult:
        return await run_one(
            kind,
            roster,
            workdir,
            run,
            closed_students=args.students,
            open_students=args.open_students,
            rate=args.rate,
        )

    def line(result: RunResult) -> str:
        c, o = result.closed, result.open
        return (
            f"{c.updates_per_s:.0f} updates/s "
            f"(p99 {c.p99_ms:.1f} ms, {c.bot_cpu_ms_per_update:.2f} CPU ms/update); "
            f"at {o.pushed_per_s:.0f}/s p50 {o.p50_ms:.1f} p99 {o.p99_ms:.1f} "
            f"max {o.max_ms:.1f} ms"
        )

    return await common.alternate(KINDS, args.repeat, one, line)


async def profile(args: argparse.Namespace, workdir: Path) -> str:
    """One run of ours with the bot process profiled; the profile's top rows."""
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
    c = result.closed
    head = (
        f"under cProfile ({args.profile} time): {c.updates_per_s:.0f} updates/s, "
        f"{c.bot_cpu_ms_per_update:.2f} bot CPU ms/update (closed loop); the profile covers "
        f"the whole bot process (start, "
        f"calibration, linking, both phases)\n"
    )
    return head + common.profile_report(out, args.top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    common.add_run_options(
        parser, students=120, open_students=60, rate=TARGET_RATE, noun="update", who="bot"
    )
    common.add_serve_options(parser, KINDS)
    args = parser.parse_args(argv)

    args = parser.parse_args(argv)

    if args.serve == "ours":

        def serve() -> None:
            asyncio.run(serve_ours(args.base_url, args.token, args.database))

        if args.profile_out:
            common.profiled(serve, args.profile_out, args.profile_clock)
        else:
            serve()
        return 0
    if args.serve == "baseline":
        asyncio.run(serve_baseline(args.base_url, args.token))
        return 0

    args.students = args.students or (40 if args.quick else 120)
    args.open_students = args.open_students or (20 if args.quick else 60)
    args.repeat = args.repeat or (1 if args.quick else 3)
    command = "bench/telegram.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="profilebot-bench-tg-") as tmp:
            print(asyncio.run(profile(args, Path(tmp))))
        return 0
    with tempfile.TemporaryDirectory(prefix="profilebot-bench-tg-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))

    med = summarize(results)
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": common.machine_info(),
        "ptb": telegram.__version__,
        "code": common.code_version(),
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
    return common.finish(args, report, results, text, SECTION)


if __name__ == "__main__":
    sys.exit(main())
