"""Starting a flow on the bot's own initiative (bot/outreach.py), on SQLite and PostgreSQL:
exactly once, never over another conversation, never to someone who said /stop, and waiting
for someone without a chat account until they turn up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import App
from bot.clock import FrozenClock
from bot.outreach import Decision, Origin, Outreach
from dialogues import Inbound
from storage import (
    IMMEDIATELY,
    WHEN_FREE,
    Audience,
    Database,
    PersonRecord,
    ScheduleStore,
)
from tests.flows_app import CLUB_FLOW, app_with_flows

NOW = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def app(database: Database, tmp_path: Path, clock: FrozenClock) -> App:
    return app_with_flows(database, tmp_path / "flows", clock, {"club": CLUB_FLOW})


@pytest.fixture
def outreach(app: App) -> Outreach:
    return Outreach(app)


def survey_of(app: App, group: str = "7B") -> Origin:
    """A survey row for ``group`` (its store is another part's; the table is enough here)."""
    with app.db.begin() as conn:
        group_id = conn.execute(
            text("SELECT id FROM student_group WHERE name = :n"), {"n": group}
        ).scalar_one()
        survey_id = conn.execute(
            text(
                "INSERT INTO survey (flow_id, group_id, sent_at) VALUES ('club', :g, :t) "
                "RETURNING id"
            ),
            {"g": group_id, "t": NOW},
        ).scalar_one()
    return Origin.survey(int(survey_id))


def student(app: App, name: str, *, telegram: str | None = None) -> PersonRecord:
    person = app.people.add(name, "student", group="7B", timezone="Europe/Madrid")
    if telegram is not None:
        app.people.link_identity(person.id, "telegram", None, telegram, telegram)
    return person


def conversation_row(app: App, conversation_id: int) -> dict[str, object]:
    with app.db.begin() as conn:
        row = conn.execute(
            text(
                "SELECT status, step, schedule_id, survey_id, remind_at, expires_at "
                "FROM conversation WHERE id = :id"
            ),
            {"id": conversation_id},
        ).one()
    return dict(row._mapping)


def test_a_start_queues_the_first_messages_proactively_to_the_persons_chat(
    app: App, outreach: Outreach
) -> None:
    ana = student(app, "Ana López", telegram="1001")
    origin = survey_of(app)
    start = outreach.start(ana.id, app.registry.get("club"), origin)

    assert start.decision is Decision.STARTED and start.reason is None
    assert start.chat is not None and (start.chat.platform, start.chat.address) == (
        "telegram",
        "1001",
    )
    messages = app.outbox.for_person(ana.id)
    assert [m.reply.text for m in messages] == [
        "Hi Ana! A quick one about the club.",
        "Favourite sport?",
    ]
    assert [m.id for m in messages] == list(start.outbox_ids)
    assert all(m.not_before == IMMEDIATELY and m.address == "1001" for m in messages)
    with app.db.begin() as conn:
        proactive = conn.execute(text("SELECT proactive FROM outbox")).scalars().all()
    assert proactive and all(proactive)

    assert start.conversation_id is not None
    row = conversation_row(app, start.conversation_id)
    assert row["survey_id"] == origin.survey_id and row["schedule_id"] is None
    # reminders and expiry count from the start (the flow's remind_after 1d, expire_after 3d)
    assert _utc(row["remind_at"]) == NOW + timedelta(days=1)
    assert _utc(row["expires_at"]) == NOW + timedelta(days=3)


def test_the_same_origin_starts_once_per_person(app: App, outreach: Outreach) -> None:
    ana = student(app, "Ana López", telegram="1001")
    origin = survey_of(app)
    flow = app.registry.get("club")
    first = outreach.start(ana.id, flow, origin)
    # the student finishes it, so she is free again: the same origin still does not restart
    app.service.handle(ana.id, Inbound.of_text("1"), platform="telegram", address="1001")
    app.service.handle(ana.id, Inbound.of_text("Fun"), platform="telegram", address="1001")
    again = outreach.start(ana.id, flow, origin)

    assert first.started and again.decision is Decision.DUPLICATE
    with app.db.begin() as conn:
        count = conn.execute(text("SELECT count(*) FROM conversation")).scalar_one()
    assert count == 1
    # another occurrence of a schedule is another start
    schedules = ScheduleStore(app.db)
    schedule = schedules.add(
        "club",
        "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10",
        Audience(people=(ana.handle,)),
        now=NOW,
        default_zone="UTC",
    )
    week_1 = outreach.start(ana.id, flow, Origin.schedule(schedule.id, "2026-06-03T10:00"))
    assert week_1.started
    app.service.handle(ana.id, Inbound.of_text("2"), platform="telegram", address="1001")
    app.service.handle(ana.id, Inbound.of_text("Water"), platform="telegram", address="1001")
    week_2 = outreach.start(ana.id, flow, Origin.schedule(schedule.id, "2026-06-10T10:00"))
    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="telegram", address="1001")
    repeat = outreach.start(ana.id, flow, Origin.schedule(schedule.id, "2026-06-10T10:00"))
    assert week_2.started and repeat.decision is Decision.DUPLICATE


