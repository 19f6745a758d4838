"""Schedules, school breaks, and the starts they owe: one due row per (schedule, person).

A schedule's rule is read in each recipient's own zone (``Recurrence``), so its due rows are
materialised per person: ``occurrence`` names the local time of the occurrence being worked
on, ``due_at`` the instant it falls due there, ``wake_at`` when the scheduler looks at the
row next (indexed; NULL: nothing more to do). A start that waits for the person's other
conversation has ``wake_at`` = ``WHEN_FREE``, and the turn that ends that conversation wakes
it (``Turn`` runs ``WAKE_BUSY``); ``reconcile`` wakes any such row whose person is free anyway.

The roster is followed lazily: ``reconcile`` (the scheduler runs it as it starts, then every
minute or so, and ``run-due`` every time) adds rows for people who joined an audience, drops
those of people who left, and moves a row whose recipient changed time zone. Set-based, one
statement per schedule and kind of change, so that every tick in between reads only the
indexes of what is due.

Due rows are claimed inside one transaction with the turns that start them
(``claim_due``): ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers never take
the same row; SQLite's ``BEGIN IMMEDIATE`` serialises writers already. Nothing is leased for
a while: a scheduler run at a future instant (``run-due --now``) leaves no claim behind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    Connection,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    union,
    update,
)
from sqlalchemy.sql import Select

from dialogues import FlowSettings

from ._database import Database
from ._people import normalise_handle
from ._proactive import DueStart
from ._recurrence import Occurrence, Recurrence, instant_of, weekly_rule
from ._sql import CLAIM_EVENT, EVENT_SEEN, Sql, statement, utc_value
from ._tables import (
    AnyRow,
    UtcDateTime,
    channel_identity,
    conversation,
    due_start,
    dumps,
    group_member,
    loads,
    person,
    person_role,
    schedule,
    student_group,
    utcnow,
)
from ._tables import school_break as break_table
from ._turns import Batch, Turn
from .errors import InvalidValueError, UnknownPersonError, UnknownRecordError

__all__ = [
    "ADVISOR_SUMMARY",
    "DEFAULT_SUMMARY_RULE",
    "SURVEY_OCCURRENCE",
    "WHEN_FREE",
    "Audience",
    "BreakImport",
    "BreakRecord",
    "DueClaim",
    "ScheduleRecord",
    "ScheduleStore",
    "SchoolBreak",
    "wait_until_free",
]

WHEN_FREE: Final = datetime(9000, 1, 1, tzinfo=UTC)
"""``wake_at`` of a start waiting for its person's other conversation to end: no clock
reaches it; the turn that ends that conversation (or ``reconcile``) sets it to now."""
ADVISOR_SUMMARY: Final = "advisor_summary"
"""The built-in pseudo-flow of a schedule that sends each advisor their weekly summary (a
notice, not a conversation). Its audience is advisors: ``everyone`` is every advisor, a group
its advisor members, a person that advisor; the most specific schedule naming an advisor is
theirs (see ``_summary_ids``)."""
DEFAULT_SUMMARY_RULE: Final = weekly_rule("fri", "15:00")
"""When advisors get their summary unless a schedule says otherwise: Friday 15:00 local."""
DEFAULT_SUMMARY_NAME: Final = "Weekly advisor summary"
_SEEDED_SUMMARY: Final = "seed:advisor_summary"  # the default was added once: never again
SURVEY_OCCURRENCE: Final = "send"
"""The ``occurrence`` of a survey's due row: a survey starts once per person."""
_ENDED: Final = "ended"  # the occurrence of a row whose rule has no more occurrences
_QUIET_WAIT_MAX: Final = timedelta(days=1)  # longer waits were decided at a later time
_BUSY: Final = "busy"

