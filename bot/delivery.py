"""Platform-neutral delivery of the outbox: pacing, ordering, retries and giving up.

Turns only queue messages (``storage.OutboxStore``); this worker sends them after the turn has
committed, so a crash between "answer saved" and "reply sent" loses nothing. Adapters supply a
``Sender`` that knows one platform's API and translates its answer into a ``SendResult``.

Guarantees: messages to one address go out in outbox order (an earlier message that must be
retried holds back the later ones); sends stay inside the ``Pacer``'s limits; delivery is
at-least-once (a crash after the platform accepted a message but before ``mark_sent`` resends it).
Any number of workers, in any number of processes, may deliver one platform: they claim the
rows they send (a process that dies holding some delays them by at most ``CLAIM_LEASE``) and
share the platform's overall rate. Replies go before proactive messages, which never reach
someone who sent /stop.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from storage import OutboxClaim, OutboxRecord, OutboxStore

from .clock import Clock
from .offload import Offload

__all__ = [
    "CLAIM_LEASE",
    "MAX_BACKOFF",
    "DeliveryWorker",
    "Pacer",
    "SendKind",
    "SendResult",
    "Sender",
]

log = logging.getLogger("profilebot.delivery")

MAX_BACKOFF = 300.0
"""Longest wait between attempts of a failing message, in seconds."""
CLAIM_LEASE = 10.0
"""Seconds a claim holds messages for the worker that claimed them, renewed while it still
holds them: one that dies holding some delays them by at most this long (another process, or
the next start, takes them after)."""
_SLOTS_AHEAD = 1.0  # a reservation takes at most this many seconds of the platform's rate
_SLOTS_GRACE = 0.05  # seconds past its slots' end a worker may still start a send (jitter)
_SLOTS_SLACK = 0.001  # so that asking again for slots is not a hair too early

# Far enough ahead that every pending message counts as due: used to find an address's oldest
# pending message whatever its ``not_before``.
_FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)
# Float rounding after sleeping exactly ``wait_time`` must not cause another tiny sleep.
_EPSILON = 1e-9


class SendKind(StrEnum):
    SENT = "sent"
    RETRY_AFTER = "retry_after"
    UNREACHABLE = "unreachable"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the platform said about one send; build it with the class methods."""

    kind: SendKind
    platform_message_id: str | None = None
    delay: float = 0.0
    error: str = ""

    @classmethod
    def sent(cls, platform_message_id: str | None = None) -> SendResult:
        return cls(SendKind.SENT, platform_message_id=platform_message_id)

    @classmethod
    def retry_after(cls, seconds: float, error: str) -> SendResult:
        """The platform's rate limit (Telegram 429 ``retry_after``, Slack ``Retry-After``)."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"retry_after must be a finite number >= 0, not {seconds!r}")
        return cls(SendKind.RETRY_AFTER, delay=float(seconds), error=error)

    @classmethod
    def unreachable(cls, error: str) -> SendResult:
        """The recipient is gone for good (blocked the bot, deleted): never retried."""
        return cls(SendKind.UNREACHABLE, error=error)

    @classmethod
    def failed(cls, error: str) -> SendResult:
        """A transient failure (5xx, network): retried with exponential backoff."""
        return cls(SendKind.FAILED, error=error)


class Sender(Protocol):
    """One platform's send call; an adapter implements it."""

    platform: str

    async def send(self, message: OutboxRecord) -> SendResult: ...


class _Bucket:
    """A token bucket kept as GCRA: one "theoretical arrival time" per bucket.

    A send is allowed once ``now >= tat - tolerance``; each send pushes ``tat`` one interval
    on. A bucket whose ``tat`` has passed is indistinguishable from a new one, so it can be
    forgotten without changing behaviour.
    """

    __slots__ = ("interval", "tolerance")

    def __init__(self, rate: float, burst: int) -> None:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval

    def wait(self, tat: float | None, now: float) -> float:
        if tat is None:
            return 0.0
        wait = tat - self.tolerance - now
        return wait if wait > _EPSILON else 0.0

    def after_send(self, tat: float | None, now: float) -> float:
        return max(tat if tat is not None else now, now) + self.interval

    def held_until(self, tat: float | None, until: float) -> float:
        blocked = until + self.tolerance
        return blocked if tat is None else max(tat, blocked)


