"""People, their roles, groups, advisors and platform identities."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import _sql as q
from ._database import Database
from ._records import PersonRecord
from ._sql import Sql
from ._tables import (
    ROLES,
    AnyRow,
    advisor_link,
    channel_identity,
    group_member,
    person,
    person_role,
    student_group,
    utcnow,
)
from .errors import InvalidValueError, UnknownPersonError

__all__ = ["PeopleStore", "load_person", "normalise_handle"]

_HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ADVISING_ROLES = frozenset({"advisor", "teacher", "admin"})
_ATTEMPTS = 3  # a derived handle can race another add; try again with the next suffix

_PERSON_BY_ID = (
    select(
        person.c.id,
        person.c.handle,
        person.c.display_name,
        person.c.first_name,
        person.c.timezone,
        person.c.language,
        person.c.opted_out,
        person_role.c.role,
    )
    .select_from(person.outerjoin(person_role, person_role.c.person_id == person.c.id))
    .where(person.c.id == bindparam("person_id"))
    .order_by(person_role.c.role)
)
_ID_BY_HANDLE = select(person.c.id).where(person.c.handle == bindparam("handle"))
_ID_BY_EMAIL = select(person.c.id).where(person.c.email == bindparam("email"))
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def load_person(conn: Connection, person_id: int) -> PersonRecord | None:
    """One person with their roles in one query (turns take the lock with their own, _sql)."""
    rows = conn.execute(_PERSON_BY_ID, {"person_id": person_id}).all()
    return _person_record(rows) if rows else None


def person_from_rows(rows: Sequence[Sequence[Any]]) -> PersonRecord:
    """The person from raw rows of ``_sql``'s person columns (one row per role, roles sorted)."""
    pid, handle, display_name, first_name, timezone, language, opted_out = rows[0][:7]
    return PersonRecord(
        id=pid,
        handle=handle,
        display_name=display_name,
        first_name=first_name,
        timezone=timezone,
        language=language,
        roles=tuple(r[7] for r in rows if r[7] is not None),
        opted_out=bool(opted_out),
    )


def _person_record(rows: Sequence[AnyRow]) -> PersonRecord:
    first = rows[0]
    return PersonRecord(
        id=first.id,
        handle=first.handle,
        display_name=first.display_name,
        first_name=first.first_name,
        timezone=first.timezone,
        language=first.language,
        roles=tuple(r.role for r in rows if r.role is not None),
        opted_out=bool(first.opted_out),
    )


def normalise_handle(handle: str) -> str:
    """Handles are compared lowercase and without a leading ``@``."""
    return handle.strip().lstrip("@").lower()


