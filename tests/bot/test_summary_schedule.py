"""The weekly advisor summary on SQLite and PostgreSQL, time moved by a FrozenClock (nothing
sleeps): the default (Friday 15:00 in each advisor's own zone) appears once there is an
advisor, a schedule of an advisor's own overrides it, pausing holds it, each occurrence is sent
once however many ticks see it, students get none, and an advisor with no chat account or no
composer configured is reported, not a crash."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.notice_delivery import notice_of
from bot.notices import FileKind, Line, Notice, NoticeFile, Section
from bot.scheduler import RunReport, Scheduler
from storage import (
    ADVISOR_SUMMARY,
    DEFAULT_SUMMARY_RULE,
    Audience,
    Database,
    InvalidValueError,
    PersonRecord,
    SchoolBreak,
    weekly_rule,
)
from tests.flows_app import app_with_flows

MONDAY = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 6, 5, tzinfo=UTC)
TOKYO_15 = FRIDAY + timedelta(hours=6)  # 15:00 JST
NEW_YORK_15 = FRIDAY + timedelta(hours=19)  # 15:00 EDT
CHART = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class FakeComposer:
    """Builds a one-line summary with a chart, and remembers whom it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime]] = []

    def __call__(
        self, app: App, due: Sequence[tuple[PersonRecord, datetime]]
    ) -> list[Notice | None]:
        return [self._one(advisor, at) for advisor, at in due]

    def _one(self, advisor: PersonRecord, now: datetime) -> Notice | None:
        self.asked.append((advisor.handle, now))
        if advisor.handle == "quiet-one":
            return None
        return Notice(
            f"Summary for {advisor.display_name}",
            (Section(None, (Line.of("all well"),)),),
            (NoticeFile(FileKind.PHOTO, "week.png", "image/png", CHART),),
        )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY)


@pytest.fixture
def app(database: Database, tmp_path: Path, clock: FrozenClock) -> App:
    app = app_with_flows(database, tmp_path / "flows", clock, {}, default_timezone="Europe/Madrid")
    ada = app.people.add("Ada Ng", "advisor", handle="ada", timezone="America/New_York")
    app.people.link_identity(ada.id, "telegram", None, "2001", "2001")
    bea = app.people.add("Bea Ito", "advisor", handle="bea", timezone="Asia/Tokyo")
    app.people.link_identity(bea.id, "slack", "T1", "U0BEA", "D0BEA")
    sam = app.people.add("Sam Lee", "student", handle="sam", advisor="ada")
    app.people.link_identity(sam.id, "telegram", None, "3001", "3001")
    return app


@pytest.fixture
def composer() -> FakeComposer:
    return FakeComposer()


def tick(app: App, clock: FrozenClock, at: datetime, composer: FakeComposer | None) -> RunReport:
    clock.set(at)
    return Scheduler(app, composer=composer).tick(at)


def items(report: RunReport, kind: str = "started") -> list[tuple[str, str, str | None]]:
    return [(i.person, i.flow, i.reason) for i in getattr(report, kind)]


def summaries_to(app: App, handle: str) -> list[Notice]:
    person = app.people.get(handle)
    return [n for r in app.outbox.for_person(person.id) if (n := notice_of(r)) is not None]


