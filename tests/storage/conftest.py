"""Helpers for the storage contract tests: the stores on one database, flows, turns.

Handed to tests as fixtures (``stores``, ``make_flow``), not imports: tests/storage is not a
package, and must not become one (it would shadow the real ``storage``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from dialogues import (
    AnswerRecord,
    Audience,
    ConversationState,
    Effect,
    Flow,
    Reply,
    Step,
    StepType,
    TurnResult,
)
from storage import (
    ConversationRecord,
    ConversationStore,
    Database,
    OutboxStore,
    PeopleStore,
    PersonRecord,
    PlanStore,
    ProfileStore,
)


@dataclass
class Stores:
    db: Database
    people: PeopleStore
    profile: ProfileStore
    plan: PlanStore
    conversations: ConversationStore
    outbox: OutboxStore

    def start(self, person: PersonRecord, flow: Flow | None = None) -> ConversationRecord:
        """Start a conversation of ``flow`` (default: a one-step flow) for ``person``."""
        with self.conversations.turn(person.id) as turn:
            flow = flow or build_flow()
            return turn.start_conversation(flow, ConversationState(step="q1"))

    def turn(
        self,
        person: PersonRecord,
        *effects: Effect,
        answers: Sequence[AnswerRecord] = (),
        replies: Sequence[Reply] = (),
        flow_id: str | None = None,
    ) -> list[int]:
        """One whole turn on the person's open conversation; returns the outbox ids."""
        with self.conversations.turn(person.id) as turn:
            record = turn.open_conversation(flow_id)
            assert record is not None, "no open conversation"
            result = TurnResult(
                state=record.state,
                effects=list(effects),
                answers=list(answers),
                replies=list(replies),
            )
            return turn.save(record, result, platform="console", address=person.handle)


def build_flow(flow_id: str = "this_is_me", version: int = 1, extra: str = "") -> Flow:
    """A minimal flow; its source (and so its content hash) changes with ``extra``."""
    source = f"id: {flow_id}\nversion: {version}\ntitle: T\nsteps: []\n{extra}"
    return Flow(
        id=flow_id,
        version=version,
        title=f"{flow_id} v{version}",
        audience=Audience.STUDENT,
        steps=(Step(id="q1", type=StepType.TEXT, ask="?"),),
        source=source,
        content_hash=hashlib.sha256(source.encode()).hexdigest(),
    )


@pytest.fixture(name="make_flow")
def make_flow_fixture() -> Callable[..., Flow]:
    """``make_flow(flow_id="this_is_me", version=1, extra="")``."""
    return build_flow


@pytest.fixture
def stores(database: Database) -> Stores:
    return Stores(
        db=database,
        people=PeopleStore(database),
        profile=ProfileStore(database),
        plan=PlanStore(database),
        conversations=ConversationStore(database),
        outbox=OutboxStore(database),
    )


@pytest.fixture
def student(stores: Stores) -> PersonRecord:
    return stores.people.add("Ana López", "student", timezone="Europe/Madrid")
