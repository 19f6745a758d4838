"""Safety escalation end to end through the fake Telegram: a student types a safety phrase in the
middle of the night (quiet hours); the counselor gets the student and what they wrote in their
private chat with the bot at once, the student sees the support message before the next
question, nothing goes to any other chat, and a redelivered update alerts nobody twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.frontdesk import desk_for
from bot.intake import sorry_text
from storage import SafetyStore
from tests.faults import inject
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import make_app, running_bot, sqlite_url

SUPPORT = "You are not alone. Call the school crisis line: 555-0100."


def _quiet_now() -> str:
    """Quiet hours from an hour ago to an hour ahead (UTC): whatever the time, it is night."""
    now = datetime.now(UTC)
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"


async def test_the_counselor_gets_it_in_private_at_night_and_the_student_sees_help(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), quiet_hours=_quiet_now(), safety_message=SUPPORT)
        cora_user = fake.user(2001, "Cora", started=True)
        cora = app.people.add("Cora Diaz", "teacher", also=("counselor",))
        app.people.link_identity(cora.id, "telegram", None, str(cora_user.id), "-1001000000002")
        async with running_bot(fake, app, webhook=True) as bot:
            ana = bot.add_student("Ana Diaz", 1001)
            await bot.join(ana)
            await bot.rest(ana)

            update = fake.push_text(ana.user, "Honestly? I don't want to live anymore")
            support = await bot.next_message(ana)
            question = await bot.next_question(ana)
            await fake.wait_until(lambda: len(fake.sent(2001)) == 1, 10)
            await bot.settle()
            assert await fake.post_to_webhook(update) == 200  # Telegram sends it again
            await bot.settle()
            assert await bot.rest(ana) == []
        assert fake.errors == []

    assert support["text"] == SUPPORT
    assert bot.step_of(ana, question) == "strengths"
    [notice] = fake.sent(2001)
    assert notice["text"].startswith("Safety alert: Ana Diaz")
    assert "Honestly? I don't want to live anymore" in notice["text"]
    assert {chat for chat, _ in fake.delivered()} == {1001, 2001}  # no group, no channel
    assert [u for u, _ in fake.webhook_deliveries].count(update["update_id"]) == 2
    [alert] = SafetyStore(app.db).alerts()
    assert alert.reached and [n.handle for n in alert.notified] == [cora.handle]


async def test_a_message_whose_turn_keeps_failing_still_reaches_the_counselor_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the turn parks the message: its safety alert goes out all the same, the student
    sees the support message before the apology, and the admin's replay alerts nobody again."""
    words = "I want to kill myself"
    inject(words, patch=monkeypatch.setattr)
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), safety_message=SUPPORT)
        cora_user = fake.user(2001, "Cora", started=True)
        cora = app.people.add("Cora Diaz", "counselor")
        app.people.link_identity(cora.id, "telegram", None, str(cora_user.id), "2001")
        async with running_bot(fake, app, webhook=True) as bot:
            ana = bot.add_student("Ana Diaz", 1001)
            await bot.join(ana)
            await bot.rest(ana)

            update = fake.push_text(ana.user, words)
            support = await bot.next_message(ana)
            apology = await bot.next_message(ana)
            await fake.wait_until(lambda: len(fake.sent(2001)) == 1, 10)
            assert await fake.post_to_webhook(update) == 200  # Telegram sends it again
            await bot.settle()
            [parked] = app.failed.parked()

            monkeypatch.undo()  # the bug is fixed; the admin replays the message
            before = ana.seen
            desk_for(app, "telegram").replay(parked.id)
            question = await bot.next_question(ana)
            await bot.rest(ana)
            replayed = bot.messages(ana)[before:]
        assert fake.errors == []

    assert support["text"] == SUPPORT
    assert apology["text"] == sorry_text("/")
    assert bot.step_of(ana, question) == "strengths"  # the replay answered the question
    assert SUPPORT not in [m["text"] for m in replayed]
    [notice] = fake.sent(2001)
    assert notice["text"].startswith("Safety alert: Ana Diaz") and words in notice["text"]
    [alert] = SafetyStore(app.db).alerts()
    assert alert.reached and alert.step == "preferred_name"
