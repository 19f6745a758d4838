"""The terminal path and long conversations: turns per second through `profilebot chat` with
the answers piped in, against the service path; and what a turn costs early and late in a
50-, 400- and 800-step conversation.

    .venv/bin/python bench/console.py [--quick] [--repeat R] [--write] [--json] [--check]
    .venv/bin/python bench/console.py --profile [--steps N] [--top K]

The flows are generated (``long_flow``): text, choice, scale and yes/no questions in turn,
each saved to the profile; every scale question quotes the answer given two steps before and
every yes/no question has a `when` on it, so turns read earlier answers as real flows do.
The scripted answers go through every question; the outro ends the flow.

- console: the real command, ``python -m bot.cli chat --as bench --file FLOW``, on a SQLite
  file migrated beforehand, every answer written to its standard input at once (the way
  scripts and tests drive it). Start-up: from starting the process to its first question on
  standard output. Turns per second: answers / time from the first question to the outro.
  A turn's cost: the time between one question and the next reaching standard output.
- service (the baseline): ``ConversationService.handle`` in this process, same flow, same
  answers, on a SQLite file of its own: the turn every adapter runs, without the terminal.

Early and late: the median cost of turns 10 to 50, and of the last 40 turns (20 each in a
50-step flow). A turn must cost the same late as early (the ratio near 1), whatever the
conversation's length.

``--write`` replaces the section ``## The terminal and long conversations (bench/console.py)``
of docs/benchmarks.md (the rest is kept); ``--check`` exits 1 when a target is missed.
``--profile`` runs the console once under cProfile and prints the top functions.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path: put the repository root first
# too, for bench._common.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import gc
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from bench import _common as common
from bench._common import median
from bot.service import ConversationService
from dialogues import FlowRegistry, Inbound
from storage import Database, PeopleStore

SECTION = "## The terminal and long conversations (bench/console.py)"

STEPS = (50, 400, 800)
CONSOLE_STEPS = 400  # the flow the console's turns per second are measured on
TARGET_TURNS_PER_S = 1000.0  # console, CONSOLE_STEPS-step flow, start-up excluded
TARGET_LATE_RATIO = 1.25  # late / early turn cost, at every length
EARLY_FROM = 10  # turn 0 opens the conversation's caches; a few more warm them
WINDOW = 40  # turns in each of the early and the late window (fewer in a short flow)
OUTRO = "All done."
HANDLE = "bench"


def long_flow(steps: int) -> tuple[str, list[str]]:
    """A flow of ``steps`` questions, and answers that go through every one of them."""
    lines = ["id: long_flow", "version: 1", f"title: {steps} questions", f"outro: {OUTRO}"]
    lines.append("steps:")
    answers: list[str] = []
    for i in range(steps):
        lines.append(f"  - id: q{i}")
        kind = i % 4
        if kind == 0:
            lines += [f"    ask: 'Question {i}: in your own words?'", "    type: text"]
            answers.append(f"answer {i}")
        elif kind == 1:
            lines += [f"    ask: 'Question {i}: pick one'", "    type: choice"]
            lines.append("    options: [red, green, blue]")
            answers.append("2")
        elif kind == 2:
            lines.append(f"    ask: 'Question {i}: you said {{{{ answers.q{i - 2} }}}}. How much?'")
            lines += ["    type: scale", "    min: 1", "    max: 5"]
            answers.append("3")
        else:
            lines += [f"    ask: 'Question {i}: yes or no?'", "    type: yes_no"]
            lines.append(f"    when: \"answers.q{i - 2} != 'red'\"")
            answers.append("yes")
        lines.append(f"    save: profile.f{i}")
    return "\n".join(lines) + "\n", answers


@dataclass
class PathRun:
    """One flow through one path."""

    path: str  # "console" or "service"
    steps: int
    run: int
    turns_per_s: float
    mean_ms: float
    early_ms: float
    late_ms: float
    startup_s: float | None = None  # console: start to first question
    after_s: float | None = None  # console: outro to exit (the profile card, shutdown)
    problems: list[str] = field(default_factory=list)

    @property
    def late_ratio(self) -> float:
        return self.late_ms / self.early_ms


def _costs(path: str, steps: int, run: int, costs_ns: list[int], wall_s: float) -> PathRun:
    costs_ms = [c / 1e6 for c in costs_ns]
    return PathRun(
        path=path,
        steps=steps,
        run=run,
        turns_per_s=len(costs_ms) / wall_s,
        mean_ms=statistics.fmean(costs_ms),
        early_ms=median(costs_ms[EARLY_FROM : EARLY_FROM + _window(steps)]),
        late_ms=median(costs_ms[-_window(steps) :]),
    )


def _window(steps: int) -> int:
    return min(WINDOW, (steps - EARLY_FROM) // 2)


def _database(path: Path) -> str:
    """A SQLite file at the newest schema, as `profilebot chat` finds it on a second run."""
    url = f"sqlite:///{path}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    return url


# ----------------------------------------------------------------------------- the console


def _chat_command(flow_file: Path, profile_out: Path | None = None) -> list[str]:
    profiler = ["-m", "cProfile", "-o", str(profile_out)] if profile_out else []
    return [
        sys.executable,
        *profiler,
        "-m",
        "bot.cli",
        "chat",
        "--as",
        HANDLE,
        "--file",
        str(flow_file),
    ]


def _chat_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL")}
    root = str(common.ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return {**env, "DATABASE_URL": url, "DEFAULT_TIMEZONE": "UTC"}


def run_console(
    flow_file: Path,
    answers: list[str],
    workdir: Path,
    run: int,
    profile_out: Path | None = None,
) -> PathRun:
    """The real command with every answer piped in; times read off its standard output."""
    steps = len(answers)
    url = _database(workdir / f"console-{steps}-{run}.db")
    errors = workdir / f"console-{steps}-{run}.err"
    with errors.open("wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(
            _chat_command(flow_file, profile_out),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=workdir,
            env=_chat_env(url),
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        typed = "".join(a + "\n" for a in answers).encode()

        def type_answers() -> None:
            stdin.write(typed)
            stdin.close()

        asked: list[float] = []  # when each question reached standard output
        outro = None
        for line in stdout:
            now = time.perf_counter()
            if line.startswith(b"Question "):
                if not asked:
                    threading.Thread(target=type_answers, daemon=True).start()
                asked.append(now)
            elif line.startswith(OUTRO.encode()):
                outro = now
                break
        stdout.read()
        returncode = proc.wait(timeout=common.PHASE_TIMEOUT_S)
        ended = time.perf_counter()
    problems = []
    if returncode != 0:
        problems.append(f"console: exit {returncode}: {common.tail(errors)}")
    if outro is None or len(asked) != steps:
        problems.append(f"console {steps}: {len(asked)} questions, outro {outro is not None}")
        outro = outro or ended
    times = [*asked, outro]
    costs_ns = [round((b - a) * 1e9) for a, b in itertools.pairwise(times)]
    result = _costs("console", steps, run, costs_ns, outro - asked[0] if asked else 1.0)
    result.startup_s = (asked[0] if asked else ended) - started
    result.after_s = ended - outro
    result.problems = problems
    return result


# ----------------------------------------------------------------------------- the service


def run_service(flow_file: Path, answers: list[str], workdir: Path, run: int) -> PathRun:
    """The same flow and answers through ConversationService.handle, in this process."""
    steps = len(answers)
    db = Database(_database(workdir / f"service-{steps}-{run}.db"))
    try:
        registry = FlowRegistry()
        flow = registry.load_file(flow_file)
        registry.add(flow)
        service = ConversationService(db, registry, default_timezone="UTC")
        person = PeopleStore(db).ensure_student(HANDLE)
        service.open(person.id, flow, platform="bench", address=HANDLE)
        costs_ns: list[int] = []
        clock = time.perf_counter_ns
        gc.collect()
        started = time.perf_counter()
        outcome = None
        for answer in answers:
            t0 = clock()
            outcome = service.handle(
                person.id, Inbound.of_text(answer), platform="bench", address=HANDLE
            )
            costs_ns.append(clock() - t0)
        wall = time.perf_counter() - started
    finally:
        db.dispose()
    result = _costs("service", steps, run, costs_ns, wall)
    if outcome is None or not outcome.finished:
        result.problems.append(f"service {steps}: the flow did not finish")
    return result


# ----------------------------------------------------------------------------- the report


def bench(args: argparse.Namespace, workdir: Path) -> list[PathRun]:
    flows = {}
    for steps in args.steps:
        text, answers = long_flow(steps)
        path = workdir / f"flow-{steps}.yaml"
        path.write_text(text)
        flows[steps] = (path, answers)
    results: list[PathRun] = []
    for run in range(args.repeat):
        for steps, (path, answers) in flows.items():
            order = ("console", "service") if (run + steps) % 2 == 0 else ("service", "console")
            for which in order:
                runner = run_console if which == "console" else run_service
                result = runner(path, answers, workdir, run)
                results.append(result)
                print(
                    f"run {run + 1}/{args.repeat} {which} {steps} steps: "
                    f"{result.turns_per_s:.0f} turns/s, early {result.early_ms:.3f} ms, "
                    f"late {result.late_ms:.3f} ms"
                    + (f", start-up {result.startup_s:.2f} s" if result.startup_s else ""),
                    file=sys.stderr,
                )
    return results


def summarize(results: list[PathRun]) -> dict[tuple[str, int], dict[str, float]]:
    med: dict[tuple[str, int], dict[str, float]] = {}
    for key in sorted({(r.path, r.steps) for r in results}):
        runs = [r for r in results if (r.path, r.steps) == key]
        row = {
            name: median(getattr(r, name) for r in runs)
            for name in ("turns_per_s", "mean_ms", "early_ms", "late_ms", "late_ratio")
        }
        if key[0] == "console":
            row["startup_s"] = median(r.startup_s or 0.0 for r in runs)
            row["after_s"] = median(r.after_s or 0.0 for r in runs)
        med[key] = row
    return med


def _console_ratio(results: list[PathRun]) -> float:
    """Console / service turns per second on the CONSOLE_STEPS flow: the median of the runs'."""
    by_run: dict[int, dict[str, float]] = {}
    for r in results:
        if r.steps == CONSOLE_STEPS:
            by_run.setdefault(r.run, {})[r.path] = r.turns_per_s
    ratios = [t["console"] / t["service"] for t in by_run.values() if len(t) == 2]
    return median(ratios) if ratios else float("nan")


