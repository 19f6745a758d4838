"""The scheduler on SQLite and PostgreSQL, with time moved by a FrozenClock (nothing sleeps):
local times across zones and daylight-saving changes, school breaks from a real .ics file,
quiet hours, reminders then expiry, catch-up after downtime, busy and opted-out students,
students without a chat account, run-due twice at one instant, and jumps in time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.app import App
from bot.clock import FrozenClock
from bot.scheduler import REMINDER, RunReport, Scheduler
from bot.school_calendar import read_breaks
from dialogues import Inbound
from storage import IMMEDIATELY, Audience, Database, PersonRecord, SchoolBreak
from tests.flows_app import app_with_flows

PING = """
id: ping
version: 1
title: Ping
steps:
  - id: hello
    type: message
    say: "Hello {{ person.first_name }}!"
"""

CLUB = """
id: club
version: 1
title: Club
intro: "Club time, {{ person.first_name }}."
settings:
  remind_after: 1d
  max_reminders: 2
  expire_after: 3d
steps:
  - id: sport
    ask: Favourite sport?
    type: choice
    options: [football, swimming]
  - id: why
    ask: Why that one?
    type: text
"""

NUDGE = """
id: nudge
version: 1
title: Nudge
settings:
  remind_after: 2h
  max_reminders: 1
  expire_after: 2d
steps:
  - id: mood
    ask: How are you?
    type: text
"""

CALENDAR = Path(__file__).parent / "data" / "school_calendar.ics"
MONDAY = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY)


@pytest.fixture
def app(database: Database, tmp_path: Path, clock: FrozenClock) -> App:
    flows = {"ping": PING, "club": CLUB, "nudge": NUDGE}
    return app_with_flows(
        database, tmp_path / "flows", clock, flows, default_timezone="Europe/Madrid"
    )


_accounts = iter(range(5000, 9000))


def student(app: App, name: str, zone: str | None = None, *, chat: bool = True) -> PersonRecord:
    person = app.people.add(name, "student", group="7B", timezone=zone)
    if chat:
        account = str(next(_accounts))
        app.people.link_identity(person.id, "telegram", None, account, account)
    return person


def schedule(app: App, flow: str, rule: str, audience: Audience | None = None) -> int:
    return app.schedules.add(
        flow,
        rule,
        audience or Audience(groups=("7B",)),
        now=app.clock.now(),
        default_zone=app.settings.default_timezone,
    ).id


def run_due(app: App, clock: FrozenClock, at: datetime) -> RunReport:
    """`profilebot schedule run-due --now AT`: a fresh scheduler's tick at ``at``."""
    clock.set(at)
    return Scheduler(app).tick(at)


def walk(
    app: App, clock: FrozenClock, start: datetime, stop: datetime, step: timedelta
) -> Iterator[tuple[datetime, RunReport]]:
    """The running bot: one scheduler ticking at every ``step`` from ``start`` to ``stop``."""
    scheduler = Scheduler(app)
    at = start
    while at <= stop:
        clock.set(at)
        yield at, scheduler.tick(at)
        at += step


def names(items: list[object]) -> list[tuple[str, str | None]]:
    return [(i.person, i.reason) for i in items]  # type: ignore[attr-defined]


def texts(app: App, person: PersonRecord) -> list[str]:
    return [m.reply.text for m in app.outbox.for_person(person.id)]


def local(at: datetime, zone: str) -> datetime:
    return at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


# -- local time ---------------------------------------------------------------------------


def test_each_student_starts_at_ten_in_their_own_time_zone(app: App, clock: FrozenClock) -> None:
    zones = {"Asia/Tokyo": "tokyo", "Europe/Berlin": "berlin", "America/New_York": "ny"}
    people = {zone: student(app, f"{handle} kid", zone) for zone, handle in zones.items()}
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")

    started: dict[str, list[datetime]] = {}
    for at, report in walk(app, clock, MONDAY, MONDAY + timedelta(days=10), timedelta(minutes=30)):
        for item in report.started:
            started.setdefault(item.person, []).append(at)

    for zone, person in people.items():
        assert [local(at, zone) for at in started[person.handle]] == [
            datetime(2026, 6, 3, 10, 0),
            datetime(2026, 6, 10, 10, 0),
        ], zone
        assert texts(app, person) == [f"Hello {person.first_name}!"] * 2


