"""A notice (``bot.notices``) on its way to a person: queued in the outbox as parts, one row each.

A notice becomes several outbox rows: its text, cut between sections (or lines) into parts
short enough for one message on every platform, then one row per file. Delivery sends a row
at a time, in order per address, and retries a row alone: a rate limit (429) after the text
went out retries only the file that was refused, never the text again. Every row is whole in
itself (a file's bytes travel base64 inside its row's JSON), so it is delivered exactly as it
was queued, whatever is built or changed since.

::

    queued = queue_notice(app, person.id, notice)                      # their chat, proactive
    queued = queue_notice(app, person.id, notice, to=Chat("telegram", chat_id), proactive=False)
    # inside a transaction that holds the person's turn (the scheduler's):
    ids = queue_notice_in(turn, notice, chat, proactive=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from storage import Chat, OutboxRecord, Turn

from .notices import Line, Notice, Section

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "PART_CHARS",
    "NoticeQueued",
    "notice_of",
    "notice_parts",
    "notice_payloads",
    "queue_notice",
    "queue_notice_in",
]

PART_CHARS: Final = 3000
"""Most plain-text characters in one text part: inside Slack's section (3000) and Telegram's
message (4096) limits, so an adapter seldom has to cut a part itself."""


@dataclass(frozen=True, slots=True)
class NoticeQueued:
    """Where a notice went: ``chat`` and its rows, or nowhere (``chat`` None) and why
    (``storage.NO_ACCOUNT``, ``storage.UNREACHABLE``)."""

    chat: Chat | None
    outbox_ids: tuple[int, ...] = ()
    reason: str | None = None


def notice_parts(notice: Notice, limit: int = PART_CHARS) -> list[Notice]:
    """The notice as the notices each outbox row holds: text parts (the title on the first,
    sections cut between lines so that each part's plain text stays within ``limit``), then
    one part per file. Nothing is dropped or reordered."""
    parts: list[Notice] = []
    title = notice.title
    sections: list[Section] = []
    size = len(title)

    def flush() -> None:
        nonlocal title, sections, size
        if title or sections:
            parts.append(Notice(title, tuple(sections)))
        title, sections, size = "", [], 0

    for section in notice.sections:
        for piece in _pieces(section, limit):
            cost = _size(piece)
            if sections and size + cost > limit:
                flush()
            sections.append(piece)
            size += cost
    flush()
    parts.extend(Notice("", (), (file,)) for file in notice.files)
    return parts


def _pieces(section: Section, limit: int) -> list[Section]:
    """The section, cut between lines into pieces within ``limit`` (a longer line alone is
    one piece: the adapter cuts it); the title stays on the first."""
    pieces: list[Section] = []
    lines: list[Line] = []
    size = len(section.title or "")
    title = section.title
    for line in section.lines:
        cost = len(line.text) + 3
        if lines and size + cost > limit:
            pieces.append(Section(title, tuple(lines)))
            title, lines, size = None, [], 0
        lines.append(line)
        size += cost
    pieces.append(Section(title, tuple(lines)))
    return pieces


def _size(section: Section) -> int:
    return len(section.title or "") + sum(len(line.text) + 3 for line in section.lines) + 2


def notice_payloads(notice: Notice) -> list[dict[str, Any]]:
    """The outbox payloads of a notice's parts, in sending order."""
    return [{"notice": part.to_json()} for part in notice_parts(notice)]


def notice_of(message: OutboxRecord) -> Notice | None:
    """The notice part an outbox row holds; None when it holds a dialogue reply."""
    data = message.notice
    return None if data is None else Notice.from_json(data)


def queue_notice(
    app: App,
    person_id: int,
    notice: Notice,
    *,
    to: Chat | None = None,
    proactive: bool = True,
    not_before: datetime | None = None,
    about: Sequence[int] = (),
) -> NoticeQueued:
    """Queue ``notice`` for a person, in one transaction under their turn lock.

    ``to`` None: their chat for messages on the bot's own initiative (their most recently
    linked account that is not unreachable); none: nothing is queued and ``reason`` says
    why. Answering a chat command, pass where it came from (``to``) and ``proactive=False``:
    an answer reaches even someone who sent /stop. Proactive rows never do. ``about``: the
    other people the notice tells them about (see ``queue_notice_in``).
    """
    with app.service.store.turn(person_id) as turn:
        chat = to
        if chat is None:
            reach = turn.reach()
            if reach.chat is None:
                return NoticeQueued(None, (), reach.reason)
            chat = reach.chat
        ids = queue_notice_in(
            turn, notice, chat, proactive=proactive, not_before=not_before, about=about
        )
    return NoticeQueued(chat, tuple(ids))


def queue_notice_in(
    turn: Turn,
    notice: Notice,
    chat: Chat,
    *,
    proactive: bool,
    not_before: datetime | None = None,
    about: Sequence[int] = (),
) -> Sequence[int]:
    """Queue ``notice`` to ``chat`` in ``turn``'s transaction; its outbox ids, in order.

    ``about``: the people other than the recipient whose data the notice shows (a card's
    student, a summary's advisees, survey respondents): erasing one of them deletes its
    rows, which then hold nothing of theirs.
    """
    if notice.files and chat.address.startswith(("https://", "http://")):
        raise ValueError("files cannot go to a Slack response_url: queue them to the person's DM")
    return turn.queue_payloads(
        notice_payloads(notice),
        platform=chat.platform,
        address=chat.address,
        not_before=not_before,
        proactive=proactive,
        about=about,
    )
