"""The turn service on SQLite and PostgreSQL: pinned versions, de-duplication, concurrency,
and a property test that no accepted answer is ever lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.service import ConversationService
from dialogues import FlowRegistry, Inbound
from storage import Database, OutboxStore, PeopleStore, ProfileStore, UnknownRecordError

FLOW_V1 = """
id: club
version: 1
title: Club
steps:
  - id: name
    ask: What should we call you?
    type: text
    save: profile.preferred_name
  - id: sport
    ask: Favourite sport?
    type: choice
    options: [football, swimming]
    save: profile.sport
"""

FLOW_V2 = """
id: club
version: 2
title: Club
steps:
  - id: name
    ask: Your name, please?
    type: text
    save: profile.preferred_name
  - id: colour
    ask: Favourite colour?
    type: text
    save: profile.colour
"""


def _service(db: Database, flows_dir: Path | None = None) -> ConversationService:
    return ConversationService(db, FlowRegistry([flows_dir] if flows_dir else []))


def _answers(db: Database) -> list[tuple[str, str]]:
    with db.begin() as conn:
        rows = conn.execute(text("SELECT step_id, status FROM answer ORDER BY id")).all()
    return [(r[0], r[1]) for r in rows]


def test_a_conversation_stays_pinned_to_the_flow_it_started_with(
    database: Database, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club.yaml").write_text(FLOW_V1)
    service = _service(database, flows)
    sam = PeopleStore(database).ensure_student("sam")
    opened = service.open(sam.id, service.registry.get("club"), platform="test", address="sam")
    assert opened.replies[-1].text == "What should we call you?"
    service.handle(sam.id, Inbound.of_text("Sam"), platform="test", address="sam")

    (flows / "club.yaml").write_text(FLOW_V2)  # the file changes while Sam is mid-way
    restarted = _service(database, flows)  # a new process loads the new file
    outcome = restarted.handle(sam.id, Inbound.of_text("swimming"), platform="test", address="sam")
    assert outcome.finished
    assert ProfileStore(database).current(sam.id) == {"preferred_name": "Sam", "sport": "swimming"}

    ana = PeopleStore(database).ensure_student("ana")
    fresh = restarted.open(ana.id, restarted.registry.get("club"), platform="test", address="ana")
    assert fresh.replies[-1].text == "Your name, please?"  # new conversations use the new file


def test_a_step_marked_sensitive_after_a_conversation_began_needs_consent_there_too(
    database: Database, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club.yaml").write_text(FLOW_V1)
    service = _service(database, flows)
    sam = PeopleStore(database).ensure_student("sam")
    service.open(sam.id, service.registry.get("club"), platform="test", address="sam")
    # the school marks the sport question sensitive while Sam is mid-way (his pinned copy isn't)
    (flows / "club.yaml").write_text(
        FLOW_V1.replace("    type: choice\n", "    type: choice\n    sensitive: ppra\n")
    )
    restarted = _service(database, flows)
    outcome = restarted.handle(sam.id, Inbound.of_text("Sam"), platform="test", address="sam")
    assert outcome.finished  # no consent on record: the sport question is not asked
    assert ProfileStore(database).current(sam.id) == {"preferred_name": "Sam"}


def test_a_repeated_event_is_applied_once(database: Database) -> None:
    service = _service(database)
    sam = PeopleStore(database).ensure_student("sam")
    service.open(sam.id, service.registry.get("this_is_me"), platform="test", address="sam")
    first = service.handle(
        sam.id, Inbound.of_text("Sam"), platform="test", address="sam", event_key="tg:1"
    )
    again = service.handle(
        sam.id, Inbound.of_text("Sam"), platform="test", address="sam", event_key="tg:1"
    )
    assert first.accepted == ("preferred_name", "Sam") and not first.duplicate
    assert again.duplicate and again.replies == [] and again.outbox_ids == []
    assert _answers(database) == [("preferred_name", "answered")]


def test_a_turn_marks_what_was_delivered_before_it_sent_or_nothing(database: Database) -> None:
    service = _service(database)
    outbox = OutboxStore(database)
    sam = PeopleStore(database).ensure_student("sam")
    flow = service.registry.get("this_is_me")
    opened = service.open(sam.id, flow, platform="test", address="sam")
    with pytest.raises(UnknownRecordError):  # one unknown id: the whole turn rolls back
        service.handle(
            sam.id,
            Inbound.of_text("Sam"),
            platform="test",
            address="sam",
            sent=[*opened.outbox_ids, 10**9],
        )
    assert [m.id for m in outbox.pending(platform="test")] == opened.outbox_ids
    assert _answers(database) == []

    answered = service.handle(
        sam.id, Inbound.of_text("Sam"), platform="test", address="sam", sent=opened.outbox_ids
    )
    assert [m.id for m in outbox.pending(platform="test")] == answered.outbox_ids
    assert {outbox.get(i).status for i in opened.outbox_ids} == {"sent"}


def _many_questions(count: int) -> str:
    steps = "".join(
        f"  - id: q{i}\n    ask: 'Question {i}?'\n    type: text\n    save: profile.f{i}\n"
        for i in range(count)
    )
    return (
        f"id: many\nversion: 1\ntitle: Many\noutro: 'Bye, {{{{ answers.q0 }}}}!'\nsteps:\n{steps}"
    )


def test_a_long_conversation_goes_back_to_its_first_answer_and_keeps_every_one(
    database: Database, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "many.yaml").write_text(_many_questions(50))
    service = _service(database, flows)
    sam = PeopleStore(database).ensure_student("sam")
    service.open(sam.id, service.registry.get("many"), platform="test", address="sam")

    def say(text: str) -> list[str]:
        outcome = service.handle(sam.id, Inbound.of_text(text), platform="test", address="sam")
        return [r.text for r in outcome.replies]

    for i in range(45):
        say(f"a{i}")
    shown = [say("/back")[0].split("\n\n")[0] for _ in range(45)]
    assert shown[-1] == "Let's change that. Your answer was: a0"
    assert "first question" in say("/back")[0]
    for i in range(50):
        replies = say(f"b{i}")
    assert replies == ["Bye, b0!"]
    profile = ProfileStore(database).current(sam.id)
    assert profile == {f"f{i}": f"b{i}" for i in range(50)}


NOTES = """
id: notes
version: 1
title: Notes
steps:
  - id: note
    ask: Anything else?
    type: text
    save: profile.note
    next:
      - goto: note
