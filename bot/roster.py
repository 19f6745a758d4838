"""A roster file (CSV) read into rows for storage to import at once.

The columns are product.md's: ``name`` and ``role`` required; ``handle``, ``group`` (several
names separated by ``;``), ``advisor``, ``timezone``, ``email``, ``telegram_id`` and
``slack_id`` optional, in any order. UTF-8, with or without a byte-order mark. Line numbers
are the file's own (the header is line 1; a quoted value may span lines), so a problem can be
found in an editor.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from dialogues import ProfilebotError
from storage import ImportCounts, RosterEntry, RosterError, RosterStore

from .progress import Progress

__all__ = ["COLUMNS", "REQUIRED", "RosterFileError", "import_roster", "read_roster"]

REQUIRED: Final = ("name", "role")
OPTIONAL: Final = ("handle", "group", "advisor", "timezone", "email", "telegram_id", "slack_id")
COLUMNS: Final = REQUIRED + OPTIONAL
GROUP_SEPARATOR: Final = ";"


class RosterFileError(ProfilebotError):
    """A roster file that cannot be read or imported; the message names the file and line."""


def read_roster(path: Path, *, on_row: Callable[[int], None] | None = None) -> list[RosterEntry]:
    """Every row of the file, or RosterFileError for a file that is not a roster CSV.

    ``on_row(1)`` is called for each row read (progress).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RosterFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RosterFileError(
            f"{path.name}: line {line}: not UTF-8 text (save the file as CSV UTF-8)"
        ) from None
    try:
        return _entries(csv.reader(io.StringIO(text, newline=""), strict=True), on_row)
    except _Bad as bad:
        raise RosterFileError(f"{path.name}: line {bad.line}: {bad.what}") from None


def import_roster(
    roster: RosterStore, path: Path, *, progress: Progress | None = None
) -> ImportCounts:
    """Read and import a roster file in one transaction: every row, or (on any bad row)
    nothing; the error names the file and each bad row's line."""
    entries = read_roster(path, on_row=None if progress is None else progress.advance)
    if progress is not None:
        progress.update(description=f"Importing {len(entries)} people")
    try:
        return roster.import_people(entries)
    except RosterError as exc:
        raise RosterFileError(f"{path.name}: {exc}") from None


class _Bad(Exception):
    def __init__(self, line: int, what: str) -> None:
        self.line, self.what = line, what


def _entries(reader: _Reader, on_row: Callable[[int], None] | None) -> list[RosterEntry]:
    header = _header(reader)
    entries: list[RosterEntry] = []
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return entries
        except csv.Error as exc:
            raise _Bad(line, f"not valid CSV ({exc})") from None
        if any(v.strip() for v in values):
            entries.append(_entry(line, header, values))
            if on_row is not None:
                on_row(1)
        line = reader.line_num + 1


class _Reader(Protocol):
    @property
    def line_num(self) -> int: ...

    def __next__(self) -> list[str]: ...


def _header(reader: _Reader) -> list[str | None]:
    """The column of each position (None: a column without a name, ignored)."""
    try:
        names = next(reader)
    except StopIteration:
        known = ", ".join(COLUMNS)
        raise _Bad(1, f"the file is empty (its first line names the columns: {known})") from None
    except csv.Error as exc:
        raise _Bad(1, f"not valid CSV ({exc})") from None
    columns: list[str | None] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            columns.append(None)
            continue
        if name not in COLUMNS:
            raise _Bad(1, f"unknown column {raw.strip()!r} (the columns are {', '.join(COLUMNS)})")
        if name in columns:
            raise _Bad(1, f"the column {name!r} appears twice")
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise _Bad(
            1,
            f"the header needs the column{'s' if len(missing) > 1 else ''} "
            f"{' and '.join(missing)} (the first line names the columns)",
        )
    return columns


def _entry(line: int, header: list[str | None], values: list[str]) -> RosterEntry:
    if len(values) > len(header):
        raise _Bad(
            line,
            f"{len(values)} values but the header names {len(header)} columns "
            "(quote a value that holds a comma)",
        )
    row = {
        name: value.strip() for name, value in zip(header, values, strict=False) if name is not None
    }

    def optional(name: str) -> str | None:
        return row.get(name) or None

    groups = tuple(g for g in (row.get("group") or "").split(GROUP_SEPARATOR) if g.strip())
    return RosterEntry(
        line=line,
        name=row.get("name", ""),
        role=row.get("role", ""),
        handle=optional("handle"),
        groups=groups,
        advisor=optional("advisor"),
        timezone=optional("timezone"),
        email=optional("email"),
        telegram_id=optional("telegram_id"),
        slack_id=optional("slack_id"),
    )
