"""A OneRoster 1.1 CSV export (a folder of files) read into roster entries, imported by the
same one-transaction, idempotent import as ``people import``.

What is read: ``users.csv`` (people), ``classes.csv`` (groups), ``enrollments.csv`` (who is
in or teaches which class), ``demographics.csv`` when present (birth dates), ``manifest.csv``
when present (which files are bulk, delta or absent). ``orgs.csv`` and
``academicSessions.csv`` must be there and be well formed, but nothing of them is stored.

- A person is their ``sourcedId`` (stored: a later import finds them by it, whatever their
  username then); their handle is their ``username`` (before the ``@`` when it is an
  email), else their ``sourcedId``, and stays as first imported. Two rows of one username
  with different roles are one person with both (OneRoster 1.1 has one role per row).
  Roles ``student``, ``teacher`` and ``administrator`` (our ``admin``) are imported, every
  other role (aide, guardian, parent, relative, proctor) is left out and counted.
- A class becomes a group named by its title (told apart by its classCode, else its
  sourcedId, when several classes share a title); a teacher enrollment makes its user a
  teacher of the group, a student enrollment a member.
- The teachers of a ``homeroom`` class advise its students (and get the advisor role); an
  ``advisor`` column in users.csv (a sourcedId or username) names one more.
- ``status`` ``tobedeleted`` on a user deactivates them (their data stays; they advise
  nobody; a row of only the sourcedId and status will do); on an enrollment, or on its
  class, takes them out of that group. A user row whose ``dateLastModified`` is older
  than the one last imported for that person changes nothing.
- Bulk enrollments give each enrolled person exactly their groups (and a student with a
  homeroom exactly its teachers as advisors); delta enrollments add and remove single
  memberships, and may name people already imported who are not in the delta's users.csv.

Line numbers are each file's own (the header is line 1); every bad row of every file is
reported and nothing is imported.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, Protocol

from storage import ImportCounts, RosterClass, RosterEntry, RosterError, RosterStore

from .roster import RosterFileError

__all__ = ["IGNORED_ROLES", "ROLES", "OneRosterCounts", "import_oneroster"]

ROLES: Final = {"student": "student", "teacher": "teacher", "administrator": "admin"}
"""OneRoster's roles we import, and ours they become."""
IGNORED_ROLES: Final = frozenset({"aide", "guardian", "parent", "relative", "proctor"})

_REQUIRED: Final = {
    "orgs.csv": ("sourcedId", "name", "type"),
    "academicSessions.csv": ("sourcedId", "title", "type", "startDate", "endDate"),
    "users.csv": ("sourcedId", "role", "givenName", "familyName"),
    "classes.csv": ("sourcedId", "title"),
    "enrollments.csv": ("sourcedId", "classSourcedId", "userSourcedId", "role"),
}
_OPTIONAL: Final = {"demographics.csv": ("sourcedId", "birthDate")}
_MANIFEST: Final = "manifest.csv"
_DELETED: Final = "tobedeleted"
_STATUSES: Final = ("", "active", _DELETED)
_MODES: Final = ("bulk", "delta", "absent")


@dataclass(frozen=True, slots=True)
class OneRosterCounts:
    """What an import did, and how many users it left out by role."""

    counts: ImportCounts
    ignored: dict[str, int]

    def to_json(self) -> dict[str, int]:
        c = self.counts
        return {
            "added": c.added,
            "updated": c.updated,
            "deactivated": c.deactivated,
            "unchanged": c.unchanged,
        }


def import_oneroster(roster: RosterStore, folder: Path) -> OneRosterCounts:
    """Read the export in ``folder`` and import it in one transaction, or raise
    RosterFileError: one line for a missing file or column, else every bad row by file and
    line (then nothing is imported)."""
    try:
        export = _read_export(folder)
        stored = roster.group_names(export.class_ids())
        entries, classes = export.entries(stored)
        counts = roster.import_people(entries, classes=classes, bad_rows=export.problems.found)
        return OneRosterCounts(counts, dict(export.ignored))
    except RosterError as exc:
        raise RosterFileError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class _Record:
    file: str
    line: int
    values: dict[str, str]  # lowercase column name -> stripped value

    def get(self, column: str) -> str:
        return self.values.get(column.lower(), "")


class _Problems(Exception):
    def __init__(self) -> None:
        self.found: list[tuple[str, int, str]] = []

    def add(self, record: _Record, what: str) -> None:
        self.found.append((record.file, record.line, what))


