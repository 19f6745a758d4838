"""A turn: one transaction that reads a conversation, saves what the engine did, queues replies.

The person's row is the turn lock. On PostgreSQL the turn starts with ``SELECT ... FOR UPDATE``
on it; on SQLite ``BEGIN IMMEDIATE`` has already taken the database write lock. Conversation
state is read only after that, so two messages from one person never both advance the same
state. This path is hot: every statement is plain SQL run on the driver's cursor (``_sql``),
and on SQLite the turn's first statement also reads the latest open conversation (PostgreSQL
reads it after the lock, in a statement of its own).

A state keeps its recent answers and `/back` history itself; a long conversation's older ones
are rows, its archive (``conversation_answer``, ``conversation_frame``), read only when a turn
uses them and written a batch at a time (see dialogues' ``ConversationState.changes``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from dialogues import (
    ConversationState,
    ConversationStatus,
    Flow,
    Frame,
    Reply,
    StateChanges,
    TurnResult,
)

from . import _sql as q
from ._apply import EffectWriter, Provenance, audit
from ._audit import Viewing, record_views
from ._consent import has_consent
from ._database import Database
from ._outbox import IMMEDIATELY, latest_question, queue_payloads, queue_replies
from ._people import person_from_rows
from ._plan import load_plan
from ._proactive import (
    NO_ACCOUNT,
    UNREACHABLE,
    Chat,
    Contact,
    FollowUp,
    Reach,
    TimedConversation,
)
from ._profile import current_profile
from ._records import Account, ConversationRecord, OutboxRecord, PersonRecord
from ._sql import Sql, utc_value
from ._tables import dumps, loads, utcnow
from .errors import ConflictError, UnknownPersonError, UnknownRecordError

__all__ = ["Batch", "ConversationStore", "Turn"]

log = logging.getLogger("profilebot.storage")

_PERSON_WIDTH = 8  # columns of q.LOCK_PERSON before the conversation's


def _content_hash(flow: Flow) -> str:
    """The flow's own hash; flows built in code without one get a stable stand-in."""
    if flow.content_hash:
        return flow.content_hash
    return hashlib.sha256(f"{flow.id}\0{flow.version}\0{flow.source}".encode()).hexdigest()


