"""A flow as the engine sees it: immutable, already validated.

The loader (`_loader.py`) builds these from YAML and refuses anything invalid, so code that
receives a `Flow` never re-checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CHECKIN_FIELDS",
    "CHECKIN_GOAL_FIELDS",
    "END",
    "GOAL_FIELDS",
    "GOAL_STATUSES",
    "SENSITIVE_KINDS",
    "Audience",
    "Flow",
    "FlowSettings",
    "Loop",
    "NextRule",
    "OptionSpec",
    "SaveKind",
    "SaveTarget",
    "Step",
    "StepType",
]

END = "end"
"""The pseudo step id that finishes a conversation (`goto: end`)."""

# What a flow may save. Storage builds its statements and CHECK constraints from these lists,
# so a value added here needs its column, or a migration, there too.
GOAL_FIELDS = frozenset(
    {"title", "why", "category", "target_date", "support", "status", "action_steps"}
)
GOAL_STATUSES = ("active", "completed", "paused", "dropped")
"""A goal's statuses; a new goal is ``active``."""
CHECKIN_FIELDS = frozenset({"mood", "energy", "note_for_advisor", "wants_meeting", "highlight"})
CHECKIN_GOAL_FIELDS = frozenset({"progress", "did", "blockers", "next_step"})
SENSITIVE_KINDS = ("ppra",)
"""What `sensitive:` may say: ``ppra``, a question in a category of the US Protection of Pupil
Rights Amendment (family, beliefs, mental health...), asked only with a parent's consent."""


class StepType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    SCALE = "scale"
    YES_NO = "yes_no"
    DATE = "date"
    LIST = "list"
    FILE = "file"
    MESSAGE = "message"


class Audience(StrEnum):
    STUDENT = "student"
    ADVISOR = "advisor"
    TEACHER = "teacher"


class SaveKind(StrEnum):
    PROFILE = "profile"  # profile.<path>
    GOAL_NEW = "goal_new"  # goal.new.<field>
    GOAL = "goal"  # goal.<field>
    GOAL_ACTION_STEPS = "goal_action_steps"  # goal.action_steps (appends)
    CHECKIN = "checkin"  # checkin.<field>
    CHECKIN_GOAL = "checkin_goal"  # checkin.goal.<field>
    REFLECTION = "reflection"  # reflection.<field> (extension: end-of-term reflection)


@dataclass(frozen=True, slots=True)
class SaveTarget:
    """A parsed `save:` value. ``path`` is the field path below the target kind."""

    raw: str
    kind: SaveKind
    path: tuple[str, ...]
    append: bool = False  # `mode: append` (profile list fields)

    @property
    def field(self) -> str:
        return self.path[-1] if self.path else ""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """An option as written: ``label`` is a template source."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class NextRule:
    goto: str  # a step id or END
    when: str | None = None  # expression source; None always matches
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: StepType
    ask: str = ""  # template source; for MESSAGE steps the `say:` text
    options: tuple[OptionSpec, ...] = ()
    allow_other: bool = False
    min: float | None = None  # number/scale bounds; multi_choice/list picks
    max: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    integer: bool = False
    labels: tuple[tuple[int, str], ...] = ()  # scale labels
    optional: bool = False
    save: SaveTarget | None = None
    next: tuple[NextRule, ...] = ()
    when: str | None = None
    max_retries: int | None = None  # overrides the flow setting
    private: bool = False  # extension: the saved profile field is private to the student
    hint: str | None = None  # extension: custom re-ask hint (template)
    sensitive: str | None = None  # one of SENSITIVE_KINDS: asked only with consent
    line: int | None = None

    @property
    def asks(self) -> bool:
        """True when the step waits for an answer."""
        return self.type is not StepType.MESSAGE


@dataclass(frozen=True, slots=True)
class Loop:
    """`for_each:` — repeats ``steps`` once per item of ``source``."""

    id: str
    source: str  # expression source, e.g. "plan.active_goals"
    alias: str  # `as:` name, default "goal"
    steps: tuple[Step | Loop, ...]
    skip_if_empty: str | None = None  # step id (or END) when there are no items
    when: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class FlowSettings:
    remind_after_s: int | None = None
    max_reminders: int = 0
    expire_after_s: int | None = None
    max_retries: int = 3
    anonymous: bool = False
    """A survey's results show counts and unnamed free text only (none under 5 responses)."""


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    version: int
    title: str
    audience: Audience
    steps: tuple[Step | Loop, ...]
    intro: str | None = None
    outro: str | None = None
    description: str | None = None  # extension: one line for `flows list`
    settings: FlowSettings = field(default_factory=FlowSettings)
    source: str = ""  # the exact file text (stored once per content hash)
    content_hash: str = ""  # sha256 of `source`
    path: str | None = None

    def iter_steps(self) -> list[Step | Loop]:
        """Every step and loop, depth first, in file order."""
        out: list[Step | Loop] = []

        def walk(items: tuple[Step | Loop, ...]) -> None:
            for item in items:
                out.append(item)
                if isinstance(item, Loop):
                    walk(item.steps)

        walk(self.steps)
        return out


def describe_value(value: Any) -> str:
    """A short human text of an answer value (used in cards and echoes)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(describe_value(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("name") or value.get("url") or value.get("file_id") or "file")
    return str(value)
