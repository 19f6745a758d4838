"""Conversations as transactions: the one code path every adapter (and the benchmark) uses.

A turn: take the person's lock, de-duplicate the inbound event, load the open conversation,
run the engine on its pinned flow version, save answers, profile/plan effects, the new
state and the outbound replies (outbox) — then commit. Nothing is kept in memory between
turns, so any process can take any message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialogues import (
    WELCOME_BACK,
    ConversationStatus,
    Flow,
    Inbound,
    Reply,
    Step,
    TurnContext,
    TurnResult,
    UnknownFlowError,
)
from storage import (
    Account,
    Chat,
    ConversationRecord,
    ConversationStore,
    Database,
    OutboxRecord,
    PersonRecord,
    Turn,
)

if TYPE_CHECKING:  # the engine loads with the first turn, not with every command
    from dialogues import Engine, FlowRegistry

from .clock import Clock, SystemClock
from .notice_delivery import queue_notice_in
from .notices import Notice
from .safety import Alert, SafetyWatch

__all__ = ["ClosedQuestion", "ConversationService", "TurnOutcome"]

PARKED_WATCH = ":parked-safety-watch"
"""Appended to an event's key: claimed by the safety watch of the message when it is parked."""
SKIPPED = "skipped"
"""Shown on a question closed by /skip, or after too many answers it could not take."""


@dataclass(frozen=True, slots=True)
class ClosedQuestion:
    """The question message a turn closed, so the adapter can take its buttons away.

    ``answer`` is what to show on it: the answer given, "skipped", or None when the question
    was left without one (re-asked after a wrong answer, /back, /help asks it anew).
    """

    outbox_id: int
    platform_message_id: str | None
    reply: Reply
    answer: str | None


@dataclass(slots=True)
class TurnOutcome:
    """What a turn did, for the adapter that delivered the inbound message.

    ``stale`` means the inbound answered a question that is no longer the current one (an
    old button): nothing changed. ``closed`` is set when the caller asked to track questions.
    ``person`` is whom the turn was for, as read inside it.
    """

    replies: list[Reply] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    accepted: tuple[str, str] | None = None
    duplicate: bool = False
    stale: bool = False
    finished: bool = False
    flow_id: str | None = None
    flow: Flow | None = None
    """The flow the conversation runs, as pinned when it started (its file may be gone)."""
    conversation_id: int | None = None
    closed: ClosedQuestion | None = None
    person: PersonRecord | None = None


