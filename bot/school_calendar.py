"""A school's published calendar (iCalendar, ``.ics``): its all-day events are breaks.

Each all-day event becomes a ``SchoolBreak`` from its first to its last day (iCalendar's end
date is exclusive), keyed by its UID so that importing the same calendar again changes
nothing and an edited event is updated. Timed events (a parents' evening) are not days off,
and recurring events are left out rather than half-read; both are counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar

from storage import SchoolBreak

from .errors import CalendarError

__all__ = ["CalendarBreaks", "read_breaks"]

_UNNAMED = "Break"
_MAX_DETAIL = 120


@dataclass(slots=True)
class CalendarBreaks:
    """The breaks a calendar holds, and how many of its events were not breaks."""

    breaks: list[SchoolBreak] = field(default_factory=list)
    timed: int = 0
    recurring: int = 0


def read_breaks(path: Path) -> CalendarBreaks:
    """The breaks in an ``.ics`` file; ``CalendarError`` (one line) when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalendarError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        detail = " ".join(str(exc).split())[:_MAX_DETAIL]
        raise CalendarError(f"{path} is not an iCalendar file ({detail})") from None
    if calendar.name != "VCALENDAR":
        raise CalendarError(f"{path} is not an iCalendar file (it holds no VCALENDAR)")
    found = CalendarBreaks()
    for event in calendar.walk("VEVENT"):
        if event.get("RRULE") is not None:
            found.recurring += 1
            continue
        start, end = _span(path, event)
        if isinstance(start, datetime):
            found.timed += 1
            continue
        last = end - timedelta(days=1) if end > start else start
        name = str(event.get("SUMMARY") or "").strip() or _UNNAMED
        found.breaks.append(SchoolBreak(name, start, last, _uid(event, name, start, last)))
    return found


def _span(path: Path, event: Any) -> tuple[date, date]:
    try:
        start, end = event.start, event.end
    except (ValueError, icalendar.InvalidCalendar, icalendar.IncompleteComponent) as exc:
        what = str(event.get("SUMMARY") or event.get("UID") or "an event")
        detail = " ".join(str(exc).split())[:_MAX_DETAIL]
        raise CalendarError(f"{path}: {what!r} has no valid dates ({detail})") from None
    if not isinstance(start, date) or not isinstance(end, date):
        raise CalendarError(f"{path}: an event has no valid dates")
    return start, end


def _uid(event: Any, name: str, start: date, last: date) -> str:
    """The event's UID; one made of its content when it has none (still idempotent)."""
    uid = str(event.get("UID") or "").strip()
    if uid:
        return uid
    digest = hashlib.sha256(f"{name}\0{start}\0{last}".encode()).hexdigest()[:16]
    return f"profilebot-{digest}"
