"""How quickly the command line answers: each command as a real process, the way people run it.

    .venv/bin/python bench/cli.py [--repeat N] [--steps S] [--against CHECKOUT]
                                  [--write] [--json] [--check]

Every command is started as ``profilebot ...`` (the entry point next to this interpreter,
``.venv/bin/profilebot``) in a process of its own, with this checkout's code first on
``PYTHONPATH``, and timed from start to exit (wall clock, output to /dev/null):

- the floor: ``python -c pass`` with the same interpreter, what any Python command costs;
- ``profilebot --help``;
- ``profilebot flows list``;
- ``profilebot profile show STUDENT --json`` and ``profilebot plan show STUDENT --json`` on an
  up-to-date SQLite database with one student who has completed ``this_is_me`` and
  ``goal_setting`` (filled in untimed, through ``ConversationService``);
- ``profilebot flows check long.yaml``: a valid flow of ``--steps`` (1,000) steps written by this
  script, every kind of question, templates that name earlier answers, ``when:`` conditions
  and ``next:`` rules.

Each round runs every command once, in the same order (the floor first), so load on the
machine hits all of them alike; medians over ``--repeat`` (5) rounds. ``--against CHECKOUT``
also runs each command with another checkout's code (e.g. the main branch) in the same rounds,
for a before/after in one run.

``--write`` replaces the section ``## Command line (bench/cli.py)`` of docs/benchmarks.md (the
rest of the file is kept); ``--check`` exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path: put the repository root first
# too, for bench._common and bench.turns.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common
from bench.turns import drive, make_students, step_index
from bot.service import ConversationService
from dialogues import FlowRegistry
from storage import Database, PeopleStore

SECTION = "## Command line (bench/cli.py)"
STUDENT = "hana"
LONG_FLOW = "long.yaml"
TARGET_HELP_MS = 250.0
TARGET_READ_MS = 500.0
TARGET_CHECK_MS = 1000.0


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # as shown in the report
    argv: tuple[str, ...]  # after the program
    target_ms: float | None = None
    floor: bool = False  # ``python -c pass`` rather than profilebot


@dataclass(slots=True)
class Timings:
    """One command's times (ms) with one checkout's code, a value per round."""

    command: str
    code: str  # "ours" or the --against checkout
    runs_ms: list[float] = field(default_factory=list)  # wall clock, start to exit
    cpu_ms: list[float] = field(default_factory=list)  # the process's user + system CPU

    @property
    def median_ms(self) -> float:
        return common.median(self.runs_ms)

    @property
    def median_cpu_ms(self) -> float:
        return common.median(self.cpu_ms)


def commands(steps: int) -> list[Command]:
    """What each round runs, in order (the working directory holds long.yaml)."""
    return [
        Command("python -c pass (floor)", ("-c", "pass"), floor=True),
        Command("profilebot --help", ("--help",), TARGET_HELP_MS),
        Command("profilebot flows list", ("flows", "list"), TARGET_READ_MS),
        Command(
            "profilebot profile show STUDENT --json",
            ("profile", "show", STUDENT, "--json"),
            TARGET_READ_MS,
        ),
        Command(
            "profilebot plan show STUDENT --json",
            ("plan", "show", STUDENT, "--json"),
            TARGET_READ_MS,
        ),
        Command(
            "profilebot inbound failed --json",
            ("inbound", "failed", "--json"),
            TARGET_READ_MS,
        ),
        Command(
            f"profilebot flows check long.yaml ({steps:,} steps)",
            ("flows", "check", LONG_FLOW),
            TARGET_CHECK_MS,
        ),
    ]


# ----------------------------------------------------------------------------- the long flow


def long_flow_text(steps: int) -> str:
    """A valid flow of ``steps`` steps, cycling through every kind of question.

    Questions name earlier answers in their templates, some steps are asked only ``when:``
    an earlier answer says so, and yes/no questions carry ``next:`` rules; so checking it
    reads YAML, parses templates and expressions and follows references, as a school's own
    long flow would make it.
    """
    lines = [
        "# Written by bench/cli.py: a long flow for timing `profilebot flows check`.",
        "id: long_flow",
        "version: 1",
        "title: A long flow",
        'description: "Every kind of question, over and over."',
        "audience: student",
        "",
        "intro: |-",
        "  Hi {{ person.first_name | default('there', true) }}! This one is long.",
        "outro: Thanks, {{ answers.s0 | default('friend', true) }}!",
        "",
        "steps:",
    ]
    for i in range(steps):
        lines += _step(i, steps)
    return "\n".join(lines) + "\n"


def _step(i: int, total: int) -> list[str]:
    kind = i % 9
    step = f"  - id: s{i}"
    earlier = f"s{i - kind - 9}" if i - kind >= 9 else "s0"  # the text step one round back
    ask = f"Question {i}, {{{{ answers.{earlier} | default('friend', true) }}}}: what do you think?"
    if kind == 0:
        return [step, "    type: text", f'    ask: "{ask}"', "    max_length: 200", ""]
    if kind == 1:
        return [
            step,
            "    type: choice",
            f"    ask: Pick one for question {i}.",
            "    options:",
            '      - {value: red, label: "Red"}',
            '      - {value: green, label: "Green"}',
            "      - {value: blue, label: \"Blue, {{ answers.s0 | default('you', true) }}\"}",
            "    allow_other: true",
            "",
        ]
    if kind == 2:
        return [
            step,
            "    type: multi_choice",
            f"    ask: Pick all that fit for question {i}.",
            "    options: [reading, music, sport, games, art]",
            "    min: 1",
            "    max: 3",
            "",
        ]
    if kind == 3:
        return [
            step,
            "    type: scale",
            f'    ask: "{ask}"',
            "    min: 1",
            "    max: 5",
            "    labels: {1: not at all, 5: very much}",
            "",
        ]
    if kind == 4:
        after = f"s{i + 2}" if i + 2 < total else "end"
        return [
            step,
            "    type: yes_no",
            f"    ask: Shall we skip a question after {i}?",
            "    next:",
            '      - when: "answer"',
            f"        goto: {after}",
            "",
        ]
    if kind == 5:
        return [
            step,
            "    type: number",
            f"    ask: How many, for question {i}?",
            "    min: 0",
            "    max: 100",
            f"    when: \"answers.s{i - 1} is none or answers.s{i - 1} != 'never'\"",
            "",
        ]
    if kind == 6:
        return [
            step,
            "    type: date",
            f'    ask: "{ask}"',
            "    optional: true",
            "",
        ]
    if kind == 7:
        return [
            step,
            "    type: list",
            f"    ask: List a few things for question {i}.",
            "    min: 1",
            "    max: 3",
            "",
        ]
    return [step, "    type: message", f'    say: "Thanks! {ask}"', ""]


# ----------------------------------------------------------------------------- setup


def prepare(workdir: Path, steps: int) -> dict[str, str]:
    """The environment the commands run with: a migrated SQLite file holding one student's
    profile and plan, and the long flow file, both in ``workdir``."""
    database = workdir / "profilebot.db"
    db = Database(f"sqlite:///{database}")
    try:
        db.ensure_schema()
        registry = FlowRegistry()
        person = PeopleStore(db).add("Hana Example", "student", handle=STUDENT)
        plan = [registry.get("this_is_me"), registry.get("goal_setting")]
        service = ConversationService(db, registry)
        students = make_students([person.id], plan, step_index(registry.flows()))
        stats = drive(service, students, run="cli")
    finally:
        db.dispose()  # the last connection checkpoints the WAL into the file
    if stats.problems or not students[0].done:
        raise SystemExit(f"setup failed: {stats.problems or 'the flows did not finish'}")
    (workdir / LONG_FLOW).write_text(long_flow_text(steps))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL", "DEFAULT_TIMEZONE")
    }
    env["DATABASE_URL"] = f"sqlite:///{database}"
    return env


def prepare_other(workdir: Path, checkout: Path, env: dict[str, str]) -> dict[str, str]:
    """A database of the other checkout's own schema, made by its own command line: the
    student added and a few answers given (``chat``), so its reads find a profile."""
    workdir.mkdir()
    (workdir / LONG_FLOW).write_text((workdir.parent / LONG_FLOW).read_text())
    other = {
        **env,
        "DATABASE_URL": f"sqlite:///{workdir / 'profilebot.db'}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")])),
    }
    program = str(entry_point())
    add = [program, "people", "add", "--name", "Hana Example", "--role", "student"]
    for argv, answers in (
        ([*add, "--handle", STUDENT], ""),
        ([program, "chat", "--as", STUDENT], "Hana\n1, 3\n2\n"),
    ):
        subprocess.run(
            argv, input=answers, text=True, cwd=workdir, env=other, capture_output=True, check=True
        )
    return other


def checkout_label(path: Path) -> str:
    """``path (commit)``: which code another checkout holds."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(path)
    return f"{path} ({head})"


