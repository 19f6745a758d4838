"""Starting a flow for a person on the bot's own initiative: a scheduled check-in, a survey.

One transaction, the person's turn, decides and starts:

1. opted out (they sent /stop and have not written since): skipped;
2. this origin started for this person before (its exactly-once key, ``Origin.key``, is
   taken): a duplicate, nothing happens;
3. busy (another conversation of theirs is under way): not started; ``start`` and
   ``start_many`` record a wait that the scheduler starts once that conversation ends;
4. the key is claimed, the conversation starts, linked to its schedule or survey, and its
   first messages are queued, proactive, to the person's chat (their most recently linked
   account that is not unreachable), held until ``not_before`` (``IMMEDIATELY`` unless told
   otherwise: a survey sent in the evening may hold them until quiet hours end);
5. without a chat it starts all the same, not yet begun, and nothing is queued: `profilebot
   chat --as H`, their first message, or linking their account later begins it (intro, then
   the first question). ``Start.reason`` says ``no_account`` (or ``unreachable``).

::

    outreach = Outreach(app)
    start = outreach.start(person_id, flow, Origin.survey(survey_id))
    starts = outreach.start_many(
        ids, flow, Origin.survey(survey_id), not_before=outreach.quiet_hold
    )
    # inside a transaction of the caller's (the scheduler's batch):
    start = outreach.start_in(turn, flow, Origin.schedule(schedule_id, occurrence.key))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from dialogues import START, ConversationState, Flow
from storage import (
    IMMEDIATELY,
    SURVEY_OCCURRENCE,
    Chat,
    PersonRecord,
    Turn,
    wait_until_free,
)

from .quiet_hours import recipient_zone

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "BUSY",
    "IMMEDIATELY",
    "INACTIVE",
    "OPTED_OUT",
    "Decision",
    "Origin",
    "Outreach",
    "Start",
]

BUSY: Final = "busy"
OPTED_OUT: Final = "opted_out"
INACTIVE: Final = "inactive"
"""Why nothing started: the roster deactivated them (they left the school)."""
_BATCH: Final = 100  # people per transaction in a fan-out: a student's turn waits at most that


@dataclass(frozen=True, slots=True)
class Origin:
    """What starts a conversation on the bot's initiative: one occurrence of a schedule, or a
    survey. With the person, it names a start that happens at most once (``key``)."""

    schedule_id: int | None = None
    survey_id: int | None = None
    occurrence: str = SURVEY_OCCURRENCE

    def __post_init__(self) -> None:
        if (self.schedule_id is None) == (self.survey_id is None):
            raise ValueError("an origin is a schedule or a survey")

    @classmethod
    def schedule(cls, schedule_id: int, occurrence: str) -> Origin:
        """``occurrence`` is its local time, as ``Occurrence.key`` spells it."""
        return cls(schedule_id=schedule_id, occurrence=occurrence)

    @classmethod
    def survey(cls, survey_id: int) -> Origin:
        return cls(survey_id=survey_id)

    def key(self, person_id: int) -> str:
        """The inbound-event key its start claims for this person."""
        if self.schedule_id is not None:
            return f"start:schedule:{self.schedule_id}:{self.occurrence}:{person_id}"
        return f"start:survey:{self.survey_id}:{person_id}"


class Decision(StrEnum):
    STARTED = "started"
    BUSY = "busy"
    OPTED_OUT = "opted_out"
    DUPLICATE = "duplicate"
    """This origin was started for this person before: nothing happened."""
    LEFT = "left"
    """They are no longer on the school's roster (deactivated): nothing is started."""


@dataclass(frozen=True, slots=True)
class Start:
    """What became of one person's start.

    ``reason``: for STARTED, None, or why nothing could be sent yet (``no_account``,
    ``unreachable``); ``busy`` and ``opted_out`` for those decisions. ``outbox_ids`` are the
    first messages queued, to ``chat``.
    """

    person: PersonRecord
    decision: Decision
    reason: str | None = None
    conversation_id: int | None = None
    outbox_ids: tuple[int, ...] = ()
    chat: Chat | None = None

    @property
    def started(self) -> bool:
        return self.decision is Decision.STARTED


