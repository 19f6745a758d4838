"""The roster at once: a class or a whole school imported in one transaction, accounts an
administrator already knows linked, and who belongs to which group.

An import is set-based. It reads what the file touches with a few ``IN`` queries, works out
each row's changes in Python, and writes them with one statement per table (executemany),
so its cost grows with the file, not with round trips per row. Every problem is found
before anything is written; a file with one bad row changes nothing.

Rows are keyed by handle (a row without one is keyed by its name's slug, as ``people add``
derives it), so importing the same file twice changes nothing the second time. An optional
column left empty leaves what is stored alone; a filled one sets it (``group``: exactly
these groups). Roles are added, never taken away; an import never removes a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from ._database import Database
from ._people import (
    _check_email,
    _check_handle,
    _check_role,
    _check_timezone,
    link_identity,
    load_person,
    normalise_handle,
    slugify,
)
from ._records import GroupRecord, PersonRecord
from ._tables import (
    advisor_link,
    channel_identity,
    group_member,
    person,
    person_role,
    student_group,
    utcnow,
)
from .errors import InvalidValueError, UnknownPersonError, UnknownRecordError

__all__ = [
    "PLATFORMS",
    "ImportCounts",
    "RosterEntry",
    "RosterError",
    "RosterStore",
]

PLATFORMS: Final = ("telegram", "slack")
"""The chat platforms an account can be linked on."""

_ADVISING_ROLES: Final = frozenset({"advisor", "teacher", "admin"})
_CHUNK: Final = 500  # values per IN list: far below either backend's parameter limit
_SHOWN_PROBLEMS: Final = 3
_ROSTER_LOCK_ID: Final = 0x726F7374  # "rost": one roster import at a time on PostgreSQL
_ACCOUNT_RES: Final = {
    "telegram": re.compile(r"[1-9][0-9]{0,19}"),  # a user id; a private chat's id is the same
    "slack": re.compile(r"[UW][A-Z0-9]{2,20}"),
}
_ACCOUNT_FORMS: Final = {"telegram": "a Telegram user id (digits)", "slack": "a Slack user id"}


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One row of a roster file, as read; ``line`` is where it starts (the header is line 1).

    ``groups`` empty and the optional fields None mean "left empty in the file".
    """

    line: int
    name: str
    role: str
    handle: str | None = None
    groups: tuple[str, ...] = ()
    advisor: str | None = None
    timezone: str | None = None
    email: str | None = None
    telegram_id: str | None = None
    slack_id: str | None = None


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did, by person: added, changed in some way, or already as in the file."""

    added: int
    updated: int
    unchanged: int

    def to_json(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged}


class RosterError(InvalidValueError):
    """Rows of a roster file that cannot be imported, by line; nothing was imported."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems = tuple(sorted(problems))
        shown = "; ".join(f"line {line}: {what}" for line, what in self.problems[:_SHOWN_PROBLEMS])
        more = len(self.problems) - _SHOWN_PROBLEMS
        if more > 0:
            shown += f" (and {more} more)"
        rows = len({line for line, _ in self.problems})
        super().__init__(f"{rows} bad row{'s' if rows != 1 else ''}, nothing imported: {shown}")


@dataclass(slots=True)
class _Row:
    """A row that passed the checks needing no database, its values normalised."""

    line: int
    name: str
    role: str
    handle: str
    groups: tuple[str, ...] | None
    advisor: str | None
    timezone: str | None
    email: str | None
    accounts: tuple[tuple[str, str], ...]  # (platform, user id)


@dataclass(slots=True)
class _Stored:
    """A person of the file already on the roster, as stored."""

    id: int
    display_name: str
    timezone: str | None
    email: str | None
    roles: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    advisors: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Plan:
    """Every write an import makes, worked out before the first one."""

    stored: dict[str, _Stored]
    """The people of the file (and the advisors it names) already on the roster."""
    linked: set[tuple[str, str]]
    """The (platform, user id) accounts of the file already linked (to the row's person)."""
    new: list[_Row] = field(default_factory=list)
    changed: list[tuple[_Row, _Stored]] = field(default_factory=list)
    unchanged: int = 0