_ROW_COLUMNS = "id, schedule_id, survey_id, person_id, flow_id, occurrence, due_at, waiting"
# The rows due now, oldest first; PostgreSQL skips rows another scheduler holds.
_CLAIM = f"SELECT {_ROW_COLUMNS} FROM due_start WHERE wake_at <= :now{{}} ORDER BY wake_at, id "
_CLAIM_DUE = statement(
    _CLAIM.format("") + "LIMIT :limit",
    postgresql=_CLAIM.format("") + "LIMIT :limit FOR UPDATE SKIP LOCKED",
)
_CLAIM_ONE = statement(
    _CLAIM.format(" AND id = :id") + "LIMIT :limit",
    postgresql=_CLAIM.format(" AND id = :id") + "LIMIT :limit FOR UPDATE SKIP LOCKED",
)
_MOVE = statement(
    "UPDATE due_start SET occurrence = :occurrence, due_at = :due_at, wake_at = :wake_at, "
    "waiting = NULL WHERE id = :id"
)
_HOLD = statement("UPDATE due_start SET wake_at = :wake_at, waiting = :waiting WHERE id = :id")
# Conversations whose reminder or expiry has come: a statement per index (ordered by the
# index, so neither planner walks the whole table in person order instead).
_FOLLOW_UPS = tuple(
    statement(
        f"SELECT person_id, id FROM conversation WHERE {column} <= :now "
        f"ORDER BY {column} LIMIT :limit"
    )
    for column in ("expires_at", "remind_at")
)
_WAIT_BUSY = {
    key: statement(
        "INSERT INTO due_start (schedule_id, survey_id, person_id, flow_id, occurrence, due_at, "
        "wake_at, waiting) VALUES (:schedule_id, :survey_id, :person_id, :flow_id, :occurrence, "
        f":due_at, :wake_at, 'busy') ON CONFLICT ({key}, person_id) DO UPDATE SET "
        "occurrence = excluded.occurrence, due_at = excluded.due_at, "
        "wake_at = excluded.wake_at, waiting = 'busy'"
    )
    for key in ("schedule_id", "survey_id")
}


@dataclass(frozen=True, slots=True)
class Audience:
    """Whom a schedule is for: every student, the students of some groups, some people."""

    everyone: bool = False
    groups: tuple[str, ...] = ()
    people: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"everyone": self.everyone, "groups": list(self.groups), "people": list(self.people)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Audience:
        return cls(
            bool(data.get("everyone", False)),
            tuple(data.get("groups", ())),
            tuple(data.get("people", ())),
        )

    def __str__(self) -> str:
        if self.everyone:
            return "every student"
        parts = [f"group {g}" for g in self.groups] + list(self.people)
        return ", ".join(parts) or "nobody"


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    id: int
    name: str | None
    flow_id: str
    rule: str
    starts_on: date
    audience: Audience
    status: str
    created_at: datetime

    @property
    def recurrence(self) -> Recurrence:
        return Recurrence(self.rule, self.starts_on)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "flow": self.flow_id,
            "rule": self.rule,
            "starts_on": self.starts_on.isoformat(),
            "audience": self.audience.to_json(),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SchoolBreak:
    """Days without school, ``starts_on`` to ``ends_on`` inclusive; ``uid`` is the iCalendar
    event's, when it came from one (imports are idempotent by it)."""

    name: str
    starts_on: date
    ends_on: date
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class BreakRecord:
    id: int
    name: str
    starts_on: date
    ends_on: date
    uid: str | None

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "from": self.starts_on.isoformat(),
            "to": self.ends_on.isoformat(),
            "uid": self.uid,
        }


