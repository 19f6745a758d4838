"""Whole conversations on Telegram, as a student sees them, against the fake Bot API.

Each test drives the real ``TelegramBot`` (long polling, or its webhook where parametrised)
with text messages, button taps, photos and documents, then checks what the student saw
(messages, edits, keyboards, toasts) and what was stored (profile, plan, check-ins,
artifacts).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.frontdesk import HELP_TEXT, MENU, NO_GOALS_HINT, STALE_TEXT, STRANGER_TEXT
from dialogues import Attachment
from storage._tables import answer, conversation, loads
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import (
    Running,
    Student,
    button_labels,
    make_app,
    running_bot,
    sqlite_url,
)

JSONDict = dict[str, Any]

MODES = [pytest.param(False, id="polling"), pytest.param(True, id="webhook")]


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_shows_answer(message: JSONDict, display: str) -> None:
    """The question was edited to end with ``→ <b>display</b>`` and has no keyboard left."""
    text = message["text"]
    assert text.endswith(f"\n→ {display}"), text
    assert "reply_markup" not in message, message["reply_markup"]
    bold = {"type": "bold", "offset": _utf16(text[: -len(display)]), "length": _utf16(display)}
    assert bold in message.get("entities", []), message.get("entities")


def _count(app: App, table: Any) -> int:
    with app.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _answers(app: App, person_id: int | None = None) -> list[tuple[str, Any]]:
    """(step id, value) of every stored answer, oldest first."""
    query = select(answer.c.step_id, answer.c.value).order_by(answer.c.id)
    if person_id is not None:
        query = query.join(conversation, conversation.c.id == answer.c.conversation_id).where(
            conversation.c.person_id == person_id
        )
    with app.db.begin() as conn:
        return [(row.step_id, loads(row.value)) for row in conn.execute(query)]


def _assert_all_sendable(fake: FakeBotAPI, *chat_ids: int) -> None:
    """Telegram accepted every call and every message fits its 4096-character limit."""
    assert fake.errors == []
    for chat_id in chat_ids:
        for message in fake.sent(chat_id):
            assert 0 < len(message["text"]) <= 4096


async def first_question(bot: Running, student: Student) -> JSONDict:
    """Join with the invite code; the first question (flows without an intro start with it)."""
    first = await bot.join(student)
    await bot.settle()
    if str(first["message_id"]) in bot.question_message_ids(student):
        return first
    return await bot.next_question(student)


def _fill_profile(app: App, person_id: int, name: str) -> None:
    app.profiles.set(person_id, "preferred_name", name)
    app.profiles.set(person_id, "interests", ["music"])


THIS_IS_ME_BY_BUTTONS: JSONDict = {
    "preferred_name": "Sam",
    "strengths": ["creative", "teamwork", "not_giving_up"],
    "interests": ["music", "tech_coding"],
    "learning_preferences": ["seeing", "doing"],
    "environment": {"noise_level": 4, "social": "partner", "time_of_day": "morning"},
    "motivation": ["progress", "challenge"],
    "challenges": ["staying_focused"],
    "supports": ["small_steps", "ask_teacher"],
    "dreams": "Build a robot that plays chess",
}


# ----------------------------------------------------------------------------------------------
# 1. "This is me", by buttons and by typing
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("webhook", MODES)
async def test_this_is_me_with_buttons_stores_the_profile_and_ends_with_the_card(
    tmp_path: Path, webhook: bool
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app, webhook=webhook) as bot:
            sam = bot.add_student("Sam Lee", 1001, consent=True)
            intro = await bot.join(sam)
            assert intro["text"].startswith("Hi Sam! 👋 Let's build your learner profile")
            shown: list[tuple[JSONDict, str]] = []  # (question, the answer it should show)

            q = await bot.next_question(sam)
            assert bot.step_of(sam, q) == "preferred_name"
            assert button_labels(q) == []  # typed
            shown.append((q, "Sam"))
            q = await bot.type(sam, "Sam")

            assert bot.step_of(sam, q) == "strengths"
            assert q["text"].startswith("Nice to meet you, Sam!")
            assert button_labels(q)[-1] == "Done ✓"
            shown.append((q, "Being creative, Working in a team, Not giving up"))
            q = await bot.pick(sam, q, "Being creative", "Working in a team", "Not giving up")

            assert bot.step_of(sam, q) == "interests"
            shown.append((q, "Music, Tech and coding"))
            q = await bot.pick(sam, q, "Music", "Tech and coding")

            assert bot.step_of(sam, q) == "dislikes"  # optional: Skip beside Done
            assert button_labels(q)[-2:] == ["Done ✓", "Skip"]
            q = await bot.tap(sam, q, "Skip")

            assert bot.step_of(sam, q) == "learning_preferences"
            assert any(t.startswith("Thanks! Now a few questions") for t in bot.texts(sam))
            shown.append(
                (q, "Seeing it: pictures, diagrams, videos, Doing it: hands-on, trying things out")
            )
            q = await bot.pick(
                sam,
                q,
                "Seeing it: pictures, diagrams, videos",
                "Doing it: hands-on, trying things out",
            )

            assert bot.step_of(sam, q) == "noise_level"
            assert button_labels(q) == ["1 · silent", "2", "3", "4", "5"]
            shown.append((q, "4"))
            q = await bot.tap(sam, q, "4")

            assert bot.step_of(sam, q) == "social"
            shown.append((q, "With a partner"))
            q = await bot.tap(sam, q, "With a partner")

            assert bot.step_of(sam, q) == "time_of_day"
            shown.append((q, "Morning"))
            q = await bot.tap(sam, q, "Morning")

            assert bot.step_of(sam, q) == "motivation"
            shown.append((q, "Seeing myself get better, A good challenge"))
            q = await bot.pick(sam, q, "A good challenge", "Seeing myself get better")

            assert bot.step_of(sam, q) == "challenges"
            shown.append((q, "Staying focused"))
            q = await bot.pick(sam, q, "Staying focused")

            assert bot.step_of(sam, q) == "supports"
            shown.append((q, "Breaking it into small steps, Asking a teacher"))
            q = await bot.pick(sam, q, "Asking a teacher", "Breaking it into small steps")

            assert bot.step_of(sam, q) == "dreams"
            shown.append((q, "Build a robot that plays chess"))
            q = await bot.type(sam, "Build a robot that plays chess")

            assert bot.step_of(sam, q) == "family_culture"
            assert button_labels(q) == ["Skip"]
            await bot.press(sam, q, "Skip")
            outro, card = await bot.rest(sam)

            assert outro["text"].startswith("Thanks, Sam! 🎉 Your profile is saved.")
            assert card["text"].splitlines()[0] == "🪪 Sam's learner profile"
            assert (
                "💪 My strengths: Being creative · Working in a team · Not giving up"
                in (card["text"])
            )
            assert "🔊 Noise I like (1 silent – 5 lively): 4" in card["text"]
            assert "👥 Working alone or with others: With a partner" in card["text"]
            assert "Family" not in card["text"]  # skipped
            for question, display in shown:
                assert_shows_answer(bot.message(sam, question["message_id"]), display)
            assert len(fake.callback_answers) == bot.presses
            assert all(a.text is None for a in fake.callback_answers)  # no toasts
            assert bot.texts(sam).count(outro["text"]) == 1

        assert app.profiles.current(sam.person_id) == THIS_IS_ME_BY_BUTTONS
        assert app.profiles.current(sam.person_id, include_private=True) == THIS_IS_ME_BY_BUTTONS
        _assert_all_sendable(fake, 1001)
        assert fake.pending_updates == []


async def test_this_is_me_typed_answers_only_stores_the_same_structured_values(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            ana = bot.add_student("Ana Diaz", 1002, consent=True)
            await bot.join(ana)
            q = await bot.next_question(ana)
            typed = [
                ("preferred_name", "Ana"),
                ("strengths", "2, 5"),  # option numbers
                ("interests", "music, Science and how things work, knitting"),  # value, label, own
                ("dislikes", "/skip"),
                ("learning_preferences", "doing"),  # a value
                ("noise_level", "silent"),  # a scale label
                ("social", "3"),
                ("time_of_day", "EVENING"),
                ("motivation", "1"),
                ("challenges", "Maths"),
                ("supports", "asking a friend"),
                ("dreams", "Not sure yet"),
            ]
            for step, text in typed:
                assert bot.step_of(ana, q) == step
                q = await bot.type(ana, text)
            assert bot.step_of(ana, q) == "family_culture"
            fake.push_text(ana.user, "We speak Tagalog at home")
            outro, card = await bot.rest(ana)
            assert outro["text"].startswith("Thanks, Ana! 🎉")
            assert card["text"].startswith("🪪 Ana's learner profile")
            assert "❤️ What I love: Music · Science and how things work · knitting" in card["text"]
            assert (
                "🏡 Family, culture & community 🔒 (private): We speak Tagalog at home"
                in card["text"]
            )
            # every typed answer closed its question too, and so did the typed /skip
            edited = [m for m in bot.messages(ana) if "\n→ " in m["text"]]
            assert len(edited) == 13  # 12 typed answers and the skip
            assert sum(m["text"].endswith("\n→ skipped") for m in edited) == 1
            assert fake.callback_answers == []

        public = {
            "preferred_name": "Ana",
            "strengths": ["problem_solving", "teamwork"],
            "interests": ["music", "science", "knitting"],
            "learning_preferences": ["doing"],
            "environment": {"noise_level": 1, "social": "small_group", "time_of_day": "evening"},
            "motivation": ["curiosity"],
            "challenges": ["maths"],
            "supports": ["ask_friend"],
            "dreams": "Not sure yet",
        }
        assert app.profiles.current(ana.person_id) == public
        assert app.profiles.current(ana.person_id, include_private=True) == {
            **public,
            "identity": {"family_culture": "We speak Tagalog at home"},
        }
        _assert_all_sendable(fake, 1002)


# ----------------------------------------------------------------------------------------------
# 2. Goal setting, then the weekly check-in by buttons
# ----------------------------------------------------------------------------------------------


async def _set_two_goals(bot: Running, sam: Student) -> None:
    """goal_setting with buttons where there are any: two goals."""
    bot.start_flow(sam, "goal_setting")
    q = await bot.next_question(sam)
    assert bot.step_of(sam, q) == "goal1_title"
    q = await bot.type(sam, "Hand in maths homework on time")
    assert bot.step_of(sam, q) == "goal1_category"
    q = await bot.tap(sam, q, "📚 Academic: a subject or a school skill")
    q = await bot.type(sam, "So I stop falling behind")
    assert bot.step_of(sam, q) == "goal1_steps"
    fake = bot.fake
    fake.push_text(sam.user, "Write homework in my planner")
    await bot.next_message(sam)  # "Got it (1 so far)"
    fake.push_text(sam.user, "Start it the day I get it")
    await bot.next_message(sam)
    await bot.settle()
    q = await bot.tap(sam, q, "Done")
    assert bot.step_of(sam, q) == "goal1_target_date"
    q = await bot.type(sam, "2031-03-15")
    assert bot.step_of(sam, q) == "goal1_support"
    q = await bot.tap(sam, q, "Skip")
    assert bot.step_of(sam, q) == "goal1_more"
    assert button_labels(q) == ["Yes", "No"]
    q = await bot.tap(sam, q, "Yes")
    assert bot.step_of(sam, q) == "goal2_title"
    q = await bot.type(sam, "Read a book a month")
    q = await bot.tap(sam, q, "🌱 Personal: a habit, a hobby, my health")
    q = await bot.type(sam, "I like stories")
    assert bot.step_of(sam, q) == "goal2_steps"
    q = await bot.type(sam, "Visit the library on Fridays\nRead 10 pages before bed\ndone")
    assert bot.step_of(sam, q) == "goal2_target_date"
    q = await bot.type(sam, "2031-06-30")
    q = await bot.type(sam, "My big sister")
    assert bot.step_of(sam, q) == "goal2_more"
    await bot.press(sam, q, "No")
    outro, card = await bot.rest(sam)
    assert outro["text"].startswith("All set, Sam! 🎉")
    assert card["text"].startswith("🎯 Sam Lee's learning plan")


async def test_weekly_checkin_after_goal_setting_by_buttons_stores_the_checkin(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            _fill_profile(app, sam.person_id, "Sam")
            welcome = await bot.join(sam)
            assert welcome["text"].startswith("Welcome back, Sam!")
            await _set_two_goals(bot, sam)
            goals = app.plans.plan(sam.person_id)["goals"]
            assert [(g["title"], g["category"], g["target_date"], g["support"]) for g in goals] == [
                ("Hand in maths homework on time", "academic", "2031-03-15", None),
                ("Read a book a month", "personal", "2031-06-30", "My big sister"),
            ]
            assert [g["action_steps"] for g in goals] == [
                ["Write homework in my planner", "Start it the day I get it"],
                ["Visit the library on Fridays", "Read 10 pages before bed"],
            ]

            fake.push_text(sam.user, "/checkin")
            hello = await bot.next_message(sam)
            assert hello["text"].startswith("Hi Sam! 👋 Time for your weekly check-in")
            q = await bot.next_question(sam)
            assert bot.step_of(sam, q) == "mood"
            assert button_labels(q) == ["1 · rough", "2", "3", "4", "5 · great"]
            mood_q = q
            q = await bot.tap(sam, q, "2")
            assert any(t.startswith("Thanks for being honest.") for t in bot.texts(sam))
            assert bot.step_of(sam, q) == "energy"
            energy_q = q
            q = await bot.tap(sam, q, "5")
            assert bot.step_of(sam, q) == "highlight"
            q = await bot.tap(sam, q, "Skip")

            assert bot.step_of(sam, q) == "goal_progress"
            assert "🎯 Hand in maths homework on time" in q["text"]
            assert button_labels(q) == ["1 · not yet", "2", "3", "4", "5 · great"]
            progress_q = q
            q = await bot.tap(sam, q, "4")
            assert bot.step_of(sam, q) == "goal_did"
            q = await bot.type(sam, "Did three worksheets")
            assert bot.step_of(sam, q) == "goal_blockers"
            q = await bot.tap(sam, q, "Skip")
            assert bot.step_of(sam, q) == "goal_next_step"
            assert '"Hand in maths homework on time"' in q["text"]
            q = await bot.type(sam, "Ask about fractions")

            assert bot.step_of(sam, q) == "goal_progress"
            assert "🎯 Read a book a month" in q["text"]
            q = await bot.tap(sam, q, "1 · not yet")
            q = await bot.tap(sam, q, "Skip")  # goal_did
            assert bot.step_of(sam, q) == "goal_blockers"
            q = await bot.type(sam, "Football practice every evening")
            q = await bot.type(sam, "Read on the bus")

            assert bot.step_of(sam, q) == "note_for_advisor"
            q = await bot.type(sam, "Can we talk about maths?")
            assert bot.step_of(sam, q) == "wants_meeting"
            assert button_labels(q) == ["Yes", "No"]
            meeting_q = q
            await bot.press(sam, q, "Yes")
            outro, card = await bot.rest(sam)
            assert "Your check-in is saved ✅" in outro["text"]
            assert "Your advisor will see that you'd like to meet." in outro["text"]
            assert "progress 4/5 — next: Ask about fractions" in card["text"]
            assert "progress 1/5 — next: Read on the bus" in card["text"]

            for question, display in [
                (mood_q, "2 (meh)"),
                (energy_q, "5 (full of energy)"),
                (progress_q, "4 (good)"),
            ]:
                assert_shows_answer(bot.message(sam, question["message_id"]), display)
            closed = bot.message(sam, meeting_q["message_id"])
            assert "reply_markup" not in closed and "\n→ " in closed["text"]

            fake.push_text(sam.user, "/goals")
            [goals_card] = await bot.rest(sam)
            assert goals_card["text"] == card["text"]
            assert len(fake.callback_answers) == bot.presses

        [checkin] = app.plans.checkins(sam.person_id)
        assert (checkin.mood, checkin.energy, checkin.highlight) == (2, 5, None)
        assert checkin.note_for_advisor == "Can we talk about maths?"
        assert checkin.wants_meeting is True
        maths, reading = app.plans.plan(sam.person_id)["goals"]
        assert [u.to_json() for u in checkin.goal_updates] == [
            {
                "goal_id": maths["id"],
                "progress": 4,
                "did": "Did three worksheets",
                "blockers": None,
                "next_step": "Ask about fractions",
            },
            {
                "goal_id": reading["id"],
                "progress": 1,
                "did": None,
                "blockers": "Football practice every evening",
                "next_step": "Read on the bus",
            },
        ]
        assert maths["last_checkin"]["progress"] == 4
        assert reading["last_checkin"]["next_step"] == "Read on the bus"
        assert [c["mood"] for c in maths["checkins"]] == [2]
        _assert_all_sendable(fake, 1001)


# ----------------------------------------------------------------------------------------------
# 3. Answered questions, stale and forged buttons
# ----------------------------------------------------------------------------------------------


async def test_old_and_forged_buttons_change_nothing_and_every_tap_is_answered(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            ana = bot.add_student("Ana Diaz", 1002)
            await bot.join(sam)
            await bot.join(ana)
            q = await bot.next_question(sam)
            q = await bot.type(sam, "Sam")
            strengths = q
            q = await bot.pick(sam, q, "Being creative")
            interests = q
            ana_q = await bot.next_question(ana)
            assert bot.step_of(ana, ana_q) == "preferred_name"

            assert_shows_answer(bot.message(sam, strengths["message_id"]), "Being creative")
            assert button_labels(bot.message(sam, interests["message_id"]))  # still open
            before = _answers(app)
            assert before == [("preferred_name", "Sam"), ("strengths", ["creative"])]
            toasts = len(fake.callback_answers)

            # the old keyboard (as a slow client may still show it) on the answered question
            old_done = strengths["reply_markup"]["inline_keyboard"][-1][0]["callback_data"]
            await bot.callback(sam, strengths, old_done)
            await bot.callback(sam, strengths, old_done)
            await bot.settle()
            assert [a.text for a in fake.callback_answers[toasts:]] == [STALE_TEXT] * 2
            assert STALE_TEXT.startswith("That question is already closed")
            assert _answers(app) == before
            assert_shows_answer(bot.message(sam, strengths["message_id"]), "Being creative")

            # Ana forges Sam's current question's ref onto a button of her own message
            sam_ref = bot.record_of(sam, interests).id
            sam_messages = bot.messages(sam)
            await bot.callback(ana, ana_q, f"t:0:{sam_ref}")
            await bot.callback(ana, ana_q, f"d::{sam_ref}")
            await bot.callback(ana, ana_q, f"p:1:{sam_ref}")
            await bot.settle()
            assert [a.text for a in fake.callback_answers[-3:]] == [STALE_TEXT] * 3
            assert _answers(app) == before
            assert bot.messages(sam) == sam_messages  # not a toggle, not an edit, nothing
            assert app.profiles.current(ana.person_id) == {}

            # Sam's real question still works afterwards
            q = await bot.pick(sam, interests, "Music")
            assert bot.step_of(sam, q) == "dislikes"
            assert _answers(app)[-1] == ("interests", ["music"])
            assert len(fake.callback_answers) == bot.presses
        _assert_all_sendable(fake, 1001, 1002)


async def test_a_button_of_a_finished_conversation_shows_the_toast(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "this_is_me.yaml").write_text(
        "id: this_is_me\nversion: 1\ntitle: Short\nsteps:\n"
        "  - id: social\n    ask: Alone or together?\n    type: choice\n"
        "    options: [alone, together]\n    save: profile.environment.social\n"
    )
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), profilebot_flows_dir=flows)
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            q = await first_question(bot, sam)
            assert bot.step_of(sam, q) == "social"
            data = q["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            await bot.press(sam, q, "together")
            await bot.rest(sam)
            assert_shows_answer(bot.message(sam, q["message_id"]), "together")
            await bot.callback(sam, q, data)  # the conversation is over
            await bot.settle()
            assert fake.callback_answers[-1].text == STALE_TEXT
        assert app.profiles.current(sam.person_id) == {"environment": {"social": "together"}}
        assert len(_answers(app)) == 1
        _assert_all_sendable(fake, 1001)


async def test_a_skipped_question_loses_its_buttons(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            q = await bot.next_question(sam)
            q = await bot.type(sam, "Sam")
            q = await bot.pick(sam, q, "Being creative")
            q = await bot.pick(sam, q, "Music")
            dislikes = q
            assert bot.step_of(sam, dislikes) == "dislikes"
            await bot.tap(sam, dislikes, "Skip")
            await bot.settle()
            closed = bot.message(sam, dislikes["message_id"])
            assert button_labels(closed) == []
            assert closed["text"].endswith("→ skipped")


async def test_a_question_asked_again_leaves_only_the_new_one_with_buttons(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            await bot.next_question(sam)
            strengths = await bot.type(sam, "Sam")
            again = await bot.type(sam, "/help")  # help, then the same question anew
            assert bot.step_of(sam, again) == bot.step_of(sam, strengths) == "strengths"
            await bot.settle()
            assert button_labels(bot.message(sam, strengths["message_id"])) == []
            assert "Done ✓" in button_labels(bot.message(sam, again["message_id"]))
            old_toggle = strengths["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            await bot.callback(sam, strengths, old_toggle)
            assert fake.callback_answers[-1].text == STALE_TEXT


async def test_an_old_toggle_of_an_answered_question_changes_nothing(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            await bot.next_question(sam)
            strengths = await bot.type(sam, "Sam")
            old_toggle = strengths["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
            await bot.pick(sam, strengths, "Being creative")
            closed = bot.message(sam, strengths["message_id"])
            await bot.callback(sam, strengths, old_toggle)  # a late tap on the old keyboard
            await bot.settle()
            assert bot.message(sam, strengths["message_id"]) == closed
            assert fake.callback_answers[-1].text == STALE_TEXT
        assert app.profiles.current(sam.person_id)["strengths"] == ["creative"]


# ----------------------------------------------------------------------------------------------
# 4. Multi-select
# ----------------------------------------------------------------------------------------------


async def test_multi_select_toggles_a_check_on_and_off_and_done_sends_the_selection(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            await bot.next_question(sam)
            q = await bot.type(sam, "Sam")
            assert bot.step_of(sam, q) == "strengths"
            plain = button_labels(q)
            assert not any(label.startswith("✓") for label in plain)

            def labels_now() -> list[str]:
                return button_labels(bot.message(sam, q["message_id"]))

            await bot.press(sam, q, "Numbers and patterns")
            await bot.settle()
            assert "✓ Numbers and patterns" in labels_now()
            await bot.press(sam, bot.message(sam, q["message_id"]), "Leading and organising")
            await bot.settle()
            await bot.press(sam, bot.message(sam, q["message_id"]), "✓ Numbers and patterns")
            await bot.settle()
            now = labels_now()
            assert "Numbers and patterns" in now and "✓ Numbers and patterns" not in now
            assert [x for x in now if x.startswith("✓ ")] == ["✓ Leading and organising"]
            await bot.press(sam, bot.message(sam, q["message_id"]), "Being kind and caring")
            await bot.settle()
            assert _answers(app) == [("preferred_name", "Sam")]  # toggles store nothing
            assert bot.texts(sam)[-1] == bot.message(sam, q["message_id"])["text"]  # no new msg

            await bot.press(sam, q, "Done ✓")
            nxt = await bot.next_question(sam)
            assert bot.step_of(sam, nxt) == "interests"
            assert_shows_answer(
                bot.message(sam, q["message_id"]), "Being kind and caring, Leading and organising"
            )
            assert _answers(app)[-1] == ("strengths", ["kind_caring", "leading"])

            # Done with nothing ticked: the question asks again (min: 1), nothing stored
            await bot.press(sam, nxt, "Done ✓")
            again = await bot.next_question(sam)
            assert bot.step_of(sam, again) == "interests"
            assert _answers(app)[-1] == ("strengths", ["kind_caring", "leading"])
            assert len(fake.callback_answers) == bot.presses
        assert app.profiles.current(sam.person_id)["strengths"] == ["kind_caring", "leading"]
        _assert_all_sendable(fake, 1001)


# ----------------------------------------------------------------------------------------------
# 5. Menu commands
# ----------------------------------------------------------------------------------------------


async def test_menu_is_registered_and_profile_goals_and_help_answer(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            assert [c["command"] for c in fake.commands] == [
                "profile",
                "goals",
                "card",
                "checkin",
                "newgoal",
                "back",
                "skip",
                "pause",
                "help",
                "stop",
            ]
            assert all(c["description"] for c in fake.commands)
            sam = bot.add_student("Sam Lee", 1001)
            _fill_profile(app, sam.person_id, "Sammy")
            welcome = await bot.join(sam)
            assert welcome["text"] == f"Welcome back, Sam! {HELP_TEXT}"

            fake.push_text(sam.user, "/help")
            [help_message] = await bot.rest(sam)
            assert help_message["text"] == HELP_TEXT
            for command in MENU:
                assert f"/{command.name}" in help_message["text"]

            fake.push_text(sam.user, "/profile")
            [profile] = await bot.rest(sam)
            assert profile["text"].splitlines() == [
                "🪪 Sammy's learner profile",
                "",
                "👋 Call me: Sammy",
                "❤️ What I love: Music",
            ]

            fake.push_text(sam.user, "/goals")
            [goals] = await bot.rest(sam)
            assert "no goals yet" in goals["text"]
            assert goals["text"].endswith(NO_GOALS_HINT)

            fake.push_text(sam.user, "what now?")  # nothing open: caught up, and the help
            [idle] = await bot.rest(sam)
            assert idle["text"].endswith(HELP_TEXT)
            assert app.profiles.current(sam.person_id)["preferred_name"] == "Sammy"
            assert _answers(app) == []

            fake.push_text(sam.user, "/newgoal")
            first = await bot.next_question(sam)
            assert bot.step_of(sam, first) == "goal1_title"
        _assert_all_sendable(fake, 1001)


# ----------------------------------------------------------------------------------------------
# 6. Joining
# ----------------------------------------------------------------------------------------------


async def test_start_without_a_valid_code_explains_and_links_nothing(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)  # redeems his code below
            person = app.people.add("Eve Old", "student")
            expired = app.invites.issue(person.id, now=datetime.now(UTC) - timedelta(days=15)).code
            eve = fake.user(1003, "Eve")
            mallory = fake.user(1004, "Mallory")
            await bot.join(sam)
            await bot.settle()
            answers_before = _answers(app)

            cases = [
                ("/start", STRANGER_TEXT),
                ("/start NOTACODE99", "Sorry, that invite code is not one we know."),
                (f"/start {sam.code}", "Sorry, that invite code has already been used."),
                (f"/start {expired}", "Sorry, that invite code has expired"),
                ("hello, who are you?", STRANGER_TEXT),
                ("/profile", STRANGER_TEXT),
                ("/checkin", STRANGER_TEXT),
            ]
            for user in (eve, mallory):
                for text, expected in cases:
                    fake.push_text(user, text)
                    await bot.settle()
                    reply = fake.sent(user.id)[-1]["text"]
                    assert reply.startswith(expected), (text, reply)
                    if expected.startswith("Sorry"):
                        assert reply.endswith("Ask your advisor for a new invite link.")
                assert len(fake.sent(user.id)) == len(cases)
                assert app.people.by_identity("telegram", None, str(user.id)) is None
            assert "Sam" not in " ".join(m["text"] for m in fake.sent(1004))
            assert _answers(app) == answers_before
            assert app.profiles.current(person.id) == {}
            # the used code still belongs to Sam, and only Sam
            sam_person = app.people.by_identity("telegram", None, "1001")
            assert sam_person is not None and sam_person.id == sam.person_id
        _assert_all_sendable(fake, 1001, 1003, 1004)


async def test_start_for_a_student_with_a_profile_greets_and_lists_what_they_can_do(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            _fill_profile(app, sam.person_id, "Sam")
            welcome = await bot.join(sam)
            assert welcome["text"].startswith("Welcome back, Sam!")
            for command in ("/profile", "/goals", "/checkin", "/help"):
                assert command in welcome["text"]
            await bot.settle()
            assert len(bot.messages(sam)) == 1  # no interview started
            assert bot.question_message_ids(sam) == set()
            assert app.people.by_identity("telegram", None, "1001") is not None
            # a second /start (without a code) from the linked account greets again
            fake.push_text(sam.user, "/start")
            [again] = await bot.rest(sam)
            assert again["text"].startswith("Welcome back, Sam!")
        _assert_all_sendable(fake, 1001)


# ----------------------------------------------------------------------------------------------
# 7. Files become artifacts
# ----------------------------------------------------------------------------------------------

FILE_FLOW = """\
id: this_is_me
version: 1
title: Work samples
outro: Thanks, your work is saved.
steps:
  - id: preferred_name
    ask: What do you like to be called?
    type: text
    save: profile.preferred_name
  - id: proud_photo
    ask: Send a photo of something you made that you're proud of.
    type: file
  - id: best_document
    ask: Now send a document you wrote this term.
    type: file
