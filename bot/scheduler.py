"""The scheduler: starts what is due, reminds, expires, every few seconds on the app's clock.

A tick (``Scheduler.tick(now)``) is what the running bot does at ``now``, and what
``profilebot schedule run-due --now`` does once (the running bot also prunes old transcripts
once a day after a tick: ``housekeep``):

1. conversations whose expiry has come end as ``expired``; those whose reminder has come get
   the waiting question again ("Just a reminder: ..."), unless quiet hours or a school break
   hold it back (it comes when they end), the student said /stop, or no chat can reach them.
   Both count from the student's last activity, found here (a student's turn does not
   write these times; see ``storage.FollowUp``);
2. due starts (``storage.ScheduleStore.claim_due``): an occurrence older than the catch-up
   grace is reported ``missed`` once and the schedule moves on to its first occurrence within
   the grace (so downtime is caught up once, never multiplied); one on a school break day
   (the recipient's date) is skipped; inside quiet hours it waits for their end; then
   ``Outreach.start_in`` decides (started, busy: waits for the other conversation, opted
   out: skipped) and the schedule moves on to its next occurrence.

Every decision writes the row it took forward, so a second tick at the same instant finds
nothing to do. Work is done a batch (a hundred people) per transaction, people in id order
(the order their locks are taken in). A batch that fails is done again one person per
transaction: one that fails alone is logged (its type, never student text), reported
``failed``, moved on, and holds up nobody else.

With nothing due, a tick reads three indexes (due starts' ``wake_at``, conversations'
``remind_at`` and ``expires_at``) and writes nothing. The roster is reconciled with the due
rows when the scheduler starts and every ``reconcile_every`` ticks (about a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from dialogues import ConversationStatus, UnknownFlowError
from storage import (
    ADVISOR_SUMMARY,
    IMMEDIATELY,
    Batch,
    BreakRecord,
    DueClaim,
    DueStart,
    FollowUp,
    Occurrence,
    PruneReport,
    Recurrence,
    ScheduleRecord,
    Turn,
    UnknownRecordError,
    Viewed,
    Viewing,
)

from .audit import SCHEDULED
from .notice_delivery import queue_notice_in
from .notices import Notice
from .offload import Offload
from .outreach import OPTED_OUT, Decision, Origin, Outreach
from .quiet_hours import recipient_zone
from .summary_schedule import NO_COMPOSER, NOTHING_TO_SEND, SummaryComposer, default_composer

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "DEFAULT_GRACE",
    "REMINDER",
    "TICK_INTERVAL",
    "RunItem",
    "RunReport",
    "Scheduler",
]

log = logging.getLogger("profilebot.scheduler")

REMINDER: Final = "Just a reminder:"
"""What a reminder says before the question it repeats."""
DEFAULT_GRACE: Final = timedelta(hours=12)
"""How late an occurrence may still start (the bot was down); older ones are ``missed``."""
TICK_INTERVAL: Final = 5.0
"""Seconds between ticks of a running scheduler."""
_RECONCILE_EVERY: Final = 12
_BATCH: Final = 100
_MAX_VISITS: Final = 3  # a row is taken at most this often per tick (missed, then caught up)
_JUST_BEFORE: Final = timedelta(microseconds=1)  # "after" that instant includes it
_RETRY_EXPIRY: Final = timedelta(days=1)  # after an expiry failed
_SUMMARIES_AHEAD: Final = 1000  # summaries built ahead per tick; later ones as claimed

MISSED: Final = "missed"
BREAK: Final = "break"
QUIET_HOURS: Final = "quiet_hours"
FAILED: Final = "failed"
UNKNOWN_FLOW: Final = "unknown_flow"


@dataclass(frozen=True, slots=True)
class RunItem:
    """One person's part of a tick, as ``schedule run-due --json`` prints it."""

    person: str
    flow: str
    schedule: int | None
    survey: int | None
    reason: str | None = None

    def because(self, reason: str | None) -> RunItem:
        return dataclasses.replace(self, reason=reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "flow": self.flow,
            "schedule": self.schedule,
            "survey": self.survey,
            "reason": self.reason,
        }


