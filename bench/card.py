"""How long a student's one-page card takes: "profile card PDF < 1 s each".

    .venv/bin/python bench/card.py [--repeat R] [--write] [--json] [--check]

On a fresh SQLite database, a student with a whole "This is me" profile (every field, the
private one too) and a plan of three goals from "goal_setting" (why, steps, date, support).
Interleaved, ``--repeat`` (15) times each, in one process after one untimed warm-up of each:

- ``card_pdf``: the card as the student's own PDF (the target), WeasyPrint already imported;
- ``card_html``: the same card as HTML alone (what the PDF adds to it is WeasyPrint's layout);
- the baseline: WeasyPrint making a PDF of a one-line page (its fixed cost per document);

then ``profilebot profile card --format pdf`` as people run it, a process of its own from start
to exit (Python, the app, WeasyPrint's import, the card), interleaved with the same command
``--format html`` (all of that but WeasyPrint), ``--repeat`` // 3 times each.

``--write`` replaces the section ``## Profile card (bench/card.py)`` of docs/benchmarks.md;
``--check`` exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
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
from bot.app import App
from bot.conference_card import card_html, card_pdf
from bot.config import load_settings
from dialogues import Inbound

SECTION = "## Profile card (bench/card.py)"
COMMAND = ("profile", "card", "sam", "--as", "sam", "--format")
TARGET_S = 1.0
PROFILE_ANSWERS = [
    "Sam",
    "1, 3, 7",
    "8, 2, 6",
    "1, 4",
    "3",
    "2",
    "1",
    "1",
    "1, 2",
    "1, 3",
    "1, 2",
    "To build robots and win the science fair & travel",
    "My gran lives with us; we speak Tamil at home",
]
GOAL_ANSWERS = [
    "Learn Python well enough to make a game",
    "1",
    "So I can build games with my friends",
    "Finish the beginner tutorial",
    "Build a small game",
    "Show it to the class",
    "done",
    "2027-03-01",
    "A mentor once a week",
]


def student_app(workdir: Path) -> App:
    """An app on a new SQLite database holding one student with a full profile and plan."""
    app = App.create(load_settings(database_url=f"sqlite:///{workdir / 'card.db'}"))
    sam = app.people.add("Sam Rivera", "student", handle="sam")
    address = "sam"

    def converse(flow_id: str, answers: list[str]) -> None:
        app.service.open(sam.id, app.registry.get(flow_id), platform="console", address=address)
        for text in answers:
            app.service.handle(sam.id, Inbound.of_text(text), platform="console", address=address)

    converse("this_is_me", PROFILE_ANSWERS)
    converse("goal_setting", [*GOAL_ANSWERS, "yes", *GOAL_ANSWERS, "yes", *GOAL_ANSWERS])
    if len(app.plans.plan(sam.id)["goals"]) != 3 or not app.profiles.current(sam.id):
        raise SystemExit("the scripted conversations did not make a profile and three goals")
    return app


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def trivial_pdf() -> bytes:
    import weasyprint

    pdf: bytes = weasyprint.HTML(string="<p>Hello</p>").write_pdf()
    return pdf


def run_command(workdir: Path, output_format: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL")}
    env["DATABASE_URL"] = f"sqlite:///{workdir / 'card.db'}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.ROOT), env.get("PYTHONPATH")]))
    program = Path(sys.executable).parent / "profilebot"
    out = workdir / f"sam.{output_format}"
    started = time.perf_counter()
    done = subprocess.run(
        [str(program), *COMMAND, output_format, "--output", str(out)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"profile card failed: {done.stderr.strip()}")
    return elapsed


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    app = student_app(workdir)
    sam = app.people.get("sam")
    actor = app.actor("sam")
    kinds: dict[str, Callable[[], Any]] = {
        "pdf": lambda: card_pdf(app, sam, actor=actor),
        "html": lambda: card_html(app, sam, actor=actor),
        "trivial_pdf": trivial_pdf,
    }
    pdf = card_pdf(app, sam, actor=actor)  # warm-up: imports, fonts, the template
    for work in kinds.values():
        work()
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.repeat):
        for kind, work in kinds.items():
            runs[kind].append(timed(work))
    runs["command"], runs["command_html"] = [], []
    for _ in range(max(1, args.repeat // 3)):
        runs["command"].append(run_command(workdir, "pdf"))
        runs["command_html"].append(run_command(workdir, "html"))
    app.db.dispose()
    return {
        "load": os.getloadavg()[0],
        "repeat": args.repeat,
        "machine": common.machine_info(),
        "date": date.today().isoformat(),
        "code": common.code_version(),
        "pdf_bytes": len(pdf),
        "medians": {kind: common.median(values) for kind, values in runs.items()},
        "runs": runs,
    }


def render(report: dict[str, Any], command: str) -> str:
    m = report["medians"]
    ms = common.ms
    lines = [
        SECTION,
        "",
        '`card_pdf`: one student\'s card (a whole "This is me" profile, three goals with why, '
        "steps, date and support) as their own one-page PDF, in one process with WeasyPrint "
        "imported and warmed up; the same card as HTML alone; and, as the baseline measured "
        "in the same rounds, WeasyPrint making a PDF of a one-line page. Interleaved, medians "
        f"over {report['repeat']} rounds; the PDF is {report['pdf_bytes'] / 1024:.0f} KiB. "
        "Then `profilebot profile card --format pdf` as a process of its own, start to exit, "
        "interleaved with the same command `--format html` (everything but WeasyPrint's import "
        f"and layout). The machine's load average was {report['load']:.1f} at the end.",
        "",
        "A card is laid out once when it fits at the normal size, or when its content says it "
        "cannot and it starts at the compact one; a layout costs as much as the rest of the "
        "card. A command's time is mostly fixed: Python and the app (the `--format html` row), "
        "then WeasyPrint's import, in which cffi looks for Pango's libraries under several "
        "names and runs `ldconfig` and `gcc` for each name it does not find.",
        "",
        "| what | median (ms) | vs. the one-line PDF |",
        "|---|---|---|",
        f"| `card_pdf` (the card as PDF) | {ms(m['pdf'] * 1e3)} | "
        f"{m['pdf'] / m['trivial_pdf']:.1f}× |",
        f"| `card_html` (the card as HTML) | {ms(m['html'] * 1e3)} | "
        f"{m['html'] / m['trivial_pdf']:.2f}× |",
        f"| WeasyPrint, a one-line page (baseline) | {ms(m['trivial_pdf'] * 1e3)} | 1× |",
        f"| `profilebot profile card --format pdf` (a process) | {ms(m['command'] * 1e3)} | "
        f"{m['command'] / m['trivial_pdf']:.1f}× |",
        f"| `profilebot profile card --format html` (a process) | "
        f"{ms(m['command_html'] * 1e3)} | {m['command_html'] / m['trivial_pdf']:.1f}× |",
        "",
        *common.targets_table(
            [
                (
                    f"profile card PDF < {TARGET_S:.0f} s each, in the running bot (`/card`)",
                    f"{m['pdf']:.2f} s",
                    m["pdf"] < TARGET_S,
                ),
                (
                    "the same as a command (`profile card --format pdf`)",
                    f"{m['command']:.2f} s",
                    m["command"] < TARGET_S,
                ),
            ],
            [],
        ),
        "",
        *common.provenance(command, report, "WeasyPrint " + _weasyprint_version()),
        "",
    ]
    return "\n".join(lines)


def _weasyprint_version() -> str:
    import weasyprint

    return str(weasyprint.__version__)


def main() -> None:
    parser = common.report_options(__doc__, repeat=15)
    args, report = common.run_report(parser, "bench/card.py", SECTION, bench, render)
    if args.check and max(report["medians"]["pdf"], report["medians"]["command"]) >= TARGET_S:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
