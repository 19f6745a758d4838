"""profilebot's dialogue core: flow files, their validation, and the engine that runs them.

Imports nothing else of profilebot's: no SQL, no platform SDK, no environment.

The value types load with the package; the engine, the loader and the registry (which need
Jinja2, PyYAML and transitions) load on first use of one of their names, so that importing a
value type or an error stays cheap for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._context import WELCOME_BACK, TurnContext
from ._effects import (
    AddActionSteps,
    AnswerRecord,
    Effect,
    ExistingGoal,
    FlagStep,
    GoalRef,
    NewGoal,
    SaveArtifact,
    SetCheckin,
    SetCheckinGoal,
    SetGoal,
    SetOptOut,
    SetProfile,
    SetReflection,
    TurnResult,
    Withdraw,
)
from ._messages import (
    REPLACEMENT_CHARACTER,
    Attachment,
    Command,
    Inbound,
    InboundKind,
    Option,
    Reply,
    ReplyKind,
    Scale,
    clean_text,
)
from ._schema import (
    CHECKIN_FIELDS,
    CHECKIN_GOAL_FIELDS,
    END,
    GOAL_FIELDS,
    GOAL_STATUSES,
    SENSITIVE_KINDS,
    Audience,
    Flow,
    FlowSettings,
    Loop,
    NextRule,
    OptionSpec,
    SaveKind,
    SaveTarget,
    Step,
    StepType,
    describe_value,
)
from ._state import (
    RECENT_MAX,
    START,
    Answers,
    Archive,
    ConversationState,
    ConversationStatus,
    Frame,
    History,
    LoopState,
    StateChanges,
)
from .errors import FlowError, FlowLoadError, FlowProblem, ProfilebotError, UnknownFlowError

if TYPE_CHECKING:
    from ._engine import Engine
    from ._loader import check_flow_files, load_flow_file, load_flow_text, parse_duration
    from ._machine import machines_built
    from ._registry import BUILTIN_FLOWS_DIR, FlowRegistry

_LAZY = {
    "Engine": "._engine",
    "check_flow_files": "._loader",
    "load_flow_file": "._loader",
    "load_flow_text": "._loader",
    "parse_duration": "._loader",
    "machines_built": "._machine",
    "BUILTIN_FLOWS_DIR": "._registry",
    "FlowRegistry": "._registry",
}

__all__ = [
    "BUILTIN_FLOWS_DIR",
    "CHECKIN_FIELDS",
    "CHECKIN_GOAL_FIELDS",
    "END",
    "GOAL_FIELDS",
    "GOAL_STATUSES",
    "RECENT_MAX",
    "REPLACEMENT_CHARACTER",
    "SENSITIVE_KINDS",
    "START",
    "WELCOME_BACK",
    "AddActionSteps",
    "AnswerRecord",
    "Answers",
    "Archive",
    "Attachment",
    "Audience",
    "Command",
    "ConversationState",
    "ConversationStatus",
    "Effect",
    "Engine",
    "ExistingGoal",
    "FlagStep",
    "Flow",
    "FlowError",
    "FlowLoadError",
    "FlowProblem",
    "FlowRegistry",
    "FlowSettings",
    "Frame",
    "GoalRef",
    "History",
    "Inbound",
    "InboundKind",
    "Loop",
    "LoopState",
    "NewGoal",
    "NextRule",
    "Option",
    "OptionSpec",
    "ProfilebotError",
    "Reply",
    "ReplyKind",
    "SaveArtifact",
    "SaveKind",
    "SaveTarget",
    "Scale",
    "SetCheckin",
    "SetCheckinGoal",
    "SetGoal",
    "SetOptOut",
    "SetProfile",
    "SetReflection",
    "StateChanges",
    "Step",
    "StepType",
    "TurnContext",
    "TurnResult",
    "UnknownFlowError",
    "Withdraw",
    "check_flow_files",
    "clean_text",
    "describe_value",
    "load_flow_file",
    "load_flow_text",
    "machines_built",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
