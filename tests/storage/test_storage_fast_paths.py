"""The delivery and lookup fast paths: read-only transactions, ``mark_sent_many``, the raw
question lookup, and SQLite's in-process writer queue (claims: test_storage_claims.py)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from dialogues import Reply
from storage import Database, OutboxRecord, PersonRecord, UnknownRecordError
from storage._outbox import latest_question
from storage._sql import Sql

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures

_EVENT = "INSERT INTO inbound_event (key, received_at) VALUES (:k, '2026-01-01 00:00:00')"


def test_by_identity_is_the_linked_person_with_roles(stores: Stores, student: PersonRecord) -> None:
    assert stores.people.by_identity("telegram", None, "42") is None
    stores.people.link_identity(student.id, "telegram", None, "42", "42")
    assert stores.people.by_identity("telegram", None, "42") == student
    assert stores.people.by_identity("telegram", "other-workspace", "42") is None
    assert stores.people.by_identity("slack", None, "42") is None


def test_mark_sent_many_marks_all_or_none(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    one, two = stores.turn(student, replies=[Reply("one"), Reply("two")])
    with pytest.raises(UnknownRecordError):
        stores.outbox.mark_sent_many([(one, "m-1"), (999_999, "m-x")])
    assert {m.status for m in stores.outbox.for_person(student.id)} == {"pending"}
    stores.outbox.mark_sent_many([(one, "m-1"), (two, None)])
    by_id = {m.id: m for m in stores.outbox.for_person(student.id)}
    assert (by_id[one].status, by_id[one].attempts, by_id[one].platform_message_id) == (
        "sent",
        1,
        "m-1",
    )
    assert by_id[two].status == "sent" and by_id[two].platform_message_id is None
    assert by_id[one].sent_at is not None and by_id[one].sent_at.tzinfo is not None


def test_latest_question_reads_the_record_as_core_does(
    stores: Stores, student: PersonRecord
) -> None:
    conversation = stores.start(student)
    question = Reply("Which?", step_id="q1")
    _, asked, _ = stores.turn(student, replies=[Reply("hi"), question, Reply("note")])
    stores.outbox.mark_sent(asked, "m-7")
    with stores.db.read() as conn:
        found = latest_question(Sql(conn), conversation.id)
    assert isinstance(found, OutboxRecord)
    assert found == stores.outbox.get(asked)
    assert found.reply.step_id == "q1"
    assert found.not_before.tzinfo is not None and found.sent_at is not None


def test_read_works_on_both_backends(database: Database) -> None:
    with database.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM person")).scalar() == 0


# --- SQLite: readers do not queue behind writers, writers queue in the process -------------


def _file_database(sqlite_database: Database) -> Database:
    assert sqlite_database.url.database not in (None, "", ":memory:")
    return sqlite_database


def test_a_read_does_not_wait_for_a_writer(sqlite_database: Database) -> None:
    db = _file_database(sqlite_database)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.begin() as conn:
            conn.execute(text(_EVENT), {"k": "k"})
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.perf_counter()
        with db.read() as conn:  # the writer holds the write lock: a snapshot without it
            seen = conn.execute(text("SELECT count(*) FROM inbound_event")).scalar()
        assert time.perf_counter() - started < 1.0
        assert seen == 0
    finally:
        release.set()
        thread.join(10)
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbound_event")).scalar() == 1


def test_writers_of_one_process_take_turns_without_busy_errors(sqlite_database: Database) -> None:
    db = _file_database(sqlite_database)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(50):
                with db.begin() as conn:
                    count = conn.execute(text("SELECT count(*) FROM inbound_event")).scalar()
                    conn.execute(text(_EVENT), {"k": f"{worker}-{i}-{count}"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM inbound_event")).scalar() == 300


def test_in_memory_database_reads_and_writes() -> None:
    db = Database("sqlite://")
    try:
        db.upgrade()
        with db.begin() as conn:
            conn.execute(text(_EVENT), {"k": "k"})
        with db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM inbound_event")).scalar() == 1
    finally:
        db.dispose()
