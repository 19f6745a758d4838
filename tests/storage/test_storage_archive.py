"""A long conversation's older answers and `/back` history live in rows (its archive), on
both backends: a turn reads only what it uses, and nothing is lost or left behind."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from dialogues import RECENT_MAX, ConversationState, Frame, TurnResult
from storage import ConflictError, PersonRecord
from storage._tables import conversation, conversation_answer, conversation_frame

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures


def _long_state(questions: int) -> ConversationState:
    return ConversationState(
        step=f"q{questions}",
        answers={f"q{i}": f"answer {i}" for i in range(questions)},
        history=[Frame(f"q{i}", None, None) for i in range(questions + 1)],
    )


def _save(stores: Stores, student: PersonRecord, state: ConversationState | None = None) -> None:
    """One turn that saves ``state`` (default: the stored state as read)."""
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        turn.save(record, TurnResult(state=state or record.state), platform="console", address="a")


def _stored_state(stores: Stores) -> dict[str, object]:
    with stores.db.begin() as conn:
        state = json.loads(conn.execute(select(conversation.c.state)).scalar_one())
    assert isinstance(state, dict)
    return state


def _rows(stores: Stores) -> tuple[int, int]:
    with stores.db.begin() as conn:
        answers = conn.execute(select(func.count()).select_from(conversation_answer)).scalar()
        frames = conn.execute(select(func.count()).select_from(conversation_frame)).scalar()
    return int(answers or 0), int(frames or 0)


def test_a_state_saved_before_archives_existed_reads_whole_then_archives(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    whole = _long_state(40).to_json()  # what the code before archives stored
    with stores.db.begin() as conn:
        conn.execute(conversation.update().values(state=json.dumps(whole)))

    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None and record.state.to_json() == whole
        record.state.history.pop()  # /back: to q39, and its answer is taken back
        del record.state.answers["q39"]
        record.state.step = "q39"
        turn.save(record, TurnResult(state=record.state), platform="console", address="a")

    stored = _stored_state(stores)
    assert len(stored["answers"]) <= RECENT_MAX  # type: ignore[arg-type]
    assert len(stored["history"]) <= RECENT_MAX  # type: ignore[arg-type]
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        assert dict(record.state.answers) == {f"q{i}": f"answer {i}" for i in range(39)}
        assert [f.step_id for f in record.state.history] == [f"q{i}" for i in range(40)]


def test_back_through_the_archive_then_forward_again(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    _save(stores, student, _long_state(60))
    for _ in range(50):  # /back, one turn each, into the archived frames
        with stores.conversations.turn(student.id) as turn:
            record = turn.open_conversation()
            assert record is not None
            state = record.state
            state.history.pop()
            state.step = state.history.top.step_id
            turn.save(record, TurnResult(state=state), platform="console", address="a")
    for i in range(11, 30):  # forward again: new frames where the dropped ones were
        with stores.conversations.turn(student.id) as turn:
            record = turn.open_conversation()
            assert record is not None
            state = record.state
            state.answers[f"q{i - 1}"] = "again"
            state.history.push(Frame(f"q{i}", None, None))
            state.step = f"q{i}"
            turn.save(record, TurnResult(state=state), platform="console", address="a")
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        assert [f.step_id for f in record.state.history] == [f"q{i}" for i in range(30)]
        answers = record.state.answers
        assert answers["q0"] == "answer 0" and answers["q28"] == "again"
        assert answers["q59"] == "answer 59"  # left behind by /back: taken back only by the engine
    assert _rows(stores)[1] == 30 - len(_stored_state(stores)["history"])  # type: ignore[arg-type]


def test_restart_and_a_state_saved_whole_leave_no_archived_rows(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    _save(stores, student, _long_state(40))
    assert _rows(stores) != (0, 0)
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        record.state.answers.clear()  # what /restart does
        record.state.history.clear()
        turn.save(record, TurnResult(state=record.state), platform="console", address="a")
    assert _rows(stores) == (0, 0)

    _save(stores, student, _long_state(40))
    _save(stores, student, ConversationState(step="q1", answers={"q0": "only"}))
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None and dict(record.state.answers) == {"q0": "only"}
        assert list(record.state.history) == []
    assert _rows(stores) == (0, 0)


def test_an_archived_answer_changed_in_place_is_saved(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    state = _long_state(40)
    state.answers["q0"] = ["art"]
    _save(stores, student, state)
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        record.state.answers["q0"].append("music")
        turn.save(record, TurnResult(state=record.state), platform="console", address="a")
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None and record.state.answers["q0"] == ["art", "music"]


def test_the_archive_is_read_only_inside_the_turn(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    _save(stores, student, _long_state(40))
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
    with pytest.raises(ConflictError, match="inside the turn"):
        record.state.answers.get("q0")
