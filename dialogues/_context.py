"""What a turn may know besides the flow and the state, apart from the engine that uses it:
services build a `TurnContext` without loading the engine's dependencies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = ["WELCOME_BACK", "TurnContext"]

WELCOME_BACK = "Welcome back! Here's where we were:"


def _no_consent() -> bool:
    return False


def _none_sensitive(flow_id: str) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What a turn may know about the person; profile and plan load only when used."""

    person: Mapping[str, Any]  # first_name, display_name, timezone, language
    today: date
    load_profile: Callable[[], Mapping[str, Any]]
    load_plan: Callable[[], Mapping[str, Any]]
    has_consent: Callable[[], bool] = field(default=_no_consent)
    """Whether a parent's consent to sensitive (PPRA) questions is on record now; asked only
    when such a step is reached, so flows without one cost nothing. Without it: no consent."""
    sensitive_steps: Callable[[str], frozenset[str]] = field(default=_none_sensitive)
    """The ids of the steps a flow's current version marks sensitive (by flow id): they need
    consent in a conversation pinned to older content too. Asked at most once a turn."""

    @property
    def language(self) -> str:
        return str(self.person.get("language") or "en")
