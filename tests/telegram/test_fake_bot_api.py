"""The fake Bot API, driven by a real python-telegram-bot client over real HTTP.

These tests pin the fake to what Telegram does and to what PTB 22 expects (PTB parses every
answer with ``de_json`` and maps HTTP errors onto its exception classes), so that bot tests
built on the fake fail for the same reasons production would.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from tests.telegram.fake_bot_api import (
    CallbackAnswer,
    EntityParseError,
    FakeBotAPI,
    FakeUser,
    RateLimit,
    parse_html,
)

LONG_POLL_CAP = 0.3


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    """A running fake whose long polls give up after 0.3 s, so idle polls stay cheap."""
    async with FakeBotAPI(long_poll_cap=LONG_POLL_CAP) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    """A real, initialised PTB ``Bot`` (initialising already calls getMe on the fake)."""
    async with fake.make_bot() as client:
        yield client


@pytest.fixture
def alice(fake: FakeBotAPI) -> FakeUser:
    """A user who has written /start, so the bot is allowed to message her."""
    user = fake.user(1001, "Alice", "alice")
    fake.push_text(user, "/start")
    return user


def message_of(update: Update) -> Message:
    """The update's message, asserting it has one (PTB types it as optional)."""
    assert update.effective_message is not None
    return update.effective_message


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    """One callback button per row, from (text, callback_data) pairs."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data)] for text, data in buttons]
    )


# -- identity, auth, transport ---------------------------------------------------------------


async def test_get_me_describes_the_bot(fake: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username) == (123, True, "profilebot_test_bot")
    assert me.can_join_groups is True
    assert bot.username == "profilebot_test_bot"
    assert fake.calls[0].method == "getMe"


async def test_wrong_token_is_unauthorized(fake: FakeBotAPI) -> None:
    """PTB checks the token on initialize; a 401 must surface as InvalidToken."""
    with pytest.raises(InvalidToken, match="rejected"):
        async with fake.make_bot(token="123:WRONG"):
            pass
    assert fake.errors[-1].status == 401


async def test_unknown_method_answers_404(fake: FakeBotAPI, bot: Bot) -> None:
    """Methods the fake lacks must fail loudly rather than look like success."""
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendHologram", api_kwargs={"chat_id": 1})
    assert fake.calls[-1].method == "sendHologram"
    assert fake.errors[-1] == ("sendHologram", 404, "Not Found")


async def test_ptb_sends_form_encoded_and_the_fake_also_takes_json_and_query(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    """PTB 22 posts x-www-form-urlencoded with JSON-encoded non-string values; other clients
    post JSON or use GET. All must decode to the same typed parameters."""
    await bot.send_message(alice.id, "form", reply_markup=keyboard(("A", "a")))
    form_call = fake.calls[-1]
    assert fake.raw_requests[-1].content_type == "application/x-www-form-urlencoded"
    assert form_call.params["chat_id"] == alice.id
    assert form_call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "A", "callback_data": "a"}]]
    }

    async with aiohttp.ClientSession() as session:
        json_url = f"{fake.base_url}{fake.token}/sendMessage"
        async with session.post(json_url, json={"chat_id": alice.id, "text": "json"}) as response:
            assert response.status == 200
            body = await response.json()
        async with session.get(f"{fake.base_url}{fake.token}/getme") as response:
            me = await response.json()
        async with session.post(json_url, data=b"{not json", headers=_JSON) as response:
            broken = (response.status, await response.json())
        async with session.get(f"{fake.base_url}999:NOPE/getMe") as response:
            unauthorized = (response.status, await response.json())

    assert body["ok"] is True and body["result"]["text"] == "json"
    assert body["result"]["from"]["id"] == 123 and body["result"]["chat"]["type"] == "private"
    assert me == {"ok": True, "result": fake.bot_user}
    assert broken[0] == 400 and broken[1]["ok"] is False
    assert unauthorized == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert [call.method for call in fake.calls[-3:]] == ["sendMessage", "getMe", "sendMessage"]


_JSON = {"Content-Type": "application/json"}


async def call_raw(fake: FakeBotAPI, method: str, params: dict[str, Any]) -> tuple[int, Any]:
    """POST a JSON body straight to the fake, bypassing PTB's client-side types."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{fake.token}/{method}", json=params) as response,
    ):
        return response.status, await response.json()