class RosterStore:
    """Groups and who is in them; the roster imported at once; accounts linked by hand."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- groups -----------------------------------------------------------------------------

    def group(self, name: str) -> GroupRecord:
        """The group with this name, or UnknownRecordError."""
        wanted = " ".join(name.split())
        with self._db.read() as conn:
            row = conn.execute(
                select(student_group.c.id, student_group.c.name).where(
                    student_group.c.name == wanted
                )
            ).first()
        if row is None:
            raise UnknownRecordError(f"no group named {wanted!r}")
        return GroupRecord(row.id, row.name)

    def group_by_id(self, group_id: int) -> GroupRecord:
        with self._db.read() as conn:
            row = conn.execute(
                select(student_group.c.id, student_group.c.name).where(
                    student_group.c.id == group_id
                )
            ).first()
        if row is None:
            raise UnknownRecordError(f"no group with id {group_id}")
        return GroupRecord(row.id, row.name)

    def groups_of(self, person_id: int) -> frozenset[int]:
        """The ids of the groups a person belongs to (a teacher's: the groups they teach)."""
        with self._db.read() as conn:
            return frozenset(
                conn.scalars(
                    select(group_member.c.group_id).where(group_member.c.person_id == person_id)
                )
            )

    def pupils_of(self, person_id: int) -> frozenset[int]:
        """The person ids of the students in the groups a person belongs to (a teacher's: the
        students they teach)."""
        taught = group_member.alias("taught")
        with self._db.read() as conn:
            return frozenset(
                conn.scalars(
                    select(group_member.c.person_id)
                    .join(taught, taught.c.group_id == group_member.c.group_id)
                    .join(person_role, person_role.c.person_id == group_member.c.person_id)
                    .where(taught.c.person_id == person_id, person_role.c.role == "student")
                )
            )

    def advisees_of(self, person_id: int) -> frozenset[int]:
        """The person ids of the students a person advises."""
        with self._db.read() as conn:
            return frozenset(
                conn.scalars(
                    select(advisor_link.c.student_id).where(advisor_link.c.advisor_id == person_id)
                )
            )

    # -- linking ----------------------------------------------------------------------------

    def link_account(
        self, handle: str, platform: str, account: str, *, workspace: str | None = None
    ) -> PersonRecord:
        """Link a platform account an administrator already knows to the person ``handle``.

        A Telegram private chat's id is the user's id, so the bot can write there at once.
        A Slack account linked without its workspace is placed in the workspace it first
        writes from. An account linked to someone else is refused.
        """
        account = _check_account(platform, account)
        with self._db.begin() as conn:
            person_id = conn.execute(
                select(person.c.id).where(person.c.handle == normalise_handle(handle))
            ).scalar()
            if person_id is None:
                raise UnknownPersonError(f"no person with handle {normalise_handle(handle)!r}")
            holder = _account_holder(conn, platform, account)
            if holder is not None and holder[0] != person_id:
                raise InvalidValueError(
                    f"that {platform} account is already linked to {holder[1]!r}"
                )
            if holder is None or workspace:
                chat_id = account if platform == "telegram" else None
                link_identity(conn, person_id, platform, workspace, account, chat_id)
            record = load_person(conn, person_id)
        assert record is not None
        return record

    # -- importing --------------------------------------------------------------------------

    def import_people(
        self, entries: Sequence[RosterEntry], *, now: datetime | None = None
    ) -> ImportCounts:
        """Add or update everyone in ``entries`` in one transaction, or raise RosterError
        naming every bad row (then nothing is written)."""
        problems: list[tuple[int, str]] = []
        rows = _checked(entries, problems)
        try:
            with self._db.begin() as conn:
                if self._db.dialect == "postgresql":  # two imports at once would race on handles
                    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ROSTER_LOCK_ID})
                plan = _plan(conn, rows, problems)
                if problems:
                    raise RosterError(problems)
                _write(conn, plan, now or utcnow())
        except IntegrityError:  # someone added a person or an email meanwhile
            raise InvalidValueError(
                "the roster changed while the file was being imported; nothing was imported, "
                "run the import again"
            ) from None
        return ImportCounts(len(plan.new), len(plan.changed), plan.unchanged)


# -- checks that need no database --------------------------------------------------------


