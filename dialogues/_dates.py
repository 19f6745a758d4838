"""Dates as people type them: "2026-12-01", "1 Dec", "next friday", "in 2 weeks".

Everything is relative to the caller's ``today`` (the date in the person's time zone), so
parsing is pure and testable. Anything unclear gives ``None`` rather than a guess: the engine
then re-asks with an example, which is cheaper than a wrong date saved in a plan.
Also home of `normalize`, the text folding every matcher shares (kept here so `_answers`
can import it without a cycle).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from datetime import date, timedelta

__all__ = ["normalize", "parse_date"]


def normalize(text: str) -> str:
    """Casefold, strip accents and collapse whitespace, so "  Música " matches "musica"."""
    if text.isascii():  # nothing to strip: the common case, and much cheaper
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())


def _table(*rows: str) -> dict[str, int]:
    """{word: row index} from rows of space-separated (already normalized) synonyms."""
    return {word: index for index, row in enumerate(rows) for word in row.split()}


_MONTHS = _table(  # en, es, fr, de, pt, it; 0 = January
    "january jan enero janvier januar janeiro gennaio",
    "february feb febrero fevrier februar fevereiro febbraio",
    "march mar marzo mars marz marco",
    "april apr abril avril aprile",
    "may mayo mai maio maggio",
    "june jun junio juin juni junho giugno",
    "july jul julio juillet juli julho luglio",
    "august aug agosto aout",
    "september sep sept septiembre setiembre septembre setembro settembre",
    "october oct octubre octobre oktober outubro ottobre",
    "november nov noviembre novembre novembro",
    "december dec diciembre decembre dezember dezembro dicembre",
)
_WEEKDAYS = _table(  # 0 = Monday, as date.weekday()
    "monday mon lunes lundi montag segunda lunedi",
    "tuesday tue tues martes mardi dienstag terca martedi",
    "wednesday wed weds miercoles mercredi mittwoch quarta mercoledi",
    "thursday thu thur thurs jueves jeudi donnerstag quinta giovedi",
    "friday fri viernes vendredi freitag sexta venerdi",
    "saturday sat sabado samedi samstag sabato",
    "sunday sun domingo dimanche sonntag domenica",
)
_DAY_WORDS = _table(  # index - 1 = days from today
    "yesterday ayer hier gestern ontem ieri",
    "today tonight hoy aujourd'hui aujourdhui heute hoje oggi",
    "tomorrow tmrw manana demain morgen amanha domani",
)
_DAY_AFTER_TOMORROW = frozenset({"day after tomorrow", "pasado manana", "apres-demain"})
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_COUNTS = {word: n for n, word in enumerate(_NUMBER_WORDS)} | {"a": 1, "an": 1, "ten": 10}
_FILLERS = frozenset({"on", "by", "the", "of", "this", "coming", "until", "before", "de", "del"})

_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")  # 1.12.2026, day first (European)
_IN_N = re.compile(r"(?:in )?(\w+) (day|week|month|year)s?(?: from (?:now|today)| later)?")
_MAX_UNITS = 1000  # "in 99999 years" is not a plan


def parse_date(text: str, today: date) -> date | None:
    """The date ``text`` names, seen from ``today``; None when it is not clearly a date."""
    cleaned = _clean(text)
    if not cleaned or len(cleaned) > 60:
        return None
    try:
        for parser in _PARSERS:
            found = parser(cleaned, today)
            if found is not None:
                return found
    except (ValueError, OverflowError):  # an impossible day (31 Feb) or a year past 9999
        return None
    return None


def _clean(text: str) -> str:
    """Fold case/accents, drop ordinals and filler words: "on the 1st of Dec." -> "1 dec"."""
    folded = normalize(text).strip(" .,;:!?()[]\"'")
    folded = re.sub(r"(\d)(?:st|nd|rd|th|er|o|a)\b", r"\1", folded)  # 1st, 1er, 1º (NFKD: o)
    folded = re.sub(r"(\d)\.(?=\s|$)", r"\1", folded)  # German "1. Dezember"
    folded = re.sub(r"([^\W\d_])\.", r"\1", folded)  # "Dec. 1"
    folded = folded.replace(",", " ")
    return " ".join(word for word in folded.split() if word not in _FILLERS)


def _numeric(text: str, today: date) -> date | None:
    if m := _ISO.fullmatch(text):
        return date(int(m[1]), int(m[2]), int(m[3]))
    if m := _DOTTED.fullmatch(text):
        return date(int(m[3]), int(m[2]), int(m[1]))
    return None


def _relative(text: str, today: date) -> date | None:
    if text in _DAY_WORDS:
        return today + timedelta(days=_DAY_WORDS[text] - 1)
    if text in _DAY_AFTER_TOMORROW:
        return today + timedelta(days=2)
    if text == "next week":  # the coming Monday
        return today + timedelta(days=7 - today.weekday())
    if text == "next month":
        return _add_months(today.replace(day=1), 1)
    if text == "next year":
        return date(today.year + 1, 1, 1)
    if text in ("end of month", "end month", "month end"):
        return today.replace(day=calendar.monthrange(today.year, today.month)[1])
    if text in ("end of year", "end year", "year end"):
        return date(today.year, 12, 31)
    m = _IN_N.fullmatch(text)
    if m is None:
        return None
    count = int(m[1]) if m[1].isascii() and m[1].isdigit() else _COUNTS.get(m[1])
    if count is None or count > _MAX_UNITS:
        return None
    if m[2] == "day":
        return today + timedelta(days=count)
    if m[2] == "week":
        return today + timedelta(weeks=count)
    return _add_months(today, count * (12 if m[2] == "year" else 1))


def _weekday(text: str, today: date) -> date | None:
    """A weekday, with or without "next": the coming one, never today (on Friday: in a week)."""
    words = text.split()
    if words and words[0] == "next":
        words = words[1:]
    if len(words) != 1 or words[0] not in _WEEKDAYS:
        return None
    ahead = (_WEEKDAYS[words[0]] - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)


def _day_month(text: str, today: date) -> date | None:
    """Day and month names as "1 dec", "dec 1 2026", "fri 4 dec"; no year: the next such day."""
    words = text.split()
    if len(words) > 2 and words[0] in _WEEKDAYS:
        words = words[1:]
    if len(words) == 3:
        if not (words[2].isascii() and words[2].isdigit() and len(words[2]) == 4):
            return None
        year: int | None = int(words[2])
        words = words[:2]
    else:
        year = None
    if len(words) != 2:
        return None
    day_word, month_word = words if words[0].isdigit() else words[::-1]
    if not (day_word.isascii() and day_word.isdigit() and len(day_word) <= 2):
        return None
    if month_word not in _MONTHS:
        return None
    month, day = _MONTHS[month_word] + 1, int(day_word)
    if year is not None:
        return date(year, month, day)
    for candidate_year in (today.year, today.year + 1):
        try:
            candidate = date(candidate_year, month, day)
        except ValueError:  # 29 Feb in a common year: try the next
            continue
        if candidate >= today:
            return candidate
    return None


def _add_months(start: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


_PARSERS: tuple[Callable[[str, date], date | None], ...] = (
    _numeric,
    _relative,
    _weekday,
    _day_month,
)
