"""Pure Slack rendering: neutral replies to Block Kit messages, action ids and their meaning.

No network and no storage here, so the Slack adapter stays a thin translator and all of
Slack's fiddly limits (3000-character sections, 50 blocks a message, 75-character buttons,
10 checkboxes, 255-character action ids, ``&``/``<``/``>`` escaping) are tested in one place.
Multi-select state lives in the message's own checkboxes (Slack sends it back as
``state.values`` with every click), never in process memory, so any worker can handle the
Submit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dialogues import Command, Inbound, Reply, ReplyKind

from ..frontdesk import MENU
from ..notices import Line, Notice, Section, Span, Style
from ._widgets import NO_INDEX, YES_INDEX, inbound_for_pick, split_at_breaks

__all__ = [
    "ACTIONS",
    "MAX_BLOCKS",
    "MAX_BUTTON_TEXT",
    "MAX_CHECKBOX_OPTIONS",
    "MAX_HOME_BLOCKS",
    "MAX_MESSAGE_CHARS",
    "MAX_SECTION_CHARS",
    "NO_INDEX",
    "YES_INDEX",
    "SlackAction",
    "SlackMessage",
    "closed_message",
    "decode_action",
    "encode_action",
    "escape_mrkdwn",
    "home_view",
    "inbound_for_action",
    "render_notice",
    "render_reply",
    "selected_indexes",
    "slack_commands",
    "split_text",
]

MAX_MESSAGE_CHARS: Final = 4000
"""Our limit per message (escaped text): Slack truncates long messages, so we split first."""

MAX_SECTION_CHARS: Final = 3000
"""Slack refuses a section whose text is longer (``invalid_blocks``)."""

MAX_BLOCKS: Final = 50
"""Slack refuses a message with more blocks."""

MAX_HOME_BLOCKS: Final = 100
"""Slack refuses an App Home view with more blocks."""

MAX_BUTTON_TEXT: Final = 75
"""Slack refuses a button (and a checkbox option) whose text is longer."""

MAX_CHECKBOX_OPTIONS: Final = 10
"""Slack refuses a ``checkboxes`` element with more options."""

ACTIONS: Final = frozenset({"pick", "picks", "done", "skip"})
"""``pick`` a button option, ``picks`` a checkbox group, ``done``/``skip`` end a question."""

_PREFIX: Final = "pb"
_MAX_ACTION_ID = 255  # Slack refuses longer action ids
_MAX_ACTIONS_ELEMENTS = 25  # Slack refuses an actions block with more elements
_MAX_HEADER_TEXT = 150  # Slack refuses a longer header
_MAX_ANSWER = 512  # an answer echoed into a closed question is cut to this
_SCALE_LABEL_MAX = 10  # an end label this short fits inside its number's button
_SCALE_MAX_BUTTONS = 11  # more numbers than this do not fit a row; the student types instead
_INDEXED: Final = frozenset({"pick", "picks"})
_REF_RE: Final = re.compile(r"0|[1-9][0-9]{0,18}")  # an outbox id: a bigint, no leading zeros
_INDEX_RE: Final = re.compile(r"0|[1-9][0-9]{0,5}")  # up to 999_999 options
_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MORE: Final = "…more in the chat"


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------


_COMMAND_NAMES = "|".join(sorted({c.name for c in MENU} | {Command.RESTART.value}))
_TYPED_COMMAND = re.compile(rf"(?<![\w/])/({_COMMAND_NAMES})\b")


@functools.lru_cache(maxsize=2048)  # a flow's texts come back for every student
def slack_commands(text: str) -> str:
    """Bot text with its commands as Slack takes them: "/skip" → "/profilebot skip".

    Flows and the engine write commands the chat way ("/skip"); in Slack a message starting
    with "/" is a slash command, so only ``/profilebot <word>`` reaches the bot.
    """
    return _TYPED_COMMAND.sub(r"/profilebot \1", text)


def escape_mrkdwn(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` — Slack's only control characters — so student and author
    text is never markup: ``<!channel>`` or ``<@U123>`` show literally and ping nobody.

    Nothing else is escaped: Slack decodes only these three entities (``&#39;`` would show).
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _char_units(char: str) -> int:
    """Escaped length of one character; astral characters count twice (UTF-16), to be safe
    however Slack counts."""
    escaped = _ESCAPES.get(char)
    if escaped is not None:
        return len(escaped)
    return 2 if ord(char) > 0xFFFF else 1


def _units(text: str) -> int:
    """The escaped length of plain ``text``: what Slack's limits are checked against."""
    return (
        len(text.encode("utf-16-le")) // 2
        + 4 * text.count("&")
        + 3 * (text.count("<") + text.count(">"))
    )