def _checked(entries: Sequence[RosterEntry], problems: list[tuple[int, str]]) -> list[_Row]:
    """The entries as rows, each checked alone and against the file's other rows."""
    rows: list[_Row] = []
    first_line: dict[tuple[str, str], int] = {}  # (what, value) -> the line it was first on
    for entry in entries:
        try:
            row = _row(entry)
        except InvalidValueError as exc:
            problems.append((entry.line, str(exc)))
            continue
        clash = None
        keys = [("handle", row.handle)]
        keys += [("email", row.email)] if row.email else []
        keys += [(f"{platform} account", user) for platform, user in row.accounts]
        for key in keys:
            if key in first_line and clash is None:
                clash = f"{key[0]} {key[1]!r} is also on line {first_line[key]}"
            first_line.setdefault(key, row.line)
        if clash is not None:
            if entry.handle is None and clash.startswith("handle"):
                clash += " (give each person a handle of their own)"
            problems.append((entry.line, clash))
            continue
        rows.append(row)
    return rows


def _row(entry: RosterEntry) -> _Row:
    name = " ".join(entry.name.split())
    if not name:
        raise InvalidValueError("the name is empty")
    role = entry.role.strip().lower()
    if not role:
        raise InvalidValueError("the role is empty")
    _check_role(role)
    handle = _check_handle(entry.handle) if entry.handle else _check_handle(slugify(name))
    timezone = entry.timezone.strip() if entry.timezone else None
    _check_timezone(timezone)
    email = _check_email(entry.email) if entry.email else None
    groups = tuple(dict.fromkeys(g for g in (" ".join(x.split()) for x in entry.groups) if g))
    advisor = normalise_handle(entry.advisor) if entry.advisor else None
    if advisor == handle:
        raise InvalidValueError("a person cannot be their own advisor")
    accounts = tuple(
        (platform, _check_account(platform, value))
        for platform, value in (("telegram", entry.telegram_id), ("slack", entry.slack_id))
        if value
    )
    return _Row(entry.line, name, role, handle, groups or None, advisor, timezone, email, accounts)


def _check_account(platform: str, account: str) -> str:
    if platform not in PLATFORMS:
        raise InvalidValueError(f"unknown platform {platform!r}: use {' or '.join(PLATFORMS)}")
    value = account.strip()
    if _ACCOUNT_RES[platform].fullmatch(value) is None:
        raise InvalidValueError(f"{value!r} is not {_ACCOUNT_FORMS[platform]}")
    return value


# -- reading what the file touches -------------------------------------------------------


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _stored_people(conn: Connection, handles: Iterable[str]) -> dict[str, _Stored]:
    """The people with these handles, with their roles, groups and advisors."""
    found: dict[str, _Stored] = {}
    for chunk in _chunks(handles):
        rows = conn.execute(
            select(
                person.c.id,
                person.c.handle,
                person.c.display_name,
                person.c.timezone,
                person.c.email,
            ).where(person.c.handle.in_(chunk))
        )
        for row in rows:
            found[row.handle] = _Stored(row.id, row.display_name, row.timezone, row.email)
    by_id = {stored.id: stored for stored in found.values()}
    for chunk in _chunks(by_id):
        for pid, role in conn.execute(
            select(person_role.c.person_id, person_role.c.role).where(
                person_role.c.person_id.in_(chunk)
            )
        ):
            by_id[pid].roles.add(role)
        for pid, name in conn.execute(
            select(group_member.c.person_id, student_group.c.name)
            .join(student_group, student_group.c.id == group_member.c.group_id)
            .where(group_member.c.person_id.in_(chunk))
        ):
            by_id[pid].groups.add(name)
        for student_id, advisor_id in conn.execute(
            select(advisor_link.c.student_id, advisor_link.c.advisor_id).where(
                advisor_link.c.student_id.in_(chunk)
            )
        ):
            by_id[student_id].advisors.add(advisor_id)
    return found


def _email_holders(conn: Connection, emails: Iterable[str]) -> dict[str, str]:
    """Email -> the handle of whoever holds it now."""
    holders: dict[str, str] = {}
    for chunk in _chunks(emails):
        rows = conn.execute(
            select(person.c.email, person.c.handle).where(person.c.email.in_(chunk))
        )
        holders.update({row.email: row.handle for row in rows})
    return holders