class Turn:
    """The inside of one turn's transaction (see the module docstring). Use via ``turn()``."""

    def __init__(
        self,
        sql: Sql,
        person: PersonRecord,
        now: datetime,
        flow_versions: dict[str, int] | None = None,
    ) -> None:
        self.person = person
        self.now = now
        self._sql = sql
        # content hash -> flow_version id, as found in this transaction (a batch shares one)
        self._flow_versions = {} if flow_versions is None else flow_versions
        self._now = sql.time(now)
        # The latest open conversation as read in this turn (id, flow_id, state, version,
        # flow version, content hash): good until this turn writes a conversation.
        self._latest_open: Sequence[Any] | None = None
        self._latest_known = False
        # conversation id -> (version loaded in this turn, latest version this turn wrote), so
        # one record can be saved twice in a turn while a stale record is still refused
        self._versions: dict[int, tuple[int, int]] = {}
        self._over = False  # the transaction ended: archives can no longer be read

    def _set_latest_open(self, row: Sequence[Any] | None) -> None:
        """The latest open conversation, read by the statement that started the turn."""
        self._latest_open, self._latest_known = row, True

    def claim_event(self, key: str) -> bool:
        """Record an inbound platform event; False when it was already processed.

        ON CONFLICT DO NOTHING, so a repeat never aborts the (PostgreSQL) transaction.
        """
        return self._sql.execute(q.CLAIM_EVENT, {"key": key, "now": self._now}) == 1

    def record_views(self, viewing: Viewing, subject_ids: Iterable[int]) -> int:
        """Audit that ``viewing``'s viewer was shown these people's data, in this turn's
        transaction (a summary the scheduler sends goes out with its rows)."""
        return record_views(self._sql, viewing, subject_ids)

    def on_roster(self) -> bool:
        """Whether the person is still on the school's roster (not deactivated by it)."""
        row = self._sql.first(q.PERSON_ACTIVE, {"person_id": self.person.id})
        return row is not None and bool(row[0])

    def event_seen(self, key: str) -> bool:
        """Whether an event with this key was claimed already (claims nothing)."""
        return self._sql.first(q.EVENT_SEEN, {"key": key}) is not None

    def open_conversation(self, flow_id: str | None = None) -> ConversationRecord | None:
        """The person's most recently updated active, paused or stopped conversation."""
        if self._latest_known:
            latest = self._latest_open
            if flow_id is None or latest is None:
                return self._record(latest)
            if latest[1] == flow_id:  # the latest of all is the latest of its flow
                return self._record(latest)
        if flow_id is None:
            self._latest_open = self._sql.first(q.OPEN_ANY, {"person_id": self.person.id})
            self._latest_known = True
            return self._record(self._latest_open)
        params = {"person_id": self.person.id, "flow_id": flow_id}
        return self._record(self._sql.first(q.OPEN_FOR_FLOW, params))

    def _record(self, row: Sequence[Any] | None) -> ConversationRecord | None:
        if row is None:
            return None
        conversation_id, flow_id, state, version, flow_version, content_hash = row[:6]
        self._versions[conversation_id] = (version, version)
        return ConversationRecord(
            id=conversation_id,
            person_id=self.person.id,
            flow_id=flow_id,
            flow_version=flow_version,
            content_hash=content_hash,
            # fresh each call: states mutate
            state=ConversationState.from_json(
                loads(state), archive=_Archive(self, conversation_id)
            ),
            version=version,
        )

    def current_question(self, conversation_id: int) -> OutboxRecord | None:
        """The conversation's latest question message: the only one whose buttons count."""
        return latest_question(self._sql, conversation_id)

    def queue(
        self,
        replies: Sequence[Reply],
        *,
        platform: str,
        address: str,
        not_before: datetime | None = None,
        proactive: bool = False,
    ) -> list[int]:
        """Queue replies outside any conversation, in this turn's transaction (``not_before``
        and ``proactive`` as in ``save``)."""
        return queue_replies(
            self._sql,
            replies,
            person_id=self.person.id,
            conversation_id=None,
            platform=platform,
            address=address,
            now=self.now,
            not_before=not_before,
            proactive=proactive,
        )

    def seen_and_busy(self, key: str) -> tuple[bool, bool]:
        """``event_seen(key)`` and ``busy()`` in one statement (a proactive start asks both)."""
        row = self._sql.first(q.SEEN_AND_BUSY, {"key": key, "person_id": self.person.id})
        assert row is not None
        return bool(row[0]), bool(row[1])

    def busy(self) -> bool:
        """Whether a conversation of the person's is under way (active: not paused, stopped
        or ended). A flow started on the bot's initiative waits for it: never two at once."""
        params = {"person_id": self.person.id}
        return self._sql.first(q.ACTIVE_CONVERSATION, params) is not None

    def reach(self) -> Reach:
        """Where the bot can message the person on its own initiative: their most recently
        linked chat account that is not unreachable (its chat, else the user id, which both
        Telegram and Slack accept as a destination)."""
        rows = self._sql.rows(q.CHATS, {"person_id": self.person.id})
        for platform, chat_id, user_id, unreachable in rows:
            if not unreachable:
                return Reach(Chat(platform, chat_id or user_id))
        return Reach(None, UNREACHABLE if rows else NO_ACCOUNT)

    def people_with_role(self, role: str) -> list[Contact]:
        """Everyone with ``role``, each with their direct messages (see ``Contact``)."""
        rows = self._sql.rows(q.PEOPLE_WITH_ROLE, {"role": role})
        return [
            Contact(person_id, handle, name, bool(opted_out), self._dm(person_id))
            for person_id, handle, name, opted_out in rows
        ]

    def _dm(self, person_id: int) -> Chat | None:
        for platform, _, user_id, unreachable in self._sql.rows(q.CHATS, {"person_id": person_id}):
            if not unreachable:
                return Chat(platform, user_id)
        return None

    def queue_urgent(
        self,
        person_id: int,
        payloads: Sequence[dict[str, Any]],
        *,
        platform: str,
        address: str,
    ) -> list[int]:
        """Queue a safety notice's parts to someone else (staff) in this turn's transaction:
        urgent (delivered first, never held back) and due at once, whatever the clock says.
        They are about the turn's person (the student), whose erasure deletes them. Their
        outbox ids, in order."""
        return queue_payloads(
            self._sql,
            payloads,
            person_id=person_id,
            conversation_id=None,
            platform=platform,
            address=address,
            now=self.now,
            not_before=IMMEDIATELY,
            urgent=True,
            about=(self.person.id,),
        )

    def audit(self, action: str, detail: dict[str, Any]) -> None:
        """An audit row about the turn's person, in this transaction (``detail``: no answer
        text)."""
        audit(self._sql, action, subject_person_id=self.person.id, detail=detail, now=self.now)

    def timed_conversation(self, conversation_id: int) -> TimedConversation | None:
        """One of the person's conversations, with its reminder and expiry times."""
        params = {"id": conversation_id, "person_id": self.person.id}
        row = self._sql.first(q.TIMED_CONVERSATION, params)
        record = self._record(row)
        if row is None or record is None:
            return None
        status, remind_at, expires_at, reminders_sent, schedule_id, survey_id = row[6:12]
        created_at, answered_at, prompted_at = row[12:]
        follow_up = FollowUp(
            None if remind_at is None else utc_value(remind_at),
            None if expires_at is None else utc_value(expires_at),
            int(reminders_sent),
        )
        activity = utc_value(created_at)
        if answered_at is not None:
            activity = max(activity, utc_value(answered_at))
        return TimedConversation(
            record,
            ConversationStatus(status),
            follow_up,
            schedule_id,
            survey_id,
            last_activity=activity,
            last_prompt_at=None if prompted_at is None else utc_value(prompted_at),
        )

    def mark_sent(self, message_ids: Sequence[int]) -> None:
        """Messages the adapter delivered, marked sent in this turn's transaction."""
        for message_id in message_ids:
            params = {"id": message_id, "now": self._now, "pmid": None}
            if self._sql.execute(q.MARK_SENT, params) == 0:
                raise UnknownRecordError(f"no outbox message {message_id}")

    def flow_source(self, content_hash: str) -> str | None:
        """The exact flow file text a conversation is pinned to."""
        source = self._sql.scalar(q.FLOW_SOURCE, {"content_hash": content_hash})
        return None if source is None else str(source)

    def set_follow_up(self, conversation_id: int, follow_up: FollowUp) -> None:
        """Change when a conversation is reminded and expires, leaving its state alone (a
        reminder held back, or given up)."""
        sql = self._sql
        remind_at, expires_at = follow_up.remind_at, follow_up.expires_at
        sql.execute(
            q.SET_FOLLOW_UP,
            {
                "id": conversation_id,
                "person_id": self.person.id,
                "remind_at": None if remind_at is None else sql.time(remind_at),
                "expires_at": None if expires_at is None else sql.time(expires_at),
                "reminders_sent": follow_up.reminders_sent,
            },
        )

    def start_conversation(
        self,
        flow: Flow,
        state: ConversationState,
        *,
        schedule_id: int | None = None,
        survey_id: int | None = None,
        follow_up: FollowUp | None = None,
    ) -> ConversationRecord:
        """A new conversation pinned to this content of the flow (stored once per hash),
        linked to the schedule or survey that started it, if any. It is reminded and expires
        as ``follow_up`` says (default: from the flow's settings, counted from now)."""
        content_hash = _content_hash(flow)
        self._latest_known = False
        changes = state.changes()
        timers = follow_up or FollowUp.from_start(flow.settings, self.now)
        sql = self._sql
        conversation_id = sql.scalar(
            q.INSERT_CONVERSATION,
            {
                "person_id": self.person.id,
                "flow_version_id": self._flow_version_id(flow, content_hash),
                "flow_id": flow.id,
                "step": state.step,
                "status": state.status.value,
                "state": dumps(changes.head),
                "now": self._now,
                "remind_at": None if timers.remind_at is None else sql.time(timers.remind_at),
                "expires_at": None if timers.expires_at is None else sql.time(timers.expires_at),
                "schedule_id": schedule_id,
                "survey_id": survey_id,
            },
        )
        self._write_archive(conversation_id, changes, new=True)
        state.mark_saved(changes)
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
        known = self._flow_versions.get(content_hash)
        if known is not None:
            return known
        found = self._stored_flow_version_id(flow, content_hash)
        self._flow_versions[content_hash] = found
        return found

    def _stored_flow_version_id(self, flow: Flow, content_hash: str) -> int:
        params = {"content_hash": content_hash}
        found = self._sql.scalar(q.FLOW_VERSION_ID, params)
        if found is None:  # new content: store it, unless another turn just did
            found = self._sql.scalar(
                q.CLAIM_FLOW_VERSION,
                {
                    **params,
                    "flow_id": flow.id,
                    "version": flow.version,
                    "source": flow.source,
                    "title": flow.title,
                    "now": self._now,
                },
            )
        if found is None:
            found = self._sql.scalar(q.FLOW_VERSION_ID, params)
        return int(found)

    def end_conversation(
        self, record: ConversationRecord, status: ConversationStatus | str
    ) -> None:
        """Close a conversation as completed, expired... (its state's status changes too)."""
        status = ConversationStatus(status)
        self._check_owner(record)
        self._write_state(record, dataclasses.replace(record.state, status=status))

    def load_profile(self) -> dict[str, Any]:
        """The current profile, private fields included (for the engine's templates)."""
        return current_profile(self._sql.conn, self.person.id, include_private=True)

    def has_consent(self) -> bool:
        """Whether a parent's consent to sensitive (PPRA) questions is on record now."""
        return has_consent(self._sql.conn, self.person.id)

    def load_plan(self) -> dict[str, Any]:
        """The plan as ``PlanStore.plan`` returns it."""
        return load_plan(self._sql.conn, self.person.id)

    def queue_payloads(
        self,
        payloads: Sequence[dict[str, Any]],
        *,
        platform: str,
        address: str,
        not_before: datetime | None = None,
        proactive: bool = False,
        about: Sequence[int] = (),
    ) -> list[int]:
        """Queue messages to the turn's person outside any conversation (the parts of a
        notice: a scheduled summary), in this transaction; their outbox ids, in order.
        ``about``: the other people they tell the turn's person about (a summary's
        students), whose erasure deletes them."""
        return queue_payloads(
            self._sql,
            payloads,
            person_id=self.person.id,
            conversation_id=None,
            platform=platform,
            address=address,
            now=self.now,
            not_before=not_before,
            proactive=proactive,
            about=about,
        )

    def save(
        self,
        record: ConversationRecord,
        result: TurnResult,
        *,
        platform: str,
        address: str,
        follow_up: FollowUp | None = None,
        not_before: datetime | None = None,
        proactive: bool = False,
    ) -> list[int]:
        """Persist what the engine did: answers, effects, the new state, queued replies.

        The conversation's reminder and expiry times stay as they are (a turn of the
        student's leaves them to the scheduler, which counts from the latest answer), unless
        ``follow_up`` sets them, or the conversation ends (no more of either). The replies
        wait until ``not_before`` (default now); ``proactive`` marks them sent on the bot's
        own initiative. Returns their outbox ids, in order, for delivery after commit.
        """
        self._check_owner(record)
        if result.answers:
            self._sql.insert(
                "answer",
                q.ANSWER_COLUMNS,
                [
                    (record.id, a.step_id, a.iteration, dumps(a.value), a.raw, a.status, self._now)
                    for a in result.answers
                ],
            )
        if result.effects:
            prov = Provenance(
                self.person.id, record.id, record.flow_id, record.flow_version, self.now
            )
            EffectWriter(self._sql, prov).apply(result.effects)
        self._write_state(record, result.state)
        if follow_up is not None and result.state.status.is_open:
            self.set_follow_up(record.id, follow_up)
        ids = queue_replies(
            self._sql,
            result.replies,
            person_id=self.person.id,
            conversation_id=record.id,
            platform=platform,
            address=address,
            now=self.now,
            not_before=not_before,
            proactive=proactive,
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
        self._latest_known = False
        changes = state.changes()
        sql = self._sql
        status = state.status
        updated = sql.execute(
            q.WRITE_STATE if status.is_open else q.WRITE_CLOSED_STATE,
            {
                "id": record.id,
                "expected": expected,
                "state": dumps(changes.head),
                "step": state.step,
                "status": status.value,
                "now": self._now,
            },
        )
        if updated != 1:
            raise ConflictError(
                f"conversation {record.id} changed since version {expected} was read; "
                "read it inside the same turn"
            )
        if status is not ConversationStatus.ACTIVE:
            sql.execute(q.WAKE_BUSY, {"person_id": self.person.id, "now": self._now})
        self._write_archive(record.id, changes, new=False)
        state.mark_saved(changes)
        self._versions[record.id] = (loaded, expected + 1)

    def _write_archive(self, conversation_id: int, changes: StateChanges, *, new: bool) -> None:
        """What a save moves to (or out of) the conversation's archive; usually nothing.

        A new conversation has nothing archived to drop.
        """
        sql = self._sql
        params: dict[str, Any] = {"conversation_id": conversation_id}
        if not new:
            if changes.drop_answers:
                sql.execute(q.DROP_ARCHIVED_ANSWERS, params)
            for step_id in changes.removed:
                sql.execute(q.DROP_ARCHIVED_ANSWER, {**params, "step_id": step_id})
            if changes.drop_frames_from is not None:
                sql.execute(
                    q.DROP_ARCHIVED_FRAMES, {**params, "position": changes.drop_frames_from}
                )
        archived = changes.archive_answers
        if archived:
            for n, (step_id, value) in enumerate(archived.items()):
                params[f"step_{n}"] = step_id
                params[f"value_{n}"] = dumps(value)
            sql.execute(q.archive_answers(len(archived)), params)
        first = changes.first_frame
        frames = [
            (conversation_id, first + n, f.step_id, f.iteration, f.goal_key)
            for n, f in enumerate(changes.archive_frames)
        ]
        sql.insert("conversation_frame", q.FRAME_COLUMNS, frames)


class _Archive:
    """A conversation's archived answers and frames, read inside the turn that read it."""

    __slots__ = ("_conversation_id", "_turn")

    def __init__(self, turn: Turn, conversation_id: int) -> None:
        self._turn = turn
        self._conversation_id = conversation_id

    def answer(self, step_id: str) -> Any:
        params = {"conversation_id": self._conversation_id, "step_id": step_id}
        row = self._sql().first(q.ARCHIVED_ANSWER, params)
        if row is None:
            raise KeyError(step_id)
        return loads(row[0])

    def answers(self) -> dict[str, Any]:
        params = {"conversation_id": self._conversation_id}
        return {k: loads(v) for k, v in self._sql().rows(q.ARCHIVED_ANSWERS, params)}

    def frames(self, start: int, stop: int) -> list[Frame]:
        params = {"conversation_id": self._conversation_id, "start": start, "stop": stop}
        rows = self._sql().rows(q.ARCHIVED_FRAMES, params)
        return [Frame(step_id, iteration, goal_key) for step_id, iteration, goal_key in rows]

    def _sql(self) -> Sql:
        if self._turn._over:
            raise ConflictError(
                f"the archive of conversation {self._conversation_id} can be read only inside "
                "the turn that read the conversation"
            )
        return self._turn._sql


class ConversationStore:
    """Opens turns. One store per Database; safe to share between threads."""

    def __init__(self, db: Database, *, now: Callable[[], datetime] = utcnow) -> None:
        """``now`` is the clock a turn's times come from (tests and ``run-due`` move it)."""
        self._db = db
        self._now = now
        # SQLite holds the write lock before the first statement, so that statement may read
        # state too; PostgreSQL must lock the person row first and read after.
        self._read_with_lock = db.dialect == "sqlite"

    @contextmanager
    def turn(self, who: int | Account) -> Iterator[Turn]:
        """One transaction holding the person's turn lock: commit on exit, roll back on error.

        ``who`` is a person id, or the platform account writing (UnknownPersonError when it is
        linked to nobody): then finding the person costs no transaction of its own.
        """
        with self._db.begin() as conn:
            turn = open_turn(Sql(conn), who, self._now, self._read_with_lock)
            try:
                yield turn
            finally:
                turn._over = True

    @contextmanager
    def batch(self, *, now: datetime | None = None) -> Iterator[Batch]:
        """One transaction for the turns of many people (a fan-out): commit on exit, roll
        back on error. ``now`` is the turns' time (default: the store's clock)."""
        with self._db.begin() as conn:
            batch = Batch(Sql(conn), self._now() if now is None else now, self._read_with_lock)
            try:
                yield batch
            finally:
                batch.close()


class Batch:
    """Several people's turns in one transaction: each person's lock is taken when their turn
    is first asked for and held until the transaction ends.

    Take the turns in ascending person id order: two batches that lock people in one order
    never wait for each other in a circle (PostgreSQL).
    """

    def __init__(self, sql: Sql, now: datetime, read_with_lock: bool) -> None:
        self.now = now
        self._sql = sql
        self._read_with_lock = read_with_lock
        self._turns: dict[int, Turn] = {}
        self._flow_versions: dict[str, int] = {}

    def turn(self, person_id: int) -> Turn:
        """The person's turn in this transaction (UnknownPersonError: nobody has that id)."""
        turn = self._turns.get(person_id)
        if turn is None:
            turn = self._turns[person_id] = open_turn(
                self._sql, person_id, self._fixed_now, self._read_with_lock, self._flow_versions
            )
        return turn

    def _fixed_now(self) -> datetime:
        return self.now

    def close(self) -> None:
        for turn in self._turns.values():
            turn._over = True


def open_turn(
    sql: Sql,
    who: int | Account,
    now: Callable[[], datetime],
    read_with_lock: bool,
    flow_versions: dict[str, int] | None = None,
) -> Turn:
    """The turn's first statement, in ``sql``'s transaction: the person's rows, locked
    (SQLite: with the latest open conversation, since BEGIN IMMEDIATE already holds the
    lock); UnknownPersonError when there is no such person. The turn's time is read once
    the lock is held, so turns of one person are stamped in the order they ran."""
    if isinstance(who, int):
        params: dict[str, Any] = {"person_id": who}
    else:
        params = {"platform": who.platform, "workspace": who.workspace, "user_id": who.user_id}
    if read_with_lock:
        rows = sql.rows(q.PERSON_AND_OPEN if isinstance(who, int) else q.ACCOUNT_AND_OPEN, params)
    elif isinstance(who, int):
        rows = sql.rows(q.LOCK_PERSON, params)
    else:
        person_id = sql.scalar(q.PERSON_ID_BY_ACCOUNT, params)
        rows = [] if person_id is None else sql.rows(q.LOCK_PERSON, {"person_id": person_id})
    if not rows:
        raise UnknownPersonError(
            f"no person with id {who}"
            if isinstance(who, int)
            else f"no person linked to that {who.platform} account"
        )
    turn = Turn(sql, person_from_rows(rows), now(), flow_versions)
    if read_with_lock:
        latest = rows[0][_PERSON_WIDTH:]
        turn._set_latest_open(None if latest[0] is None else latest)
    return turn
