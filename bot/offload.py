"""Blocking database calls off the event loop, on threads sized to what the database can use.

Adapters and the delivery worker run every storage call (a turn, an outbox read or write)
through one ``Offload``. On SQLite a single thread serves: one writer at a time holds the
database, so more threads would only queue for its lock and take the interpreter from the
event loop (with asyncio's default pool of six threads the Slack benchmark spent 20% more
CPU per event than with one). On PostgreSQL, turns of different people lock different rows
and run side by side. Other blocking work (name lookups, files) keeps asyncio's own pool,
so a slow DNS answer never holds up a turn.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, Protocol, TypeVar

from storage import Database

__all__ = ["Offload", "StorageThreads"]

P = ParamSpec("P")
T = TypeVar("T")


class Offload(Protocol):
    """Runs a blocking call in a thread and awaits its result (``asyncio.to_thread`` is one)."""

    def __call__(
        self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class StorageThreads:
    """The process's threads for storage calls; they start on first use."""

    def __init__(self, db: Database) -> None:
        self.size = db.useful_threads
        self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="profilebot-storage")

    def __call__(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    def close(self) -> None:
        """Let calls already queued finish; new ones are refused."""
        self._pool.shutdown(wait=False)