def _fit(text: str, limit: int) -> int:
    """How many leading characters of plain ``text`` fit in ``limit`` once escaped."""
    if _units(text) <= limit:  # the usual case, without a walk over every character
        return len(text)
    used = 0
    for i, char in enumerate(text):
        used += _char_units(char)
        if used > limit:
            return i
    return len(text)


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split plain text into parts whose *escaped* length is at most ``limit``.

    Slack checks its limits on the text it receives, i.e. after :func:`escape_mrkdwn`, so a
    part full of ``&`` holds fewer characters. Cuts prefer a paragraph break, then a line
    break, then a space (each only in the second half of the window, so parts stay full),
    else a hard cut. The separator and whitespace around a cut are dropped; everything else
    is kept in order. Whitespace-only text gives ``[]``: Slack refuses blank text.
    """
    if limit < 5:
        raise ValueError("limit must be at least 5 (an escaped '&' takes five characters)")
    return split_at_breaks(text, limit, _fit)


# A flow's questions and options come back for every student: their escaped, cut forms are
# remembered (pure functions of their text; bounded, so students' own words cannot pile up).
@functools.lru_cache(maxsize=2048)
def _cut(text: str, limit: int) -> str:
    """``text`` escaped, cut with "…" so the escaped result is at most ``limit`` long."""
    if _units(text) <= limit:
        return escape_mrkdwn(text)
    return escape_mrkdwn(text[: _fit(text, limit - 1)].rstrip()) + "…"


@functools.lru_cache(maxsize=2048)
def _label(*candidates: str, limit: int = MAX_BUTTON_TEXT) -> str:
    """The first non-blank candidate, on one line, escaped and cut to ``limit``: Slack
    refuses blank and over-long button texts."""
    for candidate in candidates:
        flat = " ".join(candidate.split())
        if flat:
            return _cut(flat, limit)
    return "…"


def _hint(reply: Reply) -> str | None:
    """The plain-text line telling the student how to answer, or None."""
    kind = reply.kind
    if kind is ReplyKind.SCALE and reply.scale is not None:
        scale = reply.scale
        ends = " · ".join(f"{k} = {v}" for k, v in scale.labels)
        if not _scale_has_buttons(reply):
            typed = f"Type a number from {scale.min} to {scale.max}"
            return f"{typed} ({ends})" if ends else typed
        return ends or None
    if kind is ReplyKind.MULTI_CHOICE:
        picks = _picks_clause(reply.min_picks, reply.max_picks)
        ticks = f"Tick {picks}" if picks else "Tick all that fit"
        if reply.allow_other:
            return f"{ticks}, then Submit — or type your own"
        return f"{ticks}, then Submit"
    if kind is ReplyKind.CHOICE and reply.allow_other:
        return "Pick one — or type your own"
    if kind is ReplyKind.LIST:
        return "Send one per message, then press Done"
    if kind is ReplyKind.FILE:
        return "Upload a photo or a document, or paste a link"
    return None


def _picks_clause(low: int | None, high: int | None) -> str | None:
    """The "up to 3" / "at least 2" / "2 to 4" / "exactly 2" clause, or None if unbounded."""
    if low is not None and low <= 1:
        low = None  # "at least 1" says nothing a Submit button does not
    if low is not None and high is not None:
        return f"exactly {low}" if low == high else f"{low} to {high}"
    if high is not None:
        return f"up to {high}"
    if low is not None:
        return f"at least {low}"
    return None


# ----------------------------------------------------------------------------------------------
# Action ids
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlackAction:
    """A decoded click: ``ref`` is the question's outbox id, ``index`` the option or group.

    ``index`` is set for ``pick`` (for YES_NO 0 = yes, 1 = no; for SCALE the offset from
    ``scale.min``) and ``picks`` (the checkbox group), and None for ``done``/``skip``.
    """

    action: str
    ref: str
    index: int | None = None


def encode_action(action: str, ref: str, index: int | None = None) -> str:
    """``pb:<action>:<ref>[:<index>]``: ``ref`` ties a late click to its question.

    Raises ValueError for an unknown action, a missing/unexpected/out-of-range index, or a
    ref that is not an outbox id (a decimal number): Slack would echo it back unusable.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if (index is not None) != (action in _INDEXED):
        raise ValueError(f"action {action!r} {'needs' if index is None else 'takes no'} index")
    if _REF_RE.fullmatch(ref) is None:
        raise ValueError(f"action ref is not an outbox id: {ref!r}")
    if index is None:
        return f"{_PREFIX}:{action}:{ref}"
    if not 0 <= index <= 999_999:
        raise ValueError(f"action index out of range: {index}")
    return f"{_PREFIX}:{action}:{ref}:{index}"