class Pacer:
    """Keeps sends inside the platform's limits: one bucket per address plus one overall.

    Defaults follow Telegram: at most one message per second to one chat, and 25 per second
    overall — under Telegram's 30, so network jitter bunching a few sends together cannot
    push a one-second window over its limit. With ``burst`` 1 any window of ``w`` seconds
    holds at most ``1 + rate * w`` sends; a larger burst lets short replies go out together.
    Pure: the caller passes the clock, so tests need no sleeping. Idle addresses are
    forgotten, so memory follows the active ones.
    """

    def __init__(
        self,
        *,
        per_address_rate: float = 1.0,
        per_address_burst: int = 1,
        overall_rate: float = 25.0,
        overall_burst: int = 1,
        max_addresses: int = 10_000,
    ) -> None:
        self._address = _Bucket(per_address_rate, per_address_burst)
        self._overall = _Bucket(overall_rate, overall_burst)
        self._overall_rate = overall_rate
        self._tats: dict[str, float] = {}
        self._overall_tat: float | None = None
        self._max_addresses = max_addresses
        self._sweep_at = max_addresses

    @property
    def overall_rate(self) -> float:
        """Sends per second overall: the platform's budget, shared by every process."""
        return self._overall_rate

    def wait_time(self, address: str, now: float) -> float:
        """Seconds until ``address`` may be sent to; 0 when it may be now."""
        return max(self._address.wait(self._tats.get(address), now), self.overall_wait(now))

    def overall_wait(self, now: float) -> float:
        """Seconds until anything at all may be sent (every address waits at least this)."""
        return self._overall.wait(self._overall_tat, now)

    def record(self, address: str, now: float) -> None:
        """Count a send made at ``now``."""
        self._tats[address] = self._address.after_send(self._tats.get(address), now)
        self._overall_tat = self._overall.after_send(self._overall_tat, now)
        if len(self._tats) > self._sweep_at:
            self._sweep(now)

    def hold(self, address: str, until: float) -> None:
        """Send nothing more to ``address`` before ``until`` (the platform asked us to wait)."""
        self._tats[address] = self._address.held_until(self._tats.get(address), until)

    def hold_all(self, until: float) -> None:
        """Send nothing at all before ``until``."""
        self._overall_tat = self._overall.held_until(self._overall_tat, until)

    def tracked(self) -> int:
        """How many addresses are remembered (for tests and metrics)."""
        return len(self._tats)

    def _sweep(self, now: float) -> None:
        self._tats = {a: tat for a, tat in self._tats.items() if tat > now}
        # Sweep again only after the map doubles, so sweeping stays amortised O(1) per send.
        self._sweep_at = max(self._max_addresses, 2 * len(self._tats))


@dataclass(slots=True)
class _Lease:
    """Messages this process holds under one claim, until ``until`` unless renewed (at
    ``renew_at``, monotonic) while it still holds them."""

    until: datetime
    renew_at: float
    ids: set[int]


@dataclass(slots=True)
class _Hold:
    lease: _Lease


@dataclass(slots=True)
class _Slots:
    """Send slots this worker holds in the platform's shared budget (monotonic times):
    ``count`` of them, one every ``(end - start) / count`` seconds from ``start``; ``left``
    are still unused.

    Each send takes the next slot, never before its time; a slot whose time passed more than
    ``_SLOTS_GRACE`` ago (the worker was busy) is lost rather than spent late, so that the
    sends of every worker together never run ahead of the shared budget.
    """

    start: float
    end: float
    left: int
    count: int

    def next_at(self, now: float) -> float | None:
        """When the next send may start (its slot's time); None when no slot is left."""
        interval = (self.end - self.start) / self.count
        used = self.count - self.left
        at = self.start + used * interval
        if now > at + _SLOTS_GRACE:  # missed slots: skip to the one whose time it is
            self.left -= min(self.left, math.floor((now - at) / interval))
            at = self.start + (self.count - self.left) * interval
        return at if self.left > 0 else None


