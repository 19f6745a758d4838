"""What a turn changes outside the conversation, as plain values.

The engine never writes anything: it returns effects, and storage applies them in the same
transaction as the turn. Every effect carries ``origin`` — "<step id>#<iteration>" — so a
re-answer after `/back` replaces what the first answer saved instead of adding to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ._messages import Attachment, Reply
from ._schema import SaveTarget
from ._state import ConversationState

__all__ = [
    "AddActionSteps",
    "AnswerRecord",
    "Effect",
    "ExistingGoal",
    "FlagStep",
    "GoalRef",
    "NewGoal",
    "SaveArtifact",
    "SetCheckin",
    "SetCheckinGoal",
    "SetGoal",
    "SetOptOut",
    "SetProfile",
    "SetReflection",
    "TurnResult",
    "Withdraw",
]


@dataclass(frozen=True, slots=True)
class NewGoal:
    """The goal a `goal.new.*` step started; ``key`` is that step's origin."""

    key: str


@dataclass(frozen=True, slots=True)
class ExistingGoal:
    """A goal already in the plan (the current item of a `for_each`)."""

    goal_id: int


GoalRef: TypeAlias = NewGoal | ExistingGoal


@dataclass(frozen=True, slots=True)
class SetProfile:
    path: tuple[str, ...]
    value: Any
    append: bool
    private: bool
    origin: str


@dataclass(frozen=True, slots=True)
class SetGoal:
    goal: GoalRef
    field: str
    value: Any
    origin: str


@dataclass(frozen=True, slots=True)
class AddActionSteps:
    goal: GoalRef
    steps: tuple[str, ...]
    origin: str


@dataclass(frozen=True, slots=True)
class SetCheckin:
    field: str
    value: Any
    origin: str


@dataclass(frozen=True, slots=True)
class SetCheckinGoal:
    goal_id: int
    field: str
    value: Any
    origin: str


@dataclass(frozen=True, slots=True)
class SetReflection:
    field: str
    value: Any
    origin: str


@dataclass(frozen=True, slots=True)
class SaveArtifact:
    attachment: Attachment
    goal: GoalRef | None
    origin: str


@dataclass(frozen=True, slots=True)
class FlagStep:
    """A step skipped after too many invalid answers, for an adult to look at."""

    step_id: str
    reason: str
    origin: str


@dataclass(frozen=True, slots=True)
class SetOptOut:
    """`/stop` opts the person out of messages until they write again."""

    opted_out: bool
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Undo what the answer with ``origin`` saved: the student went `/back` past it.

    That answer is off the conversation's path now, so what it saved must not stay. ``target``
    is where the step saves (None: only a file it shared), ``goal`` the goal it filled, and
    ``previous`` that goal field's value before this conversation changed it (for a goal
    that was in the plan already).
    """

    origin: str
    target: SaveTarget | None
    goal: GoalRef | None = None
    previous: Any = None


Effect: TypeAlias = (
    SetProfile
    | SetGoal
    | AddActionSteps
    | SetCheckin
    | SetCheckinGoal
    | SetReflection
    | SaveArtifact
    | FlagStep
    | SetOptOut
    | Withdraw
)
"""Everything a turn may ask storage to do. Storage matches on every member (mypy checks)."""


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """One answer as stored: ``status`` is "answered", "skipped" or "flagged"."""

    step_id: str
    iteration: int | None
    value: Any
    raw: str
    status: str = "answered"


@dataclass(slots=True)
class TurnResult:
    """Everything one turn produced; storage persists it in one transaction.

    ``accepted`` is (step id, display text) of the answer this turn took, so an adapter can
    replace the question's buttons with the answer.
    """

    state: ConversationState
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    answers: list[AnswerRecord] = field(default_factory=list)
    accepted: tuple[str, str] | None = None