# -- sendMessage -------------------------------------------------------------------------------


async def test_send_message_parses_html_and_echoes_the_keyboard(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    markup = keyboard(("Yes", "answer:yes"), ("No", "answer:no"))
    html = '😀 <b>Hello</b> &lt;3 <a href="https://example.org/?a=1&amp;b=2">docs</a>'

    message = await bot.send_message(alice.id, html, parse_mode="HTML", reply_markup=markup)

    assert message.text == "😀 Hello <3 docs"
    # Offsets are UTF-16 code units: the emoji counts twice.
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        (MessageEntity.BOLD, 3, 5),
        (MessageEntity.TEXT_LINK, 12, 4),
    ]
    assert message.entities[1].url == "https://example.org/?a=1&b=2"
    assert message.reply_markup == markup
    assert message.from_user is not None and message.from_user.id == bot.id
    assert message.chat.type == "private" and message.chat.first_name == "Alice"
    assert message.message_id == 2  # Alice's /start was message 1 of this chat
    [stored] = fake.sent(alice.id)
    assert stored["text"] == message.text and stored["reply_markup"] == markup.to_dict()


async def test_callback_data_is_limited_to_64_bytes_not_characters(
    bot: Bot, alice: FakeUser
) -> None:
    """'é' is two bytes in UTF-8: 32 of them fit, one more ASCII byte does not."""
    await bot.send_message(alice.id, "fits", reply_markup=keyboard(("ok", "é" * 32)))

    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(alice.id, "too long", reply_markup=keyboard(("no", "é" * 32 + "a")))


@pytest.mark.parametrize(
    "markup",
    [
        {"inline_keyboard": [[{"text": "no action"}]]},
        {"inline_keyboard": [[{"text": "two", "callback_data": "x", "url": "https://x.org"}]]},
        {"inline_keyboard": [{"text": "not a row"}]},
        {"inline_keyboard": [[{"text": "empty data", "callback_data": ""}]]},
        {"inline_keyboard": [[{"text": "bad url", "url": "javascript:alert(1)"}]]},
        {"something": "else"},
    ],
)
async def test_malformed_keyboards_are_refused(
    fake: FakeBotAPI, alice: FakeUser, markup: dict[str, Any]
) -> None:
    """Sent as JSON by hand: PTB's own classes would not even build most of these."""
    status, body = await call_raw(
        fake, "sendMessage", {"chat_id": alice.id, "text": "x", "reply_markup": markup}
    )
    assert status == 400
    assert body["ok"] is False and body["description"].startswith("Bad Request: ")


