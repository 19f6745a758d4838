"""Reads one inbound message as the answer to the current step, or says why it is not one.

Pure functions of (step, message, today): the engine owns all state (even a list step's
items so far arrive as ``collected``). Nothing here raises on what people send; anything
unreadable becomes a `Rejected` whose hint tells the student what would work.
Hints are English; a step's own ``hint:`` (rendered by the engine) should take precedence.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeAlias

from ._dates import normalize, parse_date
from ._messages import Attachment, Command, Inbound, InboundKind, Option
from ._schema import Step, StepType, describe_value

__all__ = [
    "Accepted",
    "AnswerResult",
    "ListProgress",
    "Rejected",
    "display_answer",
    "normalize",
    "parse_answer",
    "parse_command",
]


@dataclass(frozen=True, slots=True)
class Accepted:
    value: Any  # str | int | float | bool | list[str] | dict (see parse_answer)
    display: str  # short human text of the answer: "Music, Art", "4 (lively)", "yes"


@dataclass(frozen=True, slots=True)
class Rejected:
    hint: str  # short, specific re-ask hint


@dataclass(frozen=True, slots=True)
class ListProgress:
    """A list step's items so far; the answer is not complete yet (the engine stores them)."""

    items: tuple[str, ...]


AnswerResult: TypeAlias = Accepted | Rejected | ListProgress

_TEXT_CAP = 2000  # text answers when the step sets no max_length
_ITEM_CAP = 500  # list items and free-text "other" picks
_URL_CAP = 2048
_DISPLAY_CAP = 120
_PUNCT = " .,;:!?¡¿()[]{}\"'`*_~"  # trimmed around a typed word: "Yes!", "(2)", "*art*"
_EMOJI_NOISE = re.compile("[\ufe0f\U0001f3fb-\U0001f3ff]")  # variation selector, skin tones
_WORDS = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")  # "1,000" is a thousand, "7,5" is 7.5
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_PIECES = re.compile(r"[,;\n\r]+")  # multi_choice: "1, 3" / one per line
_AND = re.compile(r"(?:^|\s+)(?:and|&|\+|y|e|et|und|plus)(?:\s+|$)", re.IGNORECASE)
_SLASH = re.compile(r"\s*/(\w+)")  # "/nonsense": a mistyped command, not an answer
_BULLET = re.compile(r"^(?:[-*•·–]|\d{1,3}[.)])\s+")  # pasted lists: "- item", "1. item"

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not strftime: locale-free
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TYPE_IT = "Please type your answer."
_FILE_HINT = "Please send a photo, a document or a link."
_DATE_HINT = "Please give a date like 2026-12-01, 1 Dec, or next friday."
_YES_NO_HINT = "Please answer yes or no."


def _words(*groups: tuple[Command, str]) -> dict[str, Command]:
    """{normalized phrase: command} from "phrase|phrase" rows written with their accents."""
    return {normalize(p): command for command, row in groups for p in row.split("|")}


_COMMAND_WORDS = _words(
    (Command.BACK, "back|go back|atrás|volver|retour|zurück|indietro|voltar"),
    (Command.SKIP, "skip|saltar|passer|überspringen|salta|pular"),
    (Command.PAUSE, "pause|later|not now|luego|más tarde|plus tard|später|dopo|mais tarde"),
    (Command.RESTART, "restart|start over|reiniciar|recommencer|neu starten|ricomincia"),
    (Command.HELP, "help|ayuda|aide|hilfe|aiuto|ajuda"),
    (Command.STOP, "stop|unsubscribe|parar|arrête|arrêter|stopp"),
    (Command.DONE, "done|finished|that's all|listo|terminado|fini|fertig|pronto|finito"),
)
_COMMAND_NAMES = frozenset(command.value for command in Command)
_YES = frozenset(
    normalize(word)
    for row in (
        "yes y yeah yea yep yup ya sure ok okay true definitely absolutely",
        "sí si claro oui ouais ja jawohl genau sim certo 👍 ✅ ✔",
    )
    for word in row.split()
) | {"of course", "yes please", "i do"}
_NO = frozenset(
    normalize(word)
    for row in ("no n nope nah false non nein nee não nao 👎 ❌ ✖",)
    for word in row.split()
) | {"not really", "no thanks", "no thank you", "not at all", "i don't", "i dont"}
_YES_LEAD = frozenset({"yes", "yeah", "yep", "yup", "sure", "si", "oui", "ja", "sim", "👍"})
_NO_LEAD = frozenset({"no", "nope", "nah", "non", "nein", "nao", "👎"})