def test_every_advisor_gets_it_on_friday_at_15_in_their_own_zone_once(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    assert tick(app, clock, MONDAY, composer).started == []
    [default] = app.schedules.schedules()
    assert (default.flow_id, default.rule, default.audience) == (
        ADVISOR_SUMMARY,
        DEFAULT_SUMMARY_RULE,
        Audience(everyone=True),
    )
    assert app.schedules.recipients(default.id) == 2  # the advisors, not the student

    before = tick(app, clock, TOKYO_15 - timedelta(minutes=1), composer)
    assert before.started == [] and composer.asked == []
    tokyo = tick(app, clock, TOKYO_15 + timedelta(seconds=30), composer)
    assert items(tokyo) == [("bea", ADVISOR_SUMMARY, None)]
    assert tokyo.started[0].schedule == default.id and tokyo.started[0].survey is None
    again = tick(app, clock, TOKYO_15 + timedelta(seconds=30), composer)
    assert not again
    new_york = tick(app, clock, NEW_YORK_15, composer)
    assert items(new_york) == [("ada", ADVISOR_SUMMARY, None)]
    assert composer.asked == [("bea", TOKYO_15), ("ada", NEW_YORK_15)]  # the occurrences' weeks

    [text, chart] = [r for r in app.outbox.for_person(app.people.get("bea").id)]
    assert (text.platform, text.address, text.proactive) == ("slack", "D0BEA", True)
    assert notice_of(text) == Notice(
        "Summary for Bea Ito", (Section(None, (Line.of("all well"),)),)
    )
    chart_notice = notice_of(chart)
    assert chart_notice is not None and chart_notice.files[0].data == CHART
    assert len(summaries_to(app, "ada")) == 2 and summaries_to(app, "sam") == []
    [seen] = app.audit.views(app.people.get("sam"))  # Ada was shown Sam's week, once
    assert (seen.viewer, seen.action, seen.via) == ("ada", "viewed_summary", "schedule")
    assert tick(app, clock, NEW_YORK_15 + timedelta(hours=1), composer).started == []
    next_week = tick(app, clock, TOKYO_15 + timedelta(days=7), composer)
    assert items(next_week) == [("bea", ADVISOR_SUMMARY, None)]


def test_erasing_a_student_takes_the_summaries_about_them_from_their_advisors_outbox(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    tick(app, clock, MONDAY, composer)
    tick(app, clock, TOKYO_15 + timedelta(seconds=30), composer)
    tick(app, clock, NEW_YORK_15, composer)
    ada = app.people.get("ada")
    assert len(app.outbox.for_person(ada.id)) == 2
    about = app.person_data.export("sam")["tables"]["outbox (about them, to others)"]
    assert [(row["to"], row["kind"]) for row in about] == [("ada", "notice")] * 2

    receipt = app.person_data.erase("sam", by="test", at=clock.now())

    assert receipt.counts["outbox (about them, to others)"] == 2
    assert app.outbox.for_person(ada.id) == []
    assert len(summaries_to(app, "bea")) == 2  # Bea advises nobody erased


def test_an_advisors_own_schedule_overrides_the_default_and_pausing_it_holds_theirs(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    tick(app, clock, MONDAY, composer)
    [default] = app.schedules.schedules()
    own = app.schedules.add(
        ADVISOR_SUMMARY,
        weekly_rule("mon", "09:00"),
        Audience(people=("ada",)),
        now=MONDAY,
        default_zone="Europe/Madrid",
    )
    assert app.schedules.recipients(default.id) == 1
    assert items(tick(app, clock, NEW_YORK_15, composer)) == []
    monday_nine = datetime(2026, 6, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT
    report = tick(app, clock, monday_nine, composer)
    assert (
        items(report) == [("ada", ADVISOR_SUMMARY, None)] and report.started[0].schedule == own.id
    )

    app.schedules.pause(own.id)
    assert tick(app, clock, monday_nine + timedelta(days=7), composer).started == []
    assert tick(app, clock, NEW_YORK_15 + timedelta(days=7), composer).started == []
    app.schedules.pause(default.id)
    assert tick(app, clock, TOKYO_15 + timedelta(days=14), composer).started == []

    app.schedules.remove(own.id)
    app.schedules.resume(default.id, now=clock.now(), default_zone="Europe/Madrid")
    tokyo = tick(app, clock, TOKYO_15 + timedelta(days=21), composer)
    new_york = tick(app, clock, NEW_YORK_15 + timedelta(days=21), composer)
    assert items(tokyo) + items(new_york) == [
        ("bea", ADVISOR_SUMMARY, None),
        ("ada", ADVISOR_SUMMARY, None),
    ]
    assert new_york.started[0].schedule == default.id


def test_a_summary_held_into_the_next_week_still_sums_up_the_week_it_was_due_in(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    tick(app, clock, MONDAY, composer)
    app.schedules.add(
        ADVISOR_SUMMARY,
        weekly_rule("sun", "22:00"),
        Audience(people=("ada",)),
        now=MONDAY,
        default_zone="Europe/Madrid",
    )
    sunday_ten_pm = datetime(2026, 6, 8, 2, 0, tzinfo=UTC)  # Sun 7 June, 22:00 EDT: quiet hours
    held = tick(app, clock, sunday_ten_pm + timedelta(seconds=30), composer)
    assert held.started == [] and [w.reason for w in held.waiting] == ["quiet_hours"]
    monday_morning = datetime(2026, 6, 8, 11, 0, 30, tzinfo=UTC)  # Mon 07:00 EDT, a new week
    assert items(tick(app, clock, monday_morning, composer)) == [("ada", ADVISOR_SUMMARY, None)]
    assert composer.asked[-1] == ("ada", sunday_ten_pm)


def test_a_new_schedule_for_everyone_replaces_the_default_and_students_are_refused(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    tick(app, clock, MONDAY, composer)
    [default] = app.schedules.schedules()
    app.schedules.add(
        ADVISOR_SUMMARY,
        weekly_rule("thu", "08:00"),
        Audience(everyone=True),
        now=MONDAY,
        default_zone="Europe/Madrid",
    )
    assert app.schedules.recipients(default.id) == 0
    tokyo = tick(app, clock, datetime(2026, 6, 3, 23, 0, tzinfo=UTC), composer)  # Thu 08:00
    new_york = tick(app, clock, datetime(2026, 6, 4, 12, 0, tzinfo=UTC), composer)
    assert items(tokyo) + items(new_york) == [
        ("bea", ADVISOR_SUMMARY, None),
        ("ada", ADVISOR_SUMMARY, None),
    ]
    assert tick(app, clock, NEW_YORK_15, composer).started == []
    with pytest.raises(InvalidValueError, match="not an advisor"):
        app.schedules.add(
            ADVISOR_SUMMARY,
            DEFAULT_SUMMARY_RULE,
            Audience(people=("sam",)),
            now=MONDAY,
            default_zone="Europe/Madrid",
        )


def test_the_default_is_added_once_and_a_removed_default_stays_removed(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    tick(app, clock, MONDAY, composer)
    [default] = app.schedules.schedules()
    app.schedules.remove(default.id)
    tick(app, clock, MONDAY + timedelta(hours=1), composer)
    assert app.schedules.schedules() == []
    assert tick(app, clock, NEW_YORK_15, composer).started == []


def test_without_an_account_or_a_composer_or_anything_to_say_it_is_reported(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    app.people.add("Cy Roe", "advisor", handle="cy")  # Europe/Madrid: 15:00 is 13:00 UTC
    quiet = app.people.add("Quiet One", "advisor", handle="quiet-one")
    app.people.link_identity(quiet.id, "telegram", None, "4001", "4001")
    tick(app, clock, MONDAY, None)
    madrid_15 = FRIDAY + timedelta(hours=13)
    report = tick(app, clock, madrid_15, composer)
    assert sorted(items(report, "skipped")) == [
        ("cy", ADVISOR_SUMMARY, "no_account"),
        ("quiet-one", ADVISOR_SUMMARY, "nothing_to_send"),
    ]
    assert ("cy", madrid_15) not in composer.asked  # nobody to send it to: not built
    unconfigured = tick(app, clock, NEW_YORK_15, None)
    assert items(unconfigured, "skipped") == [("ada", ADVISOR_SUMMARY, "no_composer")]


def test_breaks_skip_it_and_quiet_hours_hold_it(
    app: App, clock: FrozenClock, composer: FakeComposer
) -> None:
    tick(app, clock, MONDAY, composer)
    app.schedules.add_break(SchoolBreak("Bridge", FRIDAY.date(), FRIDAY.date()))
    report = tick(app, clock, TOKYO_15, composer)
    assert items(report, "skipped") == [("bea", ADVISOR_SUMMARY, "break")]
    assert composer.asked[-1][0] == "bea"  # built ahead of the claim, then not sent
    assert summaries_to(app, "bea") == []

    late = app.schedules.add(
        ADVISOR_SUMMARY,
        weekly_rule("tue", "22:00"),
        Audience(people=("ada",)),
        now=clock.now(),
        default_zone="Europe/Madrid",
    )
    tuesday_22 = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)  # 22:00 EDT on Tuesday
    held = tick(app, clock, tuesday_22, composer)
    assert items(held, "waiting") == [("ada", ADVISOR_SUMMARY, "quiet_hours")]
    morning = tick(app, clock, datetime(2026, 6, 10, 11, 0, tzinfo=UTC), composer)
    assert items(morning) == [("ada", ADVISOR_SUMMARY, None)]
    assert morning.started[0].schedule == late.id