def test_a_busy_student_waits_and_is_woken_when_the_other_conversation_ends(
    app: App, outreach: Outreach, clock: FrozenClock
) -> None:
    ana = student(app, "Ana López", telegram="1001")
    flow = app.registry.get("club")
    app.service.open(ana.id, flow, platform="telegram", address="1001")  # under way
    origin = survey_of(app)

    start = outreach.start(ana.id, flow, origin)

    assert start.decision is Decision.BUSY and start.reason == "busy"
    assert len(app.outbox.for_person(ana.id)) == 2  # only her own conversation's messages
    (due,) = ScheduleStore(app.db).due_starts(person_id=ana.id)
    assert (due.survey_id, due.waiting) == (origin.survey_id, "busy")
    assert ScheduleStore(app.db).wake_at(due.id) == WHEN_FREE

    clock.advance(timedelta(minutes=5))
    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="telegram", address="1001")
    assert ScheduleStore(app.db).wake_at(due.id) == clock.now()  # the scheduler looks now


def test_a_paused_conversation_does_not_make_a_student_busy(app: App, outreach: Outreach) -> None:
    ana = student(app, "Ana López", telegram="1001")
    flow = app.registry.get("club")
    app.service.open(ana.id, flow, platform="telegram", address="1001")
    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="telegram", address="1001")
    assert outreach.start(ana.id, flow, survey_of(app)).started


def test_an_opted_out_student_is_skipped_and_nothing_is_written(
    app: App, outreach: Outreach
) -> None:
    ana = student(app, "Ana López", telegram="1001")
    flow = app.registry.get("club")
    app.service.open(ana.id, flow, platform="telegram", address="1001")
    app.service.handle(ana.id, Inbound.of_text("/stop"), platform="telegram", address="1001")
    before = len(app.outbox.for_person(ana.id))
    origin = survey_of(app)

    start = outreach.start(ana.id, flow, origin)

    assert start.decision is Decision.OPTED_OUT and start.reason == "opted_out"
    assert len(app.outbox.for_person(ana.id)) == before
    assert ScheduleStore(app.db).due_starts(person_id=ana.id) == []
    # nor was the key taken: once she writes again, the same survey can still reach her
    app.service.handle(ana.id, Inbound.of_text("hello"), platform="telegram", address="1001")
    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="telegram", address="1001")
    assert outreach.start(ana.id, flow, origin).started


def test_a_student_the_roster_deactivated_is_started_nothing(app: App, outreach: Outreach) -> None:
    ana = student(app, "Ana López", telegram="1001")
    with app.db.begin() as conn:
        conn.execute(text("UPDATE person SET active = false WHERE id = :id"), {"id": ana.id})

    start = outreach.start(ana.id, app.registry.get("club"), survey_of(app))

    assert start.decision is Decision.LEFT and start.reason == "inactive"
    assert app.outbox.for_person(ana.id) == []