# ---------------------------------------------------------------------------- commands


def parse_command(inbound: Inbound, language: str = "en") -> Command | None:
    """The global command a message asks for, or None when it should be read as an answer.

    Words are understood in every supported language whatever ``language`` is: a student
    writing "fertig" in an English flow means it. Unknown "/foo" is None (read as text).
    """
    if inbound.kind == InboundKind.COMMAND:
        return _command_named(_str(inbound.command))
    if inbound.kind != InboundKind.TEXT:
        return None
    text = _str(inbound.text).strip()
    if text.startswith("/"):
        m = re.match(r"/(\w+)(?:@\w+)?(?:\s|$)", text)
        return _command_named(m[1]) if m else None
    return _COMMAND_WORDS.get(_key(text))


def _command_named(name: str) -> Command | None:
    key = normalize(name).lstrip("/").split("@")[0]
    if key in _COMMAND_NAMES:
        return Command(key)
    return _COMMAND_WORDS.get(key)


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class _Input:
    """One message as the per-type readers need it."""

    step: Step
    kind: InboundKind
    text: str  # typed text, stripped, without NUL bytes ("" for buttons)
    button: str | None  # a button's value
    values: tuple[str, ...] | None  # a multi-select's final selection
    done: bool  # the message means "done" (list and multi_choice steps only)
    options: tuple[Option, ...]
    today: date
    collected: tuple[str, ...]


def parse_answer(
    step: Step,
    inbound: Inbound,
    *,
    options: Sequence[Option],
    today: date,
    language: str = "en",
    collected: Sequence[str] = (),
) -> AnswerResult:
    """Read ``inbound`` as the answer to ``step``; never raises on anything a person sends.

    ``options`` are the step's options with rendered labels; ``collected`` the items a list
    step got from earlier messages. Values: text str, number int/float, choice option value
    (or free text), multi_choice list of values (+ free text), scale int, yes_no bool,
    date ISO string, list list[str], file ``Attachment.to_json()``.
    """
    kind = inbound.kind
    collects = step.type in (StepType.LIST, StepType.MULTI_CHOICE)
    done = collects and (
        parse_command(inbound) == Command.DONE
        or (kind == InboundKind.BUTTON and normalize(_str(inbound.value)) == "done")
    )
    if kind == InboundKind.COMMAND and not done:
        return Rejected("That's a command, not an answer. " + _TYPE_IT)
    if kind == InboundKind.TEXT and not done and (m := _SLASH.match(_str(inbound.text))):
        return Rejected(f'"/{_short(m[1], 30)}" is not a command I know. {_TYPE_IT} (Or /help.)')
    if step.type == StepType.FILE:
        return _file(inbound)
    if kind == InboundKind.FILE:
        return Rejected("Please type your answer instead of sending a file.")
    values = inbound.values
    is_text, is_button = kind == InboundKind.TEXT, kind == InboundKind.BUTTON
    reader = _READERS.get(step.type)
    if reader is None:  # a message step waits for nothing
        return Accepted(None, "")
    return reader(
        _Input(
            step=step,
            kind=kind,
            text=_str(inbound.text).replace("\x00", "").strip() if is_text else "",
            button=_str(inbound.value) if is_button and inbound.value is not None else None,
            values=tuple(str(v) for v in values) if is_button and values is not None else None,
            done=done,
            options=tuple(options),
            today=today,
            collected=tuple(str(c) for c in collected),
        )
    )


