"""Notices (a summary, a card: not dialogue turns) through the outbox to the fake Slack, end to
end with a real Bolt app: Block Kit with every student string inert, a chart and a PDF through
Slack's upload flow (``files.getUploadURLExternal``, the bytes, ``files.completeUploadExternal``;
never the retired ``files.upload``), and a rate limit between the parts that sends nothing
twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError

from bot.adapters.slack_render import inert_mrkdwn
from bot.notice_delivery import queue_notice
from bot.notices import FileKind, Line, Notice, NoticeFile, Section
from tests.slack.fake_web_api import FakeSlackAPI
from tests.slack.harness import Running, Student, slack_bot
from tests.telegram.test_telegram_notices import HOSTILE, PDF, PNG, summary_notice


async def _joined(bot: Running) -> Student:
    ana = bot.add_student("Ana Diaz", "U0ANA")
    await bot.say(ana, "hello")
    await bot.settle()
    ana.seen = len(bot.messages(ana))
    return ana


def _mrkdwn(message: dict[str, object]) -> str:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")


async def test_a_summary_arrives_as_blocks_then_its_chart_through_the_upload_flow(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        ana = await _joined(bot)
        queued = queue_notice(bot.app, ana.person_id, summary_notice())
        assert queued.chat is not None and len(queued.outbox_ids) == 2
        bot.bot.worker.wake()
        message = await bot.next_message(ana)
        await bot.wait_for(lambda: len(bot.fake.files) == 1)
        await bot.settle()
    fake = bot.fake
    assert fake.errors == []

    header = message["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"] == "Week 49 &amp; your advisees"
    body = _mrkdwn(message)
    assert "*Needs you*" in body and "• *Ana Diaz*: wants to meet" in body
    assert "<" not in body and "&lt;!channel&gt;" in body and "&amp; co" in body
    assert "*bold*" not in body  # the student's stars are set apart: shown, not bold
    assert "Plain " + inert_mrkdwn(HOSTILE) in body
    assert "&lt;script&gt;" in message["text"] and "<" not in message["text"]

    assert [m for m, *_ in fake.calls if m.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    [shared] = fake.files
    assert shared["data"] == PNG and shared["filename"] == "progress.png"
    assert shared["channel"] == ana.channel
    assert shared["initial_comment"] == "Goals &lt;b&gt;&amp;&lt;/b&gt;"
    [asked] = fake.calls_to("files.getUploadURLExternal")
    assert (asked["filename"], int(asked["length"])) == ("progress.png", len(PNG))


async def test_a_pdf_is_uploaded_and_a_rate_limit_resends_only_that_part(tmp_path: Path) -> None:
    card = Notice(
        "Your card",
        (Section(None, (Line.of("Here it is."),)),),
        (NoticeFile(FileKind.DOCUMENT, "card.pdf", "application/pdf", PDF),),
    )
    async with slack_bot(tmp_path) as bot:
        ana = await _joined(bot)
        bot.fake.fail_next("files.completeUploadExternal", 429)
        queue_notice(bot.app, ana.person_id, card, proactive=False)
        bot.bot.worker.wake()
        await bot.next_message(ana)
        await bot.wait_for(lambda: len(bot.fake.files) == 1)
        await bot.settle()
    fake = bot.fake
    assert [e.error for e in fake.errors] == ["ratelimited"]
    assert [m["text"] for m in fake.messages(ana.channel)].count("Your card\n\nHere it is.") == 1
    assert len(fake.calls_to("files.getUploadURLExternal")) == 2
    [shared] = fake.files
    assert (shared["data"], shared["filename"], shared["title"]) == (PDF, "card.pdf", "card.pdf")


async def test_the_fake_refuses_the_retired_upload_method() -> None:
    async with FakeSlackAPI() as fake:
        with pytest.raises(SlackApiError) as refused:
            await fake.make_client().api_call("files.upload", params={"filename": "x.png"})
    assert refused.value.response["error"] == "method_deprecated"
