"""A student's profile and plan on one printed page, for student-led conferences.

What schools put on such a page (see the learner-profile and PLP practice the product serves):
the student's strengths and interests, how they learn best and the setting that suits them,
what they find hard and what helps, their goals and dreams, and the plan's goals with why,
action steps, target date and where the last check-in left them. The page is a Jinja2
template (``bot/templates/card.html.j2``, autoescaped: a student's ``<script>`` is printed,
never run) with a stylesheet sized for one A4 or Letter page; the PDF comes from WeasyPrint,
imported only when a PDF is asked for (it takes a while to load).

Private fields (family, culture, community) are on the card only when the student asks for
their own; who may see a card at all is ``bot.roles``'s ``Action.VIEW_CARD``.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from dialogues import describe_value
from storage import PersonRecord

from .cards import option_labels
from .errors import InputError
from .pages import page_template
from .roles import Action, Actor, require

if TYPE_CHECKING:
    from .app import App

__all__ = ["PAPERS", "Paper", "card_html", "card_pdf"]

Paper = Literal["A4", "Letter"]
PAPERS: Final[dict[str, Paper]] = {"a4": "A4", "letter": "Letter"}
"""The paper sizes, by the names people type."""

MAX_GOALS: Final = 4
MAX_STEPS: Final = 3
MAX_TEXT: Final = 240
"""Characters of one free-text answer on the page: the page holds one student, not an essay."""
COLUMN_CHARS: Final = 48
PAGE_CHARS: Final = 100
"""Characters on a line of a column and of the page, at the normal size (A4; Letter is wider)."""
NORMAL_LINES: Final = 43
"""The most lines (``_lines``) a card may have to be tried at the normal size first."""
TIGHT_ITEMS: Final = 5
TIGHT_GOALS: Final = 3

_ABOUT: Final = (
    ("strengths", "My strengths"),
    ("interests", "What I love"),
    ("learning_preferences", "How I learn best"),
    ("environment.noise_level", "Noise I like (1 silent – 5 lively)"),
    ("environment.social", "Working alone or with others"),
    ("environment.time_of_day", "My best time of day"),
    ("motivation", "What motivates me"),
    ("dislikes", "Not my thing"),
)
_GROWING: Final = (
    ("challenges", "What I find hard"),
    ("supports", "What helps me"),
    ("dreams", "My goals and dreams"),
    ("identity.family_culture", "Family, culture & community"),
)
_SHOWN_ELSEWHERE: Final = frozenset({"preferred_name"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One heading of the card with its items (``private``: shown only to the student)."""

    heading: str
    items: tuple[str, ...]
    private: bool = False


@dataclass(frozen=True, slots=True)
class GoalEntry:
    title: str
    details: tuple[str, ...]
    why: str | None
    steps: tuple[str, ...]
    support: str | None
    progress: int | None
    next_step: str | None


@dataclass(frozen=True, slots=True)
class Card:
    """What the template shows: names and lists of plain strings (it escapes them)."""

    name: str
    full_name: str
    date: str
    about: tuple[Entry, ...]
    growing: tuple[Entry, ...]
    goals: tuple[GoalEntry, ...]
    more_goals: int
    own: bool
    paper: Paper = "A4"
    density: str = "normal"


def card_html(app: App, student: PersonRecord, *, actor: Actor | None, paper: Paper = "A4") -> str:
    """The card as a standalone HTML page (``Action.VIEW_CARD``; private fields only when
    ``actor`` is the student)."""
    return _render(_card(app, student, actor=actor, paper=paper))


def card_pdf(app: App, student: PersonRecord, *, actor: Actor | None, paper: Paper = "A4") -> bytes:
    """The card as a one-page PDF (``Action.VIEW_CARD``, as ``card_html``).

    When the content does not fit, the page is set smaller, then smaller still; what still
    does not fit is cut at the page's end, so the card is always one page.
    """
    import weasyprint

    # Its warnings may quote the page's text (a glyph no font has): student text is never
    # logged above DEBUG.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    card = _card(app, student, actor=actor, paper=paper)
    variants = [card, replace(card, density="compact"), _tightened(card)]
    if _lines(card) > NORMAL_LINES:
        del variants[0]
    document = None
    for variant in variants:
        document = weasyprint.HTML(string=_render(variant)).render()
        if len(document.pages) == 1:
            break
    assert document is not None
    if len(document.pages) > 1:
        document = document.copy(document.pages[:1])
    pdf: bytes = document.write_pdf()
    return pdf