def decode_action(action_id: str) -> SlackAction | None:
    """Parse :func:`encode_action` output; anything else (other apps' ids, stale, forged,
    oversized) is None. Never raises: the id comes from a request body."""
    if not isinstance(action_id, str) or len(action_id) > _MAX_ACTION_ID:
        return None
    parts = action_id.split(":")
    if len(parts) not in (3, 4) or parts[0] != _PREFIX:
        return None
    action, ref = parts[1], parts[2]
    if action not in ACTIONS or _REF_RE.fullmatch(ref) is None:
        return None
    if action not in _INDEXED:
        return SlackAction(action, ref) if len(parts) == 3 else None
    if len(parts) != 4 or _INDEX_RE.fullmatch(parts[3]) is None:
        return None
    return SlackAction(action, ref, int(parts[3]))


def selected_indexes(state_values: Mapping[str, Any] | None) -> list[int]:
    """The ticked option indexes of our checkboxes in a block_actions ``state.values``.

    Slack sends every input's state with each click, so Submit reads the selection from the
    payload itself. Other elements, other apps' ids and malformed entries are ignored.
    """
    chosen: set[int] = set()
    if not isinstance(state_values, Mapping):
        return []
    for block in state_values.values():
        if not isinstance(block, Mapping):
            continue
        for action_id, state in block.items():
            decoded = decode_action(action_id) if isinstance(action_id, str) else None
            if decoded is None or decoded.action != "picks" or not isinstance(state, Mapping):
                continue
            if state.get("type", "checkboxes") != "checkboxes":
                continue
            options = state.get("selected_options")
            if not isinstance(options, list):
                continue
            for option in options:
                value = option.get("value") if isinstance(option, Mapping) else None
                if isinstance(value, str) and _INDEX_RE.fullmatch(value) is not None:
                    chosen.add(int(value))
    return sorted(chosen)


