"""Claims of the outbox: what several delivery processes may take, and what they give up.

The same tests on SQLite and PostgreSQL. Two ``OutboxStore`` objects on one database stand
in for two processes (claims are the database's business, not a process's).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dialogues import Reply, SetOptOut
from storage import (
    IMMEDIATELY,
    OPTED_OUT,
    UNREACHABLE,
    Database,
    OutboxClaim,
    OutboxStore,
    PersonRecord,
    SendSlots,
)
from storage._outbox import queue_replies
from storage._sql import Sql

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures

LEASE = 30.0


def queue(
    db: Database,
    person_id: int | None,
    address: str,
    texts: list[str],
    *,
    platform: str = "telegram",
    proactive: bool = False,
    not_before: datetime | None = None,
) -> list[int]:
    with db.begin() as conn:
        return queue_replies(
            Sql(conn),
            [Reply(t) for t in texts],
            person_id=person_id,
            conversation_id=None,
            platform=platform,
            address=address,
            now=datetime.now(UTC),
            not_before=not_before,
            proactive=proactive,
        )


def claim(
    outbox: OutboxStore,
    *,
    wall: datetime | None = None,
    now: datetime | None = None,
    limit: int = 100,
    platform: str = "telegram",
) -> OutboxClaim:
    wall = wall or datetime.now(UTC)
    return outbox.claim(platform=platform, limit=limit, now=now or wall, wall=wall, lease=LEASE)


def ids(found: OutboxClaim) -> list[int]:
    return [m.id for m in found.messages]


def test_a_claimed_message_is_nobody_elses_until_its_claim_runs_out(
    stores: Stores, student: PersonRecord
) -> None:
    [a1] = queue(stores.db, student.id, "a", ["a1"])
    first, second = OutboxStore(stores.db), OutboxStore(stores.db)
    wall = datetime.now(UTC)
    taken = claim(first, wall=wall)
    assert ids(taken) == [a1] and not taken.full
    assert taken.until == wall + timedelta(seconds=LEASE)
    assert ids(claim(second, wall=wall)) == []
    assert ids(claim(first, wall=wall)) == []  # not twice to the same process either
    # the process that held it died: once the claim runs out, another takes it
    assert ids(claim(second, wall=wall + timedelta(seconds=LEASE + 1))) == [a1]


def test_one_address_is_served_by_one_claim_at_a_time_and_in_order(
    stores: Stores, student: PersonRecord
) -> None:
    a1, a2 = queue(stores.db, student.id, "a", ["a1", "a2"])
    [b1] = queue(stores.db, student.id, "b", ["b1"])
    first, second = OutboxStore(stores.db), OutboxStore(stores.db)
    assert ids(claim(first, limit=1)) == [a1]
    # a2 waits behind a1, held by the first process: the second gets b1, never a2
    assert ids(claim(second)) == [b1]
    [a3] = queue(stores.db, student.id, "a", ["a3"])
    assert ids(claim(second)) == []
    first.mark_sent(a1)
    assert ids(claim(second)) == [a2, a3]


def test_a_claim_keeps_each_address_behind_its_oldest_waiting_message(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    a1, a2 = stores.turn(student, replies=[Reply("a1"), Reply("a2")])
    now = datetime.now(UTC)
    stores.outbox.mark_retry(a1, now + timedelta(minutes=5), "429")
    b1, b2 = queue(stores.db, student.id, "b", ["b1", "b2"], platform="console", not_before=now)
    queue(stores.db, student.id, "b", ["s1"], platform="slack", not_before=now)

    def due(at: datetime, limit: int = 100) -> list[int]:
        outbox = OutboxStore(stores.db)  # a claim held for no time: each call sees them all
        return ids(outbox.claim(platform="console", limit=limit, now=at, wall=now, lease=0))

    assert due(now + timedelta(seconds=1)) == [b1, b2]  # a2 must not overtake a1
    assert due(now, limit=1) == [b1]
    later = now + timedelta(minutes=6)
    assert due(later) == [a1, a2, b1, b2]
    assert [m.id for m in stores.outbox.pending(platform="console", now=later)] == [a1, a2, b1, b2]


def test_due_follows_the_clock_given_and_holds_follow_the_wall_clock(
    stores: Stores, student: PersonRecord
) -> None:
    wall = datetime.now(UTC)
    quiet = wall + timedelta(hours=9)  # held for the morning
    [morning] = queue(stores.db, student.id, "a", ["morning"], not_before=quiet, proactive=True)
    [now] = queue(stores.db, student.id, "b", ["now"], not_before=IMMEDIATELY, proactive=True)
    outbox = stores.outbox
    assert ids(claim(outbox, wall=wall, now=wall)) == [now]
    assert ids(claim(outbox, wall=wall, now=quiet)) == [morning]


def test_replies_are_claimed_before_proactive_messages(
    stores: Stores, student: PersonRecord
) -> None:
    fanout = [
        queue(stores.db, None, f"s{i}", [f"check-in {i}"], proactive=True)[0] for i in range(3)
    ]
    [reply] = queue(stores.db, student.id, "x", ["your answer is saved"])
    assert ids(claim(stores.outbox, limit=2)) == [fanout[0], reply]  # the reply got in
    # ...but never before an older proactive message to the same address
    [later_reply] = queue(stores.db, None, "s2", ["a reply to s2"])
    assert ids(claim(stores.outbox)) == [fanout[1], fanout[2], later_reply]


def test_release_hands_messages_back_unless_another_claim_took_them(
    stores: Stores, student: PersonRecord
) -> None:
    a1, a2 = queue(stores.db, student.id, "a", ["a1", "a2"])
    wall = datetime.now(UTC)
    taken = claim(stores.outbox, wall=wall)
    stores.outbox.release([a1, a2], taken.until)
    retaken = claim(stores.outbox, wall=wall + timedelta(seconds=1))
    assert ids(retaken) == [a1, a2]
    stores.outbox.release([a1, a2], taken.until)  # the old claim's: not this one's
    assert ids(claim(stores.outbox, wall=wall + timedelta(seconds=2))) == []


def test_a_retried_message_is_free_for_any_process_when_due_again(
    stores: Stores, student: PersonRecord
) -> None:
    [a1] = queue(stores.db, student.id, "a", ["a1"])
    wall = datetime.now(UTC)
    assert ids(claim(stores.outbox, wall=wall)) == [a1]
    stores.outbox.mark_retry(a1, wall + timedelta(seconds=2), "502")
    assert ids(claim(OutboxStore(stores.db), wall=wall + timedelta(seconds=3))) == [a1]


def test_proactive_messages_to_someone_who_sent_stop_are_given_up(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    stores.turn(student, SetOptOut(True))
    check_in, reminder = queue(stores.db, student.id, "a", ["check-in", "reminder"], proactive=True)
    [reply] = queue(stores.db, student.id, "a", ["You won't get messages until you write."])
    found = claim(stores.outbox)
    assert ids(found) == [reply]  # what answers their own message still goes
    assert found.buried == [(check_in, OPTED_OUT), (reminder, OPTED_OUT)]
    by_id = {m.id: m for m in stores.outbox.for_person(student.id)}
    assert (by_id[check_in].status, by_id[check_in].last_error) == ("dead", OPTED_OUT)

    stores.outbox.mark_sent(reply)
    stores.turn(student, SetOptOut(False))  # they wrote again
    [next_week] = queue(stores.db, student.id, "a", ["next week"], proactive=True)
    assert ids(claim(stores.outbox)) == [next_week]


def test_nothing_proactive_goes_to_an_unreachable_identity(
    stores: Stores, student: PersonRecord
) -> None:
    stores.people.link_identity(student.id, "telegram", None, "42", "42")
    stores.people.link_identity(student.id, "slack", "T1", "U42", "D42")
    stores.people.set_reachable("telegram", None, reachable=False, chat_id="42")
    stores.people.set_reachable("slack", "T1", reachable=False, user_id="U42")
    [telegram] = queue(stores.db, student.id, "42", ["hi"], proactive=True)
    dm, by_user = (
        queue(stores.db, student.id, a, ["hi"], platform="slack", proactive=True)[0]
        for a in ("D42", "U42")
    )
    [elsewhere] = queue(stores.db, student.id, "D99", ["hi"], platform="slack", proactive=True)
    assert claim(stores.outbox).buried == [(telegram, UNREACHABLE)]
    found = claim(stores.outbox, platform="slack")
    assert found.buried == [(dm, UNREACHABLE), (by_user, UNREACHABLE)]
    assert ids(found) == [elsewhere] and found.doubted == []

    stores.people.set_reachable("telegram", None, reachable=True, chat_id="42")
    [again] = queue(stores.db, student.id, "42", ["hi again"], proactive=True)
    assert ids(claim(stores.outbox)) == [again]


def test_a_reply_to_an_identity_marked_unreachable_is_tried_and_proves_it_reachable(
    stores: Stores, student: PersonRecord
) -> None:
    """The student wrote from it (a deactivated Slack account in use again): the flag is stale."""
    stores.people.link_identity(student.id, "slack", "T1", "U42", "D42")
    stores.people.set_reachable("slack", "T1", reachable=False, user_id="U42")
    [reply] = queue(stores.db, student.id, "D42", ["your answer is saved"], platform="slack")
    found = claim(stores.outbox, platform="slack")
    assert ids(found) == [reply] and found.doubted == [reply]
    assert stores.people.is_reachable("slack", "T1", "U42") is False
    stores.outbox.mark_sent(reply)
    stores.outbox.mark_reachable([reply])
    assert stores.people.is_reachable("slack", "T1", "U42") is True


def test_processes_share_one_send_budget_per_platform(database: Database) -> None:
    first, second = OutboxStore(database), OutboxStore(database)
    wall = datetime.now(UTC)

    def reserve(outbox: OutboxStore, after: float, wanted: int = 100, **kw: str) -> SendSlots:
        at = wall + timedelta(seconds=after)
        return outbox.reserve(
            platform=kw.get("platform", "telegram"), wall=at, rate=10, ahead=1, wanted=wanted
        )

    # 10 a second, one second ahead: the next 10 slots, from now
    assert reserve(first, 0) == SendSlots(wall, 10, wall + timedelta(seconds=1))
    # the other process finds that second taken until half a second of it is free again
    assert reserve(second, 0.2) == SendSlots(
        wall + timedelta(seconds=0.5), 0, wall + timedelta(seconds=0.5)
    )
    assert reserve(second, 0.5) == SendSlots(
        wall + timedelta(seconds=1), 5, wall + timedelta(seconds=1.5)
    )
    # other platforms have budgets of their own
    assert reserve(first, 0, platform="slack").count == 10
    # a small reservation takes what it asks for; slots never used are not carried over
    later = reserve(first, 60, wanted=3)
    assert later == SendSlots(later.start, 3, later.start + timedelta(seconds=0.3))
    assert later.start == wall + timedelta(seconds=60)


def test_concurrent_claims_never_share_a_message_nor_split_an_address(
    stores: Stores, student: PersonRecord
) -> None:
    by_address: dict[str, list[int]] = {}
    for i in range(60):
        address = f"s{i % 20}"
        by_address.setdefault(address, []).extend(
            queue(stores.db, None, address, [f"m{i}.1", f"m{i}.2"], proactive=True)
        )
    sent: set[int] = set()
    taken: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        outbox = OutboxStore(stores.db)
        idle = 0
        while idle < 3:
            found = claim(outbox, limit=7)  # claims run concurrently; marks one at a time
            idle = 0 if found.messages else idle + 1
            with lock:
                mine = {m.id for m in found.messages}
                for message in found.messages:
                    older = [i for i in by_address[message.address] if i < message.id]
                    if not set(older) <= sent | mine:
                        errors.append(f"{message.id} claimed before {set(older) - sent - mine}")
                taken.extend(mine)
                outbox.mark_sent_many([(m.id, None) for m in found.messages])
                sent.update(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(taken) == sorted(i for rows in by_address.values() for i in rows)


def test_a_renewed_claim_outlives_its_first_lease_and_a_lost_one_is_not_renewed(
    stores: Stores, student: PersonRecord
) -> None:
    a1, a2 = queue(stores.db, student.id, "a", ["a1", "a2"])
    [b1] = queue(stores.db, student.id, "b", ["b1"])
    wall = datetime.now(UTC)
    first = claim(stores.outbox, wall=wall)
    stores.outbox.mark_sent(a1)
    renewed_until = first.until + timedelta(seconds=LEASE)
    assert stores.outbox.renew([a1, a2, b1], first.until, renewed_until) == {a2, b1}
    assert ids(claim(OutboxStore(stores.db), wall=first.until + timedelta(seconds=1))) == []
    # a process that stalled past its lease: the messages went to another meanwhile
    later = renewed_until + timedelta(seconds=1)
    assert ids(claim(OutboxStore(stores.db), wall=later)) == [a2, b1]
    assert stores.outbox.renew([a2, b1], renewed_until, later + timedelta(seconds=9)) == set()
