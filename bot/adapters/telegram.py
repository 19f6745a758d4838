"""Telegram: python-telegram-bot in, the outbox out, nothing in between but translation.

Inbound: a PTB ``Application`` (no ``Updater``: we fetch updates ourselves) whose handlers turn
an update into a ``Visitor`` and an ``Inbound`` and hand them to the ``FrontDesk``. Updates
come from our own long-polling loop, which confirms an update to Telegram (the next
``offset``) only after its turn has committed, or from a webhook that answers 200 only after
commit. Either way a crash never loses an update, and a repeated ``update_id`` is applied once
(the turn claims ``telegram:<bot>:<update_id>``).

Outbound: replies are outbox rows; ``TelegramSender`` renders one (HTML, inline keyboard)
and the platform-neutral ``DeliveryWorker`` paces, retries and gives up. ``TelegramDelivery``
is that alone, with no inbound side (``profilebot worker``); ``TelegramService`` is the whole
bot as ``profilebot run`` hosts it.

HTTP: PTB's requests go through ``AiohttpRequest`` (aiohttp, already a dependency for the
webhook) rather than PTB's default httpx client, which costs about five times more CPU per
call; the bot makes two or three calls per student message. PTB still builds the requests
and maps Telegram's errors (``RetryAfter``, ``Forbidden``, ``BadRequest``...). The calls made
for every message (``sendMessage``, the edit closing a question) go out as raw
``do_api_request`` calls: their answer is read as JSON, not parsed into PTB objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final

import aiohttp
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBUserWarning

from dialogues import Attachment, Command, Inbound, Reply, ReplyKind
from storage import OutboxRecord, is_transient

from ..app import App
from ..config import Settings
from ..delivery import DeliveryWorker, Pacer, SendResult
from ..errors import ConfigError, PlatformError
from ..frontdesk import (
    MENU,
    STAFF_MENU,
    STAFF_ROLES,
    STALE_TEXT,
    DeskOutcome,
    Visitor,
    desk_for,
)
from ..intake import MAX_ATTEMPTS
from ..notice_delivery import notice_of
from ..notices import FileKind, Notice, NoticeFile
from ..offload import StorageThreads
from ..runtime import (
    SHUTDOWN_GRACE,
    finish_within,
    run_until_stopped,
)
from ..service import ClosedQuestion
from ._widgets import inbound_for_pick
from .telegram_render import (
    MAX_MESSAGE_CHARS,
    CallbackAction,
    answered_html,
    decode_callback,
    escape,
    has_keyboard,
    keyboard_json,
    keyboard_rows,
    message_html,
    notice_caption,
    notice_messages,
    selected_from_buttons,
    split_text,
    toggled,
)

__all__ = [
    "PLATFORM",
    "AiohttpRequest",
    "TelegramBot",
    "TelegramDelivery",
    "TelegramSender",
    "TelegramService",
    "bot_username",
    "inbound_for_callback",
    "invite_link",
    "keyboard_for",
    "selected_from_markup",
]

log = logging.getLogger("profilebot.telegram")

# We fetch updates raw (``do_api_request``) so that one update PTB cannot parse is skipped
# instead of failing the whole batch forever, and send and edit raw so that Telegram's answer
# is not parsed into a Message nobody reads; PTB warns about that on every call.
warnings.filterwarnings(
    "ignore",
    message=r"Please use 'Bot\.(getUpdates|sendMessage|editMessageText|editMessageReplyMarkup)'",
    category=PTBUserWarning,
)

PLATFORM: Final = "telegram"
ALLOWED_UPDATES: Final = ("message", "edited_message", "callback_query", "my_chat_member")
POLL_TIMEOUT: Final = 30
"""Seconds a getUpdates long poll may wait on Telegram's side."""
_QUESTION_ROOM: Final = MAX_MESSAGE_CHARS - 200  # the answering hint follows the last part
_SECRET_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts
_NO_PREVIEW: Final = LinkPreviewOptions(is_disabled=True)
_NO_PREVIEW_JSON: Final = _NO_PREVIEW.to_json()
_SENT_IDS_KEPT: Final = 10_000
_SEND_WAIT_S: Final = 10.0
"""How long an answered question's edit waits for that question's own send to finish."""
_STOPPED_MEMBER: Final = frozenset({ChatMemberStatus.BANNED, ChatMemberStatus.LEFT})
_RETRY_WAIT_S: Final = 1.0
_MAX_RETRY_WAIT_S: Final = 30.0
"""Longest wait before fetching again updates whose turn failed (the database was away)."""

