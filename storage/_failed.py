"""Inbound messages whose turn kept failing: set aside (parked) so they stop nobody else.

Parking is one transaction: the platform's event is claimed (a redelivery is then a
duplicate, so Telegram's offset and Slack's retries move on), the message is stored with the
class of the error that failed it, and the apology to its sender is queued in the outbox. The
message itself is kept so that an adult can replay it once the cause is fixed; like every
answer, its text is stored but never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from dialogues import Inbound, Reply

from . import _sql as q
from ._database import Database
from ._outbox import queue_replies
from ._records import Account
from ._sql import Sql
from ._tables import AnyRow, dumps, failed_inbound, loads, person, utcnow
from .errors import UnknownRecordError

__all__ = ["FailedInboundRecord", "FailedInboundStore", "Letter"]


@dataclass(frozen=True, slots=True)
class Letter:
    """One inbound message as it reached the bot: enough to replay it later.

    ``visitor`` is the adapter's description of who wrote and where replies go (JSON);
    ``account`` finds the person when ``person_id`` is not known.
    """

    platform: str
    inbound: Inbound
    visitor: Mapping[str, Any]
    event_key: str | None = None
    question_ref: int | None = None
    person_id: int | None = None
    account: Account | None = None


@dataclass(frozen=True, slots=True)
class FailedInboundRecord:
    """A parked message. ``to_json`` leaves out what the student wrote."""

    id: int
    letter: Letter
    person_handle: str | None
    error: str
    attempts: int
    status: str
    parked_at: datetime
    replayed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.letter.platform,
            "event": self.letter.event_key,
            "person": self.person_handle,
            "error": self.error,
            "attempts": self.attempts,
            "status": self.status,
            "parked_at": self.parked_at.isoformat(),
            "replayed_at": None if self.replayed_at is None else self.replayed_at.isoformat(),
        }


_COLUMNS = (
    *(failed_inbound.c.id, failed_inbound.c.platform, failed_inbound.c.event_key),
    *(failed_inbound.c.person_id, failed_inbound.c.visitor, failed_inbound.c.inbound),
    *(failed_inbound.c.question_ref, failed_inbound.c.error, failed_inbound.c.attempts),
    *(failed_inbound.c.status, failed_inbound.c.parked_at, failed_inbound.c.replayed_at),
    person.c.handle,
)
_SELECT = select(*_COLUMNS).select_from(
    failed_inbound.outerjoin(person, person.c.id == failed_inbound.c.person_id)
)


class FailedInboundStore:
    """Parks failing messages, lists them, and records what a replay did."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def park(
        self,
        letter: Letter,
        *,
        error: str,
        attempts: int,
        apology: Sequence[Reply] = (),
        address: str | None = None,
        now: datetime | None = None,
    ) -> FailedInboundRecord:
        """Set ``letter`` aside after ``attempts`` failures and queue ``apology`` to ``address``."""
        now = now or utcnow()
        with self._db.begin() as conn:
            sql = Sql(conn)
            if letter.event_key is not None:
                sql.execute(q.CLAIM_EVENT, {"key": letter.event_key, "now": sql.time(now)})
            person_id = letter.person_id
            if person_id is None and letter.account is not None:
                person_id = sql.scalar(
                    q.PERSON_ID_BY_ACCOUNT,
                    {
                        "platform": letter.account.platform,
                        "workspace": letter.account.workspace,
                        "user_id": letter.account.user_id,
                    },
                )
            new_id = conn.execute(
                insert(failed_inbound).returning(failed_inbound.c.id),
                {
                    "platform": letter.platform,
                    "event_key": letter.event_key,
                    "person_id": person_id,
                    "visitor": dumps(dict(letter.visitor)),
                    "inbound": dumps(letter.inbound.to_json()),
                    "question_ref": letter.question_ref,
                    "error": error,
                    "attempts": attempts,
                    "status": "parked",
                    "parked_at": now,
                },
            ).scalar_one()
            if apology and address is not None:
                queue_replies(
                    sql,
                    apology,
                    person_id=person_id,
                    conversation_id=None,
                    platform=letter.platform,
                    address=address,
                    now=now,
                )
            row = conn.execute(_SELECT.where(failed_inbound.c.id == new_id)).one()
        return _record(row)

    def get(self, failed_id: int) -> FailedInboundRecord:
        with self._db.read() as conn:
            row = conn.execute(_SELECT.where(failed_inbound.c.id == failed_id)).first()
        if row is None:
            raise UnknownRecordError(f"no parked message with id {failed_id}")
        return _record(row)

    def parked(self, *, include_replayed: bool = False) -> list[FailedInboundRecord]:
        """Parked messages, oldest first (and those replayed since, when asked)."""
        stmt = _SELECT.order_by(failed_inbound.c.id)
        if not include_replayed:
            stmt = stmt.where(failed_inbound.c.status == "parked")
        with self._db.read() as conn:
            return [_record(row) for row in conn.execute(stmt)]

    def replayed(self, failed_id: int, *, now: datetime | None = None) -> None:
        """The message was replayed and its turn went through."""
        self._update(failed_id, status="replayed", replayed_at=now or utcnow())

    def failed_again(self, failed_id: int, error: str) -> None:
        """A replay failed too: it stays parked, with one more attempt and its error."""
        self._update(failed_id, error=error, attempts=failed_inbound.c.attempts + 1)

    def _update(self, failed_id: int, **values: Any) -> None:
        with self._db.begin() as conn:
            result = conn.execute(
                update(failed_inbound).where(failed_inbound.c.id == failed_id).values(**values)
            )
        if result.rowcount != 1:
            raise UnknownRecordError(f"no parked message with id {failed_id}")


def _record(row: AnyRow) -> FailedInboundRecord:
    letter = Letter(
        platform=row.platform,
        inbound=Inbound.from_json(loads(row.inbound)),
        visitor=loads(row.visitor),
        event_key=row.event_key,
        question_ref=row.question_ref,
        person_id=row.person_id,
    )
    return FailedInboundRecord(
        id=row.id,
        letter=letter,
        person_handle=row.handle,
        error=row.error,
        attempts=row.attempts,
        status=row.status,
        parked_at=row.parked_at,
        replayed_at=row.replayed_at,
    )
