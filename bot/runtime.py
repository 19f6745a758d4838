"""Process settings for a long-running bot server (``profilebot run``), applied once."""

from __future__ import annotations

import gc
import sys
from typing import Final

__all__ = ["tune_for_serving"]

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
