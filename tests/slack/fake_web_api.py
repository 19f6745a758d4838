"""A fake Slack Web API server that a real slack_sdk / slack-bolt client talks to over HTTP.

Why a server and not a mocked ``WebClient``: the bugs worth catching live where a mock looks
away — how slack_sdk encodes each method (JSON body, form body or query string), how it turns
``{"ok": false}`` answers and 429s into ``SlackApiError``, and what Slack refuses (Block Kit
limits, unknown channels, over-long text, rate limits). So the fake listens on 127.0.0.1
(ephemeral port) inside the test's event loop and answers like Slack: HTTP 200 with
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``; 429 with ``Retry-After``.

Usage::

    async with FakeSlackAPI() as fake:
        fake.add_user("U0ALICE", email="alice@school.test", real_name="Alice Diaz")
        client = fake.make_client()            # AsyncWebClient(base_url=fake.base_url, ...)
        channel = (await client.conversations_open(users="U0ALICE"))["channel"]["id"]
        await client.chat_postMessage(channel=channel, text="Hi")
        assert fake.messages(channel)[0]["text"] == "Hi"

Point the Slack adapter at it with ``SLACK_API_BASE_URL=fake.base_url`` (it ends in ``/api/``,
as slack_sdk's ``base_url`` must) and ``SLACK_BOT_TOKEN=fake.token``. Run the app as an
``AsyncApp``: a synchronous ``App`` would block the very event loop that serves the fake.

What slack_sdk 3.x sends (read from ``slack_sdk/web/async_client.py``): every call goes to
``{base_url}{method}`` with ``Authorization: Bearer <token>``; ``chat.postMessage``,
``chat.update``, ``chat.postEphemeral`` and ``views.publish`` post a JSON body (blocks and view as
JSON values); ``conversations.open`` and ``auth.test`` post with the arguments in the query
string; ``users.info`` is a GET with a query string. Other clients post form bodies where
``blocks``/``view`` are JSON text and the token may be a ``token`` field. All are accepted.

What is checked, and where the limits come from (Slack's reference pages on docs.slack.dev:
the methods' "Errors" tables, "Blocks", "Block elements", "Composition objects", "Home tab
views"; the same numbers are in slack_sdk's ``slack_sdk/models/blocks`` validators):

- auth: a missing token is ``not_authed``, a wrong one ``invalid_auth`` (as Slack).
- ``chat.postMessage``: ``channel`` missing/unknown is ``channel_not_found``; neither text nor
  blocks (nor attachments) is ``no_text``; text over 40,000 characters is ``msg_too_long``
  (Slack documents truncation at 40,000 and lists ``msg_too_long``; the fake refuses so a bot
  relying on truncation fails loudly). ``chat.update`` adds ``message_not_found`` and
  ``cant_update_message``; omitted ``blocks`` keep the old ones (Slack's documented behaviour).
- Blocks (:func:`validate_blocks`): a JSON array (``invalid_blocks_format`` otherwise) of at most
  50 blocks in a message, 100 in a Home tab; known block types; ``block_id`` at most 255
  characters and unique; section text at most 3000, fields at most 10 of 2000; header
  ``plain_text`` at most 150; actions 1–25 elements; context 1–10 elements; buttons with
  ``plain_text`` text at most 75, ``value`` at most 2000, ``url`` at most 3000, ``style``
  primary/danger; ``action_id`` at most 255 and unique in its block (Slack: "unique among all
  other action_ids in the containing block"; set ``action_id_scope = "message"`` to be
  stricter); checkboxes/radio 1–10 options, option text (plain_text or mrkdwn) at most 75,
  value at most 150, ``initial_options`` among ``options``. Errors answer
  ``{"ok": false, "error": "invalid_blocks", "errors": ["... [json-pointer:/blocks/0/...]"]}``;
  ``views.publish`` reports them as ``invalid_arguments`` with
  ``response_metadata.messages`` (``[ERROR] ... [json-pointer:/view/blocks/...]``), as Slack does.
- Other arguments: a missing ``ts``/``user``/``user_id``/``view`` is ``invalid_arguments`` with
  ``response_metadata.messages``; unknown users are ``user_not_found`` (``cannot_dm_bot`` for
  ``conversations.open`` with a bot); ``chat.update`` on a user id instead of the ``D…`` id is
  ``channel_not_found`` (its docs ask for the DM id); ``views.publish`` needs ``type: home``
  and a matching ``hash`` when one is given (``hash_conflict``).
- Response URLs (:meth:`FakeSlackAPI.response_url`): JSON posts with ``text``/``blocks``
  (validated as above; a refusal is HTTP 400), ``response_type``, ``replace_original``,
  ``delete_original``; at most 5 accepted posts per URL ("up to 5 times within 30 minutes"),
  then 404 ``used_url``; an unknown URL is 404 ``expired_url``.
- Rate limits (off unless ``enforce_rate_limits``): ``chat.postMessage`` allows about one
  message per second per channel (Slack's "special rate limit"); more answers HTTP 429,
  ``{"ok": false, "error": "ratelimited"}`` and ``Retry-After: <seconds>``.

Like Slack, the fake fills in a ``block_id`` for blocks sent without one and an ``action_id``
for interactive elements sent without one, so stored/echoed blocks can differ from the input.

The exact wording of Slack's block error messages is approximated (assert on the JSON pointer,
not the words). Deliberate simplifications: only the methods in ``FakeSlackAPI._handlers``
exist (others answer ``unknown_method``); lengths are counted in code points; mrkdwn is not
parsed; multi-person DMs and threads are not modelled; injected 5xx answers carry an HTML body
(like a proxy error).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self
from zoneinfo import ZoneInfo

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

JSONDict = dict[str, Any]

MAX_MESSAGE_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_CHOICE_OPTIONS = 10  # checkboxes, radio_buttons
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_SELECT_OPTIONS = 100
MAX_OVERFLOW_OPTIONS = 5
MAX_INPUT_LABEL = 2000
MAX_PLACEHOLDER = 150
MAX_MARKDOWN_BLOCK_TEXT = 12_000
MAX_RESPONSE_URL_USES = 5  # "up to 5 times within 30 minutes"

BLOCK_TYPES = frozenset(
    {
        "section",
        "actions",
        "context",
        "divider",
        "header",
        "input",
        "rich_text",
        "image",
        "markdown",
    }
)
_SIMPLE_ELEMENTS = frozenset(
    {
        "datepicker",
        "timepicker",
        "datetimepicker",
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
        "users_select",
        "conversations_select",
        "channels_select",
        "external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "multi_external_select",
    }
)
INTERACTIVE_ELEMENTS = frozenset(
    {"button", "checkboxes", "radio_buttons", "static_select", "multi_static_select", "overflow"}
    | _SIMPLE_ELEMENTS
)
_RICH_TEXT_ELEMENTS = frozenset(
    {"rich_text_section", "rich_text_list", "rich_text_preformatted", "rich_text_quote"}
)

# ----------------------------------------------------------------------------------------------
# Errors and records
# ----------------------------------------------------------------------------------------------


class SlackAPIError(Exception):
    """An error answer, raised inside a method handler and sent as Slack's error JSON."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_json(self) -> JSONDict:
        return {"ok": False, "error": self.error, **self.extra}


