"""The turn's hot statements as plain SQL text, run on the connection's DBAPI cursor.

A Core ``execute`` costs ~150 µs of Python (cache key, execution context, result object),
and a turn runs five to ten of them: more than the SQL itself. So the statements a turn runs
on every message are written here once, as text with ``:name`` placeholders (psycopg's
``%(name)s`` spelling is derived at import), and values always go in as parameters.

They run on the driver's own cursor (``Connection.connection.driver_connection``), inside the
Core connection's transaction. So SQLAlchemy's engine events and echo logging do not see
them (count them at the driver: SQLite's trace callback, psycopg's ``cursor_factory``), but
their errors come out as Core's would: a driver error is raised as the ``sqlalchemy.exc``
class of the same name (``IntegrityError``, ``OperationalError``...), a value the driver
cannot bind as ``StatementError``, their parameters hidden; one the dialect reads as a lost
connection invalidates that connection, so the pool never hands it out again.

What Core's column types would do to a value is done here: ``Sql.time`` and ``Sql.date``
store exactly the text (SQLite) or aware value (PostgreSQL) that ``UtcDateTime``/``Date``
store. Cold paths (roster, admin edits, reports, migrations) stay on Core.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor

from dialogues import CHECKIN_FIELDS, CHECKIN_GOAL_FIELDS, GOAL_FIELDS, ConversationStatus

__all__ = ["Sql", "Statement", "statement", "utc_value"]

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_ROWS_PER_INSERT = 100  # far below either backend's limit on parameters per statement
# Core's wrapper of each PEP 249 error class, by the name the driver's own classes derive from.
_WRAPPERS: dict[str, type[exc.DBAPIError]] = {
    wrapper.__name__: wrapper
    for wrapper in (
        exc.IntegrityError,
        exc.DataError,
        exc.OperationalError,
        exc.ProgrammingError,
        exc.NotSupportedError,
        exc.InternalError,
        exc.DatabaseError,
        exc.InterfaceError,
    )
}


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement, spelled for each backend's driver."""

    sqlite: str
    postgresql: str


def statement(text: str, *, postgresql: str | None = None) -> Statement:
    """SQL with ``:name`` placeholders; ``postgresql`` when that backend needs other SQL."""
    pg = text if postgresql is None else postgresql
    if "%" in pg:  # psycopg would read it as a placeholder
        raise ValueError(f"a literal % in SQL needs escaping for psycopg: {pg!r}")
    return Statement(text, _NAMED.sub(r"%(\1)s", pg))


@cache
def _insert_rows(table: str, columns: tuple[str, ...], rows: int, returning: str) -> Statement:
    """``INSERT ... VALUES (...), (...)`` for ``rows`` rows, positional placeholders."""

    def spelled(mark: str) -> str:
        row = "(" + ", ".join([mark] * len(columns)) + ")"
        tail = f" RETURNING {returning}" if returning else ""
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}{tail}"

    return Statement(spelled("?"), spelled("%s"))


