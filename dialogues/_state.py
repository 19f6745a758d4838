"""A conversation's state: a small JSON-able value that lives in the database, not in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ConversationState", "ConversationStatus", "Frame", "LoopState"]


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"  # the student said /stop: no messages until they write again
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (
            ConversationStatus.ACTIVE,
            ConversationStatus.PAUSED,
            ConversationStatus.STOPPED,
        )


@dataclass(slots=True)
class LoopState:
    items: list[dict[str, Any]]
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "index": self.index}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopState:
        return cls(items=list(data["items"]), index=int(data["index"]))


@dataclass(frozen=True, slots=True)
class Frame:
    """A question the student was asked, kept so `/back` can return to it exactly."""

    step_id: str
    iteration: int | None
    goal_key: str | None

    def to_json(self) -> list[Any]:
        return [self.step_id, self.iteration, self.goal_key]

    @classmethod
    def from_json(cls, data: list[Any]) -> Frame:
        return cls(str(data[0]), data[1], data[2])


@dataclass(slots=True)
class ConversationState:
    """Where a conversation stands. ``step`` is the question waiting for an answer."""

    step: str
    status: ConversationStatus = ConversationStatus.ACTIVE
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[Frame] = field(default_factory=list)
    retries: int = 0
    loops: dict[str, LoopState] = field(default_factory=dict)
    goal_key: str | None = None  # the goal `goal.<field>` fills outside loops
    pending: list[str] = field(default_factory=list)  # list items collected so far
    revisiting: bool = False  # reached by /back: the waiting question has an answer already

    @property
    def finished(self) -> bool:
        return not self.status.is_open

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status.value,
            "answers": self.answers,
            "history": [f.to_json() for f in self.history],
            "retries": self.retries,
            "loops": {k: v.to_json() for k, v in self.loops.items()},
            "goal_key": self.goal_key,
            "pending": self.pending,
            "revisiting": self.revisiting,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationState:
        return cls(
            step=str(data["step"]),
            status=ConversationStatus(data.get("status", "active")),
            answers=dict(data.get("answers", {})),
            history=[Frame.from_json(f) for f in data.get("history", [])],
            retries=int(data.get("retries", 0)),
            loops={k: LoopState.from_json(v) for k, v in data.get("loops", {}).items()},
            goal_key=data.get("goal_key"),
            pending=list(data.get("pending", [])),
            revisiting=bool(data.get("revisiting", False)),
        )
