"""Platform-neutral delivery of the outbox: pacing, ordering, retries and giving up.

Turns only queue messages (``storage.OutboxStore``); this worker sends them after the turn has
committed, so a crash between "answer saved" and "reply sent" loses nothing. Adapters supply a
``Sender`` that knows one platform's API and translates its answer into a ``SendResult``.

Guarantees: messages to one address go out in outbox order (an earlier message that must be
retried holds back the later ones); sends stay inside the ``Pacer``'s limits; delivery is
at-least-once (a crash after the platform accepted a message but before ``mark_sent`` resends it).
Run one worker per platform: two workers would race for the same rows.
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

from storage import OutboxRecord, OutboxStore

from .offload import Offload

__all__ = [
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
        self._tats: dict[str, float] = {}
        self._overall_tat: float | None = None
        self._max_addresses = max_addresses
        self._sweep_at = max_addresses

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


class DeliveryWorker:
    """Sends due outbox messages for one platform and records how each attempt went.

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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        batch: int = 200,
        concurrency: int = 32,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._outbox = outbox
        self._sender = sender
        self._pacer = pacer if pacer is not None else Pacer()
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._on_unreachable = on_unreachable
        self._clock = clock
        self._sleep = sleep
        self._batch = batch
        self._concurrency = concurrency
        self._offload = offload
        self._wake = asyncio.Event()
        self._woken: asyncio.Future[None] | None = None  # see _until_progress
        # Storage times are wall-clock UTC; pacing runs on ``clock``. Anchoring one to the other
        # lets an injected clock drive both, and ``max`` with the real time keeps a suspended
        # machine (monotonic clocks stop) from seeing due messages as not yet due.
        self._anchor_wall = datetime.now(UTC)
        self._anchor_clock = clock()

    def wake(self) -> None:
        """Start the next round now (call from the event loop after a turn commits)."""
        self._wake.set()
        self._progress()

    def _progress(self, _: object = None) -> None:
        """Something a round waits for happened: a send finished, a wake-up, a pacer delay."""
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    async def _until_progress(self, wait: float) -> None:
        """Until a send finishes, ``wake()`` is called, or ``wait`` seconds pass (the pacer).

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
        """Deliver until ``stop`` is set, waiting for ``wake()`` or ``idle`` seconds between."""
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

    async def deliver_due(self) -> int:
        """Send every due message once, in order per address; returns how many were sent.

        Different addresses' messages are in flight together (up to ``concurrency``), one
        address's one at a time: its next message goes only once the previous one is
        recorded as sent, and anything else ends that address's round. A ``wake()`` during
        the round adds the messages queued since to it, instead of waiting for its end.
        """
        self._wake.clear()
        queues = await self._offload(self._fetch, self._wall_now())
        seen = {r.id for queue in queues.values() for r in queue}  # taken into this round
        ended: set[str] = set()  # addresses whose round ended on a failure
        sent = 0
        flying: dict[asyncio.Future[SendResult], OutboxRecord] = {}
        busy: set[str] = set()  # addresses with a message in flight
        ready = [(q[0].id, address) for address, q in queues.items()]  # heap: oldest first
        heapq.heapify(ready)
        try:
            while queues or flying:
                wait = self._launch(ready, queues, flying, busy)
                if not flying:  # only the pacer holds things up
                    await self._sleep(wait)
                    continue
                if not self._wake.is_set() and not any(f.done() for f in flying):
                    await self._until_progress(wait)
                finished = [(flying.pop(f), f.result()) for f in list(flying) if f.done()]
                woken = self._wake.is_set()
                self._wake.clear()
                # One trip to the database: record what was sent, fetch what was queued since.
                marks = [
                    (r.id, res.platform_message_id)
                    for r, res in finished
                    if res.kind is SendKind.SENT
                ]
                fresh: dict[str, list[OutboxRecord]] = {}
                if marks or woken:
                    fresh = await self._offload(
                        self._record_and_fetch,
                        marks,
                        self._wall_now() if woken else None,
                        max(seen, default=0),
                    )
                sent += len(marks)
                if finished:
                    await self._settle_failures(finished, queues, ended)
                    for record, _ in finished:
                        busy.discard(record.address)
                        if queue := queues.get(record.address):
                            heapq.heappush(ready, (queue[0].id, record.address))
                for address, records in fresh.items():
                    new = [r for r in records if r.id not in seen]
                    if new and address not in ended:
                        seen.update(r.id for r in new)
                        if address not in queues and address not in busy:
                            heapq.heappush(ready, (new[0].id, address))
                        queues.setdefault(address, []).extend(new)
        finally:
            for future in flying:  # cancelled mid-round: those sends' outcome is unknown
                future.cancel()
        return sent

    def _launch(
        self,
        ready: list[tuple[int, str]],
        queues: dict[str, list[OutboxRecord]],
        flying: dict[asyncio.Future[SendResult], OutboxRecord],
        busy: set[str],
    ) -> float:
        """Start sending the next message of every ready address the pacer lets go now,
        oldest message first, up to ``concurrency`` in flight; returns the seconds until the
        next held one may go (infinity when none is waiting on the pacer).

        ``ready`` is a heap of (oldest message id, address) of the addresses with messages
        queued and none in flight.
        """
        now = self._clock()
        wait = math.inf
        held: list[tuple[int, str]] = []
        while ready and len(flying) < self._concurrency:
            head, address = heapq.heappop(ready)
            address_wait = self._pacer.wait_time(address, now)
            if address_wait > 0:
                held.append((head, address))
                wait = min(wait, address_wait)
                if address_wait <= self._pacer.overall_wait(now):
                    break  # the overall limit holds every address at least this long
                continue
            record = queues[address].pop(0)
            if not queues[address]:
                del queues[address]
            self._pacer.record(address, now)
            busy.add(address)
            sending = asyncio.ensure_future(self._send(record))
            sending.add_done_callback(self._progress)
            flying[sending] = record
        for item in held:
            heapq.heappush(ready, item)
        return wait

    def _record_and_fetch(
        self, marks: list[tuple[int, str | None]], now: datetime | None, after_id: int
    ) -> dict[str, list[OutboxRecord]]:
        """Mark the successful sends (one transaction), then, with ``now``, fetch what is due
        and newer than ``after_id``. Runs in a storage thread."""
        if marks:
            self._outbox.mark_sent_many(marks)
        return {} if now is None else self._fetch(now, after_id)

    async def _settle_failures(
        self,
        results: list[tuple[OutboxRecord, SendResult]],
        queues: dict[str, list[OutboxRecord]],
        ended: set[str],
    ) -> None:
        for record, result in results:
            if result.kind is not SendKind.SENT:
                # Anything but success ends this address's round: nothing overtakes it.
                ended.add(record.address)
                rest = queues.pop(record.address, [])
                await self._settle(record, result, rest)

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
            until = self._clock() + result.delay
            self._pacer.hold(record.address, until)
            self._pacer.hold_all(until)
            log.info("outbox message %s rate-limited for %.1f s", record.id, result.delay)
            await self._retry(record, result.delay, result.error)
        elif result.kind is SendKind.UNREACHABLE:
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

    async def _retry(self, record: OutboxRecord, seconds: float, error: str) -> None:
        not_before = self._wall_now() + timedelta(seconds=seconds)
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

    def _fetch(self, now: datetime, after_id: int = 0) -> dict[str, list[OutboxRecord]]:
        """Due messages (newer than ``after_id``) grouped by address in outbox order, minus
        those an older pending message to the same address, not due yet, waits behind (they
        would overtake it)."""
        queues: dict[str, list[OutboxRecord]] = {}
        due = self._outbox.due(
            platform=self._sender.platform, limit=self._batch, now=now, after_id=after_id
        )
        for record in due:
            queues.setdefault(record.address, []).append(record)
        return queues

    def _wall_now(self) -> datetime:
        elapsed = timedelta(seconds=self._clock() - self._anchor_clock)
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
