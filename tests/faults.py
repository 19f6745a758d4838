"""Fault injection: a turn that fails every time on one particular message.

``inject(text)`` makes the engine raise ``InjectedFault`` on every message reading ``text``
(a stand-in for a bug, a constraint or a payload nobody foresaw), inside the turn's
transaction like a real fault, and counts the calls. Tests use it in-process (with
``monkeypatch``); ``python -m tests.faults`` runs the real `profilebot` command with it
installed, the text from ``PROFILEBOT_FAULT_TEXT``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dialogues import ConversationState, Engine, Inbound, TurnContext, TurnResult

POISON = "this message breaks the turn"


class InjectedFault(RuntimeError):
    """The failure a poisoned message causes."""


@dataclass
class Fault:
    text: str
    raised: int = 0


def inject(text: str = POISON, patch: Any = None) -> Fault:
    """Poison messages reading ``text``; ``patch`` is pytest's ``monkeypatch.setattr``."""
    fault = Fault(text)
    original = Engine.handle

    def handle(
        self: Engine, state: ConversationState, inbound: Inbound, context: TurnContext
    ) -> TurnResult:
        if inbound.text == fault.text:
            fault.raised += 1
            raise InjectedFault("the injected fault")
        return original(self, state, inbound, context)

    (patch or _setattr)(Engine, "handle", handle)
    return fault


def _setattr(target: Any, name: str, value: Any) -> None:
    setattr(target, name, value)


if __name__ == "__main__":
    from bot.cli import main

    inject(os.environ.get("PROFILEBOT_FAULT_TEXT", POISON))
    main()
