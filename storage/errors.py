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
"""

from __future__ import annotations

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
