"""An advisor's weekly summary: who needs a person this week and why, then everyone else.

Computed from stored check-ins, goals and profile history only (no language model), so the
same data always gives the same summary. ``build_summary`` returns a frozen, neutral
``Summary``; ``bot.summary_render`` turns it into JSON, text, Markdown, HTML or a chat
``Notice``, and ``bot.charts`` into a PNG.

The week is an ISO week (``YYYY-Www``) in the advisor's time zone (else
``DEFAULT_TIMEZONE``); the term is the ``TERM_WEEKS`` weeks that end with it. A student is
urgent for each of these reasons (``Reason``):

- ``wants_meeting``: a check-in of the week asks to meet;
- ``note``: a check-in of the week has a note for the advisor;
- ``no_checkin``: no check-in this week (``missed_weeks`` counts the weeks in a row since
  the student joined);
- ``low_mood``: the week's latest mood is ``LOW_MOOD`` (2) or below, or at least
  ``MOOD_DROP`` (2) points below the student's own average mood of the term's earlier weeks;
- ``goal_stalled``: an active goal whose last two updates (this week or earlier in the term)
  both report the lowest progress (1, "not yet"), or whose last three updates each report less
  progress than the one before (falling);
- ``new_challenge``: the week changed the ``challenges`` profile field to hold a value it did
  not hold before the week.

A student counts from the week they joined (the week their record was added, or of their
first check-in of the term if earlier, as imported history has): one who joined after the
summary's week is not in it, and each week's check-in rate is out of those who had joined.

Urgent students come first: the most reasons first, then the most pressing reason (in the
order above), then by name; everyone else by name (case and accents aside, then handle).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from statistics import fmean
from typing import TYPE_CHECKING, Any, Final, TypeVar
from zoneinfo import ZoneInfo

from dialogues import describe_value
from storage import (
    Advising,
    CheckinReport,
    GoalReport,
    GoalUpdateReport,
    PersonRecord,
    ProfileChange,
    Reports,
)

from .cards import option_labels
from .errors import InputError
from .roles import Action, Actor, require

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "LOW_MOOD",
    "MOOD_DROP",
    "TERM_WEEKS",
    "TREND_WEEKS",
    "GoalSummary",
    "NotAnAdvisorError",
    "ProfileChangeSummary",
    "Reason",
    "StudentSummary",
    "Summary",
    "Week",
    "WeekRate",
    "build_summary",
    "summary_json",
]

TERM_WEEKS: Final = 20
"""How many weeks, ending with the summary's, the averages, trends and chart look back."""
TREND_WEEKS: Final = 6
"""How many recent weeks a goal's trend shows."""
LOW_MOOD: Final = 2
MOOD_DROP: Final = 2
LOWEST_PROGRESS: Final = 1
"""The check-in's progress scale starts here ("not yet"): no progress that week."""
STALLED_AFTER: Final = 2
FALLING_OVER: Final = 3
CHALLENGES_FIELD: Final = "challenges"

FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2999
"""The years a week may be in (a term reaches 20 weeks back; a date stops at year 9999)."""

_WEEK_RE: Final = re.compile(r"^\s*([0-9]{4})-?W([0-9]{2})\s*$", re.IGNORECASE | re.ASCII)


class NotAnAdvisorError(InputError):
    """The person named advises nobody (and is not an advisor)."""


class Reason(StrEnum):
    """Why a student needs their advisor this week, most pressing first."""

    WANTS_MEETING = "wants_meeting"
    NOTE = "note"
    NO_CHECKIN = "no_checkin"
    LOW_MOOD = "low_mood"
    GOAL_STALLED = "goal_stalled"
    NEW_CHALLENGE = "new_challenge"


_R = TypeVar("_R", CheckinReport, GoalReport, GoalUpdateReport, ProfileChange)

_RANK: Final = {reason: rank for rank, reason in enumerate(Reason)}


