"""Consent (ConsentStore, a turn's ``has_consent``) on SQLite and PostgreSQL: every grant and
revoke kept, the latest deciding, even within one instant; the under-13 flag set by hand, else
from a birth date, else unknown."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from storage import (
    ConsentEvent,
    ConsentStore,
    ConversationStore,
    Database,
    InvalidValueError,
    PeopleStore,
    PersonDataStore,
    UnknownPersonError,
    is_under_13,
)

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
TODAY = date(2026, 12, 4)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


def _school(db: Database) -> None:
    people = PeopleStore(db)
    people.add("Ana Diaz", "student", handle="ana")
    people.add("Bo Chen", "student", handle="bo")
    people.add("Tina Park", "teacher", handle="tina")


def _consented(db: Database, handle: str) -> bool:
    with ConversationStore(db).turn(PeopleStore(db).get(handle).id) as turn:
        return turn.has_consent()


def test_grant_then_revoke_keeps_both_and_the_latest_decides(database: Database) -> None:
    _school(database)
    clock = Clock()
    store = ConsentStore(database, now=clock.now)
    assert not _consented(database, "ana")
    store.record("ana", granted=True, by=" Maria   Diaz ", note="paper form #12")
    assert _consented(database, "ana")
    clock.at += timedelta(days=30)
    store.record("@ANA", granted=False, by="Maria Diaz")
    assert not _consented(database, "ana")
    assert store.history("ana") == [
        ConsentEvent(True, "Maria Diaz", T0, "paper form #12"),
        ConsentEvent(False, "Maria Diaz", T0 + timedelta(days=30), None),
    ]
    ana = store.status("ana", today=TODAY)
    assert (ana.consent, ana.by, ana.at, ana.note) == (
        "revoked",
        "Maria Diaz",
        T0 + timedelta(days=30),
        None,
    )


def test_two_decisions_in_one_instant_the_later_recorded_decides(database: Database) -> None:
    _school(database)
    store = ConsentStore(database, now=Clock().now)
    store.record("ana", granted=False, by="Maria Diaz")
    store.record("ana", granted=True, by="Maria Diaz")
    assert _consented(database, "ana")
    assert store.status("ana", today=TODAY).consent == "granted"


def test_the_list_shows_every_student_by_handle_and_no_staff(database: Database) -> None:
    _school(database)
    store = ConsentStore(database, now=Clock().now)
    store.record("bo", granted=True, by="Li Chen")
    store.set_under_13("ana", True)
    listed = [s.to_json() for s in store.statuses(today=TODAY)]
    assert listed == [
        {
            "handle": "ana",
            "consent": "none",
            "by": None,
            "at": None,
            "note": None,
            "under_13": True,
        },
        {
            "handle": "bo",
            "consent": "granted",
            "by": "Li Chen",
            "at": T0.isoformat(),
            "note": None,
            "under_13": None,
        },
    ]
    assert not _consented(database, "ana")  # under 13 needs consent like everyone


def test_the_under_13_flag_is_set_changed_and_cleared(database: Database) -> None:
    _school(database)
    store = ConsentStore(database)
    for value in (True, False, None):
        store.set_under_13("ana", value)
        assert store.status("ana", today=TODAY).under_13 is value
    assert store.status("bo", today=TODAY).under_13 is None


def test_a_birth_date_from_the_roster_says_who_is_under_13_unless_set_by_hand(
    database: Database,
) -> None:
    _school(database)
    with database.begin() as conn:
        conn.execute(
            text("UPDATE person SET birth_date = :born WHERE handle = :handle"),
            [
                {"born": date(2015, 1, 9), "handle": "ana"},
                {"born": date(2011, 3, 2), "handle": "bo"},
            ],
        )
    store = ConsentStore(database)
    assert [s.under_13 for s in store.statuses(today=TODAY)] == [True, False]
    store.set_under_13("ana", False)
    assert store.status("ana", today=TODAY).under_13 is False


@pytest.mark.parametrize(
    ("handle", "by", "error", "message"),
    [
        ("nobody", "Maria Diaz", UnknownPersonError, "no person with handle 'nobody'"),
        ("tina", "Maria Diaz", InvalidValueError, "'tina' is not a student"),
        ("ana", "   ", InvalidValueError, "--by needs the name of the parent or guardian"),
    ],
)
def test_refusals_are_one_line_and_record_nothing(
    database: Database, handle: str, by: str, error: type[Exception], message: str
) -> None:
    _school(database)
    store = ConsentStore(database)
    with pytest.raises(error) as caught:
        store.record(handle, granted=True, by=by)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert all(s.consent == "none" for s in store.statuses(today=TODAY))


def test_consent_is_exported_and_erased_with_the_person(database: Database) -> None:
    _school(database)
    store = ConsentStore(database, now=Clock().now)
    store.record("ana", granted=True, by="Maria Diaz", note="form 12")
    store.record("bo", granted=True, by="Li Chen")
    data = PersonDataStore(database).export("ana")
    assert [(r["given_by"], r["granted"]) for r in data["tables"]["consent"]] == [
        ("Maria Diaz", True)
    ]
    receipt = PersonDataStore(database).erase("ana", by="command line", at=T0)
    assert receipt.counts["consent"] == 1
    assert [s.handle for s in store.statuses(today=TODAY)] == ["bo"]


@pytest.mark.parametrize(
    ("override", "born", "expected"),
    [
        (None, None, None),
        (True, None, True),
        (False, date(2016, 1, 1), False),  # by hand wins over a birth date
        (True, date(2000, 1, 1), True),
        (None, date(2013, 12, 5), True),  # 13 tomorrow
        (None, date(2013, 12, 4), False),  # 13 today
        (None, date(2020, 2, 29), True),
    ],
)
def test_under_13_is_the_override_else_the_birth_date_else_unknown(
    override: bool | None, born: date | None, expected: bool | None
) -> None:
    assert is_under_13(override, born, today=TODAY) is expected


def test_a_leap_day_birthday_turns_13_on_the_first_of_march() -> None:
    born = date(2012, 2, 29)
    assert is_under_13(None, born, today=date(2025, 2, 28)) is True
    assert is_under_13(None, born, today=date(2025, 3, 1)) is False