def _text(i: _Input) -> AnswerResult:
    if i.kind != InboundKind.TEXT:
        return Rejected(_TYPE_IT)
    if not i.text:
        return Rejected("Please type an answer; a few words are fine.")
    too_short_or_long = _length_problem(i.text, i.step.min_length, i.step.max_length or _TEXT_CAP)
    return too_short_or_long or Accepted(i.text, _short(i.text))


def _number(i: _Input) -> AnswerResult:
    step = i.step
    value = _parse_number(i.text)
    if value is None:
        return Rejected("Please type a number, like " + ("7." if step.integer else "7 or 7.5."))
    if step.integer and not value.is_integer():
        return Rejected("Please type a whole number, like 7.")
    if (step.min is not None and value < step.min) or (step.max is not None and value > step.max):
        return Rejected(_range_hint(step.min, step.max, step.integer))
    answer: int | float = int(value) if step.integer else value
    return Accepted(answer, _show_number(answer))


def _choice(i: _Input) -> AnswerResult:
    hint = _choice_hint(i.options)
    if i.button is not None:
        picked = next((o for o in i.options if o.value == i.button), None)
        return Accepted(picked.value, picked.label) if picked else Rejected(hint)
    if not i.text or len(i.text) > _TEXT_CAP:
        return Rejected(hint)
    picked = _match_option(i.text, i.options)
    if picked is not None:
        return Accepted(picked.value, picked.label)
    if not i.step.allow_other or _is_number(i.text):  # "9" of 4 options is a miss, not "other"
        return Rejected(hint)
    problem = _length_problem(i.text, i.step.min_length, i.step.max_length or _ITEM_CAP)
    return problem or Accepted(i.text, _short(i.text))


def _multi_choice(i: _Input) -> AnswerResult:
    if i.kind == InboundKind.BUTTON:
        if i.values is not None:
            chosen = i.values
        elif i.button is None or (i.done and not any(o.value == i.button for o in i.options)):
            chosen = ()
        else:
            chosen = (i.button,)
        by_value = {o.value: o for o in i.options}
        stale = next((v for v in chosen if v not in by_value), None)
        if stale is not None:  # a button from an older question, or a tampered payload
            return Rejected(f'"{_short(stale, 40)}" is not one of the options; please pick again.')
        return _picks(i, [by_value[v] for v in chosen], [])
    if i.done or not i.text:
        return _picks(i, [], [])
    if len(i.text) > _TEXT_CAP:
        return Rejected(_choice_hint(i.options, several=True))
    matched, unknown = _read_picks(i.text, i.options)
    bad = next((u for u in unknown if _is_number(u) or not i.step.allow_other), None)
    if bad is not None:
        n = len(i.options)
        if _is_number(bad):
            return Rejected(f"There's no option {_short(bad, 20)}; please use 1 to {n}.")
        return Rejected(
            f'I couldn\'t find "{_short(bad, 40)}" among the options. '
            f"Please use their numbers (1–{n}) or names, separated by commas."
        )
    cap = i.step.max_length or _ITEM_CAP
    others: list[str] = []
    for item in unknown:
        if problem := _length_problem(item, i.step.min_length, cap):
            return problem
        if normalize(item) not in {normalize(o) for o in others}:
            others.append(item)
    return _picks(i, matched, others)


def _scale(i: _Input) -> AnswerResult:
    low = int(i.step.min) if i.step.min is not None else 1
    high = int(i.step.max) if i.step.max is not None else 5
    raw = i.button if i.button is not None else i.text
    hint = f"Please pick a number from {low} to {high}."
    if len(raw) > 200:
        return Rejected(hint)
    number = _parse_number(raw)
    if number is None and (m := re.fullmatch(r"(\d{1,6}) ?(?:/|out of|of) ?(\d{1,6})", _key(raw))):
        number = float(m[1]) if int(m[2]) == high else None  # "4/5", "4 out of 5"
    if number is None and _is_number(raw):  # "4️⃣"
        number = float(_loose(raw))
    if number is None:
        spoken = {_loose(label): n for n, label in i.step.labels}
        guess = _loose(raw)
        number = spoken.get(guess)
        prefixed = [n for key, n in spoken.items() if len(guess) >= 3 and key.startswith(guess)]
        if number is None and len(prefixed) == 1:
            number = prefixed[0]
    if number is None or not float(number).is_integer() or not low <= number <= high:
        return Rejected(hint)
    value = int(number)
    return Accepted(value, _scale_shown(value, i.step))