def slugify(name: str) -> str:
    """A lowercase ASCII slug of a name: "Ana María López" -> "ana-maria-lopez"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-")
    return slug or "person"


class PeopleStore:
    """Who is who: add people (the roster), find them by handle or platform identity."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        name: str,
        role: str,
        *,
        handle: str | None = None,
        advisor: str | None = None,
        group: str | None = None,
        timezone: str | None = None,
        language: str = "en",
        email: str | None = None,
        also: Sequence[str] = (),
    ) -> PersonRecord:
        """Add a person; a handle is derived from the name (``ana-lopez``, ``ana-lopez-2``).
        ``also``: more roles they have (a teacher who is also a counselor)."""
        display_name = " ".join(name.split())
        if not display_name:
            raise InvalidValueError("a person needs a name")
        for each in (role, *also):
            _check_role(each)
        _check_timezone(timezone)
        wanted = None if handle is None else _check_handle(handle)
        address = None if email is None else _check_email(email)
        for attempt in range(_ATTEMPTS):
            try:
                with self._db.begin() as conn:
                    advisor_id = None if advisor is None else _advisor_id(conn, advisor)
                    _check_email_free(conn, address)
                    person_id = _insert_person(
                        conn,
                        display_name,
                        _pick_handle(conn, display_name, wanted),
                        timezone=timezone,
                        language=language or "en",
                        email=address,
                    )
                    _link(conn, person_id, role, advisor_id, group)
                    for extra in dict.fromkeys(also):
                        if extra != role:
                            conn.execute(
                                insert(person_role), {"person_id": person_id, "role": extra}
                            )
                    record = load_person(conn, person_id)
                    assert record is not None
                    return record
            except IntegrityError:  # a concurrent add took the handle or made the group
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, handle: str) -> PersonRecord:
        """The person with this handle, or UnknownPersonError."""
        record = self.find(handle)
        if record is None:
            raise UnknownPersonError(f"no person with handle {normalise_handle(handle)!r}")
        return record

    def find(self, handle: str) -> PersonRecord | None:
        with self._db.read() as conn:
            person_id = conn.execute(_ID_BY_HANDLE, {"handle": normalise_handle(handle)}).scalar()
            return None if person_id is None else load_person(conn, person_id)

    def by_id(self, person_id: int) -> PersonRecord:
        """The person with this id, or UnknownPersonError."""
        with self._db.read() as conn:
            record = load_person(conn, person_id)
        if record is None:
            raise UnknownPersonError(f"no person with id {person_id}")
        return record

    def ensure_student(self, handle: str) -> PersonRecord:
        """The person with this handle, created as a local student named after it if missing."""
        found = self.find(handle)
        if found is not None:
            return found
        try:
            return self.add(normalise_handle(handle), "student", handle=handle)
        except InvalidValueError:  # someone else created it just now
            found = self.find(handle)
            if found is None:
                raise
            return found

    def by_identity(
        self, platform: str, workspace: str | None, user_id: str
    ) -> PersonRecord | None:
        """The person a platform user is linked to, if any (``workspace`` None means "")."""
        params = {"platform": platform, "workspace": workspace or "", "user_id": user_id}
        with self._db.read() as conn:  # every message asks this first: one plain statement
            rows = Sql(conn).rows(q.PERSON_BY_IDENTITY, params)
        return person_from_rows(rows) if rows else None

    def link_by_email(
        self,
        email: str,
        platform: str,
        workspace: str | None,
        user_id: str,
        chat_id: str | None,
    ) -> PersonRecord | None:
        """Link a platform user to the roster person with this email (Slack's way of joining).

        None when nobody has that email. Emails compare lowercase.
        """
        with self._db.begin() as conn:
            person_id = conn.execute(_ID_BY_EMAIL, {"email": email.strip().lower()}).scalar()
            if person_id is None:
                return None
            link_identity(conn, person_id, platform, workspace, user_id, chat_id)
            return load_person(conn, person_id)

    def place_identity(
        self, platform: str, workspace: str, user_id: str, chat_id: str | None
    ) -> PersonRecord | None:
        """The person an account was linked to before its workspace was known (a roster's
        Slack user id), now placed in ``workspace`` where it wrote from; None if there is
        no such account."""
        with self._db.begin() as conn:
            person_id = conn.execute(
                update(channel_identity)
                .where(
                    channel_identity.c.platform == platform,
                    channel_identity.c.workspace == "",
                    channel_identity.c.platform_user_id == user_id,
                )
                .values(workspace=workspace, chat_id=chat_id)
                .returning(channel_identity.c.person_id)
            ).scalar()
            return None if person_id is None else load_person(conn, person_id)

    def link_identity(
        self,
        person_id: int,
        platform: str,
        workspace: str | None,
        user_id: str,
        chat_id: str | None,
    ) -> None:
        """Link (or re-link) a platform user to a person; the identity becomes reachable."""
        with self._db.begin() as conn:
            if load_person(conn, person_id) is None:
                raise UnknownPersonError(f"no person with id {person_id}")
            link_identity(conn, person_id, platform, workspace, user_id, chat_id)

    def set_reachable(
        self,
        platform: str,
        workspace: str | None,
        *,
        reachable: bool,
        user_id: str | None = None,
        chat_id: str | None = None,
    ) -> int:
        """Mark the identities of a platform user (or chat) reachable or not; returns how many.

        Unreachable means the platform refuses to deliver to them (the student blocked the
        bot); delivery stops until they come back.
        """
        if (user_id is None) == (chat_id is None):
            raise ValueError("name exactly one of user_id and chat_id")
        where = [
            channel_identity.c.platform == platform,
            channel_identity.c.workspace == (workspace or ""),
        ]
        if user_id is not None:
            where.append(channel_identity.c.platform_user_id == user_id)
        else:
            where.append(channel_identity.c.chat_id == chat_id)
        with self._db.begin() as conn:
            result = conn.execute(
                update(channel_identity).where(*where).values(unreachable=not reachable)
            )
        return int(result.rowcount)

    def is_reachable(self, platform: str, workspace: str | None, user_id: str) -> bool | None:
        """Whether a linked platform user can be sent to; None when the user is not linked."""
        with self._db.read() as conn:
            unreachable = conn.execute(
                select(channel_identity.c.unreachable).where(
                    channel_identity.c.platform == platform,
                    channel_identity.c.workspace == (workspace or ""),
                    channel_identity.c.platform_user_id == user_id,
                )
            ).scalar()
        return None if unreachable is None else not unreachable