"""


async def test_a_photo_and_a_document_at_file_steps_become_artifacts(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "work_samples.yaml").write_text(FILE_FLOW)  # replaces the built-in this_is_me
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), profilebot_flows_dir=flows)
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            q = await first_question(bot, sam)
            assert bot.step_of(sam, q) == "preferred_name"
            fake.push_photo(sam.user, caption="not yet")  # a file where text is asked
            again = await bot.next_question(sam)
            assert bot.step_of(sam, again) == "preferred_name"
            assert "type your answer" in bot.texts(sam)[-2] + again["text"]
            photo_q = await bot.type(sam, "Sam")
            assert bot.step_of(sam, photo_q) == "proud_photo"
            assert "Send a photo, a document or a link" in photo_q["text"]

            photo = fake.push_photo(sam.user, caption="My <clay> pot & lid")
            doc_q = await bot.next_question(sam)
            assert bot.step_of(sam, doc_q) == "best_document"
            document = fake.push_document(
                sam.user, "essay final.pdf", "application/pdf", caption="History essay"
            )
            await bot.rest(sam)
            assert_shows_answer(bot.message(sam, photo_q["message_id"]), "My <clay> pot & lid")
            assert_shows_answer(bot.message(sam, doc_q["message_id"]), "essay final.pdf")
            assert any(t.startswith("Thanks, your work is saved.") for t in bot.texts(sam))

        largest = max(photo["message"]["photo"], key=lambda p: p["width"] * p["height"])
        artifacts = app.plans.artifacts(sam.person_id)
        assert [a.attachment for a in artifacts] == [
            Attachment(
                "photo",
                file_id=largest["file_id"],
                mime_type="image/jpeg",
                caption="My <clay> pot & lid",
            ),
            Attachment(
                "document",
                file_id=document["message"]["document"]["file_id"],
                name="essay final.pdf",
                mime_type="application/pdf",
                caption="History essay",
            ),
        ]
        assert all(a.goal_id is None and a.conversation_id is not None for a in artifacts)
        _assert_all_sendable(fake, 1001)


# ----------------------------------------------------------------------------------------------
# 8. HTML safety and very long answers
# ----------------------------------------------------------------------------------------------

ECHO_FLOW = """\
id: this_is_me
version: 1
title: Echo
steps:
  - id: story
    ask: Tell me a story, as long as you like.
    type: text
    max_length: 12000
    save: profile.story
  - id: confirm
    ask: "You wrote: {{ answers.story }} Is that right?"
    type: yes_no
