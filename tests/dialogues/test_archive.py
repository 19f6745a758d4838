"""Long conversations: a state keeps its recent answers and `/back` history itself and the
rest in an archive, and a conversation behaves exactly as if it held everything."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogues import RECENT_MAX, ConversationState, Frame, Inbound, StateChanges
from dialogues._engine import Engine, TurnContext
from dialogues._loader import load_flow_file, load_flow_text

FLOWS_DIR = Path(__file__).parents[2] / "dialogues" / "flows"
GOALS = [
    {"id": 1, "title": "Fractions", "status": "active", "action_steps": [], "last_checkin": None},
    {"id": 2, "title": "Swim 50m", "status": "active", "action_steps": [], "last_checkin": None},
]


def long_flow(steps: int) -> str:
    """Questions of every common kind; some read earlier answers in `ask` and `when`."""
    lines = ["id: long", "version: 1", "title: Long", "outro: 'Bye {{ answers.q0 }}!'", "steps:"]
    for i in range(steps):
        lines.append(f"  - id: q{i}")
        kind = i % 4
        if kind == 0:
            lines += [f"    ask: 'Question {i}, in your words?'", "    type: text"]
        elif kind == 1:
            lines += [f"    ask: 'Question {i}: pick one'", "    type: choice"]
            lines += ["    options: [red, green, blue]", "    optional: true"]
        elif kind == 2:
            lines += [f"    ask: 'Question {i}: you said {{{{ answers.q{i - 2} }}}}. How much?'"]
            lines += ["    type: scale", "    min: 1", "    max: 5"]
        else:
            lines += [f"    ask: 'Question {i}?'", "    type: yes_no"]
            lines += [f"    when: \"answers.q{i - 2} is not defined or answers.q{i - 2} != 'red'\""]
        lines.append(f"    save: profile.f{i}")
    return "\n".join(lines) + "\n"


class MemoryArchive:
    """What storage does with a state's changes, in dicts; counts what it is asked."""

    def __init__(self) -> None:
        self.answer_rows: dict[str, Any] = {}
        self.frame_rows: dict[int, Frame] = {}
        self.reads = 0

    def answer(self, step_id: str) -> Any:
        self.reads += 1
        return json.loads(json.dumps(self.answer_rows[step_id]))

    def answers(self) -> dict[str, Any]:
        self.reads += 1
        return json.loads(json.dumps(self.answer_rows))

    def frames(self, start: int, stop: int) -> list[Frame]:
        self.reads += 1
        return [self.frame_rows[p] for p in range(start, stop)]

    def write(self, changes: StateChanges) -> None:
        if changes.drop_answers:
            self.answer_rows.clear()
        for step_id in changes.removed:
            self.answer_rows.pop(step_id, None)
        self.answer_rows.update(json.loads(json.dumps(changes.archive_answers)))
        if changes.drop_frames_from is not None:
            for position in [p for p in self.frame_rows if p >= changes.drop_frames_from]:
                del self.frame_rows[position]
        for offset, frame in enumerate(changes.archive_frames):
            position = changes.first_frame + offset
            assert position not in self.frame_rows, "a row at that position already"  # the key
            self.frame_rows[position] = frame


def _ctx() -> TurnContext:
    return TurnContext(
        person={"first_name": "Sam", "display_name": "Sam", "timezone": "UTC", "language": "en"},
        today=date(2026, 11, 23),
        load_profile=dict,
        load_plan=lambda: {"goals": GOALS, "active_goals": GOALS},
    )


