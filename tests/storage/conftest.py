"""Helpers for the storage contract tests: the stores on one database, flows, turns.

Handed to tests as fixtures (``stores``, ``make_flow``), not imports: tests/storage is not a
package, and must not become one (it would shadow the real ``storage``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

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

    @contextmanager
    def statements(self) -> Iterator[list[str]]:
        """Every statement the driver runs meanwhile, as the database receives it.

        Counted at the driver, so the hot path's plain SQL (unseen by SQLAlchemy's events)
        and Core's statements alike, in transactions begun inside the block. SQLite's trace
        also shows BEGIN and COMMIT (with values inlined); psycopg's own BEGIN and COMMIT are
        not statements run on a cursor.
        """
        seen: list[str] = []
        sqlite = self.db.dialect == "sqlite"
        counting = _counting_cursor(seen)

        def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            if sqlite:
                dbapi_connection.set_trace_callback(seen.append)
            else:
                dbapi_connection.cursor_factory = counting

        def checkin(dbapi_connection: Any, _record: Any) -> None:
            if dbapi_connection is None:  # invalidated
                return
            if sqlite:
                dbapi_connection.set_trace_callback(None)
            else:
                dbapi_connection.cursor_factory = psycopg.Cursor

        event.listen(self.db.engine, "checkout", checkout)
        event.listen(self.db.engine, "checkin", checkin)
        try:
            yield seen
        finally:
            event.remove(self.db.engine, "checkout", checkout)
            event.remove(self.db.engine, "checkin", checkin)


def _counting_cursor(seen: list[str]) -> type[psycopg.Cursor[Any]]:
    class CountingCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
            seen.append(str(query))
            return super().execute(query, params, **options)

    return CountingCursor


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