def _invalid_arguments(*messages: str) -> SlackAPIError:
    """Slack's answer to missing/malformed arguments, with its ``[ERROR]`` messages."""
    return SlackAPIError(
        "invalid_arguments",
        extra={"response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]}},
    )


class Call(NamedTuple):
    """One API call as the fake decoded it (``time`` is the fake's clock)."""

    method: str
    params: JSONDict
    time: float


class RawRequest(NamedTuple):
    """How a call arrived on the wire, to check what the client really sends."""

    method: str
    http_method: str
    content_type: str
    token_source: str  # "header" | "param" | "none"


class ErrorRecord(NamedTuple):
    """An error answer the fake gave (injected faults included)."""

    method: str
    status: int
    error: str


class ResponsePost(NamedTuple):
    """A POST the app made to a response URL handed out by :meth:`FakeSlackAPI.response_url`."""

    url: str
    number: int
    payload: JSONDict
    time: float


@dataclass(frozen=True)
class RateLimit:
    """At most ``messages`` posts within any ``per_seconds`` sliding window."""

    messages: int
    per_seconds: float


@dataclass
class _Fault:
    method: str
    kind: int | str
    remaining: int
    retry_after: int
    channel: str | None


@dataclass
class _Channel:
    id: str
    is_im: bool
    user: str | None = None  # the other member of an IM
    name: str | None = None
    members: set[str] = field(default_factory=set)
    opened: bool = False  # conversations.open was called (IMs)


@dataclass
class _StoredMessage:
    message: JSONDict
    deleted: bool = False


@dataclass
class _ResponseURL:
    number: int
    channel: str | None
    message_ts: str | None
    user: str | None
    uses: int = 0


FaultKind = int | str

# ----------------------------------------------------------------------------------------------
# Block Kit validation
# ----------------------------------------------------------------------------------------------


class _BlockChecker:
    """Collects Slack-style errors (``message [json-pointer:/path]``) for a list of blocks."""

    def __init__(self, action_id_scope: Literal["block", "message"]) -> None:
        self.errors: list[str] = []
        self.action_id_scope = action_id_scope
        self.block_ids: set[str] = set()
        self.message_action_ids: set[str] = set()
        self.block_action_ids: set[str] = set()

    def error(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    # -- primitives -----------------------------------------------------------------------------

    def string(
        self, value: Any, pointer: str, *, max_length: int | None, min_length: int = 0
    ) -> bool:
        if not isinstance(value, str):
            self.error(pointer, "must provide a string")
            return False
        if len(value) < min_length:
            self.error(pointer, f"must be more than {min_length - 1} characters")
            return False
        if max_length is not None and len(value) > max_length:
            self.error(pointer, f"must be less than {max_length + 1} characters")
            return False
        return True

    def array(
        self, value: Any, pointer: str, *, max_items: int | None, min_items: int = 1
    ) -> list[Any] | None:
        if not isinstance(value, list):
            self.error(pointer, "must provide an array")
            return None
        if len(value) < min_items:
            self.error(pointer, f"must provide at least {min_items} items")
            return None
        if max_items is not None and len(value) > max_items:
            self.error(pointer, f"no more than {max_items} items allowed")
            return None
        return value

    def obj(self, value: Any, pointer: str) -> JSONDict | None:
        if not isinstance(value, dict):
            self.error(pointer, "must provide an object")
            return None
        return value

    def required(self, parent: JSONDict, key: str, pointer: str) -> Any:
        if key not in parent or parent[key] is None:
            self.error(pointer, f"missing required field: {key}")
            return None
        return parent[key]

    def text_object(
        self, value: Any, pointer: str, *, max_length: int, plain_only: bool = False
    ) -> None:
        text = self.obj(value, pointer)
        if text is None:
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if text.get("type") not in allowed:
            self.error(f"{pointer}/type", "must be a valid enum value")
            return
        if self.required(text, "text", pointer) is not None:
            self.string(text["text"], f"{pointer}/text", max_length=max_length, min_length=1)

    def action_id(self, element: JSONDict, pointer: str) -> None:
        action_id = element.get("action_id")
        if action_id is None:
            return
        if not self.string(action_id, f"{pointer}/action_id", max_length=MAX_ACTION_ID):
            return
        seen = (
            self.message_action_ids
            if self.action_id_scope == "message"
            else (self.block_action_ids)
        )
        if action_id in seen:
            self.error(f"{pointer}/action_id", f"duplicate action_id: {action_id}")
        seen.add(action_id)

    # -- elements -------------------------------------------------------------------------------

    def options(
        self, value: Any, pointer: str, *, max_items: int, plain_only: bool, min_items: int = 1
    ) -> list[Any]:
        options = self.array(value, pointer, max_items=max_items, min_items=min_items)
        for i, option in enumerate(options or []):
            ptr = f"{pointer}/{i}"
            if self.obj(option, ptr) is None:
                continue
            if self.required(option, "text", ptr) is not None:
                self.text_object(
                    option["text"], f"{ptr}/text", max_length=MAX_OPTION_TEXT, plain_only=plain_only
                )
            if self.required(option, "value", ptr) is not None:
                self.string(option["value"], f"{ptr}/value", max_length=MAX_OPTION_VALUE)
            if option.get("description") is not None:
                self.text_object(
                    option["description"],
                    f"{ptr}/description",
                    max_length=MAX_OPTION_TEXT,
                    plain_only=plain_only,
                )
        return options or []

    def initial_options(self, element: JSONDict, options: list[Any], pointer: str) -> None:
        initial = element.get("initial_options")
        if initial is None:
            return
        if not isinstance(initial, list):
            self.error(f"{pointer}/initial_options", "must provide an array")
            return
        for i, option in enumerate(initial):
            if option not in options:
                self.error(
                    f"{pointer}/initial_options/{i}",
                    "must match one of the provided options",
                )

    def element(self, value: Any, pointer: str, *, allowed: frozenset[str]) -> None:
        element = self.obj(value, pointer)
        if element is None:
            return
        kind = element.get("type")
        if kind not in allowed:
            self.error(f"{pointer}/type", f"unsupported element type: {kind}")
            return
        if kind == "image":
            self.image(element, pointer)
            return
        self.action_id(element, pointer)
        if kind == "button":
            if self.required(element, "text", pointer) is not None:
                self.text_object(
                    element["text"], f"{pointer}/text", max_length=MAX_BUTTON_TEXT, plain_only=True
                )
            if element.get("value") is not None:
                self.string(element["value"], f"{pointer}/value", max_length=MAX_BUTTON_VALUE)
            if element.get("url") is not None:
                self.string(element["url"], f"{pointer}/url", max_length=MAX_URL)
            if element.get("style") is not None and element["style"] not in ("primary", "danger"):
                self.error(f"{pointer}/style", "must be a valid enum value")
            if element.get("accessibility_label") is not None:
                self.string(
                    element["accessibility_label"],
                    f"{pointer}/accessibility_label",
                    max_length=MAX_BUTTON_TEXT,
                )
        elif kind in ("checkboxes", "radio_buttons"):
            options = self.options(
                self.required(element, "options", pointer),
                f"{pointer}/options",
                max_items=MAX_CHOICE_OPTIONS,
                plain_only=False,
            )
            if kind == "checkboxes":
                self.initial_options(element, options, pointer)
        elif kind in ("static_select", "multi_static_select"):
            if element.get("placeholder") is not None:
                self.text_object(
                    element["placeholder"],
                    f"{pointer}/placeholder",
                    max_length=MAX_PLACEHOLDER,
                    plain_only=True,
                )
            if element.get("option_groups") is None:
                self.options(
                    self.required(element, "options", pointer),
                    f"{pointer}/options",
                    max_items=MAX_SELECT_OPTIONS,
                    plain_only=True,
                )
        elif kind == "overflow":
            self.options(
                self.required(element, "options", pointer),
                f"{pointer}/options",
                max_items=MAX_OVERFLOW_OPTIONS,
                min_items=2,
                plain_only=True,
            )

    def image(self, element: JSONDict, pointer: str) -> None:
        if element.get("image_url") is None and element.get("slack_file") is None:
            self.error(pointer, "missing required field: image_url")
        elif element.get("image_url") is not None:
            self.string(element["image_url"], f"{pointer}/image_url", max_length=MAX_URL)
        if self.required(element, "alt_text", pointer) is not None:
            self.string(element["alt_text"], f"{pointer}/alt_text", max_length=2000)

    # -- blocks ---------------------------------------------------------------------------------

    def block(self, value: Any, pointer: str) -> None:
        block = self.obj(value, pointer)
        if block is None:
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.error(f"{pointer}/type", f"unsupported block type: {kind}")
            return
        block_id = block.get("block_id")
        if block_id is not None and self.string(
            block_id, f"{pointer}/block_id", max_length=MAX_BLOCK_ID, min_length=1
        ):
            if block_id in self.block_ids:
                self.error(f"{pointer}/block_id", f"duplicate block_id: {block_id}")
            self.block_ids.add(block_id)
        self.block_action_ids = set()
        getattr(self, f"block_{kind}")(block, pointer)

    def block_section(self, block: JSONDict, pointer: str) -> None:
        if block.get("text") is None and block.get("fields") is None:
            self.error(pointer, "must provide either text or fields")
        if block.get("text") is not None:
            self.text_object(block["text"], f"{pointer}/text", max_length=MAX_SECTION_TEXT)
        if block.get("fields") is not None:
            fields = self.array(block["fields"], f"{pointer}/fields", max_items=MAX_SECTION_FIELDS)
            for i, item in enumerate(fields or []):
                self.text_object(item, f"{pointer}/fields/{i}", max_length=MAX_SECTION_FIELD_TEXT)
        if block.get("accessory") is not None:
            self.element(
                block["accessory"], f"{pointer}/accessory", allowed=INTERACTIVE_ELEMENTS | {"image"}
            )

    def block_header(self, block: JSONDict, pointer: str) -> None:
        if self.required(block, "text", pointer) is not None:
            self.text_object(
                block["text"], f"{pointer}/text", max_length=MAX_HEADER_TEXT, plain_only=True
            )

    def block_divider(self, block: JSONDict, pointer: str) -> None:
        pass

    def block_actions(self, block: JSONDict, pointer: str) -> None:
        elements = self.array(
            self.required(block, "elements", pointer),
            f"{pointer}/elements",
            max_items=MAX_ACTIONS_ELEMENTS,
        )
        for i, element in enumerate(elements or []):
            self.element(element, f"{pointer}/elements/{i}", allowed=INTERACTIVE_ELEMENTS)

    def block_context(self, block: JSONDict, pointer: str) -> None:
        elements = self.array(
            self.required(block, "elements", pointer),
            f"{pointer}/elements",
            max_items=MAX_CONTEXT_ELEMENTS,
        )
        for i, element in enumerate(elements or []):
            ptr = f"{pointer}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.image(element, ptr)
            else:
                self.text_object(element, ptr, max_length=MAX_SECTION_TEXT)

    def block_input(self, block: JSONDict, pointer: str) -> None:
        if self.required(block, "label", pointer) is not None:
            self.text_object(
                block["label"], f"{pointer}/label", max_length=MAX_INPUT_LABEL, plain_only=True
            )
        if block.get("hint") is not None:
            self.text_object(
                block["hint"], f"{pointer}/hint", max_length=MAX_INPUT_LABEL, plain_only=True
            )
        if self.required(block, "element", pointer) is not None:
            allowed = INTERACTIVE_ELEMENTS - {"button", "overflow"}
            self.element(block["element"], f"{pointer}/element", allowed=allowed)

    def block_rich_text(self, block: JSONDict, pointer: str) -> None:
        elements = self.array(
            self.required(block, "elements", pointer),
            f"{pointer}/elements",
            max_items=None,
            min_items=0,
        )
        for i, element in enumerate(elements or []):
            ptr = f"{pointer}/elements/{i}"
            if not isinstance(element, dict) or element.get("type") not in _RICH_TEXT_ELEMENTS:
                self.error(f"{ptr}/type", "must be a valid enum value")

    def block_image(self, block: JSONDict, pointer: str) -> None:
        self.image(block, pointer)

    def block_markdown(self, block: JSONDict, pointer: str) -> None:
        if self.required(block, "text", pointer) is not None:
            self.string(block["text"], f"{pointer}/text", max_length=MAX_MARKDOWN_BLOCK_TEXT)


def validate_blocks(
    blocks: Any,
    *,
    max_blocks: int = MAX_MESSAGE_BLOCKS,
    pointer: str = "/blocks",
    action_id_scope: Literal["block", "message"] = "block",
) -> list[str]:
    """Slack-style errors for a decoded ``blocks`` value; ``[]`` when Slack would accept it.

    Each error reads like Slack's, e.g.
    ``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
    """
    checker = _BlockChecker(action_id_scope)
    items = checker.array(blocks, pointer, max_items=max_blocks, min_items=0)
    for i, block in enumerate(items or []):
        checker.block(block, f"{pointer}/{i}")
    return checker.errors


def _decode_blocks(value: Any) -> Any:
    """``blocks`` as JSON text (forms) or already decoded (JSON bodies); bad JSON → error."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackAPIError("invalid_blocks_format") from None
    if not isinstance(value, list):
        raise SlackAPIError("invalid_blocks_format")
    return value


def _with_generated_ids(blocks: list[JSONDict], ids: Iterable[int]) -> list[JSONDict]:
    """A copy of valid blocks with Slack's generated ``block_id``/``action_id`` filled in."""
    numbers = iter(ids)
    out = copy.deepcopy(blocks)
    for block in out:
        block.setdefault("block_id", f"fk{next(numbers):04d}")
        elements: list[Any] = []
        if block["type"] == "actions":
            elements = block["elements"]
        elif block["type"] == "section" and isinstance(block.get("accessory"), dict):
            elements = [block["accessory"]]
        elif block["type"] == "input":
            elements = [block["element"]]
        for element in elements:
            if element.get("type") in INTERACTIVE_ELEMENTS:
                element.setdefault("action_id", f"fka{next(numbers):04d}")
    return out


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def dm_channel_id(user_id: str) -> str:
    """The fake's stable DM channel id for a user: ``U0ALICE`` → ``D0ALICE``.

    :class:`tests.slack.driver.SlackDriver` uses the same rule for events in that DM.
    """
    return "D" + user_id[1:]


def _max_in_window(timestamps: Iterable[float], window: float) -> int:
    """Largest number of timestamps inside any half-open interval ``[t, t + window)``."""
    ordered = sorted(timestamps)
    best, first = 0, 0
    for last, stamp in enumerate(ordered):
        while stamp - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def _flag(value: Any) -> bool:
    """Slack's booleans arrive as true/false, "true"/"false" or "1"/"0"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


_STATUS_PAGES = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}

# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


class FakeSlackAPI:
    """A Slack Web API server on 127.0.0.1 with Slack's semantics, fault injection and inspection.

    Use as ``async with FakeSlackAPI() as fake:``; point slack_sdk at :attr:`base_url` (or use
    :meth:`make_client`). Everything runs on the test's event loop: drive the app, then inspect
    :attr:`calls`, :meth:`messages`, :attr:`ephemerals`, :attr:`home_views`, :attr:`responses`.
    """

    def __init__(
        self,
        token: str = "xoxb-1111-2222-fakeprofilebot",
        *,
        team_id: str = "T0PROFILE",
        team: str = "Profilebot Test School",
        team_domain: str = "profilebot-test",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0PROFILE",
        bot_name: str = "profilebot",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.team = team
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        self.clock = clock
        """Time source for call records and rate limits; inject one to test pacing."""
        self.enforce_rate_limits = False
        """When on, ``chat.postMessage`` over :attr:`per_channel_limit` answers 429."""
        self.per_channel_limit = RateLimit(1, 1.0)
        """Slack: "generally allows apps to post 1 message per second to a channel"."""
        self.action_id_scope: Literal["block", "message"] = "block"
        """Where ``action_id`` must be unique: its block (Slack's rule) or the whole message."""

        # Inspection.
        self.calls: list[Call] = []
        self.raw_requests: list[RawRequest] = []
        self.errors: list[ErrorRecord] = []
        self.ephemerals: list[JSONDict] = []
        self.home_views: dict[str, JSONDict] = {}
        self.responses: list[ResponsePost] = []
        self.files: list[JSONDict] = []
        """Files shared with ``files.completeUploadExternal``, in order: ``id``, ``title``,
        ``filename``, ``data`` (the bytes uploaded), ``channel``, ``initial_comment``."""
        self.post_log: list[tuple[float, str]] = []
        """(time, channel) of every accepted chat.postMessage, for rate checks."""

        # State.
        self._users: dict[str, JSONDict] = {}
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[str, dict[str, _StoredMessage]] = {}
        self._response_urls: dict[int, _ResponseURL] = {}
        self._uploads: dict[str, JSONDict] = {}  # file id → filename, length, data
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)
        self._last_ts_micros = 0
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers = {
            "auth.test": self._auth_test,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.upload": self._files_upload,
        }
        self.add_user(
            bot_user_id, name=bot_name, real_name=bot_name.title(), is_bot=True, bot_id=bot_id
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_method)
        app.router.add_post("/response/{number}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
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
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the server root."""
        if self._port is None:
            raise RuntimeError("FakeSlackAPI is not running; use `async with FakeSlackAPI()`")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """slack_sdk's ``base_url`` (``SLACK_API_BASE_URL``): ``http://127.0.0.1:<port>/api/``."""
        return f"{self.url}/api/"

    def make_client(self, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
        """A real ``AsyncWebClient`` aimed at this server (``token=""`` sends no token)."""
        return AsyncWebClient(
            token=self.token if token is None else (token or None),
            base_url=self.base_url,
            **kwargs,
        )

    # -- the world ------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "Europe/London",
        is_bot: bool = False,
        deleted: bool = False,
        bot_id: str | None = None,
    ) -> JSONDict:
        """Add (or replace) a workspace member; return the ``users.info`` user object."""
        if user_id[:1] not in ("U", "W"):
            raise ValueError(f"Slack user ids start with U or W, got {user_id!r}")
        handle = name or user_id.lower()
        full_name = real_name or handle
        offset = int(datetime.now(ZoneInfo(tz)).utcoffset().total_seconds())  # type: ignore[union-attr]
        profile: JSONDict = {
            "real_name": full_name,
            "real_name_normalized": full_name,
            "display_name": handle,
            "display_name_normalized": handle,
            "first_name": full_name.split(" ")[0],
            "last_name": " ".join(full_name.split(" ")[1:]),
            "team": self.team_id,
            "image_48": f"https://avatars.example.invalid/{user_id}_48.png",
        }
        if email is not None:
            profile["email"] = email
        if bot_id is not None:
            profile["bot_id"] = bot_id
        user: JSONDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": handle,
            "deleted": deleted,
            "real_name": full_name,
            "tz": tz,
            "tz_label": datetime.now(ZoneInfo(tz)).tzname(),
            "tz_offset": offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        self._users[user_id] = user
        return copy.deepcopy(user)

    @property
    def users(self) -> dict[str, JSONDict]:
        return copy.deepcopy(self._users)

    def dm_channel(self, user_id: str) -> str:
        """The DM between the app and a (known, human) user; it exists from the start."""
        channel = self._im_for(user_id)
        if channel is None:
            raise KeyError(f"no DM possible with {user_id!r}: unknown user or a bot")
        return channel.id

    def add_channel(self, channel_id: str, name: str, members: Iterable[str] = ()) -> None:
        """A public/private channel (``C…``/``G…``) with these members (the bot is added)."""
        self._channels[channel_id] = _Channel(
            channel_id, is_im=False, name=name, members={*members, self.bot_user_id}
        )

    def response_url(
        self, *, channel: str | None = None, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """A fresh ``response_url`` on this server (what Slack puts in interaction payloads).

        Tie it to the message the interaction came from (``channel`` + ``message_ts``) and
        ``replace_original``/``delete_original`` posts change that message in :meth:`messages`.
        """
        number = next(self._ids)
        self._response_urls[number] = _ResponseURL(number, channel, message_ts, user)
        return f"{self.url}/response/{number}"

    # -- fault injection ------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        kind: FaultKind,
        *,
        count: int = 1,
        retry_after: int = 1,
        channel: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (to ``channel`` only) with a failure.

        ``kind``: 429 or ``"ratelimited"`` (HTTP 429, ``Retry-After: retry_after``); a 5xx status
        (500, 502, 503, 504: an HTML error page); or any Slack error name such as
        ``"invalid_auth"`` or ``"channel_not_found"`` (HTTP 200, ``{"ok": false, ...}``).
        """
        if isinstance(kind, int) and kind != 429 and kind not in _STATUS_PAGES:
            raise ValueError(f"unsupported HTTP status to inject: {kind}")
        self._faults.append(_Fault(method, kind, count, retry_after, channel))

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- inspection -----------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[JSONDict]:
        """The params of every call to ``method``, in order."""
        return [call.params for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[JSONDict]:
        """The bot's messages in a channel (or a user's DM, given ``U…``) as they read now.

        In ``ts`` order, after ``chat.update`` edits and ``replace_original`` responses; each has
        ``ts``, ``text``, ``blocks`` (``[]`` when none), ``user``, ``bot_id`` and ``edited``
        once edited.
        """
        resolved = self._channels.get(channel) or (
            self._im_for(channel) if channel.startswith(("U", "W")) else None
        )
        stored = self._messages.get(resolved.id if resolved else channel, {})
        return [
            copy.deepcopy(item.message) for _, item in sorted(stored.items()) if not item.deleted
        ]

    def ephemerals_for(self, user: str) -> list[JSONDict]:
        return [copy.deepcopy(e) for e in self.ephemerals if e["user"] == user]

    def max_rate_per_channel(self, window: float = 1.0, channel: str | None = None) -> int:
        """Most accepted ``chat.postMessage`` calls to one channel within any ``window`` seconds."""
        return max(
            (n for ch, n in self.max_rates(window).items() if channel in (None, ch)), default=0
        )

    def max_rates(self, window: float = 1.0) -> dict[str, int]:
        """:meth:`max_rate_per_channel` for every channel posted to."""
        by_channel: dict[str, list[float]] = {}
        for t, channel in self.post_log:
            by_channel.setdefault(channel, []).append(t)
        return {c: _max_in_window(by_channel[c], window) for c in sorted(by_channel)}

    def posted(self) -> list[tuple[str, str]]:
        """(channel, text as posted) of every message the bot posted, channel by channel."""
        return [
            (channel, item.message.get("text") or "")
            for channel, stored in self._messages.items()
            for _, item in sorted(stored.items())
            if item.message.get("bot_id")
        ]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 1.0) -> None:
        """Wait until ``predicate()`` holds, re-checking after every call and response post."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [call.method for call in self.calls[-10:]]
                raise AssertionError(f"condition not met within {timeout} s; last calls: {recent}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # -- HTTP plumbing --------------------------------------------------------------------------

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, content_type, token, source, body_error = await self._read_request(request)
        self.raw_requests.append(RawRequest(method, request.method, content_type, source))
        self.calls.append(Call(method, params, self.clock()))
        try:
            if token is None:
                raise SlackAPIError("not_authed")
            if token != self.token:
                raise SlackAPIError("invalid_auth")
            if body_error is not None:
                raise SlackAPIError(body_error)
            self._inject_fault(method, params)
            handler = self._handlers.get(method)
            if handler is None:
                raise SlackAPIError("unknown_method", extra={"req_method": method})
            result = handler(params)
        except SlackAPIError as error:
            self.errors.append(ErrorRecord(method, error.status, error.error))
            if error.status in _STATUS_PAGES:
                return web.Response(
                    status=error.status,
                    text=f"<html><body><h1>{_STATUS_PAGES[error.status]}</h1></body></html>",
                    content_type="text/html",
                )
            return web.json_response(error.to_json(), status=error.status, headers=error.headers)
        finally:
            self._notify()
        return web.json_response({"ok": True, **result})

    async def _read_request(
        self, request: web.Request
    ) -> tuple[JSONDict, str, str | None, str, str | None]:
        """(params, content type, token, token source, body error) of an API request."""
        params: JSONDict = dict(request.query)
        content_type = request.content_type if request.can_read_body else ""
        body_error = None
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        elif request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body, body_error = {}, "invalid_json"
            if isinstance(body, dict):
                params.update(body)
            else:
                body_error = "json_not_object"
        token, source = None, "none"
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            token, source = authorization.removeprefix("Bearer ").strip(), "header"
        elif isinstance(params.get("token"), str) and content_type != "application/json":
            token, source = params["token"], "param"
        params.pop("token", None)
        return params, content_type, token, source, body_error

    def _inject_fault(self, method: str, params: JSONDict) -> None:
        for fault in self._faults:
            if fault.method != method:
                continue
            if fault.channel is not None and params.get("channel") != fault.channel:
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            if fault.kind in (429, "ratelimited"):
                raise _rate_limited(fault.retry_after)
            if isinstance(fault.kind, int):
                raise SlackAPIError("server_error", status=fault.kind)
            raise SlackAPIError(fault.kind)

    def _notify(self) -> None:
        """Wake everything waiting in :meth:`wait_until`."""
        self._changed.set()
        self._changed = asyncio.Event()

    # -- state helpers --------------------------------------------------------------------------

    def _next_ts(self) -> str:
        """A Slack ``ts`` ("seconds.micros"), unique and increasing within this fake."""
        micros = max(int(time.time() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _im_for(self, user_id: str) -> _Channel | None:
        user = self._users.get(user_id)
        if user is None or user["is_bot"] or user["deleted"]:
            return None
        channel_id = dm_channel_id(user_id)
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = _Channel(channel_id, is_im=True, user=user_id)
            channel.members = {user_id, self.bot_user_id}
            self._channels[channel_id] = channel
        return channel

    def _resolve_channel(self, value: Any) -> _Channel:
        """The channel a post targets; a user id means the app's DM with that user."""
        if not isinstance(value, str) or not value:
            raise SlackAPIError("channel_not_found")
        if value.startswith(("U", "W")):
            channel = self._im_for(value)
        elif value.startswith("D"):
            owner = next((u for u in self._users if dm_channel_id(u) == value), None)
            channel = self._im_for(owner) if owner else None
        else:
            channel = self._channels.get(value)
        if channel is None:
            raise SlackAPIError("channel_not_found")
        return channel

    def _content(
        self, params: JSONDict, *, max_blocks: int = MAX_MESSAGE_BLOCKS, required: bool = True
    ) -> tuple[str | None, list[JSONDict] | None]:
        """Validated (text, blocks) of a message; ``None`` for each that was not sent."""
        text = params.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
        blocks: list[JSONDict] | None = None
        if params.get("blocks") is not None and params.get("blocks") != "":
            decoded = _decode_blocks(params["blocks"])
            errors = validate_blocks(
                decoded, max_blocks=max_blocks, action_id_scope=self.action_id_scope
            )
            if errors:
                raise SlackAPIError(
                    "invalid_blocks",
                    extra={
                        "errors": errors,
                        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                    },
                )
            blocks = _with_generated_ids(decoded, self._ids)
        has_attachments = bool(params.get("attachments")) and params.get("attachments") != "[]"
        if required and not text and not blocks and not has_attachments:
            raise SlackAPIError("no_text")
        if text is not None and len(text) > MAX_MESSAGE_TEXT:
            raise SlackAPIError("msg_too_long")
        return text, blocks

    def _check_rate_limit(self, channel: str, now: float) -> None:
        limit = self.per_channel_limit
        recent = sorted(t for t, c in self.post_log if c == channel and now - t < limit.per_seconds)
        if len(recent) >= limit.messages:
            wait = recent[len(recent) - limit.messages] + limit.per_seconds - now
            raise _rate_limited(max(1, math.ceil(wait)))

    def _bot_message(self, text: str | None, blocks: list[JSONDict] | None, ts: str) -> JSONDict:
        message: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text or "",
            "ts": ts,
            "team": self.team_id,
            "blocks": blocks or [],
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "deleted": False,
                "team_id": self.team_id,
            },
        }
        return message

    # -- method handlers ------------------------------------------------------------------------

    def _auth_test(self, params: JSONDict) -> JSONDict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _conversations_open(self, params: JSONDict) -> JSONDict:
        if params.get("channel"):
            channel = self._resolve_channel(params["channel"])
        else:
            users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
            if not users:
                raise SlackAPIError("users_list_not_supplied")
            if len(users) > 1:
                raise SlackAPIError("fake_unsupported", extra={"detail": "group DMs"})
            user = self._users.get(users[0])
            if user is None or user["deleted"]:
                raise SlackAPIError("user_not_found")
            if user["is_bot"]:
                raise SlackAPIError("cannot_dm_bot")
            channel = self._resolve_channel(users[0])
        result: JSONDict = {"channel": {"id": channel.id}}
        if channel.opened:
            result.update(no_op=True, already_open=True)
        channel.opened = True
        if _flag(params.get("return_im")):
            result["channel"].update(
                {"created": int(time.time()), "is_im": channel.is_im, "user": channel.user}
            )
        return result

    def _chat_post_message(self, params: JSONDict) -> JSONDict:
        channel = self._resolve_channel(params.get("channel"))
        text, blocks = self._content(params)
        now = self.clock()
        if self.enforce_rate_limits:
            self._check_rate_limit(channel.id, now)
        ts = self._next_ts()
        message = self._bot_message(text, blocks, ts)
        self._messages.setdefault(channel.id, {})[ts] = _StoredMessage(message)
        self.post_log.append((now, channel.id))
        return {"channel": channel.id, "ts": ts, "message": copy.deepcopy(message)}

    def _chat_update(self, params: JSONDict) -> JSONDict:
        channel_param = params.get("channel")
        if isinstance(channel_param, str) and channel_param.startswith(("U", "W")):
            raise SlackAPIError("channel_not_found")  # Slack: use the D… id, not the user's
        channel = self._resolve_channel(channel_param)
        ts = params.get("ts")
        if not ts:
            raise _invalid_arguments("missing required field: ts")
        stored = self._messages.get(channel.id, {}).get(str(ts))
        if stored is None or stored.deleted:
            raise SlackAPIError("message_not_found")
        if stored.message.get("bot_id") != self.bot_id:
            raise SlackAPIError("cant_update_message")
        text, blocks = self._content(params)
        message = stored.message
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks  # omitted blocks are retained, [] clears them
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(message),
        }

    def _chat_post_ephemeral(self, params: JSONDict) -> JSONDict:
        channel = self._resolve_channel(params.get("channel"))
        user_id = params.get("user")
        if not user_id:
            raise _invalid_arguments("missing required field: user")
        user = self._users.get(user_id)
        if user is None or user["deleted"]:
            raise SlackAPIError("user_not_found")
        if user_id not in channel.members:
            raise SlackAPIError("user_not_in_channel")
        text, blocks = self._content(params)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel.id,
                "user": user_id,
                "text": text or "",
                "blocks": blocks or [],
                "message_ts": ts,
            }
        )
        return {"message_ts": ts}

    def _views_publish(self, params: JSONDict) -> JSONDict:
        user_id = params.get("user_id")
        view = params.get("view")
        missing = [name for name, v in (("user_id", user_id), ("view", view)) if not v]
        if missing:
            raise _invalid_arguments(*(f"missing required field: {m}" for m in missing))
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise _invalid_arguments("must provide an object [json-pointer:/view]") from None
        if not isinstance(view, dict):
            raise _invalid_arguments("must provide an object [json-pointer:/view]")
        if view.get("type") != "home":
            raise _invalid_arguments("must be a valid enum value [json-pointer:/view/type]")
        user = self._users.get(user_id)  # type: ignore[arg-type]
        if user is None or user["deleted"]:
            raise SlackAPIError("user_not_found")
        previous = self.home_views.get(user_id)  # type: ignore[arg-type]
        if params.get("hash") and (previous is None or previous["hash"] != params["hash"]):
            raise SlackAPIError("hash_conflict")
        if "blocks" not in view:
            raise _invalid_arguments("missing required field: blocks [json-pointer:/view]")
        errors = validate_blocks(
            view["blocks"],
            max_blocks=MAX_HOME_BLOCKS,
            pointer="/view/blocks",
            action_id_scope=self.action_id_scope,
        )
        for key, limit in (("private_metadata", 3000), ("callback_id", 255)):
            if isinstance(view.get(key), str) and len(view[key]) > limit:
                errors.append(
                    f"must be less than {limit + 1} characters [json-pointer:/view/{key}]"
                )
        if errors:
            raise _invalid_arguments(*errors)
        number = next(self._ids)
        stored: JSONDict = {
            "id": previous["id"] if previous else f"V{number:08d}",
            "team_id": self.team_id,
            "type": "home",
            "blocks": _with_generated_ids(view["blocks"], self._ids),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{number:08x}",
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        self.home_views[user_id] = stored  # type: ignore[index]
        return {"view": copy.deepcopy(stored)}

    def _files_get_upload_url(self, params: JSONDict) -> JSONDict:
        """Step 1 of Slack's upload flow: a URL (on this fake) to post the bytes to."""
        filename = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except ValueError:
            length = -1
        if not isinstance(filename, str) or not filename or length <= 0:
            raise _invalid_arguments("filename and a positive length are required")
        file_id = f"F{next(self._ids):010d}"
        self._uploads[file_id] = {"filename": filename, "length": length, "data": None}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """Step 2: the bytes, posted raw (or as a multipart ``file`` field); Slack answers
        200 with a plain-text "OK - <length>"."""
        file_id = request.match_info["file_id"]
        upload = self._uploads.get(file_id)
        if upload is None or upload["data"] is not None:
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            field = (await request.post()).get("file")
            data = field.file.read() if isinstance(field, web.FileField) else b""
        else:
            data = await request.read()
        self._notify()
        if len(data) != upload["length"]:
            return web.Response(status=400, text="length mismatch")
        upload["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    def _files_complete_upload(self, params: JSONDict) -> JSONDict:
        """Step 3: share uploaded files in a channel (its id: ``C…``/``D…``/``G…``)."""
        raw = params.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            files = None
        if not isinstance(files, list) or not files:
            raise _invalid_arguments("files must be a non-empty JSON array")
        channel_id = params.get("channel_id")
        if channel_id is not None and not str(channel_id).startswith(("C", "D", "G")):
            raise SlackAPIError("channel_not_found")
        channel = self._resolve_channel(channel_id) if channel_id is not None else None
        shared = []
        for item in files:
            upload = self._uploads.get(str(item.get("id"))) if isinstance(item, dict) else None
            if upload is None or upload["data"] is None:
                raise SlackAPIError("file_not_found")
            record = {
                "id": item["id"],
                "title": item.get("title") or upload["filename"],
                "filename": upload["filename"],
                "data": upload["data"],
                "channel": None if channel is None else channel.id,
                "initial_comment": params.get("initial_comment"),
            }
            self.files.append(record)
            shared.append({"id": item["id"], "title": record["title"]})
        return {"files": shared}

    def _files_upload(self, params: JSONDict) -> JSONDict:
        """Retired by Slack: new apps get ``method_deprecated``."""
        raise SlackAPIError("method_deprecated")

    def _users_info(self, params: JSONDict) -> JSONDict:
        user_id = params.get("user")
        if not user_id:
            raise _invalid_arguments("missing required field: user")
        user = self._users.get(user_id)
        if user is None:
            raise SlackAPIError("user_not_found")
        return {"user": copy.deepcopy(user)}

    # -- response URLs --------------------------------------------------------------------------

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"]) if request.match_info["number"].isdigit() else 0
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            payload = None
        try:
            target = self._response_urls.get(number)
            if target is None:
                self.errors.append(ErrorRecord("response_url", 404, "expired_url"))
                return web.Response(status=404, text="expired_url")
            if not isinstance(payload, dict):
                self.errors.append(ErrorRecord("response_url", 400, "invalid_payload"))
                return web.Response(status=400, text="invalid_payload")
            if target.uses >= MAX_RESPONSE_URL_USES:
                self.errors.append(ErrorRecord("response_url", 404, "used_url"))
                return web.Response(status=404, text="used_url")
            try:
                self._apply_response(target, payload)
            except SlackAPIError as error:
                self.errors.append(ErrorRecord("response_url", 400, error.error))
                return web.json_response(error.to_json(), status=400)
            target.uses += 1
            self.responses.append(ResponsePost(str(request.url), number, payload, self.clock()))
            return web.json_response({"ok": True})
        finally:
            self._notify()

    def _apply_response(self, target: _ResponseURL, payload: JSONDict) -> None:
        """What a response_url post does to the conversation (when tied to a message)."""
        if _flag(payload.get("delete_original")):
            stored = self._original(target)
            if stored is not None:
                stored.deleted = True
            return
        text, blocks = self._content(payload)
        if payload.get("response_type") not in (None, "ephemeral", "in_channel"):
            raise SlackAPIError("invalid_response_type")
        if _flag(payload.get("replace_original")):
            stored = self._original(target)
            if stored is not None:
                stored.message["text"] = text or ""
                stored.message["blocks"] = blocks or []
                stored.message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        elif payload.get("response_type") == "in_channel" and target.channel is not None:
            ts = self._next_ts()
            self._messages.setdefault(target.channel, {})[ts] = _StoredMessage(
                self._bot_message(text, blocks, ts)
            )
        elif target.channel is not None and target.user is not None:
            self.ephemerals.append(
                {
                    "channel": target.channel,
                    "user": target.user,
                    "text": text or "",
                    "blocks": blocks or [],
                    "message_ts": self._next_ts(),
                }
            )

    def _original(self, target: _ResponseURL) -> _StoredMessage | None:
        if target.channel is None or target.message_ts is None:
            return None
        return self._messages.get(target.channel, {}).get(target.message_ts)


def _rate_limited(retry_after: int) -> SlackAPIError:
    return SlackAPIError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})


__all__ = [
    "BLOCK_TYPES",
    "MAX_HOME_BLOCKS",
    "MAX_MESSAGE_BLOCKS",
    "MAX_MESSAGE_TEXT",
    "Call",
    "ErrorRecord",
    "FakeSlackAPI",
    "RateLimit",
    "RawRequest",
    "ResponsePost",
    "SlackAPIError",
    "dm_channel_id",
    "validate_blocks",
]
