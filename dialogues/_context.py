"""What a turn may know besides the flow and the state, apart from the engine that uses it:
services build a `TurnContext` without loading the engine's dependencies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = ["WELCOME_BACK", "TurnContext"]

WELCOME_BACK = "Welcome back! Here's where we were:"


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What a turn may know about the person; profile and plan load only when used."""

    person: Mapping[str, Any]  # first_name, display_name, timezone, language
    today: date
    load_profile: Callable[[], Mapping[str, Any]]
    load_plan: Callable[[], Mapping[str, Any]]

    @property
    def language(self) -> str:
        return str(self.person.get("language") or "en")
