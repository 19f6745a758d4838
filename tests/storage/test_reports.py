"""Reports for the weekly summaries (storage/_reports.py), on SQLite and PostgreSQL: one
advisor's advisees and what they did in a span, never a private value, and the same number
of statements whatever the number of advisees."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event

from storage import Database, PersonRecord, Reports
from tests.summary_term import Term

SINCE = datetime(2026, 10, 5, tzinfo=UTC)
WEEK = datetime(2026, 11, 30, tzinfo=UTC)
UNTIL = WEEK + timedelta(weeks=1)
MID_WEEK = WEEK + timedelta(days=2)


@contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    """Every statement SQLAlchemy sends meanwhile."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _school(database: Database, advisees: int) -> tuple[PersonRecord, Term]:
    term = Term(database)
    advisor = term.person("Rosa Rivera", "advisor", "rosa")
    for k in range(advisees):
        student = term.person(f"Student {k:02d}", "student", f"s{k:02d}", advisor="rosa")
        goal = term.goal(student, f"Goal {k}")
        for week in range(3):
            term.checkin(student, MID_WEEK - timedelta(weeks=week), progress={goal: 3})
        term.fact(student, "interests", ["robots"], MID_WEEK)
    return advisor, term


def _read(database: Database, advisor: PersonRecord) -> Any:
    return Reports(database).advising(advisor, since=SINCE, until=UNTIL, changes_since=WEEK)


def test_a_fixed_number_of_statements_whatever_the_number_of_advisees(
    database: Database,
) -> None:
    few, _ = _school(database, 3)
    with counted(database) as three:
        small = _read(database, few)
    term = Term(database)
    many = term.person("Max Moreno", "advisor", "max")
    for k in range(30):
        student = term.person(f"Pupil {k:02d}", "student", f"p{k:02d}", advisor="max")
        goal = term.goal(student, "Read more")
        term.checkin(student, MID_WEEK, progress={goal: 2})
        term.fact(student, "strengths", ["drawing"], MID_WEEK)
    with counted(database) as thirty:
        large = _read(database, many)
    assert len(small.students) == 3 and len(large.students) == 30
    assert len(large.checkins) == 30 and len(large.goal_updates) == 30
    assert len(large.profile_changes) == 30
    assert len(three) == len(thirty) <= 8
    with counted(database) as everyone:
        school = Reports(database).school(since=SINCE, until=UNTIL, changes_since=WEEK)
    assert len(everyone) == len(three)
    assert {a.handle for a in (r.advisor for r in school.values())} == {"rosa", "max"}


def test_only_the_advisors_own_students_in_the_span(database: Database) -> None:
    advisor, term = _school(database, 2)
    other = term.person("Olga Other", "advisor", "olga")
    theirs = term.person("Zed Zimmer", "student", "zed", advisor="olga")
    term.checkin(theirs, MID_WEEK)
    [first, _second] = _read(database, advisor).students
    term.checkin(first, SINCE - timedelta(seconds=1), mood=1)  # before the span
    term.checkin(first, UNTIL, mood=1)  # after it (the end is excluded)
    report = _read(database, advisor)
    assert [s.handle for s in report.students] == ["s00", "s01"]
    assert report.advisor.handle == "rosa" and "advisor" in report.advisor.roles
    assert {c.person_id for c in report.checkins} == {s.id for s in report.students}
    assert all(SINCE <= c.created_at < UNTIL for c in report.checkins)
    assert [c.mood for c in report.checkins if c.person_id == first.id] == [4, 4, 4]
    assert all(u.progress == 3 for u in report.goal_updates)
    assert _read(database, other).students == (theirs,)
    assert [a.handle for a in Reports(database).advisors()] == ["olga", "rosa"]


def test_private_values_are_never_read(database: Database) -> None:
    advisor, term = _school(database, 1)
    [student] = _read(database, advisor).students
    term.fact(student, "challenges", ["maths"], WEEK - timedelta(days=3))
    term.fact(student, "challenges", ["maths", "tests"], MID_WEEK)
    term.fact(student, "worries", "private worry", MID_WEEK, private=True)
    term.fact(student, "identity.family_culture", "hidden by the flow", MID_WEEK)
    term.fact(student, "identity", "a public sibling", MID_WEEK)
    report = Reports(database).advising(
        advisor,
        since=SINCE,
        until=UNTIL,
        changes_since=WEEK,
        hidden_fields={"identity.family_culture"},
    )
    changes = {c.field: c for c in report.profile_changes}
    assert set(changes) == {"interests", "challenges", "identity"}
    assert changes["challenges"].value == ["maths", "tests"]
    assert changes["challenges"].previous == ["maths"]
    assert changes["interests"].previous is None


def test_goals_left_out_once_dropped_or_long_completed(database: Database) -> None:
    advisor, term = _school(database, 1)
    [student] = _read(database, advisor).students
    term.goal(student, "Paused one", "paused")
    term.goal(student, "Dropped one", "dropped")
    term.goal(student, "Done long ago", "completed")
    titles = [g.title for g in _read(database, advisor).goals]
    assert titles == ["Goal 0", "Paused one"]
    with_recent = Reports(database).advising(
        advisor, since=datetime(2026, 8, 1, tzinfo=UTC), until=UNTIL, changes_since=WEEK
    )
    assert [g.title for g in with_recent.goals] == ["Goal 0", "Paused one", "Done long ago"]


def test_answers_keep_their_type(database: Database) -> None:
    """A scale's number, a choice's text, a skipped answer: as the check-in stored them."""
    advisor, term = _school(database, 1)
    [student] = _read(database, advisor).students
    term.checkin(student, MID_WEEK + timedelta(hours=1), mood="okay", energy=None)
    term.checkin(student, MID_WEEK + timedelta(hours=2), mood=12345678901234567890123, energy=3.5)
    *_, choice, huge = _read(database, advisor).checkins
    assert (choice.mood, choice.energy) == ("okay", None)
    assert (huge.mood, huge.energy) == (12345678901234567890123, 3.5)
