"""``is_transient``: which failures of a storage call are worth retrying, from real conditions.

A database locked by another process or a connection the server dropped is transient; a
constraint violation is not (it fails the same way every time). Errors keep SQLAlchemy's types,
and a connection the server dropped is not handed out again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dialogues import AnswerRecord, TurnResult
from storage import (
    Database,
    DatabaseUnavailable,
    InvalidValueError,
    PeopleStore,
    PersonRecord,
    UnknownPersonError,
    is_transient,
)
from storage._sql import Sql, statement

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures

INSERT_EVENT = statement("INSERT INTO inbound_event (key, received_at) VALUES (:key, :now)")


@pytest.fixture
def impatient(sqlite_database: Database) -> Iterator[Database]:
    """A second Database on the same file whose connections wait 50 ms for a lock, not 5 s."""
    db = Database(sqlite_database.url.render_as_string(hide_password=False))

    def short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    event.listen(db.engine, "connect", short_busy_timeout)  # after storage's own PRAGMAs
    yield db
    db.dispose()


@pytest.fixture
def locked_elsewhere(sqlite_database: Database) -> Iterator[None]:
    """Another process's connection holding the database's write lock."""
    holder = sqlite3.connect(str(sqlite_database.url.database), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield
    holder.rollback()
    holder.close()


def test_a_write_while_another_connection_holds_the_lock_is_transient(
    impatient: Database, locked_elsewhere: None
) -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        PeopleStore(impatient).add("Ana López", "student")
    assert "database is locked" in str(caught.value)
    assert is_transient(caught.value)


def test_a_hot_statement_that_meets_the_lock_is_transient(
    impatient: Database, locked_elsewhere: None
) -> None:
    # A snapshot read begins at once; writing from it needs the lock the other side holds.
    with pytest.raises(OperationalError) as caught, impatient.read() as conn:
        sql = Sql(conn)
        sql.execute(INSERT_EVENT, {"key": "telegram:1", "now": sql.time(datetime.now(UTC))})
    assert "database is locked" in str(caught.value)
    assert is_transient(caught.value) and not caught.value.connection_invalidated


@pytest.mark.postgres
def test_a_connection_the_server_dropped_is_transient_and_not_pooled_again(
    postgres_database: Database,
) -> None:
    people = PeopleStore(postgres_database)
    student = people.add("Ana López", "student")
    with pytest.raises(OperationalError) as caught, postgres_database.begin() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with postgres_database.engine.connect() as admin:
            assert admin.exec_driver_sql(
                "SELECT pg_terminate_backend(%(pid)s, 5000)", {"pid": backend}
            ).scalar_one()
        sql = Sql(conn)  # the hot path, on the driver's cursor
        sql.execute(INSERT_EVENT, {"key": "telegram:1", "now": sql.time(datetime.now(UTC))})
    # the statement's own error: the dead connection was let go, not rolled back
    assert "INSERT INTO inbound_event" in str(caught.value.statement)
    assert caught.value.connection_invalidated
    assert is_transient(caught.value)
    with postgres_database.begin() as conn:  # a new connection, not the dead one
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != backend
    assert people.get(student.handle).id == student.id


def test_a_unique_violation_is_not_transient(stores: Stores, student: PersonRecord) -> None:
    with pytest.raises(IntegrityError) as caught, stores.conversations.turn(student.id) as turn:
        sql = Sql(turn._sql.conn)
        for _ in range(2):
            sql.execute(INSERT_EVENT, {"key": "telegram:1", "now": sql.time(turn.now)})
    assert not is_transient(caught.value)
    assert not caught.value.connection_invalidated
    with stores.conversations.turn(student.id) as turn:  # rolled back, the connection usable
        assert turn.claim_event("telegram:1")


def test_a_value_the_database_cannot_take_is_not_transient(
    stores: Stores, student: PersonRecord
) -> None:
    record = stores.start(student)
    answer = AnswerRecord("q1", None, "\udc91", "\udc91")  # a lone surrogate: not Unicode
    with pytest.raises(StatementError) as caught, stores.conversations.turn(student.id) as turn:
        turn.save(
            record,
            TurnResult(state=record.state, answers=[answer]),
            platform="console",
            address="a",
        )
    assert "INSERT INTO answer" in str(caught.value)
    assert not is_transient(caught.value)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (DatabaseUnavailable("cannot reach database at sqlite:///x.db: disk I/O error"), True),
        (PoolTimeout("QueuePool limit of size 5 overflow 10 reached"), True),
        (UnknownPersonError("no person with handle 'x'"), False),
        (InvalidValueError("handle taken"), False),
        (ValueError("a bug"), False),
        (UnicodeEncodeError("utf-8", "\udc91", 0, 1, "surrogates not allowed"), False),
    ],
)
def test_only_database_conditions_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_an_error_raised_from_a_transient_one_is_transient() -> None:
    cause = DatabaseUnavailable("cannot reach database")
    try:
        try:
            raise cause
        except DatabaseUnavailable as exc:
            raise RuntimeError("the turn failed") from exc
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    try:
        try:
            raise cause
        except DatabaseUnavailable:
            raise RuntimeError("a bug while handling it") from None
    except RuntimeError as unrelated:
        assert not is_transient(unrelated)