NotBefore = datetime | Callable[[PersonRecord], datetime]
"""A hold for the first messages: one instant, or one per person (``Outreach.quiet_hold``)."""


class Outreach:
    """Starts flows for people on the bot's own initiative (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self._app = app

    def start(
        self, person_id: int, flow: Flow, origin: Origin, *, not_before: NotBefore = IMMEDIATELY
    ) -> Start:
        """One person, in a transaction of its own; a busy person's start waits (recorded)."""
        return self.start_many([person_id], flow, origin, not_before=not_before)[0]

    def start_many(
        self,
        person_ids: Iterable[int],
        flow: Flow,
        origin: Origin,
        *,
        not_before: NotBefore = IMMEDIATELY,
        progress: Callable[[int], None] | None = None,
    ) -> list[Start]:
        """Start ``flow`` for many people, a transaction per hundred, in person id order
        (the order their turn locks are taken in); returns one ``Start`` per person, in that
        order. A busy person's start waits (recorded). ``progress`` hears how many are done
        after each transaction commits."""
        ids = sorted(set(person_ids))
        starts: list[Start] = []
        store = self._app.service.store
        for first in range(0, len(ids), _BATCH):
            chunk: list[Start] = []
            with store.batch(now=self._app.clock.now()) as batch:
                for person_id in ids[first : first + _BATCH]:
                    turn = batch.turn(person_id)
                    hold = not_before(turn.person) if callable(not_before) else not_before
                    start = self.start_in(turn, flow, origin, not_before=hold)
                    if start.decision is Decision.BUSY:
                        wait_until_free(
                            turn,
                            schedule_id=origin.schedule_id,
                            survey_id=origin.survey_id,
                            flow_id=flow.id,
                            occurrence=origin.occurrence,
                        )
                    chunk.append(start)
            starts.extend(chunk)
            if progress is not None:
                progress(len(starts))
        return starts

    def start_in(
        self, turn: Turn, flow: Flow, origin: Origin, *, not_before: datetime = IMMEDIATELY
    ) -> Start:
        """Decide and start inside ``turn``'s transaction; records no wait (the caller
        keeps its own due row)."""
        person = turn.person
        key = origin.key(person.id)
        if person.opted_out:
            return Start(person, Decision.OPTED_OUT, OPTED_OUT)
        if not turn.on_roster():
            return Start(person, Decision.LEFT, INACTIVE)
        seen, busy = turn.seen_and_busy(key)
        if seen:
            return Start(person, Decision.DUPLICATE)
        if busy:
            return Start(person, Decision.BUSY, BUSY)
        turn.claim_event(key)
        reach = turn.reach()
        if reach.chat is None:
            return self._start_waiting(turn, flow, origin, reach.reason)
        chat = reach.chat
        engine = self._app.registry.engine(flow)
        result = engine.start(self._app.service.context(turn))
        record = turn.start_conversation(
            engine.flow, result.state, schedule_id=origin.schedule_id, survey_id=origin.survey_id
        )
        ids = turn.save(
            record,
            result,
            platform=chat.platform,
            address=chat.address,
            not_before=not_before,
            proactive=True,
        )
        return Start(person, Decision.STARTED, None, record.id, tuple(ids), chat)

    def quiet_hold(self, person: PersonRecord) -> datetime:
        """``IMMEDIATELY``, or when the person's quiet hours end if they are in them now."""
        settings = self._app.settings
        now = self._app.clock.now()
        zone = recipient_zone(person.timezone, settings.default_timezone)
        end = settings.quiet.ends_after(now, zone)
        return IMMEDIATELY if end == now else end

    def _start_waiting(self, turn: Turn, flow: Flow, origin: Origin, reason: str | None) -> Start:
        """A conversation not yet begun, for someone the bot cannot message yet."""
        record = turn.start_conversation(
            flow,
            ConversationState(step=START),
            schedule_id=origin.schedule_id,
            survey_id=origin.survey_id,
        )
        return Start(turn.person, Decision.STARTED, reason, record.id)
