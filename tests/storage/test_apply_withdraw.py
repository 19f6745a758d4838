"""Withdrawn answers (`/back` past them): what they saved leaves the profile and the plan.

Runs on SQLite and PostgreSQL through the `database` fixture, like the storage contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialogues import (
    AddActionSteps,
    Attachment,
    ExistingGoal,
    NewGoal,
    SaveArtifact,
    SaveKind,
    SaveTarget,
    SetCheckin,
    SetCheckinGoal,
    SetGoal,
    SetProfile,
    SetReflection,
    Withdraw,
)
from storage import PersonRecord

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures

TITLE = SaveTarget("goal.new.title", SaveKind.GOAL_NEW, ("title",))
WHY = SaveTarget("goal.why", SaveKind.GOAL, ("why",))
STATUS = SaveTarget("goal.status", SaveKind.GOAL, ("status",))
STEPS = SaveTarget("goal.action_steps", SaveKind.GOAL_ACTION_STEPS, ("action_steps",))
NAME = SaveTarget("profile.preferred_name", SaveKind.PROFILE, ("preferred_name",))
MOOD = SaveTarget("checkin.mood", SaveKind.CHECKIN, ("mood",))
PROGRESS = SaveTarget("checkin.goal.progress", SaveKind.CHECKIN_GOAL, ("progress",))
PROUD = SaveTarget("reflection.proud_of", SaveKind.REFLECTION, ("proud_of",))
SWIM = NewGoal("goal2_title")


def _titles(stores: Stores, person: PersonRecord) -> list[tuple[str, str]]:
    return [(g["title"], g["status"]) for g in stores.plan.plan(person.id)["goals"]]


def test_a_goal_whose_starting_answer_is_withdrawn_leaves_the_plan(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    stores.turn(student, SetGoal(SWIM, "title", "Swim 50 metres", "goal2_title"))
    stores.turn(student, SetGoal(SWIM, "why", "To stay fit", "goal2_why"))
    stores.turn(student, AddActionSteps(SWIM, ("Pool on Saturday", "Breathe"), "goal2_steps"))
    stores.turn(student, Withdraw("goal2_steps", STEPS, SWIM))
    stores.turn(student, Withdraw("goal2_why", WHY, SWIM))
    goal = stores.plan.plan(student.id)["goals"][0]
    assert (goal["title"], goal["why"], goal["action_steps"]) == ("Swim 50 metres", None, [])
    stores.turn(student, Withdraw("goal2_title", TITLE, SWIM))
    assert _titles(stores, student) == []
    stores.turn(student, SetGoal(SWIM, "title", "Run 5 km", "goal2_title"))  # said again
    assert _titles(stores, student) == [("Run 5 km", "active")]


def test_a_goal_another_conversation_checked_in_on_is_dropped_not_deleted(
    stores: Stores, student: PersonRecord, make_flow: object
) -> None:
    stores.start(student)
    stores.turn(student, SetGoal(SWIM, "title", "Swim 50 metres", "goal2_title"))
    goal_id = stores.plan.plan(student.id)["goals"][0]["id"]
    stores.start(student, make_flow("weekly_checkin"))  # type: ignore[operator]
    stores.turn(
        student,
        SetCheckin("mood", 4, "mood"),
        SetCheckinGoal(goal_id, "progress", 3, "progress#0"),
        flow_id="weekly_checkin",
    )
    stores.turn(student, Withdraw("goal2_title", TITLE, SWIM), flow_id="this_is_me")
    assert _titles(stores, student) == [("Swim 50 metres", "dropped")]
    assert stores.plan.plan(student.id)["active_goals"] == []
    stores.turn(student, SetGoal(SWIM, "title", "Run 5 km", "goal2_title"), flow_id="this_is_me")
    assert _titles(stores, student) == [("Swim 50 metres", "dropped"), ("Run 5 km", "active")]


def test_a_withdrawn_profile_answer_gives_the_field_its_earlier_value_back(
    stores: Stores, student: PersonRecord
) -> None:
    stores.profile.set(student.id, "preferred_name", "Ana")
    stores.start(student)
    stores.turn(student, SetProfile(("preferred_name",), "Annie", False, False, "name"))
    stores.turn(student, SetProfile(("preferred_name",), "Nina", False, False, "name"))
    stores.turn(student, Withdraw("name", NAME))
    assert stores.profile.current(student.id) == {"preferred_name": "Ana"}
    assert [f.value for f in stores.profile.history(student.id)] == ["Ana"]


def test_withdrawn_check_in_reflection_and_file_answers_are_cleared(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    stores.turn(student, SetGoal(SWIM, "title", "Swim", "goal2_title"))
    goal_id = stores.plan.plan(student.id)["goals"][0]["id"]
    link = Attachment(kind="link", url="https://example.org/poem")
    stores.turn(
        student,
        SetCheckin("mood", 4, "mood"),
        SetCheckinGoal(goal_id, "progress", 3, "progress#0"),
        SetReflection("proud_of", "My poem", "proud"),
        SaveArtifact(link, None, "sample"),
    )
    stores.turn(
        student,
        Withdraw("sample", None),
        Withdraw("proud", PROUD),
        Withdraw("progress#0", PROGRESS, ExistingGoal(goal_id)),
        Withdraw("mood", MOOD),
    )
    checkins = stores.plan.checkins(student.id)
    assert [(c.mood, [u.progress for u in c.goal_updates]) for c in checkins] == [(None, [None])]
    assert [r.fields for r in stores.plan.reflections(student.id)] == [{}]
    assert stores.plan.artifacts(student.id) == []


def test_a_withdrawn_status_answer_restores_an_existing_goal(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    stores.turn(student, SetGoal(SWIM, "title", "Swim", "goal2_title"))
    goal_id = stores.plan.plan(student.id)["goals"][0]["id"]
    existing = ExistingGoal(goal_id)
    stores.turn(student, SetGoal(existing, "status", "completed", "status#0"))
    stores.turn(student, Withdraw("status#0", STATUS, existing, "active"))
    assert _titles(stores, student) == [("Swim", "active")]
