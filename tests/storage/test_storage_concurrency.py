"""Turns on one person never lose each other's updates, on SQLite and on PostgreSQL.

Eight workers, each with its own Database (its own engine and pool, as separate processes
would have), run 50 turns each on the same person's one conversation. Every turn reads the
state, appends a counter and saves. Without the turn lock (BEGIN IMMEDIATE on SQLite,
SELECT ... FOR UPDATE on PostgreSQL) two turns read the same version and one append is lost.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from dialogues import AnswerRecord, Reply, SetProfile, TurnResult
from storage import ConversationStore, Database, PersonRecord
from storage._tables import answer, inbound_event, outbox

if TYPE_CHECKING:
    from conftest import Stores

WORKERS = 8
TURNS = 50


def _work(url: str, person_id: int, worker: int) -> None:
    db = Database(url)
    store = ConversationStore(db)
    try:
        for i in range(TURNS):
            with store.turn(person_id) as turn:
                assert turn.claim_event(f"w{worker}:{i}")
                record = turn.open_conversation()
                assert record is not None
                state = record.state
                state.answers.setdefault("counter", []).append(f"{worker}-{i}")
                result = TurnResult(
                    state=state,
                    replies=[Reply(f"got {i}")],
                    answers=[AnswerRecord("q1", None, i, str(i))],
                    effects=[SetProfile(("last",), i, False, False, f"q1#{worker}")],
                )
                turn.save(record, result, platform="console", address="a")
    finally:
        db.dispose()


def test_concurrent_turns_on_one_conversation_lose_nothing(
    stores: Stores, student: PersonRecord
) -> None:
    conversation = stores.start(student)
    url = stores.db.url.render_as_string(hide_password=False)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_work, url, student.id, w) for w in range(WORKERS)]
        for future in futures:
            future.result()  # re-raises a worker's failure

    total = WORKERS * TURNS
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None and record.id == conversation.id
        counter = record.state.answers["counter"]
        assert record.version == total
    assert len(counter) == total
    assert sorted(counter) == sorted(f"{w}-{i}" for w in range(WORKERS) for i in range(TURNS))
    for w in range(WORKERS):  # each worker's own turns stay in order
        mine = [c for c in counter if c.startswith(f"{w}-")]
        assert mine == [f"{w}-{i}" for i in range(TURNS)]
    with stores.db.begin() as conn:
        for table in (answer, outbox, inbound_event):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == total
    assert len(stores.profile.history(student.id, "last")) == total