def _yes_no(i: _Input) -> AnswerResult:
    raw = i.button if i.button is not None else i.text
    if len(raw) > 200:
        return Rejected(_YES_NO_HINT)
    key = _key(_EMOJI_NOISE.sub("", raw))
    if key in _YES or key in _NO:
        return Accepted(key in _YES, "yes" if key in _YES else "no")
    words = {w.strip(_PUNCT) for w in key.split()}
    lead = key.split()[0].strip(_PUNCT) if key else ""
    if lead in _YES_LEAD and not words & _NO_LEAD:  # "yes, I do"
        return Accepted(True, "yes")
    if lead in _NO_LEAD and not words & _YES_LEAD:  # "no thanks, not this term"
        return Accepted(False, "no")
    return Rejected(_YES_NO_HINT)


def _date(i: _Input) -> AnswerResult:
    found = parse_date(i.button if i.button is not None else i.text, i.today)
    if found is None:
        return Rejected(_DATE_HINT)
    return Accepted(found.isoformat(), _date_shown(found))


def _list(i: _Input) -> AnswerResult:
    step, collected = i.step, i.collected
    low = int(step.min) if step.min is not None else 1
    high = int(step.max) if step.max is not None else None
    done = i.done  # then the whole message was the done word: no items in it
    lines = [] if done else [_BULLET.sub("", ln.strip()).strip() for ln in i.text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) >= 2 and parse_command(Inbound.of_text(lines[-1])) == Command.DONE:
        lines, done = lines[:-1], True  # "maths\nscience\ndone"
    if not lines and not done:
        return Rejected("Please type an item, or done when you have finished.")
    cap = step.max_length or _ITEM_CAP
    for line in lines:
        if problem := _length_problem(line, step.min_length, cap, each=True):
            return problem
    items = (*collected, *lines)
    if high is not None and len(items) > high:
        room = max(high - len(collected), 0)
        more = f"you can add {room} more" if room else "you have added them all"
        return Rejected(f"Please list at most {high} items; {more}.")
    if done and len(items) < low:
        need = low - len(items)
        return Rejected(f"Please add {need} more item{'' if need == 1 else 's'} before done.")
    if done or (high is not None and len(items) == high) or (len(lines) >= 2 and len(items) >= low):
        return Accepted(list(items), _short(", ".join(items)))
    return ListProgress(items)


def _file(inbound: Inbound) -> AnswerResult:
    if inbound.kind == InboundKind.FILE:
        attachment = inbound.attachment
        if not isinstance(attachment, Attachment):
            return Rejected(_FILE_HINT)
        shown = attachment.name or attachment.caption or attachment.kind or "file"
        return Accepted(attachment.to_json(), _short(str(shown)))
    typed = inbound.kind == InboundKind.TEXT
    text = _str(inbound.text).replace("\x00", "").strip() if typed else ""
    m = _URL.search(text)
    url = m[0].rstrip(".,;:!?)]}>'") if m else ""
    if not m or not url.split("://", 1)[1]:
        return Rejected(_FILE_HINT)
    if len(url) > _URL_CAP:
        return Rejected("That link is too long; please share a shorter one.")
    caption = " ".join((text[: m.start()] + " " + text[m.end() :]).split())
    if len(caption) > _TEXT_CAP:
        return Rejected(f"Please keep the message with your link under {_TEXT_CAP} characters.")
    link = Attachment(kind="link", url=url, caption=caption or None)
    return Accepted(link.to_json(), _short(url))