def inbound_for_action(
    action: SlackAction, reply: Reply, selected: Sequence[int]
) -> Inbound | None:
    """What a click means for the question ``reply``; None for an impossible click.

    ``selected`` is :func:`selected_indexes` of the click's payload, used by Submit. A tick
    (``picks``) is None: it only changes the message's own checkbox state.
    """
    if action.action == "skip":
        return Inbound.of_command(Command.SKIP.value)
    if action.action == "done":
        if reply.kind is ReplyKind.MULTI_CHOICE:
            count = len(reply.options)
            chosen = sorted({i for i in selected if 0 <= i < count})
            return Inbound.of_selection(tuple(reply.options[i].value for i in chosen))
        return Inbound.of_command(Command.DONE.value)
    if action.action != "pick" or action.index is None:
        return None
    return inbound_for_pick(reply, action.index)


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message: ``text`` is the notification/fallback text (escaped mrkdwn, at most
    :data:`MAX_MESSAGE_CHARS`), ``blocks`` what Slack shows."""

    text: str
    blocks: list[dict[str, Any]]


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(escaped: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(escaped)}


def _sections(text: str) -> list[dict[str, Any]]:
    """Plain ``text`` as section blocks of at most :data:`MAX_SECTION_CHARS` escaped each."""
    return [_section(escape_mrkdwn(part)) for part in split_text(text, MAX_SECTION_CHARS)]


def _button(
    label: str, action: str, ref: str, index: int | None = None, *, style: str | None = None
) -> dict[str, Any]:
    """A button; ``label`` is already escaped and cut. ``value`` repeats the index (or the
    action) so logs read well; the action id alone decides what a click means."""
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(label),
        "action_id": encode_action(action, ref, index),
        "value": str(index) if index is not None else action,
    }
    if style is not None:
        button["style"] = style
    return button


def _actions(block_id: str, elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "actions", "block_id": block_id, "elements": elements}


def _button_rows(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Buttons in actions blocks of at most 25 (Slack's limit); Slack wraps them itself."""
    return [
        _actions(f"pb-pick-{n}", buttons[i : i + _MAX_ACTIONS_ELEMENTS])
        for n, i in enumerate(range(0, len(buttons), _MAX_ACTIONS_ELEMENTS))
    ]


def _scale_has_buttons(reply: Reply) -> bool:
    scale = reply.scale
    return scale is not None and 1 <= scale.max - scale.min + 1 <= _SCALE_MAX_BUTTONS


def _option_blocks(reply: Reply, ref: str) -> list[dict[str, Any]]:
    """The actions blocks holding a question's options (buttons or checkbox groups)."""
    kind = reply.kind
    if kind is ReplyKind.CHOICE:
        return _button_rows(
            [
                _button(_label(o.label, o.value, str(i + 1)), "pick", ref, i)
                for i, o in enumerate(reply.options)
            ]
        )
    if kind is ReplyKind.YES_NO:
        return _button_rows(
            [_button("Yes", "pick", ref, YES_INDEX), _button("No", "pick", ref, NO_INDEX)]
        )
    if kind is ReplyKind.SCALE and reply.scale is not None and _scale_has_buttons(reply):
        scale = reply.scale
        ends = dict(scale.labels)
        buttons: list[dict[str, Any]] = []
        for offset, number in enumerate(range(scale.min, scale.max + 1)):
            text = str(number)
            end = " ".join(ends.get(number, "").split())
            if number in (scale.min, scale.max) and end and len(end) <= _SCALE_LABEL_MAX:
                text = f"{number} · {end}"
            buttons.append(_button(_label(text), "pick", ref, offset))
        return _button_rows(buttons)
    if kind is ReplyKind.MULTI_CHOICE:
        options = [
            {"text": _plain(_label(o.label, o.value, str(i + 1))), "value": str(i)}
            for i, o in enumerate(reply.options)
        ]
        groups = [
            options[i : i + MAX_CHECKBOX_OPTIONS]
            for i in range(0, len(options), MAX_CHECKBOX_OPTIONS)
        ]
        return [
            _actions(
                f"pb-picks-{g}",
                [{"type": "checkboxes", "action_id": encode_action("picks", ref, g), "options": o}],
            )
            for g, o in enumerate(groups)
        ]
    return []


def _control_buttons(reply: Reply, ref: str) -> list[dict[str, Any]]:
    """Buttons that end the question rather than answer it: Submit/Done, then Skip."""
    buttons: list[dict[str, Any]] = []
    if reply.kind is ReplyKind.MULTI_CHOICE:
        buttons.append(_button("Submit", "done", ref, style="primary"))
    elif reply.kind is ReplyKind.LIST:
        buttons.append(_button("Done", "done", ref))
    if reply.optional:
        buttons.append(_button("Skip", "skip", ref))
    return buttons


