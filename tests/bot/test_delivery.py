"""The delivery worker on a real SQLite outbox, with a fake clock: order, pacing, retries,
claims (several workers), /stop and unreachable recipients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from bot.clock import FrozenClock
from bot.delivery import DeliveryWorker, Pacer, SendKind, SendResult
from bot.service import ConversationService
from dialogues import FlowRegistry, Inbound, Reply
from storage import (
    IMMEDIATELY,
    OPTED_OUT,
    UNREACHABLE,
    Database,
    OutboxClaim,
    OutboxRecord,
    OutboxStore,
    PeopleStore,
)
from storage._outbox import queue_payloads, queue_replies
from storage._sql import Sql
from storage._tables import utcnow

EPS = 1e-6
Script = SendResult | Exception


class FakeTime:
    """A clock that only moves when someone sleeps. A sleep first lets whatever is ready to
    run go (a send that is done, say): cancelled meanwhile because what it waited for came
    first, it lets no time pass."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        for _ in range(5):
            await asyncio.sleep(0)
        self.slept.append(seconds)
        self.now += seconds


class FakeSender:
    """Records every send; ``script`` gives the results for a message text, in turn."""

    platform = "fake"

    def __init__(self, clock: FakeTime, script: dict[str, list[Script]] | None = None) -> None:
        self.clock = clock
        self.script = script or {}
        self.sends: list[tuple[float, int, str, str]] = []
        self.sent_event = asyncio.Event()

    async def send(self, message: OutboxRecord) -> SendResult:
        text = message.reply.text
        self.sends.append((self.clock.now, message.id, message.address, text))
        self.sent_event.set()
        scripted = self.script.get(text)
        if scripted:
            result = scripted.pop(0)
            if isinstance(result, Exception):
                raise result
            return result
        return SendResult.sent(f"pm-{message.id}")

    def texts(self, address: str) -> list[str]:
        return [text for _, _, a, text in self.sends if a == address]

    def times(self, address: str | None = None) -> list[float]:
        return [t for t, _, a, _ in self.sends if address is None or a == address]


def queue(db: Database, person_id: int, address: str, texts: Iterable[str]) -> list[int]:
    with db.begin() as conn:
        return queue_replies(
            Sql(conn),
            [Reply(t) for t in texts],
            person_id=person_id,
            conversation_id=None,
            platform="fake",
            address=address,
            now=utcnow(),
        )


@pytest.fixture
def person_id(sqlite_database: Database) -> int:
    return PeopleStore(sqlite_database).ensure_student("sam").id


def statuses(db: Database, person_id: int) -> dict[str, str]:
    return {r.reply.text: r.status for r in OutboxStore(db).for_person(person_id)}


def unpaced_worker(
    db: Database, sender: FakeSender, clock: FakeTime, *, concurrency: int = 32, batch: int = 200
) -> DeliveryWorker:
    """A worker whose pacer never holds anything up (for tests of ordering and concurrency)."""
    fast = Pacer(per_address_rate=1000, per_address_burst=10, overall_rate=1000, overall_burst=10)
    return DeliveryWorker(
        OutboxStore(db),
        sender,
        pacer=fast,
        monotonic=clock,
        sleep=clock.sleep,
        concurrency=concurrency,
        batch=batch,
    )


async def drain(worker: DeliveryWorker, clock: FakeTime, rounds: int = 200) -> int:
    """Run rounds, letting fake time pass between them, until a few rounds send nothing."""
    sent, quiet = 0, 0
    for _ in range(rounds):
        n = await worker.deliver_due()
        sent += n
        quiet = quiet + 1 if n == 0 else 0
        if quiet > 40:
            break
        await clock.sleep(0.5)
    return sent


