"""The learner profile: an append-only history of facts; the current value is the latest."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from ._audit import Viewing, record_views
from ._database import Database
from ._people import load_person
from ._records import ProfileFactRecord
from ._tables import AnyRow, dumps, loads, profile_fact, utcnow
from .errors import InvalidValueError, UnknownPersonError

__all__ = ["ProfileStore", "current_profile", "nest"]

_FIELD_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

_LATEST_IDS = (
    select(func.max(profile_fact.c.id))
    .where(profile_fact.c.person_id == bindparam("person_id"))
    .group_by(profile_fact.c.field)
)
_CURRENT = (
    select(profile_fact.c.field, profile_fact.c.value, profile_fact.c.private)
    .where(profile_fact.c.id.in_(_LATEST_IDS.scalar_subquery()))
    .order_by(profile_fact.c.id)
)
_INSERT_FACT = insert(profile_fact)


def current_profile(conn: Connection, person_id: int, *, include_private: bool) -> dict[str, Any]:
    """The latest value of every field, nested by dotted path; a cleared (None) field is absent.

    A field whose latest value is private is left out entirely unless ``include_private``:
    an older public value is not shown in its place.
    """
    flat: list[tuple[str, Any]] = []
    for row in conn.execute(_CURRENT, {"person_id": person_id}):
        if row.private and not include_private:
            continue
        value = loads(row.value)
        if value is not None:
            flat.append((row.field, value))
    return nest(flat)


def nest(flat: list[tuple[str, Any]]) -> dict[str, Any]:
    """``[("environment.noise_level", 2)]`` -> ``{"environment": {"noise_level": 2}}``.

    Pairs are applied in order, so a later value wins a slot an earlier one held.
    """
    out: dict[str, Any] = {}
    for field, value in flat:
        *parents, leaf = field.split(".")
        node = out
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf] = value
    return out


def check_field(field: str) -> str:
    if not _FIELD_RE.match(field):
        raise InvalidValueError(
            f"invalid profile field {field!r}: use dotted names like environment.noise_level"
        )
    return field


def _fact_record(row: AnyRow) -> ProfileFactRecord:
    created_at: datetime = row.created_at
    return ProfileFactRecord(
        id=row.id,
        person_id=row.person_id,
        field=row.field,
        value=loads(row.value),
        private=bool(row.private),
        conversation_id=row.conversation_id,
        flow_id=row.flow_id,
        flow_version=row.flow_version,
        step_id=row.step_id,
        origin=row.origin,
        source=row.source,
        created_at=created_at,
    )


class ProfileStore:
    """Read the current profile and its history; admin edits add facts, never overwrite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def current(
        self, person_id: int, *, include_private: bool = False, seen: Viewing | None = None
    ) -> dict[str, Any]:
        """The latest value per field, nested by dotted path; private fields hidden by default.
        ``seen``: the view to audit, written in the same transaction."""
        with self._db.begin() as conn:
            if seen is not None:
                record_views(conn, seen, [person_id])
            return current_profile(conn, person_id, include_private=include_private)

    def history(self, person_id: int, field: str | None = None) -> list[ProfileFactRecord]:
        """Every value with its provenance, oldest first; ``field`` includes its sub-fields."""
        stmt = select(profile_fact).where(profile_fact.c.person_id == person_id)
        if field is not None:
            stmt = stmt.where(
                (profile_fact.c.field == field)
                | profile_fact.c.field.startswith(field + ".", autoescape=True)
            )
        with self._db.begin() as conn:
            rows = conn.execute(stmt.order_by(profile_fact.c.id)).all()
        return [_fact_record(row) for row in rows]

    def set(
        self,
        person_id: int,
        field: str,
        value: Any,
        *,
        private: bool = False,
        source: str = "cli",
    ) -> ProfileFactRecord:
        """Record a new value for a field (an admin edit); the old value stays in history."""
        check_field(field)
        with self._db.begin() as conn:
            if load_person(conn, person_id) is None:
                raise UnknownPersonError(f"no person with id {person_id}")
            result = conn.execute(
                _INSERT_FACT.returning(profile_fact.c.id),
                {
                    "person_id": person_id,
                    "field": field,
                    "value": dumps(value),
                    "private": private,
                    "source": source,
                    "created_at": utcnow(),
                },
            )
            fact_id = result.scalar_one()
            row = conn.execute(select(profile_fact).where(profile_fact.c.id == fact_id)).one()
        return _fact_record(row)
