"""parse_date against a fixed today: Monday 23 November 2026."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogues._dates import normalize, parse_date

MONDAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", date(2026, 12, 1)),
        ("2026/12/1", date(2026, 12, 1)),
        ("1.12.2026", date(2026, 12, 1)),
        ("1 Dec", date(2026, 12, 1)),
        ("Dec 1", date(2026, 12, 1)),
        ("dec. 1", date(2026, 12, 1)),
        ("1 December 2026", date(2026, 12, 1)),
        ("December 1, 2026", date(2026, 12, 1)),
        ("December 1st", date(2026, 12, 1)),
        ("on the 1st of December", date(2026, 12, 1)),
        ("Fri 4 Dec", date(2026, 12, 4)),
        ("1 de diciembre", date(2026, 12, 1)),
        ("1er décembre", date(2026, 12, 1)),
        ("1. Dezember", date(2026, 12, 1)),
        ("3 März 2027", date(2027, 3, 3)),
        ("today", MONDAY),
        ("Today!", MONDAY),
        ("tomorrow", date(2026, 11, 24)),
        ("the day after tomorrow", date(2026, 11, 25)),
        ("mañana", date(2026, 11, 24)),
        ("demain", date(2026, 11, 24)),
        ("yesterday", date(2026, 11, 22)),
        ("friday", date(2026, 11, 27)),
        ("this Friday", date(2026, 11, 27)),
        ("next friday", date(2026, 11, 27)),
        ("fri", date(2026, 11, 27)),
        ("viernes", date(2026, 11, 27)),
        ("monday", date(2026, 11, 30)),  # the coming one, never today
        ("next monday", date(2026, 11, 30)),
        ("sunday", date(2026, 11, 29)),
        ("in 3 days", date(2026, 11, 26)),
        ("in 2 weeks", date(2026, 12, 7)),
        ("in two weeks", date(2026, 12, 7)),
        ("in a week", date(2026, 11, 30)),
        ("2 weeks from now", date(2026, 12, 7)),
        ("in 1 month", date(2026, 12, 23)),
        ("in 3 months", date(2027, 2, 23)),
        ("in a year", date(2027, 11, 23)),
        ("next week", date(2026, 11, 30)),
        ("next month", date(2026, 12, 1)),
        ("end of month", date(2026, 11, 30)),
        ("end of the month", date(2026, 11, 30)),
        ("end of year", date(2026, 12, 31)),
    ],
)
def test_parses(text: str, expected: date) -> None:
    assert parse_date(text, MONDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("23 Nov", date(2026, 11, 23)),  # today is not past
        ("22 Nov", date(2027, 11, 22)),  # yesterday's day-month means next year
        ("1 Jan", date(2027, 1, 1)),
        ("Jan 15", date(2027, 1, 15)),
        ("1 Jan 2026", date(2026, 1, 1)),  # an explicit year is kept, even in the past
    ],
)
def test_day_month_without_year_rolls_over(text: str, expected: date) -> None:
    assert parse_date(text, MONDAY) == expected


def test_next_week_from_sunday_is_the_next_day() -> None:
    assert parse_date("next week", date(2026, 11, 29)) == date(2026, 11, 30)


def test_weekday_on_that_weekday_is_a_week_ahead() -> None:
    assert parse_date("friday", date(2026, 11, 27)) == date(2026, 12, 4)


def test_months_clamp_to_month_end() -> None:
    assert parse_date("in 1 month", date(2027, 1, 31)) == date(2027, 2, 28)
    assert parse_date("end of month", date(2028, 2, 3)) == date(2028, 2, 29)


def test_leap_day_without_year_finds_the_next_leap_year_or_none() -> None:
    assert parse_date("29 Feb", date(2027, 6, 1)) == date(2028, 2, 29)
    assert parse_date("29 Feb", MONDAY) is None  # neither 2026 nor 2027 has one


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "soon",
        "31 Feb 2026",
        "2026-13-01",
        "0000-01-01",
        "12/01/2026",  # day or month first? refuse rather than guess
        "32 Dec",
        "Dec",
        "in many weeks",
        "in 99999 years",
        "in 5000 days",
        "next",
        "1 2",
        "1 Dec 26",
        "x" * 10_000,
        "😀",
        "4²",
    ],
)
def test_refuses_unclear_text(text: str) -> None:
    assert parse_date(text, MONDAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("  Música  ", "musica"), ("ÉCOLE", "ecole"), ("a \n\t b", "a b"), ("Straße", "strasse")],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@given(st.text(max_size=80), st.dates())
def test_never_raises(text: str, today: date) -> None:
    result = parse_date(text, today)
    assert result is None or isinstance(result, date)