@pytest.mark.parametrize(
    ("zone", "change"),
    [
        pytest.param("America/New_York", date(2026, 3, 8), id="us-spring"),
        pytest.param("America/New_York", date(2026, 11, 1), id="us-autumn"),
        pytest.param("Europe/Berlin", date(2026, 3, 29), id="eu-spring"),
        pytest.param("Europe/Berlin", date(2026, 10, 25), id="eu-autumn"),
    ],
)
def test_ten_stays_ten_across_a_daylight_saving_change(
    app: App, clock: FrozenClock, zone: str, change: date
) -> None:
    """Never an hour off, never twice, never skipped: the daily and the Sunday-weekly start
    land at 10:00 local on each day around the change (the change itself is a Sunday)."""
    begin = datetime.combine(change - timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    clock.set(begin)
    person = student(app, "Dee Stone", zone)
    daily = schedule(app, "ping", "FREQ=DAILY;BYHOUR=10;BYMINUTE=0")
    sunday = schedule(app, "ping", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=10;BYMINUTE=0")

    started: dict[int | None, list[datetime]] = {daily: [], sunday: []}
    end = begin + timedelta(days=7)
    for at, report in walk(app, clock, begin, end, timedelta(minutes=30)):
        for item in report.started:
            assert item.person == person.handle
            started[item.schedule].append(local(at, zone))

    days = [change + timedelta(days=n) for n in range(-3, 4)]
    assert started[daily] == [
        datetime.combine(d, datetime.min.time()).replace(hour=10) for d in days
    ]
    assert started[sunday] == [datetime.combine(change, datetime.min.time()).replace(hour=10)]


@pytest.mark.parametrize(
    ("change", "hour", "expected"),
    [
        # 02:30 does not exist on the spring day: that day's start comes just after the gap
        pytest.param(date(2026, 3, 8), 2, ["02:30", "03:30", "02:30"], id="spring-gap"),
        # 01:30 happens twice on the autumn day: the start comes once, at the first
        pytest.param(date(2026, 11, 1), 1, ["01:30", "01:30", "01:30"], id="autumn-fold"),
    ],
)
def test_a_time_the_change_skips_or_repeats_starts_once(
    app: App, clock: FrozenClock, change: date, hour: int, expected: list[str]
) -> None:
    zone = "America/New_York"
    begin = datetime.combine(change - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    clock.set(begin)
    app_quiet_off(app)
    student(app, "Nat Owl", zone)
    schedule(app, "ping", f"FREQ=DAILY;BYHOUR={hour};BYMINUTE=30")

    seen = [
        local(at, zone).strftime("%H:%M")
        for at, report in walk(app, clock, begin, begin + timedelta(days=3), timedelta(minutes=30))
        for _ in report.started
    ]
    assert seen == expected


def app_quiet_off(app: App) -> None:
    """The night-time tests need quiet hours out of the way."""
    app.settings.quiet_hours = "off"


# -- school breaks and quiet hours ---------------------------------------------------------


def test_no_scheduled_start_on_a_break_from_the_school_calendar(
    app: App, clock: FrozenClock
) -> None:
    found = read_breaks(CALENDAR)
    assert (found.timed, found.recurring) == (1, 1)  # the parents' evening, the assembly
    first = app.schedules.import_breaks(found.breaks)
    again = app.schedules.import_breaks(read_breaks(CALENDAR).breaks)
    assert (first.added, again.added, again.unchanged) == (2, 0, 2)
    assert [(b.name, b.starts_on, b.ends_on) for b in app.schedules.breaks()] == [
        ("Winter break", date(2026, 12, 21), date(2027, 1, 1)),
        ("Staff development day (no students)", date(2027, 1, 6), date(2027, 1, 6)),
    ]
    clock.set(datetime(2026, 12, 14, tzinfo=UTC))
    ana = student(app, "Ana Madrid")  # DEFAULT_TIMEZONE: Europe/Madrid
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")

    outcome: dict[date, tuple[str, str | None]] = {}
    for at, report in walk(
        app, clock, clock.now(), datetime(2027, 1, 14, tzinfo=UTC), timedelta(hours=3)
    ):
        for kind in ("started", "skipped", "waiting"):
            for item in getattr(report, kind):
                outcome[local(at, "Europe/Madrid").date()] = (kind, item.reason)

    assert outcome == {
        date(2026, 12, 16): ("started", None),
        date(2026, 12, 23): ("skipped", "break"),
        date(2026, 12, 30): ("skipped", "break"),
        date(2027, 1, 6): ("skipped", "break"),  # the staff day
        date(2027, 1, 13): ("started", None),
    }
    assert texts(app, ana) == ["Hello Ana!"] * 2


def test_a_start_inside_quiet_hours_waits_for_the_morning(app: App, clock: FrozenClock) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=22;BYMINUTE=0")
    at_ten = datetime(2026, 6, 3, 20, 0, tzinfo=UTC)  # 22:00 in Madrid (UTC+2)

    held = run_due(app, clock, at_ten)
    assert names(held.waiting) == [(ana.handle, "quiet_hours")] and not held.started
    assert not run_due(app, clock, at_ten)
    assert not run_due(app, clock, datetime(2026, 6, 4, 4, 59, tzinfo=UTC))  # 06:59
    morning = run_due(app, clock, datetime(2026, 6, 4, 5, 0, tzinfo=UTC))  # 07:00
    assert names(morning.started) == [(ana.handle, None)]
    assert {m.not_before for m in app.outbox.for_person(ana.id)} == {IMMEDIATELY}
    # the rule goes on from its next occurrence, the next Wednesday at 22:00
    (due,) = app.schedules.due_starts(person_id=ana.id)
    assert (due.occurrence, due.waiting) == ("2026-06-10T22:00", None)


def test_a_reminder_waits_out_quiet_hours(app: App, clock: FrozenClock) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "nudge", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=20;BYMINUTE=0")
    started = run_due(app, clock, datetime(2026, 6, 3, 18, 0, tzinfo=UTC))  # 20:00 Madrid
    assert names(started.started) == [(ana.handle, None)]

    held = run_due(app, clock, datetime(2026, 6, 3, 20, 0, tzinfo=UTC))  # 22:00: quiet
    assert names(held.waiting) == [(ana.handle, "quiet_hours")] and not held.reminded
    assert not run_due(app, clock, datetime(2026, 6, 4, 4, 59, tzinfo=UTC))
    morning = run_due(app, clock, datetime(2026, 6, 4, 5, 0, tzinfo=UTC))  # 07:00
    assert names(morning.reminded) == [(ana.handle, None)]
    assert texts(app, ana)[-1] == f"{REMINDER}\n\nHow are you?"


def test_a_reminder_waits_out_a_break(app: App, clock: FrozenClock) -> None:
    ana = student(app, "Ana Madrid")
    app.schedules.add_break(SchoolBreak("Sports days", date(2026, 6, 10), date(2026, 6, 11)))
    clock.set(datetime(2026, 6, 10, 6, 0, tzinfo=UTC))  # she starts one herself, 08:00
    app.service.open(ana.id, app.registry.get("nudge"), platform="telegram", address="x")

    held = run_due(app, clock, datetime(2026, 6, 10, 8, 0, tzinfo=UTC))  # due, on the break
    assert names(held.waiting) == [(ana.handle, "break")]
    assert not run_due(app, clock, datetime(2026, 6, 11, 23, 30, tzinfo=UTC))
    after = run_due(app, clock, datetime(2026, 6, 12, 5, 0, tzinfo=UTC))  # Friday 07:00
    assert names(after.reminded) == [(ana.handle, None)]


# -- reminders and expiry ------------------------------------------------------------------


def test_reminders_repeat_the_question_then_the_conversation_expires(
    app: App, clock: FrozenClock
) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    start = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)  # 10:00 Madrid
    assert names(run_due(app, clock, start).started) == [(ana.handle, None)]
    assert texts(app, ana) == ["Club time, Ana.", "Favourite sport?"]

    assert not run_due(app, clock, start + timedelta(hours=23))
    first = run_due(app, clock, start + timedelta(days=1))
    assert names(first.reminded) == [(ana.handle, None)]
    assert texts(app, ana)[-1] == f"{REMINDER}\n\nFavourite sport?"
    assert not run_due(app, clock, start + timedelta(days=1))  # the same instant again
    second = run_due(app, clock, start + timedelta(days=2))
    assert names(second.reminded) == [(ana.handle, None)]
    assert not run_due(app, clock, start + timedelta(days=2, hours=23))  # max_reminders: 2
    expired = run_due(app, clock, start + timedelta(days=3))
    assert names(expired.expired) == [(ana.handle, None)]
    with app.db.begin() as conn:
        assert conn.execute(text("SELECT status FROM conversation")).scalar_one() == "expired"
    with app.db.begin() as conn:
        proactive = conn.execute(text("SELECT count(*) FROM outbox WHERE proactive")).scalar()
    assert proactive == 4  # the intro, the question and two reminders
    assert len(texts(app, ana)) == 4  # nothing is sent on expiry


def test_an_answer_resets_the_reminder_and_expiry_times(app: App, clock: FrozenClock) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    start = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    run_due(app, clock, start)
    run_due(app, clock, start + timedelta(days=1))  # first reminder
    answered = start + timedelta(days=1, hours=6)
    clock.set(answered)
    app.service.handle(ana.id, Inbound.of_text("2"), platform="telegram", address="x")

    assert not run_due(app, clock, start + timedelta(days=2))  # no longer due
    again = run_due(app, clock, answered + timedelta(days=1))
    assert names(again.reminded) == [(ana.handle, None)]
    assert texts(app, ana)[-1] == f"{REMINDER}\n\nWhy that one?"
    run_due(app, clock, answered + timedelta(days=2))  # the second, counted afresh
    assert not run_due(app, clock, answered + timedelta(days=2, hours=23))
    assert names(run_due(app, clock, answered + timedelta(days=3)).expired) == [(ana.handle, None)]


def test_a_stopped_student_gets_no_reminder(app: App, clock: FrozenClock) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    start = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    run_due(app, clock, start)
    clock.set(start + timedelta(hours=1))
    app.service.handle(ana.id, Inbound.of_text("/stop"), platform="telegram", address="x")
    sent = len(texts(app, ana))

    report = run_due(app, clock, start + timedelta(days=2))
    assert not report.reminded and len(texts(app, ana)) == sent


# -- catching up, busy, opted out, no account ------------------------------------------------


def test_a_catch_up_after_downtime_happens_once(app: App, clock: FrozenClock) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    # the bot was down over Wednesday 10:00 and is back at 15:00 (within the 12 h grace)
    back = datetime(2026, 6, 3, 13, 0, tzinfo=UTC)
    reports = [r for _, r in walk(app, clock, back, back + timedelta(days=6), timedelta(hours=1))]
    assert [names(r.started) for r in reports if r] == [[(ana.handle, None)]]

    # down for three weeks: the first missed occurrence is reported once, not three times,
    # and the latest (within the grace) is caught up
    later = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # Wednesday 16:00 in Madrid
    report = run_due(app, clock, later)
    assert names(report.skipped) == [(ana.handle, "missed")]
    assert names(report.started) == [(ana.handle, None)]
    assert not run_due(app, clock, later)
    assert texts(app, ana) == ["Hello Ana!"] * 2


def test_a_busy_student_waits_and_gets_it_when_the_other_conversation_ends(
    app: App, clock: FrozenClock
) -> None:
    ana = student(app, "Ana Madrid")
    clock.set(datetime(2026, 6, 3, 7, 0, tzinfo=UTC))
    app.service.open(ana.id, app.registry.get("club"), platform="telegram", address="x")
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")

    due = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    assert names(run_due(app, clock, due).waiting) == [(ana.handle, "busy")]
    assert not run_due(app, clock, due)
    assert not run_due(app, clock, due + timedelta(hours=20))  # still busy: nothing to do

    # the next day (past the 12 h grace: a wait is not a miss) she finishes the other one
    clock.set(due + timedelta(hours=26))
    for answer in ("1", "Fun"):
        app.service.handle(ana.id, Inbound.of_text(answer), platform="telegram", address="x")
    report = run_due(app, clock, due + timedelta(hours=26))
    assert names(report.started) == [(ana.handle, None)]
    assert texts(app, ana)[-1] == "Hello Ana!"


def test_an_opted_out_student_is_skipped_until_they_write_again(
    app: App, clock: FrozenClock
) -> None:
    ana = student(app, "Ana Madrid")
    app.service.open(ana.id, app.registry.get("club"), platform="telegram", address="x")
    app.service.handle(ana.id, Inbound.of_text("/stop"), platform="telegram", address="x")
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    sent = len(texts(app, ana))

    week_1 = run_due(app, clock, datetime(2026, 6, 3, 8, 0, tzinfo=UTC))
    assert names(week_1.skipped) == [(ana.handle, "opted_out")]
    assert len(texts(app, ana)) == sent
    # she writes again (and finishes that conversation): the next week's reaches her
    for answer in ("hi", "1", "Fun"):
        app.service.handle(ana.id, Inbound.of_text(answer), platform="telegram", address="x")
    week_2 = run_due(app, clock, datetime(2026, 6, 10, 8, 0, tzinfo=UTC))
    assert names(week_2.started) == [(ana.handle, None)]


def test_a_student_without_an_account_is_started_and_chat_resumes_it(
    app: App, clock: FrozenClock
) -> None:
    ben = student(app, "Ben Ode", chat=False)
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    start = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)

    report = run_due(app, clock, start)
    assert names(report.started) == [(ben.handle, "no_account")]
    assert texts(app, ben) == []
    assert not run_due(app, clock, start + timedelta(days=1))  # nobody to remind

    clock.set(start + timedelta(days=1, hours=1))
    resumed = app.service.open(ben.id, None, platform="console", address=ben.handle)
    assert [r.text for r in resumed.replies] == ["Club time, Ben.", "Favourite sport?"]


# -- instants ---------------------------------------------------------------------------------


def test_run_due_twice_at_one_instant_does_nothing_the_second_time(
    app: App, clock: FrozenClock
) -> None:
    people = [student(app, f"Kid {n}") for n in range(4)]
    busy, stopped = people[0], people[1]
    student(app, "Ned Noaccount", chat=False)
    clock.set(datetime(2026, 6, 3, 7, 0, tzinfo=UTC))
    app.service.open(busy.id, app.registry.get("nudge"), platform="telegram", address="x")
    app.service.open(stopped.id, app.registry.get("nudge"), platform="telegram", address="y")
    app.service.handle(stopped.id, Inbound.of_text("/stop"), platform="telegram", address="y")
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    at = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)

    first = run_due(app, clock, at)
    assert (len(first.started), len(first.waiting), len(first.skipped)) == (3, 1, 1)
    messages = app.outbox.pending(limit=1000, now=at)
    second = run_due(app, clock, at)
    assert not second and second.to_json()["started"] == []
    assert app.outbox.pending(limit=1000, now=at) == messages


