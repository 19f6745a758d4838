"""Parked inbound messages (the dead letters) on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from dialogues import Attachment, Inbound, Reply
from storage import (
    Account,
    ConversationStore,
    Database,
    FailedInboundStore,
    InviteStore,
    Letter,
    OutboxStore,
    PeopleStore,
    UnknownRecordError,
)

VISITOR = {"platform": "telegram", "user_id": "1001", "address": "1001"}


def _letter(**changes: object) -> Letter:
    values: dict[str, object] = {
        "platform": "telegram",
        "inbound": Inbound.of_text("my answer"),
        "visitor": VISITOR,
        "event_key": "telegram:7:42",
        **changes,
    }
    return Letter(**values)  # type: ignore[arg-type]


def test_parking_claims_the_event_queues_the_apology_and_keeps_the_message(
    database: Database,
) -> None:
    people, failed = PeopleStore(database), FailedInboundStore(database)
    sam = people.add("Sam Lee", "student")
    code = InviteStore(database).issue(sam.id).code
    InviteStore(database).redeem(
        code, platform="telegram", workspace=None, user_id="1001", chat_id="1001"
    )
    parked = failed.park(
        _letter(account=Account("telegram", "", "1001")),
        error="RuntimeError",
        attempts=3,
        apology=[Reply("Sorry!")],
        address="1001",
    )
    assert parked.person_handle == "sam-lee"
    assert parked.letter.person_id == sam.id
    assert parked.letter.inbound == Inbound.of_text("my answer")
    assert dict(parked.letter.visitor) == VISITOR
    assert (parked.error, parked.attempts, parked.status) == ("RuntimeError", 3, "parked")
    # the platform's redelivery is now a duplicate
    with ConversationStore(database).turn(sam.id) as turn:
        assert not turn.claim_event("telegram:7:42")
    [apology] = OutboxStore(database).pending(platform="telegram", address="1001")
    assert apology.reply.text == "Sorry!" and apology.person_id == sam.id
    assert failed.parked() == [parked]
    assert "my answer" not in str(parked.to_json())


def test_a_message_from_nobody_known_is_parked_too(database: Database) -> None:
    failed = FailedInboundStore(database)
    attachment = Attachment("photo", file_id="F1", caption="look")
    parked = failed.park(
        _letter(
            inbound=Inbound.of_file(attachment),
            event_key=None,
            question_ref=17,
            account=Account("telegram", "", "999"),
        ),
        error="KeyError",
        attempts=3,
    )
    assert parked.person_handle is None and parked.letter.person_id is None
    assert parked.letter.inbound.attachment == attachment
    assert parked.letter.question_ref == 17
    assert OutboxStore(database).pending() == []  # no address: no apology


def test_a_replay_is_recorded_and_a_failed_one_counts_an_attempt(database: Database) -> None:
    failed = FailedInboundStore(database)
    first = failed.park(_letter(), error="RuntimeError", attempts=3)
    second = failed.park(_letter(event_key="telegram:7:43"), error="KeyError", attempts=3)
    failed.failed_again(first.id, "ValueError")
    again = failed.get(first.id)
    assert (again.error, again.attempts, again.status) == ("ValueError", 4, "parked")
    failed.replayed(second.id)
    assert [r.id for r in failed.parked()] == [first.id]
    replayed = failed.get(second.id)
    assert replayed.status == "replayed" and replayed.replayed_at is not None
    assert [r.id for r in failed.parked(include_replayed=True)] == [first.id, second.id]


def test_unknown_ids_are_one_clear_error(database: Database) -> None:
    failed = FailedInboundStore(database)
    with pytest.raises(UnknownRecordError, match="no parked message with id 5"):
        failed.get(5)
    with pytest.raises(UnknownRecordError, match="no parked message with id 5"):
        failed.replayed(5)