def targets(med: dict[tuple[str, int], dict[str, float]]) -> list[tuple[str, str, bool | None]]:
    console = med.get(("console", CONSOLE_STEPS))
    out: list[tuple[str, str, bool | None]] = [
        (
            f"`profilebot chat`, {CONSOLE_STEPS}-step flow piped in: "
            f"≥ {TARGET_TURNS_PER_S:,.0f} turns/s (start-up excluded)",
            f"{console['turns_per_s']:,.0f} turns/s" if console else "not measured",
            None if console is None else console["turns_per_s"] >= TARGET_TURNS_PER_S,
        )
    ]
    for path in ("console", "service"):
        ratios = {s: m["late_ratio"] for (p, s), m in med.items() if p == path}
        if ratios:
            worst = max(ratios.values())
            measured = ", ".join(f"{ratios[s]:.2f} at {s} steps" for s in sorted(ratios))
            out.append(
                (
                    f"{path}: a late turn costs ≤ {TARGET_LATE_RATIO}× an early one",
                    measured,
                    worst <= TARGET_LATE_RATIO,
                )
            )
    return out


def render(report: dict[str, Any], command: str) -> str:
    med = report["median"]
    results: list[PathRun] = report["results"]
    lines: list[str] = [SECTION, ""]
    add = lines.append
    add(
        "Turns per second through `profilebot chat` with the answers piped in (the way scripts "
        "and tests drive it), against the service path (`ConversationService.handle`, what "
        "every adapter's turn runs) measured in the same run; and the cost of a turn early "
        "and late in 50-, 400- and 800-step conversations, on both paths. The flows are "
        "generated: text, choice, scale and yes/no questions in turn, each saved to the "
        "profile, every scale question quoting the answer two steps before and every yes/no "
        "question with a `when` on it. The script answers every question."
    )
    add("")
    add(
        "- **console**: `python -m bot.cli chat --as bench --file FLOW` in a process of its "
        "own, on a SQLite file migrated beforehand, every answer written to its standard "
        "input at once. Start-up: from starting the process to its first question. Turns/s: "
        "answers / time from the first question to the outro (the profile card and exit "
        "after it are left out, and shown apart). A turn's cost: the time between one "
        "question and the next reaching standard output."
    )
    add(
        "- **service**: `ConversationService.handle` in the benchmark's process, same flow "
        "and answers, on a SQLite file of its own; a turn's cost is the call's."
    )
    add(
        f"- **early / late**: the median cost of turns {EARLY_FROM} to {EARLY_FROM + WINDOW} "
        f"and of the last {WINDOW} ({_window(50)} each in a 50-step flow); late / early near "
        "1 means a turn costs the same however long the conversation has been."
    )
    add("")
    add(
        "How a turn stays the same size: a conversation's state keeps its most recent answers "
        "and `/back` frames itself (16 at most) and archives older ones as rows, 8 at a "
        "time; a turn reads an archived answer only when a template or condition uses it, "
        "and archived frames only when `/back` reaches them. The console prints the replies "
        "its turn returns and marks them sent in its next turn's transaction (one "
        "transaction a turn, like every adapter)."
    )
    add("")
    add(
        "Before that (commit a435981, the same command on the same machine, 1-minute load "
        "average 1.4, 2026-12-03), the console ran the 400-step flow at 1,277 turns/s, 0.48 "
        "of the service path (419 turns/s in an earlier, busier run): it read the outbox back "
        "after every turn and marked each message sent in a transaction of its own, three "
        "transactions a turn. And a late turn cost more than an early one, on both paths, "
        "since every turn parsed and rewrote all the answers and the whole `/back` history: "
        "console 1.44× at 400 steps and 2.20× at 800, service 2.29× and 3.84×."
    )
    add("")
    add(
        "Run it with `make bench-console` or `.venv/bin/python bench/console.py [--quick]`; "
        "`--write` rewrites this "
        "section, `--profile` runs the console once under cProfile and prints the top "
        "functions."
    )
    add("")
    load = report["load"]
    versions = (
        f"SQLite {report['machine']['sqlite']}; 1-minute load average {load[0]:.1f} before the "
        f"runs and {load[1]:.1f} after (other work shares the machine)"
    )
    lines += common.provenance(command, report, versions)
    add("")
    add(
        f"{report['repeat']} run(s), console and service alternating which goes first; "
        "medians in bold."
    )
    add("")
    add("| path | steps | turns/s | mean ms | early ms | late ms | late / early | start-up s |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(results, key=lambda r: (r.steps, r.path, r.run)):
        startup = f"{r.startup_s:.2f}" if r.startup_s is not None else ""
        add(
            f"| {r.path}, run {r.run + 1} | {r.steps} | {r.turns_per_s:,.0f} | {r.mean_ms:.3f} "
            f"| {r.early_ms:.3f} | {r.late_ms:.3f} | {r.late_ratio:.2f} | {startup} |"
        )
    for (path, steps), m in sorted(med.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        startup = f"{m['startup_s']:.2f}" if "startup_s" in m else ""
        add(
            f"| **{path}, median** | {steps} | **{m['turns_per_s']:,.0f}** | {m['mean_ms']:.3f} "
            f"| **{m['early_ms']:.3f}** | **{m['late_ms']:.3f}** | **{m['late_ratio']:.2f}** "
            f"| {startup} |"
        )
    add("")
    console, service = med.get(("console", CONSOLE_STEPS)), med.get(("service", CONSOLE_STEPS))
    if console and service:
        add(
            f"Console / service at {CONSOLE_STEPS} steps: **{report['ratio']:.2f}** of the "
            "service path's turns/s (median of the per-run ratios; "
            f"{console['turns_per_s']:,.0f} vs "
            f"{service['turns_per_s']:,.0f}). After the outro the console printed the profile "
            f"card and exited in {console['after_s']:.2f} s (median)."
        )
        add("")
    lines += common.targets_table(report["targets"], report["problems"])
    return "\n".join(lines) + "\n"


def profile(args: argparse.Namespace, workdir: Path) -> str:
    steps = args.steps[-1]
    text, answers = long_flow(steps)
    flow_file = workdir / f"flow-{steps}.yaml"
    flow_file.write_text(text)
    out = workdir / "console.prof"
    result = run_console(flow_file, answers, workdir, 0, profile_out=out)
    head = (
        f"under cProfile, {steps} steps: {result.turns_per_s:.0f} turns/s, start-up "
        f"{result.startup_s:.2f} s; the profile covers the whole process\n"
    )
    return head + common.profile_report(out, args.top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="flow lengths")
    parser.add_argument("--repeat", type=int, default=None, help="runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (smoke test)")
    parser.add_argument("--write", action="store_true", help="rewrite the docs section")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--profile", action="store_true", help="profile the console once")
    parser.add_argument("--top", type=int, default=40, help="profile rows to print")
    args = parser.parse_args(argv)
    args.steps = args.steps or ([50, CONSOLE_STEPS] if args.quick else list(STEPS))
    args.repeat = args.repeat or (1 if args.quick else 3)
    command = "bench/console.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="profilebot-bench-console-") as tmp:
        if args.profile:
            print(profile(args, Path(tmp)))
            return 0
        results = bench(args, Path(tmp))
    med = summarize(results)
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "load": (load_before, os.getloadavg()[0]),
        "ratio": _console_ratio(results),
        "machine": common.machine_info(),
        "code": common.code_version(),
        "repeat": args.repeat,
        "results": results,
        "median": med,
        "targets": targets(med),
        "problems": [p for r in results for p in r.problems],
    }
    text = render(report, command.strip())
    if args.json:
        raw = {**report, "results": [asdict(r) for r in results]}
        raw["median"] = {f"{p} {s}": m for (p, s), m in med.items()}
        print(json.dumps(raw, indent=2))
    else:
        print(text)
    if args.write:
        common.write_section(SECTION, text)
        print(f"wrote {common.DOCS.relative_to(common.ROOT)}", file=sys.stderr)
    if report["problems"]:
        return 1
    return 1 if args.check and not all(ok for _, _, ok in report["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
