"""The audit of who saw a student's data: every view, on the command line or in chat.

A view asks ``bot.roles`` first; what it then shows is recorded here, one row per person whose
data it showed (``storage.Viewed`` says what), at ``app.clock``'s time. A student's own data
shown to them is not recorded: it is not a disclosure. A refused view shows nothing and writes
nothing. Commands and chat views call ``record`` (or pass ``viewing(...)`` to a store that
reads in one transaction and writes the row in it)::

    app.audit.record(actor, Viewed.EXPORT, person)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from storage import AuditRecord, AuditStore, PersonRecord, Viewed, Viewing

from .clock import Clock
from .roles import Actor

__all__ = ["CHAT", "CLI", "SCHEDULED", "Audit"]

CLI: Final = "cli"
"""Asked on the command line (with ``--as``, or as its administrator: viewer None)."""
CHAT: Final = "chat"
"""Asked with a chat command."""
SCHEDULED: Final = "schedule"
"""Sent by the bot on a schedule (an advisor's weekly summary)."""


class Audit:
    """Writes the views of a student's data (``app.audit``)."""

    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def viewing(
        self, viewer: Actor | None, action: Viewed, *, via: str = CLI, **detail: Any
    ) -> Viewing:
        """The view ``viewer`` (None: the command line's administrator) is shown now."""
        return Viewing(
            viewer_id=None if viewer is None else viewer.person.id,
            action=action,
            at=self._clock.now(),
            via=via,
            detail=detail,
        )

    def record(
        self,
        viewer: Actor | None,
        action: Viewed,
        subjects: PersonRecord | Iterable[PersonRecord | int],
        *,
        via: str = CLI,
        **detail: Any,
    ) -> int:
        """Record that ``viewer`` was shown ``subjects``' data (one row each); how many rows."""
        people = [subjects] if isinstance(subjects, PersonRecord) else subjects
        ids = [p.id if isinstance(p, PersonRecord) else p for p in people]
        return self._store.record(self.viewing(viewer, action, via=via, **detail), ids)

    def views(self, person: PersonRecord) -> list[AuditRecord]:
        """Every view of ``person``'s data, oldest first (``Action.VIEW_AUDIT`` is the
        caller's to ask)."""
        return self._store.views(person.id)
