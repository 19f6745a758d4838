"""What the audit adds to a view: "Audit writes add < 10% to the cost of a `profile show`".

    .venv/bin/python bench/audit.py [--repeat R] [--write] [--json] [--check]

On a fresh SQLite database, one student with a whole "This is me" profile and three goals
(bench/card.py's), and every view of her by the command line's administrator written to the
audit. Measured in one run, each against the same work with the audit write skipped:

- in one process, the view itself as ``profile show sam --json`` does it (the person, the
  profile in a transaction that also writes the audit row, the JSON) against the same with no
  row to write; ``--repeat`` × 20 rounds, interleaved;
- ``profilebot profile show sam --json`` as a process of its own, start to exit, against the
  same command with ``Audit.viewing`` patched to ask for no row (both started the same way,
  ``python -c``, so they import the same); ``--repeat`` rounds, interleaved.

``--write`` replaces the section ``## Audit (bench/audit.py)`` of docs/benchmarks.md;
``--check`` exits 1 when the target is missed (the command's median with the audit over its
median without, less than 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path: put the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _common as common
from bench.card import student_app
from bot.app import App
from storage import Viewed

SECTION = "## Audit (bench/audit.py)"
TARGET = 1.10
COMMAND = ("profile", "show", "sam", "--json")
IN_PROCESS_ROUNDS = 20
_AUDITED = "from bot.cli import main; main()"
_UNAUDITED = "import bot.audit as a; a.Audit.viewing = lambda *_, **__: None; " + _AUDITED


def show(app: App, *, audited: bool) -> str:
    """``profile show sam --json``'s work: the person, the profile (and the row), the JSON."""
    person = app.people.get("sam")
    seen = app.audit.viewing(None, Viewed.PROFILE, private=False) if audited else None
    profile = app.profiles.current(person.id, seen=seen)
    return json.dumps({"person": person.to_json(), "profile": profile}, ensure_ascii=False)


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run_command(workdir: Path, launcher: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL")}
    env["DATABASE_URL"] = f"sqlite:///{workdir / 'card.db'}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.ROOT), env.get("PYTHONPATH")]))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", launcher, *COMMAND],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"profile show failed: {done.stderr.strip()}")
    return elapsed


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    app = student_app(workdir)
    kinds: dict[str, Callable[[], Any]] = {
        "view": lambda: show(app, audited=True),
        "view_unaudited": lambda: show(app, audited=False),
    }
    for work in kinds.values():  # warm-up
        work()
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.repeat * IN_PROCESS_ROUNDS):
        for kind, work in kinds.items():
            runs[kind].append(timed(work))
    rows_before = len(app.audit.views(app.people.get("sam")))
    runs["command"], runs["command_unaudited"] = [], []
    for _ in range(args.repeat):
        runs["command"].append(run_command(workdir, _AUDITED))
        runs["command_unaudited"].append(run_command(workdir, _UNAUDITED))
    rows_written = len(app.audit.views(app.people.get("sam"))) - rows_before
    app.db.dispose()
    problems = []
    if rows_written != args.repeat:
        problems.append(f"the audited commands wrote {rows_written} rows, not {args.repeat}")
    return {
        "load": os.getloadavg()[0],
        "repeat": args.repeat,
        "machine": common.machine_info(),
        "date": date.today().isoformat(),
        "code": common.code_version(),
        "medians": {kind: common.median(values) for kind, values in runs.items()},
        "problems": problems,
        "runs": runs,
    }


def render(report: dict[str, Any], command: str) -> str:
    m = report["medians"]
    view = m["view"] / m["view_unaudited"]
    cmd = m["command"] / m["command_unaudited"]
    rounds = report["repeat"] * IN_PROCESS_ROUNDS
    lines = [
        SECTION,
        "",
        'A student with a whole "This is me" profile and three goals (bench/card.py\'s), on a '
        "SQLite file. The view in one process, as `profile show sam --json` does it (the "
        "person; the profile read in a transaction that also writes the audit row; the JSON), "
        "against the same with no row to write, interleaved, medians over "
        f"{rounds} rounds; then `profilebot profile show sam --json` as a process of its own, "
        "start to exit, against the same command with the audit write skipped (both started "
        f"with `python -c`, so they import the same), interleaved, medians over "
        f"{report['repeat']} rounds. The machine's load average was {report['load']:.1f} at "
        "the end.",
        "",
        "The row is one `INSERT` inside the transaction that reads the profile: no second "
        "transaction, no second commit. In one process it is measured against the view's "
        "database work alone; a command's time is mostly Python, its imports and the app, so "
        "there the row is within the run-to-run noise (the target is the command's).",
        "",
        "| what | with the audit | without | ratio |",
        "|---|---|---|---|",
        f"| the view, in one process | {m['view'] * 1e3:.2f} ms | "
        f"{m['view_unaudited'] * 1e3:.2f} ms | {view:.2f} |",
        f"| `profilebot profile show sam --json` (a process) | {m['command'] * 1e3:.0f} ms | "
        f"{m['command_unaudited'] * 1e3:.0f} ms | {cmd:.2f} |",
        "",
        *common.targets_table(
            [("audit writes add < 10% to a `profile show`", f"{cmd:.2f}×", cmd < TARGET)],
            report["problems"],
        ),
        "",
        *common.provenance(command, report, f"SQLite {report['machine']['sqlite']}"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = common.report_options(__doc__, repeat=15)
    args, report = common.run_report(parser, "bench/audit.py", SECTION, bench, render)
    ratio = report["medians"]["command"] / report["medians"]["command_unaudited"]
    if report["problems"] or (args.check and ratio >= TARGET):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