def test_a_jump_far_ahead_then_the_real_clock_leaves_nothing_stuck_or_doubled(
    app: App, clock: FrozenClock
) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=FR;BYHOUR=10;BYMINUTE=0")
    # an operator runs run-due three months ahead, then starts the bot on the real clock
    ahead = run_due(app, clock, datetime(2026, 9, 2, 10, 0, tzinfo=UTC))  # Wed 12:00 Madrid
    assert names(ahead.started) == [(ana.handle, None)]  # the ping of that day (catch-up)
    assert {r for _, r in names(ahead.skipped)} == {"missed"}
    assert {m.not_before for m in app.outbox.for_person(ana.id)} == {IMMEDIATELY}

    starts: list[tuple[str, str | None, datetime]] = []
    for at, report in walk(
        app, clock, MONDAY, datetime(2026, 6, 13, tzinfo=UTC), timedelta(hours=1)
    ):
        starts += [(i.flow, i.reason, local(at, "Europe/Madrid")) for i in report.started]
    # the real Wednesday's and Friday's starts all happen, each once, at 10:00
    assert starts == [
        ("ping", None, datetime(2026, 6, 3, 10, 0)),
        ("club", None, datetime(2026, 6, 5, 10, 0)),
        ("ping", None, datetime(2026, 6, 10, 10, 0)),
        ("club", None, datetime(2026, 6, 12, 10, 0)),
    ]
    # and when the real clock reaches the day run ahead, that start does not come twice
    later = [
        r
        for _, r in walk(
            app,
            clock,
            datetime(2026, 9, 2, 6, 0, tzinfo=UTC),
            datetime(2026, 9, 2, 12, 0, tzinfo=UTC),
            timedelta(hours=1),
        )
    ]
    assert [i.flow for r in later for i in r.started] == []
    assert texts(app, ana).count("Hello Ana!") == 3


