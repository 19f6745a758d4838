"""Read-only, set-based queries for the advisors' weekly summaries: frozen records, no rows.

A report reads the same six statements whatever the number of advisees (advisors, their
students, goals, check-ins, goal updates, profile changes): each is one ``IN`` on the
advisor links, never a query per student. ``Reports.advising`` reads one advisor's
advisees; ``Reports.school`` reads every advisor's at once, with the same statements.

Private profile values are never read: a fact stored as private, or of a field the caller
names hidden (a flow marks it private), is filtered out in SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    and_,
    false,
    func,
    not_,
    or_,
    select,
)

from ._database import Database
from ._records import PersonRecord
from ._tables import (
    advisor_link,
    checkin,
    checkin_goal_update,
    goal,
    loads,
    person,
    person_role,
    profile_fact,
)

__all__ = [
    "Advising",
    "CheckinReport",
    "GoalReport",
    "GoalUpdateReport",
    "ProfileChange",
    "Reports",
]

_REPORTED_GOAL_STATUSES = ("active", "paused")
"""Goals shown whatever their last update; a completed goal only if updated in the span."""


@dataclass(frozen=True, slots=True)
class CheckinReport:
    """One check-in of an advisee (``mood``/``energy``: the answer's value, usually 1-5)."""

    id: int
    person_id: int
    created_at: datetime
    mood: Any
    energy: Any
    note_for_advisor: str | None
    wants_meeting: bool | None
    highlight: str | None


@dataclass(frozen=True, slots=True)
class GoalReport:
    id: int
    person_id: int
    title: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GoalUpdateReport:
    """One goal's update inside a check-in, with the check-in's time."""

    checkin_id: int
    goal_id: int
    person_id: int
    created_at: datetime
    progress: Any
    next_step: str | None
    blockers: str | None


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """A public profile value; ``previous`` is the field's latest value before the change span
    (None: none was held)."""

    person_id: int
    field: str
    value: Any
    created_at: datetime
    previous: Any = None


@dataclass(frozen=True, slots=True)
class Advising:
    """One advisor's advisees and what they did in a span (every tuple oldest first)."""

    advisor: PersonRecord
    students: tuple[PersonRecord, ...]
    goals: tuple[GoalReport, ...] = ()
    checkins: tuple[CheckinReport, ...] = ()
    goal_updates: tuple[GoalUpdateReport, ...] = ()
    profile_changes: tuple[ProfileChange, ...] = ()
    joined: Mapping[int, datetime] = dataclass_field(default_factory=dict)
    """When each student joined (by person id): their record's creation."""


@dataclass(slots=True)
class _Rows:
    """What the statements read, for every advisor asked about, before it is split."""

    advisors: dict[int, PersonRecord]
    advisees: dict[int, list[int]]
    students: dict[int, PersonRecord]
    joined: dict[int, datetime]
    goals: dict[int, list[GoalReport]]
    checkins: dict[int, list[CheckinReport]]
    updates: dict[int, list[GoalUpdateReport]]
    changes: dict[int, list[ProfileChange]]


class Reports:
    """Read-only queries for summaries (``since``/``until``: the span's UTC bounds, ``until``
    excluded; ``changes_since``: where the span for profile changes starts, e.g. the week)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def advisors(self) -> list[PersonRecord]:
        """Everyone who advises at least one student, by handle."""
        with self._db.read() as conn:
            people, _ = _people(conn, select(advisor_link.c.advisor_id))
        return sorted(people.values(), key=lambda p: p.handle)

    def advising(
        self,
        advisor: PersonRecord,
        *,
        since: datetime,
        until: datetime,
        changes_since: datetime,
        hidden_fields: Collection[str] = (),
    ) -> Advising:
        """One advisor's advisees, their goals, check-ins, goal updates (``since``..``until``)
        and public profile changes (``changes_since``..``until``)."""
        found = self._read(
            [advisor.id],
            since=since,
            until=until,
            changes_since=changes_since,
            hidden_fields=hidden_fields,
        )
        return found.get(advisor.id, Advising(advisor, ()))

    def school(
        self,
        *,
        since: datetime,
        until: datetime,
        changes_since: datetime,
        hidden_fields: Collection[str] = (),
    ) -> dict[int, Advising]:
        """``advising`` for every advisor at once (by advisor id), with the same statements."""
        return self._read(
            None,
            since=since,
            until=until,
            changes_since=changes_since,
            hidden_fields=hidden_fields,
        )

    def _read(
        self,
        advisor_ids: Sequence[int] | None,
        *,
        since: datetime,
        until: datetime,
        changes_since: datetime,
        hidden_fields: Collection[str],
    ) -> dict[int, Advising]:
        on_roster = select(person.c.id).where(person.c.active)
        links = select(advisor_link.c.advisor_id, advisor_link.c.student_id).where(
            advisor_link.c.student_id.in_(on_roster)
        )
        if advisor_ids is not None:
            links = links.where(advisor_link.c.advisor_id.in_(advisor_ids))
        student_ids = select(links.subquery().c.student_id)
        with self._db.read() as conn:
            pairs = conn.execute(links).all()
            advisees: dict[int, list[int]] = defaultdict(list)
            for advisor_id, student_id in pairs:
                advisees[advisor_id].append(student_id)
            everyone, joined = _people(
                conn, select(links.subquery().c.advisor_id).union(student_ids)
            )
            rows = _Rows(
                advisors={a: everyone[a] for a in advisees},
                advisees=advisees,
                students=everyone,
                joined=joined,
                goals=_goals(conn, student_ids, since),
                checkins=_checkins(conn, student_ids, since, until),
                updates=_updates(conn, student_ids, since, until),
                changes=_changes(conn, student_ids, changes_since, until, hidden_fields),
            )
        return {a: _split(rows, a) for a in sorted(advisees)}


def _split(rows: _Rows, advisor_id: int) -> Advising:
    students = sorted(
        (rows.students[s] for s in rows.advisees[advisor_id]),
        key=lambda p: (p.display_name, p.handle),
    )
    ids = [s.id for s in students]
    return Advising(
        advisor=rows.advisors[advisor_id],
        students=tuple(students),
        goals=tuple(g for s in ids for g in rows.goals.get(s, ())),
        checkins=tuple(c for s in ids for c in rows.checkins.get(s, ())),
        goal_updates=tuple(u for s in ids for u in rows.updates.get(s, ())),
        profile_changes=tuple(c for s in ids for c in rows.changes.get(s, ())),
        joined={s: rows.joined[s] for s in ids},
    )


def _scale(text: str | None) -> Any:
    """A stored answer (mood, energy, progress): usually a scale number, read as one without
    the JSON parser (a school's summaries read tens of thousands); anything else by ``loads``."""
    if text is not None and text.isascii() and text.isdigit():
        return int(text)
    return loads(text)


def _people(
    conn: Connection, ids: Select[Any] | CompoundSelect[Any]
) -> tuple[dict[int, PersonRecord], dict[int, datetime]]:
    """The people whose ids ``ids`` selects, with their roles, and when each was added, in
    one statement."""
    stmt = (
        select(
            person.c.id,
            person.c.handle,
            person.c.display_name,
            person.c.first_name,
            person.c.timezone,
            person.c.language,
            person.c.opted_out,
            person.c.created_at,
            person_role.c.role,
        )
        .select_from(person.outerjoin(person_role, person_role.c.person_id == person.c.id))
        .where(person.c.id.in_(ids))
        .order_by(person.c.id, person_role.c.role)
    )
    roles: dict[int, list[str]] = defaultdict(list)
    first: dict[int, Any] = {}
    for row in conn.execute(stmt):
        first.setdefault(row.id, row)
        if row.role is not None:
            roles[row.id].append(row.role)
    people = {
        pid: PersonRecord(
            id=pid,
            handle=row.handle,
            display_name=row.display_name,
            first_name=row.first_name,
            timezone=row.timezone,
            language=row.language,
            roles=tuple(roles[pid]),
            opted_out=bool(row.opted_out),
        )
        for pid, row in first.items()
    }
    return people, {pid: row.created_at for pid, row in first.items()}


def _goals(
    conn: Connection, student_ids: Select[Any], since: datetime
) -> dict[int, list[GoalReport]]:
    stmt = (
        select(goal.c.id, goal.c.person_id, goal.c.title, goal.c.status, goal.c.created_at)
        .where(
            goal.c.person_id.in_(student_ids),
            or_(
                goal.c.status.in_(_REPORTED_GOAL_STATUSES),
                and_(goal.c.status == "completed", goal.c.updated_at >= since),
            ),
        )
        .order_by(goal.c.person_id, goal.c.id)
    )
    out: dict[int, list[GoalReport]] = defaultdict(list)
    for row in conn.execute(stmt):
        out[row.person_id].append(
            GoalReport(row.id, row.person_id, row.title, row.status, row.created_at)
        )
    return out


def _checkins(
    conn: Connection, student_ids: Select[Any], since: datetime, until: datetime
) -> dict[int, list[CheckinReport]]:
    stmt = (
        select(
            checkin.c.id,
            checkin.c.person_id,
            checkin.c.created_at,
            checkin.c.mood,
            checkin.c.energy,
            checkin.c.note_for_advisor,
            checkin.c.wants_meeting,
            checkin.c.highlight,
        )
        .where(
            checkin.c.person_id.in_(student_ids),
            checkin.c.created_at >= since,
            checkin.c.created_at < until,
        )
        .order_by(checkin.c.person_id, checkin.c.created_at, checkin.c.id)
    )
    out: dict[int, list[CheckinReport]] = defaultdict(list)
    for row in conn.execute(stmt):
        out[row.person_id].append(
            CheckinReport(
                id=row.id,
                person_id=row.person_id,
                created_at=row.created_at,
                mood=_scale(row.mood),
                energy=_scale(row.energy),
                note_for_advisor=row.note_for_advisor,
                wants_meeting=row.wants_meeting,
                highlight=row.highlight,
            )
        )
    return out


def _updates(
    conn: Connection, student_ids: Select[Any], since: datetime, until: datetime
) -> dict[int, list[GoalUpdateReport]]:
    stmt = (
        select(
            checkin_goal_update.c.checkin_id,
            checkin_goal_update.c.goal_id,
            checkin.c.person_id,
            checkin.c.created_at,
            checkin_goal_update.c.progress,
            checkin_goal_update.c.next_step,
            checkin_goal_update.c.blockers,
        )
        .join(checkin, checkin.c.id == checkin_goal_update.c.checkin_id)
        .where(
            checkin.c.person_id.in_(student_ids),
            checkin.c.created_at >= since,
            checkin.c.created_at < until,
        )
        .order_by(checkin.c.person_id, checkin.c.created_at, checkin.c.id)
    )
    out: dict[int, list[GoalUpdateReport]] = defaultdict(list)
    for row in conn.execute(stmt):
        out[row.person_id].append(
            GoalUpdateReport(
                checkin_id=row.checkin_id,
                goal_id=row.goal_id,
                person_id=row.person_id,
                created_at=row.created_at,
                progress=_scale(row.progress),
                next_step=row.next_step,
                blockers=row.blockers,
            )
        )
    return out


def _public(table: Any, hidden_fields: Collection[str]) -> list[ColumnElement[bool]]:
    """Conditions that leave out private facts and the hidden fields (with their sub-fields)."""
    conditions: list[ColumnElement[bool]] = [table.c.private == false()]
    for field in sorted(hidden_fields):
        conditions.append(
            not_(
                or_(
                    table.c.field == field,
                    table.c.field.startswith(field + ".", autoescape=True),
                )
            )
        )
    return conditions


def _changes(
    conn: Connection,
    student_ids: Select[Any],
    since: datetime,
    until: datetime,
    hidden_fields: Collection[str],
) -> dict[int, list[ProfileChange]]:
    """The public facts of the span, each with its field's latest public value before it:
    one statement (the earlier value by a correlated subquery, not a query per fact)."""
    earlier = profile_fact.alias("earlier")
    previous_id = (
        select(func.max(earlier.c.id))
        .where(
            earlier.c.person_id == profile_fact.c.person_id,
            earlier.c.field == profile_fact.c.field,
            earlier.c.created_at < since,
            earlier.c.private == false(),
        )
        .correlate(profile_fact)
        .scalar_subquery()
    )
    before = profile_fact.alias("before")
    stmt = (
        select(
            profile_fact.c.person_id,
            profile_fact.c.field,
            profile_fact.c.value,
            profile_fact.c.created_at,
            before.c.value.label("previous"),
        )
        .select_from(profile_fact.outerjoin(before, before.c.id == previous_id))
        .where(
            profile_fact.c.person_id.in_(student_ids),
            profile_fact.c.created_at >= since,
            profile_fact.c.created_at < until,
            *_public(profile_fact, hidden_fields),
        )
        .order_by(profile_fact.c.person_id, profile_fact.c.id)
    )
    out: dict[int, list[ProfileChange]] = defaultdict(list)
    for row in conn.execute(stmt):
        out[row.person_id].append(
            ProfileChange(
                person_id=row.person_id,
                field=row.field,
                value=loads(row.value),
                created_at=row.created_at,
                previous=loads(row.previous),
            )
        )
    return out
