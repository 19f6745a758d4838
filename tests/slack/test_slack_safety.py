"""Safety escalation end to end through the fake Slack: a student types a safety phrase at night
(quiet hours); the counselor gets it in their DM with the app at once, never in a channel; the
student sees the support message before the next question; Slack's retry of the event alerts
nobody twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import SafetyStore
from tests.slack.harness import JSONDict, Running, Student, slack_bot
from tests.slack.test_slack_conversations import assert_all_accepted, join

SUPPORT = "You are not alone. Call the school crisis line: 555-0100."


def _quiet_now() -> str:
    now = datetime.now(UTC)
    return f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"


async def test_the_counselor_gets_it_in_their_dm_never_a_channel(tmp_path: Path) -> None:
    async with slack_bot(tmp_path, quiet_hours=_quiet_now(), safety_message=SUPPORT) as bot:
        fake, app = bot.fake, bot.app
        fake.add_user("U0CORA", email="cora@school.example", real_name="Cora Diaz")
        fake.add_channel("C0STAFF", "staff-room", members=["U0CORA"])
        cora = app.people.add("Cora Diaz", "counselor", email="cora@school.example")
        # her latest chat is the staff channel: a safety notice must still go to her DM
        app.people.link_identity(cora.id, "slack", None, "U0CORA", "C0STAFF")
        sam = bot.add_student("Sam Lee", "U0SAM")
        await join(bot, sam)

        await bot.say(sam, "I get bullied")
        support, question = await _helped_once(bot, sam)
        assert_all_accepted(fake)

    assert support["text"] == SUPPORT
    assert bot.step_of(sam, question) == "strengths"
    [notice] = fake.messages(fake.dm_channel("U0CORA"))
    assert "Safety alert: Sam Lee" in notice["text"]
    assert "I get bullied" in notice["text"]
    assert fake.messages("C0STAFF") == []
    posted_to = {channel for _, channel in fake.post_log}
    assert posted_to == {fake.dm_channel("U0SAM"), fake.dm_channel("U0CORA")}
    [alert] = SafetyStore(app.db).alerts()
    assert alert.categories == ("bullying",) and alert.reached


async def test_a_first_message_is_watched_though_it_answers_nothing(tmp_path: Path) -> None:
    """Sam joins by writing (his Slack email is on the roster): his first message starts "This
    is me" and answers nothing, but its words still reach the counselor, once."""
    async with slack_bot(tmp_path, safety_message=SUPPORT) as bot:
        fake, app = bot.fake, bot.app
        fake.add_user("U0CORA", email="cora@school.example", real_name="Cora Diaz")
        cora = app.people.add("Cora Diaz", "counselor", email="cora@school.example")
        app.people.link_identity(cora.id, "slack", None, "U0CORA", fake.dm_channel("U0CORA"))
        sam = bot.add_student("Sam Lee", "U0SAM")

        await bot.say(sam, "hi, I want to kill myself")
        support, question = await _helped_once(bot, sam)

    assert support["text"] == SUPPORT
    assert bot.step_of(sam, question) == "preferred_name"
    [notice] = fake.messages(fake.dm_channel("U0CORA"))
    assert "Safety alert: Sam Lee" in notice["text"]
    assert "hi, I want to kill myself" in notice["text"]
    [alert] = SafetyStore(app.db).alerts()
    assert alert.student == "sam-lee" and alert.categories == ("self_harm",) and alert.reached


async def test_words_after_a_slash_command_are_watched(tmp_path: Path) -> None:
    async with slack_bot(tmp_path, safety_message=SUPPORT) as bot:
        fake, app = bot.fake, bot.app
        fake.add_user("U0CORA", email="cora@school.example", real_name="Cora Diaz")
        cora = app.people.add("Cora Diaz", "counselor", email="cora@school.example")
        app.people.link_identity(cora.id, "slack", None, "U0CORA", fake.dm_channel("U0CORA"))
        sam = bot.add_student("Sam Lee", "U0SAM")
        await join(bot, sam)

        response = await bot.command(sam, "help I want to die")
        assert response.status == 200
        await bot.wait_for(lambda: len(fake.messages(fake.dm_channel("U0CORA"))) == 1)
        await bot.settle()

    support, menu = [r.payload for r in fake.responses]
    assert support["text"] == SUPPORT and support["response_type"] == "ephemeral"
    assert "/profilebot checkin" in menu["text"]
    [notice] = fake.messages(fake.dm_channel("U0CORA"))
    assert "I want to die" in notice["text"]
    assert len(SafetyStore(app.db).alerts()) == 1


async def _helped_once(bot: Running, sam: Student) -> tuple[JSONDict, JSONDict]:
    """The support message and the next question Sam gets, after Cora's one notice; Slack's
    retry of the same event then changes nothing."""
    fake = bot.fake
    support = await bot.next_message(sam)
    question = await bot.next_question(sam)
    await bot.wait_for(lambda: len(fake.messages(fake.dm_channel("U0CORA"))) == 1)
    retried = await bot.driver.resend(bot.driver.sent[-1], retry_num=1)
    assert retried.status == 200
    await bot.settle()
    assert await bot.rest(sam) == []
    return support, question
