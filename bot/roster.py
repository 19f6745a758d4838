"""A roster file (CSV) read into rows for storage to import at once.

The columns are product.md's: ``name`` and ``role`` required; ``handle``, ``group`` (several
names separated by ``;``), ``advisor``, ``timezone``, ``email``, ``telegram_id`` and
``slack_id`` optional, in any order. UTF-8, with or without a byte-order mark. Line numbers
are the file's own (the header is line 1; a quoted value may span lines), so a problem can be
found in an editor.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from dialogues import START, ProfilebotError
from storage import (
    Chat,
    FollowUp,
    ImportCounts,
    PersonRecord,
    RosterEntry,
    RosterError,
    RosterStore,
)

from .app import App
from .outreach import Outreach
from .progress import Progress

__all__ = [
    "COLUMNS",
    "REQUIRED",
    "RosterFileError",
    "deliver_waiting",
    "import_roster",
    "link_account",
    "read_roster",
]

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


def link_account(
    app: App, handle: str, platform: str, account: str, *, workspace: str | None = None
) -> tuple[PersonRecord, bool]:
    """Link an account an administrator knows; a conversation that waited for the person to
    have one (a survey, a scheduled check-in) is then sent there. Returns the person and
    whether one was."""
    person = app.roster.link_account(handle, platform, account, workspace=workspace)
    return person, deliver_waiting(app, person, Chat(platform, account))


def deliver_waiting(app: App, person: PersonRecord, chat: Chat) -> bool:
    """Begin the person's open conversation in ``chat`` if it has not begun yet (it was
    started while they could not be messaged): its intro and first question are queued, on
    the bot's initiative (quiet hours hold them for the morning). False when none waits."""
    service = app.service
    hold = Outreach(app).quiet_hold(person)
    with service.store.turn(person.id) as turn:
        record = turn.open_conversation()
        timed = None if record is None else turn.timed_conversation(record.id)
        if timed is None or timed.record.state.step != START:
            return False
        engine = service.engine_for(turn, timed.record)
        result = engine.resume(timed.record.state, service.context(turn))
        reminders = FollowUp.from_start(engine.flow.settings, turn.now)
        turn.save(
            timed.record,
            result,
            platform=chat.platform,
            address=chat.address,
            follow_up=dataclasses.replace(timed.follow_up, remind_at=reminders.remind_at),
            not_before=hold,
            proactive=True,
        )
    return True


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