def link_identity(
    conn: Connection,
    person_id: int,
    platform: str,
    workspace: str | None,
    user_id: str,
    chat_id: str | None,
) -> None:
    """Within ``conn``'s transaction: point a platform user at a person, reachable again."""
    workspace = workspace or ""
    values = {"person_id": person_id, "chat_id": chat_id, "unreachable": False}
    existing = conn.execute(
        select(channel_identity.c.id).where(
            channel_identity.c.platform == platform,
            channel_identity.c.workspace == workspace,
            channel_identity.c.platform_user_id == user_id,
        )
    ).scalar()
    if existing is None:
        conn.execute(
            insert(channel_identity),
            {**values, "platform": platform, "workspace": workspace, "platform_user_id": user_id},
        )
    else:
        conn.execute(update(channel_identity).where(channel_identity.c.id == existing), values)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def _check_timezone(timezone: str | None) -> None:
    if timezone is None:
        return
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValueError(
            f"unknown time zone {timezone!r}: use an IANA name such as Europe/Madrid"
        ) from None


def _check_handle(handle: str) -> str:
    normal = normalise_handle(handle)
    if not _HANDLE_RE.match(normal):
        raise InvalidValueError(
            f"invalid handle {handle!r}: use lowercase letters, digits, '.', '_' or '-'"
        )
    return normal


def _advisor_id(conn: Connection, handle: str) -> int:
    advisor_id = conn.execute(_ID_BY_HANDLE, {"handle": normalise_handle(handle)}).scalar()
    if advisor_id is None:
        raise UnknownPersonError(f"no advisor with handle {normalise_handle(handle)!r}")
    roles = set(
        conn.scalars(select(person_role.c.role).where(person_role.c.person_id == advisor_id))
    )
    if not roles & _ADVISING_ROLES:
        raise InvalidValueError(
            f"{normalise_handle(handle)!r} cannot be an advisor: add them as advisor or teacher"
        )
    return int(advisor_id)


def _pick_handle(conn: Connection, name: str, wanted: str | None) -> str:
    if wanted is not None:
        if conn.execute(_ID_BY_HANDLE, {"handle": wanted}).scalar() is not None:
            raise InvalidValueError(f"handle {wanted!r} is already taken")
        return wanted
    base = slugify(name)
    taken = set(conn.scalars(select(person.c.handle).where(person.c.handle.startswith(base))))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def _check_email(email: str) -> str:
    address = email.strip().lower()
    if not _EMAIL_RE.match(address) or len(address) > 254:
        raise InvalidValueError(f"{email!r} is not an email address")
    return address


def _check_email_free(conn: Connection, email: str | None) -> None:
    if email is not None and conn.execute(_ID_BY_EMAIL, {"email": email}).first() is not None:
        raise InvalidValueError(f"someone on the roster already has the email {email}")


def _insert_person(
    conn: Connection,
    name: str,
    handle: str,
    *,
    timezone: str | None,
    language: str,
    email: str | None,
) -> int:
    result = conn.execute(
        insert(person).returning(person.c.id),
        {
            "handle": handle,
            "email": email,
            "display_name": name,
            "first_name": name.split()[0],
            "timezone": timezone,
            "language": language,
            "opted_out": False,
            "created_at": utcnow(),
        },
    )
    return int(result.scalar_one())


def _link(
    conn: Connection, person_id: int, role: str, advisor_id: int | None, group: str | None
) -> None:
    conn.execute(insert(person_role), {"person_id": person_id, "role": role})
    if advisor_id is not None:
        conn.execute(insert(advisor_link), {"advisor_id": advisor_id, "student_id": person_id})
    if group is not None and group.strip():
        group_id = _group_id(conn, " ".join(group.split()))
        conn.execute(insert(group_member), {"group_id": group_id, "person_id": person_id})


def _group_id(conn: Connection, name: str) -> int:
    """The group with this name, created on first use."""
    found = conn.execute(select(student_group.c.id).where(student_group.c.name == name)).scalar()
    if found is not None:
        return int(found)
    result = conn.execute(
        insert(student_group).returning(student_group.c.id),
        {"name": name, "created_at": utcnow()},
    )
    return int(result.scalar_one())