async def test_every_message_sent_once_in_order_per_address(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    for i in range(3):
        for address in ("a", "b", "c"):
            queue(sqlite_database, person_id, address, [f"{address}{i}"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 9
    assert await worker.deliver_due() == 0
    for address in ("a", "b", "c"):
        assert sender.texts(address) == [f"{address}0", f"{address}1", f"{address}2"]
    records = OutboxStore(sqlite_database).for_person(person_id)
    assert all(r.status == "sent" and r.attempts == 1 for r in records)
    assert all(r.platform_message_id == f"pm-{r.id}" for r in records)


async def test_other_platforms_are_left_alone(sqlite_database: Database, person_id: int) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    sender.platform = "other"
    queue(sqlite_database, person_id, "a", ["hi"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )
    assert await worker.deliver_due() == 0
    assert statuses(sqlite_database, person_id) == {"hi": "pending"}


async def test_rate_limit_waits_and_loses_or_reorders_nothing(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock, {"a1": [SendResult.retry_after(3, "429 Too Many Requests")]})
    queue(sqlite_database, person_id, "a", ["a1", "a2", "a3"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 0  # a2, a3 must not overtake a1
    assert await drain(worker, clock) == 3

    assert sender.texts("a") == ["a1", "a1", "a2", "a3"]
    first, again, *_ = sender.times("a")
    assert again - first >= 3 - EPS
    assert statuses(sqlite_database, person_id) == {"a1": "sent", "a2": "sent", "a3": "sent"}
    a1 = OutboxStore(sqlite_database).for_person(person_id)[0]
    assert a1.attempts == 2 and a1.last_error == "429 Too Many Requests"


async def test_rate_limit_holds_later_messages_to_that_address_in_the_database(
    sqlite_database: Database, person_id: int
) -> None:
    """A fresh worker (say, after a restart) knows nothing of the hold but keeps the order."""
    clock = FakeTime()
    sender = FakeSender(clock, {"a1": [SendResult.retry_after(30, "flood")]})
    queue(sqlite_database, person_id, "a", ["a1", "a2"])
    outbox = OutboxStore(sqlite_database)
    await DeliveryWorker(outbox, sender, monotonic=clock, sleep=clock.sleep).deliver_due()
    queue(sqlite_database, person_id, "b", ["b1"])

    fresh = DeliveryWorker(outbox, sender, monotonic=clock, sleep=clock.sleep)
    assert await fresh.deliver_due() == 1
    assert sender.texts("a") == ["a1"]
    assert sender.texts("b") == ["b1"]


async def test_one_address_gets_at_most_one_message_per_second(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    queue(sqlite_database, person_id, "a", [f"m{i}" for i in range(10)])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 10
    times = sender.times("a")
    assert sender.texts("a") == [f"m{i}" for i in range(10)]
    assert times[-1] - times[0] >= 9 - EPS
    assert all(later - earlier >= 1 - EPS for earlier, later in pairwise(times))


async def test_many_addresses_respect_the_overall_limit(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    for i in range(60):
        queue(sqlite_database, person_id, f"chat{i}", [f"m{i}"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 60
    times = sender.times()
    assert len(times) == 60
    # No one-second window holds more than 30 sends: any 31 consecutive span a second.
    assert all(times[i + 30] - times[i] >= 1 - EPS for i in range(len(times) - 30))
    assert times[-1] - times[0] < 3  # paced, not serialised at one per second


async def test_a_waiting_address_does_not_hold_up_the_others(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    queue(sqlite_database, person_id, "a", ["a1", "a2", "a3"])
    queue(sqlite_database, person_id, "b", ["b1", "b2", "b3"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 6
    assert clock.now - 1000.0 < 2.5  # both chats share each second, about 2 s in all


async def test_failures_back_off_then_give_up(sqlite_database: Database, person_id: int) -> None:
    clock = FakeTime()
    sender = FakeSender(clock, {"a1": [SendResult.failed("502 Bad Gateway")] * 5})
    queue(sqlite_database, person_id, "a", ["a1", "a2"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database),
        sender,
        max_attempts=3,
        base_backoff=2.0,
        monotonic=clock,
        sleep=clock.sleep,
    )

    assert await drain(worker, clock) == 1
    assert sender.texts("a") == ["a1", "a1", "a1", "a2"]
    t = sender.times("a")
    assert t[1] - t[0] >= 2 - EPS  # 2 * 2**0
    assert t[2] - t[1] >= 4 - EPS  # 2 * 2**1
    a1 = OutboxStore(sqlite_database).for_person(person_id)[0]
    assert (a1.status, a1.attempts, a1.last_error) == ("dead", 3, "502 Bad Gateway")
    assert statuses(sqlite_database, person_id)["a2"] == "sent"


async def test_unreachable_recipient_is_given_up_at_once(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock, {"a1": [SendResult.unreachable("403 blocked by the user")]})
    queue(sqlite_database, person_id, "a", ["a1", "a2"])
    queue(sqlite_database, person_id, "b", ["b1"])
    queue(sqlite_database, person_id, "a", ["a3"])
    calls: list[tuple[int, str]] = []
    worker = DeliveryWorker(
        OutboxStore(sqlite_database),
        sender,
        on_unreachable=lambda record, error: calls.append((record.id, error)),
        monotonic=clock,
        sleep=clock.sleep,
    )

    assert await drain(worker, clock) == 1
    a1 = OutboxStore(sqlite_database).for_person(person_id)[0]
    assert calls == [(a1.id, "403 blocked by the user")]
    assert sender.texts("a") == ["a1"]
    assert sender.texts("b") == ["b1"]
    assert statuses(sqlite_database, person_id) == {
        "a1": "dead",
        "a2": "dead",
        "b1": "sent",
        "a3": "dead",
    }


async def test_sender_exception_is_retried_without_logging_its_text(
    sqlite_database: Database, person_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeTime()
    sender = FakeSender(clock, {"a1": [RuntimeError("Sam's secret answer")]})
    queue(sqlite_database, person_id, "a", ["a1"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 0
    a1 = OutboxStore(sqlite_database).for_person(person_id)[0]
    assert (a1.status, a1.attempts) == ("pending", 1)
    assert a1.last_error is not None and "secret" not in a1.last_error
    assert "RuntimeError" in caplog.text and "secret" not in caplog.text

    assert await drain(worker, clock) == 1
    assert sender.texts("a") == ["a1", "a1"]


async def test_run_stops_and_wake_starts_a_round_at_once(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )
    queue(sqlite_database, person_id, "a", ["first"])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, idle=60))

    await asyncio.wait_for(sender.sent_event.wait(), 5)
    sender.sent_event.clear()
    queue(sqlite_database, person_id, "b", ["second"])
    worker.wake()
    await asyncio.wait_for(sender.sent_event.wait(), 5)  # long before the 60 s idle

    stop.set()
    await asyncio.wait_for(task, 5)
    assert [text for *_, text in sender.sends] == ["first", "second"]
    assert statuses(sqlite_database, person_id) == {"first": "sent", "second": "sent"}


async def test_run_survives_a_failing_round(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenOutbox(OutboxStore):
        def __init__(self) -> None:
            self.calls = 0

        def claim(self, **kwargs: object) -> OutboxClaim:
            self.calls += 1
            raise OSError("database away")

    clock = FakeTime()
    outbox = BrokenOutbox()
    worker = DeliveryWorker(outbox, FakeSender(clock), monotonic=clock, sleep=clock.sleep)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, idle=0.01))
    while outbox.calls < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert "OSError" in caplog.text


def test_pacer_per_address_and_overall_limits() -> None:
    pacer = Pacer(overall_rate=2.0)
    assert pacer.wait_time("a", 0.0) == 0
    pacer.record("a", 0.0)
    assert pacer.wait_time("a", 0.0) == pytest.approx(1.0)
    assert pacer.wait_time("b", 0.0) == pytest.approx(0.5)  # overall: 2 per second
    assert pacer.wait_time("a", 1.0) == 0
    pacer.record("b", 0.5)
    assert pacer.wait_time("c", 0.5) == pytest.approx(0.5)


def test_pacer_burst_and_holds() -> None:
    pacer = Pacer(per_address_burst=3, per_address_rate=1.0, overall_burst=100)
    for _ in range(3):
        assert pacer.wait_time("a", 0.0) == 0
        pacer.record("a", 0.0)
    assert pacer.wait_time("a", 0.0) == pytest.approx(1.0)
    pacer.hold("b", 5.0)
    assert pacer.wait_time("b", 1.0) == pytest.approx(4.0)
    pacer.hold_all(7.0)
    assert pacer.wait_time("c", 1.0) == pytest.approx(6.0)
    assert pacer.wait_time("c", 7.0) == 0


def test_pacer_forgets_idle_addresses() -> None:
    pacer = Pacer(overall_rate=1e9, max_addresses=50)
    for i in range(10_000):
        pacer.record(f"chat{i}", float(i))
    assert pacer.tracked() <= 101


def test_send_result_kinds() -> None:
    assert SendResult.sent("42") == SendResult(SendKind.SENT, platform_message_id="42")
    assert SendResult.retry_after(3, "429").delay == 3.0
    assert SendResult.unreachable("403").kind is SendKind.UNREACHABLE
    assert SendResult.failed("500").kind is SendKind.FAILED
    with pytest.raises(ValueError):
        SendResult.retry_after(-1, "bad")
    with pytest.raises(ValueError):
        SendResult.retry_after(float("nan"), "bad")


class GatedSender(FakeSender):
    """Holds every send until ``gate`` opens; tracks how many are in flight, per address."""

    def __init__(self, clock: FakeTime) -> None:
        super().__init__(clock)
        self.gate = asyncio.Event()
        self.flying: dict[str, int] = {}
        self.most_flying = 0
        self.most_per_address = 0

    async def send(self, message: OutboxRecord) -> SendResult:
        address = message.address
        self.flying[address] = self.flying.get(address, 0) + 1
        self.most_flying = max(self.most_flying, sum(self.flying.values()))
        self.most_per_address = max(self.most_per_address, self.flying[address])
        try:
            await self.gate.wait()
            return await super().send(message)
        finally:
            self.flying[address] -= 1


async def test_addresses_are_sent_to_together_one_message_each_at_a_time(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = GatedSender(clock)
    for address in ("a", "b", "c"):
        queue(sqlite_database, person_id, address, [f"{address}1", f"{address}2"])
    worker = unpaced_worker(sqlite_database, sender, clock)
    round_ = asyncio.create_task(worker.deliver_due())
    while sender.most_flying < 3:
        await asyncio.sleep(0.01)
    sender.gate.set()
    assert await asyncio.wait_for(round_, 5) == 6
    assert sender.most_flying == 3 and sender.most_per_address == 1
    for address in ("a", "b", "c"):
        assert sender.texts(address) == [f"{address}1", f"{address}2"]
    assert set(statuses(sqlite_database, person_id).values()) == {"sent"}


async def test_concurrency_caps_the_sends_in_flight(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = GatedSender(clock)
    for i in range(5):
        queue(sqlite_database, person_id, f"chat{i}", [f"m{i}"])
    worker = unpaced_worker(sqlite_database, sender, clock, concurrency=2)
    round_ = asyncio.create_task(worker.deliver_due())
    while sender.most_flying < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert sum(sender.flying.values()) == 2
    sender.gate.set()
    assert await asyncio.wait_for(round_, 5) == 5
    assert sender.most_flying == 2


async def test_with_one_send_at_a_time_the_oldest_message_goes_first(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    for address, text in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("b", "5")]:
        queue(sqlite_database, person_id, address, [text])
    worker = unpaced_worker(sqlite_database, sender, clock, concurrency=1)
    assert await worker.deliver_due() == 5
    assert [text for _, _, _, text in sender.sends] == ["1", "2", "3", "4", "5"]


async def test_a_wake_during_a_round_adds_the_new_messages_to_it(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = GatedSender(clock)
    queue(sqlite_database, person_id, "a", ["a1"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )
    round_ = asyncio.create_task(worker.deliver_due())
    while sender.most_flying < 1:
        await asyncio.sleep(0.01)
    queue(sqlite_database, person_id, "b", ["b1"])  # a turn committed meanwhile
    worker.wake()
    while sender.most_flying < 2:  # b1 goes out while a1 is still in flight
        await asyncio.sleep(0.01)
    sender.gate.set()
    assert await asyncio.wait_for(round_, 5) == 2
    assert statuses(sqlite_database, person_id) == {"a1": "sent", "b1": "sent"}


async def test_a_failed_address_gets_nothing_more_in_that_round_even_after_a_wake(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock, {"a1": [SendResult.failed("502 Bad Gateway")]})
    queue(sqlite_database, person_id, "a", ["a1", "a2"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )
    worker.wake()
    assert await worker.deliver_due() == 0
    assert sender.texts("a") == ["a1"]
    assert statuses(sqlite_database, person_id) == {"a1": "pending", "a2": "pending"}


# --- claims: /stop, unreachable identities, the injected clock, several workers -------------


def queue_proactive(
    db: Database, person_id: int | None, address: str, texts: Iterable[str], **kwargs: Any
) -> list[int]:
    with db.begin() as conn:
        return queue_replies(
            Sql(conn),
            [Reply(t) for t in texts],
            person_id=person_id,
            conversation_id=None,
            platform="fake",
            address=address,
            now=utcnow(),
            proactive=True,
            **kwargs,
        )


async def test_a_student_who_sent_stop_gets_nothing_proactive_but_the_answer_to_it(
    sqlite_database: Database,
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    people = PeopleStore(sqlite_database)
    sam = people.ensure_student("sam")
    service = ConversationService(sqlite_database, FlowRegistry([]))
    flow = service.registry.get("weekly_checkin")
    service.open(sam.id, flow, platform="fake", address="sam-chat")
    worker = unpaced_worker(sqlite_database, sender, clock)
    await worker.deliver_due()
    # a reminder is queued, then Sam sends /stop before it goes out
    [reminder] = queue_proactive(sqlite_database, sam.id, "sam-chat", ["Just a reminder: ..."])
    stopped = service.handle(
        sam.id, Inbound.of_command("stop"), platform="fake", address="sam-chat"
    )
    [next_week] = queue_proactive(sqlite_database, sam.id, "sam-chat", ["Time for a check-in"])
    sender.sends.clear()

    assert await worker.deliver_due() == len(stopped.replies)
    assert sender.texts("sam-chat") == [r.text for r in stopped.replies]
    records = {r.id: r for r in OutboxStore(sqlite_database).for_person(sam.id)}
    for given_up in (reminder, next_week):
        assert (records[given_up].status, records[given_up].last_error) == ("dead", OPTED_OUT)


async def test_nothing_proactive_is_sent_to_an_identity_marked_unreachable(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    people = PeopleStore(sqlite_database)
    people.link_identity(person_id, "fake", None, "u1", "chat-1")
    people.set_reachable("fake", None, reachable=False, user_id="u1")  # they blocked the bot
    queue_proactive(sqlite_database, person_id, "chat-1", ["check-in", "reminder"])
    queue_proactive(sqlite_database, person_id, "chat-2", ["someone else's chat"])
    worker = unpaced_worker(sqlite_database, sender, clock)

    assert await worker.deliver_due() == 1
    assert sender.texts("chat-1") == []
    states = {
        r.reply.text: (r.status, r.last_error)
        for r in OutboxStore(sqlite_database).for_person(person_id)
    }
    assert states["check-in"] == states["reminder"] == ("dead", UNREACHABLE)
    assert states["someone else's chat"] == ("sent", None)


async def test_a_reply_that_gets_through_makes_its_identity_reachable_again(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    people = PeopleStore(sqlite_database)
    people.link_identity(person_id, "fake", None, "u1", "chat-1")
    people.set_reachable("fake", None, reachable=False, user_id="u1")  # then reactivated
    queue(sqlite_database, person_id, "chat-1", ["the answer to what they wrote"])
    worker = unpaced_worker(sqlite_database, sender, clock)

    assert await worker.deliver_due() == 1
    assert sender.texts("chat-1") == ["the answer to what they wrote"]
    assert people.is_reachable("fake", None, "u1") is True
    queue_proactive(sqlite_database, person_id, "chat-1", ["next week's check-in"])
    assert await worker.deliver_due() == 1


async def test_what_is_due_follows_the_injected_clock(
    sqlite_database: Database, person_id: int
) -> None:
    ticks = FakeTime()
    sender = FakeSender(ticks)
    now = datetime(2026, 12, 9, 20, 30, tzinfo=UTC)
    clock = FrozenClock(now)
    morning = now + timedelta(hours=10, minutes=30)  # held through quiet hours
    queue_proactive(sqlite_database, person_id, "a", ["good morning"], not_before=morning)
    queue_proactive(sqlite_database, person_id, "b", ["now"], not_before=IMMEDIATELY)
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, clock=clock, monotonic=ticks, sleep=ticks.sleep
    )

    assert await worker.deliver_due() == 1
    assert sender.texts("b") == ["now"]
    clock.advance(timedelta(hours=10))
    assert await worker.deliver_due() == 0
    clock.set(morning)
    assert await worker.deliver_due() == 1
    assert sender.texts("a") == ["good morning"]


async def test_a_failed_send_is_retried_by_the_injected_clock(
    sqlite_database: Database, person_id: int
) -> None:
    ticks = FakeTime()
    sender = FakeSender(ticks, {"a1": [SendResult.failed("502 Bad Gateway")]})
    clock = FrozenClock(datetime(2026, 12, 9, 10, 0, tzinfo=UTC))
    queue_proactive(sqlite_database, person_id, "a", ["a1"], not_before=IMMEDIATELY)
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, clock=clock, monotonic=ticks, sleep=ticks.sleep
    )
    assert await worker.deliver_due() == 0
    assert await worker.deliver_due() == 0  # backing off: not due on this clock yet
    clock.advance(timedelta(seconds=1))
    assert await worker.deliver_due() == 1
    assert sender.texts("a") == ["a1", "a1"]


async def test_replies_overtake_a_fan_out_in_progress(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    for i in range(100):
        queue_proactive(sqlite_database, None, f"student{i}", [f"check-in {i}"])
    queue(sqlite_database, person_id, "asker", ["the answer to their message"])
    worker = DeliveryWorker(
        OutboxStore(sqlite_database), sender, monotonic=clock, sleep=clock.sleep
    )

    assert await worker.deliver_due() == 101
    assert sender.sends[0][3] == "the answer to their message"
    fanout = [text for *_, text in sender.sends[1:]]
    assert fanout == [f"check-in {i}" for i in range(100)]


async def test_two_workers_deliver_each_message_once(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = GatedSender(clock)
    for i in range(40):
        queue_proactive(sqlite_database, None, f"s{i % 10}", [f"m{i}"])
    first = unpaced_worker(sqlite_database, sender, clock, concurrency=3, batch=4)
    second = unpaced_worker(sqlite_database, sender, clock, concurrency=3, batch=4)
    rounds = asyncio.gather(first.deliver_due(), second.deliver_due())
    while sender.most_flying < 6:  # both hold messages at once
        await asyncio.sleep(0.01)
    sender.gate.set()
    sent = await asyncio.wait_for(rounds, 10)
    while sum(sent) < 40:
        sent.append(await first.deliver_due())
    assert sum(sent) == 40
    texts = [text for *_, text in sender.sends]
    assert sorted(texts) == sorted(f"m{i}" for i in range(40))
    assert sender.most_per_address == 1  # never one address from both at once
    for n in range(10):  # and each address's messages in order
        assert sender.texts(f"s{n}") == [f"m{i}" for i in range(n, 40, 10)]


async def test_a_stopped_worker_hands_back_what_it_held(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = GatedSender(clock)
    for i in range(5):
        queue_proactive(sqlite_database, None, "one-student", [f"m{i}"])
    queue_proactive(sqlite_database, None, "another", ["x"])
    worker = unpaced_worker(sqlite_database, sender, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    while sender.most_flying < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.sleep(0.05)
    sender.gate.set()  # the two sends under way finish...
    await asyncio.wait_for(task, 5)
    assert sorted(text for *_, text in sender.sends) == ["m0", "x"]
    # ...and the rest is free for another process at once, not after the lease
    later = FakeSender(clock)
    assert await unpaced_worker(sqlite_database, later, clock).deliver_due() == 4
    assert later.texts("one-student") == ["m1", "m2", "m3", "m4"]


class ManualTime(FakeTime):
    """A clock the test moves; a sleep lasts until the test has moved it far enough."""

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        while self.now < until:
            await asyncio.sleep(0.001)


async def test_a_message_held_longer_than_a_lease_keeps_its_claim(
    sqlite_database: Database, person_id: int
) -> None:
    clock = ManualTime()
    slow = GatedSender(clock)  # Telegram takes its time answering
    queue(sqlite_database, person_id, "a", ["a1"])
    first = DeliveryWorker(
        OutboxStore(sqlite_database), slow, monotonic=clock, sleep=clock.sleep, lease=10
    )
    other = FakeSender(clock)
    second = DeliveryWorker(
        OutboxStore(sqlite_database), other, monotonic=clock, sleep=clock.sleep, lease=10
    )
    round_ = asyncio.create_task(first.deliver_due())
    while slow.most_flying < 1:
        await asyncio.sleep(0.01)
    for _ in range(30):  # three leases go by, the send still under way
        clock.now += 1
        await asyncio.sleep(0.05)
    assert await second.deliver_due() == 0
    slow.gate.set()
    assert await asyncio.wait_for(round_, 5) == 1
    assert other.sends == [] and slow.texts("a") == ["a1"]


def queue_urgent(db: Database, person_id: int, address: str, text: str) -> int:
    """A safety notice, as a turn queues one (``Turn.queue_urgent``)."""
    with db.begin() as conn:
        [message_id] = queue_payloads(
            Sql(conn),
            [Reply(text).to_json()],
            person_id=person_id,
            conversation_id=None,
            platform="fake",
            address=address,
            now=utcnow(),
            not_before=IMMEDIATELY,
            urgent=True,
        )
    return message_id


async def test_a_safety_notice_goes_before_everything_queued_earlier(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    for i in range(5):
        queue_proactive(sqlite_database, None, f"student{i}", [f"check-in {i}"])
    queue(sqlite_database, person_id, "asker", ["the answer to their message"])
    queue(sqlite_database, person_id, "counselor", ["an older reply to the counselor"])
    queue_urgent(sqlite_database, person_id, "counselor", "safety alert")
    worker = unpaced_worker(sqlite_database, sender, clock, concurrency=1)

    assert await worker.deliver_due() == 8
    assert [text for *_, text in sender.sends][:3] == [
        "safety alert",
        "the answer to their message",
        "an older reply to the counselor",
    ]


async def test_a_safety_notice_is_not_held_behind_a_message_that_waits_for_the_morning(
    sqlite_database: Database, person_id: int
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock)
    morning = utcnow() + timedelta(hours=8)
    queue_proactive(sqlite_database, person_id, "counselor", ["summary"], not_before=morning)
    queue_urgent(sqlite_database, person_id, "counselor", "safety alert")
    worker = unpaced_worker(sqlite_database, sender, clock)

    assert await worker.deliver_due() == 1
    assert [text for *_, text in sender.sends] == ["safety alert"]
    assert statuses(sqlite_database, person_id) == {"summary": "pending", "safety alert": "sent"}


async def test_a_safety_notice_given_up_is_an_error_for_the_adults(
    sqlite_database: Database, person_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeTime()
    sender = FakeSender(clock, {"Ana wrote: help": [SendResult.unreachable("blocked")]})
    message_id = queue_urgent(sqlite_database, person_id, "counselor", "Ana wrote: help")
    worker = unpaced_worker(sqlite_database, sender, clock)

    await worker.deliver_due()

    assert statuses(sqlite_database, person_id) == {"Ana wrote: help": "dead"}
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage() == f"safety notice {message_id} given up: see profilebot safety list"
    assert "Ana" not in caplog.text
