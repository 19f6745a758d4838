"""The whole domain as SQLModel tables (definitions only: the turn path uses Core).

JSON lives in TEXT columns written with ``dumps`` (``ensure_ascii=False``), so SQLite and
PostgreSQL store and compare the same bytes. Times are UTC everywhere (``UtcDateTime``).
The tables use their own registry and a naming convention, so constraint names are the same
on both backends and nothing else that subclasses SQLModel leaks into the migrations.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import orjson
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Index,
    MetaData,
    Row,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "FAILED_INBOUND_STATUSES",
    "GOAL_STATUSES",
    "OUTBOX_STATUSES",
    "ROLES",
    "AnyRow",
    "UtcDateTime",
    "dumps",
    "loads",
    "metadata",
    "utcnow",
]

ROLES = ("student", "advisor", "teacher", "admin")
GOAL_STATUSES = ("active", "completed", "paused", "dropped")
OUTBOX_STATUSES = ("pending", "sent", "failed", "dead")
FAILED_INBOUND_STATUSES = ("parked", "replayed")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
"""A result row of any shape (for helpers that read rows by column name)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# Keys as ``json`` writes them; dataclasses and datetimes through ``_json_default`` as before.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
)


def dumps(value: Any) -> str:
    """JSON text as stored: compact, UTF-8 kept readable, identical on both backends.

    orjson writes it, several times faster than ``json`` (every turn stores its state and its
    replies), the same text but for how floats spell exponents; what orjson refuses
    (integers past 64 bits, lone surrogates) the standard library writes.
    """
    try:
        return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    to_json = getattr(value, "to_json", None)  # dialogues value types (Attachment...)
    if callable(to_json):
        return to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both backends (SQLite would silently drop the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every profilebot table (own metadata, see the module docstring)."""


def _now_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


# --- people -----------------------------------------------------------------------------


class Person(_Table, table=True):
    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("handle"),)

    id: int | None = Field(default=None, primary_key=True)
    handle: str
    display_name: str
    first_name: str
    timezone: str | None = None
    language: str = "en"
    opted_out: bool = False
    created_at: datetime = _now_field()
    email: str | None = Field(default=None, index=True, unique=True)
    """Lowercase; how a Slack user is matched to the roster (``users.info``)."""


class PersonRole(_Table, table=True):
    __tablename__ = "person_role"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    role: str = Field(primary_key=True)


class ChannelIdentity(_Table, table=True):
    """Who a platform user is; ``workspace`` is "" where the platform has none."""

    __tablename__ = "channel_identity"
    __table_args__ = (UniqueConstraint("platform", "workspace", "platform_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    workspace: str = ""
    platform_user_id: str
    chat_id: str | None = None
    person_id: int = Field(foreign_key="person.id", index=True)
    unreachable: bool = False
    created_at: datetime = _now_field()


class InviteCode(_Table, table=True):
    """A single-use, expiring code that links a chat account to a roster person."""

    __tablename__ = "invite_code"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = _now_field()
    expires_at: datetime = Field(sa_type=UtcDateTime)
    redeemed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    redeemed_by: str | None = None  # "platform:workspace:user id" that used it


class StudentGroup(_Table, table=True):
    __tablename__ = "student_group"
    __table_args__ = (UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    created_at: datetime = _now_field()


class GroupMember(_Table, table=True):
    __tablename__ = "group_member"

    group_id: int = Field(foreign_key="student_group.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", primary_key=True, index=True)


class AdvisorLink(_Table, table=True):
    __tablename__ = "advisor_link"

    advisor_id: int = Field(foreign_key="person.id", primary_key=True)
    student_id: int = Field(foreign_key="person.id", primary_key=True, index=True)


# --- profile and plan -------------------------------------------------------------------


class ProfileFact(_Table, table=True):
    """One value of one profile field; the current profile is the latest per field."""

    __tablename__ = "profile_fact"
    __table_args__ = (Index("ix_profile_fact_person_id_field_id", "person_id", "field", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    field: str
    value: str = Field(sa_type=Text)
    private: bool = False
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    flow_id: str | None = None
    flow_version: int | None = None
    step_id: str | None = None
    origin: str | None = None
    source: str = "conversation"
    created_at: datetime = _now_field()


class Goal(_Table, table=True):
    __tablename__ = "goal"
    __table_args__ = (
        UniqueConstraint("conversation_id", "origin_key"),
        CheckConstraint(_in("status", GOAL_STATUSES), name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    title: str = Field(default="", sa_type=Text)
    why: str | None = Field(default=None, sa_type=Text)
    category: str | None = None
    target_date: date | None = Field(default=None, sa_type=Date)
    support: str | None = Field(default=None, sa_type=Text)
    status: str = "active"
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    origin_key: str | None = None
    created_at: datetime = _now_field()
    updated_at: datetime = _now_field()


class ActionStep(_Table, table=True):
    __tablename__ = "action_step"
    __table_args__ = (Index("ix_action_step_goal_id_position", "goal_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(foreign_key="goal.id")
    text: str = Field(sa_type=Text)
    done: bool = False
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    origin: str | None = None
    position: int = 0
    created_at: datetime = _now_field()


class Checkin(_Table, table=True):
    """A weekly check-in; ``mood`` and ``energy`` are JSON (a scale number or a choice)."""

    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("conversation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    mood: str | None = Field(default=None, sa_type=Text)
    energy: str | None = Field(default=None, sa_type=Text)
    note_for_advisor: str | None = Field(default=None, sa_type=Text)
    wants_meeting: bool | None = None
    highlight: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _now_field()


class CheckinGoalUpdate(_Table, table=True):
    """One goal's update inside a check-in; ``progress`` is JSON."""

    __tablename__ = "checkin_goal_update"
    __table_args__ = (UniqueConstraint("checkin_id", "goal_id"),)

    id: int | None = Field(default=None, primary_key=True)
    checkin_id: int = Field(foreign_key="checkin.id")
    goal_id: int = Field(foreign_key="goal.id", index=True)
    progress: str | None = Field(default=None, sa_type=Text)
    did: str | None = Field(default=None, sa_type=Text)
    blockers: str | None = Field(default=None, sa_type=Text)
    next_step: str | None = Field(default=None, sa_type=Text)


class Reflection(_Table, table=True):
    __tablename__ = "reflection"
    __table_args__ = (UniqueConstraint("conversation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    fields: str = Field(default="{}", sa_type=Text)
    created_at: datetime = _now_field()


class Artifact(_Table, table=True):
    __tablename__ = "artifact"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    goal_id: int | None = Field(default=None, foreign_key="goal.id")
    kind: str
    file_id: str | None = Field(default=None, sa_type=Text)
    name: str | None = Field(default=None, sa_type=Text)
    mime_type: str | None = None
    url: str | None = Field(default=None, sa_type=Text)
    caption: str | None = Field(default=None, sa_type=Text)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    origin: str | None = None
    created_at: datetime = _now_field()


# --- conversations ----------------------------------------------------------------------


class FlowVersion(_Table, table=True):
    """Each distinct content of a flow, so a conversation stays pinned to what it started."""

    __tablename__ = "flow_version"
    __table_args__ = (
        UniqueConstraint("content_hash"),
        Index("ix_flow_version_flow_id_version", "flow_id", "version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str
    version: int
    content_hash: str
    source: str = Field(sa_type=Text)
    title: str
    created_at: datetime = _now_field()


class Conversation(_Table, table=True):
    """``state`` is ConversationState JSON; ``version`` counts saved turns."""

    __tablename__ = "conversation"
    __table_args__ = (
        Index("ix_conversation_person_id_status_updated_at", "person_id", "status", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    flow_version_id: int = Field(foreign_key="flow_version.id")
    flow_id: str
    step: str
    status: str
    state: str = Field(sa_type=Text)
    version: int = 0
    reminders_sent: int = 0
    created_at: datetime = _now_field()
    updated_at: datetime = _now_field()


class Answer(_Table, table=True):
    __tablename__ = "answer"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    step_id: str
    iteration: int | None = None
    value: str = Field(sa_type=Text)
    raw: str = Field(default="", sa_type=Text)
    status: str = "answered"
    created_at: datetime = _now_field()


class InboundEvent(_Table, table=True):
    """Platform event ids already processed (de-duplication of redeliveries)."""

    __tablename__ = "inbound_event"

    key: str = Field(primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)


class Outbox(_Table, table=True):
    """Every outbound message; ``payload`` is Reply JSON."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_not_before", "status", "not_before"),
        # A conversation's latest question (stale-button checks, editing it once answered).
        Index("ix_outbox_conversation_id_id", "conversation_id", "id"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id")
    platform: str
    address: str
    payload: str = Field(sa_type=Text)
    status: str = "pending"
    attempts: int = 0
    not_before: datetime = _now_field()
    last_error: str | None = Field(default=None, sa_type=Text)
    platform_message_id: str | None = None
    created_at: datetime = _now_field()
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class FailedInbound(_Table, table=True):
    """An inbound message whose turn kept failing, set aside so it stops nobody (dead letter).

    ``inbound`` (Inbound JSON) and ``visitor`` (who wrote, where replies go) are kept so it can
    be replayed; ``error`` is the exception's class only, never its text.
    """

    __tablename__ = "failed_inbound"
    __table_args__ = (CheckConstraint(_in("status", FAILED_INBOUND_STATUSES), name="status"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str
    event_key: str | None = Field(default=None, index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    visitor: str = Field(sa_type=Text)
    inbound: str = Field(sa_type=Text)
    question_ref: int | None = None
    error: str
    attempts: int
    status: str = Field(default="parked", index=True)
    parked_at: datetime = _now_field()
    replayed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Schedule(_Table, table=True):
    """Placeholder for scheduled flows (check-ins, surveys); filled in by a later issue."""

    __tablename__ = "schedule"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    group_id: int | None = Field(default=None, foreign_key="student_group.id")
    flow_id: str
    cron: str
    next_run_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    enabled: bool = True
    created_at: datetime = _now_field()


class AuditLog(_Table, table=True):
    """What happened that an adult may need to see; ``detail`` is JSON, never answer text."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor_person_id: int | None = Field(default=None, foreign_key="person.id")
    action: str
    subject_person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    detail: str = Field(default="{}", sa_type=Text)
    created_at: datetime = _now_field()


def _table(name: str) -> Table:
    return metadata.tables[name]


person = _table("person")
person_role = _table("person_role")
channel_identity = _table("channel_identity")
invite_code = _table("invite_code")
student_group = _table("student_group")
group_member = _table("group_member")
advisor_link = _table("advisor_link")
profile_fact = _table("profile_fact")
goal = _table("goal")
action_step = _table("action_step")
checkin = _table("checkin")
checkin_goal_update = _table("checkin_goal_update")
reflection = _table("reflection")
artifact = _table("artifact")
flow_version = _table("flow_version")
conversation = _table("conversation")
answer = _table("answer")
inbound_event = _table("inbound_event")
outbox = _table("outbox")
failed_inbound = _table("failed_inbound")
schedule = _table("schedule")
audit_log = _table("audit_log")
