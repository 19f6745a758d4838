"""Where a chat message's turn runs: one that keeps failing is set aside, never retried forever.

A turn can fail for two kinds of reasons. A transient one (the database locked by another
process, or unreachable) passes by itself: the failure goes back to the adapter, which tries
the message again later (Telegram fetches it again, Slack delivers it again, the terminal
waits and retries) and nothing is counted against the message. Any other failure (a bug, a
constraint, a payload nobody foresaw) fails the same way every time: the turn is tried
``MAX_ATTEMPTS`` times in all, then the message is parked (``storage.FailedInboundStore``),
its sender gets a short apology, and the platform's event counts as handled, so the student
and everyone after them carry on. ``profilebot inbound failed`` lists parked messages and
``profilebot inbound retry ID`` replays one (``Intake.replay``).

The safety watch runs inside the turn, so a turn that keeps failing would take its alert down
with it: a parked message is watched again in a transaction of its own (``take``'s ``watch``)
before it is parked, its support message queued just before the apology.

Only the error's class is logged above DEBUG: an exception's text can quote SQL parameters,
and those can be what a student wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, TypeVar

from dialogues import Reply
from storage import FailedInboundRecord, FailedInboundStore, Letter, is_transient

from .errors import ReplayError

__all__ = ["MAX_ATTEMPTS", "Intake", "sorry_text"]

log = logging.getLogger("profilebot.intake")

T = TypeVar("T")

MAX_ATTEMPTS: Final = 3
"""Tries a turn gets before its message is parked (transient failures do not count)."""


def sorry_text(prefix: str) -> str:
    """The apology for a parked message, with commands written the way this platform takes them."""
    return (
        "Sorry, something went wrong on my side with that message, so I've set it aside for "
        "the school's team to look at. You can carry on: answer again, or send "
        f"{prefix}help to see what I can do."
    )


class Intake:
    """Runs turns for one platform, parking the messages whose turn keeps failing."""

    def __init__(
        self,
        failed: FailedInboundStore,
        *,
        apology: str,
        attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if attempts < 1:
            raise ValueError("Intake needs at least one attempt per message")
        self._failed = failed
        self._apology = apology
        self._attempts = attempts

    def take(
        self,
        turn: Callable[[], T],
        *,
        letter: Callable[[], Letter],
        reply_to: str,
        watch: Callable[[Letter], object] | None = None,
    ) -> T | None:
        """``turn()``'s result, or None when it kept failing and its message was parked.

        ``letter`` describes the message (built only to park it); ``reply_to`` is where the
        apology goes; ``watch`` runs the safety watch on the message about to be parked. A
        transient failure is raised at once, for the caller to try the message again later.
        """
        error = ""
        for attempt in range(1, self._attempts + 1):
            try:
                return turn()
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = type(exc).__name__
                log.warning(
                    "turn failed (attempt %d of %d): %s",
                    attempt,
                    self._attempts,
                    error,
                )
                log.debug("the failed turn's traceback", exc_info=True)
        setting_aside = letter()
        if watch is not None:
            _watch_parked(watch, setting_aside)
        parked = self._failed.park(
            setting_aside,
            error=error,
            attempts=self._attempts,
            apology=[Reply(self._apology)],
            address=reply_to,
        )
        log.error(
            "parked %s message %s after %d failed attempts (%s); "
            "`profilebot inbound failed` lists it",
            parked.letter.platform,
            parked.id,
            self._attempts,
            error,
        )
        return None

    def replay(self, failed_id: int, turn: Callable[[Letter], T]) -> tuple[FailedInboundRecord, T]:
        """Run a parked message's turn again, once: on success it is marked replayed.

        On failure it stays parked with one more attempt counted, and ``ReplayError`` says
        why (transient failures are raised as they are: nothing was tried).
        """
        record = self._failed.get(failed_id)
        if record.status != "parked":
            raise ReplayError(f"message {failed_id} was replayed already")
        try:
            result = turn(record.letter)
        except Exception as exc:
            if is_transient(exc):
                raise
            self._failed.failed_again(failed_id, type(exc).__name__)
            log.debug("the replayed turn's traceback", exc_info=True)
            raise ReplayError(
                f"message {failed_id} failed again ({type(exc).__name__}); it stays parked"
            ) from None
        self._failed.replayed(failed_id)
        return record, result


def _watch_parked(watch: Callable[[Letter], object], letter: Letter) -> None:
    """Run the safety watch on a message about to be parked; should it fail too, the message
    is parked all the same."""
    try:
        watch(letter)
    except Exception as exc:
        if is_transient(exc):
            raise
        log.error("the safety watch of a message being parked failed: %s", type(exc).__name__)
        log.debug("the failed safety watch's traceback", exc_info=True)