def _widget(reply: Reply, ref: str, room: int) -> list[dict[str, Any]]:
    """The question's actions blocks, at most ``room`` of them.

    Options that would overflow the message are dropped (the student can still type them);
    the Submit/Done/Skip buttons are always kept. Skip joins the last options block when it
    has space, else a block of its own.
    """
    options = _option_blocks(reply, ref)
    controls = _control_buttons(reply, ref)
    if not controls:
        return options[:room]
    if (
        controls[0]["action_id"] == encode_action("skip", ref)
        and options
        and len(options) <= room
        and options[-1]["elements"][0]["type"] == "button"
        and len(options[-1]["elements"]) < _MAX_ACTIONS_ELEMENTS
    ):
        last = options[-1]
        return [*options[:-1], {**last, "elements": [*last["elements"], *controls]}]
    return [*options[: max(0, room - 1)], _actions("pb-controls", controls)]


def render_reply(reply: Reply, ref: str) -> list[SlackMessage]:
    """One neutral reply as one or more Slack messages, in sending order.

    Text longer than :data:`MAX_MESSAGE_CHARS` (escaped) becomes several messages, cut at
    paragraphs where possible; each holds sections of at most :data:`MAX_SECTION_CHARS`.
    The answering hint and the question's buttons go on the last message only, so they sit
    right above the student's reply box. ``ref`` (the outbox id) goes into every action id.
    A reply with neither text nor widget renders as ``[]``: Slack refuses empty messages.
    """
    parts = split_text(slack_commands(reply.text), MAX_MESSAGE_CHARS)
    hint = _hint(reply)
    messages = [SlackMessage(escape_mrkdwn(part), _sections(part)) for part in parts]
    if messages:
        last = messages.pop()
        text, blocks = last.text, list(last.blocks)
    else:
        text, blocks = (_cut(hint, MAX_MESSAGE_CHARS) if hint else "…"), []
    if hint is not None:
        blocks.append({"type": "context", "elements": [_mrkdwn(_cut(hint, MAX_SECTION_CHARS))]})
    blocks.extend(_widget(reply, ref, MAX_BLOCKS - len(blocks)))
    if blocks:
        messages.append(SlackMessage(text, blocks))
    return messages


_FORMATTING: Final = re.compile(r"([*_~`])")
_ZERO_WIDTH: Final = "\u200b"
_MARKS: Final = {Style.BOLD: "*", Style.ITALIC: "_", Style.CODE: "`"}


def inert_mrkdwn(text: str) -> str:
    r"""Plain text as mrkdwn that shows exactly that text: ``&``, ``<`` and ``>`` escaped
    (``<!channel>`` pings nobody) and each of ``*_~`` ``\``` set apart by zero-width spaces,
    which mrkdwn has no escape for (a student's ``*bold*`` stays two stars and a word)."""
    return _FORMATTING.sub(_ZERO_WIDTH + r"\1" + _ZERO_WIDTH, escape_mrkdwn(text))


def _span_mrkdwn(span: Span) -> str:
    """A styled span's marks hug its text: mrkdwn does not close ``*Ana: *`` (a space before
    the closing mark), so the span's outer spaces go outside them."""
    mark = _MARKS.get(span.style)
    text = inert_mrkdwn(span.text)
    if mark is None or not span.text.strip():
        return text
    core = text.strip()
    start = text.index(core)
    return f"{text[:start]}{mark}{core}{mark}{text[start + len(core) :]}"


def _line_mrkdwn(line: Line) -> str:
    return ("• " if line.bullet else "") + "".join(_span_mrkdwn(s) for s in line.spans)


