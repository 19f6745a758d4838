"""The engine, driven turn by turn with its state round-tripped through JSON every time."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from dialogues import (
    AddActionSteps,
    Attachment,
    ConversationState,
    ConversationStatus,
    ExistingGoal,
    FlagStep,
    Inbound,
    NewGoal,
    ReplyKind,
    SaveArtifact,
    SetCheckin,
    SetCheckinGoal,
    SetGoal,
    SetOptOut,
    SetProfile,
    SetReflection,
    Withdraw,
)
from dialogues._engine import Engine, TurnContext
from dialogues._loader import load_flow_text
from dialogues._machine import machines_built

TODAY = date(2026, 11, 23)


class Chat:
    """A conversation with the engine; state survives only as JSON, like in the database."""

    def __init__(self, source: str, *, goals: list[dict[str, Any]] | None = None) -> None:
        self.engine = Engine(load_flow_text(source, filename="test.yaml"))
        self.goals = goals or []
        self.profile: dict[str, Any] = {}
        self.effects: list[Any] = []
        self.answers: list[Any] = []
        self.plan_loads = 0
        result = self.engine.start(self.ctx())
        self._keep(result)
        self.last = result

    def ctx(self) -> TurnContext:
        def load_plan() -> dict[str, Any]:
            self.plan_loads += 1
            active = [g for g in self.goals if g.get("status", "active") == "active"]
            return {"goals": self.goals, "active_goals": active}

        return TurnContext(
            person={
                "first_name": "Sam",
                "display_name": "Sam Lee",
                "timezone": "UTC",
                "language": "en",
            },
            today=TODAY,
            load_profile=lambda: self.profile,
            load_plan=load_plan,
        )

    def _keep(self, result: Any) -> None:
        self.json = json.dumps(result.state.to_json())
        self.effects.extend(result.effects)
        self.answers.extend(result.answers)

    @property
    def state(self) -> ConversationState:
        return ConversationState.from_json(json.loads(self.json))

    def send(self, message: str | Inbound) -> list[str]:
        inbound = Inbound.of_text(message) if isinstance(message, str) else message
        result = self.engine.handle(self.state, inbound, self.ctx())
        self._keep(result)
        self.last = result
        return [r.text for r in result.replies]

    def resume(self) -> list[str]:
        result = self.engine.resume(self.state, self.ctx())
        self._keep(result)
        self.last = result
        return [r.text for r in result.replies]

    @property
    def step(self) -> str:
        return self.state.step

    def saved(self, kind: type) -> list[Any]:
        return [e for e in self.effects if isinstance(e, kind)]


ALL_TYPES = """
id: all_types
version: 1
title: Every type
intro: "Hi {{ person.first_name }}!"
outro: "Bye {{ answers.name | default('friend') }}."
steps:
  - id: name
    ask: Your name?
    type: text
    max_length: 20
    save: profile.preferred_name
  - id: age
    ask: How old are you?
    type: number
    integer: true
    min: 5
    max: 20
    save: profile.age
  - id: colour
    ask: "Favourite colour, {{ answers.name }}?"
    type: choice
    options:
      - {value: red, label: Red}
      - {value: blue, label: "Blue {{ '💙' }}"}
    save: profile.colour
  - id: hobbies
    ask: Hobbies?
    type: multi_choice
    options: [music, art, chess]
    allow_other: true
    min: 1
    max: 3
    save: profile.hobbies
  - id: noise
    ask: Noise?
    type: scale
    min: 1
    max: 5
    labels: {1: silent, 5: lively}
    save: profile.environment.noise_level
  - id: likes_school
    ask: Do you like school?
    type: yes_no
    save: profile.likes_school
  - id: due
    ask: When?
    type: date
    save: profile.due
  - id: books
    ask: Books you loved?
    type: list
    min: 2
    max: 3
    save: profile.books
  - id: sample
    ask: Share a work sample
    type: file
    optional: true
    save: profile.work_sample
  - id: bye
    type: message
    say: "Nearly done, {{ answers.name }}."
