"""The one clock: everything that asks what time it is asks it, so tests can move time.

``SystemClock`` is the real one. ``FrozenClock`` stands still until told otherwise: tests
set and advance it instead of sleeping, and ``profilebot schedule run-due --now`` runs the
scheduler at the instant given. Times are aware and in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FrozenClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that shows ``at`` until set or advanced."""

    def __init__(self, at: datetime) -> None:
        self._at = _utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _utc(at)

    def advance(self, by: timedelta) -> datetime:
        self._at += by
        return self._at


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"a clock needs an aware time, not {at.isoformat()}")
    return at.astimezone(UTC)
