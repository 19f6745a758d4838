"""How quickly `profilebot people import` loads a school: 10,000 rows, as people run it.

    .venv/bin/python bench/roster.py [--rows N] [--repeat R] [--postgres URL]
                                     [--write] [--json] [--check]

The roster file is written by this script: ``--rows`` (10,000) people, one teacher for
every 25 students, each teacher teaching one class and advising its students, students in
their class and a club (``group`` holds two names), a time zone, an email and, for every
other student, a Telegram id. Each round:

- ``profilebot people import FILE --json`` on a fresh, migrated database (everyone added),
  then the same file again (everyone unchanged): each a process of its own, timed from start
  to exit (the target is on the first);
- the baseline, in the same round: the first 1,000 people of the file added one
  ``PeopleStore.add`` transaction at a time (what a loop over ``people add`` costs without
  its process start), scaled to the file's size;
- ``python -c pass``: what any Python command costs here.

SQLite always; PostgreSQL too with ``--postgres URL`` (a server the benchmark may create and
drop databases on). Medians over ``--repeat`` (3) rounds. ``--write`` replaces the section
``## Roster import (bench/roster.py)`` of docs/benchmarks.md; ``--check`` exits 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path: put the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from bench import _common as common
from storage import Database, PeopleStore

SECTION = "## Roster import (bench/roster.py)"
TARGET_S = 10.0
BASELINE_ROWS = 1_000
STUDENTS_PER_TEACHER = 25
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")


def write_roster(path: Path, rows: int) -> None:
    """A school of ``rows`` people (see the module docstring)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(
            ["name", "role", "handle", "group", "advisor", "timezone", "email", "telegram_id"]
        )
        teachers = max(1, rows // (STUDENTS_PER_TEACHER + 1))
        for t in range(teachers):
            out.writerow(
                [
                    f"Teacher {t}",
                    "teacher",
                    f"t{t}",
                    f"Class {t}",
                    "",
                    ZONES[t % 3],
                    f"t{t}@school.example",
                    "",
                ]
            )
        for s in range(rows - teachers):
            t = s % teachers
            out.writerow(
                [
                    f"Student {s}, Jr.",  # a comma: quoted, as spreadsheets write it
                    "student",
                    f"s{s}",
                    f"Class {t};Club {s % 12}",
                    f"t{t}",
                    ZONES[s % 3],
                    f"s{s}@school.example",
                    str(10_000_000 + s) if s % 2 == 0 else "",
                ]
            )


def first_rows(path: Path, count: int) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row for _, row in zip(range(count), csv.DictReader(f), strict=False)]


@contextmanager
def fresh_database(backend: str, workdir: Path, postgres: str | None) -> Iterator[str]:
    """The URL of a new, migrated database (dropped afterwards on PostgreSQL)."""
    if backend == "sqlite":
        path = workdir / f"roster-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
        return
    assert postgres is not None
    admin = create_engine(Database(postgres).url, isolation_level="AUTOCOMMIT")
    name = f"pb_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = Database(postgres).url.set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url
    finally:
        _drop(admin, name)
        admin.dispose()


def _drop(admin: Engine, name: str) -> None:
    """Drop a benchmark database; an autovacuum worker on it (which FORCE may not end) is
    waited out."""
    for attempt in range(10):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 9:
                raise
            time.sleep(0.5)