"""


def test_every_step_type_saves_a_typed_value() -> None:
    chat = Chat(ALL_TYPES)
    assert [r.text for r in chat.last.replies] == ["Hi Sam!", "Your name?"]
    chat.send("Ana")
    chat.send("12")
    assert chat.last.replies[0].text == "Favourite colour, Ana?"
    assert [o.label for o in chat.last.replies[0].options] == ["Red", "Blue 💙"]
    assert chat.last.replies[0].kind is ReplyKind.CHOICE
    chat.send(Inbound.of_button("blue"))
    chat.send("1, chess, juggling")
    assert chat.last.replies[0].kind is ReplyKind.SCALE
    chat.send("lively")
    chat.send("y")
    chat.send("next friday")
    chat.send("Matilda")
    assert chat.step == "books"  # one item so far; the list needs two
    chat.send("Holes\nWonder")
    chat.send(Inbound.of_file(Attachment(kind="photo", file_id="F1", name="essay.jpg")))
    values = {e.path: e.value for e in chat.saved(SetProfile)}
    assert values == {
        ("preferred_name",): "Ana",
        ("age",): 12,
        ("colour",): "blue",
        ("hobbies",): ["music", "chess", "juggling"],
        ("environment", "noise_level"): 5,
        ("likes_school",): True,
        ("due",): "2026-11-27",
        ("books",): ["Matilda", "Holes", "Wonder"],
        ("work_sample",): Attachment(kind="photo", file_id="F1", name="essay.jpg").to_json(),
    }
    assert [e.attachment.file_id for e in chat.saved(SaveArtifact)] == ["F1"]
    assert [r.text for r in chat.last.replies] == ["Nearly done, Ana.", "Bye Ana."]
    assert chat.state.status is ConversationStatus.COMPLETED


def test_invalid_answer_gets_a_specific_hint_and_the_same_question() -> None:
    chat = Chat(ALL_TYPES)
    chat.send("Ana")
    texts = chat.send("forty")
    assert chat.step == "age"
    assert "number" in texts[0].lower() and texts[0].endswith("How old are you?")
    texts = chat.send("40")
    assert "20" in texts[0]
    assert chat.step == "age"
    assert not chat.saved(SetProfile)[1:]


def test_too_many_invalid_answers_skip_and_flag_the_step() -> None:
    chat = Chat(ALL_TYPES)
    chat.send("Ana")
    for _ in range(3):
        chat.send("lots")
    assert chat.step == "colour"
    assert [e.step_id for e in chat.saved(FlagStep)] == ["age"]
    assert [a.status for a in chat.answers if a.step_id == "age"] == ["flagged"]


def test_huge_and_odd_answers_never_break_the_conversation() -> None:
    chat = Chat(ALL_TYPES)
    steps = []
    for text in ["", "x" * 10_000, "/nonsense", "🙂" * 50, "\x00", "<!channel>"]:
        chat.send(text)
        steps.append(chat.step)
    # three invalid answers per question, then it is skipped and flagged for an adult
    assert steps == ["name", "name", "name", "age", "age", "age"]
    assert "don't know /nonsense" in chat.send("/nonsense")[0]
    assert [e.step_id for e in chat.saved(FlagStep)] == ["name"]
    assert chat.state.status is ConversationStatus.ACTIVE


BRANCHING = """
id: branching
version: 1
title: Branching
steps:
  - id: name
    ask: Name?
    type: text
    save: profile.preferred_name
  - id: has_goal
    ask: Is there something you want to get better at?
    type: yes_no
    next:
      - when: "answer"
        goto: goal_title
      - goto: end
  - id: goal_title
    ask: What is it?
    type: text
    save: goal.new.title
  - id: goal_why
    ask: "Why does {{ answers.goal_title }} matter?"
    type: text
    save: goal.why
  - id: steps
    ask: Two or three steps?
    type: list
    min: 2
    max: 3
    save: goal.action_steps
  - id: extra
    ask: Anything else?
    type: text
    optional: true
    when: "answers.name != 'Zed'"
    save: profile.extra
