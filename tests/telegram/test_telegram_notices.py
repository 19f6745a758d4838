"""Notices (a summary, a card: not dialogue turns) through the outbox to the fake Telegram, end
to end with a real PTB bot: the text as HTML with every student string shown as typed, a chart
with ``sendPhoto``, a PDF with ``sendDocument``, and a rate limit between the two parts that
sends nothing twice."""

from __future__ import annotations

from pathlib import Path

from bot.notice_delivery import queue_notice
from bot.notices import FileKind, Line, Notice, NoticeFile, Section, Span, Style
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import make_app, running_bot, sqlite_url

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n" + b"0123456789" * 300 + b"\n%%EOF\n"
HOSTILE = "<script>alert(1)</script> *bold* <!channel> & co"


def summary_notice() -> Notice:
    return Notice(
        title="Week 49 & your advisees",
        sections=(
            Section(
                "Needs you",
                (
                    Line.of(Span("Ana Diaz", Style.BOLD), ": wants to meet", bullet=True),
                    Line.of("Note: ", Span(HOSTILE, Style.ITALIC), bullet=True),
                ),
            ),
            Section(None, (Line.of("Plain ", HOSTILE),)),
        ),
        files=(NoticeFile(FileKind.PHOTO, "progress.png", "image/png", PNG, "Goals <b>&</b>"),),
    )


async def test_a_summary_arrives_as_html_then_its_chart_as_a_photo(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            ana = bot.add_student("Ana Diaz", 1001)
            await bot.join(ana)
            await bot.rest(ana)
            queued = queue_notice(app, ana.person_id, summary_notice())
            assert queued.chat is not None and len(queued.outbox_ids) == 2
            bot.bot.worker.wake()
            text, photo = [await bot.next_message(ana), await bot.next_message(ana)]
            await bot.settle()
        assert fake.errors == []

    lines = text["text"].split("\n")
    assert lines[0] == "Week 49 & your advisees"
    assert "• Note: " + HOSTILE in lines
    assert lines[-1] == "Plain " + HOSTILE
    styled = {
        (e["type"], text["text"][e["offset"] : e["offset"] + e["length"]]) for e in text["entities"]
    }
    assert ("bold", "Week 49 & your advisees") in styled
    assert ("bold", "Needs you") in styled and ("bold", "Ana Diaz") in styled
    assert ("italic", HOSTILE) in styled
    assert photo["caption"] == "Goals <b>&</b>" and "text" not in photo
    [(chat, kind, upload)] = fake.uploaded
    assert (chat, kind, upload.data, upload.filename) == (1001, "photo", PNG, "progress.png")
    assert [r.status for r in app.outbox.for_person(ana.person_id)][-2:] == ["sent", "sent"]


async def test_a_pdf_goes_as_a_document_and_a_rate_limit_resends_only_that_part(
    tmp_path: Path,
) -> None:
    card = Notice(
        "Your card",
        (Section(None, (Line.of("Here it is."),)),),
        (NoticeFile(FileKind.DOCUMENT, "card.pdf", "application/pdf", PDF, "Ana & <you>"),),
    )
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            ana = bot.add_student("Ana Diaz", 1001)
            await bot.join(ana)
            await bot.rest(ana)
            fake.fail_next("sendDocument", 429, retry_after=1)
            queue_notice(app, ana.person_id, card, proactive=False)
            bot.bot.worker.wake()
            await bot.next_message(ana)
            document = await bot.next_message(ana)
            await bot.settle()
        assert [e.status for e in fake.errors] == [429]

    assert len(fake.calls_to("sendDocument")) == 2
    assert [m.get("text") for m in fake.sent(1001)].count("Your card\n\nHere it is.") == 1
    assert document["document"]["file_name"] == "card.pdf"
    assert document["caption"] == "Ana & <you>"
    [(_, kind, upload)] = fake.uploaded
    assert (kind, upload.data) == ("document", PDF)
