"""The terminal adapter: typed lines in, numbered options out.

With standard input not a terminal it reads one answer per line and prints every bot
message, so a conversation can be scripted. Replies travel through the outbox like on any
platform: the turn queues them, this adapter prints them, and its next turn marks them sent
(in that turn's own transaction; the last ones when the chat stops). The chat
platforms' menu commands work here too: /profile and /goals show a card, /checkin and
/newgoal start (or resume) their flow.

A line whose turn keeps failing is parked like a chat message (``bot.intake``): the student
sees the apology and carries on. While the database is locked by another process or away,
a turn is tried again for a while (``BUSY_WAITS``) before the command gives up in one line.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Final, TextIO, TypeVar

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from dialogues import Flow, Inbound, Reply, ReplyKind
from storage import (
    DatabaseUnavailable,
    FailedInboundRecord,
    Letter,
    OutboxStore,
    PersonRecord,
    is_transient,
)

from ..app import App
from ..frontdesk import NO_GOALS_HINT, STARTERS, desk_command
from ..intake import Intake, sorry_text
from ..notice_delivery import notice_of
from ..notices import Notice
from ..service import ConversationService, TurnOutcome

__all__ = ["PLATFORM", "ConsoleChat", "render_notice", "render_reply", "replay_console"]

PLATFORM = "console"
T = TypeVar("T")

BUSY_WAITS: Final = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Seconds between tries of a turn while the database is locked by another process or away;
after the last, the command gives up with one line (nothing of the turn was applied)."""


def render_notice(notice: Notice) -> str:
    """A notice as terminal text: its plain text, then a "[file: name]" line per file (the
    terminal shows no pictures; ``summary --chart`` and ``profile card`` write files)."""
    lines = [notice.plain_text()] if notice.title or notice.sections else []
    lines.extend(f"[file: {file.filename}]" for file in notice.files)
    return "\n".join(lines)


def render_reply(reply: Reply) -> str:
    """A reply as terminal text: the question, then its options numbered."""
    lines = [reply.text]
    if reply.kind in (ReplyKind.CHOICE, ReplyKind.MULTI_CHOICE):
        lines.extend(f"  {n}. {o.label}" for n, o in enumerate(reply.options, start=1))
        if reply.kind is ReplyKind.MULTI_CHOICE:
            hint = "Pick all that fit: type their numbers, like 1, 3"
            lines.append(f"  ({hint}{' — or write your own' if reply.allow_other else ''})")
        elif reply.allow_other:
            lines.append("  (Type a number, or write your own answer)")
    elif reply.kind is ReplyKind.SCALE and reply.scale is not None:
        ends = ", ".join(f"{k} = {v}" for k, v in reply.scale.labels)
        lines.append(
            f"  (A number from {reply.scale.min} to {reply.scale.max}{': ' + ends if ends else ''})"
        )
    elif reply.kind is ReplyKind.YES_NO:
        lines.append("  (yes / no)")
    elif reply.kind is ReplyKind.LIST and reply.is_question:
        lines.append("  (One per line; type done when you have finished)")
    elif reply.kind is ReplyKind.FILE:
        lines.append("  (Paste a link to your work)")
    if reply.optional and reply.is_question:
        lines.append("  (Optional — type /skip to skip)")
    return "\n".join(lines)


