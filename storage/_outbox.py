"""The outbox: every outbound message is a row first, and is delivered after its turn commits.

A message stays ``pending`` until it is sent; a failed attempt keeps it pending with a later
``not_before``; ``dead`` is given up. Errors are stored for adults, never message text.

Several processes may deliver at once: each ``claim``s the rows it is about to send (held
until ``claimed_until``, a lease on the wall clock, renewed while held, so rows a crashed
process held go to another once it runs out) and ``reserve``s send slots in the platform's
budget, which they share (``delivery_pace``). A claim never splits one address's messages
between processes, and gives up at once (``dead``) on proactive messages to someone who sent
/stop or to an identity known to be unreachable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from dialogues import Reply

from ._database import Database
from ._records import OutboxRecord
from ._sql import (
    BURY_OUTBOX,
    CLAIMABLE_OUTBOX,
    MARK_SENT,
    NEW_PACE,
    OPEN_ANY,
    OUTBOX_COLUMNS,
    PACE,
    REACHABLE_AGAIN,
    RECENT_OUTBOX,
    SET_PACE,
    Sql,
    Statement,
    claim_rows,
    release_rows,
    renew_rows,
    utc_value,
)
from ._tables import AnyRow, dumps, loads, outbox, utcnow
from .errors import UnknownRecordError

__all__ = [
    "IMMEDIATELY",
    "INACTIVE",
    "OPTED_OUT",
    "UNREACHABLE",
    "OutboxClaim",
    "OutboxStore",
    "SendSlots",
    "latest_question",
    "queue_payloads",
    "queue_replies",
]

_MAX_ERROR = 2000
_IDS_PER_STATEMENT = 100

IMMEDIATELY = datetime(2000, 1, 1, tzinfo=UTC)
"""A ``not_before`` that is due whatever any clock says: for messages queued to go at once by
code running on a moved clock (``schedule run-due --now`` in the future), which must not wait
for that instant on the real one."""
OPTED_OUT = "opted_out"
"""``last_error`` of a proactive message given up because its person sent /stop."""
UNREACHABLE = "unreachable"
"""``last_error`` of a message given up because the identity it goes to is unreachable."""
INACTIVE = "inactive"
"""``last_error`` of a proactive message given up because its person left the roster."""


def queue_replies(
    sql: Sql,
    replies: Sequence[Reply],
    *,
    person_id: int | None,
    conversation_id: int | None,
    platform: str,
    address: str,
    now: datetime,
    not_before: datetime | None = None,
    proactive: bool = False,
) -> list[int]:
    """Queue one pending row per reply, in one statement; returns their ids in reply order.

    They are due from ``not_before`` (default ``now``). ``proactive``: sent on the bot's own
    initiative (a scheduled start, a reminder, a survey), so never to someone who sent /stop.
    """
    return queue_payloads(
        sql,
        [r.to_json() for r in replies],
        person_id=person_id,
        conversation_id=conversation_id,
        platform=platform,
        address=address,
        now=now,
        not_before=not_before,
        proactive=proactive,
    )


def queue_payloads(
    sql: Sql,
    payloads: Sequence[dict[str, Any]],
    *,
    person_id: int | None,
    conversation_id: int | None,
    platform: str,
    address: str,
    now: datetime,
    not_before: datetime | None = None,
    proactive: bool = False,
    urgent: bool = False,
    about: Sequence[int] = (),
) -> list[int]:
    """``queue_replies`` for payloads already as JSON: a Reply's, or a part of a notice
    (``{"notice": ...}``, see ``OutboxRecord.notice``); ids in payload order. ``urgent``: a
    safety notice (see ``OutboxRecord.urgent``). ``about``: the people the rows tell someone
    else about (``outbox_subject``), so that erasing one of them deletes the rows."""
    if not payloads:
        return []
    at = sql.time(now)
    due = at if not_before is None else sql.time(not_before)
    rows = [
        (
            *(person_id, conversation_id, platform, address, dumps(p), "pending", 0),
            *(due, at, proactive, urgent),
        )
        for p in payloads
    ]
    columns: tuple[str, ...] = OUTBOX_COLUMNS
    # RETURNING's row order is not promised, but ids are drawn in VALUES order (SQLite's next
    # rowid, PostgreSQL's sequence), so ascending ids are the payloads' order.
    ids = sorted(int(row[0]) for row in sql.insert("outbox", columns, rows, returning="id"))
    subjects = sorted({p for p in about if p != person_id})
    if subjects:
        pairs = [(i, p) for i in ids for p in subjects]
        sql.insert("outbox_subject", ("outbox_id", "person_id"), pairs)
    return ids


_QUESTION_LOOKBACKS = (3, 20)  # a turn queues a few replies; its question is among the last


def latest_question(sql: Sql, conversation_id: int) -> OutboxRecord | None:
    """The conversation's most recent question message (a reply with a step), if any.

    The one a button press must belong to, and the one to edit once it is answered. Every
    turn that may close a question asks this: plain SQL, and JSON is parsed only as far as
    the question.
    """
    checked = 0
    for limit in _QUESTION_LOOKBACKS:  # it is almost always the newest row or the one before
        rows = sql.rows(RECENT_OUTBOX, {"conversation_id": conversation_id, "limit": limit})
        for row in rows[checked:]:
            payload = loads(row[5])
            if payload.get("step_id") is not None:
                return _raw_record(row, payload)
        if len(rows) < limit:
            return None
        checked = limit
    return None


def _raw_record(row: Sequence[Any], payload: dict[str, Any]) -> OutboxRecord:
    """A record from a row of ``OUTBOX_RECORD_COLUMNS`` read with ``Sql``."""
    (id_, person_id, conversation_id, platform, address, _, status, attempts) = row[:8]
    not_before, last_error, platform_message_id, created_at, sent_at, proactive, urgent = row[8:15]
    return OutboxRecord(
        id=id_,
        person_id=person_id,
        conversation_id=conversation_id,
        platform=platform,
        address=address,
        payload=payload,
        status=status,
        attempts=attempts,
        not_before=utc_value(not_before),
        last_error=last_error,
        platform_message_id=platform_message_id,
        created_at=utc_value(created_at),
        sent_at=None if sent_at is None else utc_value(sent_at),
        proactive=bool(proactive),
        urgent=bool(urgent),
    )


@dataclass(frozen=True, slots=True)
class OutboxClaim:
    """What ``OutboxStore.claim`` took: the messages this process now holds, and those it gave
    up instead (id, reason)."""

    messages: list[OutboxRecord]
    buried: list[tuple[int, str]]
    doubted: list[int]
    """Replies claimed although they go to an identity marked unreachable: the person wrote
    from it since (a deactivated Slack account back in use), so they are tried; one that the
    platform accepts makes the identity reachable again (``mark_reachable``)."""
    full: bool
    """As many rows were taken as asked for: more may be waiting."""
    until: datetime
    """The messages are held until then (``release`` needs it)."""


@dataclass(frozen=True, slots=True)
class SendSlots:
    """Send slots ``OutboxStore.reserve`` took from a platform's shared budget: ``count``
    messages, the first at ``start`` and the rest at the rate after it, until ``end``
    (wall-clock times). With ``count`` 0 the budget is taken until ``start``: ask again then."""

    start: datetime
    count: int
    end: datetime


def _pace(sql: Sql, platform: str, wall: datetime) -> datetime:
    """The platform's budget row, locked until commit (claims and reservations of one
    platform take turns); where its free slots start."""
    next_at = sql.scalar(PACE, {"platform": platform})
    if next_at is None:
        sql.execute(NEW_PACE, {"platform": platform, "next_at": sql.time(wall)})
        next_at = sql.scalar(PACE, {"platform": platform})
    return utc_value(next_at)


def _mark_sent(sql: Sql, sent: Sequence[tuple[int, str | None]]) -> None:
    now = sql.time(utcnow())
    for message_id, platform_message_id in sent:
        params = {"id": message_id, "now": now, "pmid": platform_message_id}
        if sql.execute(MARK_SENT, params) == 0:
            raise UnknownRecordError(f"no outbox message {message_id}")


def _for_ids(
    sql: Sql, build: Callable[[int], Statement], ids: list[int], params: dict[str, Any]
) -> None:
    """Run ``build(n)``'s statement over ``ids``, at most ``_IDS_PER_STATEMENT`` at a time."""
    for begin in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[begin : begin + _IDS_PER_STATEMENT]
        sql.execute(build(len(chunk)), {**params, **{f"id_{n}": i for n, i in enumerate(chunk)}})