@pytest.mark.parametrize(
    "html",
    ["1 < 2", "<b>unclosed", "<b>crossed <i>tags</b></i>", "AT&T", "<div>block</div>", "x</b>"],
)
async def test_bad_html_is_refused_like_telegram(bot: Bot, alice: FakeUser, html: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(alice.id, html, parse_mode="HTML")


async def test_text_length_is_counted_after_html_parsing(bot: Bot, alice: FakeUser) -> None:
    """4096 escaped '<' are 16384 characters on the wire but 4096 in the message: accepted."""
    accepted = await bot.send_message(alice.id, "&lt;" * 4096, parse_mode="HTML")
    assert accepted.text == "<" * 4096
    await bot.send_message(alice.id, "x" * 4096)

    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(alice.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(alice.id, "<b> </b>", parse_mode="HTML")


async def test_unknown_and_unstarted_chats_are_refused(fake: FakeBotAPI, bot: Bot) -> None:
    """A bot can only write to users who wrote first; strangers are not found at all."""
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hello?")

    shy = fake.user(3003, "Shy")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(shy.id, "hello?")
    fake.push_text(shy, "/start")
    await bot.send_message(shy.id, "hello!")


async def test_blocking_via_my_chat_member_makes_sends_forbidden(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    blocked = Update.de_json(fake.push_my_chat_member(alice, status="kicked"), bot)
    assert blocked.my_chat_member is not None
    assert blocked.my_chat_member.new_chat_member.status == "kicked"

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "still there?")

    fake.push_my_chat_member(alice, status="member")
    await bot.send_message(alice.id, "welcome back")


# -- getUpdates ----------------------------------------------------------------------------------


async def test_get_updates_offset_confirms_earlier_updates(fake: FakeBotAPI, bot: Bot) -> None:
    """Telegram's protocol: reading does not consume; offset N drops every update below N."""
    bob = fake.user(2002, "Bob", "bob")
    ids = [fake.push_text(bob, text)["update_id"] for text in ("/start", "one", "two")]

    first = await bot.get_updates(timeout=0)
    assert [u.update_id for u in first] == ids
    assert first[0].message is not None and first[0].message.text == "/start"
    assert first[0].message.entities[0].type == MessageEntity.BOT_COMMAND
    assert len(fake.pending_updates) == 3  # no offset, nothing confirmed

    second = await bot.get_updates(offset=ids[1], timeout=0)
    assert [u.update_id for u in second] == ids[1:]
    assert [u["update_id"] for u in fake.pending_updates] == ids[1:]
    assert fake.confirmed_offset == ids[1]

    assert await bot.get_updates(offset=ids[2] + 1, timeout=0) == ()
    assert fake.pending_updates == []
    assert fake.offsets_seen == [None, ids[1], ids[2] + 1]

    limited = fake.push_text(bob, "three"), fake.push_text(bob, "four")
    assert [u.update_id for u in await bot.get_updates(limit=1, timeout=0)] == [
        limited[0]["update_id"]
    ]


async def test_long_poll_answers_as_soon_as_an_update_arrives(fake: FakeBotAPI, bot: Bot) -> None:
    carol = fake.user(2003, "Carol")
    loop = asyncio.get_running_loop()

    started = loop.time()
    assert await bot.get_updates(timeout=5) == ()  # nothing queued: waits for the cap only
    assert LONG_POLL_CAP * 0.8 <= loop.time() - started < LONG_POLL_CAP + 0.5

    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_until(lambda: len(fake.calls_to("getUpdates")) == 2)
    pushed = fake.push_text(carol, "hi")
    [received] = await poll  # had the cap expired first, the poll would have returned ()
    assert received.update_id == pushed["update_id"]


async def test_a_second_poller_terminates_the_first(fake: FakeBotAPI, bot: Bot) -> None:
    """Two bot instances polling at once is a deployment bug Telegram reports with 409."""
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_until(lambda: len(fake.calls_to("getUpdates")) == 1)
    async with fake.make_bot() as second_instance:
        second = await second_instance.get_updates(timeout=0)

    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first
    assert second == ()


async def test_allowed_updates_setting_persists_and_filters(fake: FakeBotAPI, bot: Bot) -> None:
    """Like Telegram, allowed_updates sticks until changed, and unwanted updates are dropped."""
    dave = fake.user(2004, "Dave")
    fake.push_text(dave, "/start")
    fake.push_my_chat_member(dave, "kicked")

    only_members = await bot.get_updates(timeout=0, allowed_updates=["my_chat_member"])
    assert [u.my_chat_member is not None for u in only_members] == [True]
    assert len(fake.pending_updates) == 1  # the message is gone for good
    fake.push_text(dave, "ignored too")
    assert await bot.get_updates(offset=only_members[0].update_id + 1, timeout=0) == ()


async def test_replies_embed_the_original_message(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    question = message_of(Update.de_json(fake.push_group_message(alice, "Who am I?"), bot))

    answer = await bot.send_message(
        question.chat.id, "Alice", reply_parameters=ReplyParameters(question.message_id)
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "Who am I?"
    assert answer.chat.type == "supergroup"

    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(question.chat.id, "?", reply_parameters=ReplyParameters(999))
    await bot.send_message(
        question.chat.id,
        "fine",
        reply_parameters=ReplyParameters(999, allow_sending_without_reply=True),
    )


# -- editing and callbacks -----------------------------------------------------------------------


async def test_edit_message_text_and_not_modified(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    markup = keyboard(("A", "pick:a"))
    sent = await bot.send_message(alice.id, "Pick one", reply_markup=markup)
    chat_id, message_id = alice.id, sent.message_id

    edited = await bot.edit_message_text(
        "Picked <b>A</b>", chat_id, message_id, parse_mode="HTML", reply_markup=markup
    )
    assert isinstance(edited, Message)
    assert edited.text == "Picked A" and edited.edit_date is not None
    assert edited.reply_markup == markup

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "Picked <b>A</b>", chat_id, message_id, parse_mode="HTML", reply_markup=markup
        )

    # As on Telegram, an edit that omits reply_markup removes the keyboard.
    await bot.edit_message_text("Done", chat_id, message_id)
    [current] = fake.sent(alice.id)
    assert current["text"] == "Done" and "reply_markup" not in current

    restored = await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=markup)
    assert isinstance(restored, Message) and restored.reply_markup == markup
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=markup)

    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("nope", chat_id=alice.id, message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("not mine", chat_id=alice.id, message_id=1)


async def test_answer_callback_query_once_per_delivered_query(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    sent = await bot.send_message(alice.id, "Ready?", reply_markup=keyboard(("Yes", "ready:yes")))
    fake.press(alice, sent.message_id, "Yes")

    query = (await bot.get_updates(timeout=0))[-1].callback_query
    assert query is not None and query.data == "ready:yes"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert query.from_user.id == alice.id

    assert await bot.answer_callback_query(query.id, text="Saved", show_alert=True)
    assert fake.callback_answers == [CallbackAnswer(query.id, "Saved", True, None, None)]

    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await bot.answer_callback_query("12345")


# -- commands ----------------------------------------------------------------------------------


async def test_set_my_commands_validates_and_records(fake: FakeBotAPI, bot: Bot) -> None:
    commands = [BotCommand("start", "Begin"), BotCommand("profile_2", "Show your profile")]
    assert await bot.set_my_commands(commands)
    assert await bot.set_my_commands([BotCommand("hilfe", "Hilfe")], language_code="de")

    assert fake.commands == [c.to_dict() for c in commands]
    assert fake.commands_for(language_code="de") == [{"command": "hilfe", "description": "Hilfe"}]
    assert await bot.get_my_commands() == tuple(commands)

    for bad_name in ("Start", "with-dash", "x" * 33, ""):
        with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
            await bot.set_my_commands([BotCommand(bad_name, "fine")])
    for bad_description in ("", "x" * 257):
        with pytest.raises(BadRequest, match=r"(?i)bot_command_description_invalid"):
            await bot.set_my_commands([BotCommand("fine", bad_description)])
    assert fake.commands == [c.to_dict() for c in commands]  # refused calls change nothing


# -- fault injection and pacing ----------------------------------------------------------------


async def test_fail_next_429_raises_retry_after(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22's non-deprecated retry_after type
    fake.fail_next("sendMessage", 429, retry_after=3)

    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(alice.id, "hi")
    assert raised.value.retry_after == dtm.timedelta(seconds=3)
    assert fake.errors[-1] == ("sendMessage", 429, "Too Many Requests: retry after 3")

    await bot.send_message(alice.id, "hi again")  # times=1: the fault is used up


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (403, Forbidden, "bot was blocked by the user"),
        (500, NetworkError, "Internal Server Error"),
        (502, NetworkError, "Bad Gateway"),
    ],
)
async def test_fail_next_maps_to_ptb_errors(
    fake: FakeBotAPI,
    bot: Bot,
    alice: FakeUser,
    status: int,
    error: type[Exception],
    message: str,
) -> None:
    fake.fail_next("sendMessage", status, times=2)

    for _ in range(2):
        with pytest.raises(error, match=message):
            await bot.send_message(alice.id, "hi")
    await bot.send_message(alice.id, "recovered")


async def test_fail_next_can_target_one_chat(fake: FakeBotAPI, bot: Bot, alice: FakeUser) -> None:
    bob = fake.user(2002, "Bob")
    fake.push_text(bob, "/start")
    fake.fail_next("sendMessage", 403, chat_id=alice.id)

    await bot.send_message(bob.id, "unaffected")
    with pytest.raises(Forbidden):
        await bot.send_message(alice.id, "blocked once")
    await bot.send_message(alice.id, "fine now")


class ManualClock:
    """A clock the test moves by hand, so pacing assertions need no sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_send_rates_are_measured_and_optionally_enforced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    clock = ManualClock()
    async with FakeBotAPI(clock=clock) as fake, fake.make_bot() as bot:
        alice, bob = fake.user(1, "Alice"), fake.user(2, "Bob")
        fake.push_text(alice, "/start")
        fake.push_text(bob, "/start")
        for offset, user in [(0.0, alice), (0.4, alice), (0.8, alice), (0.9, bob), (5.0, alice)]:
            clock.now = 100.0 + offset
            await bot.send_message(user.id, "tick")

        assert fake.max_rate_per_chat(window=1.0) == 3
        assert fake.max_rate_per_chat(window=1.0, chat_id=bob.id) == 1
        assert fake.max_rate_overall(window=1.0) == 4

        fake.enforce_rate_limits = True
        fake.per_chat_limit = RateLimit(messages=1, per_seconds=1.0)
        clock.now = 110.0
        await bot.send_message(alice.id, "paced")
        clock.now = 110.5
        with pytest.raises(RetryAfter) as raised:
            await bot.send_message(alice.id, "too soon")
        assert raised.value.retry_after == dtm.timedelta(seconds=1)
        await bot.send_message(bob.id, "other chats are unaffected")
        clock.now = 111.0
        await bot.send_message(alice.id, "paced again")


# -- webhooks ------------------------------------------------------------------------------------


async def test_webhook_registration_delivery_and_conflict(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        if secret != "s3cret":
            return web.Response(status=403)
        received.append((secret, await request.json()))
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        assert await bot.set_webhook(hook_url, secret_token="s3cret", allowed_updates=["message"])
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (hook_url, 1)  # Alice's /start
        assert info.allowed_updates == ("message",)

        update = fake.push_text(alice, "hello")
        assert await fake.post_to_webhook(update) == 200
        assert received == [("s3cret", update)]
        message = Update.de_json(received[0][1], bot).message
        assert message is not None and message.text == "hello"

        assert await fake.post_to_webhook(update, secret_token="wrong") == 403
        assert "403" in ((await bot.get_webhook_info()).last_error_message or "")

        fake.push_text(alice, "queued while the receiver was away")
        assert await fake.flush_to_webhook() == [200, 200]  # Alice's /start and this one
        assert fake.pending_updates == [] and len(received) == 3

        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()

        assert await bot.delete_webhook(drop_pending_updates=True)
        assert fake.webhook is None and fake.pending_updates == []
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


# -- update builders and files -------------------------------------------------------------------


async def test_every_builder_produces_updates_ptb_understands(
    fake: FakeBotAPI, bot: Bot, alice: FakeUser
) -> None:
    sent = await bot.send_message(alice.id, "Menu", reply_markup=keyboard(("Go", "go")))
    built = {
        "text": fake.push_text(alice, "/profile@profilebot_test_bot now"),
        "callback": fake.push_callback(alice, sent.message_id, "go"),
        "photo": fake.push_photo(alice, caption="me", content=b"jpeg-bytes"),
        "document": fake.push_document(alice, "plan.pdf", "application/pdf", content=b"%PDF"),
        "edited": fake.push_edited_message(alice, 1, "/start again"),
        "sticker": fake.push_sticker(alice),
        "channel": fake.push_channel_post("news"),
        "group": fake.push_group_message(alice, "/start@profilebot_test_bot"),
        "blocked": fake.push_my_chat_member(alice, "kicked"),
        "garbage": fake.push_raw({"no_such_update_type": {"x": 1}}),
    }
    ids = [update["update_id"] for update in built.values()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    updates = {name: Update.de_json(data, bot) for name, data in built.items()}
    text = message_of(updates["text"])
    assert text.entities[0].length == len("/profile@profilebot_test_bot")
    query = updates["callback"].callback_query
    assert query is not None and isinstance(query.message, Message)
    assert query.message.text == "Menu"
    photo = message_of(updates["photo"])
    assert photo.caption == "me" and len(photo.photo) == 3
    document = message_of(updates["document"]).document
    assert document is not None and document.file_name == "plan.pdf"
    assert updates["edited"].edited_message is not None
    assert updates["edited"].edited_message.text == "/start again"
    sticker = message_of(updates["sticker"]).sticker
    assert sticker is not None and sticker.emoji == "👍"
    assert message_of(updates["channel"]).chat.type == "channel"
    assert message_of(updates["group"]).chat.type == "supergroup"
    member_update = updates["blocked"].my_chat_member
    assert member_update is not None and member_update.old_chat_member.status == "member"
    assert updates["garbage"].effective_message is None

    photo_file = await bot.get_file(photo.photo[-1].file_id)
    assert (photo_file.file_path or "").startswith(fake.base_file_url)
    assert bytes(await photo_file.download_as_bytearray()) == b"jpeg-bytes"
    document_file = await document.get_file()
    assert bytes(await document_file.download_as_bytearray()) == b"%PDF"
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


# -- a whole Application ---------------------------------------------------------------------------


async def test_application_polls_replies_and_handles_a_button(fake: FakeBotAPI) -> None:
    """PTB's own Updater against the fake: bootstrap, long polling, offsets, shutdown."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_html(
            "<b>Welcome</b>", reply_markup=keyboard(("Go", "go"))
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Going")
        await query.edit_message_text("Gone")

    application = fake.application_builder().build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(pressed))
    alice = fake.user(1001, "Alice")

    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=5)
        fake.push_text(alice, "/start")
        await fake.wait_until(lambda: bool(fake.sent(alice.id)))
        [welcome] = fake.sent(alice.id)
        assert welcome["text"] == "Welcome" and welcome["entities"][0]["type"] == "bold"

        fake.press(alice, welcome["message_id"], "Go")
        await fake.wait_until(lambda: fake.sent(alice.id)[0]["text"] == "Gone")
        await application.updater.stop()
        await application.stop()

    assert [answer.text for answer in fake.callback_answers] == ["Going"]
    assert "reply_markup" not in fake.sent(alice.id)[0]
    assert fake.calls_to("deleteWebhook")  # polling bootstrap clears any webhook
    assert fake.pending_updates == []  # PTB's final getUpdates confirmed everything it handled
    assert fake.errors == []


# -- the HTML parser on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text", "entities"),
    [
        ("plain &amp; simple &#x1F600; &#65;", "plain & simple 😀 A", []),
        ("<B>bold</B> <strong>x</strong>", "bold x", [("bold", 0, 4), ("bold", 5, 1)]),
        (
            "<i>a</i><em>b</em><u>c</u><ins>d</ins>",
            "abcd",
            ["italic", "italic", "underline", "underline"],
        ),
        ("<s>a</s><strike>b</strike><del>c</del>", "abc", ["strikethrough"] * 3),
        ('<span class="tg-spoiler">a</span><tg-spoiler>b</tg-spoiler>', "ab", ["spoiler"] * 2),
        ("<code>x &lt; y</code>", "x < y", [("code", 0, 5)]),
        ('<pre><code class="language-python">print(1)</code></pre>', "print(1)", [("pre", 0, 8)]),
        ("<pre><b>no nesting</b></pre>", "no nesting", [("pre", 0, 10)]),
        ("<blockquote expandable>q</blockquote>", "q", ["expandable_blockquote"]),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍", [("custom_emoji", 0, 2)]),
        ("<b>bold <i>both</i></b>", "bold both", [("bold", 0, 9), ("italic", 5, 4)]),
        ("a > b", "a > b", []),
    ],
)
def test_parse_html_accepts_telegram_markup(html: str, text: str, entities: list[Any]) -> None:
    parsed_text, parsed = parse_html(html)

    assert parsed_text == text
    if entities and isinstance(entities[0], str):
        assert [e["type"] for e in parsed] == entities
    else:
        assert [(e["type"], e["offset"], e["length"]) for e in parsed] == entities


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<br/>", 'Unsupported start tag "br/"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'expected "</b>", found "</i>"'),
        ("é</b>", "Unexpected end tag at byte offset 2"),  # offsets are in bytes
        ("<b", "Unclosed start tag"),
        ("<b>x</b", "Unclosed end tag"),
        ("AT&T", "Character '&' is reserved"),
        ("&nbsp;", "Character '&' is reserved"),
        ("<span>x</span>", 'must have class "tg-spoiler"'),
        ("<tg-emoji>x</tg-emoji>", 'must have attribute "emoji-id"'),
        ('<a href="x>y', "Unclosed start tag"),
    ],
)
def test_parse_html_refuses_what_telegram_refuses(html: str, reason: str) -> None:
    with pytest.raises(EntityParseError) as raised:
        parse_html(html)
    assert reason in str(raised.value)
