"""Fault injection: a turn that fails every time on one particular message.

``inject(text)`` makes the engine raise ``InjectedFault`` on every message reading ``text``
(a stand-in for a bug, a constraint or a payload nobody foresaw), inside the turn's
transaction like a real fault, and counts the calls. Tests use it in-process (with
``monkeypatch``); ``python -m tests.faults`` runs the real `profilebot` command with it
installed, the text from ``PROFILEBOT_FAULT_TEXT``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

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


def answers_of(app: Any, person_id: int) -> list[tuple[str, str]]:
    """(step, raw text) of every answer the person gave, oldest first."""
    from storage._tables import answer, conversation

    with app.db.begin() as conn:
        rows = conn.execute(
            select(answer.c.step_id, answer.c.raw)
            .join(conversation, conversation.c.id == answer.c.conversation_id)
            .where(conversation.c.person_id == person_id)
            .order_by(answer.c.id)
        ).all()
    return [(str(step), str(raw)) for step, raw in rows]


@contextmanager
def exclusively_locked(database: Path) -> Iterator[None]:
    """Another process's exclusive lock on the SQLite file: nobody else may read or write."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.rollback()
        holder.close()


async def stopped_by_sigterm(process: asyncio.subprocess.Process, within: float = 8.0) -> int:
    """SIGTERM ``process``; its exit status, or a failure if it ran on past ``within`` s."""
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"SIGTERM did not stop the bot within {within:.0f} s") from None


if __name__ == "__main__":
    from bot.cli import main

    inject(os.environ.get("PROFILEBOT_FAULT_TEXT", POISON))
    main()