def test_a_student_without_an_account_gets_a_conversation_that_waits_for_them(
    app: App, outreach: Outreach
) -> None:
    ben = student(app, "Ben Ode")
    flow = app.registry.get("club")

    start = outreach.start(ben.id, flow, survey_of(app))

    assert start.decision is Decision.STARTED and start.reason == "no_account"
    assert start.chat is None and start.outbox_ids == ()
    assert app.outbox.for_person(ben.id) == []
    assert start.conversation_id is not None
    row = conversation_row(app, start.conversation_id)
    assert row["status"] == "active" and row["step"] == "__start__"  # not begun
    assert _utc(row["expires_at"]) == NOW + timedelta(days=3)

    # `profilebot chat --as ben` resumes it: it begins, intro first, no "welcome back"
    resumed = app.service.open(ben.id, None, platform="console", address=ben.handle)
    assert resumed.conversation_id == start.conversation_id
    assert [r.text for r in resumed.replies] == [
        "Hi Ben! A quick one about the club.",
        "Favourite sport?",
    ]


def test_the_chat_is_the_most_recently_linked_reachable_account(
    app: App, outreach: Outreach
) -> None:
    ana = student(app, "Ana López", telegram="1001")
    app.people.link_identity(ana.id, "slack", "T1", "U1", "D1")  # linked later
    flow = app.registry.get("club")
    first = outreach.start(ana.id, flow, survey_of(app))
    assert first.chat is not None and (first.chat.platform, first.chat.address) == ("slack", "D1")

    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="slack", address="D1")
    app.people.set_reachable("slack", "T1", reachable=False, user_id="U1")
    second = outreach.start(ana.id, flow, survey_of(app))
    assert second.chat is not None and second.chat.platform == "telegram"

    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="telegram", address="1001")
    app.people.set_reachable("telegram", None, reachable=False, user_id="1001")
    third = outreach.start(ana.id, flow, survey_of(app))
    assert third.started and third.reason == "unreachable" and third.chat is None


def test_a_fan_out_starts_everyone_once_in_batches_and_reports_each(
    app: App, outreach: Outreach
) -> None:
    people = [student(app, f"Student {n}", telegram=str(2000 + n)) for n in range(5)]
    busy = people[1]
    flow = app.registry.get("club")
    app.service.open(busy.id, flow, platform="telegram", address=str(2001))
    done: list[int] = []
    origin = survey_of(app)

    starts = outreach.start_many(
        [p.id for p in reversed(people)], flow, origin, progress=done.append
    )

    assert [s.person.id for s in starts] == sorted(p.id for p in people)
    assert [s.decision for s in starts] == [
        Decision.STARTED,
        Decision.BUSY,
        Decision.STARTED,
        Decision.STARTED,
        Decision.STARTED,
    ]
    assert done == [5]
    again = outreach.start_many([p.id for p in people], flow, origin)
    assert [s.decision for s in again].count(Decision.DUPLICATE) == 4


def test_a_hold_keeps_the_first_messages_until_quiet_hours_end(
    app: App, outreach: Outreach, clock: FrozenClock
) -> None:
    ana = student(app, "Ana López", telegram="1001")  # Madrid: UTC+2 in June
    clock.set(datetime(2026, 6, 3, 20, 30, tzinfo=UTC))  # 22:30 in Madrid
    morning = datetime(2026, 6, 4, 5, 0, tzinfo=UTC)  # 07:00 in Madrid
    assert outreach.quiet_hold(ana) == morning

    start = outreach.start(
        ana.id, app.registry.get("club"), survey_of(app), not_before=outreach.quiet_hold
    )

    assert start.started
    assert {m.not_before for m in app.outbox.for_person(ana.id)} == {morning}
    clock.set(datetime(2026, 6, 4, 6, 0, tzinfo=UTC))
    assert outreach.quiet_hold(ana) == IMMEDIATELY


def _utc(value: object) -> datetime:
    assert isinstance(value, datetime | str)
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