@dataclass(slots=True)
class RunReport:
    """What a tick did: started, reminded, expired, waiting (held back), skipped."""

    now: datetime
    started: list[RunItem] = field(default_factory=list)
    reminded: list[RunItem] = field(default_factory=list)
    expired: list[RunItem] = field(default_factory=list)
    waiting: list[RunItem] = field(default_factory=list)
    skipped: list[RunItem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.started, self.reminded, self.expired, self.waiting, self.skipped))

    def extend(self, other: RunReport) -> None:
        for name in ("started", "reminded", "expired", "waiting", "skipped"):
            getattr(self, name).extend(getattr(other, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "started": [i.to_json() for i in self.started],
            "reminded": [i.to_json() for i in self.reminded],
            "expired": [i.to_json() for i in self.expired],
            "waiting": [i.to_json() for i in self.waiting],
            "skipped": [i.to_json() for i in self.skipped],
        }

    def summary(self) -> str:
        """One line: how many of each, and why where there is a why."""
        if not self:
            return "nothing due"
        parts = []
        for name, items in (
            ("started", self.started),
            ("reminded", self.reminded),
            ("expired", self.expired),
            ("waiting", self.waiting),
            ("skipped", self.skipped),
        ):
            reasons: dict[str, int] = {}
            for item in items:
                if item.reason is not None:
                    reasons[item.reason] = reasons.get(item.reason, 0) + 1
            why = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in reasons.items())
            parts.append(f"{name} {len(items)}" + (f" ({why})" if why else ""))
        return ", ".join(parts)


class _Tick:
    """What one tick reads once (in the transaction of the batch at hand) and reuses:
    schedules, their rules, the school breaks."""

    def __init__(self, app: App, now: datetime) -> None:
        self.now = now
        self.batch: Batch | None = None
        self._app = app
        self._schedules: dict[int, tuple[ScheduleRecord, Recurrence] | None] = {}
        self._breaks: list[BreakRecord] | None = None
        self._next: dict[tuple[int, str, datetime], Occurrence | None] = {}
        self.summaries: dict[tuple[int, str], Notice | None] = {}
        """Summaries built before their rows were claimed, by (due row id, occurrence)."""

    def schedule(self, schedule_id: int) -> tuple[ScheduleRecord, Recurrence] | None:
        if schedule_id not in self._schedules:
            try:
                record = self._app.schedules.get(schedule_id, within=self.batch)
                self._schedules[schedule_id] = (record, record.recurrence)
            except UnknownRecordError:  # removed meanwhile
                self._schedules[schedule_id] = None
        return self._schedules[schedule_id]

    def first_after(
        self, schedule_id: int, recurrence: Recurrence, zone: ZoneInfo, instant: datetime
    ) -> Occurrence | None:
        """``recurrence.first_after``, once per schedule, zone and instant in a tick (every
        recipient in one zone has the same next occurrence)."""
        key = (schedule_id, zone.key, instant)
        if key not in self._next:
            self._next[key] = recurrence.first_after(instant, zone)
        return self._next[key]

    def on_break(self, moment: datetime, zone: ZoneInfo) -> BreakRecord | None:
        if self._breaks is None:
            self._breaks = self._app.schedules.breaks(within=self.batch)
        day = moment.astimezone(zone).date()
        return next((b for b in self._breaks if b.covers(day)), None)


