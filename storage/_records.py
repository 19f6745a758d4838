"""What the stores hand out: small frozen values, never ORM objects or rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialogues import Attachment, ConversationState, Reply

__all__ = [
    "Account",
    "ArtifactRecord",
    "CheckinGoalUpdateRecord",
    "CheckinRecord",
    "ConversationRecord",
    "GroupRecord",
    "OutboxRecord",
    "PersonRecord",
    "ProfileFactRecord",
    "ReflectionRecord",
    "SurveyRecord",
]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Account:
    """A chat platform account, keyed as ``channel_identity`` keys it: who is writing, before
    anyone has looked up which person that is (``workspace`` is "" where a platform has none)."""

    platform: str
    workspace: str
    user_id: str


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: int
    handle: str
    display_name: str
    first_name: str
    timezone: str | None
    language: str
    roles: tuple[str, ...]
    opted_out: bool

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "handle": self.handle,
            "display_name": self.display_name,
            "first_name": self.first_name,
            "timezone": self.timezone,
            "language": self.language,
            "roles": list(self.roles),
            "opted_out": self.opted_out,
        }


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A class or group of the roster: its students, and the teachers who teach it."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """A flow a teacher (or an admin) sent to one group once; ``sent_by`` None: the command
    line's administrator."""

    id: int
    flow_id: str
    group: GroupRecord
    sent_by: int | None
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileFactRecord:
    """One value of one profile field, with where it came from."""

    id: int
    person_id: int
    field: str
    value: Any
    private: bool
    conversation_id: int | None
    flow_id: str | None
    flow_version: int | None
    step_id: str | None
    origin: str | None
    source: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "field": self.field,
            "value": self.value,
            "private": self.private,
            "conversation_id": self.conversation_id,
            "flow_id": self.flow_id,
            "flow_version": self.flow_version,
            "step_id": self.step_id,
            "origin": self.origin,
            "source": self.source,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """A conversation as loaded inside a turn; ``version`` counts its saved turns."""

    id: int
    person_id: int
    flow_id: str
    flow_version: int
    content_hash: str
    state: ConversationState
    version: int


@dataclass(frozen=True, slots=True)
class CheckinGoalUpdateRecord:
    goal_id: int
    progress: Any
    did: str | None
    blockers: str | None
    next_step: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "goal_id": self.goal_id,
            "progress": self.progress,
            "did": self.did,
            "blockers": self.blockers,
            "next_step": self.next_step,
        }


@dataclass(frozen=True, slots=True)
class CheckinRecord:
    """A check-in; ``mood`` and ``energy`` keep the answer's type (scale int or choice)."""

    id: int
    person_id: int
    conversation_id: int | None
    mood: Any
    energy: Any
    note_for_advisor: str | None
    wants_meeting: bool | None
    highlight: str | None
    created_at: datetime
    goal_updates: tuple[CheckinGoalUpdateRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "mood": self.mood,
            "energy": self.energy,
            "note_for_advisor": self.note_for_advisor,
            "wants_meeting": self.wants_meeting,
            "highlight": self.highlight,
            "at": _iso(self.created_at),
            "goals": [u.to_json() for u in self.goal_updates],
        }


@dataclass(frozen=True, slots=True)
class ReflectionRecord:
    id: int
    person_id: int
    conversation_id: int | None
    fields: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "fields": self.fields,
            "at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    id: int
    person_id: int
    goal_id: int | None
    attachment: Attachment
    conversation_id: int | None
    origin: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "goal_id": self.goal_id,
            **self.attachment.to_json(),
            "conversation_id": self.conversation_id,
            "at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One outbound message; ``payload`` is the Reply as JSON, or ``{"notice": ...}``: a part
    of a message that is not a dialogue turn (``bot.notices``), whose JSON only ``bot`` reads."""

    id: int
    person_id: int | None
    conversation_id: int | None
    platform: str
    address: str
    payload: dict[str, Any]
    status: str
    attempts: int
    not_before: datetime
    last_error: str | None
    platform_message_id: str | None
    created_at: datetime
    sent_at: datetime | None
    proactive: bool = False
    """Sent on the bot's own initiative (not a reply): never to someone who sent /stop."""
    urgent: bool = False
    """A safety notice: delivered before anything else, never held back (quiet hours, pacing
    queues, older messages to the same address)."""

    @property
    def reply(self) -> Reply:
        if self.notice is not None:
            raise ValueError(f"outbox message {self.id} is a notice, not a reply")
        return Reply.from_json(self.payload)

    @property
    def notice(self) -> dict[str, Any] | None:
        """The notice part's JSON (``bot.notices.Notice.from_json`` reads it); None: a reply."""
        notice = self.payload.get("notice")
        return notice if isinstance(notice, dict) else None