class _Round:
    """One delivery round: the messages this process holds, by address, and what is in flight."""

    def __init__(self) -> None:
        self.queues: dict[str, list[OutboxRecord]] = {}
        # Addresses with messages queued and none in flight: (not urgent, proactive, oldest
        # id, address), so safety notices go first, then replies before a fan-out's messages,
        # the rest oldest first.
        self.ready: list[tuple[bool, bool, int, str]] = []
        self.flying: dict[asyncio.Future[SendResult], OutboxRecord] = {}
        self.busy: set[str] = set()  # addresses with a message in flight
        self.ended: set[str] = set()  # addresses whose round ended on a failure
        self.holds: dict[int, _Hold] = {}
        self.leases: list[_Lease] = []
        self.doubted: set[int] = set()  # replies to identities marked unreachable
        self.to_release: list[OutboxRecord] = []  # held but not to be sent by this round
        self.more = True  # the last claim took all it could: more may be waiting
        self.clean = False  # the last claim ran while this round held nothing
        self.sent = 0

    def queued(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def push(self, address: str) -> None:
        queue = self.queues[address]
        first = queue[0]
        heapq.heappush(self.ready, (not first.urgent, first.proactive, first.id, address))

    def drop(self, message_id: int) -> datetime | None:
        """No longer held by this round; the lease it was held under, if it was."""
        hold = self.holds.pop(message_id, None)
        if hold is None:
            return None
        hold.lease.ids.discard(message_id)
        if not hold.lease.ids:
            self.leases.remove(hold.lease)
        return hold.lease.until

    def renew_in(self, now: float) -> float:
        """Seconds until a lease is due for renewal (infinity when none is held)."""
        return min((lease.renew_at - now for lease in self.leases), default=math.inf)


def _enqueue(queue: list[OutboxRecord], record: OutboxRecord) -> bool:
    """Add a claimed message to its address's queue: a safety notice (urgent) ahead of every
    message that is not one, the rest in order. True when it went first."""
    if not record.urgent:
        queue.append(record)
        return False
    at = next((n for n, queued in enumerate(queue) if not queued.urgent), len(queue))
    queue.insert(at, record)
    return at == 0


class DeliveryWorker:
    """Sends due outbox messages for one platform and records how each attempt went.

    Several workers, in one process or many, may deliver one platform: each claims the
    messages it sends (``OutboxStore.claim``), one address's messages are claimed by one
    worker at a time, and the platform's overall rate is a budget they share. What is due
    follows ``clock`` (the app's injected clock); pacing, timeouts and the claims' leases run
    on ``monotonic`` time (anchored to the wall clock for the database).

    ``on_unreachable`` runs in a worker thread (it usually writes to the database); ``wake``
    must be called from the event loop's thread (elsewhere: ``loop.call_soon_threadsafe``).
    """

    def __init__(
        self,
        outbox: OutboxStore,
        sender: Sender,
        *,
        pacer: Pacer | None = None,
        max_attempts: int = 8,
        base_backoff: float = 1.0,
        on_unreachable: Callable[[OutboxRecord, str], None] | None = None,
        clock: Clock | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        batch: int = 200,
        concurrency: int = 32,
        lease: float = CLAIM_LEASE,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not lease > 0:
            raise ValueError("lease must be positive")
        self._outbox = outbox
        self._sender = sender
        self._pacer = pacer if pacer is not None else Pacer()
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._on_unreachable = on_unreachable
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._batch = batch
        self._concurrency = concurrency
        self._lease = lease
        # Leases are renewed once a third has gone by: two chances before they run out.
        self._renew_after = lease / 3
        self._offload = offload
        self._wake = asyncio.Event()
        self._woken: asyncio.Future[None] | None = None  # see _until_progress
        self._slots: _Slots | None = None
        self._stop: asyncio.Event | None = None
        # Leases and the shared budget are on the wall clock; pacing runs on ``monotonic``.
        # Anchoring one to the other lets an injected monotonic clock drive both, and ``max``
        # with the real time keeps a suspended machine (monotonic clocks stop) in step.
        self._anchor_wall = datetime.now(UTC)
        self._anchor_monotonic = monotonic()

    @property
    def platform(self) -> str:
        return self._sender.platform

    def wake(self) -> None:
        """Claim what was queued now (call from the event loop after a turn commits)."""
        self._wake.set()
        self._progress()

    def _progress(self, _: object = None) -> None:
        """Something a round waits for happened: a send finished, a wake-up, a pacer delay."""
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    async def _until_progress(self, wait: float) -> None:
        """Until a send finishes, ``wake()`` is called, the worker is stopped, or ``wait``
        seconds pass (the pacer, the shared budget).

        One future that each of those resolves: no callbacks on every message in flight.
        """
        woken = self._woken = asyncio.get_running_loop().create_future()
        sleeper = None
        if not math.isinf(wait):
            sleeper = asyncio.ensure_future(self._sleep(wait))
            sleeper.add_done_callback(self._progress)
        try:
            await woken
        finally:
            self._woken = None
            if sleeper is not None:  # unhooked first: its cancellation is no progress
                sleeper.remove_done_callback(self._progress)
                sleeper.cancel()

    async def run(self, stop: asyncio.Event, *, idle: float = 0.5) -> None:
        """Deliver until ``stop`` is set, waiting for ``wake()`` or ``idle`` seconds between
        rounds. Once stopped, nothing new is sent: the sends under way finish and what this
        worker held is handed back for another process (or the next start) to send."""
        self._stop = stop
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(self._progress)
        try:
            while not stop.is_set():
                try:
                    await self.deliver_due()
                except Exception as exc:  # the database may be briefly away; keep going
                    # Type only: database errors can quote parameters, i.e. message text.
                    log.error("delivery round failed: %s", type(exc).__name__)
                if stop.is_set():
                    break
                await self._wait_for_wake(idle)
        finally:
            stopping.remove_done_callback(self._progress)
            stopping.cancel()
            self._stop = None

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def deliver_due(self) -> int:
        """Send every due message once, in order per address; returns how many were sent.

        Different addresses' messages are in flight together (up to ``concurrency``), one
        address's one at a time: its next message goes only once the previous one is
        recorded as sent, and anything else ends that address's round. A ``wake()`` during
        the round claims the messages queued since into it, instead of waiting for its end;
        so does the shared budget having room again while more messages are due.
        """
        self._wake.clear()
        r = _Round()
        try:
            await self._exchange(r, [], claim=True)
            while True:
                stopping = self._stopping()
                if not r.queues and not r.flying:
                    if stopping or (not r.more and r.clean):
                        break
                    await self._exchange(r, [], claim=not self._stopping())
                    continue
                now = self._monotonic()
                wait = math.inf if stopping else self._launch(r, now)
                if wait < 0:  # out of send slots: take more from the shared budget first
                    wait = await self._reserve(r.queued())
                    if wait <= 0:
                        continue
                refill = not stopping and r.more and r.queued() < self._batch // 2
                wait = min(wait, max(0.0, r.renew_in(now)))
                if stopping and not r.flying:
                    break
                idle = not self._wake.is_set() and not any(f.done() for f in r.flying)
                if idle and wait > 0 and (r.flying or not math.isinf(wait)):
                    await self._until_progress(wait)
                finished = [(r.flying.pop(f), f.result()) for f in list(r.flying) if f.done()]
                woken = self._wake.is_set()
                self._wake.clear()
                marks = [
                    (rec.id, res.platform_message_id)
                    for rec, res in finished
                    if res.kind is SendKind.SENT
                ]
                claim = not self._stopping() and (woken or refill)
                if marks or claim or r.to_release or r.renew_in(self._monotonic()) <= 0:
                    await self._exchange(r, marks, claim=claim)
                r.sent += len(marks)
                for record, _ in finished:
                    r.busy.discard(record.address)
                    r.drop(record.id)
                if finished:
                    await self._settle_failures(finished, r)
                    for record, _ in finished:
                        if record.address in r.queues:
                            r.push(record.address)
            r.to_release.extend(m for q in r.queues.values() for m in q)
            r.queues.clear()
            if r.to_release:
                await self._exchange(r, [], claim=False)
        finally:
            for future in r.flying:  # cancelled mid-round: those sends' outcome is unknown
                future.cancel()
        return r.sent

    def _launch(self, r: _Round, now: float) -> float:
        """Start sending the next message of every ready address the pacer lets go now,
        replies first, then the oldest, up to ``concurrency`` in flight, within the send
        slots this worker holds; returns the seconds until the next held one may go
        (infinity when none is waiting on the pacer; -1 when the slots ran out)."""
        wait = math.inf
        held: list[tuple[bool, bool, int, str]] = []
        while r.ready and len(r.flying) < self._concurrency:
            item = heapq.heappop(r.ready)
            address = item[3]
            queue = r.queues.get(address)
            if queue is None or queue[0].id != item[2]:  # taken back or overtaken since
                continue
            slots = self._slots
            slot_at = None if slots is None else slots.next_at(now)
            if slots is None or slot_at is None:
                heapq.heappush(r.ready, item)
                wait = -1.0
                break
            address_wait = max(self._pacer.wait_time(address, now), slot_at - now)
            if address_wait > 0:
                held.append(item)
                wait = min(wait, address_wait)
                if address_wait <= self._pacer.overall_wait(now):
                    break  # the overall limit holds every address at least this long
                continue
            record = queue.pop(0)
            if not queue:
                del r.queues[address]
            slots.left -= 1
            self._pacer.record(address, now)
            r.busy.add(address)
            sending = asyncio.ensure_future(self._send(record))
            sending.add_done_callback(self._progress)
            r.flying[sending] = record
        for item in held:
            heapq.heappush(r.ready, item)
        return wait

    async def _exchange(
        self, r: _Round, marks: list[tuple[int, str | None]], *, claim: bool
    ) -> None:
        """One trip to the database: hand back what this round will not send, renew the
        leases due for it, record what was sent and, with ``claim``, claim more (in the same
        transaction as the marks)."""
        release = [(m.id, until) for m in r.to_release if (until := r.drop(m.id)) is not None]
        r.to_release = []
        now = self._monotonic()
        due = [lease for lease in r.leases if lease.renew_at <= now]
        renew = [(lease.until, sorted(lease.ids)) for lease in due]
        until = self._wall() + timedelta(seconds=self._lease)
        held_before = bool(r.queues or r.flying)
        proven = [i for i, _ in marks if i in r.doubted]  # they were reachable after all
        r.doubted.difference_update(proven)
        found, renewed = await self._offload(
            self._trip, marks, release, renew, until, claim, proven
        )
        for lease in due:
            lost = lease.ids - renewed
            lease.until, lease.renew_at = until, now + self._renew_after
            if lost:  # held past its lease (a stalled process): perhaps another's by now
                log.warning("lost the claim on %d outbox message(s)", len(lost))
                self._forget(r, lost)
        if found is not None:
            self._take(r, found, clean=not held_before)

    def _forget(self, r: _Round, lost: set[int]) -> None:
        """Stop holding messages whose lease ran out: queued, they are not sent (with the
        rest of their address's queue, handed back); in flight, their send goes on."""
        for message_id in lost:
            r.drop(message_id)
        for address, queue in list(r.queues.items()):
            if any(m.id in lost for m in queue):
                del r.queues[address]
                r.to_release.extend(m for m in queue if m.id not in lost)

    def _trip(
        self,
        marks: list[tuple[int, str | None]],
        release: list[tuple[int, datetime]],
        renew: list[tuple[datetime, list[int]]],
        until: datetime,
        claim: bool,
        proven: list[int],
    ) -> tuple[OutboxClaim | None, set[int]]:
        """Runs in a storage thread; see ``_exchange``. Returns the claim and the ids renewed."""
        if proven:
            self._outbox.mark_reachable(proven)
        by_claim: dict[datetime, list[int]] = {}
        for message_id, held_until in release:
            by_claim.setdefault(held_until, []).append(message_id)
        for held_until, ids in by_claim.items():
            self._outbox.release(ids, held_until)
        renewed = {
            i for held_until, ids in renew for i in self._outbox.renew(ids, held_until, until)
        }
        if not claim:
            if marks:
                self._outbox.mark_sent_many(marks)
            return None, renewed
        return self._outbox.claim(
            platform=self._sender.platform,
            limit=self._batch,
            now=self._now(),
            wall=self._wall(),
            lease=self._lease,
            sent=marks,
        ), renewed

    async def _reserve(self, queued: int) -> float:
        """Take send slots from the platform's shared budget (enough for what is queued, and
        at least half a second's worth, so that a few replies do not each need a trip);
        returns the seconds until they start (0: now)."""
        rate = self._pacer.overall_rate
        wanted = max(queued, math.ceil(rate * _SLOTS_AHEAD / 2), 1)
        wall = self._wall()
        got = await self._offload(
            self._outbox.reserve,
            platform=self._sender.platform,
            wall=wall,
            rate=rate,
            ahead=_SLOTS_AHEAD,
            wanted=min(wanted, 2**31),
        )
        now = self._monotonic()
        start = now + (got.start - wall).total_seconds()
        if got.count == 0:
            return max(start - now, 0.0) + _SLOTS_SLACK
        self._slots = _Slots(start, now + (got.end - wall).total_seconds(), got.count, got.count)
        return max(start - now, 0.0)

    def _take(self, r: _Round, found: OutboxClaim, *, clean: bool) -> None:
        """Add what a claim took to the round."""
        now = self._monotonic()
        for message_id, reason in found.buried:
            log.info("outbox message %s given up: %s", message_id, reason)
        r.more, r.clean = found.full, clean
        r.doubted.update(found.doubted)
        if found.messages:
            lease = _Lease(found.until, now + self._renew_after, {m.id for m in found.messages})
            r.leases.append(lease)
        for record in found.messages:
            r.holds[record.id] = _Hold(lease)
            address = record.address
            if address in r.ended:  # a failure ended this address's round: not again in it
                r.to_release.append(record)
                continue
            queue = r.queues.get(address)
            if queue is not None:  # (a claim never returns messages behind ones held)
                if _enqueue(queue, record) and address not in r.busy:
                    r.push(address)  # it overtook the queue's first: its turn comes sooner
                continue
            r.queues[address] = [record]
            if address not in r.busy:
                r.push(address)

    async def _settle_failures(
        self, results: list[tuple[OutboxRecord, SendResult]], r: _Round
    ) -> None:
        for record, result in results:
            if result.kind is not SendKind.SENT:
                # Anything but success ends this address's round: nothing overtakes it.
                r.ended.add(record.address)
                rest = r.queues.pop(record.address, [])
                await self._settle(record, result, rest)
                if result.kind is SendKind.UNREACHABLE:  # buried with it
                    for message in rest:
                        r.drop(message.id)
                else:
                    r.to_release.extend(rest)

    async def _send(self, record: OutboxRecord) -> SendResult:
        try:
            return await self._sender.send(record)
        except Exception as exc:
            # Type only: exception text may quote the message, and messages are student data.
            error = type(exc).__name__
            log.warning("sender raised %s for outbox message %s", error, record.id)
            return SendResult.failed(f"sender raised {error}")

    async def _settle(
        self, record: OutboxRecord, result: SendResult, rest: list[OutboxRecord]
    ) -> None:
        """Record an unsuccessful attempt."""
        if result.kind is SendKind.RETRY_AFTER:
            until = self._monotonic() + result.delay
            self._pacer.hold(record.address, until)
            self._pacer.hold_all(until)
            log.info("outbox message %s rate-limited for %.1f s", record.id, result.delay)
            await self._retry(record, result.delay, result.error)
            return
        if result.kind is SendKind.UNREACHABLE:
            log.info("outbox message %s: recipient unreachable", record.id)
            await self._offload(self._outbox.mark_dead, record.id, result.error)
            if self._on_unreachable is not None:
                try:  # in a thread: the adapter typically records it in the database
                    await self._offload(self._on_unreachable, record, result.error)
                except Exception as exc:  # its failure must not stop the burial below
                    log.error("on_unreachable raised %s", type(exc).__name__)
            await self._offload(self._bury_address, record, rest, result.error)
        elif record.attempts + 1 >= self._max_attempts:
            log.warning("outbox message %s dead after %d attempts", record.id, record.attempts + 1)
            await self._offload(self._outbox.mark_dead, record.id, result.error)
        else:
            backoff = min(self._base_backoff * 2**record.attempts, MAX_BACKOFF)
            log.info("outbox message %s failed; retrying in %.1f s", record.id, backoff)
            await self._retry(record, backoff, result.error)
            return
        if record.urgent:  # an adult must know a safety notice reached nobody this way
            log.error("safety notice %s given up: see profilebot safety list", record.id)

    async def _retry(self, record: OutboxRecord, seconds: float, error: str) -> None:
        not_before = self._now() + timedelta(seconds=seconds)
        await self._offload(self._outbox.mark_retry, record.id, not_before, error)

    def _bury_address(self, record: OutboxRecord, rest: list[OutboxRecord], error: str) -> None:
        """Mark dead what is still pending for an unreachable recipient: it cannot arrive."""
        ids = {r.id for r in rest}
        ids.update(
            r.id
            for r in self._outbox.pending(
                platform=record.platform,
                address=record.address,
                limit=self._batch,
                now=_FAR_FUTURE,
            )
        )
        ids.discard(record.id)
        for message_id in sorted(ids):
            self._outbox.mark_dead(message_id, error)

    def _now(self) -> datetime:
        """What is due is judged by: the injected clock, else the wall clock."""
        return self._clock.now() if self._clock is not None else self._wall()

    def _wall(self) -> datetime:
        """The wall clock, moved on by ``monotonic`` (leases, the shared budget)."""
        elapsed = timedelta(seconds=self._monotonic() - self._anchor_monotonic)
        return max(datetime.now(UTC), self._anchor_wall + elapsed)

    async def _wait_for_wake(self, idle: float) -> None:
        """Between rounds: until ``wake()``, ``stop`` (see ``run``) or ``idle`` seconds."""
        if self._wake.is_set():
            return
        loop = asyncio.get_running_loop()
        woken = self._woken = loop.create_future()
        timer = loop.call_later(idle, self._progress)
        try:
            await woken
        finally:
            self._woken = None
            timer.cancel()