class ConversationService:
    """Starts, resumes and advances conversations, one transaction per turn."""

    def __init__(
        self,
        db: Database,
        registry: FlowRegistry,
        *,
        default_timezone: str = "UTC",
        clock: Clock | None = None,
        safety: SafetyWatch | None = None,
    ) -> None:
        """``safety`` watches what students type (``bot.safety``); None: nothing is watched."""
        self._store = ConversationStore(db, now=(clock or SystemClock()).now)
        self._registry = registry
        self._default_tz = default_timezone
        self._safety = safety
        self._sensitive: dict[str, frozenset[str]] = {}  # content hash -> sensitive step ids

    @property
    def registry(self) -> FlowRegistry:
        return self._registry

    @property
    def store(self) -> ConversationStore:
        """The turns this service runs in (for work that spans several people's turns)."""
        return self._store

    def open(
        self,
        person_id: int,
        flow: Flow | None,
        *,
        platform: str,
        address: str,
        fresh: bool = False,
        default_flow: Flow | None = None,
        event_key: str | None = None,
        busy_greeting: str | None = None,
        sent: Sequence[int] = (),
        typed: Inbound | None = None,
    ) -> TurnOutcome:
        """Resume the person's open conversation (of ``flow`` when given), or start one.

        Without ``flow``, any open conversation resumes, else ``default_flow`` starts.
        ``fresh`` starts ``flow`` anew even when one of the same flow is open. With
        ``busy_greeting``, a conversation of another flow under way (not paused) comes first:
        it resumes after that greeting and ``flow`` does not start. ``sent`` as in ``handle``.
        ``typed`` is the message that asked for this (a command with words after it, a first
        message): it is watched for safety phrases in this turn, as in ``handle``.
        """
        with self._store.turn(person_id) as turn:
            turn.mark_sent(sent)
            if event_key is not None and not turn.claim_event(event_key):
                return TurnOutcome(duplicate=True)
            alert = self._watch(turn, typed, platform, address)
            return _support_first(
                alert, self._open(turn, flow, platform, address, fresh, default_flow, busy_greeting)
            )

    def _open(
        self,
        turn: Turn,
        flow: Flow | None,
        platform: str,
        address: str,
        fresh: bool,
        default_flow: Flow | None,
        busy_greeting: str | None,
    ) -> TurnOutcome:
        record = None if fresh else turn.open_conversation(flow.id if flow else None)
        greeting = WELCOME_BACK
        if record is None and flow is not None and busy_greeting is not None:
            record = _active(turn.open_conversation())
            greeting = busy_greeting
        if record is not None:
            engine = self._engine(turn, record)
            result = engine.resume(record.state, self._context(turn), greeting)
            return self._save(turn, engine.flow, record, result, platform, address)
        to_start = flow or default_flow
        if to_start is None:
            return TurnOutcome()
        return self._start(turn, to_start, platform, address)

    def handle(
        self,
        who: int | Account,
        inbound: Inbound,
        *,
        platform: str,
        address: str,
        event_key: str | None = None,
        default_flow: Flow | None = None,
        question_ref: int | None = None,
        track_questions: bool = False,
        sent: Sequence[int] = (),
        watch: bool = True,
    ) -> TurnOutcome:
        """Apply one inbound message to the person's open conversation.

        ``who`` is the person's id, or the platform account writing (UnknownPersonError
        when it is linked to nobody). With no open conversation, ``default_flow`` (if any)
        starts; a repeated ``event_key`` changes nothing and is reported as a duplicate.
        ``question_ref`` is the outbox id of the question a button belongs to: unless that is
        the conversation's current question the press is stale and changes nothing.
        ``track_questions`` fills in ``TurnOutcome.closed``. ``sent`` are outbox ids the
        adapter delivered since its last turn: they are marked sent in this turn's transaction
        instead of one of their own (marked only if the turn commits, so never lost).
        The message is watched for safety phrases (``bot.safety``) unless ``watch`` is False:
        a parked message replayed, watched when it was parked.
        """
        with self._store.turn(who) as turn:
            turn.mark_sent(sent)
            if event_key is not None and not turn.claim_event(event_key):
                return TurnOutcome(duplicate=True, person=turn.person)
            alert = self._watch(turn, inbound if watch else None, platform, address)
            outcome = self._handle(
                turn, inbound, platform, address, default_flow, question_ref, track_questions
            )
            outcome = _support_first(alert, outcome)
            outcome.person = turn.person
            return outcome

    def watch_parked(
        self, who: int | Account, inbound: Inbound, *, platform: str, address: str, key: str | None
    ) -> list[Reply]:
        """Watch a message whose turn kept failing, in a turn of its own, so a bug elsewhere in
        the turn never silences a safety alert: the support message queued (if any).

        ``key`` (the event's, when it has one) makes it happen once, should parking fail and
        the event come again.
        """
        with self._store.turn(who) as turn:
            if key is not None and not turn.claim_event(f"{key}{PARKED_WATCH}"):
                return []
            alert = self._watch(turn, inbound, platform, address)
            return [] if alert is None else alert.replies

    def _watch(
        self, turn: Turn, typed: Inbound | None, platform: str, address: str
    ) -> Alert | None:
        if self._safety is None or typed is None:
            return None
        record = turn.open_conversation()
        return self._safety.check(turn, typed, record, platform=platform, address=address)

    def _handle(
        self,
        turn: Turn,
        inbound: Inbound,
        platform: str,
        address: str,
        default_flow: Flow | None,
        question_ref: int | None,
        track_questions: bool,
    ) -> TurnOutcome:
        record = turn.open_conversation()
        if record is None:
            if question_ref is not None:
                return TurnOutcome(stale=True)
            if default_flow is None:
                return TurnOutcome()
            return self._start(turn, default_flow, platform, address)
        question = None
        if question_ref is not None or track_questions:
            question = turn.current_question(record.id)
        if question_ref is not None and (question is None or question.id != question_ref):
            return TurnOutcome(stale=True, conversation_id=record.id, flow_id=record.flow_id)
        engine = self._engine(turn, record)
        result = engine.handle(record.state, inbound, self._context(turn))
        outcome = self._save(turn, engine.flow, record, result, platform, address)
        outcome.closed = _closed(question, result)
        return outcome

    def send(
        self,
        person_id: int,
        replies: list[Reply],
        *,
        platform: str,
        address: str,
        event_key: str | None = None,
        notices: Sequence[Notice] = (),
        notice_address: str | None = None,
        about: Sequence[int] = (),
        typed: Inbound | None = None,
    ) -> TurnOutcome:
        """Queue messages outside a conversation (a card, help, a summary) in one
        de-duplicated turn: the replies to ``address``, then the notices to
        ``notice_address`` (default ``address``), which are ``about`` these people (see
        ``queue_notice_in``). ``typed`` as in ``open``: its support message, if any, comes
        first."""
        with self._store.turn(person_id) as turn:
            if event_key is not None and not turn.claim_event(event_key):
                return TurnOutcome(duplicate=True)
            alert = self._watch(turn, typed, platform, address)
            ids = list(turn.queue(replies, platform=platform, address=address))
            chat = Chat(platform, notice_address or address)
            for notice in notices:
                ids.extend(queue_notice_in(turn, notice, chat, proactive=False, about=about))
            return _support_first(alert, TurnOutcome(replies=list(replies), outbox_ids=ids))

    def _start(self, turn: Turn, flow: Flow, platform: str, address: str) -> TurnOutcome:
        engine = self._registry.engine(flow)
        result = engine.start(self._context(turn))
        record = turn.start_conversation(engine.flow, result.state)
        return self._save(turn, engine.flow, record, result, platform, address)

    def _save(
        self,
        turn: Turn,
        flow: Flow,
        record: ConversationRecord,
        result: TurnResult,
        platform: str,
        address: str,
    ) -> TurnOutcome:
        ids = turn.save(record, result, platform=platform, address=address)
        return TurnOutcome(
            replies=result.replies,
            outbox_ids=ids,
            accepted=result.accepted,
            finished=result.state.finished,
            flow_id=record.flow_id,
            flow=flow,
            conversation_id=record.id,
        )

    def engine_for(self, turn: Turn, record: ConversationRecord) -> Engine:
        """The engine of the flow content ``record`` is pinned to (read in ``turn``)."""
        return self._engine(turn, record)

    def context(self, turn: Turn) -> TurnContext:
        """What the engine may ask about the turn's person (their profile, plan, today)."""
        return self._context(turn)

    def _engine(self, turn: Turn, record: ConversationRecord) -> Engine:
        cached = self._registry.cached_engine(record.content_hash)
        if cached is not None:
            return cached
        source = turn.flow_source(record.content_hash)
        if source is None:  # cannot happen once stored; fall back to the current file
            return self._registry.engine(self._registry.get(record.flow_id))
        return self._registry.engine_for_source(
            record.content_hash, source, name=f"{record.flow_id} v{record.flow_version}"
        )

    def _context(self, turn: Turn) -> TurnContext:
        person = turn.person
        return TurnContext(
            person=_person_scope(person),
            today=self._today(person, turn.now),
            load_profile=turn.load_profile,
            load_plan=turn.load_plan,
            has_consent=turn.has_consent,
            sensitive_steps=self._sensitive_steps,
        )

    def _sensitive_steps(self, flow_id: str) -> frozenset[str]:
        """The steps the flow's current version asks only with consent."""
        try:
            flow = self._registry.get(flow_id)
        except UnknownFlowError:
            return frozenset()
        found = self._sensitive.get(flow.content_hash)
        if found is None:  # once per flow content: a turn must not walk a long flow
            found = frozenset(
                s.id for s in flow.iter_steps() if isinstance(s, Step) and s.sensitive
            )
            self._sensitive[flow.content_hash] = found
        return found

    def _today(self, person: PersonRecord, now: datetime) -> date:
        try:
            zone = ZoneInfo(person.timezone or self._default_tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo(self._default_tz)
        return now.astimezone(zone).date()


def _closed(question: OutboxRecord | None, result: TurnResult) -> ClosedQuestion | None:
    """The question this turn closed, if it closed one (it stays open across /pause, say)."""
    if question is None:
        return None
    step_id = question.reply.step_id
    answer: str | None = None
    if result.accepted is not None and result.accepted[0] == step_id:
        answer = result.accepted[1]
    elif any(a.step_id == step_id and a.status != "answered" for a in result.answers):
        answer = SKIPPED
    elif not (result.state.finished or any(reply.is_question for reply in result.replies)):
        return None
    return ClosedQuestion(question.id, question.platform_message_id, question.reply, answer)


def _support_first(alert: Alert | None, outcome: TurnOutcome) -> TurnOutcome:
    """The support message of a safety alert before the turn's other replies."""
    if alert is not None:
        outcome.replies[:0] = alert.replies
        outcome.outbox_ids[:0] = alert.outbox_ids
    return outcome


def _active(record: ConversationRecord | None) -> ConversationRecord | None:
    if record is None or record.state.status is not ConversationStatus.ACTIVE:
        return None
    return record


def _person_scope(person: PersonRecord) -> Mapping[str, Any]:
    return {
        "first_name": person.first_name,
        "display_name": person.display_name,
        "timezone": person.timezone,
        "language": person.language or "en",
        "handle": person.handle,
    }
