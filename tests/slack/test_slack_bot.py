"""The Slack adapter's reliability cases end to end: signatures, redelivery, acks within 3 s,
ignored messages, joining, slash commands, stale buttons, markup, 429s and pacing."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.adapters.slack import SlackBot
from bot.app import App
from bot.errors import ConfigError
from bot.frontdesk import STALE_TEXT, FrontDesk
from storage._tables import answer
from tests.slack.fake_web_api import FakeSlackAPI, RateLimit
from tests.slack.harness import (
    Running,
    Student,
    action_id_of,
    button_labels,
    make_app,
    running_bot,
    slack_bot,
    sqlite_url,
)
from tests.telegram.test_telegram_conversations import ECHO_FLOW

JSONDict = dict[str, Any]


def _answers(app: App) -> int:
    with app.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(answer)).scalar_one())


async def _first_question(bot: Running, student: Student) -> JSONDict:
    await bot.say(student, "hi")
    return await bot.next_question(student)


async def test_requests_without_a_valid_signature_get_401_and_change_nothing(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        for signing in ("wrong", "none", "stale"):
            response = await bot.say(sam, "hi", signing=signing)
            assert response.status == 401, signing
            response = await bot.command(sam, "profile", signing=signing)
            assert response.status == 401, signing
        await bot.settle()
        assert app.people.by_identity("slack", "T0PROFILE", "U0SAM") is None
        assert app.outbox.for_person(sam.person_id) == []
        assert fake.calls_to("chat.postMessage") == []

        verified = await bot.driver.url_verification("the-challenge")
        assert verified.status == 200 and "the-challenge" in verified.body
        assert (await bot.driver.ssl_check()).status == 200


async def test_a_redelivered_event_is_applied_once(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        app = bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        await _first_question(bot, sam)
        await bot.say(sam, "Sammy")
        await bot.next_question(sam)
        answered = bot.driver.sent[-1]
        for retry in (1, 2, 3):
            response = await bot.driver.resend(answered, retry_num=retry)
            assert response.status == 200
        await bot.settle()
        assert _answers(app) == 1
        texts = [m["text"] for m in bot.messages(sam)]
        assert len(texts) == len(set(texts))  # nothing asked or answered twice


async def test_every_request_is_acked_within_3_seconds_even_when_the_turn_is_slow(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        app = bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        q = await _first_question(bot, sam)
        release = threading.Event()
        slow = FrontDesk.receive

        def stuck(desk: FrontDesk, *args: Any, **kwargs: Any) -> Any:
            release.wait(10)  # the database is slow today
            return slow(desk, *args, **kwargs)

        FrontDesk.receive = stuck  # type: ignore[method-assign]
        try:
            typed = await bot.say(sam, "Sammy")
            commanded = await bot.command(sam, "profile")
        finally:
            FrontDesk.receive = slow  # type: ignore[method-assign]
            release.set()
        assert typed.status == 200 and typed.elapsed < 3.0
        assert commanded.status == 200 and commanded.elapsed < 3.0
        strengths = await bot.next_question(sam)  # the slow turn finished after its ack
        assert bot.step_of(sam, strengths) == "strengths"
        assert bot.step_of(sam, q) == "preferred_name"
        assert app.profiles.current(sam.person_id)["preferred_name"] == "Sammy"


async def test_a_turn_that_fails_before_the_ack_is_retried_by_slack_and_applied_once(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        app = bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        await _first_question(bot, sam)
        real = FrontDesk.receive
        failures = []

        def broken(desk: FrontDesk, *args: Any, **kwargs: Any) -> Any:
            failures.append(1)
            raise OSError("disk full")

        FrontDesk.receive = broken  # type: ignore[method-assign]
        try:
            failed = await bot.say(sam, "Sammy")
        finally:
            FrontDesk.receive = real  # type: ignore[method-assign]
        assert failed.status == 500 and failures == [1]  # Slack will deliver it again
        retried = await bot.driver.resend(bot.driver.sent[-1], retry_num=1)
        assert retried.status == 200
        again = await bot.driver.resend(bot.driver.sent[-1], retry_num=2)
        assert again.status == 200
        await bot.next_question(sam)
        await bot.settle()
        assert _answers(app) == 1
        assert app.profiles.current(sam.person_id)["preferred_name"] == "Sammy"


async def test_bot_messages_edits_and_joins_are_ignored(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        q = await _first_question(bot, sam)
        driver = bot.driver
        before = len(fake.calls_to("chat.postMessage"))
        events = [
            driver.bot_message_event("an integration says hi", channel=sam.channel),
            driver.message_event("U0BOT", "my own message", bot_id="B0BOT"),
            driver.message_event("U0OTHER", "another app", bot_id="B0OTHER"),
            driver.message_changed_event(
                "U0SAM", ts=q["ts"], old_text="hi", new_text="Sammy", channel=sam.channel
            ),
            driver.channel_join_event("U0SAM", channel="C0GENERAL"),
            driver.message_event(
                "U0SAM", "in a channel", channel="C0GENERAL", channel_type="channel"
            ),
        ]
        for event in events:
            response = await driver.send_event(event)
            assert response.status == 200
        await bot.settle()
        assert len(fake.calls_to("chat.postMessage")) == before
        assert _answers(app) == 0
        assert bot.step_of(sam, q) == "preferred_name"


async def test_a_stranger_is_refused_politely_and_links_with_an_invite_code(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        fake.add_user("U0EVE", email="eve@elsewhere.example", real_name="Eve")
        eve_dm = fake.dm_channel("U0EVE")
        for text in ("hi", "what is my profile?"):
            await bot.say("U0EVE", text)
        await bot.command("U0EVE", "profile")
        await bot.settle()
        dm = [m["text"] for m in fake.messages(eve_dm)]
        assert len(dm) == 2 and all("I don't know who you are yet" in t for t in dm)
        assert "/profilebot link" in dm[0]
        [refusal] = [r.payload for r in fake.responses]
        assert "I don't know who you are yet" in refusal["text"]
        assert refusal["response_type"] == "ephemeral"

        person = app.people.add("Eve Adams", "student")  # no email on the roster
        code = app.invites.issue(person.id).code
        response = await bot.command("U0EVE", f"link {code}")
        assert response.status == 200
        eve = Student("U0EVE", eve_dm, person.id, code, seen=2)
        first = await bot.next_question(eve)
        assert bot.step_of(eve, first) == "preferred_name"
        linked = app.people.by_identity("slack", "T0PROFILE", "U0EVE")
        assert linked is not None and linked.id == person.id


async def test_slash_commands_answer_only_the_caller_and_start_conversations_in_the_dm(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        app.profiles.set(sam.person_id, "preferred_name", "Sammy")
        for text in ("profile", "goals", "help", "", "frobnicate"):
            response = await bot.command(sam, text, channel_id="C0GENERAL")
            assert response.status == 200 and response.acked_in_time
        await bot.settle()
        profile, goals, *helps = [r.payload for r in fake.responses]
        assert all(r.payload["response_type"] == "ephemeral" for r in fake.responses)
        assert profile["text"].startswith("🪪 Sammy's learner profile")
        assert "no goals yet" in goals["text"] and "/profilebot newgoal" in goals["text"]
        assert len(helps) == 3 and all("/profilebot checkin" in h["text"] for h in helps)
        assert bot.messages(sam) == []  # nothing in the DM, nothing in #general

        await bot.command(sam, "newgoal", channel_id="C0GENERAL")
        first = await bot.next_question(sam)
        assert bot.step_of(sam, first) == "goal1_title"


async def test_old_and_forged_buttons_change_nothing(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        ana = bot.add_student("Ana Diaz", "U0ANA")
        await _first_question(bot, sam)
        q = await bot.type(sam, "Sam")
        strengths = q
        q = await bot.pick(sam, q, "Being creative")
        interests = q
        await _first_question(bot, ana)
        answers = _answers(app)

        # the old question was closed: its stored copy has no buttons left...
        old = bot.message(sam, strengths["ts"])
        assert not [b for b in old["blocks"] if b["type"] == "actions"]
        # ...but a client that still shows them can send the click
        submit = action_id_of(strengths, "Submit")
        await bot.driver.click_button(sam.user, strengths, submit)
        # Ana forges a click on Sam's current question from her own DM
        pick = action_id_of(interests, "Submit")
        forged = bot.driver.block_actions_payload(
            ana.user,
            [bot.driver.button_action(pick, block_id="pb-controls")],
            message=interests,
            channel=ana.channel,
        )
        await bot.driver.block_actions(forged)
        await bot.settle()
        assert _answers(app) == answers
        stale = [e for e in fake.ephemerals if e["text"] == STALE_TEXT]
        assert {e["user"] for e in stale} == {"U0SAM", "U0ANA"}
        assert bot.step_of(sam, bot.message(sam, interests["ts"])) == "interests"
        assert app.profiles.current(sam.person_id)["strengths"] == ["creative"]


async def test_markup_in_an_answer_shows_literally_and_pings_nobody(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        app = bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        q = await _first_question(bot, sam)
        name = "<!channel> <@U0ANA> & co"  # typed literally: Slack escapes it
        await bot.say(sam, "&lt;!channel&gt; &lt;@U0ANA&gt; &amp; co")
        strengths = await bot.next_question(sam)
        await bot.settle()
        closed = bot.message(sam, q["ts"])
        echoed = bot.message(sam, strengths["ts"])
        for message in (closed, echoed):
            raw = repr(message["blocks"]) + message["text"]
            assert "<!channel>" not in raw and "<@U0ANA>" not in raw
        assert "&lt;!channel&gt; &lt;@U0ANA&gt; &amp; co" in echoed["text"]
        assert (
            closed["blocks"][-1]["text"]["text"] == "→ *&lt;!channel&gt; &lt;@U0ANA&gt; &amp; co*"
        )
    assert app.profiles.current(sam.person_id)["preferred_name"] == name


async def test_a_10000_character_answer_is_split_into_messages_slack_accepts(
    tmp_path: Path,
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "echo.yaml").write_text(ECHO_FLOW)
    story = " ".join(["Once <upon> a time & then"] * 400)  # ~10,000 characters
    async with slack_bot(tmp_path, profilebot_flows_dir=flows) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        q = await _first_question(bot, sam)
        assert bot.step_of(sam, q) == "story"
        await bot.say(sam, story.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
        confirm = await bot.next_question(sam)
        parts = bot.messages(sam)[-3:]
        assert parts[-1] == confirm
        assert len(bot.messages(sam)) >= 4  # the question, then the echo in 3+ parts
        for message in bot.messages(sam):
            assert len(message["text"]) <= 4000 and len(message["blocks"]) <= 50
        assert button_labels(confirm) == ["Yes", "No"]  # buttons on the last part only
        assert all(button_labels(m) == [] for m in bot.messages(sam)[:-1])
        await bot.click(sam, confirm, "Yes")
        await bot.settle()
    assert fake.errors == []
    assert app.profiles.current(sam.person_id) == {"story": story}


async def test_a_429_waits_retry_after_then_resends_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        fake.fail_next("chat.postMessage", 429, retry_after=1)
        started = fake.clock()
        await bot.say(sam, "hi")
        await bot.next_question(sam, timeout=15)
        await bot.settle()
    sent = fake.calls_to("chat.postMessage")
    assert len(sent) == 3  # refused once, then the intro and the question
    assert fake.errors[0].status == 429 and len(fake.errors) == 1
    assert fake.post_log[0][0] - started >= 1.0
    texts = [m["text"] for m in fake.messages(sam.channel)]
    assert len(texts) == len(set(texts)) == 2
    assert [r.status for r in app.outbox.for_person(sam.person_id)] == ["sent", "sent"]


async def test_posting_is_paced_at_one_message_per_second_per_channel(tmp_path: Path) -> None:
    async with FakeSlackAPI() as fake:
        fake.enforce_rate_limits = True  # over Slack's limit, the fake answers 429
        fake.per_channel_limit = RateLimit(2, 2.0)  # ~1/s; Slack lets short bursts through
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app, pacer=None) as bot:  # the real default pacing
            students = [bot.add_student(f"Student {n}", f"U0S{n}") for n in range(3)]
            for student in students:
                bot.start_flow(student, "weekly_checkin")
            await bot.settle(timeout=20)
        assert fake.errors == []
        assert max(fake.max_rates(0.99).values()) == 1
        for student in students:
            assert len(fake.messages(student.channel)) == 2


async def test_an_unreachable_student_stops_getting_messages(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        await _first_question(bot, sam)
        fake.fail_next("chat.postMessage", "account_inactive", count=5)
        await bot.say(sam, "Sammy")
        await bot.settle()
    statuses = [r.status for r in app.outbox.for_person(sam.person_id)]
    assert statuses[-1] == "dead"
    assert not app.people.is_reachable("slack", "T0PROFILE", "U0SAM")


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"slack_bot_token": None}, "SLACK_BOT_TOKEN"),
        ({"slack_signing_secret": None}, "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET"),
    ],
)
async def test_setting_problems_are_clear_at_construction(
    tmp_path: Path, settings: dict[str, Any], missing: str
) -> None:
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), **settings)
        with pytest.raises(ConfigError, match=re.escape(missing)):
            SlackBot(app)


async def test_garbage_requests_get_a_clear_answer_and_the_bot_carries_on(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        driver = bot.driver
        odd_events = [
            {"type": "message"},  # no user, no channel
            {"type": "message", "channel_type": "im", "user": "U0SAM", "text": 5},
            {"type": "message", "channel_type": "im", "user": "U0SAM", "subtype": "huh"},
            {"type": "app_home_opened"},
        ]
        for event in odd_events:
            assert (await driver.send_event(event)).status == 200
        assert (await driver.post("not json", "application/json")).status == 400
        form = "application/x-www-form-urlencoded"
        assert (await driver.post("payload=not json", form)).status == 400
        click = {"type": "block_actions", "actions": [{"action_id": "pb:pick:abc:1"}]}
        assert (await driver.block_actions({**click, "user": "U0SAM"})).status == 200
        await bot.settle()
        assert _answers(app) == 0 and fake.calls_to("chat.postMessage") == []
        q = await _first_question(bot, sam)  # and then a real student is answered
        assert bot.step_of(sam, q) == "preferred_name"