def _lines(card: Card) -> float:
    """About how many lines of text the card takes at the normal size. A layout costs as much
    as the rest of a card, so a card this says cannot fit starts at the compact size; the
    layout itself still decides what fits."""

    def wrapped(text: str, width: int) -> int:
        return -(-len(text) // width) if text else 0

    def column(entries: Sequence[Entry]) -> float:
        return sum(1.3 + wrapped("    ".join(e.items), COLUMN_CHARS) for e in entries)

    def goal(g: GoalEntry) -> float:
        extras = (g.why, g.support, g.next_step or ("" if g.progress is None else "-"))
        lines = 1.2 + wrapped(f"{g.title} {g.details}", PAGE_CHARS)
        lines += sum(wrapped(f"Support I'd like: {text}", PAGE_CHARS) for text in extras if text)
        return lines + (1 + len(g.steps) if g.steps else 0)

    return max(column(card.about), column(card.growing)) + sum(goal(g) for g in card.goals)


def _tightened(card: Card) -> Card:
    """The smallest type, and fewer items per heading and fewer goals (saying how many more)."""

    def fewer(entry: Entry) -> Entry:
        if len(entry.items) <= TIGHT_ITEMS:
            return entry
        more = len(entry.items) - TIGHT_ITEMS + 1
        return replace(entry, items=(*entry.items[: TIGHT_ITEMS - 1], f"and {more} more"))

    return replace(
        card,
        density="tight",
        about=tuple(fewer(e) for e in card.about),
        growing=tuple(fewer(e) for e in card.growing),
        goals=tuple(replace(g, steps=g.steps[:2]) for g in card.goals[:TIGHT_GOALS]),
        more_goals=card.more_goals + max(0, len(card.goals) - TIGHT_GOALS),
    )


# -- what goes on it -------------------------------------------------------------------------


def _card(app: App, student: PersonRecord, *, actor: Actor | None, paper: Paper) -> Card:
    if not student.has_role("student"):
        raise InputError(f"{student.handle} is not a student: cards are for students")
    require(actor, Action.VIEW_CARD, student)
    own = actor is not None and actor.person.id == student.id
    private = app.private_fields()
    profile = _flatten(app.profiles.current(student.id, include_private=own))
    if not own:
        profile = {k: v for k, v in profile.items() if k not in private}
    labels = {
        key: {value: _unadorned(label) for value, label in options.items()}
        for key, options in option_labels(app.registry.flows()).items()
    }
    entries = {
        key: Entry(heading, _items(profile[key], labels.get(key, {})), key in private)
        for key, heading in (*_ABOUT, *_GROWING)
        if key in profile
    }
    known = {key for key, _ in (*_ABOUT, *_GROWING)} | _SHOWN_ELSEWHERE
    others = tuple(
        Entry(_heading(key), _items(value, labels.get(key, {})), key in private)
        for key, value in sorted(profile.items())
        if key not in known
    )
    goals = _goals(app.plans.plan(student.id)["goals"], labels)
    return Card(
        name=_clip(str(profile.get("preferred_name") or student.first_name)),
        full_name=student.display_name,
        date=app.clock.now().date().isoformat(),
        about=tuple(entries[k] for k, _ in _ABOUT if k in entries),
        growing=tuple(entries[k] for k, _ in _GROWING if k in entries) + others,
        goals=tuple(goals[:MAX_GOALS]),
        more_goals=max(0, len(goals) - MAX_GOALS),
        own=own,
        paper=paper,
    )


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and not {"kind", "file_id"} <= set(value):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _unadorned(label: str) -> str:
    """An option's label without the emoji it opens with in chat (print fonts lack them)."""
    head, _, rest = label.partition(" ")
    if rest and head and all(unicodedata.category(c) in ("So", "Mn", "Cf") for c in head):
        return rest
    return label


def _heading(key: str) -> str:
    return key.split(".")[-1].replace("_", " ").capitalize()


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"


def _items(value: Any, labels: Mapping[str, str]) -> tuple[str, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    return tuple(
        _clip(labels[v] if isinstance(v, str) and v in labels else describe_value(v))
        for v in values
    )


def _goals(goals: Sequence[Mapping[str, Any]], labels: Mapping[str, Any]) -> list[GoalEntry]:
    """Active goals first (then the rest, newest first): the conference is about now."""
    ordered = [g for g in goals if g.get("status") == "active"]
    ordered += [g for g in reversed(goals) if g.get("status") != "active"]
    category_labels: Mapping[str, str] = labels.get("goal.category", {})
    entries = []
    for goal in ordered:
        details = []
        if goal.get("category"):
            details.append(_items(goal["category"], category_labels)[0])
        details.append(str(goal.get("status") or "active"))
        if goal.get("target_date"):
            details.append(f"by {goal['target_date']}")
        last = goal.get("last_checkin") or {}
        progress = last.get("progress")
        entries.append(
            GoalEntry(
                title=_clip(str(goal.get("title") or "(untitled goal)")),
                details=tuple(details),
                why=_optional(goal.get("why")),
                steps=tuple(_clip(str(s)) for s in (goal.get("action_steps") or [])[:MAX_STEPS]),
                support=_optional(goal.get("support")),
                progress=progress if isinstance(progress, int) else None,
                next_step=_optional(last.get("next_step")),
            )
        )
    return entries


def _optional(value: Any) -> str | None:
    return None if value in (None, "") else _clip(describe_value(value))


# -- the page --------------------------------------------------------------------------------


def _render(card: Card) -> str:
    return page_template("card.html.j2").render(card=card)