_READERS: dict[StepType, Callable[[_Input], AnswerResult]] = {
    StepType.TEXT: _text,
    StepType.NUMBER: _number,
    StepType.CHOICE: _choice,
    StepType.MULTI_CHOICE: _multi_choice,
    StepType.SCALE: _scale,
    StepType.YES_NO: _yes_no,
    StepType.DATE: _date,
    StepType.LIST: _list,
}


def display_answer(step: Step, value: Any, options: Sequence[Option]) -> str:
    """A stored answer as the student saw it when giving it: option labels, not their values.

    The same text as ``Accepted.display``, rebuilt from the saved value (for `/back`).
    """
    if step.type is StepType.MULTI_CHOICE and isinstance(value, list):
        return _picks_shown(value, options)
    if step.type is StepType.CHOICE:
        return _picks_shown([value], options)
    if step.type is StepType.SCALE and isinstance(value, int):
        return _scale_shown(value, step)
    if step.type is StepType.DATE and isinstance(value, str):
        try:
            return _date_shown(date.fromisoformat(value))
        except ValueError:
            return _short(value)
    return _short(describe_value(value))


def _picks_shown(values: Sequence[Any], options: Sequence[Option]) -> str:
    labels = {o.value: o.label for o in options}
    return _short(", ".join(labels.get(str(v), str(v)) for v in values) or "none")


def _scale_shown(value: int, step: Step) -> str:
    label = dict(step.labels).get(value)
    return f"{value} ({label})" if label else str(value)


def _date_shown(day: date) -> str:
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


# ---------------------------------------------------------------------------- helpers


def _str(value: object) -> str:
    """Adapters are typed, but a None or a number in a text field must not crash a turn."""
    return value if isinstance(value, str) else ""


def _key(text: str) -> str:
    """Exact-match form: folded, with punctuation around it trimmed."""
    return normalize(text).strip(_PUNCT)


def _loose(text: str) -> str:
    """Words only: "🎨 Arts & crafts!" -> "arts and crafts", "rather_not" -> "rather not"."""
    return " ".join(_WORDS.findall(normalize(text).replace("&", " and ")))


@functools.lru_cache(maxsize=2048)
def _option_keys(option: Option) -> tuple[tuple[str, str], tuple[str, str]]:
    """Exact and words-only forms of an option's value and label.

    Options come from flow files and repeat on every turn, so they are folded once; what a
    student types is never cached (it would grow with the number of students).
    """
    return (_key(option.value), _key(option.label)), (_loose(option.value), _loose(option.label))


def _is_number(text: str) -> bool:
    return _loose(text).isdecimal()


def _short(text: str, limit: int = _DISPLAY_CAP) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _length_problem(
    text: str, low: int | None, high: int, *, each: bool = False
) -> Rejected | None:
    per = " per item" if each else ""
    if low is not None and len(text) < low:
        return Rejected(f"Please write at least {low} characters{per}.")
    if len(text) > high:
        size = len(text)
        return Rejected(f"That's too long: please keep it to {high} characters{per} (not {size}).")
    return None


def _parse_number(text: str) -> float | None:
    """ "7", "-3", "7,5", "1,000", "about 7 hours"; None for anything else, nan and inf."""
    folded = normalize(text).replace("\u2212", "-")  # NFKD turns fullwidth digits into ASCII
    if len(folded) > 60:
        return None
    if not _NUMBER.fullmatch(folded) and not _THOUSANDS.fullmatch(folded):
        tokens = [t.rstrip(".,;:!?)]\"'").lstrip("([\"'") for t in folded.split()]
        numeric = [t for t in tokens if _NUMBER.fullmatch(t) or _THOUSANDS.fullmatch(t)]
        if len(numeric) != 1 or sum(any(c.isdigit() for c in t) for t in tokens) != 1:
            return None
        folded = numeric[0]
    if not folded.isascii():  # other scripts' digits: too rare to guess safely
        return None
    plain = folded.replace(",", "") if _THOUSANDS.fullmatch(folded) else folded.replace(",", ".")
    value = float(plain)
    return value if math.isfinite(value) else None