class Twins:
    """One conversation run twice: holding everything in its JSON, and archived."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.archive = MemoryArchive()
        started = engine.start(_ctx())
        self.whole = json.dumps(started.state.to_json())
        self.head = self._save(started.state)
        self.max_head_answers = self.max_head_frames = 0

    def _save(self, state: ConversationState) -> str:
        changes = state.changes()
        self.archive.write(changes)
        state.mark_saved(changes)
        return json.dumps(changes.head)

    def send(self, inbound: Inbound) -> list[str]:
        whole = self.engine.handle(
            ConversationState.from_json(json.loads(self.whole)), inbound, _ctx()
        )
        archived_state = ConversationState.from_json(json.loads(self.head), archive=self.archive)
        archived = self.engine.handle(archived_state, inbound, _ctx())
        assert [r.to_json() for r in archived.replies] == [r.to_json() for r in whole.replies]
        assert archived.effects == whole.effects and archived.answers == whole.answers
        self.whole = json.dumps(whole.state.to_json())
        self.head = self._save(archived.state)
        head = json.loads(self.head)
        self.max_head_answers = max(self.max_head_answers, len(head["answers"]))
        self.max_head_frames = max(self.max_head_frames, len(head["history"]))
        return [r.text for r in whole.replies]

    def archived_state(self) -> ConversationState:
        return ConversationState.from_json(json.loads(self.head), archive=self.archive)


LONG = Engine(load_flow_text(long_flow(60), filename="long.yaml"))
ANSWERS = {0: "my words", 1: "2", 2: "3", 3: "yes"}


def test_back_walks_through_archived_questions_to_the_first_one() -> None:
    twins = Twins(LONG)
    for i in range(40):
        twins.send(Inbound.of_text(f"answer {i}" if i % 4 == 0 else ANSWERS[i % 4]))
    assert twins.archive.frame_rows and twins.archive.answer_rows  # the oldest were archived
    assert twins.max_head_answers <= RECENT_MAX and twins.max_head_frames <= RECENT_MAX
    shown = [twins.send(Inbound.of_text("/back"))[0] for _ in range(41)]  # q39 ... q0, then
    assert (
        shown[3] == "Let's change that. Your answer was: answer 36\n\nQuestion 36, in your words?"
    )
    assert shown[39].startswith("Let's change that. Your answer was: answer 0\n\nQuestion 0,")
    assert shown[40].startswith("This is the first question")
    assert twins.send(Inbound.of_text("Ana")) == ["Question 1: pick one"]
    assert twins.archived_state().answers["q0"] == "Ana"


def test_templates_and_conditions_read_archived_answers() -> None:
    twins = Twins(LONG)
    for i in range(38):
        twins.send(Inbound.of_text(f"answer {i}" if i % 4 == 0 else ANSWERS[i % 4]))
    twins.send(Inbound.of_text("1"))  # q38... is a scale: "you said answer 36"
    reads_before = twins.archive.reads
    for i in range(39, 60):
        twins.send(Inbound.of_text(f"answer {i}" if i % 4 == 0 else ANSWERS[i % 4]))
    assert twins.archived_state().finished
    # the outro reads q0, archived long ago: one read for it, not one per archived answer
    assert twins.archive.reads - reads_before <= 2


def test_restart_drops_the_archive_with_the_rest() -> None:
    twins = Twins(LONG)
    for i in range(30):
        twins.send(Inbound.of_text(f"answer {i}" if i % 4 == 0 else ANSWERS[i % 4]))
    assert twins.send(Inbound.of_text("/restart"))[0] == "Starting over from the beginning."
    assert twins.archive.answer_rows == {} and twins.archive.frame_rows == {}
    assert "first question" in twins.send(Inbound.of_text("/back"))[0]


def test_an_archived_answer_changed_in_place_is_saved() -> None:
    archive = MemoryArchive()
    state = ConversationState(step="q1", answers={f"a{i}": [i] for i in range(RECENT_MAX + 1)})
    changes = state.changes()
    archive.write(changes)
    assert "a0" in archive.answer_rows  # the oldest went to the archive
    loaded = ConversationState.from_json(changes.head, archive=archive)
    loaded.answers["a0"].append("more")
    again = loaded.changes()
    archive.write(again)
    reloaded = ConversationState.from_json(again.head, archive=archive)
    assert reloaded.answers["a0"] == [0, "more"]


def test_a_state_without_its_archive_is_refused() -> None:
    state = ConversationState(step="q1", history=[Frame(f"q{i}", None, None) for i in range(40)])
    with pytest.raises(ValueError, match="archive"):
        ConversationState.from_json(state.changes().head)


FITTING = "<an answer that fits>"
# Runs of fitting answers and of /back (deep into the archive), each followed by another input.
_long_inputs = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.integers(0, 25),
        st.sampled_from(["/skip", "/help", "/restart", "/pause", "/stop", "", "9", "/back"]),
    ),
    min_size=1,
    max_size=8,
).map(lambda runs: [x for f, b, other in runs for x in [FITTING] * f + ["/back"] * b + [other]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=_long_inputs)
def test_a_long_conversation_archived_behaves_as_one_held_whole(inputs: list[str]) -> None:
    twins = Twins(LONG)
    for text in inputs:
        if text == FITTING:
            step = twins.archived_state().step
            text = ANSWERS[int(step[1:]) % 4] if step.startswith("q") else "hello"
        twins.send(Inbound.of_text(text))
    assert twins.archived_state().to_json() == json.loads(twins.whole)
    assert twins.max_head_answers <= RECENT_MAX and twins.max_head_frames <= RECENT_MAX


BUILT_IN = {p.stem: Engine(load_flow_file(p)) for p in sorted(FLOWS_DIR.glob("*.yaml"))}
_built_in_inputs = st.lists(
    st.sampled_from(
        [
            *("Sam", "1", "2", "3", "1, 2", "yes", "no", "done", "next friday", "Read more"),
            *("/back", "/back", "/skip", "/restart", "skip", "Music"),
        ]
    ),
    min_size=30,
    max_size=120,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_id=st.sampled_from(sorted(BUILT_IN)), inputs=_built_in_inputs)
def test_built_in_flows_archived_behave_as_held_whole(flow_id: str, inputs: list[str]) -> None:
    twins = Twins(BUILT_IN[flow_id])
    for text in inputs:
        twins.send(Inbound.of_text(text))
    assert twins.archived_state().to_json() == json.loads(twins.whole)
