"""What the benchmarks share: machine and code description, statistics, CPU accounting, the
docs section they rewrite, the bot processes they start and stop, and the closed and open
loops that drive a bot in another process (bench/telegram.py, bench/slack.py; bench/turns.py
for the statistics and the report's pieces).

A private module with a name no installed package has: the scripts next to it are named after
the packages they measure (telegram.py, slack.py) and move their own folder to the end of
``sys.path`` so as not to shadow them; this module is imported as ``bench._common`` from the
repository root, which they put first.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"

PHASE_TIMEOUT_S = 180.0
QUIET_S = 0.15  # calibration: a turn's messages are all out after this long without one more

R = TypeVar("R")


# ----------------------------------------------------------------------------- statistics


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_ns:
        return float("nan")
    rank = max(1, min(len(sorted_ns), round(q / 100 * len(sorted_ns) + 0.5)))
    return sorted_ns[rank - 1] / 1e6


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- the report


def machine_info() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
    }


def code_version() -> str:
    """The commit measured, and whether the code had changes on top of it (the results file
    being rewritten does not count)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)docs/benchmarks.md",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


def ms(x: float) -> str:
    return f"{x:.1f}"


def provenance(command: str, report: dict[str, Any], versions: str) -> list[str]:
    """The lines saying what ran where: command, machine (and ``versions``), date, code."""
    m = report["machine"]
    return [
        f"Command: `{command}`  ",
        f"Machine: {m['cores']} cores, {m['cpu']}, {m['os']}, Python {m['python']}, {versions}  ",
        f"Date: {report['date']}  ",
        f"Code: {report['code']}",
    ]


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "PASS" if ok else "FAIL"


def targets_table(
    targets: Sequence[tuple[str, str, bool | None]], problems: Sequence[str]
) -> list[str]:
    """The "Targets:" table, then the problems (the first ten) if there were any."""
    lines = ["Targets:", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {name} | {measured} | {verdict(ok)} |" for name, measured, ok in targets]
    if problems:
        lines += ["", "Problems: " + "; ".join(problems[:10])]
    return lines


def saturated(k: dict[str, Any], rate: float, noun: str, who: str) -> str:
    """A sentence when ours could not take ``rate`` ``noun``s per second in the open loop."""
    if k["pushed_per_s"] >= 0.98 * rate:
        return ""
    return (
        f" Ours could not keep up with {rate:.0f} {noun}s/s: the {noun}s went in at "
        f"{k['pushed_per_s']:.0f}/s (median), so its latency is that of a saturated {who}."
    )


def cpu_sentence(
    med: dict[str, Any], other: str, share: str, who: str, noun: str, counts: dict[str, str]
) -> str:
    """Closed-loop CPU shares (``med[kind][share]``) and messages per ``noun`` of both kinds."""
    ours, them = med["ours"], med[other]
    return (
        "CPU in the closed loop (share of one core, medians): "
        f"ours {ours[share]:.0%} (the {who} process, all threads), fake and driver "
        f"{ours['fake_cpu_share']:.0%} during its run; {other} {them[share]:.0%}, "
        f"fake and driver {them['fake_cpu_share']:.0%}. "
        f"Messages per {noun} (calibrated on a first student): ours "
        f"{counts['ours']}, {other} {counts[other]}."
    )


def calls_per(api_calls: dict[str, int], count: int, skip: Iterable[str] = ()) -> str:
    """API calls per update or event, in all and by method (``skip`` left out)."""
    left_out = set(skip)
    calls = {m: n for m, n in sorted(api_calls.items()) if m not in left_out}
    total = sum(calls.values()) / count
    parts = ", ".join(f"{n / count:.2f} `{m}`" for m, n in calls.items())
    return f"{total:.2f} ({parts})"


def counts_text(counts: Sequence[int], first: str) -> str:
    """Messages per turn: the untimed first one (``first``) and the answers."""
    return f"`{first}` {counts[0]}, answers {'/'.join(str(c) for c in counts[1:])}"


def write_section(section: str, text: str) -> None:
    """Replace (or append) ``section`` of docs/benchmarks.md, keeping everything else."""
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = current.find(section)
    if start < 0:
        DOCS.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(section))
    rest = current[end + 1 :] if end >= 0 else ""
    DOCS.write_text(current[:start] + text + ("\n" + rest if rest else ""))


