"""The scheduler at school scale: a weekly check-in started for every student, then ticks with
nothing due.

    .venv/bin/python bench/scheduler.py [--students N] [--repeat R] [--postgres URL]

On a fresh database of N students (default 10,000), each with a Telegram account:

- start: ``schedule add --everyone`` for ``weekly_checkin``, then one tick at the occurrence
  (``Scheduler.tick``, what ``run-due`` and the running bot do): every conversation created
  and its first messages queued. Seconds, and students per second.
- idle tick: ticks at instants with nothing due, after the start (N open conversations, N due
  rows): median and 95th percentile, in ms. The roster check a running scheduler makes once
  a minute (``reconcile``) is timed apart.
- the same start when one student in ten is busy with another conversation, and then the
  tick that starts theirs once those end (the wake-ups).

SQLite in a temporary folder; ``--postgres URL`` runs on a scratch database of that server
(created and dropped). Results go to standard output as JSON; docs/benchmarks.md holds them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine_info
from bot.app import App
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.scheduler import Scheduler
from storage import Audience, Database, metadata

MONDAY = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
WEDNESDAY_TEN = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # DEFAULT_TIMEZONE is UTC here
RULE = "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0"


def roster(db: Database, students: int) -> None:
    """N students with a Telegram account each, in one transaction (not what's measured)."""
    tables = metadata.tables
    now = datetime.now(UTC)
    people = [
        {
            "id": n,
            "handle": f"s{n}",
            "display_name": f"Student {n}",
            "first_name": "Student",
            "timezone": None,
            "language": "en",
            "opted_out": False,
            "created_at": now,
        }
        for n in range(1, students + 1)
    ]
    with db.begin() as conn:
        conn.execute(insert(tables["person"]), people)
        conn.execute(
            insert(tables["person_role"]),
            [{"person_id": p["id"], "role": "student"} for p in people],
        )
        conn.execute(
            insert(tables["channel_identity"]),
            [
                {
                    "platform": "telegram",
                    "workspace": "",
                    "platform_user_id": str(p["id"]),
                    "chat_id": str(p["id"]),
                    "person_id": p["id"],
                    "unreachable": False,
                    "created_at": now,
                }
                for p in people
            ],
        )
        if db.dialect == "postgresql":
            conn.execute(text("SELECT setval('person_id_seq', :n)"), {"n": students})


def run(url: str, students: int, repeat: int, busy_share: int) -> dict[str, Any]:
    db = Database(url)
    db.upgrade()
    roster(db, students)
    clock = FrozenClock(MONDAY)
    app = App.create(load_settings(database_url=url, default_timezone="UTC"), clock=clock)
    if busy_share:
        flow = app.registry.get("goal_setting")
        for person_id in range(1, students + 1, busy_share):
            app.service.open(person_id, flow, platform="telegram", address=str(person_id))
    app.schedules.add(
        "weekly_checkin", RULE, Audience(everyone=True), now=MONDAY, default_zone="UTC"
    )
    scheduler = Scheduler(app)
    scheduler.tick(MONDAY)  # the first tick reconciles: not part of the start

    clock.set(WEDNESDAY_TEN)
    began = time.perf_counter()
    report = scheduler.tick(WEDNESDAY_TEN)
    start_s = time.perf_counter() - began
    result: dict[str, Any] = {
        "students": students,
        "busy": len(report.waiting),
        "start_s": start_s,
        "started": len(report.started),
        "started_per_s": len(report.started) / start_s,
    }

    idle: list[float] = []
    at = WEDNESDAY_TEN + timedelta(minutes=1)
    for _ in range(repeat):
        at += timedelta(seconds=5)
        clock.set(at)
        began = time.perf_counter()
        quiet = scheduler.tick(at)
        idle.append((time.perf_counter() - began) * 1000)
        assert not quiet, quiet.summary()
    reconciles = []
    for _ in range(max(3, repeat // 10)):
        began = time.perf_counter()
        scheduler.reconcile(at)
        reconciles.append((time.perf_counter() - began) * 1000)
    idle.sort()
    result.update(
        idle_tick_ms_p50=statistics.median(idle),
        idle_tick_ms_p95=idle[int(0.95 * (len(idle) - 1))],
        reconcile_ms=statistics.median(reconciles),
    )

    if busy_share:  # those busy students finish: their check-ins start on the next tick
        with db.begin() as conn:
            conn.execute(
                text("UPDATE conversation SET status = 'completed' WHERE flow_id = 'goal_setting'")
            )
            conn.execute(
                text("UPDATE due_start SET wake_at = :now WHERE waiting = 'busy'"),
                {"now": at.replace(tzinfo=None) if db.dialect == "sqlite" else at},
            )
        began = time.perf_counter()
        woken = scheduler.tick(at)
        result.update(woken=len(woken.started), woken_s=time.perf_counter() - began)
    db.dispose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50, help="idle ticks timed")
    parser.add_argument("--busy-share", type=int, default=0, help="1 in N students busy")
    parser.add_argument("--postgres", metavar="URL", help="a server to make a scratch db on")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine_info(), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory(prefix="profilebot-sched-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        results["sqlite"] = run(url, args.students, args.repeat, args.busy_share)
    if args.postgres:
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"pb_sched_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            results["postgresql"] = run(url, args.students, args.repeat, args.busy_share)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
