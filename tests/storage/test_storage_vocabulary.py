"""Storage keeps what the dialogue core says a flow may save, and nothing goes unapplied.

The lists (goal fields and statuses, check-in fields) are the core's; storage's columns,
statements and constraints must cover each of them, and an effect type storage was never
taught fails the turn instead of being dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import pytest
from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError

from dialogues import (
    CHECKIN_FIELDS,
    CHECKIN_GOAL_FIELDS,
    GOAL_FIELDS,
    GOAL_STATUSES,
    Effect,
    ExistingGoal,
    NewGoal,
    SetGoal,
    SetProfile,
)
from storage import PersonRecord
from storage._tables import checkin, checkin_goal_update, goal

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures


@dataclass(frozen=True, slots=True)
class Promote:
    """An effect the engine might grow one day, that storage was never taught."""

    origin: str


def test_an_effect_storage_does_not_know_fails_the_turn(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    known = SetProfile(("nickname",), "Ani", False, False, "q1#None")
    with pytest.raises(TypeError, match="Promote"):
        stores.turn(student, known, cast(Effect, Promote("q2#None")))
    assert stores.profile.current(student.id) == {}  # the whole turn was rolled back


@pytest.mark.parametrize(
    ("fields", "table"),
    [
        (GOAL_FIELDS - {"action_steps"}, goal),  # action steps are rows of their own
        (CHECKIN_FIELDS, checkin),
        (CHECKIN_GOAL_FIELDS, checkin_goal_update),
    ],
    ids=["goal", "checkin", "checkin_goal"],
)
def test_every_field_a_flow_may_save_has_a_column(fields: frozenset[str], table: Table) -> None:
    columns = set(table.c.keys())
    assert fields <= columns, sorted(fields - columns)


def test_the_migrated_schema_takes_every_goal_status_and_no_other(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    key = NewGoal("goal_title#0")
    stores.turn(student, SetGoal(key, "title", "Read more", "goal_title#0"))
    [goal_id] = [g["id"] for g in stores.plan.plan(student.id)["goals"]]
    for status in reversed(GOAL_STATUSES):  # ends on the first: a new goal's own status
        stores.turn(student, SetGoal(ExistingGoal(goal_id), "status", status, f"s#{status}"))
        assert stores.plan.plan(student.id)["goals"][0]["status"] == status
    with pytest.raises(IntegrityError), stores.db.begin() as conn:  # the CHECK constraint
        conn.execute(insert(goal).values(person_id=student.id, title="x", status="archived"))
