"""When a schedule falls due for one recipient: an RFC 5545 rule read in their own time zone.

The rule (dateutil's ``rrule``) runs on wall-clock times, from ``starts_on`` at 00:00: "every
Wednesday at 10:00" yields Wednesdays at 10:00, whatever the offset to UTC that day. Only then
does each wall time become an instant, in the recipient's zone (``zoneinfo``). So across a
daylight-saving change 10:00 stays 10:00 local: never an hour off, never twice (a wall time
the autumn repeats is taken once, its first time), never skipped (one the spring skips is
taken at the same distance past the gap). No calendar arithmetic is written here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from .errors import InvalidValueError

__all__ = ["DAYS", "Occurrence", "Recurrence", "instant_of", "weekly_rule"]

DAYS: Final = {
    **{"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH"},
    **{"fri": "FR", "sat": "SA", "sun": "SU"},
}
"""The day names ``schedule add --on`` takes, and their RFC 5545 spelling."""
_FREQUENCIES: Final = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_CLOCK: Final = re.compile(r"^(\d{1,2}):(\d{2})$")
# Wall times around an instant that can map to it: an offset change moves a wall time by hours
# (a day, once, in Samoa); the search starts this far back and keeps the first that fits.
_SEARCH_BACK: Final = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence for one recipient: ``key`` is its local time ("2026-12-09T10:00"), the
    same in every zone; ``at`` the instant it is there (UTC)."""

    key: str
    local: datetime
    at: datetime


def weekly_rule(days: str, at: str) -> str:
    """The rule of ``schedule add --on DAYS --at HH:MM``; InvalidValueError when either is bad."""
    names = [d.strip().lower() for d in days.split(",") if d.strip()]
    unknown = [d for d in names if d not in DAYS]
    if not names or unknown:
        shown = repr(unknown[0]) if unknown else "nothing"
        raise InvalidValueError(
            f"--on {shown} is not a day: use mon, tue, wed, thu, fri, sat or sun, "
            "comma-separated (like mon,wed)"
        )
    clock = _parse_clock(at)
    by_day = ",".join(dict.fromkeys(DAYS[d] for d in names))
    return f"FREQ=WEEKLY;BYDAY={by_day};BYHOUR={clock.hour};BYMINUTE={clock.minute}"


def _parse_clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    try:
        if match is None:
            raise ValueError
        return time(int(match[1]), int(match[2]))
    except ValueError:
        raise InvalidValueError(
            f"--at {text!r} is not a time of day: use HH:MM, 24-hour (like 10:00 or 15:30)"
        ) from None


class Recurrence:
    """A schedule's rule from ``starts_on``: its occurrences in any recipient's zone."""

    def __init__(self, rule: str, starts_on: date) -> None:
        """``rule`` as ``normalise`` returns it (a stored rule); InvalidValueError otherwise."""
        self.rule = rule
        self.starts_on = starts_on
        try:
            parsed = rrulestr(rule, dtstart=datetime.combine(starts_on, time()))
        except (ValueError, TypeError) as exc:
            raise InvalidValueError(f"--rrule {rule!r}: {exc}") from None
        if not isinstance(parsed, rrule):
            raise InvalidValueError(f"--rrule {rule!r}: give one rule, not a set of them")
        self._rrule = parsed

    @staticmethod
    def normalise(text: str) -> str:
        """The rule as stored: RRULE text without ``RRULE:`` or DTSTART (the schedule's
        ``starts_on`` anchors it, in each recipient's zone); InvalidValueError naming what
        is wrong."""
        rule = text.strip()
        if rule.upper().startswith("RRULE:"):
            rule = rule[len("RRULE:") :].strip()
        if not rule or "\n" in rule or "DTSTART" in rule.upper():
            raise InvalidValueError(
                f"--rrule {text!r}: give one RFC 5545 rule without DTSTART, "
                "like FREQ=WEEKLY;INTERVAL=2;BYDAY=WE;BYHOUR=10;BYMINUTE=0"
            )
        parts: dict[str, str] = {}
        for part in rule.split(";"):
            name, equals, value = part.partition("=")
            if not equals or not name.strip():
                raise InvalidValueError(f"--rrule {text!r}: {part!r} is not NAME=VALUE")
            parts[name.strip().upper()] = value.strip().upper()
        if parts.get("FREQ") not in _FREQUENCIES:
            raise InvalidValueError(
                f"--rrule {text!r}: FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"
            )
        if "BYHOUR" not in parts:
            raise InvalidValueError(
                f"--rrule {text!r}: say at what time, like BYHOUR=10;BYMINUTE=0 "
                "(local to each student)"
            )
        if parts.get("UNTIL", "").endswith("Z"):
            raise InvalidValueError(
                f"--rrule {text!r}: write UNTIL in local time, without Z (the rule runs in "
                "each student's own time zone)"
            )
        return ";".join(f"{name}={value}" for name, value in parts.items())

    def check(self) -> None:
        """InvalidValueError when the rule never falls due."""
        if self._rrule.after(datetime.combine(self.starts_on, time()), inc=True) is None:
            raise InvalidValueError(f"--rrule {self.rule!r} never falls due from {self.starts_on}")

    def first_from(self, instant: datetime, zone: ZoneInfo) -> Occurrence | None:
        """The first occurrence at ``instant`` or later in ``zone`` (None: the rule ended)."""
        local = instant.astimezone(zone).replace(tzinfo=None)
        for wall in self._rrule.xafter(local - _SEARCH_BACK, inc=True):
            occurrence = _occurrence(wall, zone)
            if occurrence.at >= instant:
                return occurrence
        return None

    def first_after(self, instant: datetime, zone: ZoneInfo) -> Occurrence | None:
        """The first occurrence strictly after ``instant`` in ``zone``."""
        found = self.first_from(instant, zone)
        while found is not None and found.at <= instant:
            found = self._next(found, zone)
        return found

    def _next(self, occurrence: Occurrence, zone: ZoneInfo) -> Occurrence | None:
        wall = self._rrule.after(occurrence.local)
        return None if wall is None else _occurrence(wall, zone)


def instant_of(key: str, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of an occurrence's local time ``key`` in ``zone``."""
    return _occurrence(datetime.fromisoformat(key), zone).at


def _occurrence(wall: datetime, zone: ZoneInfo) -> Occurrence:
    key = wall.isoformat(timespec="minutes" if wall.second == 0 else "seconds")
    # fold=0: a wall time the autumn repeats is its first; one the spring skips maps past it
    return Occurrence(key, wall, wall.replace(tzinfo=zone).astimezone(UTC))