class Sql:
    """Runs ``Statement``s on one SQLAlchemy connection, inside its transaction."""

    __slots__ = ("_conn", "_driver", "_postgres")

    def __init__(self, conn: Connection) -> None:
        driver = conn.connection.driver_connection
        if driver is None:
            raise exc.ResourceClosedError("this connection is closed")
        self._conn = conn
        self._driver: DBAPIConnection = driver
        self._postgres = conn.dialect.name == "postgresql"

    @property
    def conn(self) -> Connection:
        """The Core connection, for the cold statements of a turn (profile and plan reads)."""
        return self._conn

    def execute(self, stmt: Statement, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; returns its rowcount."""
        return self._run(stmt, params, fetch=False)[0]

    def rows(self, stmt: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Every row (plain tuples), read to the end so no statement stays open."""
        return self._run(stmt, params, fetch=True)[1]

    def first(self, stmt: Statement, params: Mapping[str, Any]) -> Sequence[Any] | None:
        found = self.rows(stmt, params)
        return found[0] if found else None

    def scalar(self, stmt: Statement, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        row = self.first(stmt, params)
        return None if row is None else row[0]

    def insert(
        self,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[Sequence[Any]],
        *,
        returning: str = "",
    ) -> list[Sequence[Any]]:
        """Insert rows with one multi-row ``VALUES`` statement (per 100 rows).

        With ``returning``, the returned rows; neither backend promises their order.
        """
        returned: list[Sequence[Any]] = []
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            stmt = _insert_rows(table, columns, len(chunk), returning)
            flat = [value for row in chunk for value in row]
            returned.extend(self._run(stmt, flat, fetch=bool(returning))[1])
        return returned

    def time(self, value: datetime) -> Any:
        """A UTC timestamp as ``UtcDateTime`` binds it: naive-UTC text on SQLite."""
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if self._postgres:
            return value
        # SQLAlchemy's SQLite DATETIME storage format, microseconds always written
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    def date(self, value: date | None) -> Any:
        """A date as the ``Date`` type binds it: ISO text on SQLite."""
        if value is None or self._postgres:
            return value
        return value.isoformat()

    def _run(
        self, stmt: Statement, params: Mapping[str, Any] | list[Any], *, fetch: bool
    ) -> tuple[int, list[Sequence[Any]]]:
        """Execute on a fresh driver cursor: (rowcount, every row when ``fetch``)."""
        sql = stmt.postgresql if self._postgres else stmt.sqlite
        cursor = self._driver.cursor()
        try:
            cursor.execute(sql, params)
            found = list(cursor.fetchall()) if fetch else []
            count = int(cursor.rowcount)
        except BaseException as error:
            wrapped = self._failed(error, sql, params, cursor)
            if wrapped is None:
                raise
            raise wrapped from error
        cursor.close()
        return count, found

    def _failed(
        self,
        error: BaseException,
        sql: str,
        params: Mapping[str, Any] | list[Any],
        cursor: DBAPICursor,
    ) -> exc.StatementError | None:
        """The driver's error as Core raises it (None: raise it as it is).

        As in Core, a lost connection, or a statement interrupted halfway (Ctrl-C), leaves
        the connection invalidated: it is closed rather than returned to the pool.
        """
        with suppress(Exception):
            cursor.close()
        dialect = self._conn.dialect
        if not isinstance(error, Exception):
            self._conn.invalidate(error)
            return None
        if not isinstance(error, dialect.loaded_dbapi.Error):  # e.g. a value it cannot bind
            kind = f"{type(error).__module__}.{type(error).__name__}"
            return exc.StatementError(f"({kind}) {error}", sql, params, error, hide_parameters=True)
        lost = dialect.is_disconnect(error, self._driver, cursor)
        wrapper = next(
            (_WRAPPERS[k.__name__] for k in type(error).__mro__ if k.__name__ in _WRAPPERS),
            exc.DBAPIError,
        )
        wrapped = wrapper(sql, params, error, hide_parameters=True, connection_invalidated=lost)
        if lost:
            self._conn.invalidate(wrapped)
        return wrapped


def utc_value(value: Any) -> datetime:
    """A timestamp column read raw, as ``UtcDateTime`` returns it: an aware UTC datetime.

    SQLite gives back the stored text, PostgreSQL a datetime.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- the statements ----------------------------------------------------------------------
# Column lists name every column Core would have given a default, so rows are identical.

_OPEN_STATUSES = ", ".join(f"'{s.value}'" for s in ConversationStatus if s.is_open)

_PERSON_COLUMNS = "p.id, p.handle, p.display_name, p.first_name, p.timezone, p.language, "
_PERSON_COLUMNS += "p.opted_out, r.role"
_PERSON_FROM = "FROM person p LEFT JOIN person_role r ON r.person_id = p.id"
_CONVERSATION_COLUMNS = "c.id, c.flow_id, c.state, c.version, fv.version, fv.content_hash"

# The turn lock on PostgreSQL: the person row, held until commit; one row per role. State is
# read by later statements: a statement's snapshot is taken before its lock is granted.
LOCK_PERSON = statement(
    f"SELECT {_PERSON_COLUMNS} {_PERSON_FROM} WHERE p.id = :person_id "
    "ORDER BY r.role FOR UPDATE OF p"
)
# SQLite only, where BEGIN IMMEDIATE already holds the write lock: the person and what a turn
# reads first, their latest open conversation (repeated on every role row), in one statement.
_PERSON_AND_OPEN = f"""
    SELECT {_PERSON_COLUMNS}, {_CONVERSATION_COLUMNS}
    {{}}
    LEFT JOIN person_role r ON r.person_id = p.id
    LEFT JOIN conversation c ON c.id = (
        SELECT o.id FROM conversation o
        WHERE o.person_id = p.id AND o.status IN ({_OPEN_STATUSES})
        ORDER BY o.updated_at DESC, o.id DESC LIMIT 1
    )
    LEFT JOIN flow_version fv ON fv.id = c.flow_version_id
    {{}}
    ORDER BY r.role
"""
_BY_ACCOUNT = (
    "ci.platform = :platform AND ci.workspace = :workspace AND ci.platform_user_id = :user_id"
)
PERSON_AND_OPEN = statement(_PERSON_AND_OPEN.format("FROM person p", "WHERE p.id = :person_id"))
# The same for a platform account: the turn of whoever writes, found inside the turn.
ACCOUNT_AND_OPEN = statement(
    _PERSON_AND_OPEN.format(
        "FROM channel_identity ci JOIN person p ON p.id = ci.person_id", f"WHERE {_BY_ACCOUNT}"
    )
)
# Who a platform user is (read-only, outside a turn): the person and roles, as LOCK_PERSON.
PERSON_BY_IDENTITY = statement(
    f"SELECT {_PERSON_COLUMNS} FROM channel_identity ci JOIN person p ON p.id = ci.person_id "
    f"LEFT JOIN person_role r ON r.person_id = p.id WHERE {_BY_ACCOUNT} ORDER BY r.role"
)
# PostgreSQL finds the account's person first, then locks that row (LOCK_PERSON).
PERSON_ID_BY_ACCOUNT = statement(
    f"SELECT ci.person_id FROM channel_identity ci WHERE {_BY_ACCOUNT}"
)
# The person's most recently updated open conversation (of one flow), with its flow version.
_LATEST_OPEN = f"""
    SELECT {_CONVERSATION_COLUMNS}
    FROM conversation c JOIN flow_version fv ON fv.id = c.flow_version_id
    WHERE c.person_id = :person_id AND c.status IN ({_OPEN_STATUSES}) {{}}
    ORDER BY c.updated_at DESC, c.id DESC LIMIT 1
"""
OPEN_ANY = statement(_LATEST_OPEN.format(""))
OPEN_FOR_FLOW = statement(_LATEST_OPEN.format("AND c.flow_id = :flow_id"))
# ON CONFLICT DO NOTHING, so a repeat never aborts the (PostgreSQL) transaction
CLAIM_EVENT = statement(
    "INSERT INTO inbound_event (key, received_at) VALUES (:key, :now) ON CONFLICT (key) DO NOTHING"
)
EVENT_SEEN = statement("SELECT 1 FROM inbound_event WHERE key = :key")
FLOW_SOURCE = statement("SELECT source FROM flow_version WHERE content_hash = :content_hash")
FLOW_VERSION_ID = statement("SELECT id FROM flow_version WHERE content_hash = :content_hash")
CLAIM_FLOW_VERSION = statement(
    "INSERT INTO flow_version (flow_id, version, content_hash, source, title, created_at) "
    "VALUES (:flow_id, :version, :content_hash, :source, :title, :now) "
    "ON CONFLICT (content_hash) DO NOTHING RETURNING id"
)
INSERT_CONVERSATION = statement(
    "INSERT INTO conversation (person_id, flow_version_id, flow_id, step, status, state, "
    "version, reminders_sent, created_at, updated_at, remind_at, expires_at, schedule_id, "
    "survey_id) VALUES (:person_id, :flow_version_id, :flow_id, :step, :status, :state, 0, 0, "
    ":now, :now, :remind_at, :expires_at, :schedule_id, :survey_id) RETURNING id"
)
# optimistic: no row when the version moved since it was read
_WRITE_STATE = (
    "UPDATE conversation SET state = :state, step = :step, status = :status, "
    "version = version + 1, updated_at = :now{} WHERE id = :id AND version = :expected"
)
WRITE_STATE = statement(_WRITE_STATE.format(""))
# A conversation that ends needs no reminder and no expiry any more.
WRITE_CLOSED_STATE = statement(_WRITE_STATE.format(", remind_at = NULL, expires_at = NULL"))
# A turn that leaves a conversation not active frees its person for the starts that waited.
# PostgreSQL skips a row a scheduler holds: that scheduler waits for this turn's person lock,
# then sees the person free itself.
WAKE_BUSY = statement(
    "UPDATE due_start SET wake_at = :now WHERE person_id = :person_id AND waiting = 'busy'",
    postgresql="UPDATE due_start SET wake_at = :now WHERE id IN (SELECT id FROM due_start "
    "WHERE person_id = :person_id AND waiting = 'busy' FOR UPDATE SKIP LOCKED)",
)
# Busy: another conversation of the person's is under way (paused and stopped ones are not).
_ACTIVE = "SELECT id FROM conversation WHERE person_id = :person_id AND status = 'active' LIMIT 1"
ACTIVE_CONVERSATION = statement(_ACTIVE)
# Before a proactive start: was its key claimed already, is the person busy (one trip).
SEEN_AND_BUSY = statement(
    "SELECT (SELECT count(*) FROM inbound_event WHERE key = :key), "
    f"(SELECT count(*) FROM ({_ACTIVE}) a)"
)
# A person's chat accounts, the most recently linked first.
CHATS = statement(
    "SELECT platform, chat_id, platform_user_id, unreachable FROM channel_identity "
    "WHERE person_id = :person_id ORDER BY created_at DESC, id DESC"
)
PERSON_ACTIVE = statement("SELECT active FROM person WHERE id = :person_id")
# Everyone on the roster with a role (the staff a safety notice goes to), with whether they
# sent /stop.
PEOPLE_WITH_ROLE = statement(
    "SELECT p.id, p.handle, p.display_name, p.opted_out FROM person p "
    "JOIN person_role r ON r.person_id = p.id WHERE r.role = :role AND p.active ORDER BY p.id"
)
SET_FOLLOW_UP = statement(
    "UPDATE conversation SET remind_at = :remind_at, expires_at = :expires_at, "
    "reminders_sent = :reminders_sent WHERE id = :id AND person_id = :person_id"
)
# With its timers, what started it, and when the student last acted in it (its start or their
# latest answer) and when the bot last wrote to it on its own (its start or a reminder).
TIMED_CONVERSATION = statement(
    f"SELECT {_CONVERSATION_COLUMNS}, c.status, c.remind_at, c.expires_at, c.reminders_sent, "
    "c.schedule_id, c.survey_id, c.created_at, "
    "(SELECT max(a.created_at) FROM answer a WHERE a.conversation_id = c.id), "
    "(SELECT max(o.created_at) FROM outbox o WHERE o.conversation_id = c.id AND o.proactive) "
    "FROM conversation c JOIN flow_version fv ON fv.id = c.flow_version_id "
    "WHERE c.id = :id AND c.person_id = :person_id"
)
# A conversation's archive: the answers and `/back` history frames its state no longer holds
# itself (see dialogues' ConversationState.changes).
ARCHIVED_ANSWER = statement(
    "SELECT value FROM conversation_answer "
    "WHERE conversation_id = :conversation_id AND step_id = :step_id"
)
ARCHIVED_ANSWERS = statement(
    "SELECT step_id, value FROM conversation_answer WHERE conversation_id = :conversation_id"
)
DROP_ARCHIVED_ANSWER = statement(
    "DELETE FROM conversation_answer "
    "WHERE conversation_id = :conversation_id AND step_id = :step_id"
)
DROP_ARCHIVED_ANSWERS = statement(
    "DELETE FROM conversation_answer WHERE conversation_id = :conversation_id"
)
ARCHIVED_FRAMES = statement(
    "SELECT step_id, iteration, goal_key FROM conversation_frame "
    "WHERE conversation_id = :conversation_id AND position >= :start AND position < :stop "
    "ORDER BY position"
)
DROP_ARCHIVED_FRAMES = statement(
    "DELETE FROM conversation_frame "
    "WHERE conversation_id = :conversation_id AND position >= :position"
)
FRAME_COLUMNS = ("conversation_id", "position", "step_id", "iteration", "goal_key")


@cache
def archive_answers(count: int) -> Statement:
    """Write ``count`` answers (``:step_0``, ``:value_0``...) to a conversation's archive."""
    rows = ", ".join(f"(:conversation_id, :step_{n}, :value_{n})" for n in range(count))
    return statement(
        f"INSERT INTO conversation_answer (conversation_id, step_id, value) VALUES {rows} "
        "ON CONFLICT (conversation_id, step_id) DO UPDATE SET value = excluded.value"
    )


OUTBOX_RECORD_COLUMNS = (
    *("id", "person_id", "conversation_id", "platform", "address", "payload", "status"),
    *("attempts", "not_before", "last_error", "platform_message_id", "created_at", "sent_at"),
    "proactive",
    "urgent",
)
# A conversation's latest outbox rows, newest first (its question is among them).
RECENT_OUTBOX = statement(
    f"SELECT {', '.join(OUTBOX_RECORD_COLUMNS)} FROM outbox "
    "WHERE conversation_id = :conversation_id ORDER BY id DESC LIMIT :limit"
)
# What a delivery process may claim now (see OutboxStore.claim): pending, due, held by no
# process (``claimed_until`` past), and behind no older pending message to the same address that
# is not due yet or is held (``held``: one pass over the pending rows, whatever their number).
# Urgent rows (safety notices) go first and are never held behind older ones; then replies
# before proactive messages; with each row, whether its person opted out, whether they are
# still on the roster (``active``), and whether the identity it goes to is unreachable.
# PostgreSQL skips rows another transaction has locked.
_CLAIMABLE = f"""
    WITH held AS (
        SELECT address, min(id) AS first_id FROM outbox
        WHERE status = 'pending' AND platform = :platform
        AND (not_before > :now OR claimed_until > :wall)
        GROUP BY address
    )
    SELECT {", ".join("o." + c for c in OUTBOX_RECORD_COLUMNS)}, p.opted_out, p.active,
        EXISTS (SELECT 1 FROM channel_identity ci WHERE ci.person_id = o.person_id
            AND ci.platform = o.platform AND ci.unreachable
            AND (ci.chat_id = o.address OR ci.platform_user_id = o.address))
    FROM outbox o
    LEFT JOIN held h ON h.address = o.address
    LEFT JOIN person p ON p.id = o.person_id
    WHERE o.status = 'pending' AND o.platform = :platform AND o.not_before <= :now
    AND (o.claimed_until IS NULL OR o.claimed_until <= :wall)
    AND (o.urgent OR h.first_id IS NULL OR h.first_id > o.id)
    ORDER BY o.urgent DESC, o.proactive, o.id LIMIT :limit
"""
CLAIMABLE_OUTBOX = statement(_CLAIMABLE, postgresql=_CLAIMABLE + " FOR UPDATE OF o SKIP LOCKED")
BURY_OUTBOX = statement(
    "UPDATE outbox SET status = 'dead', last_error = :error, claimed_until = NULL WHERE id = :id"
)
# The identity an accepted message went to (see OutboxStore.mark_reachable).
REACHABLE_AGAIN = statement(
    "UPDATE channel_identity SET unreachable = false WHERE unreachable AND id IN ("
    "SELECT ci.id FROM outbox o JOIN channel_identity ci ON ci.person_id = o.person_id "
    "AND ci.platform = o.platform AND (ci.chat_id = o.address OR ci.platform_user_id = o.address) "
    "WHERE o.id = :id)"
)
# The platform's shared send budget, locked on PostgreSQL until commit: claims take turns.
_PACE = "SELECT next_at FROM delivery_pace WHERE platform = :platform"
PACE = statement(_PACE, postgresql=_PACE + " FOR UPDATE")
NEW_PACE = statement(
    "INSERT INTO delivery_pace (platform, next_at) VALUES (:platform, :next_at) "
    "ON CONFLICT (platform) DO NOTHING"
)
SET_PACE = statement("UPDATE delivery_pace SET next_at = :next_at WHERE platform = :platform")


@cache
def claim_rows(count: int) -> Statement:
    """Hold ``count`` outbox rows (``:id_0``...) until ``:until``."""
    ids = ", ".join(f":id_{n}" for n in range(count))
    return statement(f"UPDATE outbox SET claimed_until = :until WHERE id IN ({ids})")


@cache
def renew_rows(count: int) -> Statement:
    """Hold ``count`` rows (``:id_0``...) until ``:new_until``, if still pending and held by
    the claim that wrote ``:until``; returns the ids renewed."""
    ids = ", ".join(f":id_{n}" for n in range(count))
    return statement(
        f"UPDATE outbox SET claimed_until = :new_until WHERE id IN ({ids}) "
        "AND status = 'pending' AND claimed_until = :until RETURNING id"
    )


@cache
def release_rows(count: int) -> Statement:
    """Let go of ``count`` rows (``:id_0``...) still pending and still held by the claim that
    wrote ``:until`` (a later claim by another process is left alone)."""
    ids = ", ".join(f":id_{n}" for n in range(count))
    return statement(
        f"UPDATE outbox SET claimed_until = NULL WHERE id IN ({ids}) "
        "AND status = 'pending' AND claimed_until = :until"
    )


MARK_SENT = statement(
    "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = :now, "
    "platform_message_id = :pmid WHERE id = :id"
)
ANSWER_COLUMNS = ("conversation_id", "step_id", "iteration", "value", "raw", "status", "created_at")
OUTBOX_COLUMNS = (
    *("person_id", "conversation_id", "platform", "address", "payload", "status"),
    *("attempts", "not_before", "created_at", "proactive", "urgent"),
)

# --- effects (see _apply.py) ---

# The value an append builds on: the latest fact not written by this same answer.
APPEND_BASE = statement(
    "SELECT value FROM profile_fact WHERE person_id = :person_id AND field = :field "
    "AND (conversation_id IS NOT :conversation_id OR origin IS NOT :origin) "
    "ORDER BY id DESC LIMIT 1",
    postgresql="SELECT value FROM profile_fact WHERE person_id = :person_id AND field = :field "
    "AND (conversation_id IS DISTINCT FROM :conversation_id OR origin IS DISTINCT FROM :origin) "
    "ORDER BY id DESC LIMIT 1",
)
INSERT_FACT = statement(
    "INSERT INTO profile_fact (person_id, field, value, private, conversation_id, flow_id, "
    "flow_version, step_id, origin, source, created_at) "
    "VALUES (:person_id, :field, :value, :private, :conversation_id, :flow_id, :flow_version, "
    ":step_id, :origin, 'conversation', :now)"
)
NEW_GOAL_ID = statement(
    "SELECT id FROM goal WHERE conversation_id = :conversation_id AND origin_key = :origin_key"
)
INSERT_GOAL = statement(
    "INSERT INTO goal (person_id, title, status, conversation_id, origin_key, created_at, "
    "updated_at) VALUES (:person_id, '', 'active', :conversation_id, :origin_key, :now, :now) "
    "RETURNING id"
)
GOAL_OWNER = statement("SELECT person_id FROM goal WHERE id = :goal_id")
# A goal's fields a flow may set, each a column of ``goal`` (action steps are rows of their own).
GOAL_COLUMNS = GOAL_FIELDS - {"action_steps"}
SET_GOAL = {
    name: statement(f"UPDATE goal SET {name} = :value, updated_at = :now WHERE id = :goal_id")
    for name in sorted(GOAL_COLUMNS)
}
DELETE_STEPS = statement(
    "DELETE FROM action_step WHERE goal_id = :goal_id AND conversation_id = :conversation_id "
    "AND origin = :origin"
)
NEXT_POSITION = statement(
    "SELECT coalesce(max(position), -1) + 1 FROM action_step WHERE goal_id = :goal_id"
)
STEP_COLUMNS = ("goal_id", "text", "done", "conversation_id", "origin", "position", "created_at")

CHECKIN_ID = statement("SELECT id FROM checkin WHERE conversation_id = :conversation_id")
INSERT_CHECKIN = statement(
    "INSERT INTO checkin (person_id, conversation_id, created_at) "
    "VALUES (:person_id, :conversation_id, :now) RETURNING id"
)
# One statement sets a field (each a column of ``checkin``), creating the conversation's
# check-in row on first use.
SET_CHECKIN = {
    name: statement(
        f"INSERT INTO checkin (person_id, conversation_id, created_at, {name}) "
        f"VALUES (:person_id, :conversation_id, :now, :value) "
        f"ON CONFLICT (conversation_id) DO UPDATE SET {name} = excluded.{name} RETURNING id"
    )
    for name in sorted(CHECKIN_FIELDS)
}
# The usual case in one statement: the goal is this person's and the check-in row exists
# (no row is written otherwise, and the caller takes the long way). Every field is text.
SET_CHECKIN_GOAL_IF_OWNED = {
    name: statement(
        f"INSERT INTO checkin_goal_update (checkin_id, goal_id, {name}) "
        f"SELECT c.id, g.id, :value FROM checkin c, goal g "
        f"WHERE c.conversation_id = :conversation_id AND g.id = :goal_id "
        f"AND g.person_id = :person_id "
        f"ON CONFLICT (checkin_id, goal_id) DO UPDATE SET {name} = excluded.{name}"
    )
    for name in sorted(CHECKIN_GOAL_FIELDS)
}
SET_CHECKIN_GOAL = {
    name: statement(
        f"INSERT INTO checkin_goal_update (checkin_id, goal_id, {name}) "
        f"VALUES (:checkin_id, :goal_id, :value) "
        f"ON CONFLICT (checkin_id, goal_id) DO UPDATE SET {name} = excluded.{name}"
    )
    for name in sorted(CHECKIN_GOAL_FIELDS)
}
REFLECTION = statement("SELECT id, fields FROM reflection WHERE conversation_id = :conversation_id")
INSERT_REFLECTION = statement(
    "INSERT INTO reflection (person_id, conversation_id, fields, created_at) "
    "VALUES (:person_id, :conversation_id, :fields, :now)"
)
UPDATE_REFLECTION = statement("UPDATE reflection SET fields = :fields WHERE id = :id")
DELETE_ARTIFACTS = statement(
    "DELETE FROM artifact WHERE person_id = :person_id AND conversation_id = :conversation_id "
    "AND origin = :origin"
)
INSERT_ARTIFACT = statement(
    "INSERT INTO artifact (person_id, goal_id, kind, file_id, name, mime_type, url, caption, "
    "conversation_id, origin, created_at) VALUES (:person_id, :goal_id, :kind, :file_id, "
    ":name, :mime_type, :url, :caption, :conversation_id, :origin, :now)"
)
SET_OPT_OUT = statement("UPDATE person SET opted_out = :opted_out WHERE id = :person_id")
INSERT_AUDIT = statement(
    "INSERT INTO audit_log (actor_person_id, action, subject_person_id, detail, created_at) "
    "VALUES (:actor_person_id, :action, :subject_person_id, :detail, :now)"
)