def run_import(url: str, roster: Path, workdir: Path) -> tuple[float, dict[str, int]]:
    """``profilebot people import`` in a process of its own: seconds, and its JSON."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL")}
    env["DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(common.ROOT), env.get("PYTHONPATH")]))
    program = Path(sys.executable).parent / "profilebot"
    started = time.perf_counter()
    done = subprocess.run(
        [str(program), "people", "import", str(roster), "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"people import failed: {done.stderr.strip()}")
    return elapsed, json.loads(done.stdout)


def run_baseline(url: str, rows: list[dict[str, str]]) -> float:
    """Seconds to add ``rows`` one transaction per person (teachers first, as in the file)."""
    db = Database(url)
    people = PeopleStore(db)
    try:
        started = time.perf_counter()
        for row in rows:
            people.add(
                row["name"],
                row["role"],
                handle=row["handle"],
                group=row["group"].split(";")[0],
                advisor=row["advisor"] or None,
                timezone=row["timezone"],
                email=row["email"],
            )
        return time.perf_counter() - started
    finally:
        db.dispose()


def floor_s() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    roster = workdir / "roster.csv"
    write_roster(roster, args.rows)
    baseline_rows = first_rows(roster, BASELINE_ROWS)
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    runs: dict[str, dict[str, list[float]]] = {
        b: {"first": [], "again": [], "baseline": []} for b in backends
    }
    floors: list[float] = []
    problems: list[str] = []
    for round_number in range(1, args.repeat + 1):
        floors.append(floor_s())
        for backend in backends:
            with fresh_database(backend, workdir, args.postgres) as url:
                first, counts = run_import(url, roster, workdir)
                again, counts_again = run_import(url, roster, workdir)
            if counts != {"added": args.rows, "updated": 0, "unchanged": 0}:
                problems.append(f"{backend}: first import said {counts}")
            if counts_again != {"added": 0, "updated": 0, "unchanged": args.rows}:
                problems.append(f"{backend}: second import said {counts_again}")
            with fresh_database(backend, workdir, args.postgres) as url:
                baseline = run_baseline(url, baseline_rows) * args.rows / len(baseline_rows)
            runs[backend]["first"].append(first)
            runs[backend]["again"].append(again)
            runs[backend]["baseline"].append(baseline)
        print(f"round {round_number}/{args.repeat} done", file=sys.stderr)
    return {
        "rows": args.rows,
        "repeat": args.repeat,
        "machine": common.machine_info(),
        "date": date.today().isoformat(),
        "code": common.code_version(),
        "floor_s": common.median(floors),
        "medians": {
            b: {k: common.median(v) for k, v in kinds.items()} for b, kinds in runs.items()
        },
        "runs": runs,
        "problems": problems,
    }


def render(report: dict[str, Any], command: str) -> str:
    rows, medians = report["rows"], report["medians"]
    lines = [
        SECTION,
        "",
        f"`profilebot people import` of a {rows:,}-row school (written by the benchmark: a "
        f"teacher per {STUDENTS_PER_TEACHER} students teaching and advising a class, students "
        "in a class and a club, time zones, emails, Telegram ids for half of them, names with "
        "commas), each import a process of its own on a fresh migrated database, timed from "
        "start to exit; then the same file again (nothing changes). The baseline, measured in "
        f"the same rounds: the first {BASELINE_ROWS:,} people added one `PeopleStore.add` "
        "transaction at a time (a loop of `people add` without its process start), scaled to "
        f"{rows:,}. Medians over {report['repeat']} rounds; `python -c pass` took "
        f"{report['floor_s'] * 1e3:.0f} ms.",
        "",
        "| database | import (all added) | again (all unchanged) | one transaction per person "
        "(baseline) | baseline / import |",
        "|---|---|---|---|---|",
    ]
    for backend, m in medians.items():
        lines.append(
            f"| {backend} | {m['first']:.2f} s | {m['again']:.2f} s | {m['baseline']:.1f} s | "
            f"{m['baseline'] / m['first']:.1f}× |"
        )
    sqlite = medians["sqlite"]["first"]
    lines += [
        "",
        *common.targets_table(
            [
                (
                    f"`people import` of {rows:,} rows, SQLite < {TARGET_S:.0f} s",
                    f"{sqlite:.2f} s",
                    sqlite < TARGET_S,
                )
            ],
            report["problems"],
        ),
        "",
        *common.provenance(command, report, f"SQLite {report['machine']['sqlite']}"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = common.report_options(__doc__, repeat=3)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL to measure on too")
    args, report = common.run_report(
        parser,
        "bench/roster.py",
        SECTION,
        bench,
        render,
        shown=lambda a: "URL" if a.startswith(("postgresql", "postgres:")) else a,
    )
    missed = report["medians"]["sqlite"]["first"] >= TARGET_S or report["problems"]
    if args.check and missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
