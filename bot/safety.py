"""Safety escalation: a student's typed words that may mean they are not safe reach an adult.

Every message a student types in a conversation is matched against a list of phrases (the
built-in ``bot/data/safety_phrases.yaml``, or ``SAFETY_PHRASES_FILE``) on whole words: case,
accents, punctuation and apostrophes aside, so "skill" never matches "kill". A match, inside
the student's turn and its one transaction:

- queues a notice with the student and what they wrote to every counselor's direct messages
  (never a channel), urgent: ahead of everything else, whatever the quiet hours; when no
  counselor can be messaged, to the admins instead; when nobody can, it is logged at ERROR
  (without the text) and ``profilebot safety list`` shows it as reaching nobody;
- writes a ``safety.alert`` audit row (categories, whom it notified: never the text);
- answers the student with ``SAFETY_MESSAGE``, before the turn's other replies.

A redelivered message is a duplicate turn: it alerts nobody twice. No language model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dialogues import Inbound, Reply
from storage import SAFETY_ALERT, Chat, Contact, ConversationRecord, Turn

from .notice_delivery import notice_payloads
from .notices import Line, Notice, Section, Span, Style
from .safety_phrases import SafetyPhrases, load_phrases

__all__ = ["COUNSELOR", "Alert", "SafetyWatch"]

log = logging.getLogger("profilebot.safety")

COUNSELOR: Final = "counselor"
"""The role that receives safety notices."""
_FALLBACK_ROLE: Final = "admin"


@dataclass(frozen=True, slots=True)
class Alert:
    """What one typed message raised: the reply for the student, queued in the turn."""

    replies: list[Reply]
    outbox_ids: list[int]


class SafetyWatch:
    """Matches a turn's typed text and, on a match, raises the alert inside the turn."""

    def __init__(self, phrases_file: Path | None, message: str) -> None:
        self._phrases_file = phrases_file
        self._message = message

    @property
    def phrases(self) -> SafetyPhrases:
        return load_phrases(self._phrases_file)

    def check(
        self,
        turn: Turn,
        inbound: Inbound,
        record: ConversationRecord | None,
        *,
        platform: str,
        address: str,
    ) -> Alert | None:
        """Raise an alert in ``turn`` when the student typed a safety phrase; None otherwise."""
        text = _typed(inbound)
        if not text:
            return None
        categories = self.phrases.categories(text)
        if not categories:
            return None
        notified = self._notify(turn, _notice(turn, text, categories, record))
        turn.audit(
            SAFETY_ALERT,
            {
                "flow": None if record is None else record.flow_id,
                "step": None if record is None else record.state.step,
                "categories": categories,
                "notified": notified,
            },
        )
        if notified:
            log.info("safety alert for person %s: %d notified", turn.person.id, len(notified))
        else:
            log.error(
                "safety alert for person %s reached nobody: no counselor or admin can be "
                "messaged (see profilebot safety list)",
                turn.person.id,
            )
        reply = Reply(self._message)
        return Alert([reply], turn.queue([reply], platform=platform, address=address))

    def _notify(self, turn: Turn, notice: Notice) -> list[dict[str, Any]]:
        """Queue the notice to every counselor who can be messaged, else every admin; who
        got it (handle, outbox ids)."""
        payloads = notice_payloads(notice)
        for role in (COUNSELOR, _FALLBACK_ROLE):
            contacts = _reachable(turn.people_with_role(role), turn.person.id)
            if contacts:
                return [
                    {
                        "person": c.handle,
                        "outbox_ids": turn.queue_urgent(
                            c.person_id, payloads, platform=chat.platform, address=chat.address
                        ),
                    }
                    for c, chat in contacts
                ]
        return []


def _reachable(contacts: Sequence[Contact], student_id: int) -> list[tuple[Contact, Chat]]:
    """Those who can be messaged (a chat account not unreachable, no /stop), with their DM."""
    return [
        (c, c.dm)
        for c in contacts
        if c.dm is not None and not c.opted_out and c.person_id != student_id
    ]


def _typed(inbound: Inbound) -> str:
    """The text the student typed: a message, or a shared file's caption (its text too)."""
    if inbound.text:
        return inbound.text
    return (inbound.attachment.caption or "") if inbound.attachment is not None else ""


def _notice(
    turn: Turn, text: str, categories: Sequence[str], record: ConversationRecord | None
) -> Notice:
    student = turn.person
    where = (
        f"Answering {record.flow_id}, question {record.state.step}."
        if record is not None
        else "Outside any conversation."
    )
    return Notice(
        title=f"Safety alert: {student.display_name}",
        sections=(
            Section(
                None,
                (
                    Line.of(
                        Span(student.display_name, Style.BOLD),
                        f" ({student.handle}) wrote something that may mean they are not "
                        f"safe ({', '.join(c.replace('_', ' ') for c in categories)}).",
                    ),
                    Line.of(where),
                ),
            ),
            Section("What they wrote", (Line.of(Span(text, Style.ITALIC)),)),
            Section(
                None,
                (
                    Line.of(
                        "Please check on them today. Only the school's safety contacts get "
                        "this message; the student was shown where to find help."
                    ),
                ),
            ),
        ),
    )
