"""The outbox: every outbound message is a row first, and is delivered after its turn commits.

A message stays ``pending`` until it is sent; a failed attempt keeps it pending with a later
``not_before``; ``dead`` is given up. Errors are stored for adults, never message text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select, update

from dialogues import Reply

from ._database import Database
from ._records import OutboxRecord
from ._sql import (
    DUE_OUTBOX,
    MARK_SENT,
    OPEN_ANY,
    OUTBOX_COLUMNS,
    PROACTIVE_OUTBOX_COLUMNS,
    RECENT_OUTBOX,
    Sql,
    utc_value,
)
from ._tables import AnyRow, dumps, loads, outbox, utcnow
from .errors import UnknownRecordError

__all__ = ["IMMEDIATELY", "OutboxStore", "latest_question", "queue_replies"]

_MAX_ERROR = 2000

IMMEDIATELY: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""A ``not_before`` that every clock has passed: "deliver as soon as you can".

What the scheduler queues for now must not wait for the instant it ran at: `run-due --now`
may have run it far in the future, and delivery runs on the real clock."""


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

    ``not_before`` holds them until then (default ``now``); ``proactive`` marks messages sent
    on the bot's own initiative (a scheduled start, a reminder, a survey).
    """
    if not replies:
        return []
    at = sql.time(now)
    due = at if not_before is None else sql.time(not_before)
    rows: list[tuple[Any, ...]] = [
        (person_id, conversation_id, platform, address, dumps(r.to_json()), "pending", 0, due, at)
        for r in replies
    ]
    columns: tuple[str, ...] = OUTBOX_COLUMNS
    if proactive:
        rows = [(*row, True) for row in rows]
        columns = PROACTIVE_OUTBOX_COLUMNS
    # RETURNING's row order is not promised, but ids are drawn in VALUES order (SQLite's next
    # rowid, PostgreSQL's sequence), so ascending ids are the replies' order.
    return sorted(int(row[0]) for row in sql.insert("outbox", columns, rows, returning="id"))


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
    not_before, last_error, platform_message_id, created_at, sent_at = row[8:13]
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
    )


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

    def due(
        self,
        *,
        platform: str,
        limit: int = 100,
        now: datetime | None = None,
        after_id: int = 0,
    ) -> list[OutboxRecord]:
        """What delivery may send now, oldest first: pending messages whose ``not_before``
        has passed and that no older pending message to the same address waits behind
        (sending them first would overtake it). One statement, whatever the addresses.

        ``after_id`` leaves out older messages (those a delivery round has already seen).
        """
        with self._db.read() as conn:
            sql = Sql(conn)
            params = {
                "now": sql.time(now or utcnow()),
                "platform": platform,
                "after_id": after_id,
                "limit": limit,
            }
            rows = sql.rows(DUE_OUTBOX, params)
        return [_raw_record(r, loads(r[5])) for r in rows]

    def queue(
        self,
        replies: Sequence[Reply],
        *,
        person_id: int | None,
        platform: str,
        address: str,
    ) -> list[int]:
        """Queue messages outside any conversation (cards, help, a refusal to a stranger)."""
        with self._db.begin() as conn:
            return queue_replies(
                Sql(conn),
                replies,
                person_id=person_id,
                conversation_id=None,
                platform=platform,
                address=address,
                now=utcnow(),
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
            sql = Sql(conn)
            now = sql.time(utcnow())
            for message_id, platform_message_id in sent:
                params = {"id": message_id, "now": now, "pmid": platform_message_id}
                if sql.execute(MARK_SENT, params) == 0:
                    raise UnknownRecordError(f"no outbox message {message_id}")

    def mark_retry(self, message_id: int, not_before: datetime, error: str) -> None:
        """A failed attempt worth retrying: stays pending, due again at ``not_before``."""
        self._update(
            message_id,
            status="pending",
            attempts=outbox.c.attempts + 1,
            not_before=not_before,
            last_error=error[:_MAX_ERROR],
        )

    def mark_dead(self, message_id: int, error: str) -> None:
        """Give up on a message (too many attempts, or the platform refuses it for good)."""
        self._update(
            message_id, status="dead", attempts=outbox.c.attempts + 1, last_error=error[:_MAX_ERROR]
        )

    def _update(self, message_id: int, **values: Any) -> None:
        with self._db.begin() as conn:
            result = conn.execute(update(outbox).where(outbox.c.id == message_id).values(**values))
        if result.rowcount == 0:
            raise UnknownRecordError(f"no outbox message {message_id}")
