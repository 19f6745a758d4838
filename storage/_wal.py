"""Checkpointing a SQLite WAL from a background thread, so turns' COMMITs stay short.

By default SQLite checkpoints inside the COMMIT that grows the WAL past 1,000 pages: that
turn copies ~4 MiB into the database file and syncs it (10-15 ms, about one turn in a
hundred). Here a daemon thread copies the WAL into the database with PASSIVE checkpoints on
its own connection, while writers carry on: every ``WRITING_INTERVAL_S`` while the WAL
grows, every ``INTERVAL_S`` while nothing is written.

A PASSIVE checkpoint cannot rewind the WAL; only a writer that starts while the WAL is fully
copied does, and under steady writes that moment may never come. So SQLite's auto-checkpoint
stays on, at ``AUTOCHECKPOINT_PAGES``: about once per that many pages a COMMIT checkpoints,
finds all but the last few milliseconds' pages already copied (1-3 ms instead of 10-15), and
the next writer rewinds the WAL. That also bounds the WAL when the thread is not running (it
died, or never started): SQLite then checkpoints inside commits as it always does.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["AUTOCHECKPOINT_PAGES", "INTERVAL_S", "WRITING_INTERVAL_S", "Checkpointer"]

log = logging.getLogger("profilebot.storage")

AUTOCHECKPOINT_PAGES = 4000  # ~16 MiB of 4 KiB pages: the WAL's bound, in steady use
INTERVAL_S = 0.1  # while nothing is written (a pass then costs ~10 µs)
WRITING_INTERVAL_S = 0.005  # while the WAL grows (at full speed, ~15 pages/ms)
_JOIN_TIMEOUT_S = 5.0


class Checkpointer:
    """One daemon thread per database file, started on first use, stopped by ``stop()``.

    ``connect`` opens a new sqlite3 connection to the file (with the engine's arguments).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str) -> None:
        self._connect = connect
        self._name = name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the thread unless it is running (idempotent and cheap; from any thread)."""
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name=self._name, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection; waits for a checkpoint in progress."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    def _run(self, stop: threading.Event) -> None:
        try:
            con = self._connect()
            try:
                wait, last, failing = INTERVAL_S, -1, False
                while not stop.wait(wait):
                    try:
                        pages = checkpoint(con)
                    except sqlite3.OperationalError:  # e.g. I/O trouble: try again, log once
                        if not failing:
                            log.warning("WAL checkpoint failed; retrying", exc_info=True)
                        wait, failing = INTERVAL_S, True
                        continue
                    # While writes come in, keep up: the COMMIT that rewinds the WAL then
                    # finds only the last few milliseconds' pages left to copy.
                    wait = WRITING_INTERVAL_S if pages != last else INTERVAL_S
                    last, failing = pages, False
            finally:
                con.close()
        except Exception:
            log.exception(
                "WAL checkpointer stopped: commits checkpoint every %d pages again",
                AUTOCHECKPOINT_PAGES,
            )


def checkpoint(con: sqlite3.Connection) -> int:
    """Copy what the WAL holds into the database file; returns the WAL's length in pages."""
    _busy, pages, _copied = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(pages)
