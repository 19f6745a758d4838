"""`sensitive: ppra`: refused when mistyped, and asked only while consent is on record, the
decision taken each time the step comes up (state round-tripped through JSON every turn)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from dialogues import (
    BUILTIN_FLOWS_DIR,
    ConversationState,
    ConversationStatus,
    FlowLoadError,
    Inbound,
    SetProfile,
    Step,
    TurnContext,
    Withdraw,
    load_flow_file,
    load_flow_text,
)
from dialogues._engine import Engine

FLOW = """\
id: family
version: 1
title: Family
outro: "Bye. {{ answers.home | default('(no home answer)', true) }}"
steps:
  - id: name
    ask: Your name?
    type: text
    save: profile.preferred_name
  - id: home
    ask: What languages do you speak at home?
    type: text
    optional: true
    sensitive: ppra
    save: profile.identity.home_languages
  - id: echo
    type: message
    when: "answers.home"
    say: "Thanks for telling me about {{ answers.home }}."
  - id: colour
    ask: "Favourite colour? {{ answers.home | default('', true) }}"
    type: text
    save: profile.colour
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(FlowLoadError) as caught:
        load_flow_text(text, filename="t.yaml")
    return [str(p) for p in caught.value.problems]


# --------------------------------------------------------------------------- the loader


def test_sensitive_ppra_loads_on_questions_and_messages() -> None:
    flow = load_flow_text(FLOW.replace('when: "answers.home"', "sensitive: ppra"))
    steps = {s.id: s for s in flow.iter_steps() if isinstance(s, Step)}
    assert {i: s.sensitive for i, s in steps.items()} == {
        "name": None,
        "home": "ppra",
        "echo": "ppra",
        "colour": None,
    }


@pytest.mark.parametrize("value", ["yes", "true", "PPRA", "ferpa", "1", "''", "[ppra]"])
def test_a_bad_sensitive_value_is_one_clear_problem_on_its_line(value: str) -> None:
    problems = _problems(FLOW.replace("sensitive: ppra", f"sensitive: {value}"))
    assert len(problems) == 1, problems
    assert problems[0].startswith("t.yaml:14: step 'home': sensitive: ")
    assert "is not a kind of sensitive question; write sensitive: ppra" in problems[0]


def test_yes_is_shown_as_typed_not_as_true() -> None:
    (problem,) = _problems(FLOW.replace("sensitive: ppra", "sensitive: yes"))
    assert "sensitive: 'yes' is not" in problem


def test_sensitive_on_a_loop_belongs_on_its_steps() -> None:
    text = """\
id: loop
version: 1
title: Loop
steps:
  - id: goals
    for_each: plan.active_goals
    sensitive: ppra
    steps:
      - id: progress
        ask: How is it going?
        type: text
"""
    (problem,) = _problems(text)
    assert problem.startswith("t.yaml:7: step 'goals': sensitive: ")
    assert "put it on a step inside the loop" in problem


def test_the_built_in_family_question_is_sensitive() -> None:
    flow = load_flow_file(BUILTIN_FLOWS_DIR / "this_is_me.yaml")
    sensitive = [s.id for s in flow.iter_steps() if isinstance(s, Step) and s.sensitive]
    assert sensitive == ["family_culture"]


# --------------------------------------------------------------------------- the engine


class Chat:
    """A conversation whose consent the test switches, as a parent would between turns."""

    def __init__(self, source: str = FLOW, *, consent: bool = False) -> None:
        self.engine = Engine(load_flow_text(source, filename="t.yaml"))
        self.consent = consent
        self.consent_asked = 0
        self.effects: list[Any] = []
        self.replies = self._keep(self.engine.start(self.ctx()))

    def ctx(self) -> TurnContext:
        def has_consent() -> bool:
            self.consent_asked += 1
            return self.consent

        return TurnContext(
            person={"first_name": "Sam", "language": "en"},
            today=date(2026, 12, 4),
            load_profile=dict,
            load_plan=dict,
            has_consent=has_consent,
        )

    def _keep(self, result: Any) -> list[str]:
        self.json = json.dumps(result.state.to_json())
        self.effects.extend(result.effects)
        self.last = result
        return [r.text for r in result.replies]

    @property
    def state(self) -> ConversationState:
        return ConversationState.from_json(json.loads(self.json))

    def send(self, text: str) -> list[str]:
        return self._keep(self.engine.handle(self.state, Inbound.of_text(text), self.ctx()))

    def resume(self) -> list[str]:
        return self._keep(self.engine.resume(self.state, self.ctx()))

    def saved(self) -> dict[str, Any]:
        return {".".join(e.path): e.value for e in self.effects if isinstance(e, SetProfile)}


