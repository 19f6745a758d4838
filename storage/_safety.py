"""Safety alerts as they were raised and delivered, read back from the audit log.

A turn that finds a safety phrase writes one ``safety.alert`` audit row (who the student is,
which step, which categories, whom it notified and the outbox rows it queued: never the answer
text). This reads them back with how far each notice got, so that an adult can see that every
alert reached someone, and which did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select

from ._database import Database
from ._tables import audit_log, loads, outbox, person

__all__ = [
    "ERASED_STAFF",
    "SAFETY_ALERT",
    "SafetyAlert",
    "SafetyNotified",
    "SafetyStore",
    "notice_status",
]

SAFETY_ALERT: Final = "safety.alert"
"""The audit action of a safety alert."""
ERASED_STAFF: Final = "(erased)"
"""Who an alert notified, once that staff member was erased: their handle goes, and the
entry keeps the status their notice had then (``status``), since its rows go with them."""


@dataclass(frozen=True, slots=True)
class SafetyNotified:
    """One staff member an alert was queued to, and how far its notice got: ``sent``,
    ``pending`` or ``dead`` (given up: see ``outbox`` rows' ``last_error``)."""

    handle: str
    status: str


@dataclass(frozen=True, slots=True)
class SafetyAlert:
    id: int
    at: datetime
    student: str
    """The student's handle."""
    flow: str | None
    step: str | None
    categories: tuple[str, ...]
    notified: tuple[SafetyNotified, ...]

    @property
    def reached(self) -> bool:
        """Whether at least one staff member has been sent the notice."""
        return any(n.status == "sent" for n in self.notified)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "student": self.student,
            "flow": self.flow,
            "step": self.step,
            "categories": list(self.categories),
            "notified": [{"person": n.handle, "status": n.status} for n in self.notified],
            "reached": self.reached,
        }


class SafetyStore:
    """The safety alerts raised, newest first."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def alerts(self, *, limit: int = 100) -> list[SafetyAlert]:
        query = (
            select(audit_log.c.id, audit_log.c.created_at, audit_log.c.detail, person.c.handle)
            .join(person, person.c.id == audit_log.c.subject_person_id)
            .where(audit_log.c.action == SAFETY_ALERT)
            .order_by(audit_log.c.id.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
            details = [loads(row.detail) for row in rows]
            ids = [i for d in details for n in d.get("notified", ()) for i in n["outbox_ids"]]
            statuses: dict[int, str] = {}
            for begin in range(0, len(ids), 500):
                chunk = ids[begin : begin + 500]
                found = conn.execute(
                    select(outbox.c.id, outbox.c.status).where(outbox.c.id.in_(chunk))
                ).all()
                statuses.update({r.id: r.status for r in found})
        return [
            SafetyAlert(
                id=row.id,
                at=row.created_at,
                student=row.handle,
                flow=detail.get("flow"),
                step=detail.get("step"),
                categories=tuple(detail.get("categories", ())),
                notified=tuple(
                    SafetyNotified(
                        n["person"],
                        n.get("status")
                        or notice_status([statuses.get(i) for i in n["outbox_ids"]]),
                    )
                    for n in detail.get("notified", ())
                ),
            )
            for row, detail in zip(rows, details, strict=True)
        ]


def notice_status(parts: Sequence[str | None]) -> str:
    """A notice's status from its rows': dead if any part is (or is gone), sent if all are."""
    if any(p in (None, "dead", "failed") for p in parts):
        return "dead"
    return "sent" if all(p == "sent" for p in parts) else "pending"
