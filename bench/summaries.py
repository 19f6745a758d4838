"""How quickly advisors' weekly summaries are built and drawn: one advisor, and a whole school.

    .venv/bin/python bench/summaries.py [--students N] [--advisors N] [--repeat R] [--quick]
                                        [--write] [--json] [--check]

The school is written by this script into a fresh, migrated SQLite file: ``--students``
(2,000) students spread over ``--advisors`` (70) advisors, plus one advisor with exactly 30
advisees; every student has two goals and checked in in most of the 20 weeks of the term
(mood, energy, a progress and a next step per goal; a note, a wish to meet, a new challenge
now and then), all at fixed, seeded times. Each round, interleaved:

- one advisor (30 advisees, a 20-week term): ``build_summary`` without the chart, then
  ``summary_chart`` of it;
- the baseline in the same round: the same advisor's data read the naive way, a query or
  three per student (``PlanStore.plan``, ``PlanStore.checkins``, ``ProfileStore.history``
  for each advisee), before any summary is computed;
- the whole school: exactly what the scheduler does on a Friday, every advisor's summary
  with its chart and its chat message, ``bot.summary_schedule.compose_summaries`` (a
  ``build_summary`` per advisor, then ``summary_charts``, a process per core).

Medians over ``--repeat`` (5) rounds. ``--write`` replaces the section
``## Advisors' summaries (bench/summaries.py)`` of docs/benchmarks.md; ``--check`` exits 1
when a target is missed. The targets table keeps a row for the profile card PDF (issue 11),
which another benchmark measures: ``CARD_ROW`` holds it until that one writes its number.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path: put the repository root first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from bench import _common as common
from bot.app import App
from bot.charts import summary_chart
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.summaries import build_summary
from bot.summary_schedule import compose_summaries
from storage import (
    Database,
    PersonRecord,
    PlanStore,
    ProfileStore,
    Reports,
    RosterEntry,
    RosterStore,
    metadata,
)

SECTION = "## Advisors' summaries (bench/summaries.py)"
WEEK = "2026-W49"
NOW = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)  # a Friday afternoon of that week
TERM_WEEKS = 20
ONE_ADVISOR = "the-advisor-of-30"
ONE_ADVISOR_STUDENTS = 30
BUILD_TARGET_MS = 100.0
CHART_TARGET_MS = 500.0
SCHOOL_TARGET_S = 10.0
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo")
CHALLENGES = ("maths", "tests", "staying_focused", "speaking_up")

_T = metadata.tables


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def seed(url: str, students: int, advisors: int) -> None:
    """The school (see the module docstring): the roster by one import, the term by
    executemany."""
    db = Database(url)
    try:
        entries = [
            RosterEntry(
                k + 2, f"Advisor {k}", "advisor", handle=f"advisor-{k}", timezone=ZONES[k % 3]
            )
            for k in range(advisors)
        ]
        entries.append(RosterEntry(advisors + 2, "Advisor Thirty", "advisor", handle=ONE_ADVISOR))
        for s in range(students + ONE_ADVISOR_STUDENTS):
            advisor = f"advisor-{s % advisors}" if s < students else ONE_ADVISOR
            entries.append(
                RosterEntry(
                    len(entries) + 2,
                    f"Student {s}",
                    "student",
                    handle=f"s{s}",
                    advisor=advisor,
                    timezone=ZONES[s % 3],
                )
            )
        RosterStore(db).import_people(entries)
        with db.begin() as conn:
            ids = {
                row.handle: row.id
                for row in conn.execute(
                    _T["person"].select().where(_T["person"].c.handle.like("s%"))
                )
            }
        _term(db, [ids[f"s{s}"] for s in range(students + ONE_ADVISOR_STUDENTS)])
    finally:
        db.dispose()


def _term(db: Database, student_ids: list[int]) -> None:
    rng = random.Random(11)
    monday = date.fromisocalendar(2026, 49, 1) - timedelta(weeks=TERM_WEEKS - 1)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    goals, checkins, updates, facts = [], [], [], []
    goal_id = checkin_id = 0
    student_goals: dict[int, list[int]] = {}
    for pid in student_ids:
        student_goals[pid] = []
        for title in ("Read more", "Finish the robot"):
            goal_id += 1
            student_goals[pid].append(goal_id)
            goals.append(
                {
                    "id": goal_id,
                    "person_id": pid,
                    "title": title,
                    "status": "active",
                    "created_at": start,
                    "updated_at": start,
                }
            )
        facts.append(
            {
                "person_id": pid,
                "field": "challenges",
                "value": _dumps(["maths"]),
                "private": False,
                "source": "bench",
                "created_at": start,
            }
        )
    for week in range(TERM_WEEKS):
        day = monday + timedelta(weeks=week, days=rng.randrange(5))
        for pid in student_ids:
            if rng.random() < 0.15:
                continue
            checkin_id += 1
            at = datetime.combine(day, clock_time(9 + rng.randrange(8)), UTC)
            checkins.append(
                {
                    "id": checkin_id,
                    "person_id": pid,
                    "mood": _dumps(rng.randint(1, 5)),
                    "energy": _dumps(rng.randint(1, 5)),
                    "note_for_advisor": "Can we talk?" if rng.random() < 0.05 else None,
                    "wants_meeting": rng.random() < 0.05,
                    "highlight": None,
                    "created_at": at,
                }
            )
            for goal in student_goals[pid]:
                updates.append(
                    {
                        "checkin_id": checkin_id,
                        "goal_id": goal,
                        "progress": _dumps(rng.randint(1, 5)),
                        "next_step": "one small step",
                        "blockers": None,
                        "did": None,
                    }
                )
            if rng.random() < 0.02:
                facts.append(
                    {
                        "person_id": pid,
                        "field": "challenges",
                        "value": _dumps(["maths", rng.choice(CHALLENGES)]),
                        "private": False,
                        "source": "bench",
                        "created_at": at,
                    }
                )
    with db.begin() as conn:
        conn.execute(insert(_T["goal"]), goals)
        conn.execute(insert(_T["checkin"]), checkins)
        conn.execute(insert(_T["checkin_goal_update"]), updates)
        conn.execute(insert(_T["profile_fact"]), facts)


def naive_read(app: App, handle: str) -> int:
    """The baseline: the advisor's students' data read a few queries per student."""
    advisor = app.people.get(handle)
    plans, profiles = PlanStore(app.db), ProfileStore(app.db)
    with app.db.read() as conn:
        ids = [
            row.student_id
            for row in conn.execute(
                _T["advisor_link"].select().where(_T["advisor_link"].c.advisor_id == advisor.id)
            )
        ]
    rows = 0
    for pid in ids:
        rows += len(plans.plan(pid)["goals"])
        rows += len(plans.checkins(pid))
        rows += len(profiles.history(pid))
    return rows


def school_round(app: App, advisors: list[PersonRecord]) -> int:
    """What the scheduler does for a school's Friday: every advisor's summary, chart and
    message; how many."""
    notices = compose_summaries(app, [(advisor, NOW) for advisor in advisors])
    return sum(1 for n in notices if n is not None)


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    path = workdir / "school.db"
    url = f"sqlite:///{path}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    seeded_s, _ = timed(lambda: seed(url, args.students, args.advisors))
    print(f"seeded in {seeded_s:.1f} s", file=sys.stderr)
    app = App.create(load_settings(database_url=url), clock=FrozenClock(NOW))
    problems: list[str] = []
    one = build_summary(app, ONE_ADVISOR, WEEK)  # warm: flows read, statements compiled
    summary_chart(one)
    if len(one.students) != ONE_ADVISOR_STUDENTS:
        problems.append(f"one advisor: {len(one.students)} advisees, not {ONE_ADVISOR_STUDENTS}")
    advisors = Reports(app.db).advisors()
    runs: dict[str, list[float]] = {k: [] for k in ("build", "chart", "naive", "school")}
    counts: dict[str, int] = {}
    for round_number in range(1, args.repeat + 1):
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("build", lambda: build_summary(app, ONE_ADVISOR, WEEK)),
            ("chart", lambda: summary_chart(one)),
            ("naive", lambda: naive_read(app, ONE_ADVISOR)),
            ("school", lambda: school_round(app, advisors)),
        ]
        for name, run in steps if round_number % 2 else steps[::-1]:
            seconds, result = timed(run)
            runs[name].append(seconds)
            if name == "school":
                counts["advisors"] = result
        print(f"round {round_number}/{args.repeat} done", file=sys.stderr)
    app.db.dispose()
    if counts.get("advisors") != args.advisors + 1:
        problems.append(f"school: {counts.get('advisors')} summaries, not {args.advisors + 1}")
    return {
        "students": args.students,
        "advisors": args.advisors,
        "repeat": args.repeat,
        "machine": common.machine_info(),
        "date": date.today().isoformat(),
        "code": common.code_version(),
        "seeded_s": seeded_s,
        "medians": {k: common.median(v) for k, v in runs.items()},
        "runs": runs,
        "problems": problems,
    }


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    m = report["medians"]
    build_ms, chart_ms, school_s = m["build"] * 1e3, m["chart"] * 1e3, m["school"]
    return [
        (
            f"summary for one advisor, {ONE_ADVISOR_STUDENTS} advisees, {TERM_WEEKS}-week "
            f"term: build < {BUILD_TARGET_MS:.0f} ms without the chart",
            f"{build_ms:.1f} ms",
            build_ms < BUILD_TARGET_MS,
        ),
        (
            f"the same summary's chart < {CHART_TARGET_MS:.0f} ms",
            f"{chart_ms:.0f} ms",
            chart_ms < CHART_TARGET_MS,
        ),
        (
            f"all summaries for a school of {report['students']:,} students and "
            f"{report['advisors']} advisors, SQLite, charts included < {SCHOOL_TARGET_S:.0f} s",
            f"{school_s:.2f} s",
            school_s < SCHOOL_TARGET_S,
        ),
    ]


def render(report: dict[str, Any], command: str) -> str:
    m = report["medians"]
    lines = [
        SECTION,
        "",
        f"A school written by the benchmark into a SQLite file: {report['students']:,} students "
        f"over {report['advisors']} advisors, plus one advisor with {ONE_ADVISOR_STUDENTS} "
        f"advisees; two goals each and a check-in in about 85% of the {TERM_WEEKS} weeks of the "
        "term (mood, energy, progress and a next step per goal, now and then a note, a wish to "
        "meet, a new challenge). In each round, interleaved: one advisor's `build_summary` "
        "(without the chart), its `summary_chart` (the same chart each round: its texts are "
        "measured once), the baseline, and what the scheduler does for the school's Friday: "
        "every advisor's summary, chart and message (`compose_summaries`: a `build_summary` "
        "per advisor, then `summary_charts`, one process per core). The baseline reads the "
        "same advisor's data the naive way, a few queries per student (`PlanStore.plan`, "
        "`PlanStore.checkins`, `ProfileStore.history` for each advisee) and computes nothing. "
        "Medians over "
        f"{report['repeat']} rounds.",
        "",
        "| what | median |",
        "|---|---|",
        f"| one advisor: build without the chart | {m['build'] * 1e3:.1f} ms |",
        f"| one advisor: the chart | {m['chart'] * 1e3:.0f} ms |",
        f"| baseline: the same data, queries per student (no summary) | {m['naive'] * 1e3:.1f} "
        f"ms ({m['naive'] / m['build']:.1f}× the build) |",
        f"| the whole school as the scheduler composes it | {m['school']:.2f} s |",
        "",
        *common.targets_table(targets(report), report["problems"]),
        "",
        *common.provenance(command, report, f"SQLite {report['machine']['sqlite']}"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--students", type=int, default=2_000)
    parser.add_argument("--advisors", type=int, default=70)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a small school, one round")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", action="store_true", help="print the raw report as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.quick:
        args.students, args.advisors, args.repeat = 200, 7, 1
    with tempfile.TemporaryDirectory(prefix="pb-summaries-") as tmp:
        report = bench(args, Path(tmp))
    command = ("python bench/summaries.py " + " ".join(sys.argv[1:])).strip()
    text_report = render(report, command)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(text_report)
    if args.write:
        common.write_section(SECTION, text_report)
    missed = not all(ok for _, _, ok in targets(report) if ok is not None)
    if report["problems"] or (args.check and missed):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