"""


async def test_markup_in_an_answer_is_shown_literally(tmp_path: Path) -> None:
    tricky = "<b>hi</b> & <script>"
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            q = await bot.next_question(sam)
            strengths = await bot.type(sam, tricky)
            await bot.settle()
            assert_shows_answer(bot.message(sam, q["message_id"]), tricky)
            assert strengths["text"].startswith(f"Nice to meet you, {tricky}!")
            assert not any(
                e["type"] == "bold" for e in strengths.get("entities", [])
            )  # the name was not read as markup
            await bot.pick(sam, strengths, "Being creative")
            fake.push_text(sam.user, "/profile")
            [card] = await bot.rest(sam)
            assert f"👋 Call me: {tricky}" in card["text"]
            assert card["text"].startswith(f"🪪 {tricky}'s learner profile")
        assert app.profiles.current(sam.person_id)["preferred_name"] == tricky
        assert fake.errors == []
        calls = fake.calls_to("sendMessage") + fake.calls_to("editMessageText")
        sent_html = [str(c.get("text", "")) for c in calls]
        assert any("&lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;" in t for t in sent_html)
        assert all("<script>" not in t and "<b>hi</b>" not in t for t in sent_html)


@pytest.mark.parametrize("webhook", MODES)
async def test_a_10000_character_answer_never_breaks_a_message(
    tmp_path: Path, webhook: bool
) -> None:
    story = ("Once <upon> a time & then " * 400)[:10_000]
    assert len(story) == 10_000
    async with FakeBotAPI() as fake:
        # the built-in interview: far over the name's max_length
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app, webhook=webhook) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            q = await bot.next_question(sam)
            again = await bot.type(sam, story)
            assert bot.step_of(sam, again) == "preferred_name"  # asked again, with a hint
            q = await bot.type(sam, "Sam")
            assert bot.step_of(sam, q) == "strengths"
            fake.push_text(sam.user, story)  # typed as a multi-select answer
            await bot.rest(sam)
            last = bot.messages(sam)[-1]
            assert bot.step_of(sam, last) == "strengths"  # asked again
        assert app.profiles.current(sam.person_id) == {"preferred_name": "Sam"}
        _assert_all_sendable(fake, 1001)


async def test_a_10000_character_answer_echoed_in_the_next_question_is_split(
    tmp_path: Path,
) -> None:
    story = ("Once <upon> a time & then " * 400)[:10_000]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "echo.yaml").write_text(ECHO_FLOW)
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), profilebot_flows_dir=flows)
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            q = await first_question(bot, sam)
            assert bot.step_of(sam, q) == "story"
            confirm = await bot.type(sam, story)
            assert bot.step_of(sam, confirm) == "confirm"
            assert button_labels(confirm) == ["Yes", "No"]  # buttons on the last part
            parts = [m for m in bot.messages(sam) if m["message_id"] > q["message_id"]]
            assert len(parts) >= 3
            assert all("reply_markup" not in p for p in parts[:-1])
            shown = "".join(p["text"] for p in parts).replace("\n", "").replace(" ", "")
            assert story.replace(" ", "") in shown  # every character arrived, literally
            edited = bot.message(sam, q["message_id"])
            assert "reply_markup" not in edited and "\n→ " in edited["text"]
            assert "Once <upon> a time & then" in edited["text"]
            await bot.press(sam, confirm, "Yes")
            await bot.rest(sam)
            assert "\n→ " in bot.message(sam, confirm["message_id"])["text"]
        assert app.profiles.current(sam.person_id) == {"story": story}
        _assert_all_sendable(fake, 1001)