def _rows(section: Section) -> list[str]:
    """A section as lines of mrkdwn, each at most :data:`MAX_SECTION_CHARS`: a longer line
    is cut in its plain text (never inside an escape) and loses its styles."""
    rows = [f"*{inert_mrkdwn(section.title)}*"] if section.title else []
    for line in section.lines:
        row = _line_mrkdwn(line)
        if len(row) <= MAX_SECTION_CHARS:
            rows.append(row)
            continue
        plain = ("• " if line.bullet else "") + line.text
        # a third of the room: a set-apart "*" takes three characters
        rows.extend(inert_mrkdwn(p) for p in split_text(plain, MAX_SECTION_CHARS // 3))
    return rows


def _packed(rows: list[str], limit: int) -> list[str]:
    """Lines of mrkdwn (each at most ``limit``) packed into texts of at most ``limit``."""
    texts: list[str] = []
    current = ""
    for row in rows:
        if current and len(current) + 1 + len(row) > limit:
            texts.append(current)
            current = ""
        current = f"{current}\n{row}" if current else row
    if current.strip():
        texts.append(current)
    return texts


def render_notice(notice: Notice) -> list[SlackMessage]:
    """A notice's text as Block Kit messages, in sending order: a header block for the
    title, a section per section (its heading bold, bullets "• ", spans styled), every
    text inert (:func:`inert_mrkdwn`); at most :data:`MAX_BLOCKS` blocks a message. The
    ``text`` fallback (notifications) is the plain text, escaped. No text: ``[]``."""
    blocks: list[dict[str, Any]] = []
    if notice.title.strip():
        blocks.append(
            {"type": "header", "text": _plain(_label(notice.title, limit=_MAX_HEADER_TEXT))}
        )
    for section in notice.sections:
        blocks.extend(_section(text) for text in _packed(_rows(section), MAX_SECTION_CHARS))
    if not blocks:
        return []
    fallback = escape_mrkdwn(notice.plain_text().strip())
    if len(fallback) > MAX_MESSAGE_CHARS:
        fallback = fallback[: MAX_MESSAGE_CHARS - 1] + "…"
    return [
        SlackMessage(fallback, blocks[i : i + MAX_BLOCKS])
        for i in range(0, len(blocks), MAX_BLOCKS)
    ]


def closed_message(reply_text: str, answer: str | None) -> SlackMessage:
    """What a question message becomes once answered, skipped or expired (for chat.update).

    The question stays (cut with "…" to one section) so the chat still reads as a dialogue;
    the buttons go, so nobody clicks an old question; ``answer`` (cut to 512 characters)
    shows below as ``→ *answer*``.
    """
    question = slack_commands(reply_text.strip())
    blocks = [_section(_cut(question, MAX_SECTION_CHARS))] if question else []
    if answer is None:
        text = _cut(question, MAX_MESSAGE_CHARS) if question else "…"
        return SlackMessage(text, blocks or [_section("…")])
    shown = " ".join(answer.split()) or "—"
    shown = shown if len(shown) <= _MAX_ANSWER else shown[: _MAX_ANSWER - 1].rstrip() + "…"
    blocks.append(_section(f"→ *{escape_mrkdwn(shown)}*"))
    fallback = f"{question}\n→ {shown}" if question else f"→ {shown}"
    return SlackMessage(_cut(fallback, MAX_MESSAGE_CHARS), blocks)


def home_view(sections: Sequence[str], *, title: str = "profilebot") -> dict[str, Any]:
    """The App Home tab: a header, then each section's plain text, dividers between them.

    Long sections are split into several section blocks; if everything would exceed Slack's
    :data:`MAX_HOME_BLOCKS`, the view is cut and ends with "…more in the chat" rather than
    being refused as a whole.
    """
    header = {"type": "header", "text": _plain(_label(title, "profilebot", limit=_MAX_HEADER_TEXT))}
    body: list[dict[str, Any]] = []
    for section in sections:
        blocks = _sections(slack_commands(section))
        if not blocks:
            continue
        if body:
            body.append({"type": "divider"})
        body.extend(blocks)
    room = MAX_HOME_BLOCKS - 1  # the header
    if len(body) > room:
        body = body[: room - 1]
        while body and body[-1]["type"] == "divider":
            body.pop()
        body.append({"type": "context", "elements": [_mrkdwn(escape_mrkdwn(_MORE))]})
    return {"type": "home", "blocks": [header, *body]}
