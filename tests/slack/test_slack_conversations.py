"""Whole conversations through Slack: a student joins, completes "This is me" and a weekly
check-in with buttons and with typed answers, and sees each question closed with its answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import App
from dialogues import Attachment, Inbound
from tests.slack.fake_web_api import FakeSlackAPI
from tests.slack.harness import (
    Running,
    Student,
    button_labels,
    checkbox_labels,
    slack_bot,
)
from tests.telegram.test_telegram_conversations import FILE_FLOW, THIS_IS_ME_BY_BUTTONS

JSONDict = dict[str, Any]


def assert_closed(message: JSONDict, answer: str | None) -> None:
    """The question was updated: no buttons or boxes left, and the answer shown under it."""
    assert not [b for b in message["blocks"] if b["type"] == "actions"], message["blocks"]
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    if answer is not None:
        assert texts[-1] == f"→ *{answer}*", texts


def assert_all_accepted(fake: FakeSlackAPI) -> None:
    """Slack accepted every call: valid blocks, known channels, text within limits."""
    assert fake.errors == [], fake.errors


async def join(bot: Running, student: Student) -> JSONDict:
    """The student writes first (matched by email); the first question of "This is me"."""
    response = await bot.say(student, "hello")
    assert response.status == 200 and response.acked_in_time
    return await bot.next_question(student)


async def test_this_is_me_with_buttons_stores_the_profile_and_ends_with_the_card(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM", consent=True)
        q = await join(bot, sam)
        assert bot.messages(sam)[0]["text"].startswith("Hi Sam! 👋 Let's build your learner")
        shown: list[tuple[JSONDict, str]] = []

        assert bot.step_of(sam, q) == "preferred_name"
        assert button_labels(q) == []
        shown.append((q, "Sam"))
        q = await bot.type(sam, "Sam")

        assert bot.step_of(sam, q) == "strengths"
        assert "Being creative" in checkbox_labels(q) and "Submit" in button_labels(q)
        shown.append((q, "Being creative, Working in a team, Not giving up"))
        q = await bot.pick(sam, q, "Being creative", "Working in a team", "Not giving up")

        assert bot.step_of(sam, q) == "interests"
        shown.append((q, "Music, Tech and coding"))
        q = await bot.pick(sam, q, "Music", "Tech and coding")

        assert bot.step_of(sam, q) == "dislikes"
        assert button_labels(q)[-2:] == ["Submit", "Skip"]
        shown.append((q, "skipped"))
        q = await bot.tap(sam, q, "Skip")

        assert bot.step_of(sam, q) == "learning_preferences"
        q = await bot.pick(
            sam,
            q,
            "Seeing it: pictures, diagrams, videos",
            "Doing it: hands-on, trying things out",
        )
        assert bot.step_of(sam, q) == "noise_level"
        assert button_labels(q)[1:] == ["2", "3", "4", "5"]
        shown.append((q, "4"))
        q = await bot.tap(sam, q, "4")
        assert bot.step_of(sam, q) == "social"
        shown.append((q, "With a partner"))
        q = await bot.tap(sam, q, "With a partner")
        q = await bot.tap(sam, q, "Morning")
        assert bot.step_of(sam, q) == "motivation"
        q = await bot.pick(sam, q, "A good challenge", "Seeing myself get better")
        q = await bot.pick(sam, q, "Staying focused")
        assert bot.step_of(sam, q) == "supports"
        q = await bot.pick(sam, q, "Asking a teacher", "Breaking it into small steps")
        assert bot.step_of(sam, q) == "dreams"
        q = await bot.type(sam, "Build a robot that plays chess")
        assert bot.step_of(sam, q) == "family_culture"
        await bot.click(sam, q, "Skip")
        outro, card = await bot.rest(sam)

        assert outro["text"].startswith("Thanks, Sam! 🎉 Your profile is saved.")
        assert card["text"].splitlines()[0] == "🪪 Sam's learner profile"
        assert (
            "💪 My strengths: Being creative · Working in a team · Not giving up" in (card["text"])
        )
        for question, answer in shown:
            assert_closed(bot.message(sam, question["ts"]), answer)
    assert app.profiles.current(sam.person_id) == THIS_IS_ME_BY_BUTTONS
    assert_all_accepted(fake)


async def test_this_is_me_by_typing_gives_the_same_structured_answers(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM", consent=True)
        q = await join(bot, sam)
        typed = [
            ("preferred_name", "Sam"),
            ("strengths", "being creative, working in a team, 12"),  # labels and a number
            ("interests", "music, tech_coding"),
            ("dislikes", "skip"),  # a typed word: Slack keeps "/skip" for slash commands
            ("learning_preferences", "1, doing"),
            ("noise_level", "4"),
            ("social", "with a partner"),
            ("time_of_day", "morning"),
            ("motivation", "progress, challenge"),
            ("challenges", "staying focused"),
            ("supports", "small_steps, ask_teacher"),
            ("dreams", "Build a robot that plays chess"),
        ]
        for step, text in typed:
            assert bot.step_of(sam, q) == step
            q = await bot.type(sam, text)
        assert bot.step_of(sam, q) == "family_culture"
        await bot.say(sam, "skip")
        outro, card = await bot.rest(sam)
        assert outro["text"].startswith("Thanks, Sam! 🎉")
        assert card["text"].startswith("🪪 Sam's learner profile")
    assert app.profiles.current(sam.person_id) == THIS_IS_ME_BY_BUTTONS
    assert_all_accepted(fake)


def _two_goals(app: App, person_id: int) -> None:
    """Goals as goal_setting leaves them (that flow has its own tests)."""
    flow = app.registry.get("goal_setting")
    address = "console"
    service = app.service
    service.open(person_id, flow, platform="console", address=address)
    for text in [
        "Hand in maths homework on time",
        "1",
        "So I stop falling behind",
        "Write homework in my planner",
        "Start it the day I get it",
        "done",
        "2031-03-15",
        "/skip",
        "yes",
        "Read a book a month",
        "2",
        "I like stories",
        "Visit the library on Fridays",
        "Read 10 pages before bed",
        "done",
        "2031-06-30",
        "My big sister",
        "no",
    ]:
        service.handle(person_id, Inbound.of_text(text), platform="console", address=address)


async def test_weekly_checkin_with_buttons_and_typing_stores_the_checkin(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        app.profiles.set(sam.person_id, "preferred_name", "Sam")
        _two_goals(app, sam.person_id)
        assert len(app.plans.plan(sam.person_id)["goals"]) == 2

        response = await bot.command(sam, "checkin")
        assert response.status == 200 and response.acked_in_time
        hello = await bot.next_message(sam)
        assert hello["text"].startswith("Hi Sam! 👋 Time for your weekly check-in")
        q = await bot.next_question(sam)
        assert bot.step_of(sam, q) == "mood"
        assert button_labels(q)[1:4] == ["2", "3", "4"]
        mood = q
        q = await bot.tap(sam, q, "2")
        assert bot.step_of(sam, q) == "energy"
        q = await bot.type(sam, "5")
        assert bot.step_of(sam, q) == "highlight"
        q = await bot.tap(sam, q, "Skip")
        assert bot.step_of(sam, q) == "goal_progress"
        assert "Hand in maths homework on time" in q["text"]
        q = await bot.tap(sam, q, "4")
        q = await bot.type(sam, "Did three worksheets")
        q = await bot.type(sam, "skip")  # goal_blockers
        assert bot.step_of(sam, q) == "goal_next_step"
        q = await bot.type(sam, "Ask about fractions")
        assert bot.step_of(sam, q) == "goal_progress"
        assert "Read a book a month" in q["text"]
        q = await bot.type(sam, "1")
        q = await bot.tap(sam, q, "Skip")
        q = await bot.type(sam, "Football practice every evening")
        q = await bot.type(sam, "Read on the bus")
        assert bot.step_of(sam, q) == "note_for_advisor"
        q = await bot.type(sam, "Can we talk about <!channel> maths?")  # typed @channel
        assert bot.step_of(sam, q) == "wants_meeting"
        assert button_labels(q) == ["Yes", "No"]
        await bot.click(sam, q, "Yes")
        outro, card = await bot.rest(sam)
        assert "Your check-in is saved ✅" in outro["text"]
        assert "progress 4/5 — next: Ask about fractions" in card["text"]
        assert_closed(bot.message(sam, mood["ts"]), "2 (meh)")

    [checkin] = app.plans.checkins(sam.person_id)
    assert (checkin.mood, checkin.energy, checkin.highlight) == (2, 5, None)
    assert checkin.note_for_advisor == "Can we talk about @channel maths?"
    assert checkin.wants_meeting is True
    assert [u.progress for u in checkin.goal_updates] == [4, 1]
    assert_all_accepted(fake)


async def test_a_shared_file_at_a_file_step_becomes_an_artifact(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "work_samples.yaml").write_text(FILE_FLOW)  # replaces the built-in this_is_me
    async with slack_bot(tmp_path, profilebot_flows_dir=flows) as bot:
        fake, app = bot.fake, bot.app
        sam = bot.add_student("Sam Lee", "U0SAM")
        q = await join(bot, sam)
        photo_q = await bot.type(sam, "Sam")
        assert bot.step_of(sam, photo_q) == "proud_photo"
        driver = bot.driver
        for text, file in [
            (
                "My &lt;clay&gt; pot",
                {"id": "F0PHOTO", "name": "pot.jpg", "mimetype": "image/jpeg"},
            ),
            (
                "History essay",
                {"id": "F0DOC", "name": "essay.pdf", "mimetype": "application/pdf"},
            ),
        ]:
            event = driver.message_event(sam.user, text, subtype="file_share")
            event["files"] = [{**file, "filetype": file["name"].rsplit(".")[-1]}]
            assert (await driver.send_event(event)).status == 200
            await bot.settle()
        await bot.rest(sam)
        assert_closed(bot.message(sam, photo_q["ts"]), "pot.jpg")
    assert [a.attachment for a in app.plans.artifacts(sam.person_id)] == [
        Attachment(
            "photo",
            file_id="F0PHOTO",
            name="pot.jpg",
            mime_type="image/jpeg",
            caption="My <clay> pot",
        ),
        Attachment(
            "document",
            file_id="F0DOC",
            name="essay.pdf",
            mime_type="application/pdf",
            caption="History essay",
        ),
    ]
    assert bot.step_of(sam, q) == "preferred_name"
    assert_all_accepted(fake)