@dataclass(frozen=True, slots=True, order=True)
class Week:
    """An ISO week: ``Week.parse("2026-W49")``, ``str(week)`` the same text back."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        """The week (ASCII digits, ``FIRST_YEAR`` to ``LAST_YEAR``), or ``InputError`` in one
        line."""
        match = _WEEK_RE.match(text)
        if match:
            year, number = int(match[1]), int(match[2])
            try:
                date.fromisocalendar(year, number, 1)
            except ValueError:
                pass
            else:
                if not FIRST_YEAR <= year <= LAST_YEAR:
                    raise InputError(
                        f"week {text!r} is out of range: use a week of {FIRST_YEAR} to {LAST_YEAR}"
                    )
                return cls(year, number)
        raise InputError(f"week {text!r} is not an ISO week: use YYYY-Www, like 2026-W49")

    @classmethod
    def of(cls, day: date) -> Week:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    def shifted(self, weeks: int) -> Week:
        return Week.of(self.monday + timedelta(weeks=weeks))

    def start(self, zone: ZoneInfo) -> datetime:
        """Its Monday 00:00 in ``zone``, as UTC."""
        return datetime.combine(self.monday, time(), zone).astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"


@dataclass(frozen=True, slots=True)
class GoalSummary:
    """One goal: its latest progress and next step, and its progress week by week."""

    title: str
    status: str
    progress: Any
    """The latest progress reported up to the week (None: never)."""
    next_step: str | None
    weekly: tuple[Any, ...]
    """Progress reported in each week of ``Summary.weeks`` (the week's last; None: none)."""
    stalled: bool = False

    @property
    def trend(self) -> tuple[Any, ...]:
        """The recent weeks' progress (``TREND_WEEKS``; None where none was reported)."""
        return self.weekly[-TREND_WEEKS:]


@dataclass(frozen=True, slots=True)
class ProfileChangeSummary:
    """A public profile field the week changed: its value, and that value as people read it."""

    field: str
    value: Any
    shown: str


@dataclass(frozen=True, slots=True)
class StudentSummary:
    person: PersonRecord
    urgent: tuple[Reason, ...]
    checked_in: bool
    mood: Any
    energy: Any
    note_for_advisor: str | None
    wants_meeting: bool
    goals: tuple[GoalSummary, ...]
    profile_changes: tuple[ProfileChangeSummary, ...]
    missed_weeks: int = 0
    """Weeks in a row, this one included, without a check-in (0: checked in)."""
    mood_average: float | None = None
    """The average mood of the term's earlier weeks (None: no earlier mood)."""
    new_challenges: tuple[str, ...] = ()
    """The challenges the week added, as people read them."""

    @property
    def stalled_goals(self) -> tuple[GoalSummary, ...]:
        return tuple(g for g in self.goals if g.stalled)


@dataclass(frozen=True, slots=True)
class WeekRate:
    """How many of the advisees checked in during one week."""

    week: str
    checked_in: int
    students: int

    @property
    def rate(self) -> float:
        return self.checked_in / self.students if self.students else 0.0


@dataclass(frozen=True, slots=True)
class Summary:
    """One advisor's week: students (urgent first), and the group's check-in rate per week."""

    advisor: PersonRecord
    week: str
    timezone: str
    starts_on: date
    weeks: tuple[str, ...]
    """The term's weeks, oldest first, ending with ``week`` (goal ``weekly`` lines up)."""
    students: tuple[StudentSummary, ...]
    checkin_rate: tuple[WeekRate, ...]
    """Per week of the term, from the first week anyone checked in (``week`` always)."""

    @property
    def urgent(self) -> tuple[StudentSummary, ...]:
        return tuple(s for s in self.students if s.urgent)

    @property
    def others(self) -> tuple[StudentSummary, ...]:
        return tuple(s for s in self.students if not s.urgent)

    def to_json(self) -> dict[str, Any]:
        """``summary --format json``: product.md's shape (``summary_json``)."""
        return summary_json(self)


# ----------------------------------------------------------------------------- building


def build_summary(
    app: App,
    advisor: str | PersonRecord,
    week: str | Week | None = None,
    *,
    actor: Actor | None = None,
    at: datetime | None = None,
) -> Summary:
    """``advisor``'s summary of ``week`` (default: the week ``at`` falls in, in their time
    zone; ``at`` defaults to now, and a later week than its is refused).

    ``actor`` (None: the command line's administrator) must be that advisor or an admin
    (``Action.VIEW_SUMMARY``); someone who advises nobody raises ``NotAnAdvisorError``.
    """
    person = app.people.get(advisor) if isinstance(advisor, str) else advisor
    require(actor, Action.VIEW_SUMMARY, person)
    zone = _zone(person, app.settings.default_timezone)
    wanted = _week(week, app.clock.now() if at is None else at, zone)
    term = _Term(wanted, zone)
    advising = Reports(app.db).advising(
        person,
        since=term.start,
        until=term.end,
        changes_since=term.week_start,
        hidden_fields=app.private_fields(),
    )
    if not advising.students and not person.has_role("advisor"):
        raise NotAnAdvisorError(f"{person.handle} is not an advisor: nobody has them as advisor")
    return _summarise(advising, term, zone, _labels(app))


def _labels(app: App) -> dict[str, dict[str, str]]:
    return option_labels(app.registry.flows())


def _zone(person: PersonRecord, default: str) -> ZoneInfo:
    return ZoneInfo(person.timezone or default)


def _week(week: str | Week | None, now: datetime, zone: ZoneInfo) -> Week:
    """The week asked for (default: ``now``'s); one that has not begun in ``zone`` is
    refused: nobody could have checked in yet."""
    current = Week.of(now.astimezone(zone).date())
    if week is None:
        return current
    wanted = week if isinstance(week, Week) else Week.parse(week)
    if wanted > current:
        raise InputError(f"week {wanted} has not started yet: the current week is {current}")
    return wanted


class _Term:
    """The term's weeks in one time zone, and their UTC bounds."""

    def __init__(self, week: Week, zone: ZoneInfo) -> None:
        self.week = week
        self.weeks = tuple(week.shifted(k - TERM_WEEKS + 1) for k in range(TERM_WEEKS))
        self._starts = [w.start(zone) for w in self.weeks]
        self.start = self._starts[0]
        self.week_start = self._starts[-1]
        self.end = week.shifted(1).start(zone)
        self.zone = zone

    def week_of(self, at: datetime) -> Week:
        """The local week of an instant (by the weeks' UTC starts: a summary asks this of
        every check-in and goal update of the term)."""
        if not self.start <= at < self.end:
            return Week.of(at.astimezone(self.zone).date())
        return self.weeks[bisect_right(self._starts, at) - 1]


def _summarise(
    advising: Advising, term: _Term, zone: ZoneInfo, labels: Mapping[str, Mapping[str, str]]
) -> Summary:
    checkins = _by_person(advising.checkins)
    updates = _by_person(advising.goal_updates)
    goals = _by_person(advising.goals)
    changes = _by_person(advising.profile_changes)
    joined = _joined(advising, term, checkins)
    students = [
        _student(
            student,
            term,
            joined[student.id],
            checkins.get(student.id, []),
            goals.get(student.id, []),
            updates.get(student.id, []),
            changes.get(student.id, []),
            labels,
        )
        for student in advising.students
        if student.id in joined
    ]
    students.sort(key=_order)
    return Summary(
        advisor=advising.advisor,
        week=str(term.week),
        timezone=zone.key,
        starts_on=term.week.monday,
        weeks=tuple(str(w) for w in term.weeks),
        students=tuple(students),
        checkin_rate=_rates(term, checkins, joined),
    )


def _joined(
    advising: Advising, term: _Term, checkins: Mapping[int, Sequence[CheckinReport]]
) -> dict[int, Week]:
    """The local week each student joined, for those who joined by the summary's week: their
    record's creation, or their first check-in of the term if earlier (imported history)."""
    out = {}
    for student in advising.students:
        times = [advising.joined[student.id]] if student.id in advising.joined else []
        times += [c.created_at for c in checkins.get(student.id, [])[:1]]
        since = min(times, default=term.start)
        if since < term.end:
            out[student.id] = term.week_of(since)
    return out


def _by_person(records: Iterable[_R]) -> dict[int, list[_R]]:
    out: dict[int, list[_R]] = defaultdict(list)
    for record in records:
        out[record.person_id].append(record)
    return out


def _order(student: StudentSummary) -> tuple[Any, ...]:
    name = (_name_key(student.person.display_name), student.person.handle)
    if not student.urgent:
        return (1, 0, 0, *name)
    pressing = min(_RANK[r] for r in student.urgent)
    return (0, -len(student.urgent), pressing, *name)


def _name_key(name: str) -> str:
    """A name as people sort it: case and accents aside ("émile" between "Eli" and "Emma")."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _rates(
    term: _Term, checkins: Mapping[int, Sequence[CheckinReport]], joined: Mapping[int, Week]
) -> tuple[WeekRate, ...]:
    """Each week's check-ins out of the students who had joined by then."""
    weeks_in: dict[Week, set[int]] = defaultdict(set)
    for pid, theirs in checkins.items():
        if pid in joined:
            for c in theirs:
                weeks_in[term.week_of(c.created_at)].add(pid)
    first = next((k for k, w in enumerate(term.weeks) if weeks_in.get(w)), len(term.weeks) - 1)
    return tuple(
        WeekRate(str(w), len(weeks_in.get(w, ())), sum(1 for j in joined.values() if j <= w))
        for w in term.weeks[first:]
    )


def _student(
    student: PersonRecord,
    term: _Term,
    joined: Week,
    checkins: Sequence[CheckinReport],
    goals: Sequence[GoalReport],
    updates: Sequence[GoalUpdateReport],
    changes: Sequence[ProfileChange],
    labels: Mapping[str, Mapping[str, str]],
) -> StudentSummary:
    this_week = [c for c in checkins if term.week_of(c.created_at) == term.week]
    earlier = [c for c in checkins if term.week_of(c.created_at) != term.week]
    latest = this_week[-1] if this_week else None
    notes = [c.note_for_advisor for c in this_week if c.note_for_advisor]
    wants_meeting = any(c.wants_meeting for c in this_week)
    missed = 0 if this_week else _missed_weeks(term, joined, checkins)
    mood = latest.mood if latest else None
    energy = latest.energy if latest else None
    average = _average([c.mood for c in earlier])
    goal_summaries = tuple(_goal(g, term, [u for u in updates if u.goal_id == g.id]) for g in goals)
    shown_changes, new_challenges = _changes(changes, labels)
    reasons = [
        (Reason.WANTS_MEETING, wants_meeting),
        (Reason.NOTE, bool(notes)),
        (Reason.NO_CHECKIN, not this_week),
        (Reason.LOW_MOOD, _low_mood(mood, average)),
        (Reason.GOAL_STALLED, any(g.stalled for g in goal_summaries)),
        (Reason.NEW_CHALLENGE, bool(new_challenges)),
    ]
    return StudentSummary(
        person=student,
        urgent=tuple(reason for reason, applies in reasons if applies),
        checked_in=bool(this_week),
        mood=mood,
        energy=energy,
        note_for_advisor=notes[-1] if notes else None,
        wants_meeting=wants_meeting,
        goals=goal_summaries,
        profile_changes=shown_changes,
        missed_weeks=missed,
        mood_average=average,
        new_challenges=new_challenges,
    )


def _missed_weeks(term: _Term, joined: Week, checkins: Sequence[CheckinReport]) -> int:
    """Weeks in a row without a check-in, ending with the summary's (at most the term's, and
    none before the student joined)."""
    weeks = {term.week_of(c.created_at) for c in checkins}
    missed = 0
    for week in reversed(term.weeks):
        if week in weeks or week < joined:
            break
        missed += 1
    return missed


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _average(values: Iterable[Any]) -> float | None:
    numbers = [n for n in (_number(v) for v in values) if n is not None]
    return fmean(numbers) if numbers else None


def _low_mood(mood: Any, average: float | None) -> bool:
    value = _number(mood)
    if value is None:
        return False
    return value <= LOW_MOOD or (average is not None and average - value >= MOOD_DROP)


def _goal(goal: GoalReport, term: _Term, updates: Sequence[GoalUpdateReport]) -> GoalSummary:
    by_week: dict[Week, Any] = {}
    for update in updates:
        if update.progress is not None:
            by_week[term.week_of(update.created_at)] = update.progress
    progress = [u.progress for u in updates if u.progress is not None]
    steps = [u.next_step for u in updates if u.next_step]
    return GoalSummary(
        title=goal.title,
        status=goal.status,
        progress=progress[-1] if progress else None,
        next_step=steps[-1] if steps else None,
        weekly=tuple(by_week.get(w) for w in term.weeks),
        stalled=goal.status == "active" and _stalled(progress),
    )


def _stalled(progress: Sequence[Any]) -> bool:
    """The last ``STALLED_AFTER`` updates at the lowest progress, or the last
    ``FALLING_OVER`` each lower than the one before."""
    numbers = [n for n in (_number(p) for p in progress) if n is not None]
    recent = numbers[-STALLED_AFTER:]
    if len(recent) == STALLED_AFTER and all(n <= LOWEST_PROGRESS for n in recent):
        return True
    tail = numbers[-FALLING_OVER:]
    return len(tail) == FALLING_OVER and all(a > b for a, b in pairwise(tail))


def _changes(
    changes: Sequence[ProfileChange], labels: Mapping[str, Mapping[str, str]]
) -> tuple[tuple[ProfileChangeSummary, ...], tuple[str, ...]]:
    """Each field the week changed (its latest value, if not what it was before the week),
    and the challenges it added."""
    latest: dict[str, ProfileChange] = {}
    for change in changes:
        latest.pop(change.field, None)
        latest[change.field] = change
    shown = []
    added: list[str] = []
    for field, change in latest.items():
        if change.value == change.previous:
            continue
        field_labels = labels.get(field, {})
        shown.append(ProfileChangeSummary(field, change.value, _show(change.value, field_labels)))
        if field == CHALLENGES_FIELD:
            before = set(map(repr, _items(change.previous)))
            added += [_show(v, field_labels) for v in _items(change.value) if repr(v) not in before]
    return tuple(shown), tuple(added)


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _show(value: Any, labels: Mapping[str, str]) -> str:
    """A value as people read it: option labels, lists joined."""
    if isinstance(value, list | tuple):
        return ", ".join(_show(v, labels) for v in value)
    if isinstance(value, str) and value in labels:
        return labels[value]
    return describe_value(value)


# ----------------------------------------------------------------------------- JSON


def summary_json(summary: Summary) -> dict[str, Any]:
    """``profilebot summary --format json``: product.md's shape, urgent students first."""
    return {
        "advisor": _person_json(summary.advisor),
        "week": summary.week,
        "students": [_student_json(s) for s in summary.students],
    }


def _person_json(person: PersonRecord) -> dict[str, Any]:
    return {"handle": person.handle, "display_name": person.display_name}


def _student_json(student: StudentSummary) -> dict[str, Any]:
    return {
        "person": _person_json(student.person),
        "urgent": [r.value for r in student.urgent],
        "checked_in": student.checked_in,
        "mood": student.mood,
        "energy": student.energy,
        "note_for_advisor": student.note_for_advisor,
        "wants_meeting": student.wants_meeting,
        "goals": [
            {
                "title": g.title,
                "status": g.status,
                "progress": g.progress,
                "trend": list(g.trend),
                "next_step": g.next_step,
            }
            for g in student.goals
        ],
        "profile_changes": [{"field": c.field, "value": c.value} for c in student.profile_changes],
    }
