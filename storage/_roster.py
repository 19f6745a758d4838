"""The roster at once: a class or a whole school imported in one transaction, accounts an
administrator already knows linked, and who belongs to which group.

An import is set-based. It reads what the file touches with a few ``IN`` queries, works out
each row's changes in Python, and writes them with one statement per table (executemany),
so its cost grows with the file, not with round trips per row. Every problem is found
before anything is written; a file with one bad row changes nothing.

Rows are keyed by handle (a row without one is keyed by its name's slug, as ``people add``
derives it); a roster system's row by its ``roster_id`` first (then the stored person's
handle stays, whatever the row's), so importing the same file twice changes nothing the
second time. An optional column left empty leaves what is stored alone; a filled one sets it
(``group``: exactly these groups). Roles are added, never taken away; an import never
removes a person, though a roster system's row may deactivate one (``active``: their data
stays).

A roster system's rows (OneRoster) carry a little more: each row's file, its
``dateLastModified`` (a row older than the one last applied to that person changes nothing),
a birth date, several advisors, and, for a delta, groups joined and left rather than the whole
list, for people who may appear only by reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
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
    "RosterClass",
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
    """One row of a roster file, as read; ``line`` is where it starts (the header is line 1)
    in ``file`` ("" when there is one file: the caller names it).

    ``groups`` empty and the optional fields None mean "left empty in the file". A
    ``reference`` is about someone already on the roster (a delta's enrollment): their name
    and role may be empty, and only their groups change.
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
    file: str = ""
    advisors: tuple[str, ...] = ()
    """More advisors besides ``advisor`` (a homeroom's co-teachers): together, exactly these."""
    extra_roles: tuple[str, ...] = ()
    active: bool | None = None
    """False: deactivate (their data stays); True: active again; None: as stored."""
    birth_date: date | None = None
    modified_at: datetime | None = None
    """The roster system's ``dateLastModified`` of the row."""
    joins: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()
    """A delta's groups joined and left (with ``groups`` empty); the others are kept."""
    reference: bool = False
    roster_id: str | None = None
    """The roster system's id for the person (OneRoster ``sourcedId``): who the row is about,
    before its handle (a username may change); None: a row typed by hand."""
    other_roster_ids: tuple[str, ...] = ()
    """The person's ids of other rows (one per role), by which they may be stored too."""


@dataclass(frozen=True, slots=True)
class RosterClass:
    """A class of a roster system (OneRoster ``classes.csv``): the group it is, found by its
    ``roster_id`` (made, or renamed, to ``name``), or a group of that name not yet a class's."""

    file: str
    line: int
    roster_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did, by person: added, changed in some way, or already as in the file
    (``deactivated`` ones are not among the updated)."""

    added: int
    updated: int
    unchanged: int
    deactivated: int = 0

    def to_json(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged}


_Problem = tuple[str, int, str]  # file ("": the one file), line, what


class RosterError(InvalidValueError):
    """Rows of roster files that cannot be imported, by file and line; nothing was imported.

    ``located`` holds (file, line, what); ``problems`` the (line, what) of a one-file import.
    """

    def __init__(self, problems: Sequence[_Problem]) -> None:
        self.located = tuple(sorted(problems))
        self.problems = tuple((line, what) for _, line, what in self.located)
        shown = "; ".join(
            f"{file}: line {line}: {what}" if file else f"line {line}: {what}"
            for file, line, what in self.located[:_SHOWN_PROBLEMS]
        )
        more = len(self.located) - _SHOWN_PROBLEMS
        if more > 0:
            shown += f" (and {more} more)"
        rows = len({(file, line) for file, line, _ in self.located})
        super().__init__(f"{rows} bad row{'s' if rows != 1 else ''}, nothing imported: {shown}")


@dataclass(slots=True)
class _Row:
    """A row that passed the checks needing no database, its values normalised."""

    file: str
    line: int
    name: str | None  # None: a reference, the stored name stays
    roles: tuple[str, ...]  # empty: a reference
    handle: str
    groups: tuple[str, ...] | None
    joins: tuple[str, ...]
    leaves: tuple[str, ...]
    advisors: tuple[str, ...] | None
    timezone: str | None
    email: str | None
    accounts: tuple[tuple[str, str], ...]  # (platform, user id)
    active: bool | None
    birth_date: date | None
    modified_at: datetime | None
    roster_ids: tuple[str, ...]  # the first is stored for a new person


@dataclass(slots=True)
class _Stored:
    """A person of the file already on the roster, as stored."""

    id: int
    display_name: str
    timezone: str | None
    email: str | None
    active: bool = True
    birth_date: date | None = None
    modified_at: datetime | None = None
    roster_id: str | None = None
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
    deactivated: int = 0
    unchanged: int = 0
    stamped: list[tuple[int, datetime]] = field(default_factory=list)
    """People otherwise unchanged whose roster row is newer: only its time is recorded."""


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

    def group_names(self, roster_ids: Iterable[str]) -> dict[str, str]:
        """The names of the groups made from these classes (by the roster system's id)."""
        with self._db.read() as conn:
            return _class_groups(conn, roster_ids)

    def import_people(
        self,
        entries: Sequence[RosterEntry],
        *,
        classes: Sequence[RosterClass] = (),
        bad_rows: Sequence[tuple[str, int, str]] = (),
        now: datetime | None = None,
    ) -> ImportCounts:
        """Add or update everyone in ``entries`` (and the groups of ``classes``) in one
        transaction, or raise RosterError naming every bad row (then nothing is written).

        ``bad_rows``: (file, line, what) the caller found already, reported with the others.
        """
        problems: list[_Problem] = list(bad_rows)
        rows = _checked(entries, problems)
        try:
            with self._db.begin() as conn:
                if self._db.dialect == "postgresql":  # two imports at once would race on handles
                    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ROSTER_LOCK_ID})
                _place_classes(conn, classes, problems, now or utcnow())
                plan = _plan(conn, rows, problems)
                if problems:
                    raise RosterError(problems)
                _write(conn, plan, now or utcnow())
        except IntegrityError:  # someone added a person or an email meanwhile
            raise InvalidValueError(
                "the roster changed while the file was being imported; nothing was imported, "
                "run the import again"
            ) from None
        return ImportCounts(
            len(plan.new), len(plan.changed) - plan.deactivated, plan.unchanged, plan.deactivated
        )


