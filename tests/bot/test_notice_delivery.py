"""A notice on its way: cut into outbox rows (text parts, then a row per file) that come back
exactly as queued, to the person's chat or to the one a command came from; and how each
platform renders a part (Telegram HTML within its limit, Slack blocks within theirs, the
terminal's plain text)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.console import render_notice as console_notice
from bot.adapters.slack_render import MAX_BLOCKS, MAX_SECTION_CHARS, render_notice
from bot.adapters.telegram_render import MAX_MESSAGE_CHARS, notice_caption, notice_messages
from bot.app import App
from bot.clock import FrozenClock
from bot.notice_delivery import PART_CHARS, NoticeQueued, notice_of, notice_parts, queue_notice
from bot.notices import FileKind, Line, Notice, NoticeFile, Section, Span, Style
from storage import NO_ACCOUNT, Chat, Database
from tests.flows_app import app_with_flows

NOW = datetime(2026, 6, 5, 13, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n\x00\xff" * 100
PDF = b"%PDF-1.7\n\x00\xfe%%EOF"


@pytest.fixture
def app(database: Database, tmp_path: Path) -> App:
    return app_with_flows(database, tmp_path / "flows", FrozenClock(NOW), {})


def _long_notice(lines: int, width: int = 90) -> Notice:
    body = tuple(Line.of(f"{n:04d} " + "x" * width, bullet=True) for n in range(lines))
    return Notice(
        "Week",
        (Section("Everyone", body), Section("After", (Line.of("end"),))),
        (
            NoticeFile(FileKind.PHOTO, "chart.png", "image/png", PNG),
            NoticeFile(FileKind.DOCUMENT, "card.pdf", "application/pdf", PDF, "card"),
        ),
    )


def test_a_notice_is_cut_into_text_parts_then_one_part_per_file() -> None:
    notice = _long_notice(100)
    parts = notice_parts(notice)
    texts, files = parts[:-2], parts[-2:]
    assert len(texts) > 1 and all(not p.files for p in texts)
    assert [p.files for p in files] == [(notice.files[0],), (notice.files[1],)]
    assert texts[0].title == "Week" and all(p.title == "" for p in texts[1:])
    assert all(len(p.plain_text()) <= PART_CHARS for p in texts)
    lines = [line for p in texts for s in p.sections for line in s.lines]
    assert lines == [line for s in notice.sections for line in s.lines]


def test_a_short_notice_is_one_text_part() -> None:
    notice = Notice("Hi", (Section(None, (Line.of("one"),)),))
    assert notice_parts(notice) == [notice]


def test_rows_hold_the_parts_and_their_bytes_exactly_and_go_to_the_persons_chat(
    app: App,
) -> None:
    ana = app.people.add("Ana Diaz", "advisor")
    app.people.link_identity(ana.id, "telegram", None, "1001", "1001")
    notice = _long_notice(60)
    queued = queue_notice(app, ana.id, notice)
    assert queued.chat == Chat("telegram", "1001") and queued.reason is None
    rows = [app.outbox.get(i) for i in queued.outbox_ids]
    assert all(r.proactive and r.address == "1001" and r.status == "pending" for r in rows)
    assert [notice_of(r) for r in rows] == notice_parts(notice)
    assert notice_of(rows[-1]) == Notice("", (), (notice.files[1],))
    with pytest.raises(ValueError, match="notice"):
        _ = rows[0].reply


def test_an_answer_goes_where_the_command_came_from_and_nobody_else_is_guessed(
    app: App,
) -> None:
    bo = app.people.add("Bo Chen", "student")
    assert queue_notice(app, bo.id, _long_notice(1)) == NoticeQueued(None, (), NO_ACCOUNT)
    assert app.outbox.for_person(bo.id) == []
    answer = queue_notice(app, bo.id, Notice("Card"), to=Chat("slack", "D0BO"), proactive=False)
    [row] = [app.outbox.get(i) for i in answer.outbox_ids]
    assert (row.platform, row.address, row.proactive) == ("slack", "D0BO", False)
    with pytest.raises(ValueError, match="response_url"):
        queue_notice(app, bo.id, _long_notice(1), to=Chat("slack", "https://hooks.test/1"))


def test_telegram_html_escapes_every_span_and_stays_within_the_limit() -> None:
    notice = Notice(
        "A <b> & B",
        (
            Section(
                "Urgent",
                (
                    Line.of(Span("<script>", Style.BOLD), " & ", Span("x<y", Style.CODE)),
                    Line.of(Span("*bold*", Style.ITALIC), bullet=True),
                ),
            ),
        ),
    )
    [html] = notice_messages(notice)
    assert html == (
        "<b>A &lt;b&gt; &amp; B</b>\n\n<b>Urgent</b>\n"
        "<b>&lt;script&gt;</b> &amp; <code>x&lt;y</code>\n• <i>*bold*</i>"
    )
    long = notice_messages(_long_notice(200))
    assert len(long) > 1
    assert all(len(m.replace("&amp;", "&")) <= MAX_MESSAGE_CHARS for m in long)
    huge = Notice("T", (Section(None, (Line.of("y" * 9000),)),))
    title, *cut = notice_messages(huge)
    assert title == "<b>T</b>" and [len(m) for m in cut] == [4096, 4096, 9000 - 2 * 4096]
    assert notice_caption("<" * 2000).endswith("…") and "<" not in notice_caption("<")


def test_slack_blocks_are_inert_and_within_the_limits() -> None:
    [message] = render_notice(
        Notice("T & <t>", (Section("H_1", (Line.of("<!channel> ", Span("*x*", Style.BOLD)),)),))
    )
    header, section = message.blocks
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "T &amp; &lt;t&gt;", "emoji": True},
    }
    text = section["text"]["text"]
    assert text.startswith("*H\u200b_\u200b1*\n&lt;!channel&gt; *")
    assert "*x*" not in text and "\u200b*\u200bx\u200b*\u200b" in text
    many = render_notice(
        Notice("T", tuple(Section(f"s{n}", (Line.of("z" * 100),)) for n in range(120)))
    )
    assert len(many) == 3 and all(len(m.blocks) <= MAX_BLOCKS for m in many)
    wide = render_notice(Notice("", (Section(None, (Line.of("w&" * 3500),)),)))
    texts = [b["text"]["text"] for m in wide for b in m.blocks]
    assert all(len(t) <= MAX_SECTION_CHARS for t in texts)
    assert "".join(texts).replace("\n", "") == "w&amp;" * 3500  # no escape cut in two


def test_the_terminal_shows_plain_text_and_names_the_files() -> None:
    notice = _long_notice(1)
    assert console_notice(notice).splitlines()[-2:] == ["[file: chart.png]", "[file: card.pdf]"]
    assert console_notice(notice).startswith(notice.plain_text())