def test_without_consent_the_step_is_skipped_silently() -> None:
    chat = Chat()
    replies = chat.send("Sam")
    assert replies == ["Favourite colour? "]  # no question, no notice, no "thanks" message
    assert chat.state.step == "colour"
    assert chat.send("green") == ["Bye. (no home answer)"]
    assert chat.state.status is ConversationStatus.COMPLETED
    assert chat.saved() == {"preferred_name": "Sam", "colour": "green"}
    assert all(a.step_id != "home" for a in chat.last.answers)


def test_with_consent_the_step_is_asked_and_saved() -> None:
    chat = Chat(consent=True)
    assert chat.send("Sam") == ["What languages do you speak at home?"]
    assert chat.send("Portuguese") == [
        "Thanks for telling me about Portuguese.",
        "Favourite colour? Portuguese",
    ]
    assert chat.send("green") == ["Bye. Portuguese"]
    assert chat.saved()["identity.home_languages"] == "Portuguese"


def test_consent_is_asked_only_when_a_sensitive_step_comes_up() -> None:
    chat = Chat(FLOW.replace("    sensitive: ppra\n", ""))
    for text in ["Sam", "Portuguese", "green"]:
        chat.send(text)
    assert chat.consent_asked == 0
    chat = Chat()
    assert chat.consent_asked == 0  # the first question is not sensitive
    chat.send("Sam")
    assert chat.consent_asked == 1


PET_FIRST = FLOW.replace(
    "  - id: home\n", "  - id: pet\n    ask: Pet?\n    type: text\n  - id: home\n"
)


def test_consent_granted_mid_conversation_applies_to_the_steps_still_to_come() -> None:
    chat = Chat(PET_FIRST)
    assert chat.send("Sam") == ["Pet?"]
    chat.consent = True  # a parent's form arrives while the student is on "Pet?"
    assert chat.send("a cat") == ["What languages do you speak at home?"]


def test_consent_revoked_mid_conversation_skips_the_steps_still_to_come() -> None:
    chat = Chat(PET_FIRST, consent=True)
    chat.send("Sam")
    chat.consent = False
    assert chat.send("a cat") == ["Favourite colour? "]


def test_back_over_a_skipped_step_returns_to_the_question_before_it() -> None:
    chat = Chat()
    chat.send("Sam")
    replies = chat.send("/back")
    assert chat.state.step == "name"
    assert replies[0].startswith("Let's change that. Your answer was: Sam")
    chat.send("Samira")
    assert chat.state.step == "colour"


def test_back_after_consent_is_granted_asks_the_step_skipped_before() -> None:
    chat = Chat()
    chat.send("Sam")
    chat.consent = True
    chat.send("/back")
    assert chat.send("Sam") == ["What languages do you speak at home?"]


def test_a_question_waiting_when_consent_is_revoked_is_left_without_taking_the_answer() -> None:
    chat = Chat(consent=True)
    chat.send("Sam")
    assert chat.state.step == "home"
    chat.consent = False
    assert chat.send("Portuguese") == ["Favourite colour? "]
    assert "identity.home_languages" not in chat.saved()
    assert all(a.step_id != "home" for a in chat.last.answers)
    chat.send("/back")  # not to the question consent no longer covers
    assert chat.state.step == "name"


def test_resuming_at_a_question_consent_no_longer_covers_moves_past_it() -> None:
    chat = Chat(consent=True)
    chat.send("Sam")
    chat.send("/pause")
    chat.consent = False
    assert chat.resume() == ["Favourite colour? "]
    assert chat.state.step == "colour"


def test_back_past_a_question_asked_before_consent_was_revoked_skips_it() -> None:
    chat = Chat(consent=True)
    chat.send("Sam")
    chat.send("Portuguese")
    chat.consent = False
    chat.send("/back")  # from colour: home is off the path now, so back to name
    assert chat.state.step == "name"
    assert not any(isinstance(e, Withdraw) for e in chat.effects)  # the answer given stays
