"""Process settings for a long-running bot server (``profilebot run``), applied once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from typing import Final

__all__ = ["stop_on_signals", "tune_for_serving"]

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
