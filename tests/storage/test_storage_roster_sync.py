"""What a school's roster system adds to the roster import (OneRoster), on SQLite and
PostgreSQL: people who leave keep their data but get nothing proactive and leave every
audience, an older row changes nothing of its person, classes are groups found by their
class's id, and birth dates are kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from dialogues import Reply
from storage import (
    INACTIVE,
    Audience,
    Database,
    OutboxStore,
    PeopleStore,
    RosterClass,
    RosterEntry,
    RosterError,
    RosterStore,
    ScheduleStore,
    SurveyStore,
    metadata,
)
from storage._outbox import queue_replies
from storage._sql import Sql

NOW = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
SEPT = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
NOV = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def _school(roster: RosterStore) -> None:
    roster.import_people(
        [
            RosterEntry(2, "Tina Park", "teacher", handle="tina", groups=("7B",), file="users.csv"),
            RosterEntry(
                3,
                "Ana Lopez",
                "student",
                handle="ana",
                groups=("7B",),
                advisors=("tina",),
                email="ana@school.example",
                birth_date=date(2013, 4, 2),
                modified_at=SEPT,
                file="users.csv",
            ),
            RosterEntry(
                4, "Bo Chen", "student", handle="bo", groups=("7B",), modified_at=SEPT, file="u"
            ),
        ],
        classes=[RosterClass("classes.csv", 2, "c-7b", "7B")],
    )


def _person_row(database: Database, handle: str) -> dict[str, object]:
    person = metadata.tables["person"]
    with database.read() as conn:
        row = conn.execute(select(person).where(person.c.handle == handle)).one()
    return dict(row._mapping)


def test_someone_who_left_keeps_their_data_and_leaves_every_audience(database: Database) -> None:
    roster, people = RosterStore(database), PeopleStore(database)
    _school(roster)
    schedules = ScheduleStore(database)
    weekly = schedules.add(
        "weekly_checkin",
        "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10",
        Audience(groups=("7B",)),
        now=NOW,
        default_zone="UTC",
    )
    assert schedules.recipients(weekly.id) == 2
    bo = people.get("bo")
    with database.begin() as conn:
        [check_in] = queue_replies(
            Sql(conn),
            [Reply("How was your week?")],
            person_id=bo.id,
            conversation_id=None,
            platform="telegram",
            address="77",
            now=NOW,
            not_before=None,
            proactive=True,
        )

    counts = roster.import_people(
        [RosterEntry(4, "Bo Chen", "student", handle="bo", active=False, modified_at=NOV)]
    )
    assert counts == type(counts)(added=0, updated=0, unchanged=0, deactivated=1)
    assert _person_row(database, "bo")["active"] is False
    assert roster.groups_of(bo.id) == {roster.group("7B").id}  # their data stays
    schedules.reconcile(now=NOW, default_zone="UTC", grace=timedelta(hours=1))
    assert schedules.recipients(weekly.id) == 1
    sent = SurveyStore(database).send(
        "weekly_checkin", roster.group("7B"), sent_by=None, now=NOW, not_since=None
    )
    assert sent is not None and sent[1] == [people.get("ana").id]
    wall = datetime.now(UTC)
    found = OutboxStore(database).claim(
        platform="telegram", limit=10, now=wall, wall=wall, lease=30
    )
    assert found.messages == [] and found.buried == [(check_in, INACTIVE)]

    again = roster.import_people(
        [RosterEntry(4, "Bo Chen", "student", handle="bo", active=False, modified_at=NOV)]
    )
    assert (again.deactivated, again.unchanged) == (0, 1)
    back = roster.import_people([RosterEntry(4, "Bo Chen", "student", handle="bo", active=True)])
    assert back.updated == 1 and _person_row(database, "bo")["active"] is True


def test_a_row_older_than_the_one_applied_changes_nothing_of_its_person(
    database: Database,
) -> None:
    roster, people = RosterStore(database), PeopleStore(database)
    _school(roster)
    counts = roster.import_people(
        [
            RosterEntry(
                3,
                "Ana Renamed",
                "student",
                handle="ana",
                email="old@school.example",
                joins=("Choir",),
                modified_at=SEPT - timedelta(days=30),
            ),
            RosterEntry(
                4, "Bo Chen", "student", handle="bo", email="bo@school.example", modified_at=NOV
            ),
        ]
    )
    assert counts.to_json() == {"added": 0, "updated": 2, "unchanged": 0}
    ana = _person_row(database, "ana")
    assert (ana["display_name"], ana["email"]) == ("Ana Lopez", "ana@school.example")
    assert ana["roster_modified_at"] == SEPT
    groups = {roster.group(name).id for name in ("7B", "Choir")}
    assert roster.groups_of(people.get("ana").id) == groups  # the enrollment still applies
    assert _person_row(database, "bo")["email"] == "bo@school.example"
    assert _person_row(database, "bo")["roster_modified_at"] == NOV


def test_birth_dates_are_kept_and_a_newer_row_is_recorded_even_when_nothing_else_changed(
    database: Database,
) -> None:
    roster = RosterStore(database)
    _school(roster)
    assert _person_row(database, "ana")["birth_date"] == date(2013, 4, 2)
    assert _person_row(database, "bo")["birth_date"] is None
    counts = roster.import_people(
        [RosterEntry(4, "Bo Chen", "student", handle="bo", groups=("7B",), modified_at=NOV)]
    )
    assert counts.unchanged == 1 and _person_row(database, "bo")["roster_modified_at"] == NOV


def test_a_class_keeps_its_group_when_renamed_and_a_delta_may_name_people_by_reference(
    database: Database,
) -> None:
    roster, people = RosterStore(database), PeopleStore(database)
    _school(roster)
    seven_b = roster.group("7B").id
    roster.import_people(
        [RosterEntry(9, "", "", handle="ana", leaves=("7B B",), reference=True, file="e.csv")],
        classes=[RosterClass("classes.csv", 2, "c-7b", "7B B")],
    )
    assert roster.group("7B B").id == seven_b
    assert roster.group_names(["c-7b", "c-none"]) == {"c-7b": "7B B"}
    assert roster.groups_of(people.get("ana").id) == frozenset()
    assert roster.groups_of(people.get("tina").id) == {seven_b}
    assert people.get("ana").display_name == "Ana Lopez"


def test_bad_rows_are_named_by_file_and_nothing_is_applied(database: Database) -> None:
    roster = RosterStore(database)
    _school(roster)
    roster.import_people([RosterEntry(2, "Choir kids", "student", handle="c", groups=("Choir",))])
    with pytest.raises(RosterError) as caught:
        roster.import_people(
            [
                RosterEntry(5, "New Kid", "student", handle="new", file="users.csv"),
                RosterEntry(3, "", "", handle="ghost", joins=("7B",), reference=True, file="e.csv"),
                RosterEntry(4, "Bad Mail", "student", email="nope", file="users.csv"),
            ],
            classes=[
                RosterClass("classes.csv", 3, "c-other", "7B"),
                RosterClass("classes.csv", 4, "c-choir", "Choir"),
            ],
        )
    assert [(file, line) for file, line, _ in caught.value.located] == [
        ("classes.csv", 3),
        ("e.csv", 3),
        ("users.csv", 4),
    ]
    message = str(caught.value)
    assert message.startswith("3 bad rows, nothing imported: classes.csv: line 3: the group '7B'")
    assert "e.csv: line 3: no person with handle 'ghost'" in message
    assert PeopleStore(database).find("new") is None
    assert roster.group_names(["c-choir"]) == {}  # the hand-made group was not taken on


def _ids(roster: RosterStore) -> None:
    """Tina and Ana as a roster system imports them: with their sourcedIds."""
    roster.import_people(
        [
            RosterEntry(2, "Tina Park", "teacher", handle="tpark", roster_id="t-1", groups=("7B",)),
            RosterEntry(
                3,
                "Ana Lopez",
                "student",
                handle="ana.lopez",
                roster_id="s-1",
                groups=("7B",),
                advisors=("tpark",),
                email="ana.lopez@school.example",
                modified_at=SEPT,
            ),
        ]
    )


def test_a_person_is_found_by_their_roster_id_and_keeps_their_handle_when_it_changes(
    database: Database,
) -> None:
    roster, people = RosterStore(database), PeopleStore(database)
    _ids(roster)
    assert _person_row(database, "ana.lopez")["roster_id"] == "s-1"
    counts = roster.import_people(
        [
            RosterEntry(
                2, "Tina Park", "teacher", handle="tina.park", roster_id="t-1", groups=("7B",)
            ),
            RosterEntry(
                3,
                "Ana Smith",
                "student",
                handle="ana.smith",
                roster_id="s-1",
                groups=("7B",),
                advisors=("tina.park",),
                email="ana.smith@school.example",
                modified_at=NOV,
            ),
        ]
    )
    assert counts.to_json() == {"added": 0, "updated": 1, "unchanged": 1}
    ana = _person_row(database, "ana.lopez")
    assert (ana["display_name"], ana["email"]) == ("Ana Smith", "ana.smith@school.example")
    assert people.find("ana.smith") is None and people.find("tina.park") is None
    tina = people.get("tpark").id
    assert roster.advisees_of(tina) == {ana["id"]}


def test_a_reference_or_a_deactivation_names_someone_by_roster_id(database: Database) -> None:
    roster, people = RosterStore(database), PeopleStore(database)
    _ids(roster)
    counts = roster.import_people(
        [
            RosterEntry(2, "", "", handle="s-1", roster_id="s-1", joins=("Choir",), reference=True),
            RosterEntry(3, "", "", handle="t-1", roster_id="t-1", active=False, reference=True),
        ]
    )
    assert (counts.updated, counts.deactivated) == (1, 1)
    assert roster.group("Choir").id in roster.groups_of(people.get("ana.lopez").id)
    assert _person_row(database, "tpark")["active"] is False
    assert people.find("s-1") is None and people.find("t-1") is None
    with pytest.raises(RosterError) as caught:
        roster.import_people(
            [RosterEntry(4, "", "", handle="s-9", roster_id="s-9", active=False, reference=True)]
        )
    assert "line 4: no person with sourcedId 's-9'" in str(caught.value)


def test_someone_added_by_hand_is_found_by_handle_once_and_a_roster_id_is_one_persons(
    database: Database,
) -> None:
    roster, people = RosterStore(database), PeopleStore(database)
    roster.import_people([RosterEntry(2, "Kim Lee", "student", handle="kim")])
    counts = roster.import_people(
        [RosterEntry(2, "Kim Lee", "student", handle="kim", roster_id="s-3")]
    )
    assert counts.updated == 1 and _person_row(database, "kim")["roster_id"] == "s-3"
    with pytest.raises(RosterError) as caught:
        roster.import_people([RosterEntry(5, "Kim Park", "student", handle="kim", roster_id="s-7")])
    assert "line 5: the handle 'kim' is another roster user's (s-3)" in str(caught.value)
    both = roster.import_people(
        [
            RosterEntry(
                2,
                "Kim Lee",
                "student",
                handle="kim",
                roster_id="s-7",
                other_roster_ids=("s-3",),
                extra_roles=("admin",),
            )
        ]
    )
    assert both.updated == 1 and people.get("kim").roles == ("admin", "student")
    assert _person_row(database, "kim")["roster_id"] == "s-3"
