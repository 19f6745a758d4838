"""A turn: one transaction that reads a conversation, saves what the engine did, queues replies.

The person's row is the turn lock. On PostgreSQL the turn starts with ``SELECT ... FOR UPDATE``
on it; on SQLite ``BEGIN IMMEDIATE`` has already taken the database write lock. Conversation
state is read only after that, so two messages from one person never both advance the same
state. This path is hot: Core statements built once at import, no ORM session, no reflection.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dialogues import ConversationState, ConversationStatus, Flow, TurnResult

from ._apply import EffectWriter, Provenance
from ._database import Database
from ._outbox import queue_replies
from ._people import load_person
from ._plan import load_plan
from ._profile import current_profile
from ._records import ConversationRecord, PersonRecord
from ._tables import answer, conversation, dumps, flow_version, inbound_event, loads, utcnow
from .errors import ConflictError, UnknownPersonError

__all__ = ["ConversationStore", "Turn"]

log = logging.getLogger("profilebot.storage")

_OPEN_STATUSES = tuple(s.value for s in ConversationStatus if s.is_open)

# rowcount is 1 when the key is new, 0 when it was seen (SQLAlchemy only keeps an INSERT's
# rowcount when asked to).
_CLAIM: dict[str, Executable] = {
    "postgresql": pg_insert(inbound_event)
    .on_conflict_do_nothing(index_elements=["key"])
    .execution_options(preserve_rowcount=True),
    "sqlite": sqlite_insert(inbound_event)
    .on_conflict_do_nothing(index_elements=["key"])
    .execution_options(preserve_rowcount=True),
}
_OPEN_ANY = (
    select(
        conversation.c.id,
        conversation.c.flow_id,
        conversation.c.state,
        conversation.c.version,
        flow_version.c.version.label("flow_version"),
        flow_version.c.content_hash,
    )
    .join(flow_version, flow_version.c.id == conversation.c.flow_version_id)
    .where(
        conversation.c.person_id == bindparam("person_id"),
        # literal values, not an expanding parameter: one fixed SQL string, cached once
        conversation.c.status.in_([literal_column(f"'{s}'") for s in _OPEN_STATUSES]),
    )
    .order_by(conversation.c.updated_at.desc(), conversation.c.id.desc())
    .limit(1)
)
_OPEN_FOR_FLOW = _OPEN_ANY.where(conversation.c.flow_id == bindparam("flow_id"))
_FLOW_SOURCE = select(flow_version.c.source).where(
    flow_version.c.content_hash == bindparam("content_hash")
)
_CLAIM_FLOW_VERSION: dict[str, Executable] = {
    "postgresql": pg_insert(flow_version).on_conflict_do_nothing(index_elements=["content_hash"]),
    "sqlite": sqlite_insert(flow_version).on_conflict_do_nothing(index_elements=["content_hash"]),
}
_FLOW_VERSION_ID = select(flow_version.c.id).where(
    flow_version.c.content_hash == bindparam("content_hash")
)
_INSERT_ANSWERS = insert(answer)
_INSERT_CONVERSATION = insert(conversation).returning(conversation.c.id)
_WRITE_STATE = (
    update(conversation)
    .where(
        conversation.c.id == bindparam("b_id"),
        conversation.c.version == bindparam("b_expected"),
    )
    .values(
        state=bindparam("b_state"),
        step=bindparam("b_step"),
        status=bindparam("b_status"),
        version=conversation.c.version + 1,
        updated_at=bindparam("b_now"),
    )
)


def _content_hash(flow: Flow) -> str:
    """The flow's own hash; flows built in code without one get a stable stand-in."""
    if flow.content_hash:
        return flow.content_hash
    return hashlib.sha256(f"{flow.id}\0{flow.version}\0{flow.source}".encode()).hexdigest()