class Scheduler:
    """Starts, reminds and expires proactive conversations (see the module docstring).

    Shaped like ``DeliveryWorker``: ``tick(now)`` does one round and ``run(stop)`` ticks every
    ``interval`` seconds on ``app.clock`` until ``stop`` is set. Several schedulers (processes)
    may run against one PostgreSQL database: due rows are claimed with SKIP LOCKED and every
    change is made under the person's turn lock, re-read there.
    """

    def __init__(
        self,
        app: App,
        *,
        grace: timedelta = DEFAULT_GRACE,
        interval: float = TICK_INTERVAL,
        batch: int = _BATCH,
        reconcile_every: int = _RECONCILE_EVERY,
        offload: Offload = asyncio.to_thread,
        composer: SummaryComposer | EllipsisType | None = ...,
    ) -> None:
        """``composer`` builds advisors' summaries (``...``: ``default_composer()``; None:
        none, and summaries due are skipped as ``no_composer``)."""
        if batch < 1 or reconcile_every < 1:
            raise ValueError("batch and reconcile_every must be at least 1")
        self._app = app
        self._composer = default_composer() if isinstance(composer, EllipsisType) else composer
        self._outreach = Outreach(app)
        self._grace = grace
        self._interval = interval
        self._batch = batch
        self._reconcile_every = reconcile_every
        self._offload = offload
        self._ticks = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failed tick (the database briefly away) is logged
        and the next one tries again."""
        while not stop.is_set():
            try:
                report = await self._offload(self._round, self._app.clock.now())
                if report:
                    log.info("scheduler: %s", report.summary())
            except Exception as exc:  # type only: database errors can quote parameters
                log.error("scheduler tick failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

    def tick(
        self, now: datetime | None = None, *, progress: Callable[[int], None] | None = None
    ) -> RunReport:
        """Do everything due at ``now`` (default: the app's clock). ``progress`` hears how
        many people have been handled so far, after each batch."""
        now = (now or self._app.clock.now()).astimezone(UTC)
        if self._ticks % self._reconcile_every == 0:
            self.reconcile(now)
        self._ticks += 1
        tick = _Tick(self._app, now)
        report = RunReport(now)
        self._follow_ups(tick, report, progress)
        self._compose_summaries(tick)
        self._starts(tick, report, progress)
        return report

    def _round(self, now: datetime) -> RunReport:
        """What the running bot does every ``interval``: a tick, then the day's chores."""
        report = self.tick(now)
        self.housekeep(now)
        return report

    def housekeep(self, now: datetime) -> PruneReport | None:
        """The daily prune of old transcripts and messages (``RETENTION_DAYS``), by whichever
        process comes first each day; a failure is logged and tried again next round."""
        app = self._app
        try:
            pruned = app.person_data.prune_if_due(now, keep=app.settings.retention)
        except Exception as exc:  # type only: database errors can quote parameters
            log.error("daily prune failed: %s", type(exc).__name__)
            return None
        if pruned is not None and pruned.total:
            log.info("pruned %d records older than %s", pruned.total, pruned.cutoff.date())
        return pruned

    def reconcile(self, now: datetime) -> int:
        """Due rows in line with the roster and the clock (``ScheduleStore.reconcile``), the
        default summary schedule added once there is an advisor."""
        app = self._app
        app.schedules.seed_summary_default(now=now, default_zone=app.settings.default_timezone)
        return app.schedules.reconcile(
            now=now,
            default_zone=app.settings.default_timezone,
            grace=self._grace,
            flow_settings={f.id: f.settings for f in app.registry.flows()},
        )

    # -- reminders and expiry --------------------------------------------------------------

    def _follow_ups(
        self, tick: _Tick, report: RunReport, progress: Callable[[int], None] | None
    ) -> None:
        handled: set[int] = set()
        while True:
            taken: list[tuple[int, int]] = []
            try:
                self._follow_up_batch(tick, report, handled, taken)
            except Exception as exc:  # then one by one: a failure holds up nobody else
                if not taken:
                    raise  # not any one conversation's: the database itself, say
                _log_failure("a batch of reminders", None, exc)
                for person_id, conversation_id in taken:
                    self._follow_up_alone(tick, report, person_id, conversation_id)
            if not taken:
                return
            handled.update(c for _, c in taken)
            if progress is not None:
                progress(len(handled))

    def _follow_up_batch(
        self, tick: _Tick, report: RunReport, handled: set[int], taken: list[tuple[int, int]]
    ) -> None:
        """One transaction: the due conversations not handled yet in this tick (into
        ``taken``); the report hears of them once it commits."""
        found = RunReport(tick.now)
        with self._app.service.store.batch(now=tick.now) as batch:
            tick.batch = batch
            due = self._app.schedules.follow_ups(batch, limit=self._batch)
            taken.extend((p, c) for p, c in due if c not in handled)
            for person_id, conversation_id in taken:
                self._follow_up(batch.turn(person_id), conversation_id, tick, found)
        report.extend(found)

    def _follow_up_alone(
        self, tick: _Tick, report: RunReport, person_id: int, conversation_id: int
    ) -> None:
        store = self._app.service.store
        found = RunReport(tick.now)
        try:
            with store.batch(now=tick.now) as batch:
                tick.batch = batch
                self._follow_up(batch.turn(person_id), conversation_id, tick, found)
            report.extend(found)
        except Exception as exc:
            _log_failure("a reminder or expiry", person_id, exc)
            with store.batch(now=tick.now) as batch:
                tick.batch = batch
                self._stop_reminding(batch.turn(person_id), conversation_id, tick.now)

    def _stop_reminding(self, turn: Turn, conversation_id: int, now: datetime) -> None:
        """After a reminder or expiry failed: no more reminders, and the expiry is tried
        again a day later (not at every tick)."""
        timed = turn.timed_conversation(conversation_id)
        if timed is not None:
            expires_at = timed.follow_up.expires_at
            retry = None if expires_at is None else max(expires_at, now + _RETRY_EXPIRY)
            turn.set_follow_up(
                conversation_id, FollowUp(None, retry, timed.follow_up.reminders_sent)
            )

    def _follow_up(self, turn: Turn, conversation_id: int, tick: _Tick, report: RunReport) -> None:
        """Expire, remind, or push the conversation's timers on to when that may be due.

        Both count from the student's last activity (its start or their latest answer): a
        turn of the student's does not write the timers, so they are found here, early,
        and moved on. Reminders since that activity are counted afresh.
        """
        timed = turn.timed_conversation(conversation_id)
        if timed is None:
            return
        now, record, timers = tick.now, timed.record, timed.follow_up
        item = RunItem(turn.person.handle, record.flow_id, timed.schedule_id, timed.survey_id)
        if not timed.status.is_open:
            turn.set_follow_up(record.id, FollowUp())
            return
        engine = self._app.service.engine_for(turn, record)
        settings = engine.flow.settings
        # Times after now were set by a later clock (run-due --now far ahead): not yet.
        activity = min(timed.last_activity, now)
        expiry = None
        if settings.expire_after_s is not None:
            expiry = activity + timedelta(seconds=settings.expire_after_s)
            if expiry <= now:
                turn.end_conversation(record, ConversationStatus.EXPIRED)
                report.expired.append(item)
                return

        def before_expiry(at: datetime | None) -> datetime | None:
            return None if at is None or (expiry is not None and at >= expiry) else at

        remind_after = settings.remind_after_s
        if remind_after is None or settings.max_reminders == 0:
            turn.set_follow_up(record.id, FollowUp(None, expiry, 0))
            return
        every = timedelta(seconds=remind_after)
        prompted = (
            timed.last_prompt_at if timed.last_prompt_at and timed.last_prompt_at <= now else None
        )
        sent = timers.reminders_sent if prompted is not None and activity <= prompted else 0
        due = (prompted if sent and prompted is not None else activity) + every
        if due > now:  # the student acted since these timers were set
            turn.set_follow_up(record.id, FollowUp(before_expiry(due), expiry, sent))
            return
        chat = turn.reach().chat
        if (
            sent >= settings.max_reminders
            or timed.status is ConversationStatus.STOPPED
            or turn.person.opted_out
            or chat is None
        ):  # nothing to send now; an answer (or a linked account) may change that
            turn.set_follow_up(record.id, FollowUp(before_expiry(now + every), expiry, sent))
            return
        allowed, reason = self._allowed_from(tick, self._zone(turn))
        if allowed > now:
            held = before_expiry(allowed)
            turn.set_follow_up(record.id, FollowUp(held, expiry, sent))
            if held is not None:
                report.waiting.append(item.because(reason))
            return
        result = engine.resume(record.state, self._app.service.context(turn), REMINDER)
        turn.save(
            record,
            result,
            platform=chat.platform,
            address=chat.address,
            follow_up=FollowUp(before_expiry(now + every), expiry, sent + 1),
            not_before=IMMEDIATELY,
            proactive=True,
        )
        report.reminded.append(item)

    def _allowed_from(self, tick: _Tick, zone: ZoneInfo) -> tuple[datetime, str | None]:
        """The first instant from now that is neither in quiet hours nor on a break day."""
        quiet = self._app.settings.quiet
        at, reason = tick.now, None
        while True:
            end = quiet.ends_after(at, zone)
            if end > at:
                at, reason = end, reason or QUIET_HOURS
                continue
            school_break = tick.on_break(at, zone)
            if school_break is None:
                return at, reason
            after = school_break.ends_on + timedelta(days=1)
            at, reason = datetime.combine(after, time(), tzinfo=zone).astimezone(UTC), BREAK

    # -- starts ---------------------------------------------------------------------------

    def _starts(
        self, tick: _Tick, report: RunReport, progress: Callable[[int], None] | None
    ) -> None:
        visits: dict[int, int] = {}
        handled = 0
        while True:
            taken: list[DueStart] = []
            try:
                count = self._start_batch(tick, report, visits, taken, limit=self._batch)
            except Exception as exc:  # then one by one: a failure holds up nobody else
                if not taken:
                    raise  # not any one start's: the database itself, say
                _log_failure("a batch of starts", None, exc)
                count = sum(self._start_alone(tick, report, visits) for _ in taken)
            if count == 0:
                return
            handled += count
            if progress is not None:
                progress(handled)

    def _start_batch(
        self,
        tick: _Tick,
        report: RunReport,
        visits: dict[int, int],
        taken: list[DueStart],
        *,
        limit: int,
        only: int | None = None,
    ) -> int:
        """One transaction: claim due rows (into ``taken``) and decide each; the report and
        ``visits`` hear of them once it commits. Returns how many rows it decided."""
        found = RunReport(tick.now)
        store, schedules = self._app.service.store, self._app.schedules
        with (
            store.batch(now=tick.now) as batch,
            schedules.claim_due(batch, limit=limit, only=only) as claim,
        ):
            tick.batch = batch
            rows = [r for r in claim.rows if visits.get(r.id, 0) < _MAX_VISITS]
            if not rows and claim.rows:
                log.error("due starts %s keep falling due", [r.id for r in claim.rows])
            for row in rows:
                taken.append(row)
                self._start(claim, row, tick, found)
        report.extend(found)
        for row in rows:
            visits[row.id] = visits.get(row.id, 0) + 1
        return len(rows)

    def _start_alone(self, tick: _Tick, report: RunReport, visits: dict[int, int]) -> int:
        """The next due row in a transaction of its own; one that fails is given up."""
        taken: list[DueStart] = []
        try:
            return self._start_batch(tick, report, visits, taken, limit=1)
        except Exception as exc:
            if not taken:
                raise
            row = taken[-1]
            _log_failure("a start", row.person_id, exc)
        store, schedules = self._app.service.store, self._app.schedules
        with (
            store.batch(now=tick.now) as batch,
            schedules.claim_due(batch, limit=1, only=row.id) as claim,
        ):
            tick.batch = batch
            for claimed in claim.rows:
                self._give_up(claim, claimed, tick, report)
        visits[row.id] = visits.get(row.id, 0) + 1
        return 1

    def _start(self, claim: DueClaim, row: DueStart, tick: _Tick, report: RunReport) -> None:
        turn = claim.batch.turn(row.person_id)
        now = tick.now
        item = RunItem(turn.person.handle, row.flow_id, row.schedule_id, row.survey_id)
        zone = self._zone(turn)
        found = None if row.schedule_id is None else tick.schedule(row.schedule_id)
        if row.schedule_id is not None and (found is None or found[0].status != "active"):
            claim.finish(row)  # removed or paused meanwhile
            return
        recurrence = None if found is None else found[1]
        if row.waiting is None and now - row.due_at > self._grace:
            report.skipped.append(item.because(MISSED))
            if recurrence is None or row.schedule_id is None:
                claim.finish(row)
            else:  # on to the first occurrence within the grace, or after it
                since = now - self._grace - _JUST_BEFORE
                claim.move(row, tick.first_after(row.schedule_id, recurrence, zone, since))
            return
        if recurrence is not None and tick.on_break(row.due_at, zone) is not None:
            report.skipped.append(item.because(BREAK))
            self._move_on(claim, row, recurrence, tick, zone)
            return
        quiet_end = self._app.settings.quiet.ends_after(now, zone)
        if quiet_end > now:
            report.waiting.append(item.because(QUIET_HOURS))
            claim.hold(row, QUIET_HOURS, quiet_end)
            return
        if row.flow_id == ADVISOR_SUMMARY:
            self._summarise(turn, row, tick, item, report)
            self._move_on(claim, row, recurrence, tick, zone)
            return
        try:
            flow = self._app.registry.get(row.flow_id)
        except UnknownFlowError:
            log.error("due start %s: no flow %r any more", row.id, row.flow_id)
            report.skipped.append(item.because(UNKNOWN_FLOW))
            self._move_on(claim, row, recurrence, tick, zone)
            return
        origin = Origin(row.schedule_id, row.survey_id, row.occurrence)
        start = self._outreach.start_in(turn, flow, origin)
        if start.decision is Decision.BUSY:
            report.waiting.append(item.because(start.reason))
            claim.wait_until_free(row)
            return
        if start.decision is Decision.STARTED:
            report.started.append(item.because(start.reason))
        elif start.decision in (Decision.OPTED_OUT, Decision.LEFT):
            report.skipped.append(item.because(start.reason))
        self._move_on(claim, row, recurrence, tick, zone)

    # -- advisors' summaries -----------------------------------------------------------------

    def _compose_summaries(self, tick: _Tick) -> None:
        """Build the summaries due now, before any transaction (see the module docstring);
        one whose composer fails is left to be built when its row is claimed (and fails
        there, reported)."""
        if self._composer is None:
            return
        app = self._app
        due = app.schedules.due_summaries(now=tick.now, limit=_SUMMARIES_AHEAD)
        advisors = {row.person_id: app.people.by_id(row.person_id) for row in due}
        rows = [row for row in due if not advisors[row.person_id].opted_out]
        try:
            notices = self._composer(app, [(advisors[r.person_id], r.due_at) for r in rows])
        except Exception as exc:
            _log_failure("the summaries", None, exc)
            return
        for row, notice in zip(rows, notices, strict=True):
            tick.summaries[(row.id, row.occurrence)] = notice

    def _summarise(
        self, turn: Turn, row: DueStart, tick: _Tick, item: RunItem, report: RunReport
    ) -> None:
        """Queue the advisor's summary for this occurrence, at most once."""
        advisor = turn.person
        if advisor.opted_out:
            report.skipped.append(item.because(OPTED_OUT))
            return
        if self._composer is None:
            report.skipped.append(item.because(NO_COMPOSER))
            return
        reach = turn.reach()
        if reach.chat is None:
            report.skipped.append(item.because(reach.reason))
            return
        if not turn.claim_event(
            f"summary:schedule:{row.schedule_id}:{row.occurrence}:{advisor.id}"
        ):
            return  # sent for this occurrence already
        key = (row.id, row.occurrence)
        if key in tick.summaries:
            notice = tick.summaries.pop(key)
        else:
            [notice] = self._composer(self._app, [(advisor, row.due_at)])
        if notice is None:
            report.skipped.append(item.because(NOTHING_TO_SEND))
            return
        advisees = self._app.roster.advisees_of(advisor.id)
        queue_notice_in(
            turn, notice, reach.chat, proactive=True, not_before=IMMEDIATELY, about=sorted(advisees)
        )
        shown = Viewing(advisor.id, Viewed.SUMMARY, tick.now, SCHEDULED, {"advisor": advisor.id})
        turn.record_views(shown, advisees)
        report.started.append(item)

    def _move_on(
        self,
        claim: DueClaim,
        row: DueStart,
        recurrence: Recurrence | None,
        tick: _Tick,
        zone: ZoneInfo,
    ) -> None:
        """A schedule's row on to its next occurrence after now; a survey's row done."""
        if recurrence is None or row.schedule_id is None:
            claim.finish(row)
        else:
            claim.move(row, tick.first_after(row.schedule_id, recurrence, zone, tick.now))

    def _give_up(self, claim: DueClaim, row: DueStart, tick: _Tick, report: RunReport) -> None:
        """After a failure: reported, and the row moves on as if skipped (holds up nobody)."""
        found = None if row.schedule_id is None else tick.schedule(row.schedule_id)
        recurrence = None if found is None else found[1]
        turn = claim.batch.turn(row.person_id)
        item = RunItem(turn.person.handle, row.flow_id, row.schedule_id, row.survey_id, FAILED)
        report.skipped.append(item)
        self._move_on(claim, row, recurrence, tick, self._zone(turn))

    def _zone(self, turn: Turn) -> ZoneInfo:
        return recipient_zone(turn.person.timezone, self._app.settings.default_timezone)


def _log_failure(what: str, person_id: int | None, error: Exception) -> None:
    # The type only: database and template errors can quote student text.
    whose = "" if person_id is None else f" for person {person_id}"
    log.error("scheduler: %s%s failed: %s", what, whose, type(error).__name__)
