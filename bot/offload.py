"""Blocking database calls off the event loop, on threads sized to what the database can use.

Adapters and the delivery worker run every storage call (a turn, an outbox read or write)
through one ``StorageThreads``. On SQLite a single thread serves: one writer at a time holds
the database, so more threads would only queue for its lock and take the interpreter from
the event loop (with asyncio's default pool of six threads the Slack benchmark spent 20%
more CPU per event than with one). On PostgreSQL, turns of different people lock different
rows and run side by side. Other blocking work (name lookups, files) keeps asyncio's own
pool, so a slow DNS answer never holds up a turn.

A hand-off costs less than ``run_in_executor``'s (about 60 µs of CPU for a round trip on a
2-core machine, half of it when calls queue up): a call waiting in the queue is picked up
without waking anyone, and results go back to the event loop in batches, with one wake-up
for all those that finished while the loop was busy.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

__all__ = ["Offload", "StorageThreads"]

P = ParamSpec("P")
T = TypeVar("T")

_Job = tuple[Callable[[], Any], "asyncio.Future[Any]"]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Offload(Protocol):
    """Runs a blocking call in a thread and awaits its result (``asyncio.to_thread`` is one)."""

    def __call__(
        self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class StorageThreads:
    """The process's threads for storage calls (``Database.useful_threads`` of them); they
    start on first use.

    Calls run in the order they were made (on SQLite's single thread, strictly one after
    the other). A call whose awaiting future was cancelled before it started does not run.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("StorageThreads needs at least one thread")
        self.size = size
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._finished: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        self._closed = False

    def __call__(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        if self._closed:
            raise RuntimeError("StorageThreads used after close()")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if len(self._threads) < self.size:
            self._start_thread()
        self._jobs.put((functools.partial(func, *args, **kwargs), future))
        return future

    def close(self) -> None:
        """Let calls already queued finish, then let the threads end; new calls are refused."""
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)

    def _start_thread(self) -> None:
        name = f"profilebot-storage-{len(self._threads)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, future = job
            if future.cancelled():
                continue
            try:
                outcome: _Outcome = (future, call(), None)
            except BaseException as exc:  # handed to the coroutine awaiting it
                outcome = (future, None, exc)
            self._hand_back(outcome)

    def _hand_back(self, outcome: _Outcome) -> None:
        """Queue a result for its event loop; wake that loop only if no wake-up is pending."""
        loop = outcome[0].get_loop()
        with self._lock:
            waiting = self._finished.setdefault(loop, [])
            waiting.append(outcome)
            if len(waiting) > 1:  # a wake-up is on its way already
                return
        try:
            loop.call_soon_threadsafe(self._settle, loop)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            with self._lock:
                self._finished.pop(loop, None)

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            outcomes = self._finished.pop(loop, [])
        for future, result, exc in outcomes:
            if future.cancelled():
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)
