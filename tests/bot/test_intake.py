"""The intake: transient failures go back to the adapter; failures that repeat are parked."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.errors import ReplayError
from bot.intake import MAX_ATTEMPTS, Intake
from dialogues import Inbound
from storage import Database, DatabaseUnavailable, FailedInboundStore, Letter, OutboxStore


def _letter() -> Letter:
    visitor = {"platform": "slack", "user_id": "U1", "address": "D1"}
    return Letter("slack", Inbound.of_text("hello"), visitor, event_key="slack:T:Ev1")


def _turn(*outcomes: BaseException | str) -> tuple[Callable[[], str], list[int]]:
    """A turn that raises or returns each outcome in order (the last one from then on)."""
    calls: list[int] = []

    def turn() -> str:
        calls.append(1)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return turn, calls


def test_a_turn_that_keeps_failing_is_parked_with_an_apology(sqlite_database: Database) -> None:
    failed = FailedInboundStore(sqlite_database)
    intake = Intake(failed, apology="Sorry!")
    turn, calls = _turn(KeyError("boom"))
    assert intake.take(turn, letter=_letter, reply_to="D1") is None
    assert len(calls) == MAX_ATTEMPTS
    [parked] = failed.parked()
    assert (parked.error, parked.attempts, parked.letter.event_key) == (
        "KeyError",
        MAX_ATTEMPTS,
        "slack:T:Ev1",
    )
    [apology] = OutboxStore(sqlite_database).pending(platform="slack", address="D1")
    assert apology.reply.text == "Sorry!"


def test_a_turn_that_fails_once_then_works_is_not_parked(sqlite_database: Database) -> None:
    failed = FailedInboundStore(sqlite_database)
    turn, calls = _turn(RuntimeError("flaky"), "done")
    assert Intake(failed, apology="Sorry!").take(turn, letter=_letter, reply_to="D1") == "done"
    assert len(calls) == 2
    assert failed.parked() == []


def test_a_transient_failure_is_raised_at_once_and_counts_for_nothing(
    sqlite_database: Database,
) -> None:
    failed = FailedInboundStore(sqlite_database)
    turn, calls = _turn(DatabaseUnavailable("locked"))
    with pytest.raises(DatabaseUnavailable):
        Intake(failed, apology="Sorry!").take(turn, letter=_letter, reply_to="D1")
    assert len(calls) == 1
    assert failed.parked() == []
    assert OutboxStore(sqlite_database).pending() == []


def test_a_replay_runs_once_and_a_failed_replay_keeps_it_parked(
    sqlite_database: Database,
) -> None:
    failed = FailedInboundStore(sqlite_database)
    intake = Intake(failed, apology="Sorry!")
    parked = failed.park(_letter(), error="KeyError", attempts=MAX_ATTEMPTS)

    def broken(letter: Letter) -> str:
        raise ValueError(letter.inbound.text)

    with pytest.raises(ReplayError, match=r"failed again \(ValueError\); it stays parked"):
        intake.replay(parked.id, broken)
    assert failed.get(parked.id).attempts == MAX_ATTEMPTS + 1

    def locked(letter: Letter) -> str:
        raise DatabaseUnavailable("locked")

    with pytest.raises(DatabaseUnavailable):
        intake.replay(parked.id, locked)
    assert failed.get(parked.id).attempts == MAX_ATTEMPTS + 1  # nothing was tried

    record, result = intake.replay(parked.id, lambda letter: letter.inbound.text)
    assert (record.id, result) == (parked.id, "hello")
    assert failed.parked() == []
    with pytest.raises(ReplayError, match="replayed already"):
        intake.replay(parked.id, lambda letter: "again")
