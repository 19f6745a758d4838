"""A fake Telegram Bot API server that a real python-telegram-bot client talks to over HTTP.

Why a server and not a mocked ``Bot``: the bugs worth catching live in the parts a mock skips —
how PTB encodes requests, how it maps HTTP errors onto exceptions, what Telegram refuses
(bad HTML, 65-byte callback data, edits that change nothing, unknown chats) and the update
offset protocol. So the fake listens on 127.0.0.1 (ephemeral port), inside the test's event
loop, and answers like Telegram does: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ..., "parameters": ...}``.

Usage::

    async with FakeBotAPI() as fake, fake.make_bot() as bot:
        alice = fake.user(1001, "Alice")
        fake.push_text(alice, "/start")
        [update] = await bot.get_updates()
        await bot.send_message(alice.id, "<b>Hi</b>", parse_mode="HTML")
        assert fake.sent(alice.id)[0]["text"] == "Hi"

Import it as ``from tests.telegram.fake_bot_api import FakeBotAPI`` (the repository root is on
``sys.path`` through pytest's ``pythonpath``; there are no ``__init__.py`` files).

What PTB 22 actually sends (read from ``telegram/request``): every call is a POST to
``{base_url}{token}/{method}`` (``base_url`` is ``.../bot``, the token is appended, no slash),
encoded as ``application/x-www-form-urlencoded`` — or ``multipart/form-data`` when files are
uploaded — never JSON. String parameters are sent as-is and every other value
(ints, bools, dicts, lists) as its JSON text, e.g. ``reply_markup={"inline_keyboard": ...}``,
``show_alert=true``. Hence each known parameter is decoded by name (:data:`_PARAM_KINDS`), the
same way Telegram's server coerces them; JSON bodies and query strings are accepted too.

Deliberate simplifications: only the methods listed in ``FakeBotAPI._handlers`` exist (others
answer 404 "Not Found", which PTB reports as ``InvalidToken``/``EndPointNotFound``); Markdown
parse modes are accepted but not parsed; text length is counted in code points.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import itertools
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import EllipsisType, TracebackType
from typing import Any, NamedTuple, Self

import telegram
from aiohttp import ClientSession, web
from telegram.ext import ApplicationBuilder

JSONDict = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_COMMANDS = 100

# ----------------------------------------------------------------------------------------------
# Errors and records
# ----------------------------------------------------------------------------------------------


class TelegramAPIError(Exception):
    """An error answer, raised inside a method handler and sent as Telegram's error JSON."""

    def __init__(
        self, status: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = dict(parameters) if parameters else None

    def to_json(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(reason: str) -> TelegramAPIError:
    return TelegramAPIError(400, f"Bad Request: {reason}")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; the message is Telegram's reason after the prefix."""


class Call(NamedTuple):
    """One API call as the fake decoded it: ``method`` is canonical (``sendMessage``)."""

    method: str
    params: JSONDict


class RawRequest(NamedTuple):
    """How a call arrived on the wire, to check what the client really sends."""

    method: str
    http_method: str
    content_type: str


class ErrorRecord(NamedTuple):
    """An error answer the fake gave (injected faults included)."""

    method: str
    status: int
    description: str


@dataclass(frozen=True)
class CallbackAnswer:
    """An ``answerCallbackQuery`` the bot made for a delivered callback query."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass
class WebhookState:
    """The webhook as registered with ``setWebhook`` (``None`` on the fake when unset)."""

    url: str
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    ip_address: str | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class _Described:
    """A success answer that also carries Telegram's ``description`` (setWebhook & co)."""

    result: Any
    description: str


@dataclass(frozen=True)
class RateLimit:
    """At most ``messages`` sends within any ``per_seconds`` sliding window."""

    messages: int
    per_seconds: float


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user the tests act as; build with :meth:`FakeBotAPI.user`."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"
    last_name: str | None = None

    def to_dict(self) -> JSONDict:
        """The ``User`` object as Telegram serialises it (absent optionals are omitted)."""
        data: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class _Chat:
    id: int
    type: str  # "private" | "group" | "supergroup" | "channel"
    user: FakeUser | None = None
    title: str | None = None
    username: str | None = None
    started: bool = False  # private chats: the user has written to the bot
    blocked: bool = False  # private chats: the user blocked the bot
    last_message_id: int = 0

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id

    def to_dict(self) -> JSONDict:
        if self.user is not None:
            data: JSONDict = {"id": self.id, "first_name": self.user.first_name}
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data = {"id": self.id, "title": self.title}
            if self.username:
                data["username"] = self.username
        data["type"] = self.type
        return data


@dataclass
class _StoredMessage:
    message: JSONDict
    from_bot: bool
    deleted: bool = False


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes


@dataclass
class _Fault:
    method: str  # lower-case
    status: int
    description: str
    parameters: JSONDict | None
    remaining: int
    chat_id: int | str | None


# ----------------------------------------------------------------------------------------------
# Telegram HTML
# ----------------------------------------------------------------------------------------------

_TAG_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTRIBUTE_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def _utf16_len(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _decode_html_entity(source: str, start: int) -> tuple[str, int] | None:
    """Decode ``&name;``/``&#N;``/``&#xH;`` at ``start``: (character, index after it) or None."""
    end = source.find(";", start + 1, start + 12)
    if end < 0:
        return None
    body = source[start + 1 : end]
    if body in _NAMED_HTML_ENTITIES:
        return _NAMED_HTML_ENTITIES[body], end + 1
    if re.fullmatch(r"#[xX][0-9a-fA-F]{1,6}", body):
        code = int(body[2:], 16)
    elif re.fullmatch(r"#[0-9]{1,7}", body):
        code = int(body[1:])
    else:
        return None
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), end + 1


def _decode_attribute(raw: str) -> str:
    """Attribute values decode entities but keep a bare ``&`` (URLs with query strings)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        decoded = _decode_html_entity(raw, i) if raw[i] == "&" else None
        if decoded is None:
            out.append(raw[i])
            i += 1
        else:
            out.append(decoded[0])
            i = decoded[1]
    return "".join(out)


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    utf16_start: int
    out_index: int
    language: str | None = None


class _HTMLParser:
    """A scanner following Telegram's (tdlib's) HTML rules and error messages.

    Telegram's docs require every ``<``, ``>`` and ``&`` that is not markup to be escaped. The
    fake is strict about ``<`` (as Telegram is) and about ``&`` in text (Telegram tolerates some
    bare ampersands, but a bot relying on that is one ``&lt`` away from a refused message);
    a bare ``>`` passes, as on Telegram.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[str] = []
        self.utf16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JSONDict] = []

    def byte_offset(self, index: int) -> int:
        return len(self.source[:index].encode("utf-8"))

    def error(self, reason: str) -> EntityParseError:
        return EntityParseError(reason)

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.utf16 += _utf16_len(text)

    def parse(self) -> tuple[str, list[JSONDict]]:
        source, i = self.source, 0
        while i < len(source):
            char = source[i]
            if char == "&":
                decoded = _decode_html_entity(source, i)
                if decoded is None:
                    raise self.error(
                        f"Character '&' is reserved and must be escaped as &amp; "
                        f"at byte offset {self.byte_offset(i)}"
                    )
                self.emit(decoded[0])
                i = decoded[1]
            elif char != "<":
                self.emit(char)
                i += 1
            elif source.startswith("</", i):
                i = self.end_tag(i)
            else:
                i = self.start_tag(i)
        if self.stack:
            raise self.error(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def start_tag(self, begin: int) -> int:
        source, i = self.source, begin + 1
        while i < len(source) and not source[i].isspace() and source[i] != ">":
            i += 1
        if i >= len(source):
            raise self.error(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        name = source[begin + 1 : i].lower()
        if name not in _TAG_ENTITY_TYPES:
            raise self.error(
                f'Unsupported start tag "{name}" at byte offset {self.byte_offset(begin)}'
            )
        attributes, i = self.attributes(i, name, begin)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise self.error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(begin)}'
            )
        if name == "tg-emoji" and not attributes.get("emoji-id"):
            raise self.error(
                f'Tag "tg-emoji" must have attribute "emoji-id" '
                f"at byte offset {self.byte_offset(begin)}"
            )
        self.stack.append(_OpenTag(name, attributes, self.utf16, len(self.out)))
        return i + 1

    def attributes(self, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
        """Parse ``name="v" name='v' name=v name`` up to ``>``; return them and the ``>`` index."""
        source, found = self.source, dict[str, str]()
        unclosed = f"Unclosed start tag at byte offset {self.byte_offset(begin)}"
        while True:
            while i < len(source) and source[i].isspace():
                i += 1
            if i >= len(source):
                raise self.error(unclosed)
            if source[i] == ">":
                return found, i
            match = _ATTRIBUTE_NAME_RE.match(source, i)
            if match is None:
                raise self.error(
                    f'Empty attribute name in the tag "{tag}" at byte offset {self.byte_offset(i)}'
                )
            attribute, i = match.group().lower(), match.end()
            while i < len(source) and source[i].isspace():
                i += 1
            value = ""
            if i < len(source) and source[i] == "=":
                i += 1
                while i < len(source) and source[i].isspace():
                    i += 1
                if i >= len(source):
                    raise self.error(unclosed)
                if source[i] in "\"'":
                    close = source.find(source[i], i + 1)
                    if close < 0:
                        raise self.error(unclosed)
                    value, i = _decode_attribute(source[i + 1 : close]), close + 1
                else:
                    start = i
                    while i < len(source) and not source[i].isspace() and source[i] != ">":
                        i += 1
                    value = _decode_attribute(source[start:i])
            found[attribute] = value

    def end_tag(self, begin: int) -> int:
        close = self.source.find(">", begin)
        if close < 0:
            raise self.error(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        name = self.source[begin + 2 : close].strip().lower()
        if not self.stack:
            raise self.error(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        tag = self.stack.pop()
        if name != tag.name:
            raise self.error(
                f"Unmatched end tag at byte offset {self.byte_offset(begin)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        self.close_entity(tag)
        return close + 1

    def close_entity(self, tag: _OpenTag) -> None:
        """Turn a closed tag into an entity; code/pre content carries no nested entities."""
        length = self.utf16 - tag.utf16_start
        enclosing = [open_tag.name for open_tag in self.stack]
        if "pre" in enclosing or "code" in enclosing:
            language = tag.attributes.get("class", "")
            if tag.name == "code" and enclosing[-1] == "pre" and language.startswith("language-"):
                self.stack[-1].language = language.removeprefix("language-")
            return
        if length == 0:
            return
        entity: JSONDict = {
            "offset": tag.utf16_start,
            "length": length,
            "type": _TAG_ENTITY_TYPES[tag.name],
        }
        if tag.name == "a":
            entity["url"] = tag.attributes.get("href") or "".join(self.out[tag.out_index :])
        elif tag.name == "pre" and tag.language:
            entity["language"] = tag.language
        elif tag.name == "blockquote" and "expandable" in tag.attributes:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "tg-emoji":
            entity["custom_emoji_id"] = tag.attributes["emoji-id"]
        self.entities.append(entity)


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML into (plain text, MessageEntity dicts with UTF-16 offsets).

    Raises :class:`EntityParseError` with Telegram's reason, e.g.
    ``Unsupported start tag "div" at byte offset 0``.
    """
    return _HTMLParser(source).parse()


# ----------------------------------------------------------------------------------------------
# Parameter decoding and validation
# ----------------------------------------------------------------------------------------------

# How Telegram reads each parameter it knows; unknown parameters are kept as received.
_PARAM_KINDS = {
    "chat_id": "chat_id",
    "message_id": "int",
    "message_thread_id": "int",
    "offset": "int",
    "limit": "int",
    "timeout": "float",
    "max_connections": "int",
    "cache_time": "int",
    "user_id": "int",
    "text": "str",
    "parse_mode": "str",
    "url": "str",
    "secret_token": "str",
    "ip_address": "str",
    "callback_query_id": "str",
    "language_code": "str",
    "file_id": "str",
    "action": "str",
    "inline_message_id": "str",
    "drop_pending_updates": "bool",
    "show_alert": "bool",
    "disable_notification": "bool",
    "protect_content": "bool",
    "disable_web_page_preview": "bool",
    "reply_markup": "json",
    "allowed_updates": "json",
    "commands": "json",
    "scope": "json",
    "entities": "json",
    "link_preview_options": "json",
    "reply_parameters": "json",
    "reply_to_message_id": "int",
    "allow_sending_without_reply": "bool",
}


def _coerce(name: str, value: Any) -> Any:
    """Decode one parameter the way Telegram's server does, for form and JSON bodies alike."""
    kind = _PARAM_KINDS.get(name)
    if kind is None or isinstance(value, UploadedFile):
        return value
    if kind == "str":
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0", ""):
            return False
        raise _bad_request(f'field "{name}" must be of type Boolean')
    if kind in ("int", "chat_id"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if kind == "chat_id" and isinstance(value, str):
            return value  # "@channelusername"
        raise _bad_request(f'field "{name}" must be of type Integer')
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad_request(f'field "{name}" must be of type Number') from None
    if isinstance(value, str):  # "json": forms carry it as JSON text
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise _bad_request("can't parse reply keyboard markup JSON object") from None
            raise _bad_request(f'can\'t parse "{name}" JSON object') from None
    return value


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part, recorded in place of its parameter value."""

    filename: str | None
    content_type: str
    data: bytes


_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def _validate_inline_button(button: Any) -> None:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise _bad_request(prefix + "InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise _bad_request(prefix + 'Field "text" must be of type String')
    if not text.strip():
        raise _bad_request("BUTTON_TEXT_INVALID")
    actions = [action for action in _INLINE_BUTTON_ACTIONS if action in button]
    if not actions:
        raise _bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise _bad_request(
            prefix + f"exactly one of the optional fields must be used, got {', '.join(actions)}"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise _bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not re.fullmatch(r"(https?|tg)://\S+", url):
            raise _bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _validate_reply_markup(markup: Any) -> JSONDict | None:
    """Check a reply_markup; return what Telegram echoes in the Message (inline keyboards only)."""
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request(
                'can\'t parse inline keyboard button: Field "inline_keyboard" must be of type '
                "Array of Arrays"
            )
        for row in rows:
            for button in row:
                _validate_inline_button(button)
        rows = [row for row in rows if row]
        return {"inline_keyboard": copy.deepcopy(rows)} if rows else None
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request('Field "keyboard" must be of type Array of Arrays')
        for row in rows:
            for button in row:
                text = button.get("text") if isinstance(button, dict) else button
                if not isinstance(text, str) or not text:
                    raise _bad_request("BUTTON_TEXT_INVALID")
        return None
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return None
    raise _bad_request("can't parse reply keyboard markup JSON object")


_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SCOPE_TYPES = {
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
}
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
# Telegram's default when allowed_updates is unset or empty: everything but these.
_OPT_IN_UPDATE_TYPES = {"chat_member", "message_reaction", "message_reaction_count"}
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?=\s|$)")


def _required(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise _bad_request(f"{name} is empty")
    return value


def _default_description(status: int, retry_after: int | None) -> str:
    if status == 429:
        return f"Too Many Requests: retry after {retry_after}"
    known = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden: bot was blocked by the user",
        404: "Not Found",
        409: "Conflict",
    }
    if status in known:
        return known[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Error {status}"


def _max_in_window(timestamps: Iterable[float], window: float) -> int:
    """Largest number of timestamps inside any half-open interval ``[t, t + window)``."""
    ordered = sorted(timestamps)
    best, first = 0, 0
    for last, stamp in enumerate(ordered):
        while stamp - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def _update_type(update: Mapping[str, Any]) -> str | None:
    return next((key for key in update if key != "update_id"), None)


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


class FakeBotAPI:
    """A Bot API server on 127.0.0.1 with Telegram's semantics, fault injection and inspection.

    Use as ``async with FakeBotAPI() as fake:``; point PTB at it with :meth:`make_bot` or
    :meth:`application_builder`. Everything runs on the test's event loop: push updates, await
    the bot, then inspect :attr:`calls`, :meth:`sent`, :attr:`callback_answers`, ...
    """

    def __init__(
        self,
        token: str = "123:ABC",
        username: str = "profilebot_test_bot",
        *,
        first_name: str = "ProfileBot Test",
        long_poll_cap: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        bot_id = token.split(":", 1)[0]
        if not bot_id.isdigit():
            raise ValueError(f"a bot token starts with the bot's numeric id, got {token!r}")
        self.token = token
        self.username = username
        self.bot_user: JSONDict = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.long_poll_cap = long_poll_cap
        """Longest a getUpdates waits for updates, whatever ``timeout`` asked: keeps tests fast."""
        self.clock = clock
        """Time source for send timestamps and rate limits; inject one to test pacing."""
        self.require_https_webhook = False
        """Telegram demands HTTPS webhooks; off by default so tests can use a local receiver."""
        self.enforce_rate_limits = False
        """When on, sends over the limits below answer 429 with a computed ``retry_after``."""
        # Telegram's published guidance: about 1 message/s per chat (short bursts pass),
        # 20/min per group, 30/s overall. Tests may tighten these, e.g. RateLimit(1, 1.0).
        self.per_chat_limit = RateLimit(3, 3.0)
        self.group_limit = RateLimit(20, 60.0)
        self.overall_limit = RateLimit(30, 1.0)

        # Inspection.
        self.calls: list[Call] = []
        self.raw_requests: list[RawRequest] = []
        self.errors: list[ErrorRecord] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.offsets_seen: list[int | None] = []
        self.confirmed_offset = 0
        self.webhook: WebhookState | None = None
        self.webhook_deliveries: list[tuple[int | None, int]] = []
        self.send_log: list[tuple[float, int | str]] = []
        self.uploaded: list[tuple[int, str, UploadedFile]] = []
        """(chat id, "photo" or "document", the file as uploaded) of every accepted upload."""
        # The same sends by chat (None: every chat), for the rate limits (oldest dropped).
        self._recent_sends: dict[int | None, collections.deque[float]] = {}

        # State.
        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, _Chat] = {}
        self._messages: dict[tuple[int, int], _StoredMessage] = {}
        self._files: dict[str, _StoredFile] = {}
        self._queue: list[JSONDict] = []
        self._allowed_updates: list[str] | None = None
        self._open_callbacks: set[str] = set()
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._faults: list[_Fault] = []
        self._next_update_id = 1
        self._ids = itertools.count(1)
        self._poll_generation = 0
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._port: int | None = None
        self._handlers: dict[str, tuple[str, Callable[[JSONDict], Awaitable[Any]]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "sendChatAction": self._send_chat_action,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getFile": self._get_file,
            }.items()
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing = True
        self._notify()  # let pending long polls answer [] instead of holding shutdown
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the server root."""
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not running; use `async with FakeBotAPI() as fake`")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """PTB's ``base_url``: PTB appends the token itself (``.../bot<token>/<method>``)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def make_bot(self, token: str | None = None, **kwargs: Any) -> telegram.Bot:
        """A real PTB ``Bot`` aimed at this server; use it as ``async with fake.make_bot()``."""
        return telegram.Bot(
            token or self.token,
            base_url=self.base_url,
            base_file_url=self.base_file_url,
            **kwargs,
        )

    def application_builder(self) -> ApplicationBuilder:  # type: ignore[type-arg]
        """An ``ApplicationBuilder`` with token and URLs set; add handlers and build."""
        return (
            ApplicationBuilder()
            .token(self.token)
            .base_url(self.base_url)
            .base_file_url(self.base_file_url)
        )

    # -- users and updates ----------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = "en",
        *,
        last_name: str | None = None,
        started: bool = False,
    ) -> FakeUser:
        """Register a user. The bot may message them only after they wrote to it (a push), or
        with ``started`` (they wrote to it before the test began)."""
        user = FakeUser(user_id, first_name, username, language_code, last_name)
        self._users[user_id] = user
        chat = self._chats.get(user_id)
        if chat is None:
            chat = self._chats[user_id] = _Chat(user_id, "private", user=user)
        else:
            chat.user = user
        chat.started = chat.started or started
        return user

    def push_text(self, user: FakeUser, text: str) -> JSONDict:
        """A private text message; a leading ``/command`` gets its ``bot_command`` entity."""
        return self._push_message(self._private_chat(user), user, **self._text_content(text))

    def push_group_message(
        self,
        user: FakeUser,
        text: str,
        *,
        chat_id: int = -1001000000002,
        title: str = "Profilebot Test Group",
        chat_type: str = "supergroup",
    ) -> JSONDict:
        """A text message in a group the bot is a member of (the group becomes known)."""
        chat = self._group_chat(chat_id, chat_type, title)
        return self._push_message(chat, user, **self._text_content(text))

    def push_edited_message(self, user: FakeUser, message_id: int, text: str) -> JSONDict:
        """The user edits one of their earlier messages (``edited_message`` update)."""
        chat = self._private_chat(user)
        stored = self._messages.get((chat.id, message_id))
        if stored is None or stored.from_bot:
            raise LookupError(f"user {user.id} sent no message {message_id} to edit")
        stored.message.pop("entities", None)
        stored.message.update(self._text_content(text), edit_date=int(time.time()))
        return self._enqueue("edited_message", copy.deepcopy(stored.message))

    def push_photo(
        self,
        user: FakeUser,
        caption: str | None = None,
        *,
        content: bytes = b"\xff\xd8fake\xff\xd9",
    ) -> JSONDict:
        """A photo: three PhotoSize entries whose files :meth:`getFile` can serve."""
        sizes = [
            {**self._register_file("photos", "jpg", content), "width": width, "height": height}
            for width, height in ((90, 67), (320, 240), (800, 600))
        ]
        extra = {"caption": caption} if caption else {}
        return self._push_message(self._private_chat(user), user, photo=sizes, **extra)

    def push_document(
        self,
        user: FakeUser,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        *,
        content: bytes = b"fake document",
    ) -> JSONDict:
        """A document upload whose file :meth:`getFile` can serve."""
        document = {
            **self._register_file("documents", file_name.rpartition(".")[2] or "bin", content),
            "file_name": file_name,
            "mime_type": mime_type,
        }
        extra = {"caption": caption} if caption else {}
        return self._push_message(self._private_chat(user), user, document=document, **extra)

    def push_sticker(self, user: FakeUser, emoji: str = "👍") -> JSONDict:
        """A regular static sticker."""
        sticker = {
            **self._register_file("stickers", "webp", b"RIFFfakeWEBP"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self._push_message(self._private_chat(user), user, sticker=sticker)

    def push_channel_post(
        self,
        text: str,
        *,
        chat_id: int = -1001000000001,
        title: str = "Profilebot Test Channel",
        username: str | None = None,
    ) -> JSONDict:
        """A post in a channel where the bot is an admin (``channel_post``, no ``from``)."""
        chat = self._group_chat(chat_id, "channel", title)
        chat.username = username
        message: JSONDict = {
            "message_id": chat.next_message_id(),
            "sender_chat": chat.to_dict(),
            "chat": chat.to_dict(),
            "date": int(time.time()),
            "text": text,
        }
        self._messages[(chat.id, message["message_id"])] = _StoredMessage(message, from_bot=False)
        return self._enqueue("channel_post", copy.deepcopy(message))

    def push_callback(
        self, user: FakeUser, message_id: int, data: str, *, chat_id: int | None = None
    ) -> JSONDict:
        """The user presses a callback button on a message the bot sent (any ``data``).

        The query stays open until the bot answers it; see :meth:`press` to pick a real button.
        """
        chat = self._private_chat(user) if chat_id is None else self._chats[chat_id]
        stored = self._messages.get((chat.id, message_id))
        if stored is None or not stored.from_bot or stored.deleted:
            raise LookupError(f"the bot has no message {message_id} in chat {chat.id}")
        query_id = str(4_000_000_000_000_000_000 + next(self._ids))
        self._open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "message": copy.deepcopy(stored.message),
            "chat_instance": str(abs(chat.id) * 7919 + 1_000_000_000),
            "data": data,
        }
        return self._enqueue("callback_query", query)

    def press(self, user: FakeUser, message_id: int, button_text: str) -> JSONDict:
        """Press the inline button labelled ``button_text`` on a bot message in the user's chat."""
        stored = self._messages.get((user.id, message_id))
        markup = stored.message.get("reply_markup", {}) if stored else {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if button["text"] == button_text and "callback_data" in button:
                    return self.push_callback(user, message_id, button["callback_data"])
        raise LookupError(f"no callback button {button_text!r} on message {message_id}")

    def push_my_chat_member(self, user: FakeUser, status: str = "kicked") -> JSONDict:
        """The user blocks (``kicked``) or restarts (``member``) the bot in their private chat."""
        if status not in ("kicked", "member"):
            raise ValueError("private chats know only 'kicked' (blocked) and 'member'")
        chat = self._private_chat(user)
        old = {"status": "kicked", "until_date": 0} if chat.blocked else {"status": "member"}
        new = {"status": "kicked", "until_date": 0} if status == "kicked" else {"status": "member"}
        chat.blocked = status == "kicked"
        update = {
            "chat": chat.to_dict(),
            "from": user.to_dict(),
            "date": int(time.time()),
            "old_chat_member": {**old, "user": self.bot_user},
            "new_chat_member": {**new, "user": self.bot_user},
        }
        return self._enqueue("my_chat_member", copy.deepcopy(update))

    def push_raw(self, update: Mapping[str, Any]) -> JSONDict:
        """Queue any dict as an update (``update_id`` assigned unless given): garbage welcome."""
        raw = copy.deepcopy(dict(update))
        if isinstance(raw.get("update_id"), int):
            self._next_update_id = max(self._next_update_id, raw["update_id"] + 1)
        else:
            raw = {"update_id": self._take_update_id(), **raw}
        self._queue.append(raw)
        self._notify()
        return copy.deepcopy(raw)

    # -- fault injection ------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (to ``chat_id`` only) with an error.

        429 carries ``parameters.retry_after`` (default 1 s); 403 defaults to "Forbidden: bot was
        blocked by the user"; 500/502 to "Internal Server Error"/"Bad Gateway".
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(
            _Fault(
                method=method.lower(),
                status=status,
                description=description or _default_description(status, retry_after),
                parameters={"retry_after": retry_after} if retry_after is not None else None,
                remaining=times,
                chat_id=chat_id,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- inspection -----------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[JSONDict]:
        """The params of every call to ``method`` (case-insensitive), in order."""
        return [call.params for call in self.calls if call.method.lower() == method.lower()]

    def sent(self, chat_id: int) -> list[JSONDict]:
        """Messages the bot sent to the chat and has not deleted, as they read now (after edits)."""
        return [
            copy.deepcopy(stored.message)
            for (chat, _), stored in self._messages.items()
            if chat == chat_id and stored.from_bot and not stored.deleted
        ]

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed with a higher getUpdates ``offset``."""
        return copy.deepcopy(self._queue)

    @property
    def commands(self) -> list[JSONDict]:
        """Commands set for the default scope and no language."""
        return self.commands_for()

    def commands_for(
        self, scope: Mapping[str, Any] | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._command_key(scope, language_code), []))

    def max_rate_per_chat(self, window: float = 1.0, chat_id: int | str | None = None) -> int:
        """Most sends to a single chat (or to ``chat_id``) within any ``window`` seconds."""
        by_chat: dict[int | str, list[float]] = {}
        for t, chat in self.send_log:
            if chat_id is None or chat == chat_id:
                by_chat.setdefault(chat, []).append(t)
        return max((_max_in_window(times, window) for times in by_chat.values()), default=0)

    def delivered(self) -> list[tuple[int, str]]:
        """(chat id, text as sent) of every message the bot sent, in the order sent."""
        return [
            (chat, stored.message.get("text", ""))
            for (chat, _), stored in self._messages.items()
            if stored.from_bot
        ]

    def max_rate_overall(self, window: float = 1.0) -> int:
        """Most sends to all chats together within any ``window`` seconds."""
        return _max_in_window((t for t, _ in self.send_log), window)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 1.0) -> None:
        """Wait until ``predicate()`` holds, re-checking after every call and push."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [call.method for call in self.calls[-10:]]
                raise AssertionError(f"condition not met within {timeout} s; last calls: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # -- webhook delivery -----------------------------------------------------------------------

    async def post_to_webhook(
        self,
        update: Mapping[str, Any],
        url: str | None = None,
        *,
        secret_token: str | EllipsisType | None = ...,
    ) -> int:
        """POST an update like Telegram does; return the receiver's HTTP status.

        ``url`` and ``secret_token`` default to the registered webhook's (``...``); pass
        ``secret_token=None`` to omit the ``X-Telegram-Bot-Api-Secret-Token`` header. A 2xx
        answer counts as delivered: the update leaves :attr:`pending_updates`.
        """
        target = url or (self.webhook.url if self.webhook else None)
        if target is None:
            raise RuntimeError("no webhook is set and no url was given")
        if secret_token is ...:
            secret_token = self.webhook.secret_token if self.webhook else None
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret_token} if secret_token else {}
        if self._session is None:
            self._session = ClientSession()
        async with self._session.post(target, json=dict(update), headers=headers) as response:
            await response.read()
            status, reason = response.status, response.reason
        update_id = update.get("update_id")
        self.webhook_deliveries.append((update_id, status))
        if 200 <= status < 300:
            self._queue = [queued for queued in self._queue if queued["update_id"] != update_id]
        elif self.webhook is not None:
            self.webhook.last_error_date = int(time.time())
            self.webhook.last_error_message = f"Wrong response from the webhook: {status} {reason}"
        self._notify()
        return status

    async def flush_to_webhook(self) -> list[int]:
        """Deliver every pending update to the webhook, in order; return the statuses."""
        return [await self.post_to_webhook(update) for update in self.pending_updates]

    # -- HTTP plumbing --------------------------------------------------------------------------

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return self._error_response(method, TelegramAPIError(401, "Unauthorized"))
        name, handler = self._handlers.get(method.lower(), (method, None))
        self.raw_requests.append(RawRequest(name, request.method, request.content_type))
        params: JSONDict = {}
        try:
            params = await self._read_params(request)
            params = {key: _coerce(key, value) for key, value in params.items()}
        except TelegramAPIError as error:
            self.calls.append(Call(name, params))
            self._notify()
            return self._error_response(name, error)
        self.calls.append(Call(name, params))
        try:
            self._inject_fault(name, params)
            if handler is None:
                raise TelegramAPIError(404, "Not Found")
            result = await handler(params)
        except TelegramAPIError as error:
            if request.transport is None or request.transport.is_closing():
                # The client gave up (e.g. PTB cancelled a long poll on stop): nobody to answer.
                return web.Response(status=499)
            return self._error_response(name, error)
        finally:
            self._notify()
        if isinstance(result, _Described):
            body = {"ok": True, "result": result.result, "description": result.description}
        else:
            body = {"ok": True, "result": result}
        return web.json_response(body)

    async def _read_params(self, request: web.Request) -> JSONDict:
        params: JSONDict = dict(request.query)
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    params[key] = UploadedFile(
                        value.filename, value.content_type, value.file.read()
                    )
                else:
                    params[key] = value
        elif request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise _bad_request("can't parse JSON encoded request body") from None
            if not isinstance(body, dict):
                raise _bad_request("JSON request body must be an Object")
            params.update(body)
        return params

    def _error_response(self, method: str, error: TelegramAPIError) -> web.Response:
        self.errors.append(ErrorRecord(method, error.status, error.description))
        return web.json_response(error.to_json(), status=error.status)

    def _inject_fault(self, method: str, params: JSONDict) -> None:
        for fault in self._faults:
            if fault.method != method.lower():
                continue
            if fault.chat_id is not None and params.get("chat_id") != fault.chat_id:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            raise TelegramAPIError(fault.status, fault.description, fault.parameters)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        path = request.match_info["path"]
        stored = next((f for f in self._files.values() if f.file_path == path), None)
        if stored is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(body=stored.content, content_type="application/octet-stream")

    def _notify(self) -> None:
        """Wake everything waiting for a change (long polls, :meth:`wait_until`)."""
        self._changed.set()
        self._changed = asyncio.Event()

    # -- state helpers --------------------------------------------------------------------------

    def _take_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    def _enqueue(self, kind: str, payload: JSONDict) -> JSONDict:
        update = {"update_id": self._take_update_id(), kind: payload}
        self._queue.append(update)
        self._notify()
        return copy.deepcopy(update)

    def _private_chat(self, user: FakeUser) -> _Chat:
        if user.id not in self._users:
            self.user(user.id, user.first_name, user.username, user.language_code)
        chat = self._chats[user.id]
        chat.started = True
        return chat

    def _group_chat(self, chat_id: int, chat_type: str, title: str) -> _Chat:
        if chat_id >= 0:
            raise ValueError("group and channel ids are negative")
        chat = self._chats.setdefault(chat_id, _Chat(chat_id, chat_type, title=title))
        chat.type, chat.title = chat_type, title
        return chat

    def _text_content(self, text: str) -> JSONDict:
        content: JSONDict = {"text": text}
        command = _BOT_COMMAND_RE.match(text)
        if command:
            content["entities"] = [
                {"offset": 0, "length": _utf16_len(command.group()), "type": "bot_command"}
            ]
        return content

    def _push_message(self, chat: _Chat, user: FakeUser, **content: Any) -> JSONDict:
        message = {
            "message_id": chat.next_message_id(),
            "from": user.to_dict(),
            "chat": chat.to_dict(),
            "date": int(time.time()),
            **content,
        }
        self._messages[(chat.id, message["message_id"])] = _StoredMessage(message, from_bot=False)
        return self._enqueue("message", copy.deepcopy(message))

    def _register_file(self, folder: str, extension: str, content: bytes) -> JSONDict:
        number = next(self._ids)
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:08d}FakeFileId",
            file_unique_id=f"AgAD{number:06d}",
            file_path=f"{folder}/file_{number}.{extension}",
            content=content,
        )
        self._files[stored.file_id] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(content),
        }

    def _resolve_chat(self, chat_id: Any) -> _Chat:
        """The chat a send targets, refusing it the way Telegram would."""
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            chat = next(
                (c for c in self._chats.values() if c.username and f"@{c.username}" == chat_id),
                None,
            )
        else:
            chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        if chat.type == "private" and chat.blocked:
            raise TelegramAPIError(403, "Forbidden: bot was blocked by the user")
        if chat.type == "private" and not chat.started:
            raise TelegramAPIError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _render_text(self, params: JSONDict) -> tuple[str, list[JSONDict] | None]:
        """Apply parse_mode and Telegram's length rules; return (text, entities)."""
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise _bad_request("message text is empty")
        parse_mode = params.get("parse_mode") or ""
        entities = params.get("entities")
        if parse_mode.lower() == "html":
            try:
                text, entities = parse_html(text)
            except EntityParseError as error:
                raise _bad_request(f"can't parse entities: {error}") from None
        elif parse_mode.lower() not in ("", "markdown", "markdownv2"):
            raise _bad_request("unsupported parse_mode")
        if not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise _bad_request("message is too long")
        return text, entities or None

    def _check_rate_limits(self, chat: _Chat, now: float) -> None:
        chat_limit = self.per_chat_limit if chat.type == "private" else self.group_limit
        checks = [
            (chat_limit, self._recent_sends.setdefault(chat.id, collections.deque())),
            (self.overall_limit, self._recent_sends.setdefault(None, collections.deque())),
        ]
        for limit, stamps in checks:
            while stamps and now - stamps[0] >= limit.per_seconds:  # (one scan per send)
                stamps.popleft()
            recent = sorted(t for t in stamps if now - t < limit.per_seconds)
            if len(recent) >= limit.messages:
                wait = recent[len(recent) - limit.messages] + limit.per_seconds - now
                retry_after = max(1, math.ceil(wait))
                raise TelegramAPIError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )

    def _bot_message(self, params: JSONDict) -> _StoredMessage:
        if params.get("inline_message_id"):
            raise _bad_request("MESSAGE_ID_INVALID")
        chat = self._resolve_chat(params.get("chat_id"))
        message_id = _required(params, "message_id")
        stored = self._messages.get((chat.id, message_id))
        if stored is None or stored.deleted:
            raise _bad_request("message to edit not found")
        if not stored.from_bot:
            raise _bad_request("message can't be edited")
        return stored

    def _replied_message(self, chat: _Chat, params: JSONDict) -> JSONDict | None:
        """The message a send replies to (same chat only), as Telegram embeds it."""
        reply = params.get("reply_parameters")
        if not isinstance(reply, dict):
            legacy = params.get("reply_to_message_id")
            allow = params.get("allow_sending_without_reply")
            reply = {"message_id": legacy, "allow_sending_without_reply": allow} if legacy else {}
        if not reply.get("message_id"):
            return None
        stored = self._messages.get((chat.id, reply["message_id"]))
        if stored is None or stored.deleted:
            if reply.get("allow_sending_without_reply"):
                return None
            raise _bad_request("message to be replied not found")
        return {key: value for key, value in stored.message.items() if key != "reply_to_message"}

    def _command_key(self, scope: Mapping[str, Any] | None, language_code: str) -> tuple[str, str]:
        return json.dumps(dict(scope or {"type": "default"}), sort_keys=True), language_code or ""

    def _validated_scope_key(self, params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope")
        if scope is not None:
            if not isinstance(scope, dict) or scope.get("type") not in _SCOPE_TYPES:
                raise _bad_request("can't parse BotCommandScope JSON object")
            if scope["type"] in ("chat", "chat_administrators", "chat_member"):
                self._resolve_chat(scope.get("chat_id"))
        language_code = params.get("language_code") or ""
        if language_code and not re.fullmatch(r"[a-z]{2}", language_code):
            raise _bad_request("invalid language code specified")
        return self._command_key(scope, language_code)

    def _deliverable(self, limit: int) -> list[JSONDict]:
        """Pending updates the bot may receive; types it opted out of are dropped (as Telegram)."""
        allowed = set(self._allowed_updates or ())

        def wanted(update: JSONDict) -> bool:
            kind = _update_type(update)
            if allowed:
                return kind in allowed
            return kind not in _OPT_IN_UPDATE_TYPES

        self._queue = [update for update in self._queue if wanted(update)]
        return copy.deepcopy(self._queue[:limit])

    # -- method handlers ------------------------------------------------------------------------

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return dict(self.bot_user)

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook is not None:
            raise TelegramAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = min(max(params.get("limit") or 100, 1), 100)
        timeout = max(params.get("timeout") or 0.0, 0.0)
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        self.offsets_seen.append(offset)
        if offset:
            if offset > 0:
                self._queue = [u for u in self._queue if u["update_id"] >= offset]
                self.confirmed_offset = max(self.confirmed_offset, offset)
            else:
                self._queue = self._queue[offset:]
        # Telegram ends an older long poll when a newer one arrives: two pollers conflict.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.long_poll_cap)
        while True:
            if generation != self._poll_generation:
                raise TelegramAPIError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _set_webhook(self, params: JSONDict) -> _Described:
        url = params.get("url") or ""
        if not url:
            return await self._delete_webhook(params)
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise _bad_request("bad webhook: Failed to resolve host: Name or service not known")
        if self.require_https_webhook and not url.startswith("https://"):
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad_request("secret token contains unallowed characters")
        max_connections = params.get("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise _bad_request("bad webhook: max_connections must be between 1 and 100")
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        if params.get("drop_pending_updates"):
            self._queue.clear()
        already = self.webhook is not None and self.webhook.url == url
        self.webhook = WebhookState(
            url=url,
            secret_token=secret,
            allowed_updates=self._allowed_updates,
            max_connections=max_connections,
            ip_address=params.get("ip_address"),
            has_custom_certificate=isinstance(params.get("certificate"), UploadedFile),
        )
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, params: JSONDict) -> _Described:
        if params.get("drop_pending_updates"):
            self._queue.clear()
        existed, self.webhook = self.webhook is not None, None
        return _Described(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": bool(self.webhook and self.webhook.has_custom_certificate),
            "pending_update_count": len(self._queue),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            optional = {
                "ip_address": self.webhook.ip_address,
                "allowed_updates": self.webhook.allowed_updates,
                "last_error_date": self.webhook.last_error_date,
                "last_error_message": self.webhook.last_error_message,
            }
            info.update({key: value for key, value in optional.items() if value is not None})
        return info

    async def _send_message(self, params: JSONDict) -> JSONDict:
        chat = self._resolve_chat(params.get("chat_id"))
        text, entities = self._render_text(params)
        markup = params.get("reply_markup")
        echoed_markup = _validate_reply_markup(markup) if markup is not None else None
        now = self.clock()
        if self.enforce_rate_limits:
            self._check_rate_limits(chat, now)
        message: JSONDict = {
            "message_id": chat.next_message_id(),
            "from": dict(self.bot_user),
            "chat": chat.to_dict(),
            "date": int(time.time()),
            "text": text,
        }
        if chat.type == "channel":
            message.pop("from")
            message["sender_chat"] = chat.to_dict()
        if entities:
            message["entities"] = entities
        replied = self._replied_message(chat, params)
        if replied is not None:
            message["reply_to_message"] = replied
        if echoed_markup:
            message["reply_markup"] = echoed_markup
        self._messages[(chat.id, message["message_id"])] = _StoredMessage(message, from_bot=True)
        self.send_log.append((now, chat.id))
        self._recent_sends.setdefault(chat.id, collections.deque()).append(now)
        self._recent_sends.setdefault(None, collections.deque()).append(now)
        return copy.deepcopy(message)

    async def _send_photo(self, params: JSONDict) -> JSONDict:
        return self._send_upload(params, "photo")

    async def _send_document(self, params: JSONDict) -> JSONDict:
        return self._send_upload(params, "document")

    def _send_upload(self, params: JSONDict, kind: str) -> JSONDict:
        """sendPhoto / sendDocument with a multipart upload (a file_id or URL is refused:
        the bot always uploads its own bytes). The bytes are kept: :meth:`uploads`."""
        chat = self._resolve_chat(params.get("chat_id"))
        upload = params.get(kind)
        if not isinstance(upload, UploadedFile):
            raise _bad_request(f"there is no {kind} in the request")
        if not upload.data:
            raise _bad_request("file must be non-empty")
        if kind == "photo" and not upload.data.startswith((b"\x89PNG", b"\xff\xd8")):
            raise _bad_request("IMAGE_PROCESS_FAILED")
        caption, entities = None, None
        if params.get("caption"):
            caption, entities = self._render_text(
                {"text": params["caption"], "parse_mode": params.get("parse_mode")}
            )
            if len(caption) > MAX_CAPTION_LENGTH:
                raise _bad_request("message caption is too long")
        now = self.clock()
        if self.enforce_rate_limits:
            self._check_rate_limits(chat, now)
        folder, extension = ("photos", "png") if kind == "photo" else ("documents", "bin")
        info = self._register_file(folder, extension, upload.data)
        message: JSONDict = {
            "message_id": chat.next_message_id(),
            "from": dict(self.bot_user),
            "chat": chat.to_dict(),
            "date": int(time.time()),
        }
        if kind == "photo":
            message["photo"] = [{**info, "width": 800, "height": 600}]
        else:
            message["document"] = {
                **info,
                "file_name": upload.filename,
                "mime_type": upload.content_type,
            }
        if caption is not None:
            message["caption"] = caption
            if entities:
                message["caption_entities"] = entities
        self._messages[(chat.id, message["message_id"])] = _StoredMessage(message, from_bot=True)
        self.uploaded.append((chat.id, kind, upload))
        self.send_log.append((now, chat.id))
        self._recent_sends.setdefault(chat.id, collections.deque()).append(now)
        self._recent_sends.setdefault(None, collections.deque()).append(now)
        return copy.deepcopy(message)

    async def _edit_message_text(self, params: JSONDict) -> JSONDict:
        stored = self._bot_message(params)
        text, entities = self._render_text(params)
        markup = params.get("reply_markup")
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        new_markup = _validate_reply_markup(markup) if markup is not None else None
        return self._apply_edit(stored, text=text, entities=entities, reply_markup=new_markup)

    async def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        stored = self._bot_message(params)
        markup = params.get("reply_markup")
        new_markup = _validate_reply_markup(markup) if markup is not None else None
        current = stored.message
        return self._apply_edit(
            stored, text=current["text"], entities=current.get("entities"), reply_markup=new_markup
        )

    def _apply_edit(
        self,
        stored: _StoredMessage,
        *,
        text: str,
        entities: list[JSONDict] | None,
        reply_markup: JSONDict | None,
    ) -> JSONDict:
        current = stored.message
        new = {"text": text, "entities": entities or None, "reply_markup": reply_markup}
        old = {key: current.get(key) for key in new}
        if new == old:
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        for key, value in new.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = copy.deepcopy(value)
        current["edit_date"] = int(time.time())
        return copy.deepcopy(current)

    async def _delete_message(self, params: JSONDict) -> bool:
        chat = self._resolve_chat(params.get("chat_id"))
        stored = self._messages.get((chat.id, _required(params, "message_id")))
        if stored is None or stored.deleted:
            raise _bad_request("message to delete not found")
        stored.deleted = True
        return True

    async def _send_chat_action(self, params: JSONDict) -> bool:
        self._resolve_chat(params.get("chat_id"))
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = params.get("callback_query_id")
        if query_id not in self._open_callbacks:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        self._open_callbacks.discard(query_id)
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=text,
                show_alert=bool(params.get("show_alert")),
                url=params.get("url"),
                cache_time=params.get("cache_time"),
            )
        )
        return True

    async def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("commands is empty")
        if len(commands) > MAX_COMMANDS:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._validated_scope_key(params)
        cleaned = [{"command": c["command"], "description": c["description"]} for c in commands]
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._validated_scope_key(params), []))

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        self._commands.pop(self._validated_scope_key(params), None)
        return True

    async def _get_file(self, params: JSONDict) -> JSONDict:
        stored = self._files.get(_required(params, "file_id"))
        if stored is None:
            raise _bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }


__all__ = [
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_MESSAGE_LENGTH",
    "Call",
    "CallbackAnswer",
    "EntityParseError",
    "ErrorRecord",
    "FakeBotAPI",
    "FakeUser",
    "RateLimit",
    "RawRequest",
    "TelegramAPIError",
    "UploadedFile",
    "WebhookState",
    "parse_html",
]
