"""Pure Telegram rendering: neutral replies to HTML text, inline keyboards and callback data.

No network, no storage and no python-telegram-bot here: keyboards are plain rows of (text,
callback data) or the Bot API's own JSON, so the Telegram adapter stays a thin translator,
the only module that touches the SDK, and all of Telegram's fiddly limits (4096-character
messages, 64-byte callback data, HTML escaping) are tested in one place. Multi-select state
lives in the message's own keyboard (the ✓ marks), never in process memory, so any worker
can handle the next tap.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from dialogues import Reply, ReplyKind

from ..notices import Line, Notice, Span, Style
from ._widgets import NO_INDEX, YES_INDEX, split_at_breaks

__all__ = [
    "ACTIONS",
    "CHECK",
    "MAX_CALLBACK_BYTES",
    "MAX_CAPTION_CHARS",
    "MAX_MESSAGE_CHARS",
    "NO_INDEX",
    "YES_INDEX",
    "Button",
    "CallbackAction",
    "answered_html",
    "decode_callback",
    "encode_callback",
    "escape",
    "has_keyboard",
    "keyboard_json",
    "keyboard_rows",
    "message_html",
    "notice_caption",
    "notice_messages",
    "selected_from_buttons",
    "split_text",
    "toggled",
]

MAX_MESSAGE_CHARS: Final = 4096
"""Telegram's message limit, counted on the text *after* entity parsing."""

MAX_CAPTION_CHARS: Final = 1024
"""Telegram's limit on a photo's or document's caption, counted like a message's."""

MAX_CALLBACK_BYTES: Final = 64
"""Telegram refuses a button whose callback_data exceeds 64 UTF-8 bytes."""

ACTIONS: Final = frozenset({"pick", "toggle", "done", "skip"})

CHECK: Final = "✓ "
"""Prefix marking a selected multi-choice option; read back by :func:`selected_from_markup`."""

_LABEL_MAX = 60  # longer labels get cut with "…": Telegram shows only a line of a button anyway
_SHORT_LABEL = 20  # labels this short fit two to a row on a phone
_SCALE_LABEL_MAX = 10  # an end label this short fits inside its number's button
_SCALE_MAX_BUTTONS = 11  # more numbers than this do not fit one row; the student types instead

