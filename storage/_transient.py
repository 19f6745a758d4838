"""PROVISIONAL (replaced at merge by the storage-public branch's is_transient)."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, OperationalError

from .errors import DatabaseUnavailable

__all__ = ["is_transient"]


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    return False
