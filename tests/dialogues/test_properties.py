"""Property tests: whatever a student sends, the conversation survives and keeps its answers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogues import (
    END,
    Attachment,
    ConversationState,
    ConversationStatus,
    Engine,
    Inbound,
    TurnContext,
    load_flow_file,
)
from dialogues._machine import START

FLOWS_DIR = Path(__file__).parents[2] / "dialogues" / "flows"
ENGINES = {p.stem: Engine(load_flow_file(p)) for p in sorted(FLOWS_DIR.glob("*.yaml"))}
GOALS = [
    {
        "id": 1,
        "title": "Fractions",
        "status": "active",
        "action_steps": ["practice"],
        "last_checkin": None,
    },
    {"id": 2, "title": "Swim 50m", "status": "active", "action_steps": [], "last_checkin": None},
]


def _ctx() -> TurnContext:
    return TurnContext(
        person={"first_name": "Sam", "display_name": "Sam", "timezone": "UTC", "language": "en"},
        today=date(2026, 11, 23),
        load_profile=dict,
        load_plan=lambda: {"goals": GOALS, "active_goals": GOALS},
    )


_words = st.sampled_from(
    [
        "yes",
        "no",
        "3",
        "1, 2",
        "done",
        "tomorrow",
        "next friday",
        "skip",
        "later",
        "Music",
        "2026-12-01",
    ]
)
_commands = st.sampled_from(
    ["/back", "/skip", "/pause", "/restart", "/help", "/stop", "/done", "/nope"]
)
_texts = st.one_of(
    st.text(max_size=60),
    _words,
    _commands,
    st.just(""),
    st.just("x" * 10_000),
    st.text(alphabet="😀🎉👍🏽\u200d\u0301", max_size=20),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True).map(str),
)
_inbound = st.one_of(
    _texts.map(Inbound.of_text),
    st.text(max_size=20).map(Inbound.of_button),
    st.lists(st.text(max_size=10), max_size=4).map(lambda v: Inbound.of_selection(tuple(v))),
    st.sampled_from(["back", "skip", "pause", "help", "bogus"]).map(Inbound.of_command),
    st.builds(
        lambda name: Inbound.of_file(Attachment(kind="document", file_id="F", name=name)),
        st.text(max_size=20),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_id=st.sampled_from(sorted(ENGINES)), inputs=st.lists(_inbound, max_size=40))
def test_any_inputs_leave_a_known_state_and_keep_every_answer(
    flow_id: str, inputs: list[Inbound]
) -> None:
    engine = ENGINES[flow_id]
    known = {START, END, *(n.id for n in engine.flow.iter_steps())}
    result = engine.start(_ctx())
    stored: list[Any] = list(result.answers)
    state_json = json.dumps(result.state.to_json())
    for inbound in inputs:
        state = ConversationState.from_json(json.loads(state_json))
        result = engine.handle(state, inbound, _ctx())
        state_json = json.dumps(result.state.to_json())  # must stay serialisable
        assert result.state.step in known
        assert isinstance(result.state.status, ConversationStatus)
        if result.accepted is not None:
            step_id, _display = result.accepted
            assert [a.step_id for a in result.answers if a.status == "answered"] == [step_id]
        for record in result.answers:
            if record.status == "answered":
                assert record.value is not None
        stored.extend(result.answers)
        assert result.replies or result.state.finished
    assert all(json.dumps(a.value, default=str) for a in stored)