_CODES: Final = {"pick": "p", "toggle": "t", "done": "d", "skip": "s"}
_ACTION_OF_CODE: Final = {code: action for action, code in _CODES.items()}
_INDEXED: Final = frozenset({"pick", "toggle"})
_INDEX_RE: Final = re.compile(r"0|[1-9][0-9]{0,5}")


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape plain text for ``parse_mode=HTML``: student and author text is never markup."""
    return html.escape(text, quote=True)


def _units(text: str) -> int:
    """Length in UTF-16 code units: never less than the code-point count Telegram may use."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """How many leading code points of ``text`` fit in ``limit`` UTF-16 units."""
    if _units(text) <= limit:
        return len(text)
    used = 0
    for i, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return i
    return len(text)  # pragma: no cover - the first check returns first


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split plain text into sendable chunks, each at most ``limit`` characters.

    Telegram counts a message's length *after* parsing entities, so the plain length is what
    matters: ``escape(chunk)`` may be longer than ``limit`` and is still accepted. Lengths are
    measured in UTF-16 code units, which is never less than the character count, so a chunk
    is safe however Telegram counts. Cuts prefer a paragraph break, then a line break, then a
    space (each only in the second half of the window, so chunks stay full), else a hard cut.
    The separator and whitespace around a cut are dropped; everything else is kept in order.
    Whitespace-only text gives ``[]``: Telegram refuses empty messages.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 (one astral character takes two units)")
    return split_at_breaks(text, limit, _fit)


def _trim(label: str, limit: int = _LABEL_MAX) -> str:
    label = " ".join(label.split())
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _hint(reply: Reply) -> str | None:
    """The plain-text line telling the student how to answer, or None."""
    kind = reply.kind
    if kind is ReplyKind.SCALE and reply.scale is not None:
        scale = reply.scale
        ends = " · ".join(f"{k} = {v}" for k, v in scale.labels)
        if scale.max - scale.min + 1 > _SCALE_MAX_BUTTONS:
            typed = f"Type a number from {scale.min} to {scale.max}"
            return f"{typed} ({ends})" if ends else typed
        return ends or None
    if kind is ReplyKind.MULTI_CHOICE:
        if reply.allow_other:
            return "Tap all that fit, then Done — or type your own"
        return "Tap all that fit, then Done"
    if kind is ReplyKind.CHOICE and reply.allow_other:
        return "Tap one — or type your own"
    if kind is ReplyKind.LIST:
        return "Send one per message, then tap Done"
    if kind is ReplyKind.FILE:
        return "Send a photo, a document or a link"
    return None


def message_html(reply: Reply) -> str:
    """The HTML to send for a reply: the escaped text plus an italic answering hint.

    Long non-question texts should go through :func:`split_text` first; questions are short.
    """
    body = escape(reply.text)
    hint = _hint(reply)
    return body if hint is None else f"{body}\n<i>{escape(hint)}</i>"


_TAGS: Final = {Style.BOLD: "b", Style.ITALIC: "i", Style.CODE: "code"}


def _span_html(span: Span) -> str:
    tag = _TAGS.get(span.style)
    text = escape(span.text)
    return text if tag is None else f"<{tag}>{text}</{tag}>"


def _line(line: Line) -> tuple[str, str]:
    """A line as (its plain text, its HTML); a bullet is "• "."""
    bullet = "• " if line.bullet else ""
    return bullet + line.text, bullet + "".join(_span_html(s) for s in line.spans)


def notice_messages(notice: Notice, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """A notice's text as HTML messages (``parse_mode=HTML``), each within ``limit`` as
    Telegram counts it (the text after parsing): the title and headings bold, styled spans
    as tags, every text escaped. Messages are cut between lines; a line longer than a whole
    message is cut with :func:`split_text` and loses its styles. No text: ``[]``."""
    rows: list[tuple[str, str]] = []
    if notice.title:
        rows.append((notice.title, f"<b>{escape(notice.title)}</b>"))
    for section in notice.sections:
        if rows:
            rows.append(("", ""))
        if section.title:
            rows.append((section.title, f"<b>{escape(section.title)}</b>"))
        rows.extend(_line(line) for line in section.lines)
    messages: list[str] = []
    plain: list[str] = []
    marked: list[str] = []

    def flush() -> None:
        while plain and not plain[-1].strip():
            plain.pop()
            marked.pop()
        if plain:
            messages.append("\n".join(marked))
        plain.clear()
        marked.clear()

    for text, markup in rows:
        if _units(text) > limit:
            flush()
            messages.extend(escape(chunk) for chunk in split_text(text, limit))
            continue
        if plain and _units("\n".join([*plain, text])) > limit:
            flush()
        if plain or text.strip():
            plain.append(text)
            marked.append(markup)
    flush()
    return messages


def notice_caption(caption: str) -> str:
    """A file's caption, escaped, cut with "…" to fit Telegram's caption limit."""
    caption = caption.strip()
    if _units(caption) > MAX_CAPTION_CHARS:
        caption = caption[: _fit(caption, MAX_CAPTION_CHARS - 1)].rstrip() + "…"
    return escape(caption)


def answered_html(reply_text: str, display: str) -> str:
    """What a question message becomes once answered: the question, then ``→ <b>answer</b>``.

    Both parts are cut with "…" if needed so the edit stays within Telegram's limit.
    """
    display = _trim(display, 512) if display.strip() else "—"
    room = MAX_MESSAGE_CHARS - len(display) - 3  # "\n→ "
    question = reply_text.strip()
    if _units(question) > room:
        question = question[: _fit(question, room - 1)].rstrip() + "…"
    return f"{escape(question)}\n→ <b>{escape(display)}</b>"


# ----------------------------------------------------------------------------------------------
# Callback data
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackAction:
    """A decoded button press: ``ref`` names the question message, ``index`` the option.

    ``index`` is set for pick/toggle (for YES_NO 0 = yes, 1 = no; for SCALE the offset from
    ``scale.min``) and None for done/skip.
    """

    action: str
    ref: str
    index: int | None = None


def encode_callback(action: str, ref: str, index: int | None = None) -> str:
    """``<code>:<index>:<ref>`` — ref last, so it may contain anything, even ``:``.

    Raises ValueError for an unknown action, a missing/unexpected/negative index, an empty
    ref, or a result over 64 UTF-8 bytes (Telegram would refuse the whole keyboard).
    """
    code = _CODES.get(action)
    if code is None:
        raise ValueError(f"unknown callback action {action!r}")
    if (index is not None) != (action in _INDEXED):
        raise ValueError(f"action {action!r} {'needs' if index is None else 'takes no'} index")
    if index is not None and not 0 <= index <= 999_999:
        raise ValueError(f"callback index out of range: {index}")
    if not ref:
        raise ValueError("callback ref is empty")
    data = f"{code}:{'' if index is None else index}:{ref}"
    if len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def decode_callback(data: str) -> CallbackAction | None:
    """Parse :func:`encode_callback` output; anything else (stale, forged, oversized) is None."""
    try:
        if not isinstance(data, str) or len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
            return None
    except UnicodeEncodeError:  # lone surrogates cannot come from Telegram, nor from us
        return None
    parts = data.split(":", 2)
    if len(parts) != 3:
        return None
    code, raw_index, ref = parts
    action = _ACTION_OF_CODE.get(code)
    if action is None or not ref:
        return None
    if action in _INDEXED:
        if _INDEX_RE.fullmatch(raw_index) is None:
            return None
        return CallbackAction(action, ref, int(raw_index))
    return None if raw_index else CallbackAction(action, ref)


# ----------------------------------------------------------------------------------------------
# Keyboards
# ----------------------------------------------------------------------------------------------


Button: TypeAlias = tuple[str, str]
"""A button as Telegram takes it: (text, callback data)."""


def _button(text: str, action: str, ref: str, index: int | None = None) -> Button:
    return text, encode_callback(action, ref, index)


def _option_label(label: str, value: str, number: int) -> str:
    """A non-empty button text: Telegram refuses blank buttons (BUTTON_TEXT_INVALID)."""
    for candidate in (label, value, str(number)):
        trimmed = _trim(candidate)
        if trimmed:
            return trimmed
    return str(number)  # pragma: no cover - str(number) is never blank


def _rows(buttons: list[Button], labels: list[str]) -> list[list[Button]]:
    """Two buttons a row when every label is short, else one: long labels would be cut."""
    per_row = 2 if labels and all(len(x) <= _SHORT_LABEL for x in labels) else 1
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


def _scale_row(reply: Reply, ref: str) -> list[Button] | None:
    scale = reply.scale
    if scale is None or not 1 <= scale.max - scale.min + 1 <= _SCALE_MAX_BUTTONS:
        return None
    ends = dict(scale.labels)
    row: list[Button] = []
    for offset, number in enumerate(range(scale.min, scale.max + 1)):
        text = str(number)
        end_label = " ".join(ends.get(number, "").split())
        if number in (scale.min, scale.max) and end_label and len(end_label) <= _SCALE_LABEL_MAX:
            text = f"{number} · {end_label}"
        row.append(_button(text, "pick", ref, offset))
    return row


def _keyboard_rows(reply: Reply, ref: str, selected: frozenset[int]) -> list[list[Button]]:
    rows: list[list[Button]] = []
    kind = reply.kind
    if kind is ReplyKind.CHOICE:
        labels = [_option_label(o.label, o.value, i + 1) for i, o in enumerate(reply.options)]
        buttons = [_button(label, "pick", ref, i) for i, label in enumerate(labels)]
        rows.extend(_rows(buttons, labels))
    elif kind is ReplyKind.MULTI_CHOICE:
        labels = []
        for i, option in enumerate(reply.options):
            # A label may not fake the ✓ mark, or reading the state back would lie.
            plain = option.label.lstrip().removeprefix("✓").lstrip()
            labels.append(_option_label(plain, option.value, i + 1))
        texts = [(CHECK if i in selected else "") + x for i, x in enumerate(labels)]
        buttons = [_button(text, "toggle", ref, i) for i, text in enumerate(texts)]
        rows.extend(_rows(buttons, texts))
        rows.append([_button("Done ✓", "done", ref)])
    elif kind is ReplyKind.SCALE:
        scale_row = _scale_row(reply, ref)
        if scale_row is not None:
            rows.append(scale_row)
    elif kind is ReplyKind.YES_NO:
        rows.append([_button("Yes", "pick", ref, YES_INDEX), _button("No", "pick", ref, NO_INDEX)])
    elif kind is ReplyKind.LIST:
        rows.append([_button("Done", "done", ref)])
    if reply.optional:
        skip = _button("Skip", "skip", ref)
        if rows and kind in (ReplyKind.MULTI_CHOICE, ReplyKind.LIST):
            rows[-1].append(skip)  # beside Done: both end the question
        else:
            rows.append([skip])
    return rows


def keyboard_rows(
    reply: Reply, ref: str, *, selected: frozenset[int] = frozenset()
) -> list[list[Button]]:
    """The inline keyboard for a question, row by row; [] when it is answered by typing or
    sending.

    Every button's callback data carries ``ref`` (the question message's short id) so a late
    tap on an old message can be recognised. Optional questions get a "Skip" button.
    """
    return _keyboard_rows(reply, ref, selected)


def keyboard_json(reply: Reply, ref: str, *, selected: frozenset[int] = frozenset()) -> str | None:
    """:func:`keyboard_rows` as the Bot API's ``reply_markup`` JSON text (the delivery worker
    sends one with every question), or None when there are no buttons."""
    rows = _keyboard_rows(reply, ref, selected)
    if not rows:
        return None
    keyboard = [[{"text": text, "callback_data": data} for text, data in row] for row in rows]
    return json.dumps({"inline_keyboard": keyboard}, ensure_ascii=False, separators=(",", ":"))


def has_keyboard(reply: Reply) -> bool:
    """Whether a question is sent with buttons (so closing it must take them away)."""
    return bool(_keyboard_rows(reply, "0", frozenset()))


def toggled(selected: frozenset[int], index: int) -> frozenset[int]:
    """The selection after tapping option ``index``: selected ones drop out, others join."""
    return selected ^ {index}


def selected_from_buttons(buttons: Iterable[tuple[str, object]]) -> frozenset[int]:
    """The ✓-marked toggle indices among a message's current buttons (text, callback data):
    the multi-select state. Buttons that are not ours (a link, foreign data) are ignored."""
    chosen: set[int] = set()
    for text, data in buttons:
        decoded = decode_callback(data) if isinstance(data, str) else None
        if decoded is None or decoded.action != "toggle" or decoded.index is None:
            continue
        if text.startswith(CHECK):
            chosen.add(decoded.index)
    return frozenset(chosen)