"""


def test_next_rules_branch_on_the_answer() -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    chat.send("no")
    assert chat.state.status is ConversationStatus.COMPLETED
    assert not chat.saved(SetGoal)


def test_goal_fields_fill_the_goal_the_new_step_started() -> None:
    chat = Chat(BRANCHING)
    for text in ["Ana", "yes", "Read more", "It helps me relax", "Library on Monday\nRead 20 min"]:
        chat.send(text)
    goal = NewGoal("goal_title")
    assert [(e.goal, e.field, e.value) for e in chat.saved(SetGoal)] == [
        (goal, "title", "Read more"),
        (goal, "why", "It helps me relax"),
    ]
    assert chat.saved(AddActionSteps) == [
        AddActionSteps(goal, ("Library on Monday", "Read 20 min"), "steps")
    ]


def test_back_across_a_branch_replaces_the_answer_and_re_evaluates() -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    chat.send("yes")
    chat.send("Read more")  # starts a goal in the plan
    assert chat.step == "goal_why"
    chat.send("/back")  # back to the goal's title: that answer stands until replaced
    assert chat.step == "goal_title" and not chat.saved(Withdraw)
    texts = chat.send("/back")  # past it: the goal branch is off the path now
    assert chat.step == "has_goal"
    assert "Your answer was: yes" in texts[0]
    assert [(w.origin, w.goal) for w in chat.saved(Withdraw)] == [
        ("goal_title", NewGoal("goal_title"))
    ]
    chat.send("no")
    assert chat.state.status is ConversationStatus.COMPLETED
    assert "has_goal" in chat.state.answers and chat.state.answers["has_goal"] is False
    assert "goal_title" not in chat.state.answers  # templates and conditions forget it too


def test_back_to_a_question_and_answering_it_again_withdraws_nothing() -> None:
    chat = Chat(BRANCHING)
    for text in ["Ana", "yes", "Read more", "/back", "Read a lot", "It helps", "/back", "Fun"]:
        chat.send(text)
    assert not chat.saved(Withdraw)
    assert [(e.field, e.value) for e in chat.saved(SetGoal)][-2:] == [
        ("why", "It helps"),
        ("why", "Fun"),
    ]


def test_skipping_a_question_back_returned_to_withdraws_its_answer() -> None:
    chat = Chat(ALL_TYPES.replace("    max_length: 20\n", "    optional: true\n", 1))
    chat.send("Ana")
    chat.send("/back")
    chat.send("/skip")
    assert chat.step == "age"
    assert [w.origin for w in chat.saved(Withdraw)] == ["name"]
    assert "name" not in chat.state.answers


def test_back_past_loop_answers_withdraws_them_for_their_own_goal() -> None:
    goals = [{"id": 7, "title": "Fractions", "status": "active"}]
    chat = Chat(CHECKIN, goals=goals)
    for text in ["4", "3", "/back", "/back"]:
        chat.send(text)
    assert chat.step == "mood"
    assert [(w.origin, w.goal) for w in chat.saved(Withdraw)] == [("progress#0", ExistingGoal(7))]


def test_back_past_a_goal_status_gives_the_goal_its_earlier_status_back() -> None:
    chat = Chat(REFLECT + ANYTHING_ELSE, goals=[{"id": 3, "title": "Read", "status": "active"}])
    for text in ["My poem", "completed", "/back", "/back"]:
        chat.send(text)
    assert chat.step == "proud"
    assert [(w.origin, w.goal, w.previous) for w in chat.saved(Withdraw)] == [
        ("status#0", ExistingGoal(3), "active")
    ]


def test_back_shows_the_previous_answer_as_the_student_saw_it() -> None:
    chat = Chat(ALL_TYPES)
    chat.send("Ana")
    chat.send("12")
    shown = {}
    for step, answer in [
        ("colour", Inbound.of_button("blue")),
        ("hobbies", Inbound.of_text("1, chess, juggling")),
        ("noise", Inbound.of_text("lively")),
        ("likes_school", Inbound.of_text("y")),
        ("due", Inbound.of_text("next friday")),
    ]:
        chat.send(answer)
        shown[step] = chat.send("/back")[0].split("\n\n")[0]
        chat.send(answer)
    assert shown == {
        "colour": "Let's change that. Your answer was: Blue 💙",
        "hobbies": "Let's change that. Your answer was: music, chess, juggling",
        "noise": "Let's change that. Your answer was: 5 (lively)",
        "likes_school": "Let's change that. Your answer was: yes",
        "due": "Let's change that. Your answer was: Fri 27 Nov 2026",
    }


def test_back_then_new_answer_replaces_the_saved_value_by_origin() -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    chat.send("/back")
    chat.send("Bea")
    names = [(e.value, e.origin) for e in chat.saved(SetProfile)]
    assert names == [("Ana", "name"), ("Bea", "name")]  # same origin: storage replaces
    assert chat.state.answers["name"] == "Bea"


def test_back_on_the_first_question_says_so() -> None:
    chat = Chat(BRANCHING)
    texts = chat.send("/back")
    assert "first question" in texts[0]
    assert chat.step == "name"


def test_skip_only_skips_optional_steps() -> None:
    chat = Chat(BRANCHING)
    texts = chat.send("/skip")
    assert "can't be skipped" in texts[0]
    assert chat.step == "name"
    for text in ["Ana", "yes", "Read", "Fun", "a\nb"]:
        chat.send(text)
    assert chat.step == "extra"
    chat.send("/skip")
    assert chat.state.status is ConversationStatus.COMPLETED
    assert [a.status for a in chat.answers if a.step_id == "extra"] == ["skipped"]


def test_step_when_false_skips_the_step() -> None:
    chat = Chat(BRANCHING)
    for text in ["Zed", "yes", "Read", "Fun", "a\nb"]:
        chat.send(text)
    assert chat.state.status is ConversationStatus.COMPLETED


def test_pause_then_any_message_resumes_at_the_same_question() -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    texts = chat.send("/pause")
    assert chat.state.status is ConversationStatus.PAUSED and "Paused" in texts[0]
    texts = chat.send("hi again")
    assert chat.state.status is ConversationStatus.ACTIVE
    assert texts[0].startswith("Welcome back") and texts[0].endswith("get better at?")
    chat.send("no")
    assert chat.state.status is ConversationStatus.COMPLETED


def test_later_is_understood_as_pause() -> None:
    chat = Chat(BRANCHING)
    chat.send("later")
    assert chat.state.status is ConversationStatus.PAUSED


def test_resume_after_a_restart_asks_the_waiting_question_again() -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    texts = chat.resume()
    assert texts == [
        "Welcome back! Here's where we were:\n\nIs there something you want to get better at?"
    ]
    assert chat.step == "has_goal"


def test_stop_opts_out_until_the_student_writes_again() -> None:
    chat = Chat(BRANCHING)
    chat.send("/stop")
    assert chat.state.status is ConversationStatus.STOPPED
    chat.send("hello")
    assert chat.state.status is ConversationStatus.ACTIVE
    assert [e.opted_out for e in chat.saved(SetOptOut)] == [True, False]
    assert chat.step == "name"


def test_restart_starts_over_and_help_lists_commands() -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    texts = chat.send("/help")
    assert "/back" in texts[0] and texts[1] == "Is there something you want to get better at?"
    chat.send("/restart")
    assert chat.step == "name" and chat.state.answers == {}


CHECKIN = """
id: checkin
version: 1
title: Check-in
steps:
  - id: hello
    type: message
    say: Hi! Quick check-in.
  - id: mood
    ask: Mood?
    type: scale
    save: checkin.mood
  - id: goals
    for_each: plan.active_goals
    as: goal
    skip_if_empty: no_goals
    steps:
      - id: progress
        ask: "How is '{{ goal.title }}' going?"
        type: scale
        save: checkin.goal.progress
      - id: next_step
        ask: Next step?
        type: text
        save: checkin.goal.next_step
  - id: advisor
    ask: Anything for your advisor?
    type: text
    optional: true
    save: checkin.note_for_advisor
    next:
      - goto: end
  - id: no_goals
    type: message
    say: You have no goals yet.
    next:
      - goto: advisor