class Turn:
    """The inside of one turn's transaction (see the module docstring). Use via ``turn()``."""

    def __init__(self, conn: Connection, person: PersonRecord, now: datetime) -> None:
        self.person = person
        self.now = now
        self._conn = conn
        # conversation id -> (version loaded in this turn, latest version this turn wrote), so
        # one record can be saved twice in a turn while a stale record is still refused
        self._versions: dict[int, tuple[int, int]] = {}

    def claim_event(self, key: str) -> bool:
        """Record an inbound platform event; False when it was already processed.

        ON CONFLICT DO NOTHING, so a repeat never aborts the (PostgreSQL) transaction.
        """
        stmt = _CLAIM[self._conn.dialect.name]
        result = self._conn.execute(stmt, {"key": key, "received_at": self.now})
        return bool(result.rowcount == 1)

    def open_conversation(self, flow_id: str | None = None) -> ConversationRecord | None:
        """The person's most recently updated active, paused or stopped conversation."""
        if flow_id is None:
            row = self._conn.execute(_OPEN_ANY, {"person_id": self.person.id}).first()
        else:
            params = {"person_id": self.person.id, "flow_id": flow_id}
            row = self._conn.execute(_OPEN_FOR_FLOW, params).first()
        if row is None:
            return None
        self._versions[row.id] = (row.version, row.version)
        return ConversationRecord(
            id=row.id,
            person_id=self.person.id,
            flow_id=row.flow_id,
            flow_version=row.flow_version,
            content_hash=row.content_hash,
            state=ConversationState.from_json(loads(row.state)),
            version=row.version,
        )

    def flow_source(self, content_hash: str) -> str | None:
        """The exact flow file text a conversation is pinned to."""
        source = self._conn.execute(_FLOW_SOURCE, {"content_hash": content_hash}).scalar()
        return None if source is None else str(source)

    def start_conversation(self, flow: Flow, state: ConversationState) -> ConversationRecord:
        """A new conversation pinned to this content of the flow (stored once per hash)."""
        content_hash = _content_hash(flow)
        conversation_id = self._conn.execute(
            _INSERT_CONVERSATION,
            {
                "person_id": self.person.id,
                "flow_version_id": self._flow_version_id(flow, content_hash),
                "flow_id": flow.id,
                "step": state.step,
                "status": state.status.value,
                "state": dumps(state.to_json()),
                "version": 0,
                "reminders_sent": 0,
                "created_at": self.now,
                "updated_at": self.now,
            },
        ).scalar_one()
        self._versions[conversation_id] = (0, 0)
        return ConversationRecord(
            id=conversation_id,
            person_id=self.person.id,
            flow_id=flow.id,
            flow_version=flow.version,
            content_hash=content_hash,
            state=state,
            version=0,
        )

    def _flow_version_id(self, flow: Flow, content_hash: str) -> int:
        params = {"content_hash": content_hash}
        found = self._conn.execute(_FLOW_VERSION_ID, params).scalar()
        if found is not None:
            return int(found)
        stmt = _CLAIM_FLOW_VERSION[self._conn.dialect.name]
        self._conn.execute(
            stmt,
            {
                **params,
                "flow_id": flow.id,
                "version": flow.version,
                "source": flow.source,
                "title": flow.title,
                "created_at": self.now,
            },
        )
        return int(self._conn.execute(_FLOW_VERSION_ID, params).scalar_one())

    def end_conversation(
        self, record: ConversationRecord, status: ConversationStatus | str
    ) -> None:
        """Close a conversation as completed, expired... (its state's status changes too)."""
        status = ConversationStatus(status)
        self._check_owner(record)
        state = ConversationState.from_json({**record.state.to_json(), "status": status.value})
        self._write_state(record, state)

    def load_profile(self) -> dict[str, Any]:
        """The current profile, private fields included (for the engine's templates)."""
        return current_profile(self._conn, self.person.id, include_private=True)

    def load_plan(self) -> dict[str, Any]:
        """The plan as ``PlanStore.plan`` returns it."""
        return load_plan(self._conn, self.person.id)

    def save(
        self, record: ConversationRecord, result: TurnResult, *, platform: str, address: str
    ) -> list[int]:
        """Persist what the engine did: answers, effects, the new state, queued replies.

        Returns the outbox ids of the replies, in order, for delivery after commit.
        """
        self._check_owner(record)
        if result.answers:
            rows = [
                {
                    "conversation_id": record.id,
                    "step_id": a.step_id,
                    "iteration": a.iteration,
                    "value": dumps(a.value),
                    "raw": a.raw,
                    "status": a.status,
                    "created_at": self.now,
                }
                for a in result.answers
            ]
            self._conn.execute(_INSERT_ANSWERS, rows[0] if len(rows) == 1 else rows)
        if result.effects:
            prov = Provenance(
                self.person.id, record.id, record.flow_id, record.flow_version, self.now
            )
            EffectWriter(self._conn, prov).apply(result.effects)
        self._write_state(record, result.state)
        ids = queue_replies(
            self._conn,
            result.replies,
            person_id=self.person.id,
            conversation_id=record.id,
            platform=platform,
            address=address,
            now=self.now,
        )
        log.debug(
            "saved turn of conversation %s: %d answers, %d effects, %d replies",
            record.id,
            len(result.answers),
            len(result.effects),
            len(ids),
        )
        return ids

    def _check_owner(self, record: ConversationRecord) -> None:
        if record.person_id != self.person.id:
            raise ConflictError(
                f"conversation {record.id} belongs to person {record.person_id}, "
                f"not to person {self.person.id} whose turn this is"
            )

    def _write_state(self, record: ConversationRecord, state: ConversationState) -> None:
        loaded, expected = self._versions.get(record.id, (record.version, record.version))
        if record.version != loaded:  # not the record this turn loaded: check its own version
            loaded = expected = record.version
        result = self._conn.execute(
            _WRITE_STATE,
            {
                "b_id": record.id,
                "b_expected": expected,
                "b_state": dumps(state.to_json()),
                "b_step": state.step,
                "b_status": state.status.value,
                "b_now": self.now,
            },
        )
        if result.rowcount != 1:
            raise ConflictError(
                f"conversation {record.id} changed since version {expected} was read; "
                "read it inside the same turn"
            )
        self._versions[record.id] = (loaded, expected + 1)


class ConversationStore:
    """Opens turns. One store per Database; safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock_person = db.dialect == "postgresql"

    @contextmanager
    def turn(self, person_id: int) -> Iterator[Turn]:
        """One transaction holding the person's turn lock: commit on exit, roll back on error."""
        with self._db.begin() as conn:
            person = load_person(conn, person_id, lock=self._lock_person)
            if person is None:
                raise UnknownPersonError(f"no person with id {person_id}")
            yield Turn(conn, person, utcnow())