@dataclass(slots=True)
class _Person:
    """One person of the export, built from their user row and their enrollments."""

    handle: str
    roster_id: str
    user: _Record | None = None  # None: only an enrollment names them (a delta)
    role: str = ""  # "" with a user: a row that only deactivates someone imported before
    more_roles: list[str] = field(default_factory=list)  # from their other rows...
    other_roster_ids: list[str] = field(default_factory=list)  # ...and those rows' sourcedIds
    groups: set[str] = field(default_factory=set)
    leaves: set[str] = field(default_factory=set)
    homerooms: set[str] = field(default_factory=set)  # class sourcedIds
    advisors: set[str] = field(default_factory=set)
    advises: bool = False
    birth_date: date | None = None
    first_line: tuple[str, int] = ("", 0)


class _Export:
    def __init__(self, folder: Path) -> None:
        self.modes = _manifest(folder)
        self.ignored: Counter[str] = Counter()
        self.problems = _Problems()
        self.tables = {
            name: _table(
                folder,
                name,
                columns,
                self.problems,
                required=name in _REQUIRED and self.modes.get(name) != "absent",
            )
            for name, columns in (_REQUIRED | _OPTIONAL).items()
        }
        self.delta = self.modes.get("enrollments.csv") == "delta"
        self.people: dict[str, _Person] = {}  # by user sourcedId
        self.handles: dict[str, str] = {}  # sourcedId and username -> handle
        self.ignored_ids: set[str] = set()
        self.deleted_classes: set[str] = set()

    def class_ids(self) -> set[str]:
        """Every class the export names (its classes, and those its enrollments are in)."""
        return {r.get("sourcedId") for r in self.tables["classes.csv"]} | {
            r.get("classSourcedId") for r in self.tables["enrollments.csv"]
        }

    def entries(self, stored: dict[str, str]) -> tuple[list[RosterEntry], list[RosterClass]]:
        """The people and the classes to import (the bad rows found on the way are in
        ``problems``); ``stored``: the groups classes already are (by class sourcedId)."""
        self._users()
        classes, groups = self._classes(stored)
        self._enrollments(groups)
        self._details()
        people = {id(who): who for who in self.people.values()}  # one person may have two rows
        return [self._entry(who) for who in people.values()], classes

    def _users(self) -> None:
        taken: dict[str, _Person] = {}  # by handle
        for record in self.tables["users.csv"]:
            sourced_id, raw_role = record.get("sourcedId"), record.get("role").lower()
            if not sourced_id:
                self.problems.add(record, "the sourcedId is empty")
                continue
            if not raw_role and _deleted(record) and sourced_id not in self.people:
                handle = _handle(record.get("username"), sourced_id)
                self.people[sourced_id] = _Person(handle, sourced_id, record)
                continue
            if raw_role in IGNORED_ROLES or raw_role not in ROLES:
                self.ignored_ids.add(sourced_id)  # a bad row's enrollments are not bad too
            if raw_role in IGNORED_ROLES:
                self.ignored[raw_role] += 1
                continue
            if raw_role not in ROLES:
                known = ", ".join([*ROLES, *sorted(IGNORED_ROLES)])
                self.problems.add(record, f"unknown role {raw_role!r} (OneRoster's are {known})")
                continue
            if sourced_id in self.people:
                self.problems.add(record, f"the sourcedId {sourced_id!r} appears twice")
                continue
            handle = _handle(record.get("username"), sourced_id)
            if handle in taken and _another_role(taken[handle], record, ROLES[raw_role]):
                self.people[sourced_id] = _also(taken[handle], record, ROLES[raw_role])
                self.handles.setdefault(sourced_id, handle)
                continue
            if handle in taken:
                self.ignored_ids.add(sourced_id)  # its enrollments are not bad rows too
                first = taken[handle].user
                line = first.line if first is not None else 0
                self.problems.add(record, f"the handle {handle!r} is line {line}'s too")
                continue
            taken[handle] = self.people[sourced_id] = _Person(
                handle, sourced_id, record, ROLES[raw_role]
            )
            self.handles.setdefault(sourced_id, handle)
            self.handles.setdefault(record.get("username"), handle)
        self.handles.pop("", None)

    def _classes(
        self, stored: dict[str, str]
    ) -> tuple[list[RosterClass], dict[str, tuple[str, bool]]]:
        """The classes to import, and each class's group name and whether it is a homeroom,
        by sourcedId (with the classes a delta's enrollments name that were imported before).

        A group is named by its class's title, told apart by its classCode (else sourcedId)
        when the file has several classes of that title; a group keeps its name while its
        class keeps its title."""
        records = [r for r in self.tables["classes.csv"] if r.get("status").lower() != _DELETED]
        self.deleted_classes = {
            r.get("sourcedId") for r in self.tables["classes.csv"] if r not in records
        }
        titles = Counter(_title(r) for r in records)
        codes = Counter((_title(r), r.get("classCode")) for r in records)
        classes: list[RosterClass] = []
        groups = {class_id: (name, False) for class_id, name in stored.items()}
        for record in records:
            class_id, title = record.get("sourcedId"), _title(record)
            if not class_id or not title:
                self.problems.add(record, "the sourcedId or the title is empty")
                continue
            name = stored.get(class_id, "")
            if name != title and not name.startswith(f"{title} ("):
                name = title
                if titles[title] > 1:
                    code = record.get("classCode")
                    unique = code and codes[(title, code)] == 1
                    name = f"{title} ({code if unique else class_id})"
            classes.append(RosterClass(record.file, record.line, class_id, name))
            groups[class_id] = (name, record.get("classType").lower() == "homeroom")
        return classes, groups

    def _enrollments(self, classes: dict[str, tuple[str, bool]]) -> None:
        homeroom_teachers: dict[str, set[str]] = defaultdict(set)
        for record in self.tables["enrollments.csv"]:
            role = record.get("role").lower()
            user_id, class_id = record.get("userSourcedId"), record.get("classSourcedId")
            if class_id in self.deleted_classes and class_id not in classes:
                continue  # a class deleted before it was ever imported
            if role not in ("student", "teacher") or user_id in self.ignored_ids:
                continue
            if class_id not in classes:
                self.problems.add(record, f"no class {class_id!r} (in classes.csv or imported)")
                continue
            who = self._enrolled(record, user_id)
            if who is None:
                continue
            name, homeroom = classes[class_id]
            if _deleted(record) or class_id in self.deleted_classes:
                who.leaves.add(name)
                continue
            who.groups.add(name)
            if homeroom and role == "teacher" and not self._leaving(who):
                homeroom_teachers[class_id].add(who.handle)
                who.advises = True
            elif homeroom:
                who.homerooms.add(class_id)
        for who in self.people.values():
            for class_id in who.homerooms:
                who.advisors |= homeroom_teachers[class_id]

    def _enrolled(self, record: _Record, user_id: str) -> _Person | None:
        if user_id in self.people:
            return self.people[user_id]
        if not self.delta:
            self.problems.add(record, f"no user {user_id!r} in users.csv")
            return None
        reference = _Person(user_id, user_id, first_line=(record.file, record.line))
        self.people[user_id] = reference
        return reference

    def _details(self) -> None:
        """Birth dates (users.csv's column before demographics.csv) and named advisors."""
        for record in self.tables["demographics.csv"]:
            who = self.people.get(record.get("sourcedId"))
            if who is not None and who.user is not None and record.get("birthDate"):
                who.birth_date = _date(record, "birthDate", self.problems)
        by_handle = {who.handle: who for who in self.people.values()}
        for who in self.people.values():
            if who.user is not None and who.user.get("birthDate"):
                who.birth_date = _date(who.user, "birthDate", self.problems)
            named = who.user.get("advisor") if who.user is not None else ""
            advisor = self.handles.get(named, named)
            if named and not (advisor in by_handle and self._leaving(by_handle[advisor])):
                who.advisors.add(advisor)
                if advisor in by_handle and by_handle[advisor].role != "student":
                    by_handle[advisor].advises = True

    @staticmethod
    def _leaving(who: _Person) -> bool:
        """Whether their row deactivates them (then they advise nobody)."""
        return who.user is not None and _deleted(who.user)

    def _entry(self, who: _Person) -> RosterEntry:
        user = who.user
        groups = () if self.delta else tuple(sorted(who.groups))
        advisors = tuple(sorted(who.advisors))
        if user is None or not who.role:
            file, line = who.first_line if user is None else (user.file, user.line)
            return RosterEntry(
                line,
                "",
                "",
                handle=who.handle,
                file=file,
                joins=tuple(sorted(who.groups)),
                leaves=tuple(sorted(who.leaves - who.groups)),
                advisors=advisors,
                reference=True,
                roster_id=who.roster_id,
                active=False if user is not None else None,
                modified_at=_modified(user, self.problems) if user is not None else None,
            )
        name = " ".join(
            part for part in (user.get("givenName"), user.get("familyName")) if part.strip()
        )
        return RosterEntry(
            user.line,
            name,
            who.role,
            handle=who.handle,
            groups=groups,
            email=user.get("email") or None,
            file=user.file,
            advisors=advisors,
            extra_roles=(*who.more_roles, *(("advisor",) if who.advises else ())),
            active=not _deleted(user),
            birth_date=who.birth_date,
            modified_at=_modified(user, self.problems),
            joins=tuple(sorted(who.groups)) if self.delta else (),
            leaves=tuple(sorted(who.leaves - who.groups)),
            roster_id=who.roster_id,
            other_roster_ids=tuple(who.other_roster_ids),
        )