"""


def test_for_each_walks_every_active_goal() -> None:
    goals = [
        {"id": 7, "title": "Fractions", "status": "active"},
        {"id": 8, "title": "Old goal", "status": "completed"},
        {"id": 9, "title": "Swim", "status": "active"},
    ]
    chat = Chat(CHECKIN, goals=goals)
    assert [r.text for r in chat.last.replies] == ["Hi! Quick check-in.", "Mood?"]
    assert chat.plan_loads == 0  # the plan loads only when a template needs it
    texts = chat.send("4")
    assert texts == ["How is 'Fractions' going?"]
    chat.send("3")
    chat.send("Practice")
    assert chat.send("5") == ["Next step?"]
    assert "Swim" in chat.send("/back")[0]
    chat.send("2")
    chat.send("Lessons")
    chat.send("Thanks!")
    assert chat.state.status is ConversationStatus.COMPLETED
    updates = [(e.goal_id, e.field, e.value, e.origin) for e in chat.saved(SetCheckinGoal)]
    assert updates == [
        (7, "progress", 3, "progress#0"),
        (7, "next_step", "Practice", "next_step#0"),
        (9, "progress", 5, "progress#1"),
        (9, "progress", 2, "progress#1"),
        (9, "next_step", "Lessons", "next_step#1"),
    ]
    assert [(e.field, e.value) for e in chat.saved(SetCheckin)] == [
        ("mood", 4),
        ("note_for_advisor", "Thanks!"),
    ]


def test_for_each_without_items_goes_to_skip_if_empty() -> None:
    chat = Chat(CHECKIN, goals=[])
    texts = chat.send("3")
    assert texts == ["You have no goals yet.", "Anything for your advisor?"]
    chat.send("/skip")
    assert chat.state.status is ConversationStatus.COMPLETED


REFLECT = """
id: reflect
version: 1
title: Reflect
steps:
  - id: proud
    ask: Proud of?
    type: text
    save: reflection.proud_of
  - id: goals
    for_each: plan.active_goals
    steps:
      - id: status
        ask: "{{ goal.title }}?"
        type: choice
        options: [active, completed, dropped]
        save: goal.status
