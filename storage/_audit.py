"""The audit of views: who was shown a person's data, what, when and from where.

A view writes its rows into ``audit_log`` (the table other events share: a flagged step, a
foreign goal ignored), one row per person whose data it showed, in one statement: inside the
view's own transaction where it reads in one (``record_views``), else in a transaction of
its own (``AuditStore.record``). A row holds ids, the action and where it came from, never
what was shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Connection, select

from ._database import Database
from ._safety import SAFETY_ALERT
from ._sql import Sql
from ._tables import audit_log, dumps, loads, person

__all__ = ["AuditRecord", "AuditStore", "Viewed", "Viewing", "record_views"]


class Viewed(StrEnum):
    """What a view showed (the audit row's ``action``)."""

    PROFILE = "viewed_profile"
    PLAN = "viewed_plan"
    CARD = "viewed_card"
    SUMMARY = "viewed_summary"
    SURVEY_RESULTS = "viewed_survey_results"
    EXPORT = "exported"


@dataclass(frozen=True, slots=True)
class Viewing:
    """One view, before its rows are written: ``viewer_id`` None is the command line's
    administrator; ``via`` where it was asked ("cli", "chat"); ``detail`` ids and flags only
    (never answer text)."""

    viewer_id: int | None
    action: Viewed
    at: datetime
    via: str
    detail: dict[str, Any] = field(default_factory=dict)

    def rows(self, sql: Sql, subject_ids: Iterable[int]) -> list[tuple[Any, ...]]:
        """One row (``_COLUMNS``) per subject; none for the viewer's own data (not a
        disclosure)."""
        detail = dumps({"via": self.via, **self.detail})
        at = sql.time(self.at)
        return [
            (self.viewer_id, self.action.value, subject_id, detail, at)
            for subject_id in dict.fromkeys(subject_ids)
            if subject_id != self.viewer_id
        ]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One view of a person's data, as ``profilebot audit`` lists it."""

    at: datetime
    viewer: str | None
    """The viewer's handle; None: the command line's administrator."""
    via: str
    action: str
    subject: str

    def to_json(self) -> dict[str, Any]:
        """product.md's ``audit --json`` item."""
        return {
            "at": self.at.isoformat(),
            "viewer": self.viewer,
            "action": self.action,
            "subject": self.subject,
        }


SAFETY: Final = "safety"
"""Where a safety alert's views come from (``AuditRecord.via``)."""
SAFETY_ALERT_SEEN: Final = "safety_alert"
"""The action of a counselor's view of what a student wrote (a safety alert)."""

_COLUMNS = ("actor_person_id", "action", "subject_person_id", "detail", "created_at")


def record_views(conn: Connection | Sql, viewing: Viewing, subject_ids: Iterable[int]) -> int:
    """Write ``viewing``'s rows in ``conn``'s transaction (one statement per 100 rows, plain
    SQL: a view's own statement costs more in Core than in the database); how many."""
    sql = conn if isinstance(conn, Sql) else Sql(conn)
    rows = viewing.rows(sql, subject_ids)
    if rows:
        sql.insert("audit_log", _COLUMNS, rows)
    return len(rows)


class AuditStore:
    """Write views (``record``) and list those of one person (``views``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, viewing: Viewing, subject_ids: Iterable[int]) -> int:
        """Write ``viewing``'s rows in a transaction of their own; how many."""
        ids = list(subject_ids)
        if not any(i != viewing.viewer_id for i in ids):
            return 0
        with self._db.begin() as conn:
            return record_views(conn, viewing, ids)

    def views(self, subject_id: int) -> list[AuditRecord]:
        """Every view of ``subject_id``'s data, oldest first."""
        viewer = person.alias("viewer")
        subject = person.alias("subject")
        stmt = (
            select(
                audit_log.c.created_at,
                viewer.c.handle.label("viewer"),
                audit_log.c.action,
                audit_log.c.detail,
                subject.c.handle.label("subject"),
            )
            .join(subject, subject.c.id == audit_log.c.subject_person_id)
            .outerjoin(viewer, viewer.c.id == audit_log.c.actor_person_id)
            .where(
                audit_log.c.subject_person_id == subject_id,
                audit_log.c.action.in_([*(v.value for v in Viewed), SAFETY_ALERT]),
            )
            .order_by(audit_log.c.created_at, audit_log.c.id)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        records: list[AuditRecord] = []
        for row in rows:
            detail = loads(row.detail)
            if row.action == SAFETY_ALERT:
                records.extend(_alerted(row.created_at, row.subject, detail))
                continue
            via = str(detail.get("via", ""))
            records.append(AuditRecord(row.created_at, row.viewer, via, row.action, row.subject))
        return records


def _alerted(at: datetime, subject: str, detail: dict[str, Any]) -> list[AuditRecord]:
    """A safety alert as views: each counselor it notified was shown what the student wrote
    (none notified: one record without a viewer)."""
    viewers: list[str | None] = [str(n.get("person")) for n in detail.get("notified") or []]
    return [
        AuditRecord(at, viewer, SAFETY, SAFETY_ALERT_SEEN, subject) for viewer in viewers or [None]
    ]
