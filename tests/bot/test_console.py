"""The console adapter: numbered widgets, outbox delivery, and no markup injection."""

from __future__ import annotations

import io

import pytest

from bot.adapters.console import ConsoleChat, render_reply
from bot.notice_delivery import notice_payloads
from bot.notices import FileKind, Line, Notice, NoticeFile, Section
from bot.service import ConversationService
from dialogues import FlowRegistry, Option, Reply, ReplyKind, Scale
from storage import Database, OutboxStore, PeopleStore


def test_replies_render_as_numbered_options_and_hints() -> None:
    choice = Reply("Pick", ReplyKind.MULTI_CHOICE, "s", (Option("a", "Art"), Option("m", "Music")))
    assert render_reply(choice).splitlines()[:3] == ["Pick", "  1. Art", "  2. Music"]
    scale = Reply("Noise?", ReplyKind.SCALE, "n", scale=Scale(1, 5, ((1, "silent"), (5, "lively"))))
    assert "A number from 1 to 5: 1 = silent, 5 = lively" in render_reply(scale)
    assert "(yes / no)" in render_reply(Reply("Ok?", ReplyKind.YES_NO, "y"))
    assert "/skip" in render_reply(Reply("Why?", ReplyKind.TEXT, "w", optional=True))


def test_interactive_output_shows_student_text_literally(sqlite_database: Database) -> None:
    service = ConversationService(sqlite_database, FlowRegistry())
    person = PeopleStore(sqlite_database).ensure_student("sam")
    answers = iter(["[red]Sam[/red] <!channel>"])
    out = io.StringIO()
    chat = ConsoleChat(
        service,
        OutboxStore(sqlite_database),
        read_line=lambda: next(answers, None),
        out=out,
        interactive=True,
    )
    outcome = chat.run(person, service.registry.get("this_is_me"))
    assert not outcome.finished
    assert "Nice to meet you, [red]Sam[/red] <!channel>!" in out.getvalue()
    assert OutboxStore(sqlite_database).pending(platform="console") == []  # all delivered


class _InterruptedOutput(io.StringIO):
    """A terminal where Ctrl-C lands while one particular message is being printed."""

    def __init__(self, interrupt_at: str) -> None:
        super().__init__()
        self._interrupt_at = interrupt_at

    def write(self, text: str) -> int:
        if self._interrupt_at in text:
            raise KeyboardInterrupt
        return super().write(text)


def test_a_message_not_printed_when_the_chat_stopped_prints_on_the_next_run(
    sqlite_database: Database,
) -> None:
    service = ConversationService(sqlite_database, FlowRegistry())
    outbox = OutboxStore(sqlite_database)
    person = PeopleStore(sqlite_database).ensure_student("sam")
    flow = service.registry.get("this_is_me")
    answers = iter(["Sam"])
    first = _InterruptedOutput("Nice to meet you")
    chat = ConsoleChat(service, outbox, read_line=lambda: next(answers, None), out=first)
    with pytest.raises(KeyboardInterrupt):
        chat.run(person, flow)
    assert "Sam" not in first.getvalue()

    again = io.StringIO()
    ConsoleChat(service, outbox, read_line=lambda: None, out=again).run(person, None)
    reprinted, _ = again.getvalue().split("Welcome back!", 1)
    assert "Nice to meet you, Sam!" in reprinted
    assert "What do you like to be called?" not in reprinted  # printed before: not repeated
    assert outbox.pending(platform="console") == []


def test_a_notice_waiting_for_the_terminal_prints_as_plain_text_with_its_files_named(
    sqlite_database: Database,
) -> None:
    service = ConversationService(sqlite_database, FlowRegistry())
    outbox = OutboxStore(sqlite_database)
    person = PeopleStore(sqlite_database).ensure_student("sam")
    notice = Notice(
        "Your card <b>",
        (Section("Goals", (Line.of("read more & *often*", bullet=True),)),),
        (NoticeFile(FileKind.DOCUMENT, "card.pdf", "application/pdf", b"%PDF-1.7"),),
    )
    outbox.queue_payloads(
        notice_payloads(notice), person_id=person.id, platform="console", address="sam"
    )
    out = io.StringIO()
    ConsoleChat(service, outbox, read_line=lambda: None, out=out).run(
        person, service.registry.get("this_is_me")
    )
    assert "Your card <b>\n\nGoals\n• read more & *often*\n\n[file: card.pdf]" in out.getvalue()
    assert outbox.pending(platform="console") == []