def _show_number(value: float) -> str:
    """7.0 -> "7", 7.5 -> "7.5" (bounds and answers read as people wrote them)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_hint(low: float | None, high: float | None, integer: bool) -> str:
    what = "a whole number" if integer else "a number"
    if low is not None and high is not None:
        return f"Please type {what} from {_show_number(low)} to {_show_number(high)}."
    if low is not None:
        return f"Please type {what} of at least {_show_number(low)}."
    if high is not None:
        return f"Please type {what} no bigger than {_show_number(high)}."
    return f"Please type {what}."


def _choice_hint(options: Sequence[Option], *, several: bool = False) -> str:
    n = len(options)
    if n == 0:
        return _TYPE_IT
    numbers = "1" if n == 1 else f"1–{n}"
    if several:
        return f"Please pick from the options ({numbers}): numbers or names, separated by commas."
    return f"Please choose one of the options ({numbers}), or type its name."


def _match_option(text: str, options: Sequence[Option]) -> Option | None:
    """Exact value/label, then words-only, then its number, then a unique 3+ letter prefix."""
    key, loose = _key(text), _loose(text)
    if not key:
        return None
    for option in options:
        if key in _option_keys(option)[0]:
            return option
    if not loose:
        return None
    for option in options:
        if loose in _option_keys(option)[1]:
            return option
    if loose.isdecimal():
        index = int(loose) if len(loose) <= 4 else 0
        return options[index - 1] if 1 <= index <= len(options) else None
    if len(loose) < 3:
        return None
    prefixed = [o for o in options if any(k.startswith(loose) for k in _option_keys(o)[1])]
    return prefixed[0] if len(prefixed) == 1 else None


def _match_piece(piece: str, options: Sequence[Option]) -> list[Option] | None:
    """One option, or several written with spaces ("1 3", "art music") when all of them match."""
    single = _match_option(piece, options)
    if single is not None:
        return [single]
    words = piece.split()
    if len(words) < 2:
        return None
    found = [_match_option(w, options) for w in words]
    return [o for o in found if o is not None] if all(found) else None


def _read_picks(text: str, options: Sequence[Option]) -> tuple[list[Option], list[str]]:
    """Options named in typed text, and the pieces that named none (kept whole if no part did)."""
    matched: list[Option] = []
    unknown: list[str] = []
    for raw in _PIECES.split(text):
        piece = raw.strip(_PUNCT)
        if not piece:
            continue
        found = _match_piece(piece, options)
        if found is not None:
            matched += found
            continue
        parts = [p.strip(_PUNCT) for p in _AND.split(piece) if p.strip(_PUNCT)]
        hits = [(p, _match_piece(p, options)) for p in parts]
        if not any(f for _, f in hits):
            unknown.append(piece)  # "rock and roll" stays one free-text item
            continue
        for part, part_found in hits:
            if part_found is None:
                unknown.append(part)
            else:
                matched += part_found
    return matched, unknown


def _picks(i: _Input, matched: Sequence[Option], others: list[str]) -> AnswerResult:
    """Option values in option order, then free text; checks the step's min/max picks."""
    chosen = {o.value for o in matched}
    ordered = [o for o in i.options if o.value in chosen]
    count = len(ordered) + len(others)
    low = int(i.step.min) if i.step.min is not None else 1
    high = int(i.step.max) if i.step.max is not None else None
    if count < low:
        what = "one option" if low == 1 else f"{low} options"
        return Rejected(f"Please pick at least {what} (numbers or names, separated by commas).")
    if high is not None and count > high:
        return Rejected(f"Please pick at most {high} (you picked {count}).")
    values = [o.value for o in ordered] + others
    return Accepted(values, _picks_shown(values, i.options))
