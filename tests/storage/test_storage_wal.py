"""SQLite's WAL is checkpointed by a background thread, and stays bounded whatever it does.

The thread belongs to the Database: started by its first connection, stopped by dispose().
SQLite's own auto-checkpoint stays on at a higher threshold, so a burst of turns cannot grow
the WAL without bound, with the thread or without it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dialogues import AnswerRecord, ConversationState, Flow, Reply, TurnResult
from storage import ConversationStore, Database, PeopleStore, _wal

PAGE = 4096
BOUND_PAGES = 100


def _threads(db: Database) -> list[threading.Thread]:
    name = f"wal-checkpoint {db.url.database}"
    return [t for t in threading.enumerate() if t.name == name]


def _burst(db: Database, flow: Flow, turns: int) -> int:
    """Turns with an answer and two ~1 KiB replies each; the largest WAL seen, in bytes."""
    person = PeopleStore(db).add("Burst Student", "student")
    store = ConversationStore(db)
    with store.turn(person.id) as turn:
        turn.start_conversation(flow, ConversationState(step="q1"))
    wal = Path(f"{db.url.database}-wal")
    largest = 0
    for i in range(turns):
        with store.turn(person.id) as turn:
            record = turn.open_conversation()
            assert record is not None
            result = TurnResult(
                state=record.state,
                answers=[AnswerRecord("q1", None, f"answer {i} " * 20, "raw")],
                replies=[Reply(f"reply {i} " * 100), Reply("x" * 1000)],
            )
            turn.save(record, result, platform="console", address="a")
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    return largest


def test_file_database_checkpoints_from_its_own_thread(sqlite_database: Database) -> None:
    db = sqlite_database
    assert _threads(db) == []  # constructing a Database starts nothing
    db.check()
    [thread] = _threads(db)
    assert thread.daemon  # never holds up the interpreter's exit
    with db.begin() as conn:
        setting = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert setting == _wal.AUTOCHECKPOINT_PAGES > 1000  # SQLite's default is 1000

    db.dispose()
    assert not thread.is_alive() and _threads(db) == []
    db.check()  # used again: started again
    assert len(_threads(db)) == 1
    db.dispose()
    assert _threads(db) == []


def test_in_memory_database_has_no_checkpointer() -> None:
    before = threading.active_count()
    db = Database("sqlite://")
    db.upgrade()
    assert db._checkpointer is None and threading.active_count() == before
    db.dispose()


def test_dispose_does_not_wait_for_the_next_checkpoint(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_wal, "INTERVAL_S", 60.0)
    sqlite_database.check()
    started = time.perf_counter()
    sqlite_database.dispose()
    assert time.perf_counter() - started < 1.0
    assert _threads(sqlite_database) == []


def test_the_thread_copies_the_wal_into_the_database(
    sqlite_database: Database, make_flow: Callable[[], Flow], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_wal, "AUTOCHECKPOINT_PAGES", 1_000_000)  # commits never checkpoint
    monkeypatch.setattr(_wal, "INTERVAL_S", 0.01)
    path = Path(str(sqlite_database.url.database))
    before = path.stat().st_size
    _burst(sqlite_database, make_flow(), 100)
    deadline = time.monotonic() + 5
    while path.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_size > before  # only a checkpoint writes the database file


@pytest.mark.parametrize("thread", ["running", "dead"])
def test_wal_stays_bounded_under_a_burst_of_turns(
    sqlite_database: Database,
    make_flow: Callable[[], Flow],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    thread: str,
) -> None:
    monkeypatch.setattr(_wal, "AUTOCHECKPOINT_PAGES", BOUND_PAGES)
    monkeypatch.setattr(_wal, "INTERVAL_S", 0.005)
    if thread == "dead":

        def fail() -> sqlite3.Connection:
            raise sqlite3.OperationalError("checkpointer cannot connect")

        assert sqlite_database._checkpointer is not None
        monkeypatch.setattr(sqlite_database._checkpointer, "_connect", fail)
    largest = _burst(sqlite_database, make_flow(), 400)  # ~8 pages a turn: ~3,200 pages unchecked
    # Bounded, with room for a loaded machine delaying a checkpoint (one full run saw > 3x);
    # without checkpoints the WAL would reach ~3,200 pages.
    assert largest <= 10 * BOUND_PAGES * PAGE, f"WAL grew to {largest // PAGE} pages"
    if thread == "dead":
        assert _threads(sqlite_database) == []
        assert "WAL checkpointer stopped" in caplog.text
    else:
        assert len(_threads(sqlite_database)) == 1


def test_a_short_lived_process_exits_promptly(sqlite_database: Database) -> None:
    """A CLI command: connect, write, exit without dispose(); exit waits for no cycle."""
    sqlite_database.dispose()
    script = (
        "import sys, time\n"
        "from storage import Database, PeopleStore, _wal\n"
        "_wal.INTERVAL_S = 60.0\n"
        "PeopleStore(Database(sys.argv[1])).add('Quick Exit', 'student')\n"
        "print(time.time())\n"
    )
    url = sqlite_database.url.render_as_string(hide_password=False)
    run = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60, check=False
    )
    exited = time.time()
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert exited - float(run.stdout) < 5.0
    assert PeopleStore(sqlite_database).get("quick-exit").display_name == "Quick Exit"


def test_a_failed_checkpoint_is_logged_once_and_retried(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_wal, "INTERVAL_S", 0.005)
    calls: list[int] = []
    real = _wal.checkpoint

    def flaky(con: sqlite3.Connection) -> int:
        calls.append(1)
        if len(calls) <= 3:
            raise sqlite3.OperationalError("disk I/O error")
        return real(con)

    monkeypatch.setattr(_wal, "checkpoint", flaky)
    sqlite_database.check()
    deadline = time.monotonic() + 5
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) >= 5 and len(_threads(sqlite_database)) == 1
    assert caplog.text.count("WAL checkpoint failed") == 1
