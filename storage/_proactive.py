"""Values of conversations the bot starts and keeps up on its own: when a conversation is
reminded and expires, where a person can be reached, what a schedule's due start is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from dialogues import ConversationStatus, FlowSettings

from ._records import ConversationRecord

__all__ = [
    "NEVER",
    "NO_ACCOUNT",
    "UNREACHABLE",
    "Chat",
    "Contact",
    "DueStart",
    "FollowUp",
    "Reach",
    "TimedConversation",
]

NO_ACCOUNT: Final = "no_account"
"""Why someone cannot be messaged: no chat account is linked to them yet."""
UNREACHABLE: Final = "unreachable"
"""Why someone cannot be messaged: every chat account of theirs refuses messages."""


@dataclass(frozen=True, slots=True)
class FollowUp:
    """When the scheduler looks at a conversation next, to remind it or to expire it (None:
    never), and how many reminders it had since the student last acted in it.

    The times are kept lazily: set when the conversation starts, and pushed on by the
    scheduler, which counts from the student's latest answer (``TimedConversation``), so a
    turn of the student's never has to write them. They are never later than the true ones.
    """

    remind_at: datetime | None = None
    expires_at: datetime | None = None
    reminders_sent: int = 0

    @classmethod
    def from_start(cls, settings: FlowSettings, now: datetime) -> FollowUp:
        """A new conversation's timers: both count from its start."""
        remind_at = expires_at = None
        if settings.remind_after_s is not None and settings.max_reminders > 0:
            remind_at = now + timedelta(seconds=settings.remind_after_s)
        if settings.expire_after_s is not None:
            expires_at = now + timedelta(seconds=settings.expire_after_s)
        return cls(remind_at, expires_at, 0)


NEVER: Final = FollowUp()


@dataclass(frozen=True, slots=True)
class Chat:
    """Where a person's proactive messages go: a platform and the address on it."""

    platform: str
    address: str


@dataclass(frozen=True, slots=True)
class Reach:
    """How a person can be messaged: their chat, or why there is none (``NO_ACCOUNT``,
    ``UNREACHABLE``)."""

    chat: Chat | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone with a given role (``Turn.people_with_role``): ``dm`` is their most recently
    linked chat account that is not unreachable, addressed by its user id (on Telegram and
    Slack that is always the private chat with the bot, never a group or a channel), None
    when there is none; ``opted_out``: they sent /stop."""

    person_id: int
    handle: str
    display_name: str
    opted_out: bool
    dm: Chat | None


@dataclass(frozen=True, slots=True)
class TimedConversation:
    """A conversation as the scheduler reads it under its person's lock: with its timers and
    what started it."""

    record: ConversationRecord
    status: ConversationStatus
    follow_up: FollowUp
    schedule_id: int | None
    survey_id: int | None
    last_activity: datetime
    """Its start, or the student's latest answer in it."""
    last_prompt_at: datetime | None
    """When the bot last wrote to it on its own: its proactive start, or a reminder."""


@dataclass(frozen=True, slots=True)
class DueStart:
    """A flow due to start for one person: a schedule's occurrence, or a survey waiting.

    ``occurrence`` is the local time it names ("2026-12-09T10:00") or "send" for a survey;
    ``due_at`` the instant it fell due; ``waiting`` why it was held back last (busy,
    quiet_hours) or None.
    """

    id: int
    schedule_id: int | None
    survey_id: int | None
    person_id: int
    flow_id: str
    occurrence: str
    due_at: datetime
    waiting: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schedule_id": self.schedule_id,
            "survey_id": self.survey_id,
            "person_id": self.person_id,
            "flow_id": self.flow_id,
            "occurrence": self.occurrence,
            "due_at": self.due_at.isoformat(),
            "waiting": self.waiting,
        }