def _deleted(record: _Record) -> bool:
    return record.get("status").lower() == _DELETED


def _another_role(first: _Person, record: _Record, role: str) -> bool:
    """Whether ``record`` is ``first``'s other role (two rows, two sourcedIds, one username:
    how OneRoster 1.1, one role per row, exports a teacher who is also an administrator)."""
    return (
        first.user is not None
        and bool(record.get("username"))
        and first.user.get("username").lower() == record.get("username").lower()
        and role != first.role
        and role not in first.more_roles
    )


def _also(who: _Person, record: _Record, role: str) -> _Person:
    """``who`` with their other row's role (unless that row is ``tobedeleted``), and that
    row's name, email and status when it is their only row still active."""
    who.other_roster_ids.append(record.get("sourcedId"))
    if not _deleted(record):
        who.more_roles.append(role)
        if who.user is not None and _deleted(who.user):
            who.user = record
    return who


def _title(record: _Record) -> str:
    return " ".join(record.get("title").split())


def _read_export(folder: Path) -> _Export:
    if not folder.is_dir():
        raise RosterFileError(f"{folder} is not a folder (a OneRoster export is a folder of CSV)")
    export = _Export(folder)
    for records in export.tables.values():
        for record in records:
            status = record.get("status").lower()
            if status not in _STATUSES:
                export.problems.add(record, f"unknown status {status!r} (active or tobedeleted)")
    return export


