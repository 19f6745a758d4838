"""A term of check-ins written straight into the tables, at the times a test chooses: what
the weekly summaries read (tests/bot/test_summaries.py, tests/storage/test_reports.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from storage import Database, PeopleStore, PersonRecord, metadata

_T = metadata.tables
LONG_AGO = datetime(2025, 9, 1, tzinfo=UTC)
"""When a test's people joined unless it says: before any term it writes."""


def week_day(week: str, weekday: int = 3, at: time = time(16)) -> datetime:
    """A time of an ISO week ``YYYY-Www`` (``weekday`` 1 = Monday), in UTC."""
    year, number = week.split("-W")
    day = date.fromisocalendar(int(year), int(number), weekday)
    return datetime.combine(day, at, UTC)


def weeks_before(week: str, count: int) -> list[str]:
    """The ``count`` ISO weeks ending with ``week``, oldest first."""
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    out = []
    for k in range(count - 1, -1, -1):
        iso = (monday - timedelta(weeks=k)).isocalendar()
        out.append(f"{iso.year}-W{iso.week:02d}")
    return out


def backdate_roster(db: Database, joined: datetime = LONG_AGO) -> None:
    """Everyone on the roster joined at ``joined`` (``created_at`` is the real clock's, and a
    summary leaves out students who joined after its week)."""
    with db.begin() as conn:
        conn.execute(_T["person"].update().values(created_at=joined))


@dataclass
class Term:
    """Writes people, goals, check-ins and profile facts; returns their ids."""

    db: Database

    def person(
        self,
        name: str,
        role: str,
        handle: str,
        *,
        advisor: str | None = None,
        tz: str | None = None,
        joined: datetime = LONG_AGO,
    ) -> PersonRecord:
        """A person added to the roster at ``joined``."""
        added = PeopleStore(self.db).add(name, role, handle=handle, advisor=advisor, timezone=tz)
        with self.db.begin() as conn:
            conn.execute(
                _T["person"].update().where(_T["person"].c.id == added.id).values(created_at=joined)
            )
        return added

    def goal(self, student: PersonRecord, title: str, status: str = "active") -> int:
        at = datetime(2026, 9, 1, tzinfo=UTC)
        with self.db.begin() as conn:
            return int(
                conn.execute(
                    _T["goal"]
                    .insert()
                    .values(
                        person_id=student.id,
                        title=title,
                        status=status,
                        created_at=at,
                        updated_at=at,
                    )
                    .returning(_T["goal"].c.id)
                ).scalar_one()
            )

    def checkin(
        self,
        student: PersonRecord,
        at: datetime,
        *,
        mood: Any = 4,
        energy: Any = 3,
        note: str | None = None,
        wants_meeting: bool = False,
        progress: Mapping[int, Any] | None = None,
        next_steps: Mapping[int, str] | None = None,
    ) -> int:
        with self.db.begin() as conn:
            checkin_id = int(
                conn.execute(
                    _T["checkin"]
                    .insert()
                    .values(
                        person_id=student.id,
                        mood=_json(mood),
                        energy=_json(energy),
                        note_for_advisor=note,
                        wants_meeting=wants_meeting,
                        created_at=at,
                    )
                    .returning(_T["checkin"].c.id)
                ).scalar_one()
            )
            for goal_id, value in (progress or {}).items():
                conn.execute(
                    _T["checkin_goal_update"]
                    .insert()
                    .values(
                        checkin_id=checkin_id,
                        goal_id=goal_id,
                        progress=_json(value),
                        next_step=(next_steps or {}).get(goal_id),
                    )
                )
        return checkin_id

    def fact(
        self, student: PersonRecord, field: str, value: Any, at: datetime, *, private: bool = False
    ) -> None:
        with self.db.begin() as conn:
            conn.execute(
                _T["profile_fact"]
                .insert()
                .values(
                    person_id=student.id,
                    field=field,
                    value=_json(value),
                    private=private,
                    source="test",
                    created_at=at,
                )
            )


def _json(value: Any) -> str | None:
    import json

    return None if value is None else json.dumps(value)
