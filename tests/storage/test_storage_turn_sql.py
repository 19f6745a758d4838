"""The turn's hot path (plain SQL on the driver's cursor) keeps Core's behaviour, on both backends.

Few statements per turn (counted at the driver); values stored exactly as Core's column
types store them; SQLAlchemy's exception types, and a lost connection is not pooled again; what
a turn read earlier is never served after the turn changed it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from dialogues import (
    AddActionSteps,
    AnswerRecord,
    ConversationState,
    ConversationStatus,
    NewGoal,
    Reply,
    SetGoal,
    SetProfile,
    TurnResult,
)
from storage import ConversationRecord, PersonRecord
from storage._sql import statement
from storage._tables import UtcDateTime, answer, outbox

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures

    from dialogues import Flow


def test_a_turn_takes_few_statements(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    with stores.statements() as statements, stores.conversations.turn(student.id) as turn:
        assert turn.claim_event("telegram:1")
        record = turn.open_conversation()
        assert record is not None
        result = TurnResult(
            state=record.state,
            answers=[AnswerRecord("q1", None, "Ani", "Ani")],
            effects=[SetProfile(("nickname",), "Ani", False, False, "q1#None")],
            replies=[Reply("one"), Reply("two")],
        )
        turn.save(record, result, platform="console", address="a")
    seen = [" ".join(sql.split()[:3]) for sql in statements]
    if stores.db.dialect == "sqlite":  # the write lock first, and the COMMIT SQLite traces
        assert seen[0] == "BEGIN IMMEDIATE" and seen[-1] == "COMMIT", seen
        seen = seen[1:-1]
    # SQLite: the person with their open conversation; PostgreSQL: lock the person, then read
    # the conversation.
    assert len(seen) == (6 if stores.db.dialect == "sqlite" else 7), seen
    assert seen[-4:] == [
        "INSERT INTO answer",
        "INSERT INTO profile_fact",
        "UPDATE conversation SET",
        "INSERT INTO outbox",
    ]


def test_times_are_stored_as_core_stores_them(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    with stores.conversations.turn(student.id) as turn:
        sql = turn._sql
        for value in (
            datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),  # no microseconds: still written
            datetime(2026, 3, 1, 12, 0, 0, 5),  # naive: taken as UTC
            datetime.now(UTC),
        ):
            expected = UtcDateTime().process_bind_param(value, turn._sql.conn.dialect)
            if turn._sql.conn.dialect.name == "sqlite":
                process = sqlite.DATETIME().bind_processor(sqlite.dialect())
                assert process is not None
                expected = process(expected)
            assert sql.time(value) == expected
        now = turn.now
        record = turn.open_conversation()
        assert record is not None
        answers = [AnswerRecord("q1", None, 1, "1")]
        result = TurnResult(state=record.state, answers=answers, replies=[Reply("hi")])
        [message_id] = turn.save(record, result, platform="console", address="a")
    message = stores.outbox.get(message_id)
    assert message.created_at == message.not_before == now
    with stores.db.begin() as conn:
        created = conn.execute(select(answer.c.created_at)).scalar_one()
        due = conn.execute(select(outbox.c.id).where(outbox.c.not_before <= now)).scalars()
        assert created == now and list(due) == [message_id]


def test_database_errors_keep_their_sqlalchemy_types(stores: Stores, student: PersonRecord) -> None:
    real = stores.start(student)
    ghost = ConversationRecord(
        id=real.id + 1000,
        person_id=student.id,
        flow_id=real.flow_id,
        flow_version=real.flow_version,
        content_hash=real.content_hash,
        state=real.state,
        version=0,
    )
    answer = AnswerRecord("q1", None, "my secret", "my secret")
    result = TurnResult(state=real.state, answers=[answer])
    with pytest.raises(IntegrityError) as caught, stores.conversations.turn(student.id) as turn:
        turn.save(ghost, result, platform="console", address="a")  # no such conversation
    assert "INSERT INTO answer" in str(caught.value)  # the statement, not what it carried
    assert "my secret" not in str(caught.value)
    with stores.conversations.turn(student.id) as turn:  # rolled back, usable again
        record = turn.open_conversation()
        assert record is not None and record.id == real.id and record.version == 0


def test_a_turn_reads_again_after_it_changed_conversations(
    make_flow: Callable[..., Flow], stores: Stores, student: PersonRecord
) -> None:
    first = stores.start(student, make_flow("this_is_me"))
    with stores.conversations.turn(student.id) as turn:
        opened = turn.open_conversation()
        again = turn.open_conversation()
        assert opened is not None and again is not None and opened.id == again.id == first.id
        opened.state.answers["mutated"] = True  # each call hands out its own state
        assert "mutated" not in again.state.answers
        assert turn.open_conversation("other_flow") is None

        started = turn.start_conversation(make_flow("weekly_checkin"), ConversationState("q1"))
        latest = turn.open_conversation()
        assert latest is not None and latest.id == started.id
        by_flow = turn.open_conversation("this_is_me")
        assert by_flow is not None and by_flow.id == first.id

        turn.end_conversation(latest, ConversationStatus.COMPLETED)
        latest = turn.open_conversation()
        assert latest is not None and latest.id == first.id
        turn.save(latest, TurnResult(state=latest.state), platform="console", address="a")
        assert turn.open_conversation("weekly_checkin") is None
        current = turn.open_conversation()
        assert current is not None and current.version == 1


def test_many_rows_in_one_turn_keep_their_order(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    key = NewGoal("goal_title#0")
    steps = tuple(f"step {i}" for i in range(250))  # more than one multi-row INSERT
    replies = [Reply(f"reply {i}") for i in range(150)]
    ids = stores.turn(
        student,
        SetGoal(key, "title", "Many", "goal_title#0"),
        AddActionSteps(key, steps, "steps#0"),
        replies=replies,
    )
    assert ids == sorted(ids) and len(set(ids)) == 150
    assert [m.reply for m in stores.outbox.for_person(student.id)] == replies
    assert stores.plan.plan(student.id)["goals"][0]["action_steps"] == list(steps)


def test_statement_placeholders_per_driver() -> None:
    stmt = statement("SELECT a FROM t WHERE b = :b AND c = :c_2 AND d = 'x'")
    assert stmt.sqlite == "SELECT a FROM t WHERE b = :b AND c = :c_2 AND d = 'x'"
    assert stmt.postgresql == "SELECT a FROM t WHERE b = %(b)s AND c = %(c_2)s AND d = 'x'"
    assert statement("SELECT 1", postgresql="SELECT :x").postgresql == "SELECT %(x)s"
    with pytest.raises(ValueError, match="literal %"):
        statement("SELECT a FROM t WHERE b LIKE 'x%'")