class ConsoleChat:
    """One person's conversation in the terminal."""

    def __init__(
        self,
        service: ConversationService,
        outbox: OutboxStore,
        *,
        read_line: Callable[[], str | None],
        out: TextIO | None = None,
        interactive: bool = False,
        app: App | None = None,
    ) -> None:
        """``app`` gives the cards: /profile, /goals and the one a finished flow ends with."""
        self._service = service
        self._outbox = outbox
        self._app = app
        self._read_line = read_line
        self._out = out or sys.stdout
        self._interactive = interactive
        self._printed: list[int] = []  # outbox ids printed, not yet marked sent
        self._rich = Console(
            file=self._out, highlight=False, markup=False, emoji=False, style="cyan"
        )
        self._intake = None if app is None else Intake(app.failed, apology=sorry_text("/"))

    def run(
        self,
        person: PersonRecord,
        flow: Flow | None,
        *,
        default_flow: Flow | None = None,
        fresh: bool = False,
    ) -> TurnOutcome:
        """Talk until the flow ends or input closes; the conversation stays resumable.

        Without ``flow`` the person's open conversation resumes, else ``default_flow`` starts.
        A flow that ends is followed by its card.

        Each turn prints the replies it queued; the next turn marks them sent in its own
        transaction, and what is printed when the chat stops is marked then. A message is
        marked only once printed: one queued but not printed (Ctrl-C, a crash) prints on
        the next run.
        """
        self._printed = []
        try:
            outcome = _patiently(
                functools.partial(
                    self._service.open,
                    person.id,
                    flow,
                    platform=PLATFORM,
                    address=person.handle,
                    fresh=fresh,
                    default_flow=default_flow,
                )
            )
            _patiently(functools.partial(self._deliver_waiting, person))
            while not outcome.finished and outcome.conversation_id is not None:
                line = self._read_line()
                if line is None:
                    break
                taken = _patiently(functools.partial(self._take_safely, person, line))
                if taken is not None:
                    outcome = taken
                    self._print(taken)
        finally:
            if self._printed:
                _patiently(functools.partial(self._mark_printed))
        if outcome.finished:
            self._card_after(person, outcome)
        return outcome

    def say(self, text: str, *, card: bool = False) -> None:
        """Print one bot message: styled in a terminal, plain when piped (scripts read it)."""
        if self._interactive:
            body = Text(text)  # a Text, never markup: student answers cannot inject styles
            self._rich.print(Panel(body, expand=False, border_style="green") if card else body)
            self._rich.print()
            return
        self._out.write(text + "\n\n")
        self._out.flush()

    def _take_safely(self, person: PersonRecord, line: str) -> TurnOutcome | None:
        """One typed line: a menu command, or a message for the conversation.

        None when the line only showed a card, or its turn kept failing and it was parked
        (the apology is printed): either way the conversation did not move.
        """
        inbound = Inbound.of_text(line)
        command, _ = desk_command(inbound)
        card = None if command in STARTERS else self._menu_card(command, person)
        if card is not None:
            self.say(card, card=True)
            return None
        if self._intake is None:
            return self._take(person, inbound, command)
        outcome = self._intake.take(
            functools.partial(self._take, person, inbound, command),
            letter=lambda: Letter(
                PLATFORM,
                inbound,
                {"platform": PLATFORM, "user_id": person.handle, "address": person.handle},
                person_id=person.id,
            ),
            reply_to=person.handle,
            watch=self._watch_parked,
        )
        if outcome is None:
            self._mark_printed()
            self._deliver_waiting(person)
        return outcome

    def _watch_parked(self, letter: Letter) -> None:
        """The safety watch of a line set aside (``bot.intake``)."""
        assert letter.person_id is not None  # a terminal line is always someone's
        address = str(letter.visitor["address"])
        self._service.watch_parked(
            letter.person_id, letter.inbound, platform=PLATFORM, address=address, key=None
        )

    def _take(self, person: PersonRecord, inbound: Inbound, command: str | None) -> TurnOutcome:
        """The line's turn; it marks sent what the last turn printed."""
        sent, self._printed = self._printed, []
        try:
            if command in STARTERS:  # a session ends with its flow: "finish this first" can't work
                flow = self._service.registry.get(STARTERS[command])
                return self._service.open(
                    person.id,
                    flow,
                    platform=PLATFORM,
                    address=person.handle,
                    sent=sent,
                    typed=inbound,
                )
            return self._service.handle(
                person.id, inbound, platform=PLATFORM, address=person.handle, sent=sent
            )
        except BaseException:
            self._printed = sent + self._printed  # not marked: the turn rolled back
            raise

    def _menu_card(self, command: str | None, person: PersonRecord) -> str | None:
        if self._app is None:
            return None
        if command == "profile":
            return self._app.profile_card(person)
        if command == "goals":
            return self._app.plan_card(person, no_goals_hint=NO_GOALS_HINT)
        return None

    def _card_after(self, person: PersonRecord, outcome: TurnOutcome) -> None:
        """The card of what the finished flow filled in: of the flow as pinned when the
        conversation started, so it shows even after its file is gone (a --file flow
        resumed without it, a deleted school flow)."""
        if self._app is None or outcome.flow is None:
            return
        card = self._app.card_after(outcome.flow, person)
        if card:
            self.say(card, card=True)

    def _print(self, outcome: TurnOutcome) -> None:
        for reply, message_id in zip(outcome.replies, outcome.outbox_ids, strict=True):
            self.say(render_reply(reply))
            self._printed.append(message_id)

    def _mark_printed(self) -> None:
        if self._printed:
            self._outbox.mark_sent_many([(message_id, None) for message_id in self._printed])
            self._printed = []

    def _deliver_waiting(self, person: PersonRecord) -> None:
        """Print every pending message to this chat, oldest first: the first turn's replies
        and whatever an earlier run left unprinted."""
        while waiting := self._outbox.pending(platform=PLATFORM, address=person.handle):
            for message in waiting:
                notice = notice_of(message)
                if notice is not None:
                    self.say(render_notice(notice), card=True)
                else:
                    self.say(render_reply(Reply.from_json(message.payload)))
                self._printed.append(message.id)
            self._outbox.mark_sent_many([(message_id, None) for message_id in self._printed])
            self._printed = []


def replay_console(app: App, failed_id: int) -> tuple[FailedInboundRecord, TurnOutcome]:
    """Replay a parked terminal line; its replies print at the person's next ``chat``. It was
    watched for safety phrases when it was parked, so not again."""
    intake = Intake(app.failed, apology=sorry_text("/"))

    def turn(letter: Letter) -> TurnOutcome:
        if letter.person_id is None:
            raise ValueError("a terminal line is always someone's")
        inbound = letter.inbound
        command, _ = desk_command(inbound)
        address = str(letter.visitor["address"])
        if command in STARTERS:
            flow = app.registry.get(STARTERS[command])
            return app.service.open(letter.person_id, flow, platform=PLATFORM, address=address)
        return app.service.handle(
            letter.person_id, inbound, platform=PLATFORM, address=address, watch=False
        )

    return intake.replay(failed_id, turn)


def _patiently(call: Callable[[], T]) -> T:
    """``call()``, tried again while the database is locked or away (see ``BUSY_WAITS``)."""
    for wait in BUSY_WAITS:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            time.sleep(wait)
    try:
        return call()
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise DatabaseUnavailable(
            "the database stayed locked or unreachable; nothing of your last answer was "
            "saved, so run the same command again to carry on"
        ) from None