"""


def test_concurrent_turns_of_one_conversation_apply_one_after_the_other(
    database: Database, tmp_path: Path
) -> None:
    (tmp_path / "notes.yaml").write_text(NOTES)
    service = _service(database, tmp_path)
    sam = PeopleStore(database).ensure_student("sam")
    service.open(sam.id, service.registry.get("notes"), platform="test", address="sam")
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for n in range(10):
                service.handle(
                    sam.id,
                    Inbound.of_text("/help" if n % 2 else f"note {worker}.{n}"),
                    platform="test",
                    address="sam",
                    event_key=f"w{worker}:{n}",
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.begin() as conn:
        version = conn.execute(text("SELECT version FROM conversation")).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM inbound_event")).scalar_one()
    assert (version, events) == (1 + 40, 40)  # the start plus every turn, none lost
    assert len(_answers(database)) == 20
    notes = [f.value for f in ProfileStore(database).history(sam.id, "note")]
    assert sorted(notes) == sorted(f"note {w}.{n}" for w in range(4) for n in range(0, 10, 2))


_inputs = st.lists(
    st.one_of(
        st.sampled_from(["Sam", "1, 3", "2", "yes", "done", "/back", "/skip", "/pause", "/help"]),
        st.text(max_size=30),
        st.just("x" * 10_000),
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs=_inputs)
@example(inputs=["Sam"] * 8 + ["2", "2"] + ["Sam"] * 6)  # a message after the flow's end
def test_no_accepted_answer_is_ever_lost(sqlite_database: Database, inputs: list[str]) -> None:
    service = _service(sqlite_database)
    person = PeopleStore(sqlite_database).add(f"Student {len(inputs)}", "student")
    service.open(person.id, service.registry.get("this_is_me"), platform="test", address="x")
    accepted = []
    for n, line in enumerate(inputs):
        outcome = service.handle(
            person.id,
            Inbound.of_text(line),
            platform="test",
            address="x",
            event_key=f"{person.id}:{n}",
        )
        assert outcome.replies or outcome.finished
        if outcome.accepted:
            accepted.append(outcome.accepted[0])
        if outcome.finished:  # no conversation is open now: the front desk answers what follows
            inputs = inputs[: n + 1]
            break
    with sqlite_database.begin() as conn:
        stored = conn.execute(
            text(
                "SELECT a.step_id FROM answer a JOIN conversation c ON c.id = a.conversation_id "
                "WHERE c.person_id = :p AND a.status = 'answered' ORDER BY a.id"
            ),
            {"p": person.id},
        ).scalars()
        assert list(stored) == accepted
    pending = OutboxStore(sqlite_database).pending(platform="test", address="x", limit=10_000)
    assert len(pending) >= len(inputs)  # every message got at least one reply
