"""The Telegram bot end to end against the fake Bot API: buttons, edits, webhook, faults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from bot.adapters.telegram import TelegramBot
from bot.app import App
from bot.delivery import Pacer
from storage._tables import answer
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import FAST, make_app, running_bot, sqlite_url


def _answers(app: App) -> int:
    with app.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(answer)).scalar_one())


async def test_buttons_answer_questions_and_the_question_shows_the_answer(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            name_question = await bot.next_question(sam)
            fake.push_text(sam.user, "Sammy <b>&")
            strengths = await bot.next_question(sam)
            await bot.settle()
            # the typed answer closed the name question: it now shows the answer, escaped
            edited = next(
                m for m in bot.messages(sam) if m["message_id"] == name_question["message_id"]
            )
            assert edited["text"].endswith("→ Sammy <b>&")
            labels = [
                b["text"] for row in strengths["reply_markup"]["inline_keyboard"] for b in row
            ]
            assert "Done ✓" in labels
            first = labels[0]
            fake.press(sam.user, strengths["message_id"], first)
            await fake.wait_until(lambda: len(fake.callback_answers) == 1, 10)
            await bot.settle()
            ticked = next(
                m for m in bot.messages(sam) if m["message_id"] == strengths["message_id"]
            )
            ticked_labels = [
                b["text"] for row in ticked["reply_markup"]["inline_keyboard"] for b in row
            ]
            assert ticked_labels[0] == "✓ " + first
            fake.press(sam.user, strengths["message_id"], "Done ✓")
            await bot.next_question(sam)
            await bot.settle()
            closed = next(
                m for m in bot.messages(sam) if m["message_id"] == strengths["message_id"]
            )
            assert "reply_markup" not in closed
            assert closed["text"].endswith(f"→ {first}")
            # the old question's button is stale now: a toast, nothing stored
            before = _answers(app)
            fake.push_callback(
                sam.user,
                strengths["message_id"],
                ticked["reply_markup"]["inline_keyboard"][-1][0]["callback_data"],
            )
            await fake.wait_until(lambda: len(fake.callback_answers) == 3, 10)
            await bot.settle()
            assert _answers(app) == before
            assert fake.callback_answers[-1].text is not None
            assert "closed" in fake.callback_answers[-1].text
        profile = app.profiles.current(sam.person_id)
        assert profile["preferred_name"] == "Sammy <b>&"
        assert len(profile["strengths"]) == 1
        assert fake.errors == []


async def _webhook(bot: TelegramBot, secret: str) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(bot.webhook_app("/telegram", secret), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/telegram"


async def test_webhook_checks_the_secret_and_applies_a_redelivered_update_once(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with TelegramBot(app, pacer=FAST) as bot:
            runner, url = await _webhook(bot, "s3cret")
            stop = asyncio.Event()
            delivery = asyncio.create_task(bot.worker.run(stop))
            try:
                await bot.application.bot.set_webhook(url, secret_token="s3cret")
                person = app.people.add("Sam Lee", "student")
                code = app.invites.issue(person.id).code
                sam = fake.user(1001, "Sam")
                start = fake.push_text(sam, f"/start {code}")
                assert await fake.post_to_webhook(start, secret_token=None) == 403
                assert await fake.post_to_webhook(start, secret_token="wrong") == 403
                assert app.people.by_identity("telegram", None, "1001") is None
                assert await fake.post_to_webhook(start) == 200
                await fake.wait_until(lambda: len(fake.sent(1001)) >= 2, 10)
                answer_update = fake.push_text(sam, "Sammy")
                assert await fake.post_to_webhook(answer_update) == 200
                assert await fake.post_to_webhook(answer_update) == 200  # redelivery
                await fake.wait_until(lambda: len(fake.sent(1001)) >= 3, 10)
                await asyncio.sleep(0.3)
                assert _answers(app) == 1
                texts = [m["text"] for m in fake.sent(1001)]
                assert sum("Nice to meet you" in t for t in texts) == 1
                garbage: dict[str, Any] = {"update_id": 999, "message": {"weird": True}}
                assert await fake.post_to_webhook(garbage) == 200
            finally:
                stop.set()
                await delivery
                await runner.cleanup()
        assert fake.errors == []


async def test_a_blocked_student_becomes_unreachable_and_unblocking_clears_it(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            ana = bot.add_student("Ana Diaz", 1002)
            await bot.join(sam)
            await bot.join(ana)
            await bot.settle()
            fake.fail_next("sendMessage", 403, chat_id=1001)
            fake.push_text(sam.user, "Sammy")
            fake.push_text(ana.user, "Ana")
            await fake.wait_until(
                lambda: app.people.is_reachable("telegram", None, "1001") is False, 10
            )
            await bot.settle()
            assert app.people.is_reachable("telegram", None, "1002") is True
            statuses = {r.status for r in app.outbox.for_person(sam.person_id)}
            assert "pending" not in statuses and "dead" in statuses
            fake.push_my_chat_member(sam.user, "member")
            await fake.wait_until(
                lambda: app.people.is_reachable("telegram", None, "1001") is True, 10
            )
            fake.push_my_chat_member(sam.user, "kicked")
            await fake.wait_until(
                lambda: app.people.is_reachable("telegram", None, "1001") is False, 10
            )


async def test_garbage_and_unexpected_updates_never_stop_the_bot(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            await bot.join(sam)
            question = await bot.next_question(sam)
            fake.push_sticker(sam.user)
            fake.push_channel_post("hello channel")
            fake.push_group_message(sam.user, "/profile in a group")
            fake.push_edited_message(sam.user, 1, "edited start")
            fake.push_callback(sam.user, question["message_id"], "garbage")
            fake.push_callback(sam.user, question["message_id"], "p:0:999999")
            fake.push_raw({"update_id": 0, "unknown_kind": {"x": 1}})
            fake.push_raw({"message": {"no": "id"}})
            fake.push_text(sam.user, "Sammy")
            await bot.next_question(sam)
            await bot.settle()
            texts = [m["text"] for m in bot.messages(sam)]
            assert any(t.startswith("I can read text") for t in texts)
            assert len(fake.callback_answers) == 2
            assert fake.pending_updates == []
        assert app.profiles.current(sam.person_id)["preferred_name"] == "Sammy"


async def test_a_429_waits_retry_after_then_resends_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            fake.fail_next("sendMessage", 429, retry_after=1, chat_id=1001)
            started = fake.clock()
            await bot.join(sam)
            await bot.next_question(sam, timeout=15)
            await bot.settle()
            sends = [c for c in fake.calls if c.method == "sendMessage"]
        first_delivered = min(t for t, chat in fake.send_log if chat == 1001)
        assert first_delivered - started >= 1.0  # retry_after was honoured
        texts = [m["text"] for m in fake.sent(1001)]
        assert len(texts) == len(set(texts)) == 2  # the welcome and the first question, once each
        assert len(sends) == 3  # one refused with 429, then both sent
        assert [e.status for e in fake.errors] == [429]
        statuses = [r.status for r in app.outbox.for_person(sam.person_id)]
        assert statuses == ["sent", "sent"]


async def test_a_fan_out_to_a_class_stays_inside_telegrams_limits(tmp_path: Path) -> None:
    students = 30
    async with FakeBotAPI() as fake:
        fake.enforce_rate_limits = True  # over Telegram's limits, the fake answers 429
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app, pacer=Pacer()) as bot:  # the real default pacing
            class_ = [bot.add_student(f"Student {n}", 2000 + n) for n in range(students)]
            for student in class_:  # all join at once: the welcomes are a fan-out too
                fake.push_text(student.user, f"/start {student.code}")
            await bot.settle(timeout=30)
            joined = len(fake.send_log)
            for student in class_:
                bot.start_flow(student, "weekly_checkin")  # like the weekly schedule does
            await bot.settle(timeout=30)
        checkins = len(fake.send_log) - joined
        assert checkins >= 2 * students  # a hello and the first question each
        assert [e.status for e in fake.errors] == []  # not a single 429
        assert fake.max_rate_overall(1.0) <= 30
        assert fake.max_rate_per_chat(3.0) <= 3
        assert app.outbox.pending() == []
        assert {chat for _, chat in fake.send_log[joined:]} == {s.user.id for s in class_}