Context = ContextTypes.DEFAULT_TYPE


# ----------------------------------------------------------------------------------------------
# Outbound
# ----------------------------------------------------------------------------------------------


class AiohttpRequest(BaseRequest):
    """PTB's ``BaseRequest`` on aiohttp: what ``HTTPXRequest`` does, for less CPU per call.

    Same defaults as PTB's (a pool of 256 connections, 5 s timeouts, 20 s to upload a file).
    Telegram's answers are handled by PTB (``BaseRequest.post``): status codes become
    ``RetryAfter``, ``Forbidden``, ``BadRequest``...; a timeout here is ``TimedOut`` and any
    other transport failure ``NetworkError``, as with httpx. aiohttp has no write timeout: a
    write counts against the read timeout's overall bound instead.
    """

    __slots__ = ("_defaults", "_media_write_timeout", "_pool_size", "_session")

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._defaults = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._defaults[0]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none; a jar costs CPU
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        default_read, default_write, default_connect, default_pool = self._defaults
        data: aiohttp.FormData | dict[str, str] | None = None
        files = False
        if request_data is not None:
            data = request_data.json_parameters
            if request_data.contains_files:
                files = True
                form = aiohttp.FormData(data)
                for name, (filename, content, mimetype) in request_data.multipart_data.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
        read = _given(read_timeout, default_read)
        write = _given(write_timeout, self._media_write_timeout if files else default_write)
        connect = _given(connect_timeout, default_connect)
        pool = _given(pool_timeout, default_pool)
        timeout = aiohttp.ClientTimeout(
            total=None if read is None or write is None else read + write,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        try:
            async with session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _given(value: Any, default: float | None) -> float | None:
    """A timeout argument: PTB's DEFAULT_NONE means "this request's default"."""
    return default if value is BaseRequest.DEFAULT_NONE else value


class TelegramSender:
    """Sends one outbox message; Telegram's answer becomes a ``SendResult``."""

    platform = PLATFORM

    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        # Telegram's message id of recent sends, by outbox id, known as soon as Telegram
        # answers: the outbox row is marked sent a moment later, and a quick student can
        # answer in between (see ``TelegramBot._close_question``). A cache, bounded.
        self._sent: OrderedDict[int, str] = OrderedDict()
        self._sending: set[int] = set()
        self._waiting: dict[int, list[asyncio.Future[str | None]]] = {}

    async def message_id(self, outbox_id: int, timeout: float) -> str | None:
        """Telegram's id of the message sent for ``outbox_id``, waiting (up to ``timeout``
        seconds) if it is being sent right now; None if this process did not send it."""
        known = self._sent.get(outbox_id)
        if known is not None or outbox_id not in self._sending:
            return known
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(outbox_id, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiting.get(outbox_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiting.pop(outbox_id, None)

    def _remember(self, outbox_id: int, message_id: str) -> None:
        self._sent[outbox_id] = message_id
        if len(self._sent) > _SENT_IDS_KEPT:
            self._sent.popitem(last=False)
        for future in self._waiting.pop(outbox_id, []):
            if not future.done():
                future.set_result(message_id)

    async def send(self, message: OutboxRecord) -> SendResult:
        self._sending.add(message.id)
        try:
            return await self._send(message)
        finally:
            self._sending.discard(message.id)
            for future in self._waiting.pop(message.id, []):  # it failed: no id is coming
                if not future.done():
                    future.set_result(None)

    async def _send(self, message: OutboxRecord) -> SendResult:
        notice = notice_of(message)
        if notice is not None:
            return await self._send_notice(message, notice)
        reply = message.reply
        parts = _parts(reply)
        try:
            sent: object = None
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                params: dict[str, Any] = {
                    "chat_id": message.address,
                    "text": message_html(part) if last else escape(part.text),
                    "parse_mode": ParseMode.HTML.value,
                    "link_preview_options": _NO_PREVIEW_JSON,
                }
                markup = keyboard_json(part, str(message.id)) if last else None
                if markup is not None:
                    params["reply_markup"] = markup
                sent = await self._bot.do_api_request("sendMessage", api_kwargs=params)
        except TelegramError as exc:
            return _send_failure(exc)
        message_id = sent.get("message_id") if isinstance(sent, Mapping) else None
        if message_id is None:
            return SendResult.sent(None)
        self._remember(message.id, str(message_id))
        return SendResult.sent(str(message_id))

    async def _send_notice(self, message: OutboxRecord, notice: Notice) -> SendResult:
        """A notice part: its text as HTML messages, then its files (a photo with
        ``sendPhoto``, anything else with ``sendDocument``), in order."""
        message_id: str | None = None
        try:
            for text in notice_messages(notice):
                params: dict[str, Any] = {
                    "chat_id": message.address,
                    "text": text,
                    "parse_mode": ParseMode.HTML.value,
                    "link_preview_options": _NO_PREVIEW_JSON,
                }
                sent = await self._bot.do_api_request("sendMessage", api_kwargs=params)
                if isinstance(sent, Mapping) and sent.get("message_id") is not None:
                    message_id = str(sent["message_id"])
            for file in notice.files:
                message_id = str(await self._send_file(message.address, file))
        except TelegramError as exc:
            return _send_failure(exc)
        return SendResult.sent(message_id)

    async def _send_file(self, chat_id: str, file: NoticeFile) -> int:
        """One file, uploaded (multipart); Telegram's id of the message that carries it."""
        upload = InputFile(file.data, filename=file.filename)
        caption = notice_caption(file.caption) or None
        if file.kind is FileKind.PHOTO:
            sent = await self._bot.send_photo(
                chat_id, upload, caption=caption, parse_mode=ParseMode.HTML
            )
        else:
            sent = await self._bot.send_document(
                chat_id, upload, caption=caption, parse_mode=ParseMode.HTML
            )
        return sent.message_id


def _send_failure(error: TelegramError) -> SendResult:
    """What a refused send means for delivery: wait and resend, give the chat up, or retry."""
    if isinstance(error, RetryAfter):
        return SendResult.retry_after(_seconds(error.retry_after), "429 retry_after")
    if isinstance(error, Forbidden):
        return SendResult.unreachable(f"403 {error.message}")
    if isinstance(error, BadRequest):
        if "chat not found" in error.message.lower():
            return SendResult.unreachable(f"400 {error.message}")
        return SendResult.failed(f"400 {error.message}")
    return SendResult.failed(f"{type(error).__name__}: {error.message}")


def _parts(reply: Reply) -> list[Reply]:
    """The reply as messages Telegram accepts; a question's widgets go on the last one."""
    limit = _QUESTION_ROOM if reply.is_question else MAX_MESSAGE_CHARS
    texts = split_text(reply.text, limit) or [reply.text]
    plain = Reply(text="")
    return [dataclasses.replace(plain, text=t) for t in texts[:-1]] + [
        dataclasses.replace(reply, text=texts[-1])
    ]


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def keyboard_for(
    reply: Reply, ref: str, *, selected: frozenset[int] = frozenset()
) -> InlineKeyboardMarkup | None:
    """:func:`keyboard_rows` as PTB's markup (for the edits made through PTB), or None when
    the question is answered by typing or sending."""
    rows = keyboard_rows(reply, ref, selected=selected)
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def selected_from_markup(markup: InlineKeyboardMarkup | None) -> frozenset[int]:
    """The ✓-marked toggle indices in a message's current keyboard: the multi-select state."""
    if markup is None:
        return frozenset()
    return selected_from_buttons(
        (button.text, button.callback_data) for row in markup.inline_keyboard for button in row
    )


# ----------------------------------------------------------------------------------------------
# Inbound translation
# ----------------------------------------------------------------------------------------------


def inbound_for_callback(
    action: CallbackAction, reply: Reply, markup: InlineKeyboardMarkup | None
) -> Inbound | None:
    """What a tapped button means for the question ``reply``; None for an impossible tap.

    Toggles never get here: they only change the message's keyboard.
    """
    if action.action == "skip":
        return Inbound.of_command(Command.SKIP.value)
    if action.action == "done":
        if reply.kind is ReplyKind.MULTI_CHOICE:
            chosen = sorted(selected_from_markup(markup))
            return Inbound.of_selection(
                tuple(reply.options[i].value for i in chosen if i < len(reply.options))
            )
        return Inbound.of_command(Command.DONE.value)
    if action.action != "pick" or action.index is None:
        return None
    return inbound_for_pick(reply, action.index)


def _attachment(message: Message) -> Attachment | None:
    caption = message.caption
    if message.photo:
        largest = max(message.photo, key=lambda p: p.width * p.height)
        return Attachment("photo", file_id=largest.file_id, mime_type="image/jpeg", caption=caption)
    document = message.document
    if document is not None:
        return Attachment(
            "document",
            file_id=document.file_id,
            name=document.file_name,
            mime_type=document.mime_type,
            caption=caption,
        )
    return None


def _visitor(update: Update) -> Visitor | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE or user.is_bot:
        return None
    return Visitor(PLATFORM, str(user.id), str(chat.id))


# ----------------------------------------------------------------------------------------------
# The bot
# ----------------------------------------------------------------------------------------------


class TelegramBot:
    """profilebot on Telegram: handlers, polling or webhook, and outbox delivery.

    Built from settings; a missing token is a ``ConfigError`` here, not at the first update.
    """

    def __init__(self, app: App, *, pacer: Pacer | None = None) -> None:
        settings = app.settings
        token = _token(settings)
        _check_webhook_settings(settings)
        base = settings.telegram_api_base_url.rstrip("/")
        self._app = app
        self._desk = desk_for(app, PLATFORM)
        self.application = (
            Application.builder()
            .token(token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .request(AiohttpRequest())
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
            .updater(None)
            .build()
        )
        self.application.add_handler(CallbackQueryHandler(self._on_callback))
        self.application.add_handler(
            ChatMemberHandler(self._on_member, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
        self.application.add_handler(MessageHandler(private & filters.TEXT, self._on_text))
        self.application.add_handler(
            MessageHandler(private & (filters.PHOTO | filters.Document.ALL), self._on_file)
        )
        self.application.add_handler(MessageHandler(private, self._on_other))
        self.application.add_error_handler(self._on_error)
        self.sender = TelegramSender(self.application.bot)
        self._offload = StorageThreads(app.db.useful_threads)
        self.worker = _delivery_worker(app, self.sender, pacer, self._offload)
        self._failed: set[int] = set()
        # Failures of updates whose error was not transient, by update id: past MAX_ATTEMPTS
        # an update is given up on. (A message's own turn is parked by the desk before that;
        # this bounds everything else an update can fail in.)
        self._failures: dict[int, int] = {}
        self._retry_wait = _RETRY_WAIT_S
        # Edits closing answered questions, made after their turn without holding up the
        # next getUpdates (or the webhook's answer); awaited before the bot stops.
        self._edits: set[asyncio.Task[None]] = set()
        self._bot_id = token.split(":", 1)[0]
        self._staff_chats: set[str] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> TelegramBot:
        try:
            await self.application.initialize()  # getMe: a wrong token fails here
        except InvalidToken as exc:
            raise ConfigError(f"setting TELEGRAM_BOT_TOKEN: Telegram refused it ({exc})") from None
        await self.application.start()
        await self.application.bot.set_my_commands(
            [BotCommand(c.name, c.description) for c in MENU]
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._finish_edits()
        await self.application.stop()
        await self.application.shutdown()
        self._offload.close()

    @property
    def username(self) -> str:
        return self.application.bot.username

    @property
    def edits_in_flight(self) -> int:
        """Edits of answered questions started and not finished yet (for tests)."""
        return len(self._edits)

    async def run_polling(self, stop: asyncio.Event, *, timeout: int = POLL_TIMEOUT) -> None:
        """Long-poll until ``stop``; deliver the outbox alongside."""
        await self.application.bot.delete_webhook()
        delivery = asyncio.create_task(self.worker.run(stop))
        try:
            await run_until_stopped(self._poll(stop, timeout), stop)
        finally:
            stop.set()
            await finish_within(delivery, SHUTDOWN_GRACE)
            await self._finish_edits()

    async def _poll(self, stop: asyncio.Event, timeout: int) -> None:
        offset = 0
        backoff = 1.0
        while not stop.is_set():
            try:
                raw = await self._get_updates(offset, timeout, stop)
            except (Conflict, InvalidToken):
                raise
            except RetryAfter as exc:
                await _sleep_unless(stop, _seconds(exc.retry_after))
                continue
            except TelegramError as exc:
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc, backoff)
                await _sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = 1.0
            if raw:
                offset = await self.process_batch(raw, offset)
                if self._failed:  # the database may be away: wait longer each time
                    await _sleep_unless(stop, self._retry_wait)
                    self._retry_wait = min(self._retry_wait * 2, _MAX_RETRY_WAIT_S)
                else:
                    self._retry_wait = _RETRY_WAIT_S

    async def _get_updates(
        self, offset: int, timeout: int, stop: asyncio.Event
    ) -> list[Mapping[str, Any]]:
        request = asyncio.ensure_future(
            self.application.bot.do_api_request(
                "getUpdates",
                api_kwargs={
                    "offset": offset,
                    "timeout": timeout,
                    "allowed_updates": list(ALLOWED_UPDATES),
                },
                read_timeout=timeout + 10,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not request.done():
            request.cancel()
            return []
        result = request.result()
        return [u for u in result if isinstance(u, Mapping)] if isinstance(result, list) else []

    async def process_batch(self, raw: list[Mapping[str, Any]], offset: int) -> int:
        """Process fetched updates (one chat's in order, chats in parallel); the next offset.

        The offset moves past an update only once it and every earlier one has committed, was
        unreadable, or was given up on, so updates whose turn failed (transiently) are fetched
        and tried again.
        """
        by_chat: dict[object, list[Update]] = {}
        ids: list[int] = []
        for data in raw:
            update_id = data.get("update_id")
            if not isinstance(update_id, int) or update_id < offset:
                continue
            ids.append(update_id)
            update = self._parse(data)
            if update is not None:
                chat = update.effective_chat
                by_chat.setdefault(chat.id if chat else update_id, []).append(update)
        results = await asyncio.gather(*(self._process_in_order(u) for u in by_chat.values()))
        failed = sorted(i for batch in results for i in batch)
        if failed:
            return failed[0]
        return max(ids, default=offset - 1) + 1

    async def _process_in_order(self, updates: list[Update]) -> list[int]:
        for i, update in enumerate(updates):
            if not await self.process(update):
                return [u.update_id for u in updates[i:]]
        return []

    async def process(self, update: Update) -> bool:
        """Run one update through the handlers; False when it failed and should be retried."""
        self._failed.discard(update.update_id)
        await self.application.process_update(update)
        if update.update_id in self._failed:
            return False
        self._failures.pop(update.update_id, None)
        return True

    def _parse(self, data: Mapping[str, Any]) -> Update | None:
        try:
            return Update.de_json(dict(data), self.application.bot)
        except Exception as exc:  # a shape PTB cannot read: skip it rather than loop on it
            log.warning("ignoring unreadable update %s (%s)", data.get("update_id"), type(exc))
            return None

    # -- webhook -------------------------------------------------------------------------------

    def webhook_app(self, path: str, secret: str) -> web.Application:
        """The aiohttp app serving Telegram's webhook POSTs at ``path``."""
        expected = secret.encode()

        async def receive(request: web.Request) -> web.Response:
            given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.Response(status=403, text="forbidden")
            try:
                data = await request.json()
            except ValueError:
                return web.Response(status=200)  # garbage: nothing to retry
            if not isinstance(data, Mapping) or not isinstance(data.get("update_id"), int):
                return web.Response(status=200)
            update = self._parse(data)
            if update is None or await self.process(update):
                return web.Response(status=200)
            return web.Response(status=500, text="try again")  # Telegram redelivers

        webapp = web.Application(client_max_size=1 << 20)
        webapp.router.add_post(path, receive)
        return webapp

    async def run_webhook(
        self, stop: asyncio.Event, *, url: str, secret: str, port: int, host: str = "0.0.0.0"
    ) -> None:
        """Register ``url`` with Telegram and serve it on ``port`` until ``stop``."""
        path = "/" + url.split("://", 1)[-1].partition("/")[2]
        runner = web.AppRunner(
            self.webhook_app(path, secret), access_log=None, shutdown_timeout=SHUTDOWN_GRACE
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        delivery = asyncio.create_task(self.worker.run(stop))
        try:
            await self.application.bot.set_webhook(
                url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
            )
            await stop.wait()
        finally:
            stop.set()
            await finish_within(delivery, SHUTDOWN_GRACE)
            await runner.cleanup()
            await self._finish_edits()

    # -- handlers ------------------------------------------------------------------------------

    async def _on_text(self, update: Update, context: Context) -> None:
        message, visitor = update.effective_message, _visitor(update)
        if message is None or visitor is None or message.text is None:
            return
        await self._receive(update, visitor, Inbound.of_text(message.text))

    async def _on_file(self, update: Update, context: Context) -> None:
        message, visitor = update.effective_message, _visitor(update)
        attachment = None if message is None else _attachment(message)
        if visitor is None or attachment is None:
            return
        await self._receive(update, visitor, Inbound.of_file(attachment))

    async def _on_other(self, update: Update, context: Context) -> None:
        visitor = _visitor(update)
        if visitor is not None:
            await self._run(update, self._desk.unsupported, visitor)

    async def _on_member(self, update: Update, context: Context) -> None:
        change, visitor = update.my_chat_member, _visitor(update)
        if change is None or visitor is None:
            return
        reachable = change.new_chat_member.status not in _STOPPED_MEMBER
        await self._run(update, self._desk.set_reachable, visitor, reachable)

    async def _on_callback(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        toast = None
        try:
            toast = await self._callback(update, query)
        finally:  # every query is answered, or the student's button spins for a while
            await _quietly(query.answer(toast))

    async def _callback(self, update: Update, query: CallbackQuery) -> str | None:
        """Handle a tap; returns the toast to show, if any."""
        visitor = _visitor(update)
        action = decode_callback(query.data or "")
        message = query.message
        if visitor is None or action is None or not isinstance(message, Message):
            return None
        record = await self._question(action.ref, visitor)
        if record is None:
            answered = await self._press(update, visitor, action)
            await _drop_buttons(message)
            return None if answered else STALE_TEXT
        reply = record.reply
        if action.action == "toggle" and action.index is not None:
            chosen = toggled(selected_from_markup(message.reply_markup), action.index)
            await _quietly(
                message.edit_reply_markup(keyboard_for(reply, str(record.id), selected=chosen))
            )
            return None
        inbound = inbound_for_callback(action, reply, message.reply_markup)
        if inbound is None:
            return None
        outcome = await self._receive(update, visitor, inbound, question_ref=record.id)
        if outcome is not None and outcome.stale:
            await _drop_buttons(message)
            return STALE_TEXT
        return None

    async def _press(self, update: Update, visitor: Visitor, action: CallbackAction) -> bool:
        """A tap on a button of a message outside any conversation (a confirm question): the
        desk decides what it means; False when it means nothing (stale, forged)."""
        if action.action != "pick" or action.index is None or not action.ref.isdigit():
            return False
        outcome = await self._run(update, self._desk.press, visitor, int(action.ref), action.index)
        return isinstance(outcome, DeskOutcome) and not outcome.stale

    async def _question(self, ref: str, visitor: Visitor) -> OutboxRecord | None:
        """The question a button refers to, if it is still open and was sent to this chat."""
        if not ref.isdigit():
            return None
        record = await self._offload(self._app.outbox.open_question, int(ref))
        if record is None or record.platform != PLATFORM or record.address != visitor.address:
            return None  # closed, or a forged button naming someone else's message
        return record

    async def _receive(
        self,
        update: Update,
        visitor: Visitor,
        inbound: Inbound,
        *,
        question_ref: int | None = None,
    ) -> DeskOutcome | None:
        outcome = await self._run(
            update,
            self._desk.receive,
            visitor,
            inbound,
            event_key=f"{PLATFORM}:{self._bot_id}:{update.update_id}",
            question_ref=question_ref,
        )
        if not isinstance(outcome, DeskOutcome):
            return None
        if outcome.closed is not None:
            self._edit_later(visitor, outcome.closed)
        if outcome.person is not None and STAFF_ROLES.intersection(outcome.person.roles):
            await self._staff_menu(visitor)
        return outcome

    async def _staff_menu(self, visitor: Visitor) -> None:
        """Staff get the menu with their commands in their own chat (once per process)."""
        if visitor.address in self._staff_chats:
            return
        self._staff_chats.add(visitor.address)
        await _quietly(
            self.application.bot.set_my_commands(
                [BotCommand(c.name, c.description) for c in STAFF_MENU],
                scope=BotCommandScopeChat(int(visitor.address)),
            )
        )

    async def _run(self, update: Update, work: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a desk call in a thread (it holds a database transaction), then deliver."""
        result = await self._offload(work, *args, **kwargs)
        self.worker.wake()
        return result

    def _edit_later(self, visitor: Visitor, closed: ClosedQuestion) -> None:
        """Close the question in the background: the turn has committed, the update is done."""
        task = asyncio.create_task(self._close_question(visitor, closed))
        self._edits.add(task)
        task.add_done_callback(self._edit_done)

    def _edit_done(self, task: asyncio.Task[None]) -> None:
        self._edits.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("closing an answered question failed: %s", type(error).__name__)

    async def _finish_edits(self) -> None:
        """Let the closing edits under way finish, for up to ``SHUTDOWN_GRACE`` seconds."""
        if self._edits:
            edits = asyncio.gather(*self._edits, return_exceptions=True)
            await finish_within(edits, SHUTDOWN_GRACE)

    async def _close_question(self, visitor: Visitor, closed: ClosedQuestion) -> None:
        """Take a closed question's buttons away, showing its answer on it when it got one.

        The turn read the question's Telegram id from its outbox row; a student quick
        enough (or typing ahead) answers before that row is marked sent, or before the
        question is even out: then the id comes from the send, once it is done.
        """
        platform_message_id = closed.platform_message_id
        if platform_message_id is None:
            platform_message_id = await self.sender.message_id(closed.outbox_id, _SEND_WAIT_S)
        if platform_message_id is None:
            return
        target = {"chat_id": visitor.address, "message_id": int(platform_message_id)}
        bot = self.application.bot
        # Raw calls: Telegram's answer (the edited Message) is not needed. An edit without a
        # reply_markup removes the message's keyboard.
        if closed.answer is None:
            if has_keyboard(closed.reply):
                await _quietly(bot.do_api_request("editMessageReplyMarkup", api_kwargs=target))
            return
        text = answered_html(closed.reply.text, closed.answer)
        await _quietly(
            bot.do_api_request(
                "editMessageText",
                api_kwargs={**target, "text": text, "parse_mode": ParseMode.HTML.value},
            )
        )

    async def _on_error(self, update: object, context: Context) -> None:
        error = context.error
        # Type only: exception text can quote parameters, and parameters can be student text.
        log.error("update %s failed: %s", getattr(update, "update_id", "?"), type(error).__name__)
        if isinstance(update, Update) and self._retry(update.update_id, error):
            self._failed.add(update.update_id)

    def _retry(self, update_id: int, error: BaseException | None) -> bool:
        """Whether a failed update is tried again: always after a transient failure, else up
        to ``MAX_ATTEMPTS`` times in all (so it can never hold up the chats behind it)."""
        if error is not None and is_transient(error):
            return True
        failures = self._failures.get(update_id, 0) + 1
        if failures < MAX_ATTEMPTS:
            self._failures[update_id] = failures
            return True
        self._failures.pop(update_id, None)
        log.error("gave up on update %s after %d failed attempts", update_id, failures)
        return False


async def _drop_buttons(message: Message) -> None:
    """Remove the buttons of a message whose question is closed (if it still has any)."""
    if message.reply_markup is not None and message.reply_markup.inline_keyboard:
        await _quietly(message.edit_reply_markup(None))


async def _quietly(call: Any) -> None:
    """A cosmetic call (edit, callback answer): its failure must not fail the turn."""
    try:
        await call
    except TelegramError as exc:
        log.info("cosmetic Telegram call failed: %s", type(exc).__name__)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def _delivery_worker(
    app: App, sender: TelegramSender, pacer: Pacer | None, offload: StorageThreads
) -> DeliveryWorker:
    def unreachable(record: OutboxRecord, error: str) -> None:
        app.people.set_reachable(PLATFORM, None, reachable=False, chat_id=record.address)

    return DeliveryWorker(
        app.outbox,
        sender,
        pacer=pacer,
        on_unreachable=unreachable,
        clock=app.clock,
        offload=offload,
    )


def _token(settings: Settings) -> str:
    token = settings.telegram_bot_token
    if token is None:
        raise ConfigError("setting TELEGRAM_BOT_TOKEN is needed for --platform telegram")
    return token.get_secret_value()


class TelegramDelivery:
    """Delivery to Telegram and nothing else (``profilebot worker``): no polling, no webhook.

    Several may run, in as many processes, beside the one ``profilebot run``: they claim
    different messages and share the bot's rate (see ``DeliveryWorker``).
    """

    def __init__(
        self, app: App, *, pacer: Pacer | None = None, announce: Callable[[str], None] = log.info
    ) -> None:
        base = app.settings.telegram_api_base_url.rstrip("/")
        self.bot = Bot(
            _token(app.settings),
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=AiohttpRequest(),
        )
        self.sender = TelegramSender(self.bot)
        self._offload = StorageThreads(app.db.useful_threads)
        self.worker = _delivery_worker(app, self.sender, pacer, self._offload)
        self._announce = announce

    async def __aenter__(self) -> TelegramDelivery:
        try:
            await self.bot.initialize()  # getMe: a wrong token fails here
        except InvalidToken as exc:
            raise ConfigError(f"setting TELEGRAM_BOT_TOKEN: Telegram refused it ({exc})") from None
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.bot.shutdown()
        self._offload.close()

    async def run(self, stop: asyncio.Event) -> None:
        self._announce(f"delivering to Telegram as @{self.bot.username}")
        await self.worker.run(stop)


class TelegramService:
    """The whole bot on Telegram as ``profilebot run`` hosts it: a webhook when configured
    (on ``port``), else long polling; delivery alongside."""

    def __init__(
        self, app: App, *, port: int = 8080, announce: Callable[[str], None] = log.info
    ) -> None:
        self.bot = TelegramBot(app)
        settings = app.settings
        self._url, self._secret = settings.telegram_webhook_url, settings.telegram_webhook_secret
        self._port = port
        self._announce = announce

    @staticmethod
    def serves_http(settings: Settings) -> bool:
        """Whether it would serve HTTP (a webhook) on its port."""
        return bool(settings.telegram_webhook_url) and settings.telegram_webhook_secret is not None

    async def __aenter__(self) -> TelegramService:
        await self.bot.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.bot.__aexit__(*exc_info)

    async def run(self, stop: asyncio.Event) -> None:
        bot = self.bot
        if self._url and self._secret is not None:
            self._announce(f"serving the Telegram webhook for @{bot.username} on port {self._port}")
            await bot.run_webhook(
                stop, url=self._url, secret=self._secret.get_secret_value(), port=self._port
            )
        else:
            self._announce(f"long-polling Telegram as @{bot.username}")
            await bot.run_polling(stop)


def _check_webhook_settings(settings: Settings) -> None:
    url, secret = settings.telegram_webhook_url, settings.telegram_webhook_secret
    if url and secret is None:
        raise ConfigError("setting TELEGRAM_WEBHOOK_SECRET is needed with TELEGRAM_WEBHOOK_URL")
    if secret is not None and not _SECRET_RE.fullmatch(secret.get_secret_value()):
        raise ConfigError(
            "setting TELEGRAM_WEBHOOK_SECRET: use 1-256 characters A-Z, a-z, 0-9, _ and -"
        )


async def bot_username(app: App) -> str | None:
    """The bot's @username (for t.me invite links), or None when no token is configured.

    Raises `PlatformError` when Telegram refuses or cannot be reached.
    """
    token = app.settings.telegram_bot_token
    if token is None:
        return None
    base = app.settings.telegram_api_base_url.rstrip("/")
    try:
        async with Bot(token.get_secret_value(), base_url=f"{base}/bot") as bot:
            return bot.username
    except TelegramError as exc:
        raise PlatformError(f"Telegram said: {exc}") from exc


def invite_link(username: str, code: str) -> str:
    return f"https://t.me/{username}?start={code}"