def entry_point() -> Path:
    """The installed ``profilebot`` command of the environment this script runs in."""
    path = Path(sys.executable).parent / "profilebot"
    if not path.exists():
        raise SystemExit(f"no {path}: install profilebot into this environment first")
    return path


# ----------------------------------------------------------------------------- measuring


def time_once(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Wall and CPU milliseconds from start to exit, and the exit status. CPU time moves
    less than wall time when other work shares the machine."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = (time.perf_counter() - started) * 1e3
    cpu = (_children_cpu_s() - cpu_before) * 1e3
    if done.returncode != 0 and b"Traceback" in done.stderr:
        sys.stderr.write(done.stderr.decode(errors="replace"))
    return elapsed, cpu, done.returncode


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench(args: argparse.Namespace, workdir: Path) -> tuple[list[Timings], list[str]]:
    """Every command once per round, ours and (``--against``) the other checkout's in turn."""
    env = prepare(workdir, args.steps)
    program = str(entry_point())
    path = os.pathsep.join(filter(None, [str(common.ROOT), env.get("PYTHONPATH")]))
    # each checkout's code, with its own environment and working directory
    checkouts = {"ours": ({**env, "PYTHONPATH": path}, workdir)}
    if args.against:
        other = workdir / "other"
        checkouts[checkout_label(args.against)] = (
            prepare_other(other, args.against.resolve(), env),
            other,
        )
    timings: dict[tuple[str, str], Timings] = {}
    problems: list[str] = []
    missing: set[tuple[str, str]] = set()  # commands the other checkout does not have
    for round_number in range(1, args.repeat + 1):
        for command in commands(args.steps):
            for code, (code_env, cwd) in checkouts.items():
                if (command.floor and code != "ours") or (command.name, code) in missing:
                    continue
                program_argv = [sys.executable] if command.floor else [program]
                elapsed, cpu, status = time_once([*program_argv, *command.argv], code_env, cwd)
                if status == 2 and code != "ours":  # a usage error: no such command there
                    missing.add((command.name, code))
                    continue
                timing = timings.setdefault((command.name, code), Timings(command.name, code))
                timing.runs_ms.append(elapsed)
                timing.cpu_ms.append(cpu)
                if status != 0:
                    problems.append(
                        f"{code}: {command.name} exited {status} (round {round_number})"
                    )
        print(f"round {round_number}/{args.repeat} done", file=sys.stderr)
    for name, code in sorted(missing):
        problems.append(f"{code}: has no `{name.removeprefix('profilebot ')}` (not measured)")
    return list(timings.values()), problems


# ----------------------------------------------------------------------------- report


def targets(results: Sequence[Timings], steps: int) -> list[tuple[str, str, bool | None]]:
    ours = {t.command: t.median_ms for t in results if t.code == "ours"}
    rows: list[tuple[str, str, bool | None]] = []
    for command in commands(steps):
        if command.target_ms is None or command.name not in ours:
            continue
        measured = ours[command.name]
        rows.append(
            (
                f"`{command.name}` < {command.target_ms:,.0f} ms",
                f"{measured:,.0f} ms",
                measured < command.target_ms,
            )
        )
    return rows


def render(report: dict[str, Any], command: str) -> str:
    results: list[Timings] = report["results"]
    floor = next(t.median_ms for t in results if t.code == "ours" and "floor" in t.command)
    lines = [
        SECTION,
        "",
        "How long a command takes from start to exit, run as people run it: "
        "`.venv/bin/profilebot ...` in a process of its own (output to /dev/null), on a "
        "SQLite file database that is up to date, with one student who has completed "
        "`this_is_me` and `goal_setting`. The floor is `python -c pass` with the same "
        "interpreter, measured in the same rounds: what any Python command costs on this "
        "machine. `flows check` reads a valid flow of "
        f"{report['steps']:,} steps written by the benchmark (every kind of question, "
        "templates naming earlier answers, `when:` conditions, `next:` rules).",
        "",
        "Each round runs every command once, the floor first, so the machine's load hits "
        "them alike; medians over the rounds. A command answers quickly because it loads "
        "only what it uses: `--help` no database and no flows; a read-only command no "
        "migration tool and no chat SDK (an up-to-date schema is one query of "
        "`alembic_version` against a revision the code knows), and no flow file unless it "
        "shows one; flows are read by libyaml, each file once; and the process leaves its "
        "objects to the operating system at exit instead of collecting them one by one. "
        "What a read-only command still spends is mostly imports it needs: typer, pydantic "
        "(typer's parameters and the settings) and SQLAlchemy.",
        "",
        "Run it with `make bench-cli` or `.venv/bin/python bench/cli.py [--repeat N] "
        "[--steps S]`; `--against CHECKOUT` also runs another checkout's code in the same "
        "rounds (a before and after in one run), `--write` rewrites this section.",
        "",
        *common.provenance(
            command, report, f"SQLite {report['machine']['sqlite']}; {report['load']}"
        ),
        "",
        f"{report['repeat']} round(s); wall-clock milliseconds from start to exit, medians in "
        "bold; the last column is the process's own CPU time (user + system), which moves "
        "less than wall time when other work shares the machine.",
        "",
    ]
    runs = max(len(t.runs_ms) for t in results)
    head = " | ".join(f"run {i + 1}" for i in range(runs))
    if report["against"]:
        lines += [
            f"Code `ours` is this checkout; `{report['against']}` is the other checkout given "
            "with `--against`, run in the same rounds.",
            "",
        ]
    lines += [
        f"| command | code | {head} | median | above the floor | × floor | CPU ms, median |",
        "|---|---|" + "---:|" * (runs + 4),
    ]
    for t in results:
        cells = " | ".join(f"{ms:,.0f}" for ms in t.runs_ms)
        above = "" if "floor" in t.command else f"{t.median_ms - floor:,.0f}"
        ratio = "" if "floor" in t.command else f"{t.median_ms / floor:.1f}"
        lines.append(
            f"| {t.command} | {t.code} | {cells} | **{t.median_ms:,.0f}** | {above} | {ratio} "
            f"| {t.median_cpu_ms:,.0f} |"
        )
    lines += ["", *common.targets_table(report["targets"], report["problems"])]
    return "\n".join(lines) + "\n"


def load_average() -> str:
    try:
        return f"1-minute load average {os.getloadavg()[0]:.1f}"
    except OSError:
        return "load average unknown"


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--steps", type=int, default=1_000, help="steps of the long flow")
    parser.add_argument(
        "--against", type=Path, help="another checkout whose code runs in the same rounds"
    )
    parser.add_argument("--write", action="store_true", help="rewrite its docs section")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    command = "bench/cli.py " + " ".join(argv if argv is not None else sys.argv[1:])

    before = load_average()
    with tempfile.TemporaryDirectory(prefix="profilebot-bench-cli-") as tmp:
        results, problems = bench(args, Path(tmp))
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": common.machine_info(),
        "code": common.code_version(),
        "load": f"{before} before the runs and {load_average().split()[-1]} after",
        "repeat": args.repeat,
        "steps": args.steps,
        "against": None if args.against is None else checkout_label(args.against),
        "results": results,
        "targets": targets(results, args.steps),
        "problems": problems,
    }
    text = render(report, command.strip())
    return common.finish(args, report, results, text, SECTION)


if __name__ == "__main__":
    sys.exit(main())
