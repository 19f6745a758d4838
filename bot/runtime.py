"""Process settings for a long-running bot server (``profilebot run``), applied once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any, Final

__all__ = [
    "SHUTDOWN_GRACE",
    "finish_within",
    "run_until_stopped",
    "stop_on_signals",
    "tune_for_serving",
]

log = logging.getLogger("profilebot.runtime")

SHUTDOWN_GRACE: Final = 3.0
"""Seconds work under way may take to finish once the bot is asked to stop.

Past it, the work is cancelled: a turn not yet committed rolls back and its message is
delivered again when the bot is back (Telegram keeps the update, Slack retries the event),
and a reply sent but not yet marked sent is sent again. Nothing is lost either way.
"""
_SWITCH_INTERVAL_S: Final = 0.0005
_tuned = False


def tune_for_serving() -> None:
    """Settings for a process that serves a chat platform, applied when it starts serving.

    - The objects made while starting up (modules, flows, the platform SDK, SQLAlchemy) are
      kept out of the garbage collector's full passes (``gc.freeze``). They live as long as
      the process, yet each full collection walked all of them: 60-90 ms with the bot
      stalled, a few times a minute under load, most of the reply latency's tail. Frozen
      objects are still freed when their last reference goes.
    - Threads take turns on the interpreter every 0.5 ms instead of 5 ms. Every message
      hands work between the event loop and worker threads (the turn, outbox reads and
      writes); with the default, each hand-off could wait up to 5 ms for a busy loop. In the
      Telegram benchmark this halved the p99 reply latency at 100 updates/s.

    Process-wide, so only ``serve`` (and the benchmarks that stand in for it) call it.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
        sys.setswitchinterval(_SWITCH_INTERVAL_S)


def stop_on_signals(stop: asyncio.Event | None = None) -> asyncio.Event:
    """``stop`` (or a new event), set on SIGINT or SIGTERM: a server's way to end cleanly.

    Call it from the running event loop; where signals cannot be handled (not the main
    thread) only ``stop`` ends the server.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return stop


async def run_until_stopped(
    work: Coroutine[Any, Any, None], stop: asyncio.Event, *, grace: float = SHUTDOWN_GRACE
) -> None:
    """Run ``work`` until it returns; once ``stop`` is set, give it ``grace`` seconds more.

    ``work`` is expected to notice ``stop`` itself and return; one stuck in a call (a turn
    waiting for a database lock, a slow platform) is cancelled instead, so that a stop
    signal ends the process within seconds whatever it was doing.
    """
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    await finish_within(task, grace)


async def finish_within(task: asyncio.Future[Any], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``task``, then cancel it; its failure is raised."""
    done, _ = await asyncio.wait((task,), timeout=grace)
    if not done:
        log.warning("stopping: cancelled work still under way after %.0f s", grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    task.result()
