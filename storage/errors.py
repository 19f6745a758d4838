"""Every error the storage layer raises on purpose.

They hang under profilebot's single root, so callers can catch as broadly as they need::

    ProfilebotError                   (dialogues.errors)
    └── StorageError                  the database cannot do what was asked
        ├── InvalidDatabaseURL        the URL is not a form storage understands
        ├── DatabaseUnavailable       the database cannot be reached, opened or written
        ├── SchemaError               the schema is from a newer (unknown) revision
        ├── InvalidValueError         a value a store refuses (unknown role, taken handle...)
        ├── UnknownPersonError        no person with that handle or id
        ├── InvalidInviteError        an invite code that is unknown, used or expired
        ├── UnknownRecordError        no row with that id (an outbox message)
        └── ConflictError             a conversation record used outside the turn that read it

Messages are one line and never contain answer values or message text.

The database driver's own errors (a constraint violated, a lock that outlasted the busy
timeout, a lost connection) come out of every store as SQLAlchemy's wrappers of the same name
(``sqlalchemy.exc.IntegrityError``, ``OperationalError``...), and a value the driver cannot
take (text that is not Unicode) as ``sqlalchemy.exc.StatementError``, their parameters hidden;
a lost connection is invalidated, never pooled again. ``is_transient`` says which of all these
are worth retrying.
"""

from __future__ import annotations

from sqlalchemy import exc

from dialogues.errors import ProfilebotError

__all__ = [
    "ConflictError",
    "DatabaseUnavailable",
    "InvalidDatabaseURL",
    "InvalidInviteError",
    "InvalidValueError",
    "SchemaError",
    "StorageError",
    "UnknownPersonError",
    "UnknownRecordError",
    "is_transient",
]


class StorageError(ProfilebotError):
    """The database cannot do what was asked."""


class InvalidDatabaseURL(StorageError, ValueError):
    """The database URL is malformed or names an unsupported database."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached, opened or written (server down, bad path...)."""


class SchemaError(StorageError):
    """The database's schema revision is one this code does not know (it is newer)."""


class InvalidValueError(StorageError, ValueError):
    """A store refused a value: an unknown role, a handle already taken, a bad field."""


class UnknownPersonError(StorageError, LookupError):
    """No person with that handle (or id)."""


class UnknownRecordError(StorageError, LookupError):
    """No row with that id."""


class ConflictError(StorageError):
    """A conversation changed since its record was read (it was read in another turn)."""


class InvalidInviteError(StorageError):
    """An invite code that is unknown, already used, or expired (the message says which)."""


# SQLite result codes (the low byte of an extended code): another connection holds the lock,
# or the file cannot be opened right now.
_SQLITE_TRANSIENT = frozenset({5, 6, 14, 15})  # BUSY, LOCKED, CANTOPEN, PROTOCOL
# PostgreSQL SQLSTATEs: the transaction lost a race (serialization, deadlock, lock timeout),
# the server is going away or refusing connections for now.
_PG_TRANSIENT = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "57P05", "53300"})
_PG_CONNECTION_CLASS = "08"
_CAUSES_FOLLOWED = 8


def is_transient(error: BaseException) -> bool:
    """Whether a storage call failed on a passing condition of the database, worth retrying.

    True for a locked or busy database, a connection lost or refused, a serialization failure
    or deadlock, and ``DatabaseUnavailable``; False for everything else: a constraint
    violation, a bug, any other ``StorageError``. An exception raised ``from`` a transient
    one is transient too.
    """
    for _ in range(_CAUSES_FOLLOWED):
        if isinstance(error, StorageError):
            return isinstance(error, DatabaseUnavailable)
        if isinstance(error, exc.DBAPIError):
            lost = error.connection_invalidated
            return lost or (error.orig is not None and _transient_driver_error(error.orig))
        if isinstance(error, exc.DisconnectionError | exc.TimeoutError):
            return True  # the pool lost a connection, or waited too long for a free one
        if _transient_driver_error(error):
            return True
        if error.__cause__ is None:
            return False
        error = error.__cause__
    return False


def _transient_driver_error(error: BaseException) -> bool:
    """A DBAPI error, sqlite3's or psycopg's, that reports a passing condition."""
    sqlite_code = getattr(error, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _SQLITE_TRANSIENT
    if not hasattr(error, "sqlstate"):  # not psycopg's
        return False
    state = error.sqlstate
    if state is None:  # raised by the client: psycopg's OperationalError is a lost connection
        return any(k.__name__ == "OperationalError" for k in type(error).__mro__)
    return isinstance(state, str) and (state in _PG_TRANSIENT or state[:2] == _PG_CONNECTION_CLASS)
