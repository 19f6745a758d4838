"""Quiet hours: the part of each night when nothing proactive reaches a student.

Read in the recipient's own time zone (``QUIET_HOURS``, default ``21:00-07:00``). Replies to
a student's own message are never held back; scheduled starts, reminders and surveys wait
for the morning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DEFAULT_QUIET_HOURS", "QuietHours", "recipient_zone"]

DEFAULT_QUIET_HOURS: Final = "21:00-07:00"
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
_OFF = frozenset({"off", "none", "no"})


def recipient_zone(timezone: str | None, default: str) -> ZoneInfo:
    """The person's time zone, else the default one (also for a name no longer known)."""
    try:
        return ZoneInfo(timezone or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """From ``start`` to ``end`` local time, across midnight when ``end`` comes first;
    ``start`` None means there are none."""

    start: time | None
    end: time | None

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``HH:MM-HH:MM`` (24-hour), or ``off``; ValueError with what is wrong."""
        if text.strip().lower() in _OFF:
            return cls(None, None)
        match = _RANGE.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a range of times: use HH:MM-HH:MM, or off")
        hours_1, minutes_1, hours_2, minutes_2 = (int(part) for part in match.groups())
        try:
            start, end = time(hours_1, minutes_1), time(hours_2, minutes_2)
        except ValueError:
            raise ValueError(f"{text!r} holds a time that does not exist on a clock") from None
        if start == end:
            raise ValueError(f"{text!r} starts where it ends: use off for no quiet hours")
        return cls(start, end)

    def __str__(self) -> str:
        if self.start is None or self.end is None:
            return "off"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def holds(self, local: datetime) -> bool:
        """Whether ``local`` (a wall time in the recipient's zone) falls inside them."""
        if self.start is None or self.end is None:
            return False
        now = local.time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def ends_after(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """The first instant from ``instant`` on that is outside them, in ``zone`` (UTC)."""
        local = instant.astimezone(zone)
        if not self.holds(local) or self.end is None:
            return instant
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)