def _manifest(folder: Path) -> dict[str, str]:
    """``file.users`` -> ``users.csv``: its mode (bulk, delta, absent)."""
    modes: dict[str, str] = {}
    problems = _Problems()
    records = _table(folder, _MANIFEST, ("propertyName", "value"), problems, required=False)
    if problems.found:
        raise RosterError(problems.found)
    for record in records:
        name = record.get("propertyName")
        if name.startswith("file."):
            mode = record.get("value").lower()
            if mode not in _MODES:
                raise RosterFileError(
                    f"{_MANIFEST}: line {record.line}: {name} is {mode!r}, "
                    f"not one of {', '.join(_MODES)}"
                )
            modes[f"{name.removeprefix('file.')}.csv"] = mode
    return modes


def _table(
    folder: Path, name: str, columns: tuple[str, ...], problems: _Problems, *, required: bool
) -> list[_Record]:
    """Every row of ``folder/name`` that is not blank ([] for a file that need not be there).
    A missing file or column, or text that is not UTF-8 CSV: RosterFileError, one line."""
    path = folder / name
    if not path.is_file():
        if not required:
            return []
        raise RosterFileError(
            f"{folder}: {name} is missing (a OneRoster export has {', '.join(_REQUIRED)})"
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise RosterFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise RosterFileError(f"{name}: line {line}: not UTF-8 text") from None
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = [column.strip().lower() for column in _next(rows, name, 1) or []]
    missing = [column for column in columns if column.lower() not in header]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise RosterFileError(
            f"{name}: line 1: the column{plural} {', '.join(missing)} {'are' if plural else 'is'}"
            " missing (the first line names the columns)"
        )
    return list(_records(rows, name, header, problems))


class _Rows(Protocol):
    @property
    def line_num(self) -> int: ...

    def __next__(self) -> list[str]: ...


def _records(rows: _Rows, name: str, header: list[str], problems: _Problems) -> Iterator[_Record]:
    line = 2
    while (values := _next(rows, name, line)) is not None:
        if any(value.strip() for value in values):
            record = _Record(
                name, line, dict(zip(header, (v.strip() for v in values), strict=False))
            )
            if len(values) > len(header):
                problems.add(
                    record,
                    f"{len(values)} values but the header names {len(header)} columns "
                    "(quote a value that holds a comma)",
                )
            else:
                yield record
        line = rows.line_num + 1


def _next(rows: _Rows, name: str, line: int) -> list[str] | None:
    try:
        return next(rows)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise RosterFileError(f"{name}: line {line}: not valid CSV ({exc})") from None


def _modified(record: _Record, problems: _Problems) -> datetime | None:
    value = record.get("dateLastModified")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        problems.add(record, f"dateLastModified {value!r} is not an ISO 8601 date and time")
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _date(record: _Record, column: str, problems: _Problems) -> date | None:
    value = record.get(column)
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.add(record, f"{column} {value!r} is not a date (YYYY-MM-DD)")
        return None


def _handle(username: str, sourced_id: str) -> str:
    """A user's handle: their ``username`` (the part before the ``@`` when, as many systems
    export it, it is their email address), else their ``sourcedId``."""
    return username.strip().lstrip("@").partition("@")[0].lower() or sourced_id