"""


ANYTHING_ELSE = """
  - id: anything_else
    ask: Anything else?
    type: text
"""


def test_reflection_and_goal_status_inside_a_loop() -> None:
    chat = Chat(REFLECT, goals=[{"id": 3, "title": "Read", "status": "active"}])
    chat.send("My poem")
    chat.send("completed")
    assert chat.saved(SetReflection) == [SetReflection("proud_of", "My poem", "proud")]
    assert chat.saved(SetGoal) == [SetGoal(ExistingGoal(3), "status", "completed", "status#0")]


def test_machine_is_built_once_per_flow_content_not_per_message() -> None:
    Chat(BRANCHING)
    before = machines_built()
    for _ in range(5):
        chat = Chat(BRANCHING)
        chat.send("Ana")
        chat.send("yes")
    assert machines_built() == before


def test_a_state_naming_an_unknown_step_restarts_instead_of_failing() -> None:
    chat = Chat(BRANCHING)
    chat.json = json.dumps({**json.loads(chat.json), "step": "deleted_step"})
    texts = chat.send("hello")
    assert chat.step == "name" and "Starting over" in texts[0]


@pytest.mark.parametrize(
    "command", ["/back", "/skip", "/pause", "/help", "/restart", "/stop", "done"]
)
def test_commands_on_a_finished_conversation_are_harmless(command: str) -> None:
    chat = Chat(BRANCHING)
    chat.send("Ana")
    chat.send("no")
    chat.send(command)
    assert chat.state.status is ConversationStatus.COMPLETED


def test_a_skipped_new_goal_step_does_not_fill_the_previous_goal() -> None:
    source = BRANCHING.replace("save: goal.new.title", "save: goal.new.title\n    optional: true")
    chat = Chat(source)
    chat.send("Ana")
    chat.send("yes")
    chat.send("/skip")
    chat.send("To feel calm")
    assert chat.saved(SetGoal) == [
        SetGoal(NewGoal("goal_title"), "why", "To feel calm", "goal_why")
    ]