def _account_holders(
    conn: Connection, accounts: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str]]:
    """(platform, user id) -> (person id, handle) it is linked to, in any workspace."""
    holders: dict[tuple[str, str], tuple[int, str]] = {}
    accounts = list(accounts)
    for platform in PLATFORMS:
        for chunk in _chunks(user for p, user in accounts if p == platform):
            rows = conn.execute(
                select(channel_identity.c.platform_user_id, person.c.id, person.c.handle)
                .join(person, person.c.id == channel_identity.c.person_id)
                .where(
                    channel_identity.c.platform == platform,
                    channel_identity.c.platform_user_id.in_(chunk),
                )
            )
            holders.update({(platform, row[0]): (row.id, row.handle) for row in rows})
    return holders


def _account_holder(conn: Connection, platform: str, account: str) -> tuple[int, str] | None:
    return _account_holders(conn, [(platform, account)]).get((platform, account))


# -- planning ----------------------------------------------------------------------------


def _plan(conn: Connection, rows: list[_Row], problems: list[tuple[int, str]]) -> _Plan:
    """What to write for each row; problems that need the roster are added to ``problems``."""
    file_handles = {row.handle for row in rows}
    advisors = {row.advisor for row in rows if row.advisor}
    stored = _stored_people(conn, file_handles | advisors)
    emails = _email_holders(conn, (row.email for row in rows if row.email))
    accounts = _account_holders(conn, (a for row in rows for a in row.accounts))
    roles_after = {h: set(s.roles) for h, s in stored.items()}
    for row in rows:
        roles_after.setdefault(row.handle, set()).add(row.role)
    plan = _Plan(stored, set(accounts))
    for row in rows:
        problem = _problem(row, stored, emails, accounts, roles_after)
        if problem is not None:
            problems.append((row.line, problem))
            continue
        existing = stored.get(row.handle)
        if existing is None:
            plan.new.append(row)
        elif _differs(row, existing, stored, accounts):
            plan.changed.append((row, existing))
        else:
            plan.unchanged += 1
    return plan


def _problem(
    row: _Row,
    stored: dict[str, _Stored],
    emails: dict[str, str],
    accounts: dict[tuple[str, str], tuple[int, str]],
    roles_after: dict[str, set[str]],
) -> str | None:
    if row.email and emails.get(row.email, row.handle) != row.handle:
        return f"someone else on the roster ({emails[row.email]!r}) has the email {row.email}"
    for platform, user in row.accounts:
        holder = accounts.get((platform, user))
        if holder is not None and holder[1] != row.handle:
            return f"{platform} account {user} is already linked to {holder[1]!r}"
    if row.advisor:
        roles = roles_after.get(row.advisor)
        if roles is None:
            return f"no advisor with handle {row.advisor!r} (on the roster or in this file)"
        if not roles & _ADVISING_ROLES:
            return f"{row.advisor!r} cannot be an advisor: their role is {', '.join(sorted(roles))}"
    return None


def _differs(
    row: _Row,
    existing: _Stored,
    stored: dict[str, _Stored],
    accounts: dict[tuple[str, str], tuple[int, str]],
) -> bool:
    return (
        existing.display_name != row.name
        or (row.timezone is not None and existing.timezone != row.timezone)
        or (row.email is not None and existing.email != row.email)
        or row.role not in existing.roles
        or (row.groups is not None and existing.groups != set(row.groups))
        or (row.advisor is not None and _advisor_changes(row.advisor, existing, stored))
        or any(account not in accounts for account in row.accounts)
    )


def _advisor_changes(advisor: str, existing: _Stored, stored: dict[str, _Stored]) -> bool:
    known = stored.get(advisor)
    return known is None or existing.advisors != {known.id}


# -- writing -----------------------------------------------------------------------------