# -- checks that need no database --------------------------------------------------------


def _checked(entries: Sequence[RosterEntry], problems: list[_Problem]) -> list[_Row]:
    """The entries as rows, each checked alone and against the file's other rows."""
    rows: list[_Row] = []
    first_seen: dict[tuple[str, str], tuple[str, int]] = {}  # (what, value) -> (file, line)
    for entry in entries:
        try:
            row = _row(entry)
        except InvalidValueError as exc:
            problems.append((entry.file, entry.line, str(exc)))
            continue
        clash = None
        keys = [("handle", row.handle)]
        keys += [("email", row.email)] if row.email else []
        keys += [(f"{platform} account", user) for platform, user in row.accounts]
        for key in keys:
            if key in first_seen and clash is None:
                clash = f"{key[0]} {key[1]!r} is also on {_where(*first_seen[key], row.file)}"
            first_seen.setdefault(key, (row.file, row.line))
        if clash is not None:
            if entry.handle is None and clash.startswith("handle"):
                clash += " (give each person a handle of their own)"
            problems.append((entry.file, entry.line, clash))
            continue
        rows.append(row)
    return rows


def _where(file: str, line: int, seen_from: str) -> str:
    return f"line {line}" if file == seen_from else f"{file} line {line}"


def _row(entry: RosterEntry) -> _Row:
    name: str | None = None
    roles: tuple[str, ...] = ()
    if entry.reference:
        if not entry.handle:
            raise InvalidValueError("the handle is empty")
        handle = _check_handle(entry.handle)
    else:
        name = " ".join(entry.name.split())
        if not name:
            raise InvalidValueError("the name is empty")
        roles = _roles(entry)
        handle = _check_handle(entry.handle) if entry.handle else _check_handle(slugify(name))
    timezone = entry.timezone.strip() if entry.timezone else None
    _check_timezone(timezone)
    email = _check_email(entry.email) if entry.email else None
    named = ((entry.advisor,) if entry.advisor else ()) + entry.advisors
    advisors = tuple(dict.fromkeys(normalise_handle(a) for a in named if a.strip()))
    if handle in advisors:
        raise InvalidValueError("a person cannot be their own advisor")
    accounts = tuple(
        (platform, _check_account(platform, value))
        for platform, value in (("telegram", entry.telegram_id), ("slack", entry.slack_id))
        if value
    )
    return _Row(
        file=entry.file,
        line=entry.line,
        name=name,
        roles=roles,
        handle=handle,
        groups=_group_names(entry.groups) or None,
        joins=_group_names(entry.joins),
        leaves=_group_names(entry.leaves),
        advisors=advisors or None,
        timezone=timezone,
        email=email,
        accounts=accounts,
        active=entry.active,
        birth_date=entry.birth_date,
        modified_at=entry.modified_at,
        roster_ids=tuple(i for i in (entry.roster_id, *entry.other_roster_ids) if i),
    )


