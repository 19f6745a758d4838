"""Invite codes: how a chat account (Telegram, Slack) is linked to a roster person.

A code is single-use and expires. Redeeming it links the identity in the same transaction
that marks the code used, so two people racing for one code cannot both get in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, insert, select, update

from ._database import Database
from ._people import link_identity, load_person
from ._records import PersonRecord
from ._tables import invite_code, utcnow
from .errors import InvalidInviteError, UnknownPersonError

__all__ = ["DEFAULT_INVITE_TTL", "InviteRecord", "InviteStore"]

DEFAULT_INVITE_TTL = timedelta(days=14)
# No 0/O, 1/l/I: codes get read aloud and copied by hand. Fits Telegram's start parameter.
_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
_LENGTH = 10


@dataclass(frozen=True, slots=True)
class InviteRecord:
    code: str
    person_id: int
    expires_at: datetime


class InviteStore:
    """Issues and redeems invite codes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def issue(
        self, person_id: int, *, ttl: timedelta = DEFAULT_INVITE_TTL, now: datetime | None = None
    ) -> InviteRecord:
        """A fresh code for ``person_id``; earlier unused codes stay valid until they expire."""
        now = now or utcnow()
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
        with self._db.begin() as conn:
            if load_person(conn, person_id) is None:
                raise UnknownPersonError(f"no person with id {person_id}")
            conn.execute(
                insert(invite_code),
                {"code": code, "person_id": person_id, "created_at": now, "expires_at": now + ttl},
            )
        return InviteRecord(code, person_id, now + ttl)

    def redeem(
        self,
        code: str,
        *,
        platform: str,
        workspace: str | None,
        user_id: str,
        chat_id: str | None,
        now: datetime | None = None,
    ) -> PersonRecord:
        """Link the platform user to the code's person and use the code up, atomically."""
        now = now or utcnow()
        code = code.strip()
        with self._db.begin() as conn:
            claimed = conn.execute(
                update(invite_code)
                .where(
                    invite_code.c.code == code,
                    invite_code.c.redeemed_at.is_(None),
                    invite_code.c.expires_at > now,
                )
                .values(redeemed_at=now, redeemed_by=f"{platform}:{workspace or ''}:{user_id}")
                .returning(invite_code.c.person_id)
            ).scalar()
            if claimed is None:
                state = conn.execute(
                    select(invite_code.c.redeemed_at).where(invite_code.c.code == code)
                ).first()
                raise InvalidInviteError(_why_refused(state))
            link_identity(conn, claimed, platform, workspace, user_id, chat_id)
            person = load_person(conn, claimed)
        assert person is not None  # the foreign key guarantees it
        return person


def _why_refused(state: Row[tuple[datetime | None]] | None) -> str:
    if state is None:
        return "that invite code is not one we know"
    if state[0] is not None:
        return "that invite code has already been used"
    return "that invite code has expired"