@dataclass(frozen=True, slots=True)
class BreakImport:
    """What an import of breaks changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0


class ScheduleStore:
    """Schedules, breaks and due starts: everything the scheduler keeps in the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- schedules ---------------------------------------------------------------------------

    def add(
        self,
        flow_id: str,
        rule: str,
        audience: Audience,
        *,
        now: datetime,
        default_zone: str,
        name: str | None = None,
    ) -> ScheduleRecord:
        """A new active schedule, its due rows made at once (first occurrence from ``now``).

        The rule is anchored on today in ``default_zone``. Unknown groups or people, or a
        rule that is not one, raise before anything is written.
        """
        audience = dataclasses.replace(
            audience, people=tuple(dict.fromkeys(normalise_handle(h) for h in audience.people))
        )
        normal = Recurrence.normalise(rule)
        starts_on = now.astimezone(_zone(None, default_zone)).date()
        recurrence = Recurrence(normal, starts_on)
        recurrence.check()
        with self._db.begin() as conn:
            _check_audience(conn, audience, flow_id)
            schedule_id = conn.execute(
                insert(schedule).returning(schedule.c.id),
                {
                    "name": name,
                    "flow_id": flow_id,
                    "rule": normal,
                    "starts_on": starts_on,
                    "audience": dumps(audience.to_json()),
                    "status": "active",
                    "created_at": now,
                },
            ).scalar_one()
            record = _get_schedule(conn, schedule_id)
            _add_missing(conn, record, now, default_zone)
            if flow_id == ADVISOR_SUMMARY:  # it overrides broader ones for its advisors now
                for other in _active_summaries(conn):
                    _drop_departed(conn, other)
        return record

    def seed_summary_default(self, *, now: datetime, default_zone: str) -> ScheduleRecord | None:
        """Add the default summary schedule (every advisor, ``DEFAULT_SUMMARY_RULE``) the
        first time there is an advisor, unless the school added a summary schedule of its
        own first; once only, so that one removed stays removed. The schedule added, else
        None."""
        with self._db.begin() as conn:
            sql = Sql(conn)
            if sql.first(EVENT_SEEN, {"key": _SEEDED_SUMMARY}) is not None:
                return None
            advisor = conn.execute(
                select(person_role.c.person_id).where(person_role.c.role == "advisor").limit(1)
            ).first()
            own = conn.execute(
                select(schedule.c.id).where(schedule.c.flow_id == ADVISOR_SUMMARY).limit(1)
            ).first()
            if advisor is None and own is None:
                return None
            if sql.execute(CLAIM_EVENT, {"key": _SEEDED_SUMMARY, "now": sql.time(now)}) == 0:
                return None  # another process seeded it just now
            if own is not None:  # the school set its own before any default: that stays
                return None
        return self.add(
            ADVISOR_SUMMARY,
            DEFAULT_SUMMARY_RULE,
            Audience(everyone=True),
            now=now,
            default_zone=default_zone,
            name=DEFAULT_SUMMARY_NAME,
        )

    def schedules(self) -> list[ScheduleRecord]:
        with self._db.read() as conn:
            rows = conn.execute(select(schedule).order_by(schedule.c.id)).all()
        return [_schedule_record(r) for r in rows]

    def get(self, schedule_id: int, *, within: Batch | None = None) -> ScheduleRecord:
        """The schedule (UnknownRecordError: there is none); ``within`` reads it in that
        batch's transaction."""
        if within is not None:
            return _get_schedule(within._sql.conn, schedule_id)
        with self._db.read() as conn:
            return _get_schedule(conn, schedule_id)

    def recipients(self, schedule_id: int) -> int:
        """How many people the schedule has due rows for (its audience, as last reconciled)."""
        with self._db.read() as conn:
            count = conn.execute(
                select(func.count()).where(due_start.c.schedule_id == schedule_id)
            ).scalar_one()
        return int(count)

    def next_occurrences(self) -> dict[int, str]:
        """Each schedule's earliest pending occurrence (local time), by schedule id."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(due_start.c.schedule_id, func.min(due_start.c.occurrence))
                .where(
                    due_start.c.schedule_id.is_not(None),
                    due_start.c.wake_at.is_not(None),
                    due_start.c.occurrence != _ENDED,
                )
                .group_by(due_start.c.schedule_id)
            ).all()
        return {int(r[0]): str(r[1]) for r in rows}

    def remove(self, schedule_id: int) -> ScheduleRecord:
        """Delete a schedule and what it still owes; its past conversations stay (unlinked)."""
        with self._db.begin() as conn:
            record = _get_schedule(conn, schedule_id)
            conn.execute(delete(due_start).where(due_start.c.schedule_id == schedule_id))
            conn.execute(
                update(conversation)
                .where(conversation.c.schedule_id == schedule_id)
                .values(schedule_id=None)
            )
            conn.execute(delete(schedule).where(schedule.c.id == schedule_id))
        return record

    def pause(self, schedule_id: int) -> ScheduleRecord:
        """Nothing of it starts until it is resumed (conversations under way go on)."""
        with self._db.begin() as conn:
            _get_schedule(conn, schedule_id)
            conn.execute(
                update(schedule).where(schedule.c.id == schedule_id).values(status="paused")
            )
            conn.execute(
                update(due_start)
                .where(due_start.c.schedule_id == schedule_id)
                .values(wake_at=None, waiting=None)
            )
            return _get_schedule(conn, schedule_id)

    def resume(self, schedule_id: int, *, now: datetime, default_zone: str) -> ScheduleRecord:
        """Active again from its next occurrence after ``now`` (what fell due while it was
        paused is not caught up)."""
        with self._db.begin() as conn:
            _get_schedule(conn, schedule_id)
            conn.execute(
                update(schedule).where(schedule.c.id == schedule_id).values(status="active")
            )
            record = _get_schedule(conn, schedule_id)
            conn.execute(delete(due_start).where(due_start.c.schedule_id == schedule_id))
            _add_missing(conn, record, now, default_zone)
        return record

    # -- breaks --------------------------------------------------------------------------

    def add_break(self, school_break: SchoolBreak) -> BreakRecord:
        _check_break(school_break)
        with self._db.begin() as conn:
            return _insert_break(conn, school_break)

    def import_breaks(self, breaks: Sequence[SchoolBreak]) -> BreakImport:
        """Add or update breaks by their iCalendar UID, in one transaction: importing the
        same calendar again changes nothing."""
        for school_break in breaks:
            _check_break(school_break)
        added = updated = unchanged = 0
        with self._db.begin() as conn:
            for school_break in breaks:
                found = None
                if school_break.uid is not None:
                    found = conn.execute(
                        select(break_table).where(break_table.c.uid == school_break.uid)
                    ).first()
                if found is None:
                    _insert_break(conn, school_break)
                    added += 1
                elif (found.name, found.starts_on, found.ends_on) == (
                    school_break.name,
                    school_break.starts_on,
                    school_break.ends_on,
                ):
                    unchanged += 1
                else:
                    conn.execute(
                        update(break_table)
                        .where(break_table.c.id == found.id)
                        .values(
                            name=school_break.name,
                            starts_on=school_break.starts_on,
                            ends_on=school_break.ends_on,
                        )
                    )
                    updated += 1
        return BreakImport(added, updated, unchanged)

    def breaks(self, *, within: Batch | None = None) -> list[BreakRecord]:
        """Every break, earliest first (``within``: read in that batch's transaction)."""
        stmt = select(break_table).order_by(break_table.c.starts_on, break_table.c.id)
        if within is not None:
            rows = within._sql.conn.execute(stmt).all()
        else:
            with self._db.read() as conn:
                rows = conn.execute(stmt).all()
        return [BreakRecord(r.id, r.name, r.starts_on, r.ends_on, r.uid) for r in rows]

    # -- due starts ----------------------------------------------------------------------

    def reconcile(
        self,
        *,
        now: datetime,
        default_zone: str,
        grace: timedelta,
        flow_settings: Mapping[str, FlowSettings] | None = None,
    ) -> int:
        """Bring every active schedule's due rows in line with the roster and the clock;
        returns how many rows changed.

        - a row for each person who joined an audience (first occurrence from ``now``),
          none for those who left it;
        - a row whose recipient changed time zone falls due at its local time in the new one;
        - a row decided by a clock later than ``now`` (``run-due --now`` far ahead, then the
          real clock) goes back to the rule's first occurrence within ``grace``: the start's
          exactly-once key keeps an occurrence started then from starting again;
        - a start waiting for the person's other conversation is woken if that has ended.

        ``flow_settings`` (by flow id) also brings back conversations' reminder and expiry
        times set by such a later clock.
        """
        changed = 0
        with self._db.begin() as conn:
            rows = conn.execute(select(schedule).where(schedule.c.status == "active")).all()
            for row in rows:
                record = _schedule_record(row)
                changed += _add_missing(conn, record, now, default_zone)
                changed += _drop_departed(conn, record)
                changed += _retime(conn, record, now, default_zone, grace)
            changed += _wake_from_later_clock(conn, now)
            changed += _wake_the_free(conn, now)
            for flow_id, settings in (flow_settings or {}).items():
                changed += _bring_back_timers(conn, flow_id, settings, now)
        return changed

    @contextmanager
    def claim_due(self, batch: Batch, *, limit: int, only: int | None = None) -> Iterator[DueClaim]:
        """The due rows of ``batch``'s instant (oldest first, at most ``limit``; ``only``:
        that row, if it is due and free), claimed in its transaction, with what to write
        back; take the turns in the rows' order."""
        sql = batch._sql
        params: dict[str, Any] = {"now": sql.time(batch.now), "limit": limit}
        if only is not None:
            params["id"] = only
        rows = sql.rows(_CLAIM_DUE if only is None else _CLAIM_ONE, params)
        due = sorted((_due_start(r) for r in rows), key=lambda d: (d.person_id, d.id))
        yield DueClaim(batch, due)

    def follow_ups(self, batch: Batch, *, limit: int) -> list[tuple[int, int]]:
        """(person id, conversation id) of conversations whose reminder or expiry has come
        at ``batch``'s instant, by person. Not locked: read each again under its person's
        turn (``Turn.timed_conversation``) and act only if it is still due."""
        sql = batch._sql
        params = {"now": sql.time(batch.now), "limit": limit}
        found = {(int(r[0]), int(r[1])) for stmt in _FOLLOW_UPS for r in sql.rows(stmt, params)}
        return sorted(found)[:limit]

    def due_starts(
        self, *, person_id: int | None = None, schedule_id: int | None = None
    ) -> list[DueStart]:
        """Due rows (read-only; for reports and tests)."""
        stmt = select(due_start).order_by(due_start.c.id)
        if person_id is not None:
            stmt = stmt.where(due_start.c.person_id == person_id)
        if schedule_id is not None:
            stmt = stmt.where(due_start.c.schedule_id == schedule_id)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            DueStart(
                r.id,
                r.schedule_id,
                r.survey_id,
                r.person_id,
                r.flow_id,
                r.occurrence,
                r.due_at,
                r.waiting,
            )
            for r in rows
        ]

    def due_summaries(self, *, now: datetime, limit: int) -> list[DueStart]:
        """Summary rows due at ``now`` whose advisor has a chat that is not unreachable
        (read-only, oldest first): the scheduler builds their summaries before it claims
        them, outside any transaction, so that no turn waits while a chart is drawn."""
        reachable = exists().where(
            channel_identity.c.person_id == due_start.c.person_id,
            channel_identity.c.unreachable.is_(False),
        )
        stmt = (
            select(
                due_start.c.id,
                due_start.c.schedule_id,
                due_start.c.survey_id,
                due_start.c.person_id,
                due_start.c.flow_id,
                due_start.c.occurrence,
                due_start.c.due_at,
                due_start.c.waiting,
            )
            .where(
                due_start.c.wake_at <= now,
                due_start.c.flow_id == ADVISOR_SUMMARY,
                reachable,
            )
            .order_by(due_start.c.wake_at, due_start.c.id)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [_due_start(tuple(r)) for r in conn.execute(stmt).all()]

    def wake_at(self, due_id: int) -> datetime | None:
        """When the scheduler next looks at a due row (None: nothing more to do)."""
        with self._db.read() as conn:
            value = conn.execute(
                select(due_start.c.wake_at).where(due_start.c.id == due_id)
            ).first()
        if value is None:
            raise UnknownRecordError(f"no due start {due_id}")
        wake: datetime | None = value[0]
        return wake


@dataclass(slots=True)
class DueClaim:
    """Due rows claimed in a batch's transaction, and how each is written back."""

    batch: Batch
    rows: list[DueStart] = field(default_factory=list)

    def move(self, row: DueStart, occurrence: Occurrence | None) -> None:
        """On to ``occurrence`` (None: the rule has no more; nothing left to do)."""
        sql = self.batch._sql
        if occurrence is None:
            params = {"id": row.id, "occurrence": _ENDED, "due_at": sql.time(row.due_at)}
            sql.execute(_MOVE, {**params, "wake_at": None})
            return
        at = sql.time(occurrence.at)
        sql.execute(
            _MOVE, {"id": row.id, "occurrence": occurrence.key, "due_at": at, "wake_at": at}
        )

    def hold(self, row: DueStart, waiting: str, until: datetime) -> None:
        """Held back (``waiting`` says why) until ``until``."""
        sql = self.batch._sql
        sql.execute(_HOLD, {"id": row.id, "wake_at": sql.time(until), "waiting": waiting})

    def wait_until_free(self, row: DueStart) -> None:
        """Held back until the person's other conversation ends."""
        self.hold(row, _BUSY, WHEN_FREE)

    def finish(self, row: DueStart) -> None:
        """Nothing more to do (a survey's start, done or skipped)."""
        self.batch._sql.execute(_HOLD, {"id": row.id, "wake_at": None, "waiting": None})


def wait_until_free(
    turn: Turn,
    *,
    schedule_id: int | None,
    survey_id: int | None,
    flow_id: str,
    occurrence: str,
) -> None:
    """In ``turn``'s transaction: the start of this schedule occurrence or survey for the
    turn's person waits until their other conversation ends (the scheduler starts it then)."""
    if (schedule_id is None) == (survey_id is None):
        raise ValueError("name exactly one of schedule_id and survey_id")
    sql = turn._sql
    key = "schedule_id" if schedule_id is not None else "survey_id"
    sql.execute(
        _WAIT_BUSY[key],
        {
            "schedule_id": schedule_id,
            "survey_id": survey_id,
            "person_id": turn.person.id,
            "flow_id": flow_id,
            "occurrence": occurrence,
            "due_at": sql.time(turn.now),
            "wake_at": sql.time(WHEN_FREE),
        },
    )


# -- helpers ---------------------------------------------------------------------------------


def _zone(timezone: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def _due_start(row: Sequence[Any]) -> DueStart:
    due_id, schedule_id, survey_id, person_id, flow_id, occurrence, due_at, waiting = row
    return DueStart(
        due_id, schedule_id, survey_id, person_id, flow_id, occurrence, utc_value(due_at), waiting
    )


def _schedule_record(row: AnyRow) -> ScheduleRecord:
    return ScheduleRecord(
        id=row.id,
        name=row.name,
        flow_id=row.flow_id,
        rule=row.rule,
        starts_on=row.starts_on,
        audience=Audience.from_json(loads(row.audience)),
        status=row.status,
        created_at=row.created_at,
    )


def _get_schedule(conn: Connection, schedule_id: int) -> ScheduleRecord:
    row = conn.execute(select(schedule).where(schedule.c.id == schedule_id)).first()
    if row is None:
        raise UnknownRecordError(f"no schedule {schedule_id}: see `profilebot schedule list`")
    return _schedule_record(row)


def _check_audience(conn: Connection, audience: Audience, flow_id: str) -> None:
    if audience.groups:
        names = select(student_group.c.name).where(student_group.c.name.in_(audience.groups))
        known = set(conn.scalars(names))
        for name in audience.groups:
            if name not in known:
                raise UnknownRecordError(f"no group named {name!r}")
    if audience.people:
        handles = select(person.c.handle).where(person.c.handle.in_(audience.people))
        known = set(conn.scalars(handles))
        for handle in audience.people:
            if handle not in known:
                raise UnknownPersonError(f"no person with handle {handle!r}")
        if flow_id == ADVISOR_SUMMARY:
            advisors = set(
                conn.scalars(
                    select(person.c.handle)
                    .join(person_role, person_role.c.person_id == person.c.id)
                    .where(person.c.handle.in_(audience.people), person_role.c.role == "advisor")
                )
            )
            for handle in audience.people:
                if handle not in advisors:
                    raise InvalidValueError(
                        f"{handle!r} is not an advisor: summaries go to advisors"
                    )
    if not (audience.everyone or audience.groups or audience.people):
        raise InvalidValueError("a schedule needs an audience: everyone, groups or people")


def _recipient_ids(conn: Connection, record: ScheduleRecord) -> Select[tuple[int]]:
    """The ids of the people a schedule is for: never anyone who left the roster."""
    ids = (
        _summary_ids(conn, record)
        if record.flow_id == ADVISOR_SUMMARY
        else _audience_ids(record.audience)
    )
    return select(person.c.id).where(person.c.id.in_(ids), person.c.active)


def _active_summaries(conn: Connection) -> list[ScheduleRecord]:
    rows = conn.execute(
        select(schedule).where(schedule.c.flow_id == ADVISOR_SUMMARY, schedule.c.status == "active")
    ).all()
    return [_schedule_record(r) for r in rows]


def _summary_ids(conn: Connection, record: ScheduleRecord) -> Select[tuple[int]]:
    """The advisors a summary schedule is for. Each advisor has one summary schedule: the
    most specific that covers them (one naming them, else one naming a group of theirs,
    else one for everyone), the newest if several do. A paused schedule still counts:
    pausing an advisor's own schedule pauses their summaries, removing it gives them the
    broader one."""
    rows = conn.execute(
        select(schedule.c.id, schedule.c.audience).where(schedule.c.flow_id == ADVISOR_SUMMARY)
    ).all()
    audiences = {int(i): Audience.from_json(loads(a)) for i, a in rows}
    newer = [a for i, a in audiences.items() if i > record.id]
    named = {h for a in audiences.values() for h in a.people}
    grouped = {g for a in audiences.values() for g in a.groups}
    advisors = select(person_role.c.person_id).where(person_role.c.role == "advisor")

    def members(groups: set[str] | tuple[str, ...]) -> Select[tuple[int]]:
        return (
            select(group_member.c.person_id)
            .join(student_group, student_group.c.id == group_member.c.group_id)
            .where(student_group.c.name.in_(groups))
        )

    def handles(names: set[str]) -> Select[tuple[int]]:
        return select(person.c.id).where(person.c.handle.in_(names))

    audience = record.audience
    parts: list[Select[tuple[int]]] = []
    if audience.everyone and not any(a.everyone for a in newer):
        parts.append(
            select(person.c.id).where(
                person.c.id.in_(advisors),
                person.c.id.not_in(handles(named)),
                person.c.id.not_in(members(grouped)),
            )
        )
    if audience.groups:
        parts.append(
            select(person.c.id).where(
                person.c.id.in_(members(audience.groups)),
                person.c.id.in_(advisors),
                person.c.id.not_in(handles(named)),
                person.c.id.not_in(members({g for a in newer for g in a.groups})),
            )
        )
    if audience.people:
        parts.append(
            select(person.c.id).where(
                person.c.handle.in_(audience.people),
                person.c.id.in_(advisors),
                person.c.id.not_in(handles({h for a in newer for h in a.people})),
            )
        )
    if not parts:
        return select(person.c.id).where(false())
    if len(parts) == 1:
        return parts[0]
    return select(union(*parts).subquery().c[0])


def _audience_ids(audience: Audience) -> Select[tuple[int]]:
    """The ids of the people a schedule is for: students only, unless named one by one."""
    students = select(person_role.c.person_id).where(person_role.c.role == "student")
    if audience.everyone:
        return students
    parts: list[Select[tuple[int]]] = []
    if audience.groups:
        parts.append(
            select(group_member.c.person_id)
            .join(student_group, student_group.c.id == group_member.c.group_id)
            .where(
                student_group.c.name.in_(audience.groups),
                group_member.c.person_id.in_(students),
            )
        )
    if audience.people:
        parts.append(select(person.c.id).where(person.c.handle.in_(audience.people)))
    if len(parts) == 1:
        return parts[0]
    return select(union(*parts).subquery().c[0])


def _add_missing(conn: Connection, record: ScheduleRecord, now: datetime, default_zone: str) -> int:
    """Rows for the audience's people who have none, each at its first occurrence from now."""
    has_row = exists().where(
        due_start.c.schedule_id == record.id, due_start.c.person_id == person.c.id
    )
    missing = conn.execute(
        select(person.c.id, person.c.timezone).where(
            person.c.id.in_(_recipient_ids(conn, record)), ~has_row
        )
    ).all()
    if not missing:
        return 0
    recurrence = record.recurrence
    first: dict[str | None, Occurrence | None] = {}
    rows = []
    for person_id, timezone in missing:
        if timezone not in first:
            first[timezone] = recurrence.first_from(now, _zone(timezone, default_zone))
        occurrence = first[timezone]
        rows.append(
            {
                "schedule_id": record.id,
                "survey_id": None,
                "person_id": person_id,
                "flow_id": record.flow_id,
                "occurrence": _ENDED if occurrence is None else occurrence.key,
                "due_at": now if occurrence is None else occurrence.at,
                "wake_at": None if occurrence is None else occurrence.at,
                "waiting": None,
            }
        )
    conn.execute(insert(due_start), rows)
    return len(rows)


def _drop_departed(conn: Connection, record: ScheduleRecord) -> int:
    result = conn.execute(
        delete(due_start).where(
            due_start.c.schedule_id == record.id,
            due_start.c.person_id.not_in(_recipient_ids(conn, record)),
        )
    )
    return int(result.rowcount)


def _retime(
    conn: Connection,
    record: ScheduleRecord,
    now: datetime,
    default_zone: str,
    grace: timedelta,
) -> int:
    """Pending rows whose instant no longer matches their recipient's zone, or that a later
    clock moved past the rule's next occurrence, set right; grouped by (occurrence, zone), so
    a few statements whatever the audience's size."""
    pending = [
        due_start.c.schedule_id == record.id,
        due_start.c.waiting.is_(None),
        due_start.c.wake_at.is_not(None),
    ]
    groups = conn.execute(
        select(
            due_start.c.occurrence,
            person.c.timezone,
            func.min(due_start.c.due_at),
            func.max(due_start.c.due_at),
        )
        .join(person, person.c.id == due_start.c.person_id)
        .where(*pending)
        .group_by(due_start.c.occurrence, person.c.timezone)
    ).all()
    recurrence = record.recurrence
    changed = 0
    for key, timezone, earliest, latest in groups:
        zone = _zone(timezone, default_zone)
        expected = instant_of(key, zone)
        upcoming = recurrence.first_after(now, zone)
        target: Occurrence | None = None
        if upcoming is not None and expected > upcoming.at:
            target = recurrence.first_from(now - grace, zone)
        elif earliest != expected or latest != expected:
            target = Occurrence(key, datetime.fromisoformat(key), expected)
        if target is None:
            continue
        in_zone: ColumnElement[bool] = (
            person.c.timezone.is_(None) if timezone is None else person.c.timezone == timezone
        )
        result = conn.execute(
            update(due_start)
            .where(
                *pending,
                due_start.c.occurrence == key,
                due_start.c.person_id.in_(select(person.c.id).where(in_zone)),
            )
            .values(occurrence=target.key, due_at=target.at, wake_at=target.at)
        )
        changed += int(result.rowcount)
    return changed


def _wake_from_later_clock(conn: Connection, now: datetime) -> int:
    """Quiet-hours waits longer than any night were decided by a later clock: decide again."""
    result = conn.execute(
        update(due_start)
        .where(
            due_start.c.wake_at > now + _QUIET_WAIT_MAX,
            due_start.c.wake_at < WHEN_FREE,
            due_start.c.waiting.is_not(None),
            due_start.c.waiting != _BUSY,
        )
        .values(wake_at=now)
    )
    return int(result.rowcount)


def _wake_the_free(conn: Connection, now: datetime) -> int:
    """Busy waits whose person has no conversation under way any more."""
    active = exists().where(
        conversation.c.person_id == due_start.c.person_id, conversation.c.status == "active"
    )
    result = conn.execute(
        update(due_start).where(due_start.c.wake_at == WHEN_FREE, ~active).values(wake_at=now)
    )
    return int(result.rowcount)


def _bring_back_timers(
    conn: Connection, flow_id: str, settings: FlowSettings, now: datetime
) -> int:
    """Reminder and expiry times no turn at ``now`` could have set brought back to the
    latest it could have, and a start dated after ``now`` to ``now``: a later clock set them
    (a conversation started by ``run-due --now`` far ahead must not stay open, and its
    student busy, until the real clock gets there)."""
    changed = 0
    of_flow = conversation.c.flow_id == flow_id
    at_now = literal(now, UtcDateTime())
    started = case((conversation.c.created_at > now, at_now), else_=conversation.c.created_at)
    for column, seconds in (
        (conversation.c.expires_at, settings.expire_after_s),
        (conversation.c.remind_at, settings.remind_after_s),
    ):
        if seconds is None:
            continue
        latest = now + timedelta(seconds=seconds)
        result = conn.execute(
            update(conversation)
            .where(column > latest, of_flow)
            .values({column: latest, conversation.c.created_at: started})
        )
        changed += int(result.rowcount)
    return changed


def _check_break(school_break: SchoolBreak) -> None:
    if not school_break.name.strip():
        raise InvalidValueError("a break needs a name")
    if school_break.ends_on < school_break.starts_on:
        raise InvalidValueError(
            f"a break cannot end ({school_break.ends_on}) before it starts "
            f"({school_break.starts_on})"
        )


def _insert_break(conn: Connection, school_break: SchoolBreak) -> BreakRecord:
    row = conn.execute(
        insert(break_table).returning(break_table.c.id),
        {
            "name": school_break.name.strip(),
            "starts_on": school_break.starts_on,
            "ends_on": school_break.ends_on,
            "uid": school_break.uid,
            "created_at": utcnow(),
        },
    ).scalar_one()
    return BreakRecord(
        int(row),
        school_break.name.strip(),
        school_break.starts_on,
        school_break.ends_on,
        school_break.uid,
    )