def _write(conn: Connection, plan: _Plan, now: datetime) -> None:
    rows = plan.new + [row for row, _ in plan.changed]
    if not rows:
        return
    groups = _group_ids(conn, {g for row in rows for g in row.groups or ()}, now)
    ids = {handle: stored.id for handle, stored in plan.stored.items()}
    if plan.new:
        inserted = conn.execute(
            insert(person).returning(person.c.id, person.c.handle),
            [
                {
                    "handle": row.handle,
                    "display_name": row.name,
                    "first_name": row.name.split()[0],
                    "timezone": row.timezone,
                    "language": "en",
                    "opted_out": False,
                    "email": row.email,
                    "created_at": now,
                }
                for row in plan.new
            ],
        )
        ids.update({handle: pid for pid, handle in inserted})
    _update_people(conn, plan.changed)
    before = {row.handle: existing for row, existing in plan.changed}
    _insert(
        conn,
        person_role,
        [
            {"person_id": ids[row.handle], "role": row.role}
            for row in rows
            if row.handle not in before or row.role not in before[row.handle].roles
        ],
    )
    _set_groups(conn, rows, ids, before, groups)
    _set_advisors(conn, rows, ids, before)
    _insert(
        conn,
        channel_identity,
        [
            {
                "platform": platform,
                "workspace": "",
                "platform_user_id": user,
                "chat_id": user if platform == "telegram" else None,
                "person_id": ids[row.handle],
                "unreachable": False,
                "created_at": now,
            }
            for row in rows
            for platform, user in row.accounts
            if (platform, user) not in plan.linked
        ],
    )


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), rows)


def _group_ids(conn: Connection, names: set[str], now: datetime) -> dict[str, int]:
    """Every named group's id, creating the groups that do not exist yet."""
    found: dict[str, int] = {}
    for chunk in _chunks(names):
        rows = conn.execute(
            select(student_group.c.name, student_group.c.id).where(student_group.c.name.in_(chunk))
        )
        found.update({name: gid for name, gid in rows})
    missing = sorted(names - found.keys())
    if missing:
        made = conn.execute(
            insert(student_group).returning(student_group.c.name, student_group.c.id),
            [{"name": name, "created_at": now} for name in missing],
        )
        found.update({name: gid for name, gid in made})
    return found


def _update_people(conn: Connection, changed: list[tuple[_Row, _Stored]]) -> None:
    values = [
        {
            "b_id": existing.id,
            "b_name": row.name,
            "b_first": row.name.split()[0],
            "b_timezone": row.timezone if row.timezone is not None else existing.timezone,
            "b_email": row.email if row.email is not None else existing.email,
        }
        for row, existing in changed
    ]
    if values:
        conn.execute(
            update(person)
            .where(person.c.id == bindparam("b_id"))
            .values(
                display_name=bindparam("b_name"),
                first_name=bindparam("b_first"),
                timezone=bindparam("b_timezone"),
                email=bindparam("b_email"),
            ),
            values,
        )


def _set_groups(
    conn: Connection,
    rows: list[_Row],
    ids: dict[str, int],
    existing_of: dict[str, _Stored],
    groups: dict[str, int],
) -> None:
    """Each row's groups become exactly the ones it names (rows naming none keep theirs)."""
    removed: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for row in rows:
        if row.groups is None:
            continue
        before = existing_of[row.handle].groups if row.handle in existing_of else set()
        pid = ids[row.handle]
        removed += [{"b_person": pid, "b_name": name} for name in sorted(before - set(row.groups))]
        added += [
            {"group_id": groups[name], "person_id": pid}
            for name in row.groups
            if name not in before
        ]
    if removed:
        conn.execute(
            delete(group_member).where(
                group_member.c.person_id == bindparam("b_person"),
                group_member.c.group_id
                == select(student_group.c.id)
                .where(student_group.c.name == bindparam("b_name"))
                .scalar_subquery(),
            ),
            removed,
        )
    _insert(conn, group_member, added)


def _set_advisors(
    conn: Connection, rows: list[_Row], ids: dict[str, int], before: dict[str, _Stored]
) -> None:
    """A row naming an advisor gets exactly that advisor."""
    links = [(ids[row.handle], ids[row.advisor]) for row in rows if row.advisor is not None]
    replaced = [
        {"b_student": ids[row.handle]} for row in rows if row.advisor and row.handle in before
    ]
    if replaced:
        conn.execute(
            delete(advisor_link).where(advisor_link.c.student_id == bindparam("b_student")),
            replaced,
        )
    _insert(conn, advisor_link, [{"advisor_id": a, "student_id": s} for s, a in links])
