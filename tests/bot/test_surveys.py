"""Surveys over time (bot/surveys.py), on SQLite and PostgreSQL, the clock moved by hand:
quiet hours hold a survey's messages for the morning, a busy student gets it later, reminders
repeat the waiting question, and a send that dies leaves the rest to the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App
from bot.clock import FrozenClock
from bot.outreach import Outreach
from bot.scheduler import Scheduler
from bot.surveys import SEND_GRACE, RepeatSurveyError, Surveys
from dialogues import Inbound
from storage import IMMEDIATELY, WHEN_FREE, Database, RosterEntry, metadata
from tests.flows_app import CLUB_FLOW, app_with_flows

# 20:30 in Berlin (summer time), 14:30 in New York
EVENING_IN_BERLIN = datetime(2026, 6, 3, 18, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(EVENING_IN_BERLIN)


@pytest.fixture
def app(database: Database, tmp_path: Path, clock: FrozenClock) -> App:
    app = app_with_flows(
        database, tmp_path / "flows", clock, {"club": CLUB_FLOW}, quiet_hours="20:00-07:00"
    )
    app.roster.import_people(
        [
            RosterEntry(2, "Tina", "teacher", handle="tina", groups=("7B",)),
            RosterEntry(
                3,
                "Ana",
                "student",
                handle="ana",
                groups=("7B",),
                timezone="Europe/Berlin",
                telegram_id="1001",
            ),
            RosterEntry(
                4,
                "Bo",
                "student",
                handle="bo",
                groups=("7B",),
                timezone="America/New_York",
                telegram_id="1002",
            ),
        ]
    )
    return app


def _pending(app: App, handle: str) -> list[tuple[str, datetime]]:
    person = app.people.get(handle)
    return [(m.reply.text, m.not_before) for m in app.outbox.for_person(person.id)]


def test_in_quiet_hours_a_survey_starts_and_its_messages_wait_for_the_morning(app: App) -> None:
    surveys = Surveys(app)
    report = surveys.send("club", "7B", actor=app.actor("tina"))
    assert report is not None and report.started == 2
    berlin_morning = datetime(2026, 6, 4, 5, 0, tzinfo=UTC)  # 07:00 in Berlin
    ana = _pending(app, "ana")
    assert [text for text, _ in ana] == ["Hi Ana! A quick one about the club.", "Favourite sport?"]
    assert {at for _, at in ana} == {berlin_morning}  # held, not dropped
    assert {at for _, at in _pending(app, "bo")} == {IMMEDIATELY}  # afternoon in New York
    assert app.outbox.pending(platform="telegram", now=EVENING_IN_BERLIN + timedelta(hours=1))
    assert not any(
        m.person_id == app.people.get("ana").id
        for m in app.outbox.pending(platform="telegram", now=berlin_morning - timedelta(minutes=1))
    )


def test_remind_repeats_the_waiting_question_and_respects_quiet_hours(
    app: App, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 6, 3, 8, 0, tzinfo=UTC))  # 10:00 in Berlin, 04:00 in New York
    surveys = Surveys(app)
    report = surveys.send("club", "7B", actor=None)
    assert report is not None
    bo = app.people.get("bo")
    app.service.handle(bo.id, Inbound.of_button("football"), platform="telegram", address="1002")
    clock.advance(timedelta(hours=12))  # 22:00 in Berlin, 16:00 in New York
    reminded = surveys.remind(report.survey.id, actor=app.actor("tina"))
    assert (reminded.reminded, reminded.held) == (2, 1)
    ana_text, ana_at = _pending(app, "ana")[-1]
    assert ana_text == "Just a reminder:\n\nFavourite sport?"
    assert ana_at == datetime(2026, 6, 4, 5, 0, tzinfo=UTC)  # 07:00 in Berlin
    bo_text, bo_at = _pending(app, "bo")[-1]
    assert bo_text == "Just a reminder:\n\nWhy that one?" and bo_at == IMMEDIATELY
    app.service.handle(bo.id, Inbound.of_text("Team"), platform="telegram", address="1002")
    assert surveys.remind(report.survey.id, actor=None).reminded == 1  # Bo has finished


def test_a_busy_student_gets_the_survey_when_their_conversation_ends(app: App) -> None:
    ana = app.people.get("ana")
    app.service.open(ana.id, app.registry.get("this_is_me"), platform="telegram", address="1001")
    surveys = Surveys(app)
    report = surveys.send("club", "7B", actor=None)
    assert report is not None
    assert (report.started, report.waiting) == (1, 1)
    assert "1 busy" in report.line()
    due = metadata.tables["due_start"]
    with app.db.read() as conn:
        rows = conn.execute(
            select(due.c.person_id, due.c.waiting, due.c.wake_at).where(
                due.c.survey_id == report.survey.id
            )
        ).all()
    assert sorted(rows) == sorted(
        [(ana.id, "busy", WHEN_FREE), (app.people.get("bo").id, None, None)]
    )
    assert Surveys(app).status(report.survey.id, actor=None).counts.started == 1


def test_a_send_that_dies_halfway_leaves_its_students_to_the_scheduler(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dies(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Outreach, "start_many", dies)
    with pytest.raises(KeyboardInterrupt):
        Surveys(app).send("club", "7B", actor=None)
    due = metadata.tables["due_start"]
    with app.db.read() as conn:
        wakes = set(conn.execute(select(due.c.wake_at)).scalars())
    assert wakes == {EVENING_IN_BERLIN + SEND_GRACE}
    with pytest.raises(RepeatSurveyError):  # the survey itself was sent
        Surveys(app).send("club", "7B", actor=None)


def test_the_scheduler_gives_a_busy_student_the_survey_once_they_are_free(
    app: App, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 6, 3, 12, 0, tzinfo=UTC))  # daytime in Berlin and New York
    ana = app.people.get("ana")
    app.service.open(ana.id, app.registry.get("this_is_me"), platform="telegram", address="1001")
    report = Surveys(app).send("club", "7B", actor=None)
    assert report is not None and report.waiting == 1
    scheduler = Scheduler(app)
    assert scheduler.tick(clock.now()).started == []  # still busy
    app.service.handle(ana.id, Inbound.of_text("/pause"), platform="telegram", address="1001")
    later = clock.advance(timedelta(minutes=5))
    started = scheduler.tick(later).started
    assert [(i.person, i.survey) for i in started] == [("ana", report.survey.id)]
    assert _pending(app, "ana")[-1][0] == "Favourite sport?"
    assert scheduler.tick(clock.advance(timedelta(minutes=5))).started == []
    counts = Surveys(app).status(report.survey.id, actor=None).counts
    assert (counts.started, counts.in_progress) == (2, 2)


def test_after_a_send_that_died_the_scheduler_starts_each_student_once(
    app: App, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.set(datetime(2026, 6, 3, 12, 0, tzinfo=UTC))  # daytime in Berlin and New York
    real = Outreach.start_many

    def dies_after_the_first(self: Outreach, ids: list[int], *args: Any, **kwargs: Any) -> Any:
        real(self, sorted(ids)[:1], *args, **kwargs)  # Ana started, then the process died
        raise KeyboardInterrupt

    monkeypatch.setattr(Outreach, "start_many", dies_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        Surveys(app).send("club", "7B", actor=None)
    monkeypatch.undo()
    scheduler = Scheduler(app)
    assert scheduler.tick(clock.now()).started == []  # the sender's grace: left alone
    report = scheduler.tick(clock.advance(SEND_GRACE))
    assert [i.person for i in report.started] == ["bo"]  # Ana's start was not repeated
    assert [text for text, _ in _pending(app, "ana")].count("Favourite sport?") == 1
    assert scheduler.tick(clock.advance(timedelta(minutes=1))).started == []
