"""A parent's consent to sensitive (PPRA) questions, and whether a student is under 13.

Every grant and revoke is a row of its own, never updated or deleted (but with the rest of the
person's data, on erasure): the history is the record a school shows when asked, and the
latest row decides. A turn asks ``has_consent`` only when its flow reaches a sensitive step.

Under 13 (COPPA) is what an administrator set by hand (``person.under_13``), else what a birth
date says, else unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from sqlalchemy import Connection, bindparam, insert, select, update

from ._database import Database
from ._people import normalise_handle
from ._tables import AnyRow, consent, person, person_role, utcnow
from .errors import InvalidValueError, UnknownPersonError

__all__ = [
    "ConsentEvent",
    "ConsentState",
    "ConsentStatus",
    "ConsentStore",
    "has_consent",
    "is_under_13",
]

ConsentState = Literal["granted", "revoked", "none"]
COPPA_AGE: Final = 13
_STUDENT: Final = "student"

_LATEST = (
    select(consent.c.granted)
    .where(consent.c.person_id == bindparam("person_id"))
    .order_by(consent.c.recorded_at.desc(), consent.c.id.desc())
    .limit(1)
)


def has_consent(conn: Connection, person_id: int) -> bool:
    """Whether the person's latest consent decision is a grant (none recorded: no)."""
    return bool(conn.execute(_LATEST, {"person_id": person_id}).scalar())


def is_under_13(
    override: bool | None, birth_date: date | None = None, *, today: date
) -> bool | None:
    """The hand-set ``override`` when there is one, else what ``birth_date`` says on ``today``,
    else None (unknown)."""
    if override is not None:
        return override
    if birth_date is None:
        return None
    return today < _birthday(birth_date, birth_date.year + COPPA_AGE)


def _birthday(born: date, year: int) -> date:
    """``born``'s birthday in ``year``; 29 February falls on 1 March in other years."""
    try:
        return born.replace(year=year)
    except ValueError:
        return date(year, 3, 1)


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One grant or revoke, as recorded."""

    granted: bool
    by: str
    at: datetime
    note: str | None


@dataclass(frozen=True, slots=True)
class ConsentStatus:
    """A student's consent as it stands: the latest decision (``none`` before any)."""

    handle: str
    display_name: str
    consent: ConsentState
    by: str | None
    at: datetime | None
    note: str | None
    under_13: bool | None

    def to_json(self) -> dict[str, Any]:
        """docs/consent.md's ``consent list --json`` item."""
        return {
            "handle": self.handle,
            "consent": self.consent,
            "by": self.by,
            "at": None if self.at is None else self.at.isoformat(),
            "note": self.note,
            "under_13": self.under_13,
        }


_STUDENT_ROW = select(
    person.c.id, person.c.handle, person.c.display_name, person.c.under_13, person.c.birth_date
)
_STUDENTS = _STUDENT_ROW.join(person_role, person_role.c.person_id == person.c.id).where(
    person_role.c.role == _STUDENT
)
_EVENTS = select(
    consent.c.person_id,
    consent.c.granted,
    consent.c.given_by,
    consent.c.recorded_at,
    consent.c.note,
).order_by(consent.c.recorded_at, consent.c.id)


class ConsentStore:
    """Record grants and revokes, set the under-13 flag, and list where each student stands."""

    def __init__(self, db: Database, *, now: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._now = now

    def record(
        self, handle: str, *, granted: bool, by: str, note: str | None = None
    ) -> ConsentEvent:
        """Record a grant (``granted``) or a revoke for a student, given by ``by`` (the parent's
        or guardian's name); earlier decisions stay."""
        given_by = " ".join(by.split())
        if not given_by:
            raise InvalidValueError("--by needs the name of the parent or guardian who decided")
        event = ConsentEvent(granted, given_by, self._now(), (note or "").strip() or None)
        with self._db.begin() as conn:
            student = _student(conn, handle)
            conn.execute(
                insert(consent).values(
                    person_id=student.id,
                    granted=event.granted,
                    given_by=event.by,
                    note=event.note,
                    recorded_at=event.at,
                )
            )
        return event

    def set_under_13(self, handle: str, value: bool | None) -> None:
        """Set (True/False) or clear (None) the hand-set under-13 flag of a student."""
        with self._db.begin() as conn:
            student = _student(conn, handle)
            conn.execute(update(person).where(person.c.id == student.id).values(under_13=value))

    def status(self, handle: str, *, today: date) -> ConsentStatus:
        """Where one student stands (UnknownPersonError, InvalidValueError: not a student)."""
        with self._db.read() as conn:
            student = _student(conn, handle)
            events = conn.execute(_EVENTS.where(consent.c.person_id == student.id)).all()
        return _status(student, events, today)

    def statuses(self, *, today: date) -> list[ConsentStatus]:
        """Every student, by handle, with their latest decision and under-13 flag."""
        with self._db.read() as conn:
            students = conn.execute(_STUDENTS.order_by(person.c.handle)).all()
            events: dict[int, list[AnyRow]] = {}
            for row in conn.execute(_EVENTS).all():
                events.setdefault(row.person_id, []).append(row)
        return [_status(s, events.get(s.id, []), today) for s in students]

    def history(self, handle: str) -> list[ConsentEvent]:
        """Every decision recorded for a student, oldest first."""
        with self._db.read() as conn:
            student = _student(conn, handle)
            rows = conn.execute(_EVENTS.where(consent.c.person_id == student.id)).all()
        return [ConsentEvent(r.granted, r.given_by, r.recorded_at, r.note) for r in rows]


def _student(conn: Connection, handle: str) -> AnyRow:
    wanted = normalise_handle(handle)
    row = conn.execute(_STUDENT_ROW.where(person.c.handle == wanted)).first()
    if row is None:
        raise UnknownPersonError(f"no person with handle {wanted!r}")
    roles = conn.execute(select(person_role.c.role).where(person_role.c.person_id == row.id))
    if _STUDENT not in roles.scalars().all():
        raise InvalidValueError(f"{wanted!r} is not a student: consent is recorded for students")
    return row


def _status(student: AnyRow, events: Sequence[AnyRow], today: date) -> ConsentStatus:
    under_13 = is_under_13(student.under_13, student.birth_date, today=today)
    if not events:
        return ConsentStatus(
            student.handle, student.display_name, "none", None, None, None, under_13
        )
    latest = events[-1]
    return ConsentStatus(
        handle=student.handle,
        display_name=student.display_name,
        consent="granted" if latest.granted else "revoked",
        by=latest.given_by,
        at=latest.recorded_at,
        note=latest.note,
        under_13=under_13,
    )