def _record(row: AnyRow) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        person_id=row.person_id,
        conversation_id=row.conversation_id,
        platform=row.platform,
        address=row.address,
        payload=loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        not_before=row.not_before,
        last_error=row.last_error,
        platform_message_id=row.platform_message_id,
        created_at=row.created_at,
        sent_at=row.sent_at,
        proactive=bool(row.proactive),
        urgent=bool(row.urgent),
    )


class OutboxStore:
    """What delivery needs: the messages due now, and recording how each attempt went."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def pending(
        self,
        *,
        platform: str | None = None,
        address: str | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> list[OutboxRecord]:
        """Pending messages whose ``not_before`` has passed, oldest first.

        ``platform`` and ``address`` narrow it (the console delivers only its own chat).
        """
        stmt = select(outbox).where(
            outbox.c.status == "pending", outbox.c.not_before <= (now or utcnow())
        )
        if platform is not None:
            stmt = stmt.where(outbox.c.platform == platform)
        if address is not None:
            stmt = stmt.where(outbox.c.address == address)
        with self._db.read() as conn:
            rows = conn.execute(stmt.order_by(outbox.c.id).limit(limit)).all()
        return [_record(r) for r in rows]

    def claim(
        self,
        *,
        platform: str,
        limit: int,
        now: datetime,
        wall: datetime,
        lease: float,
        sent: Sequence[tuple[int, str | None]] = (),
    ) -> OutboxClaim:
        """Hold up to ``limit`` messages for this process to send, in one transaction.

        Due means ``not_before <= now`` (``now`` is the injected clock's); holds run on the
        wall clock (``wall``), shared by every process: the claimed rows are held until
        ``wall + lease`` seconds. Rows held by anyone, and rows behind an older pending
        message to the same address that is held or not due, are left out, so one address's
        messages go out in order, from one process at a time. When not all can be taken,
        replies go before proactive messages (a fan-out to thousands must not hold up the
        answer to a student's message), else the oldest first; they come back oldest first.
        Urgent messages (safety notices) are the exception: taken before all others and never
        held behind older ones to their address; they come back first.

        The claims of one platform take turns (they lock its ``delivery_pace`` row; on SQLite
        every write transaction does), so two can never split one address's messages.

        Proactive messages to someone who opted out (/stop), who left the roster, or to an
        identity known to be unreachable are given up (``dead``, reason
        ``OPTED_OUT``/``INACTIVE``/``UNREACHABLE``) instead of being claimed. Replies still go
        (the answer to /stop, say): see ``OutboxClaim.doubted`` for those to an identity marked
        unreachable.

        ``sent`` first records messages the platform accepted, as ``mark_sent_many`` does, in
        the same transaction (delivery's hot path: one trip for both).
        """
        until = wall + timedelta(seconds=lease)
        with self._db.begin() as conn:
            sql = Sql(conn)
            _mark_sent(sql, sent)
            _pace(sql, platform, wall)
            params = {
                "platform": platform,
                "now": sql.time(now),
                "wall": sql.time(wall),
                "limit": limit,
            }
            rows = sql.rows(CLAIMABLE_OUTBOX, params)
            claimed: list[OutboxRecord] = []
            buried: list[tuple[int, str]] = []
            doubted: list[int] = []
            for row in rows:
                record = _raw_record(row, loads(row[5]))
                opted_out, active, unreachable = bool(row[-3]), row[-2], bool(row[-1])
                inactive = active is not None and not active
                if record.proactive and (opted_out or inactive or unreachable):
                    reason = OPTED_OUT if opted_out else INACTIVE if inactive else UNREACHABLE
                    sql.execute(BURY_OUTBOX, {"id": record.id, "error": reason})
                    buried.append((record.id, reason))
                    continue
                claimed.append(record)
                if unreachable:
                    doubted.append(record.id)
            _for_ids(sql, claim_rows, [r.id for r in claimed], {"until": sql.time(until)})
        claimed.sort(key=lambda r: (not r.urgent, r.id))
        return OutboxClaim(
            claimed,
            buried,
            doubted,
            full=len(rows) == limit,
            until=until,
        )

    def reserve(
        self, *, platform: str, wall: datetime, rate: float, ahead: float, wanted: int
    ) -> SendSlots:
        """Take up to ``wanted`` send slots from the platform's budget, shared by every
        process that delivers to it: ``rate`` sends a second in all, the platform's limit
        being the bot's and not a process's.

        Slots are handed out in order from where the last reservation ended (or now): at most
        ``ahead`` seconds' worth past ``wall``, and none while less than half of that (or of
        ``wanted``) is free, so that processes take turns in useful chunks. A process sends
        only inside the slots it holds; what it does not use is lost, never carried over.
        """
        if not math.isfinite(rate) or rate <= 0 or ahead <= 0 or wanted < 1:
            raise ValueError("a reservation needs a positive rate, horizon and count")
        with self._db.begin() as conn:
            sql = Sql(conn)
            start = max(_pace(sql, platform, wall), wall)
            free = math.floor(((wall - start).total_seconds() + ahead) * rate + 1e-9)
            chunk = min(wanted, max(1, math.floor(ahead * rate / 2)))
            if free < chunk:  # come back once a chunk is free
                at = start - timedelta(seconds=ahead) + timedelta(seconds=chunk / rate)
                return SendSlots(max(at, wall), 0, max(at, wall))
            count = min(wanted, free)
            end = start + timedelta(seconds=count / rate)
            sql.execute(SET_PACE, {"platform": platform, "next_at": sql.time(end)})
        return SendSlots(start, count, end)

    def mark_reachable(self, message_ids: Sequence[int]) -> None:
        """The platform accepted these messages: the identities they went to are reachable."""
        with self._db.begin() as conn:
            sql = Sql(conn)
            for message_id in message_ids:
                sql.execute(REACHABLE_AGAIN, {"id": message_id})

    def release(self, message_ids: Sequence[int], until: datetime) -> None:
        """Let go of messages this process claimed (with the claim held ``until``) and will not
        send now, so that any process may claim them again at once. Rows another process
        claimed since (this claim ran out) are left alone."""
        with self._db.begin() as conn:
            sql = Sql(conn)
            _for_ids(sql, release_rows, list(message_ids), {"until": sql.time(until)})

    def renew(self, message_ids: Sequence[int], until: datetime, new_until: datetime) -> set[int]:
        """Hold messages this process still holds (claimed until ``until``) until
        ``new_until``; returns those renewed: one whose claim ran out, and that another
        process may have claimed since, is not."""
        renewed: set[int] = set()
        with self._db.begin() as conn:
            sql = Sql(conn)
            for begin in range(0, len(message_ids), _IDS_PER_STATEMENT):
                chunk = message_ids[begin : begin + _IDS_PER_STATEMENT]
                params = {
                    "until": sql.time(until),
                    "new_until": sql.time(new_until),
                    **{f"id_{n}": i for n, i in enumerate(chunk)},
                }
                renewed.update(int(row[0]) for row in sql.rows(renew_rows(len(chunk)), params))
        return renewed

    def queue(
        self,
        replies: Sequence[Reply],
        *,
        person_id: int | None,
        platform: str,
        address: str,
        not_before: datetime | None = None,
        proactive: bool = False,
    ) -> list[int]:
        """Queue messages outside any conversation (cards, help, a refusal to a stranger);
        ``not_before`` and ``proactive`` as in ``queue_replies``."""
        with self._db.begin() as conn:
            return queue_replies(
                Sql(conn),
                replies,
                person_id=person_id,
                conversation_id=None,
                platform=platform,
                address=address,
                now=utcnow(),
                not_before=not_before,
                proactive=proactive,
            )

    def queue_payloads(
        self,
        payloads: Sequence[dict[str, Any]],
        *,
        person_id: int | None,
        platform: str,
        address: str,
        not_before: datetime | None = None,
        proactive: bool = False,
    ) -> list[int]:
        """``queue`` for payloads already as JSON (the parts of a notice), in one transaction:
        all of them or none."""
        with self._db.begin() as conn:
            return queue_payloads(
                Sql(conn),
                payloads,
                person_id=person_id,
                conversation_id=None,
                platform=platform,
                address=address,
                now=utcnow(),
                not_before=not_before,
                proactive=proactive,
            )

    def for_person(self, person_id: int) -> list[OutboxRecord]:
        """Every message to this person, whatever its status, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(outbox).where(outbox.c.person_id == person_id).order_by(outbox.c.id)
            ).all()
        return [_record(r) for r in rows]

    def get(self, message_id: int) -> OutboxRecord:
        with self._db.read() as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == message_id)).first()
        if row is None:
            raise UnknownRecordError(f"no outbox message {message_id}")
        return _record(row)

    def open_question(self, message_id: int) -> OutboxRecord | None:
        """The question message, if it is the one its student's conversation waits on now.

        The same test a turn applies to a button press (the latest question of the person's
        latest open conversation), for work done before any turn, such as ticking a box.
        """
        with self._db.read() as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == message_id)).first()
            if row is None or row.conversation_id is None or row.person_id is None:
                return None
            sql = Sql(conn)
            latest = sql.first(OPEN_ANY, {"person_id": row.person_id})
            if latest is None or latest[0] != row.conversation_id:
                return None
            question = latest_question(sql, row.conversation_id)
        return question if question is not None and question.id == message_id else None

    def mark_sent(self, message_id: int, platform_message_id: str | None = None) -> None:
        """The platform accepted the message."""
        self.mark_sent_many([(message_id, platform_message_id)])

    def mark_sent_many(self, sent: Sequence[tuple[int, str | None]]) -> None:
        """Several messages the platform accepted, as (id, platform message id), in one
        transaction (delivery's hot write). An unknown id raises and marks none of them."""
        with self._db.begin() as conn:
            _mark_sent(Sql(conn), sent)

    def mark_retry(self, message_id: int, not_before: datetime, error: str) -> None:
        """A failed attempt worth retrying: stays pending, due again at ``not_before``, and
        no longer held by the process that tried (any process may take it from then on)."""
        self._update(
            message_id,
            status="pending",
            attempts=outbox.c.attempts + 1,
            not_before=not_before,
            last_error=error[:_MAX_ERROR],
            claimed_until=None,
        )

    def mark_dead(self, message_id: int, error: str) -> None:
        """Give up on a message (too many attempts, or the platform refuses it for good)."""
        self._update(
            message_id,
            status="dead",
            attempts=outbox.c.attempts + 1,
            last_error=error[:_MAX_ERROR],
            claimed_until=None,
        )

    def _update(self, message_id: int, **values: Any) -> None:
        with self._db.begin() as conn:
            result = conn.execute(update(outbox).where(outbox.c.id == message_id).values(**values))
        if result.rowcount == 0:
            raise UnknownRecordError(f"no outbox message {message_id}")
