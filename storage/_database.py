"""One database: its engine, its connection rules, and its schema migrations.

SQLite gets WAL, ``synchronous=NORMAL``, foreign keys and a busy timeout, and every write
transaction (``begin``) starts with ``BEGIN IMMEDIATE``: pysqlite's default deferred
transactions take the write lock only at the first write, so two turns could both read a state
and one update would be lost. Writers of one process also queue on a Python lock before that
``BEGIN IMMEDIATE``: SQLite's own busy handler polls with sleeps of up to 25 ms, a lock hands
over at once. Pure reads (``read``) start with a deferred ``BEGIN``: in WAL mode that is a
snapshot which neither takes nor waits for the write lock. A SQLite file's WAL is checkpointed
mostly by a background thread, not in commits (``_wal``). PostgreSQL goes through psycopg 3
whatever spelling of the URL was given. Neither engine puts statement parameters (answers,
message text) into its errors or logs.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from . import _wal
from ._sql import Sql, statement
from ._wal import Checkpointer
from .errors import DatabaseUnavailable, InvalidDatabaseURL, SchemaError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["SCHEMA_HEAD", "Database"]

log = logging.getLogger("profilebot.storage")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_HEAD = "0014"
"""The newest revision in ``migrations/versions`` (a test holds the two together): knowing
it without Alembic, a command finds an up-to-date database so with one query, and imports
Alembic only when a migration must run."""
_VERSION_TABLE = "alembic_version"
_MIGRATION_LOCK_ID = 0x70726F66  # "prof": serialises `upgrade` across PostgreSQL clients
_SQLITE_WAL = "PRAGMA journal_mode=WAL"  # answers the mode it is in: "memory" for :memory:
_SQLITE_PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)
_BEGIN_IMMEDIATE = statement("BEGIN IMMEDIATE")
_BEGIN_DEFERRED = statement("BEGIN")
_WRITER_WAIT_S = 5.0  # as long as busy_timeout; past it, BEGIN IMMEDIATE decides (and fails)
_POSTGRES_THREADS = 4
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}


class Database:
    """A database by URL: ``sqlite:///PATH`` or ``postgresql://USER:PASS@HOST/DB``.

    Constructing one does not connect; ``check()`` does. One instance (one engine and its
    connection pool) is meant to live as long as the process.
    """

    def __init__(self, url: str) -> None:
        self._url = _normalise_url(url)
        self._checkpointer: Checkpointer | None = None
        # SQLite: the queue this process's writers wait in (None on PostgreSQL, where rows are
        # locked, not the database). An in-memory database is one shared connection: its reads
        # queue there too, since a second BEGIN on that connection would fail.
        self._writers: threading.RLock | None = None
        self._serial_reads = False
        if self._url.get_backend_name() == "sqlite":
            self._engine, self._checkpointer = _sqlite_engine(self._url)
            self._writers = threading.RLock()
            self._serial_reads = self._url.database in (None, "", ":memory:")
        else:
            self._engine = _postgres_engine(self._url)
        if self._checkpointer is not None:  # also at exit, or when dropped without dispose()
            weakref.finalize(self, self._checkpointer.stop)

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._url.get_backend_name()

    @property
    def url(self) -> URL:
        return self._url

    @property
    def useful_threads(self) -> int:
        """How many threads can usefully run transactions at once: one on SQLite, where a
        single writer holds the database at a time; a few on PostgreSQL, where turns lock
        rows (below the connection pool's five, so a thread never waits for a connection)."""
        return 1 if self._writers is not None else _POSTGRES_THREADS

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for messages and logs."""
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction: commit on normal exit, roll back on error.

        On SQLite it holds the database's write lock from the start (``BEGIN IMMEDIATE``).
        """
        writers = self._writers
        # The lock only orders this process's writers; should it be held too long (a nested
        # write in one thread, a stuck writer), BEGIN IMMEDIATE waits and fails as before.
        queued = writers is not None and writers.acquire(timeout=_WRITER_WAIT_S)
        try:
            conn = self.connect()
            try:
                try:
                    transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE waits up to busy_timeout
                except DBAPIError as exc:
                    raise self._unavailable(exc) from exc
                with transaction:
                    yield conn
            finally:
                conn.close()
        finally:
            if queued:
                assert writers is not None
                writers.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a transaction that only reads: one consistent snapshot.

        On a SQLite file this is a deferred ``BEGIN``: it waits for no writer and holds no
        one up (WAL). Statements run here must not write: on SQLite a write would need the
        lock that a ``begin()`` transaction holds. On PostgreSQL it is an ordinary
        transaction (reads never wait for row locks there).
        """
        if self._writers is None or self._serial_reads:
            with self.begin() as conn:
                yield conn
            return
        conn = self.connect()
        try:
            _deferred.active = True
            try:
                transaction = conn.begin()
            except DBAPIError as exc:
                raise self._unavailable(exc) from exc
            finally:
                _deferred.active = False
            with transaction:
                yield conn
        finally:
            conn.close()

    def connect(self) -> Connection:
        """A pooled connection; failing to get one raises DatabaseUnavailable."""
        try:
            return self._engine.connect()
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc

    def check(self) -> None:
        """Connect and start a write transaction, or raise DatabaseUnavailable in one line."""
        try:
            with self._engine.connect() as conn, conn.begin():
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise self._unavailable(exc) from exc

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None when it was never migrated)."""
        try:
            with self.read() as conn:
                revisions = conn.exec_driver_sql(f"SELECT version_num FROM {_VERSION_TABLE}")
                found = list(revisions.scalars())
        except DBAPIError as exc:
            if self._has_version_table():
                raise self._unavailable(exc) from exc
            return None  # a database no migration has run on yet
        if len(found) > 1:
            raise SchemaError(
                f"database at {self.safe_url} is at several schema revisions at once "
                f"({', '.join(sorted(found))}); profilebot's migrations have one line"
            )
        return found[0] if found else None

    def head_revision(self) -> str:
        """The newest schema revision this code knows."""
        return SCHEMA_HEAD

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision (Alembic ``upgrade head``)."""
        from alembic import command
        from alembic.util.exc import CommandError

        with self.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            cfg = self._alembic_config()
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "head")
            except CommandError as exc:
                raise SchemaError(
                    f"cannot migrate database at {self.safe_url}: {_one_line(str(exc))}"
                ) from exc
        log.info("database schema at revision %s", self.head_revision())

    def ensure_schema(self) -> None:
        """Upgrade only when the database is not already at the newest revision (cheap)."""
        if self.current_revision() != self.head_revision():
            self.upgrade()

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown, or before dropping the database).

        Stops the WAL checkpointer first, so the last connection to close checkpoints the WAL
        into the file. Using the database again starts it again.
        """
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._engine.dispose()

    def scrub(self) -> bool:
        """Leave nothing deleted readable in a SQLite file or its WAL: rewrite the file
        (VACUUM), then copy the WAL into it and cut the WAL to nothing (a TRUNCATE
        checkpoint). False when a reader elsewhere kept the WAL from being cut (a later scrub
        finishes it). PostgreSQL keeps dead rows until its own VACUUM: nothing to do here.
        """
        if self._writers is None or self._serial_reads:
            return True
        with self._writers:
            conn = self.connect()
            try:
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute("VACUUM")
                busy, _pages, _copied = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        return not busy

    def _has_version_table(self) -> bool:
        with self.read() as conn:
            return inspect(conn).has_table(_VERSION_TABLE)

    def _alembic_config(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        return cfg

    def _unavailable(self, exc: DBAPIError) -> DatabaseUnavailable:
        reason = _one_line(str(exc.orig) if exc.orig is not None else str(exc))
        if self.dialect == "sqlite" and "unable to open" in reason:
            reason += " (does its directory exist, and may this user write there?)"
        return DatabaseUnavailable(f"cannot reach database at {self.safe_url}: {reason}")


def _one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


def _normalise_url(raw: str) -> URL:
    """Parse and check the URL; every PostgreSQL spelling becomes ``postgresql+psycopg``."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise InvalidDatabaseURL(
            f"cannot parse database URL {_redact(raw)!r}: expected sqlite:///PATH "
            "or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if url.drivername in _POSTGRES_SCHEMES:
        if not url.database:
            raise InvalidDatabaseURL(
                f"database URL {url.render_as_string(hide_password=True)!r} names no database"
            )
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in _SQLITE_SCHEMES:
        return url.set(drivername="sqlite")
    raise InvalidDatabaseURL(
        f"unsupported database URL scheme {url.drivername!r}: use sqlite:///PATH "
        "or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    )


def _redact(raw: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", raw)


def _postgres_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> tuple[Engine, Checkpointer | None]:
    """The engine, and for a database file the WAL checkpointer its connections rely on."""
    memory = url.database in (None, "", ":memory:")
    checkpointer = None
    if memory:  # one shared connection, so every caller sees the same database
        engine = create_engine(
            url,
            poolclass=StaticPool,
            hide_parameters=True,
            connect_args={"check_same_thread": False},
        )
    else:
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 5.0})
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        path, uri = str(cargs[0]), bool(cparams.get("uri", False))

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(path, uri=uri, isolation_level=None, timeout=5.0)

        checkpointer = Checkpointer(connect, name=f"wal-checkpoint {url.database}")

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transactions out of pysqlite's hands (it would BEGIN, deferred, on its own):
        # the "begin" listener below begins them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            wal = cursor.execute(_SQLITE_WAL).fetchone()[0] == "wal"
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            if wal and checkpointer is not None:
                cursor.execute(f"PRAGMA wal_autocheckpoint={int(_wal.AUTOCHECKPOINT_PAGES)}")
                checkpointer.start()
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _begin)
    return engine, checkpointer


class _Deferred(threading.local):
    active = False  # set by Database.read() around its BEGIN, in the thread beginning


_deferred = _Deferred()


def _begin(conn: Connection) -> None:
    """The "begin" event: SQLite transactions begun by us (SQLAlchemy's pysqlite recipe).

    Take the write lock up front, so a turn's read and its write see the same state; a
    read-only transaction (Database.read) takes only a snapshot. Run like the turn's own
    statements (``Sql``), not with the recipe's ``exec_driver_sql``, which costs a turn more
    than the BEGIN itself: a lock that outlasts busy_timeout still fails as Core's
    OperationalError.
    """
    Sql(conn).execute(_BEGIN_DEFERRED if _deferred.active else _BEGIN_IMMEDIATE, {})