def report_options(doc: str | None, *, repeat: int) -> argparse.ArgumentParser:
    """The options of a benchmark that reports one section: ``--repeat``, ``--write`` (the
    section of docs/benchmarks.md), ``--json`` (the raw report), ``--check`` (exit 1 when a
    target is missed). Add the benchmark's own before ``run_report``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", action="store_true", help="print the raw report as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    return parser


def run_report(
    parser: argparse.ArgumentParser,
    script: str,
    section: str,
    bench: Callable[[argparse.Namespace, Path], dict[str, Any]],
    render: Callable[[dict[str, Any], str], str],
    *,
    shown: Callable[[str], str] = lambda arg: arg,
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse, run ``bench`` in a temporary folder, print its report (or the raw JSON) and
    write ``section`` with ``--write``; the arguments and the report, for the caller's
    ``--check``. ``shown``: how an argument is written in the section's command line (a
    database URL is not)."""
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"pb-{Path(script).stem}-") as tmp:
        report = bench(args, Path(tmp))
    command = " ".join(["python", script, *map(shown, sys.argv[1:])])
    text = render(report, command)
    print(json.dumps(report, indent=2) if args.json else text)
    if args.write:
        write_section(section, text)
    return args, report


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def launch(
    script: str,
    kind: str,
    options: Sequence[str],
    log_path: Path,
    *,
    profile_out: Path | None,
    profile_clock: str,
    env: dict[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """``script --serve kind options…`` in a process of its own, output to ``log_path``."""
    with open(log_path, "wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            "--serve",
            kind,
            *options,
            *(["--profile-out", str(profile_out)] if profile_out else []),
            *(["--profile-clock", profile_clock] if profile_out else []),
            stdout=log,
            stderr=log,
            cwd=str(ROOT),
            env=env,
        )


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def exit_problems(
    kind: str, proc: asyncio.subprocess.Process, log_path: Path, who: str
) -> list[str]:
    """A problem when the process did not end cleanly (0, or on our SIGTERM)."""
    if proc.returncode in (0, -signal.SIGTERM):
        return []
    return [f"{kind}: {who} exited with {proc.returncode}: {tail(log_path)}"]


def check_database(path: Path, *, completed: bool = False) -> list[str]:
    """Every conversation finished and every outbox message sent: the run did real work
    (``completed``: and at least one conversation was completed)."""
    con = sqlite3.connect(str(path))
    try:
        open_conversations = con.execute(
            "SELECT count(*) FROM conversation WHERE status IN ('active', 'paused', 'stopped')"
        ).fetchone()[0]
        unsent = con.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()[0]
        finished = con.execute(
            "SELECT count(*) FROM conversation WHERE status = 'completed'"
        ).fetchone()[0]
    finally:
        con.close()
    problems = []
    if open_conversations:
        problems.append(f"ours: {open_conversations} conversations left open")
    if unsent:
        problems.append(f"ours: {unsent} outbox messages not sent")
    if completed and not finished:
        problems.append("ours: no conversation completed")
    return problems


def stop_event() -> asyncio.Event:
    """Set on SIGINT or SIGTERM (the served bot's way to end)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


def quiet_heap() -> None:
    """Before a timed phase: keep this process's objects (the fake's record of every call,
    the roster) out of later full garbage collections, which otherwise stall the fake and
    the driver for ~100 ms at random moments, inflating whichever bot's latency they hit."""
    gc.collect()
    gc.freeze()


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


# ----------------------------------------------------------------------------- the loops


class _Call(Protocol):
    @property
    def method(self) -> str: ...


class _Fake(Protocol):
    @property
    def calls(self) -> Sequence[_Call]: ...


class Walker(Protocol):
    """One student going through the script: ``turn`` is the next one to send."""

    turn: int


W = TypeVar("W", bound=Walker)


class LoopDriver(Protocol[W]):
    """Sends a student's next turn (``push``) and calls ``on_ready`` once all its replies came."""

    on_ready: Callable[[W], None]

    @property
    def fake(self) -> _Fake: ...

    def push(self, walker: W) -> None: ...

    def reset(self) -> None:
        """Forget the latencies measured so far (a new phase starts)."""


@dataclass(slots=True)
class Measured:
    """What a loop measured besides latencies (the driver has those)."""

    count: int  # updates or events
    wall_s: float
    proc_cpu_s: float  # the bot's process
    fake_cpu_s: float  # this process: the fake and the driver
    api_calls: dict[str, int]  # API method -> calls
    pushed_per_s: float = float("nan")  # open loop: the rate turns really went in at
    max_push_lag_ms: float = float("nan")  # open loop: latest push behind its schedule
    starved: int = 0  # open loop: pushes that found no student ready


async def until(
    done: asyncio.Event, proc: asyncio.subprocess.Process, timeout: float, what: str, who: str
) -> None:
    """Wait for ``done``; fail early if the ``who`` process exits, or after ``timeout``."""
    waiting = asyncio.ensure_future(done.wait())
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({waiting, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        exited.cancel()
    if not done.is_set():
        reason = f"{who} exited ({proc.returncode})" if proc.returncode is not None else "timeout"
        raise RuntimeError(f"{what}: {reason}")


def _more(sent: Callable[[], int], than: int) -> Callable[[], bool]:
    return lambda: sent() > than


async def calibrate(
    turns: int,
    send: Callable[[int], Awaitable[None]],
    sent: Callable[[], int],
    wait_until: Callable[[Callable[[], bool], float], Awaitable[None]],
    proc: asyncio.subprocess.Process,
    noun: str,
    who: str,
) -> list[int]:
    """Messages per turn, from one student going through slowly (a warm-up): ``send(turn)``
    sends it, ``sent()`` counts the messages to that student so far."""
    counts = []
    for turn in range(turns):
        before = sent()
        await send(turn)
        try:
            await wait_until(_more(sent, before), 20.0)
        except AssertionError:
            raise RuntimeError(
                f"calibration: no reply to {noun} {turn} ({who} exit code {proc.returncode})"
            ) from None
        seen = sent()
        while True:
            await asyncio.sleep(QUIET_S)
            now = sent()
            if now == seen:
                break
            seen = now
        counts.append(seen - before)
    return counts


async def first_turn(
    driver: LoopDriver[W],
    walkers: Sequence[W],
    proc: asyncio.subprocess.Process,
    what: str,
    who: str,
) -> None:
    """Untimed: every student sends its first turn and gets all the replies to it."""
    remaining = len(walkers)
    done = asyncio.Event()

    def ready(walker: W) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            done.set()

    driver.on_ready = ready
    for walker in walkers:
        driver.push(walker)
    await until(done, proc, PHASE_TIMEOUT_S, what, who)


def _api_calls(fake: _Fake, since: int) -> dict[str, int]:
    return dict(Counter(c.method for c in fake.calls[since:]))


async def closed_loop(
    driver: LoopDriver[W],
    walkers: Sequence[W],
    proc: asyncio.subprocess.Process,
    last: int,
    who: str,
) -> Measured:
    """Throughput: everyone answers at once, each the moment its reply arrives."""
    remaining = len(walkers)
    done = asyncio.Event()

    def ready(walker: W) -> None:
        nonlocal remaining
        if walker.turn <= last:
            driver.push(walker)
            return
        remaining -= 1
        if remaining == 0:
            done.set()

    driver.on_ready = ready
    driver.reset()
    calls = len(driver.fake.calls)
    proc_cpu, fake_cpu = cpu_seconds(proc.pid), time.process_time()
    started = time.perf_counter()
    for walker in walkers:
        driver.push(walker)
    await until(done, proc, PHASE_TIMEOUT_S, "closed loop", who)
    wall = time.perf_counter() - started
    return Measured(
        len(walkers) * last,
        wall,
        cpu_seconds(proc.pid) - proc_cpu,
        time.process_time() - fake_cpu,
        _api_calls(driver.fake, calls),
    )


async def open_loop(
    driver: LoopDriver[W],
    walkers: Sequence[W],
    proc: asyncio.subprocess.Process,
    rate: float,
    last: int,
    who: str,
) -> Measured:
    """Latency: turns pushed at ``rate`` per second, whatever the bot is doing."""
    ready_walkers: deque[W] = deque(walkers)
    kick = asyncio.Event()
    remaining = len(walkers)
    done = asyncio.Event()

    def ready(walker: W) -> None:
        nonlocal remaining
        if walker.turn <= last:
            ready_walkers.append(walker)
            kick.set()
            return
        remaining -= 1
        if remaining == 0:
            done.set()

    driver.on_ready = ready
    driver.reset()
    total = len(walkers) * last
    interval_ns = 1e9 / rate
    starved, max_lag_ns = 0, 0
    calls = len(driver.fake.calls)
    proc_cpu, fake_cpu = cpu_seconds(proc.pid), time.process_time()
    started = time.perf_counter_ns()
    for k in range(total):
        due = started + k * interval_ns
        delay = (due - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        if not ready_walkers:
            starved += 1
            while not ready_walkers:
                kick.clear()
                await until(kick, proc, PHASE_TIMEOUT_S, "open loop", who)
        driver.push(ready_walkers.popleft())
        max_lag_ns = max(max_lag_ns, int(time.perf_counter_ns() - due))
    pushed_s = (time.perf_counter_ns() - started) / 1e9
    await until(done, proc, PHASE_TIMEOUT_S, "open loop", who)
    wall = (time.perf_counter_ns() - started) / 1e9
    return Measured(
        total,
        wall,
        cpu_seconds(proc.pid) - proc_cpu,
        time.process_time() - fake_cpu,
        _api_calls(driver.fake, calls),
        pushed_per_s=total / pushed_s,
        max_push_lag_ms=max_lag_ns / 1e6,
        starved=starved,
    )


async def alternate(
    kinds: Sequence[str],
    repeat: int,
    run_one: Callable[[str, int], Awaitable[R]],
    line: Callable[[R], str],
) -> list[R]:
    """``repeat`` runs of every kind, alternating which goes first; a line on stderr each."""
    results = []
    for run in range(repeat):
        for kind in kinds if run % 2 == 0 else kinds[::-1]:
            result = await run_one(kind, run)
            results.append(result)
            print(f"run {run + 1}/{repeat} {kind}: {line(result)}", file=sys.stderr)
    return results


# ----------------------------------------------------------------------------- the command


def add_run_options(
    parser: argparse.ArgumentParser,
    *,
    students: int,
    open_students: int,
    rate: float,
    noun: str,
    who: str,
) -> None:
    """The options of a timed run and of ``--profile`` (``--top`` last)."""
    parser.add_argument(
        "--students", type=int, default=None, help=f"closed loop (default {students})"
    )
    parser.add_argument(
        "--open-students", type=int, default=None, help=f"open loop ({open_students})"
    )
    parser.add_argument("--rate", type=float, default=rate, help=f"open loop {noun}s/s")
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
        help=f"one run of ours only, its {who} process under cProfile (all threads, CPU time or "
        "wall-clock time); print the top rows",
    )
    parser.add_argument("--top", type=int, default=40, help="profile rows to print")


def add_serve_options(parser: argparse.ArgumentParser, kinds: Sequence[str]) -> None:
    """The hidden options the benchmark starts its bots' processes with."""
    parser.add_argument("--serve", choices=kinds, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--profile-clock", default="cpu", help=argparse.SUPPRESS)


def finish(
    args: argparse.Namespace,
    report: dict[str, Any],
    results: Sequence[Any],
    text: str,
    section: str,
) -> int:
    """Print the section (or the JSON), write it with ``--write``; the exit status."""
    if args.json:
        print(json.dumps({**report, "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(text)
    if args.write:
        write_section(section, text)
        print(f"wrote {DOCS.relative_to(ROOT)}", file=sys.stderr)
    if report["problems"]:
        return 1
    return 1 if args.check and not all(ok for _, _, ok in report["targets"]) else 0