def _roles(entry: RosterEntry) -> tuple[str, ...]:
    role = entry.role.strip().lower()
    if not role:
        raise InvalidValueError("the role is empty")
    roles = tuple(dict.fromkeys((role, *(r.strip().lower() for r in entry.extra_roles))))
    for each in roles:
        _check_role(each)
    return roles


def _group_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(g for g in (" ".join(x.split()) for x in names) if g))


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
                person.c.active,
                person.c.birth_date,
                person.c.roster_modified_at,
                person.c.roster_id,
            ).where(person.c.handle.in_(chunk))
        )
        for row in rows:
            found[row.handle] = _Stored(
                row.id,
                row.display_name,
                row.timezone,
                row.email,
                bool(row.active),
                row.birth_date,
                row.roster_modified_at,
                row.roster_id,
            )
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


def _class_groups(conn: Connection, roster_ids: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(roster_ids):
        rows = conn.execute(
            select(student_group.c.roster_id, student_group.c.name).where(
                student_group.c.roster_id.in_(chunk)
            )
        )
        found.update({roster_id: name for roster_id, name in rows})
    return found


def _place_classes(
    conn: Connection, classes: Sequence[RosterClass], problems: list[_Problem], now: datetime
) -> None:
    """Each class's group under its name: made, renamed, or (a group of that name that is
    no class's yet) taken on. A name another class's group holds is a problem."""
    if not classes:
        return
    by_class = _class_groups(conn, (c.roster_id for c in classes))
    holders: dict[str, str | None] = {}  # group name -> the class it is, None: none
    for chunk in _chunks(c.name for c in classes):
        rows = conn.execute(
            select(student_group.c.name, student_group.c.roster_id).where(
                student_group.c.name.in_(chunk)
            )
        )
        holders.update({name: roster_id for name, roster_id in rows})
    renamed: list[dict[str, Any]] = []
    made: list[dict[str, Any]] = []
    for each in classes:
        holder = holders.get(each.name, each.roster_id)
        if each.name in holders and holder not in (None, each.roster_id):
            problems.append(
                (each.file, each.line, f"the group {each.name!r} is another class's ({holder})")
            )
        elif each.roster_id in by_class or each.name in holders:
            if by_class.get(each.roster_id) != each.name:
                renamed.append({"b_class": each.roster_id, "b_name": each.name})
        else:
            made.append({"name": each.name, "roster_id": each.roster_id, "created_at": now})
        holders[each.name] = each.roster_id
    adopted = [r for r in renamed if r["b_class"] not in by_class]
    moved = [r for r in renamed if r["b_class"] in by_class]
    if problems:
        return
    if adopted:
        conn.execute(
            update(student_group)
            .where(student_group.c.name == bindparam("b_name"))
            .values(roster_id=bindparam("b_class")),
            adopted,
        )
    if moved:
        conn.execute(
            update(student_group)
            .where(student_group.c.roster_id == bindparam("b_class"))
            .values(name=bindparam("b_name")),
            moved,
        )
    _insert(conn, student_group, made)


# -- planning ----------------------------------------------------------------------------


def _plan(conn: Connection, rows: list[_Row], problems: list[_Problem]) -> _Plan:
    """What to write for each row; problems that need the roster are added to ``problems``."""
    rows = _known_by_roster_id(conn, rows)
    file_handles = {row.handle for row in rows}
    advisors = {a for row in rows for a in row.advisors or ()}
    stored = _stored_people(conn, file_handles | advisors)
    emails = _email_holders(conn, (row.email for row in rows if row.email))
    accounts = _account_holders(conn, (a for row in rows for a in row.accounts))
    roles_after = {h: set(s.roles) for h, s in stored.items()}
    for row in rows:
        if row.handle in stored or row.active is not False:
            roles_after.setdefault(row.handle, set()).update(row.roles)
    plan = _Plan(stored, set(accounts))
    for row in rows:
        existing = stored.get(row.handle)
        if existing is None and row.active is False and row.name is not None:  # left before
            plan.unchanged += 1
            continue
        if existing is not None and _older(row, existing):
            row = _memberships_only(row)
        problem = _problem(row, existing, emails, accounts, roles_after)
        if problem is not None:
            problems.append((row.file, row.line, problem))
        elif existing is None:
            plan.new.append(row)
        elif _differs(row, existing, stored, accounts):
            plan.changed.append((row, existing))
            plan.deactivated += row.active is False and existing.active
        else:
            plan.unchanged += 1
            if row.modified_at is not None and row.modified_at != existing.modified_at:
                plan.stamped.append((existing.id, row.modified_at))
    return plan


def _known_by_roster_id(conn: Connection, rows: list[_Row]) -> list[_Row]:
    """The rows, each under the handle of the person its roster id is stored for (a handle
    stays as it is when a username changes: staff type it), and the advisors they name
    likewise. A row whose roster id is new keeps its handle: someone added by hand, or
    imported before people had roster ids, is found by it."""
    known: dict[str, str] = {}  # roster id -> stored handle
    for chunk in _chunks(i for row in rows for i in row.roster_ids):
        found = conn.execute(
            select(person.c.roster_id, person.c.handle).where(person.c.roster_id.in_(chunk))
        )
        known.update({roster_id: handle for roster_id, handle in found})
    renamed: dict[str, str] = {}
    for row in rows:
        handle = next((known[i] for i in row.roster_ids if i in known), row.handle)
        if handle != row.handle:
            renamed[row.handle] = handle
    if not renamed:
        return rows
    return [
        replace(
            row,
            handle=renamed.get(row.handle, row.handle),
            advisors=tuple(renamed.get(a, a) for a in row.advisors) if row.advisors else None,
        )
        for row in rows
    ]


def _older(row: _Row, existing: _Stored) -> bool:
    """Whether the row is older than the one last applied to its person."""
    return (
        row.modified_at is not None
        and existing.modified_at is not None
        and row.modified_at < existing.modified_at
    )


def _memberships_only(row: _Row) -> _Row:
    """An older row changes nothing of the person; their groups and advisors come from
    other rows (enrollments), which still apply."""
    return replace(
        row,
        name=None,
        roles=(),
        timezone=None,
        email=None,
        accounts=(),
        active=None,
        birth_date=None,
        modified_at=None,
    )


def _problem(
    row: _Row,
    existing: _Stored | None,
    emails: dict[str, str],
    accounts: dict[tuple[str, str], tuple[int, str]],
    roles_after: dict[str, set[str]],
) -> str | None:
    if existing is None and row.name is None:
        if row.roster_ids:
            return (
                f"no person with sourcedId {row.roster_ids[0]!r} (on the roster or in these files)"
            )
        return f"no person with handle {row.handle!r} (on the roster or in these files)"
    if (
        existing is not None
        and row.roster_ids
        and existing.roster_id not in (None, *row.roster_ids)
    ):
        return f"the handle {row.handle!r} is another roster user's ({existing.roster_id})"
    if row.email and emails.get(row.email, row.handle) != row.handle:
        return f"someone else on the roster ({emails[row.email]!r}) has the email {row.email}"
    for platform, user in row.accounts:
        holder = accounts.get((platform, user))
        if holder is not None and holder[1] != row.handle:
            return f"{platform} account {user} is already linked to {holder[1]!r}"
    for advisor in row.advisors or ():
        roles = roles_after.get(advisor)
        if roles is None:
            return f"no advisor with handle {advisor!r} (on the roster or in this file)"
        if not roles & _ADVISING_ROLES:
            return f"{advisor!r} cannot be an advisor: their role is {', '.join(sorted(roles))}"
    return None


def _differs(
    row: _Row,
    existing: _Stored,
    stored: dict[str, _Stored],
    accounts: dict[tuple[str, str], tuple[int, str]],
) -> bool:
    return (
        (row.name is not None and existing.display_name != row.name)
        or (row.timezone is not None and existing.timezone != row.timezone)
        or (row.email is not None and existing.email != row.email)
        or not existing.roles.issuperset(row.roles)
        or (row.groups is not None and existing.groups != set(row.groups))
        or not existing.groups.issuperset(row.joins)
        or not existing.groups.isdisjoint(row.leaves)
        or (row.advisors is not None and _advisors_change(row.advisors, existing, stored))
        or any(account not in accounts for account in row.accounts)
        or (row.active is not None and existing.active != row.active)
        or (row.birth_date is not None and existing.birth_date != row.birth_date)
        or (existing.roster_id is None and bool(row.roster_ids))
    )


def _advisors_change(
    advisors: tuple[str, ...], existing: _Stored, stored: dict[str, _Stored]
) -> bool:
    known = {stored[a].id for a in advisors if a in stored}
    return len(known) < len(advisors) or existing.advisors != known


# -- writing -----------------------------------------------------------------------------


def _write(conn: Connection, plan: _Plan, now: datetime) -> None:
    _stamp(conn, plan.stamped)
    rows = plan.new + [row for row, _ in plan.changed]
    if not rows:
        return
    names = {g for row in rows for g in (*(row.groups or ()), *row.joins)}
    groups = _group_ids(conn, names, now)
    ids = {handle: stored.id for handle, stored in plan.stored.items()}
    if plan.new:
        inserted = conn.execute(
            insert(person).returning(person.c.id, person.c.handle),
            [_new_person(row, now) for row in plan.new],
        )
        ids.update({handle: pid for pid, handle in inserted})
    _update_people(conn, plan.changed)
    before = {row.handle: existing for row, existing in plan.changed}
    _insert(
        conn,
        person_role,
        [
            {"person_id": ids[row.handle], "role": role}
            for row in rows
            for role in row.roles
            if row.handle not in before or role not in before[row.handle].roles
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


def _new_person(row: _Row, now: datetime) -> dict[str, Any]:
    assert row.name is not None  # a reference to someone not on the roster is a problem
    return {
        "handle": row.handle,
        "display_name": row.name,
        "first_name": row.name.split()[0],
        "timezone": row.timezone,
        "language": "en",
        "opted_out": False,
        "email": row.email,
        "active": True,
        "birth_date": row.birth_date,
        "roster_modified_at": row.modified_at,
        "roster_id": row.roster_ids[0] if row.roster_ids else None,
        "created_at": now,
    }


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
            "b_name": row.name or existing.display_name,
            "b_first": (row.name or existing.display_name).split()[0],
            "b_timezone": row.timezone if row.timezone is not None else existing.timezone,
            "b_email": row.email if row.email is not None else existing.email,
            "b_active": row.active if row.active is not None else existing.active,
            "b_birth": row.birth_date if row.birth_date is not None else existing.birth_date,
            "b_modified": row.modified_at or existing.modified_at,
            "b_roster_id": existing.roster_id or (row.roster_ids[0] if row.roster_ids else None),
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
                active=bindparam("b_active"),
                birth_date=bindparam("b_birth"),
                roster_modified_at=bindparam("b_modified"),
                roster_id=bindparam("b_roster_id"),
            ),
            values,
        )


def _stamp(conn: Connection, stamped: list[tuple[int, datetime]]) -> None:
    if stamped:
        conn.execute(
            update(person)
            .where(person.c.id == bindparam("b_id"))
            .values(roster_modified_at=bindparam("b_modified")),
            [{"b_id": pid, "b_modified": modified} for pid, modified in stamped],
        )


def _set_groups(
    conn: Connection,
    rows: list[_Row],
    ids: dict[str, int],
    existing_of: dict[str, _Stored],
    groups: dict[str, int],
) -> None:
    """Each row's groups become exactly the ones it names (rows naming none keep theirs),
    or, for a delta, gain its joins and lose its leaves."""
    removed: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for row in rows:
        before = existing_of[row.handle].groups if row.handle in existing_of else set()
        after = set(row.groups) if row.groups is not None else before
        after = (after | set(row.joins)) - set(row.leaves)
        pid = ids[row.handle]
        removed += [{"b_person": pid, "b_name": name} for name in sorted(before - after)]
        added += [{"group_id": groups[name], "person_id": pid} for name in sorted(after - before)]
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
    """A row naming advisors gets exactly those advisors."""
    replaced = [
        {"b_student": ids[row.handle]} for row in rows if row.advisors and row.handle in before
    ]
    if replaced:
        conn.execute(
            delete(advisor_link).where(advisor_link.c.student_id == bindparam("b_student")),
            replaced,
        )
    _insert(
        conn,
        advisor_link,
        [
            {"advisor_id": ids[advisor], "student_id": ids[row.handle]}
            for row in rows
            for advisor in row.advisors or ()
        ],
    )