# -- failures and the running loop -------------------------------------------------------------


def test_a_start_that_fails_is_skipped_alone_and_holds_up_nobody(
    app: App, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [student(app, f"Kid {n}") for n in range(5)]
    broken = people[2]
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    scheduler = Scheduler(app, batch=3)
    real_start = scheduler._outreach.start_in

    def start_in(turn, flow, origin, **options):  # type: ignore[no-untyped-def]
        if turn.person.id == broken.id:
            raise RuntimeError("a bug that only this student's data shows")
        return real_start(turn, flow, origin, **options)

    monkeypatch.setattr(scheduler._outreach, "start_in", start_in)
    at = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    clock.set(at)

    report = scheduler.tick(at)

    assert sorted(names(report.started)) == sorted((p.handle, None) for p in people if p != broken)
    assert names(report.skipped) == [(broken.handle, "failed")]
    assert texts(app, broken) == []
    (due,) = app.schedules.due_starts(person_id=broken.id)
    assert due.occurrence == "2026-06-10T10:00"  # moved on: next week is tried afresh
    assert not scheduler.tick(at)


async def test_run_ticks_on_the_apps_clock_until_stopped(app: App, clock: FrozenClock) -> None:
    import asyncio

    ana = student(app, "Ana Madrid")
    schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    clock.set(datetime(2026, 6, 3, 8, 0, tzinfo=UTC))
    stop = asyncio.Event()
    reports: list[RunReport] = []

    async def offload(work, *args):  # type: ignore[no-untyped-def]
        reports.append(work(*args))
        stop.set()  # one tick is enough to see it
        return reports[-1]

    await Scheduler(app, offload=offload).run(stop)

    assert [names(r.started) for r in reports] == [[(ana.handle, None)]]
    assert reports[0].now == clock.now()


# -- the roster, and several schedulers ---------------------------------------------------------


def test_due_starts_follow_the_roster_and_time_zones(app: App, clock: FrozenClock) -> None:
    ana, ben = student(app, "Ana Madrid"), student(app, "Ben Tokyo", "Asia/Tokyo")
    schedule_id = schedule(app, "ping", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    teacher = app.people.add("Tess Teacher", "teacher", group="7B")

    def due() -> dict[str, tuple[str, datetime]]:
        handles = {p.id: p.handle for p in (ana, ben, teacher)}
        rows = app.schedules.due_starts(schedule_id=schedule_id)
        return {handles.get(r.person_id, "new"): (r.occurrence, r.due_at) for r in rows}

    assert due() == {
        "ana-madrid": ("2026-06-03T10:00", datetime(2026, 6, 3, 8, 0, tzinfo=UTC)),
        "ben-tokyo": ("2026-06-03T10:00", datetime(2026, 6, 3, 1, 0, tzinfo=UTC)),
    }  # the teacher in 7B gets no check-in
    cy = student(app, "Cy Newcomer", "America/New_York")  # joins 7B
    with app.db.begin() as conn:  # Ben moves to New York; Ana leaves 7B
        conn.execute(
            text("UPDATE person SET timezone = 'America/New_York' WHERE id = :id"), {"id": ben.id}
        )
        conn.execute(text("DELETE FROM group_member WHERE person_id = :id"), {"id": ana.id})

    Scheduler(app).reconcile(clock.now())

    new_york_ten = datetime(2026, 6, 3, 14, 0, tzinfo=UTC)
    assert due() == {
        "ben-tokyo": ("2026-06-03T10:00", new_york_ten),
        "new": ("2026-06-03T10:00", new_york_ten),
    }
    assert [r.person_id for r in app.schedules.due_starts(schedule_id=schedule_id)] == [
        ben.id,
        cy.id,
    ]


def test_two_schedulers_at_one_instant_start_each_student_once(
    app: App, clock: FrozenClock
) -> None:
    """Two processes' worth (each its own connections), ticking together: on PostgreSQL
    they split the due rows (SKIP LOCKED); either way each student starts once."""
    import threading

    people = [student(app, f"Kid {n}") for n in range(60)]
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    at = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    clock.set(at)
    others = [App.create(app.settings, clock=FrozenClock(at)) for _ in range(2)]
    reports: list[RunReport] = []
    ready = threading.Barrier(2)

    def run(bot: App) -> None:
        scheduler = Scheduler(bot, batch=7)
        scheduler.reconcile(at)
        ready.wait()
        reports.append(scheduler.tick(at))

    threads = [threading.Thread(target=run, args=(bot,)) for bot in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    started = sorted(i.person for r in reports for i in r.started)
    assert started == sorted(p.handle for p in people)
    with app.db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM conversation")).scalar_one() == 60
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 120
    for bot in others:
        bot.db.dispose()


def test_a_reminder_that_fails_stops_alone(
    app: App, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [student(app, f"Kid {n}") for n in range(3)]
    broken = people[1]
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    start = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    run_due(app, clock, start)
    real_engine_for = app.service.engine_for

    def engine_for(turn, record):  # type: ignore[no-untyped-def]
        if turn.person.id == broken.id:
            raise RuntimeError("this conversation's flow no longer compiles")
        return real_engine_for(turn, record)

    monkeypatch.setattr(app.service, "engine_for", engine_for)
    report = run_due(app, clock, start + timedelta(days=1))

    assert sorted(names(report.reminded)) == sorted((p.handle, None) for p in people if p != broken)
    assert texts(app, broken)[-1] == "Favourite sport?"  # no reminder, and no error sent
    later = run_due(app, clock, start + timedelta(days=2))  # the others' second reminder
    assert sorted(names(later.reminded)) == sorted((p.handle, None) for p in people if p != broken)


def test_a_conversation_started_far_ahead_does_not_keep_its_student_busy_on_the_real_clock(
    app: App, clock: FrozenClock
) -> None:
    ana = student(app, "Ana Madrid")
    schedule(app, "club", "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0")
    ahead = run_due(app, clock, datetime(2026, 9, 2, 8, 0, tzinfo=UTC))
    assert names(ahead.started) == [(ana.handle, None)]  # left unanswered

    seen: list[tuple[str, datetime]] = []
    for at, report in walk(
        app, clock, MONDAY, datetime(2026, 6, 11, tzinfo=UTC), timedelta(hours=1)
    ):
        for kind in ("started", "expired", "reminded"):
            seen += [(kind, local(at, "Europe/Madrid")) for _ in getattr(report, kind)]

    # on the real clock it counts from when the bot first saw it (Monday 02:00 in Madrid):
    # reminded the next morning and the one after, expired after 3 days; the real
    # Wednesday's check-in waited for that, then came (after quiet hours)
    assert seen == [
        ("reminded", datetime(2026, 6, 2, 7, 0)),
        ("reminded", datetime(2026, 6, 3, 7, 0)),
        ("expired", datetime(2026, 6, 4, 2, 0)),
        ("started", datetime(2026, 6, 4, 7, 0)),
        ("reminded", datetime(2026, 6, 5, 7, 0)),
        ("reminded", datetime(2026, 6, 6, 7, 0)),
        ("expired", datetime(2026, 6, 7, 7, 0)),
        ("started", datetime(2026, 6, 10, 10, 0)),
    ]
