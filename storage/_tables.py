"""The whole domain as SQLAlchemy Core tables: what the stores query and the migrations build.

Plain ``Table`` definitions, no ORM classes: nothing maps rows to objects, and building
mapped classes took longer at start-up than a command's own work. JSON lives in TEXT columns
written with ``dumps`` (``ensure_ascii=False``), so SQLite and PostgreSQL store and compare
the same bytes. Times are UTC everywhere (``UtcDateTime``). The metadata has its own naming
convention, so constraint names are the same on both backends.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import orjson
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from dialogues import GOAL_STATUSES

__all__ = [
    "FAILED_INBOUND_STATUSES",
    "GOAL_STATUSES",
    "OUTBOX_STATUSES",
    "ROLES",
    "SCHEDULE_STATUSES",
    "AnyRow",
    "UtcDateTime",
    "dumps",
    "loads",
    "metadata",
    "utcnow",
]

ROLES = ("student", "advisor", "teacher", "counselor", "admin")
OUTBOX_STATUSES = ("pending", "sent", "failed", "dead")
SCHEDULE_STATUSES = ("active", "paused")
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


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _text(name: str, *, nullable: bool = False, **kwargs: Any) -> Column[str]:
    return Column(name, String, nullable=nullable, **kwargs)


def _long_text(name: str, *, nullable: bool = False, **kwargs: Any) -> Column[str]:
    return Column(name, Text, nullable=nullable, **kwargs)


def _ref(name: str, target: str, *, nullable: bool = False, **kwargs: Any) -> Column[int]:
    return Column(name, Integer, ForeignKey(target), nullable=nullable, **kwargs)


def _flag(name: str, default: bool) -> Column[bool]:
    return Column(name, Boolean, nullable=False, default=default)


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, default=0)


def _time(name: str, *, nullable: bool = False, **kwargs: Any) -> Column[datetime]:
    return Column(name, UtcDateTime, nullable=nullable, **kwargs)


def _now(name: str = "created_at") -> Column[datetime]:
    return _time(name, default=utcnow)


# --- people -----------------------------------------------------------------------------

person = Table(
    "person",
    metadata,
    _id(),
    _text("handle"),
    _text("display_name"),
    _text("first_name"),
    _text("timezone", nullable=True),
    _text("language", default="en"),
    _flag("opted_out", False),
    _now(),
    # Lowercase; how a Slack user is matched to the roster (``users.info``).
    _text("email", nullable=True, index=True, unique=True),
    # False: removed from the school's roster (OneRoster ``tobedeleted``); their data stays,
    # but nothing proactive reaches them and group audiences leave them out.
    _flag("active", True),
    Column("birth_date", Date, nullable=True),
    # The roster system's ``dateLastModified`` of the row last applied to this person.
    _time("roster_modified_at", nullable=True),
    # Set by hand (`consent under-13`): overrides what a birth date says; NULL when not set.
    Column("under_13", Boolean, nullable=True),
    # The roster system's id for this person (OneRoster ``sourcedId``); NULL: added by hand.
    _text("roster_id", nullable=True, index=True, unique=True),
    UniqueConstraint("handle"),
)

person_role = Table(
    "person_role",
    metadata,
    _ref("person_id", "person.id", primary_key=True),
    _text("role", primary_key=True),
    CheckConstraint(_in("role", ROLES), name="role"),
)

# Who a platform user is; ``workspace`` is "" where the platform has none.
channel_identity = Table(
    "channel_identity",
    metadata,
    _id(),
    _text("platform"),
    _text("workspace", default=""),
    _text("platform_user_id"),
    _text("chat_id", nullable=True),
    _ref("person_id", "person.id", index=True),
    _flag("unreachable", False),
    _now(),
    UniqueConstraint("platform", "workspace", "platform_user_id"),
)

# A single-use, expiring code that links a chat account to a roster person.
invite_code = Table(
    "invite_code",
    metadata,
    _id(),
    _text("code", unique=True),
    _ref("person_id", "person.id", index=True),
    _now(),
    _time("expires_at"),
    _time("redeemed_at", nullable=True),
    _text("redeemed_by", nullable=True),  # "platform:workspace:user id" that used it
)

student_group = Table(
    "student_group",
    metadata,
    _id(),
    _text("name"),
    _now(),
    # The roster system's id of the class it is (OneRoster ``sourcedId``), if it is one.
    _text("roster_id", nullable=True, index=True, unique=True),
    UniqueConstraint("name"),
)

group_member = Table(
    "group_member",
    metadata,
    _ref("group_id", "student_group.id", primary_key=True),
    _ref("person_id", "person.id", primary_key=True, index=True),
)

advisor_link = Table(
    "advisor_link",
    metadata,
    _ref("advisor_id", "person.id", primary_key=True),
    _ref("student_id", "person.id", primary_key=True, index=True),
)


# --- profile and plan -------------------------------------------------------------------

# One value of one profile field; the current profile is the latest per field.
profile_fact = Table(
    "profile_fact",
    metadata,
    _id(),
    _ref("person_id", "person.id"),
    _text("field"),
    _long_text("value"),
    _flag("private", False),
    _ref("conversation_id", "conversation.id", nullable=True),
    _text("flow_id", nullable=True),
    Column("flow_version", Integer, nullable=True),
    _text("step_id", nullable=True),
    _text("origin", nullable=True),
    _text("source", default="conversation"),
    _now(),
    Index("ix_profile_fact_person_id_field_id", "person_id", "field", "id"),
)

goal = Table(
    "goal",
    metadata,
    _id(),
    _ref("person_id", "person.id", index=True),
    _long_text("title", default=""),
    _long_text("why", nullable=True),
    _text("category", nullable=True),
    Column("target_date", Date, nullable=True),
    _long_text("support", nullable=True),
    _text("status", default="active"),
    _ref("conversation_id", "conversation.id", nullable=True),
    _text("origin_key", nullable=True),
    _now(),
    _now("updated_at"),
    UniqueConstraint("conversation_id", "origin_key"),
    CheckConstraint(_in("status", GOAL_STATUSES), name="status"),
)

action_step = Table(
    "action_step",
    metadata,
    _id(),
    _ref("goal_id", "goal.id"),
    _long_text("text"),
    _flag("done", False),
    _ref("conversation_id", "conversation.id", nullable=True),
    _text("origin", nullable=True),
    _count("position"),
    _now(),
    Index("ix_action_step_goal_id_position", "goal_id", "position"),
)

# A weekly check-in; ``mood`` and ``energy`` are JSON (a scale number or a choice).
checkin = Table(
    "checkin",
    metadata,
    _id(),
    _ref("person_id", "person.id", index=True),
    _ref("conversation_id", "conversation.id", nullable=True),
    _long_text("mood", nullable=True),
    _long_text("energy", nullable=True),
    _long_text("note_for_advisor", nullable=True),
    Column("wants_meeting", Boolean, nullable=True),
    _long_text("highlight", nullable=True),
    _now(),
    UniqueConstraint("conversation_id"),
)

# One goal's update inside a check-in; ``progress`` is JSON.
checkin_goal_update = Table(
    "checkin_goal_update",
    metadata,
    _id(),
    _ref("checkin_id", "checkin.id"),
    _ref("goal_id", "goal.id", index=True),
    _long_text("progress", nullable=True),
    _long_text("did", nullable=True),
    _long_text("blockers", nullable=True),
    _long_text("next_step", nullable=True),
    UniqueConstraint("checkin_id", "goal_id"),
)

reflection = Table(
    "reflection",
    metadata,
    _id(),
    _ref("person_id", "person.id", index=True),
    _ref("conversation_id", "conversation.id", nullable=True),
    _long_text("fields", default="{}"),
    _now(),
    UniqueConstraint("conversation_id"),
)

artifact = Table(
    "artifact",
    metadata,
    _id(),
    _ref("person_id", "person.id", index=True),
    _ref("goal_id", "goal.id", nullable=True),
    _text("kind"),
    _long_text("file_id", nullable=True),
    _long_text("name", nullable=True),
    _text("mime_type", nullable=True),
    _long_text("url", nullable=True),
    _long_text("caption", nullable=True),
    _ref("conversation_id", "conversation.id", nullable=True),
    _text("origin", nullable=True),
    _now(),
)


# --- conversations ----------------------------------------------------------------------

# Each distinct content of a flow, so a conversation stays pinned to what it started.
flow_version = Table(
    "flow_version",
    metadata,
    _id(),
    _text("flow_id"),
    Column("version", Integer, nullable=False),
    _text("content_hash"),
    _long_text("source"),
    _text("title"),
    _now(),
    UniqueConstraint("content_hash"),
    Index("ix_flow_version_flow_id_version", "flow_id", "version"),
)

# ``state`` is ConversationState JSON (a long conversation's older answers and `/back`
# history are archived in ``conversation_answer`` and ``conversation_frame``); ``version``
# counts saved turns.
conversation = Table(
    "conversation",
    metadata,
    _id(),
    _ref("person_id", "person.id"),
    _ref("flow_version_id", "flow_version.id"),
    _text("flow_id"),
    _text("step"),
    _text("status"),
    _long_text("state"),
    _count("version"),
    _count("reminders_sent"),
    _now(),
    _now("updated_at"),
    # What started it on its own, if anything did; when to remind and to expire it (null:
    # never), kept by every turn from the flow's settings and its last activity.
    _ref("schedule_id", "schedule.id", nullable=True),
    _ref("survey_id", "survey.id", nullable=True, index=True),
    _time("remind_at", nullable=True, index=True),
    _time("expires_at", nullable=True, index=True),
    # When retention removed its transcript (answers, archive, the answers its state held).
    _time("pruned_at", nullable=True),
    Index("ix_conversation_person_id_status_updated_at", "person_id", "status", "updated_at"),
)

answer = Table(
    "answer",
    metadata,
    _id(),
    _ref("conversation_id", "conversation.id", index=True),
    _text("step_id"),
    Column("iteration", Integer, nullable=True),
    _long_text("value"),
    _long_text("raw", default=""),
    _text("status", default="answered"),
    _now(),
)

# An archived answer of a conversation: one its state no longer holds itself, for
# `answers.<step id>` to read when a turn uses it (``answer`` logs every answer given).
conversation_answer = Table(
    "conversation_answer",
    metadata,
    _ref("conversation_id", "conversation.id", primary_key=True),
    _text("step_id", primary_key=True),
    _long_text("value"),
)

# An archived frame of a conversation's `/back` history (a question it asked), at its
# ``position`` in that history, from 0.
conversation_frame = Table(
    "conversation_frame",
    metadata,
    _ref("conversation_id", "conversation.id", primary_key=True),
    Column("position", Integer, primary_key=True),
    _text("step_id"),
    Column("iteration", Integer, nullable=True),
    _text("goal_key", nullable=True),
)

# Platform event ids already processed (de-duplication of redeliveries).
inbound_event = Table(
    "inbound_event",
    metadata,
    _text("key", primary_key=True),
    _time("received_at", default=utcnow, index=True),
)

# Every outbound message; ``payload`` is Reply JSON.
outbox = Table(
    "outbox",
    metadata,
    _id(),
    _ref("person_id", "person.id", nullable=True, index=True),
    _ref("conversation_id", "conversation.id", nullable=True),
    _text("platform"),
    _text("address"),
    _long_text("payload"),
    _text("status", default="pending"),
    _count("attempts"),
    _now("not_before"),
    _long_text("last_error", nullable=True),
    _text("platform_message_id", nullable=True),
    _now(),
    _time("sent_at", nullable=True),
    # Sent on the bot's own initiative (a scheduled start, a reminder, a survey), not as a
    # reply: never delivered to someone who sent /stop since.
    _flag("proactive", False),
    # A delivery process holds the row until then (several processes may deliver).
    _time("claimed_until", nullable=True),
    # A safety notice: claimed before anything else, never behind older messages to its address.
    _flag("urgent", False),
    Index("ix_outbox_status_not_before", "status", "not_before"),
    # A conversation's latest question (stale-button checks, editing it once answered).
    Index("ix_outbox_conversation_id_id", "conversation_id", "id"),
    CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
)

# Whom an outbox row to someone else is about (a safety notice to a counselor, a summary or
# card to an advisor, survey results to a teacher): erasing one of them deletes the row.
outbox_subject = Table(
    "outbox_subject",
    metadata,
    Column(
        "outbox_id",
        Integer,
        ForeignKey("outbox.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    _ref("person_id", "person.id", primary_key=True, index=True),
)

# The send budget of one platform, shared by every process delivering to it: a platform's rate
# limit is the bot's, however many processes send. ``next_at``: where the budget's next free
# send slot starts (wall-clock UTC); a claim of outbox rows reserves slots from there on.
delivery_pace = Table(
    "delivery_pace",
    metadata,
    _text("platform", primary_key=True),
    _time("next_at"),
)

# An inbound message whose turn kept failing, set aside so it stops nobody (a dead letter).
# ``inbound`` (Inbound JSON) and ``visitor`` (who wrote, where replies go) are kept so it can be
# replayed; ``error`` is the exception's class only, never its text.
failed_inbound = Table(
    "failed_inbound",
    metadata,
    _id(),
    _text("platform"),
    _text("event_key", nullable=True, index=True),
    _ref("person_id", "person.id", nullable=True, index=True),
    _long_text("visitor"),
    _long_text("inbound"),
    Column("question_ref", Integer, nullable=True),
    _text("error"),
    Column("attempts", Integer, nullable=False),
    _text("status", default="parked", index=True),
    _now("parked_at"),
    _time("replayed_at", nullable=True),
    CheckConstraint(_in("status", FAILED_INBOUND_STATUSES), name="status"),
)

# --- proactive conversations ------------------------------------------------------------

# A flow that starts on its own, again and again: ``rule`` is an RFC 5545 RRULE (no DTSTART)
# read in each recipient's own time zone from ``starts_on`` at 00:00 local; ``audience`` is
# JSON ``{"everyone": bool, "groups": [names], "people": [handles]}``.
schedule = Table(
    "schedule",
    metadata,
    _id(),
    _text("name", nullable=True),
    _text("flow_id"),
    _text("rule"),
    Column("starts_on", Date, nullable=False),
    _long_text("audience"),
    _text("status", default="active"),
    _now(),
    CheckConstraint(_in("status", SCHEDULE_STATUSES), name="status"),
)

# A flow a teacher sent to one group once.
survey = Table(
    "survey",
    metadata,
    _id(),
    _text("flow_id"),
    _ref("group_id", "student_group.id", index=True),
    _ref("sent_by", "person.id", nullable=True),
    _now("sent_at"),
)

# A flow due to start for one person: one row per (schedule, person), moved on from occurrence
# to occurrence, or per (survey, person). The scheduler looks at the rows whose ``wake_at`` has
# come (``wake_at`` null: nothing more to do); ``waiting`` says why one was held back (busy,
# quiet_hours). ``occurrence`` names the occurrence being worked on (local ISO time, or
# "send" for a survey): with the schedule or survey and the person, what starts exactly once.
due_start = Table(
    "due_start",
    metadata,
    _id(),
    _ref("schedule_id", "schedule.id", nullable=True),
    _ref("survey_id", "survey.id", nullable=True),
    _ref("person_id", "person.id", index=True),
    _text("flow_id"),
    _text("occurrence"),
    _time("due_at"),
    _time("wake_at", nullable=True, index=True),
    _text("waiting", nullable=True),
    UniqueConstraint("schedule_id", "person_id"),
    UniqueConstraint("survey_id", "person_id"),
)

# Days no scheduled conversation starts (``uid``: the iCalendar event it came from, if any).
school_break = Table(
    "school_break",
    metadata,
    _id(),
    _text("name"),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    _text("uid", nullable=True, unique=True),
    _now(),
)

# What happened that an adult may need to see; ``detail`` is JSON, never answer text.
audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    _ref("actor_person_id", "person.id", nullable=True),
    _text("action"),
    _ref("subject_person_id", "person.id", nullable=True, index=True),
    _long_text("detail", default="{}"),
    _now(),
)

# --- consent ------------------------------------------------------------------------------

# A parent's or guardian's decision on sensitive (PPRA) questions for a student: every grant
# and revoke is kept (``given_by``: the name they gave), and the latest decides.
consent = Table(
    "consent",
    metadata,
    _id(),
    _ref("person_id", "person.id", index=True),
    Column("granted", Boolean, nullable=False),
    _text("given_by"),
    _long_text("note", nullable=True),
    _time("recorded_at"),
)

# --- data rights --------------------------------------------------------------------------

# That a person's data was erased, and by whom: the one row left of them. No content, and no
# foreign key (the person row is gone): their handle and former id as plain values, and how
# many rows of each table went (``counts``, JSON ``{table: n}``).
erasure_receipt = Table(
    "erasure_receipt",
    metadata,
    _id(),
    _text("person_handle", index=True),
    Column("person_ref", Integer, nullable=False),
    _time("erased_at"),
    _text("erased_by"),
    _long_text("counts"),
)

# Chores the running bot does now and then (``task``: "prune"), whichever process comes first:
# ``last_run_at`` is claimed with a conditional UPDATE, so two processes never both do one.
housekeeping = Table(
    "housekeeping",
    metadata,
    _text("task", primary_key=True),
    _time("last_run_at"),
)
