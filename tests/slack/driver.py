"""Plays Slack's side of the Events API, interactivity and slash commands against our app.

:class:`SlackDriver` POSTs to the app's request URL (``/slack/events``) exactly as Slack does:

- Signing (docs.slack.dev "Verifying requests from Slack"): ``X-Slack-Request-Timestamp: <unix
  seconds>`` and ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>" keyed
  with the signing secret>``. Apps must refuse a wrong or missing signature and a timestamp more
  than five minutes from now (slack_sdk's ``SignatureVerifier`` and Bolt do); ``signing=`` sends
  each of those on purpose.
- Retries: Slack redelivers an event that was not acknowledged within 3 seconds, adding
  ``X-Slack-Retry-Num`` (1, 2, 3) and ``X-Slack-Retry-Reason`` (``http_timeout``,
  ``http_error``, ...); pass ``retry_num``/``retry_reason``.
- Bodies: events, ``url_verification`` and ``app_home_opened`` are JSON; ``ssl_check`` and slash
  commands are form posts; interactivity is a form post with one field, ``payload=<json>``.

The builders make payloads shaped like the samples in Slack's documentation (``message.im``,
``message`` subtypes ``bot_message``/``message_changed``/``channel_join``, ``app_home_opened``,
``block_actions``, slash commands). Every send returns a :class:`DriverResponse` with the
status, headers, body and how long the app took to answer (Slack gives up after 3 seconds).

Usage::

    async with FakeSlackAPI() as fake, SlackDriver(app_url, SECRET,
                                                   response_url=fake.response_url) as slack:
        reply = await slack.message("U0ALICE", "hello")
        assert reply.status == 200 and reply.elapsed < 3
        [message] = fake.messages("U0ALICE")
        await slack.click_button("U0ALICE", message, action_id="answer:yes")
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlencode

import aiohttp

from tests.slack.fake_web_api import dm_channel_id

JSONDict = dict[str, Any]
Signing = Literal["valid", "wrong", "none", "stale"]

ACK_DEADLINE = 3.0
"""Seconds Slack waits for the HTTP answer before it counts a delivery as failed."""
STALE_AFTER = 5 * 60
"""Slack's replay window: requests older than five minutes must be refused."""
_UNREACHABLE_RESPONSE_URL = "http://127.0.0.1:9/response-url-not-configured"


def sign(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's ``X-Slack-Signature`` value for a request body."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DriverResponse:
    """The app's answer to one delivery."""

    status: int
    headers: Mapping[str, str]
    body: str
    elapsed: float
    """Seconds from sending the request to having the whole answer (the ack time)."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def acked_in_time(self) -> bool:
        """2xx within Slack's 3-second deadline: Slack would not retry."""
        return 200 <= self.status < 300 and self.elapsed < ACK_DEADLINE


@dataclass(frozen=True)
class SentRequest:
    """What the driver sent (for assertions and for re-sending as a retry)."""

    body: bytes
    content_type: str
    headers: Mapping[str, str]


class SlackDriver:
    """Sends signed Slack requests to one app endpoint; use as ``async with SlackDriver(...)``.

    ``url`` is the full request URL (``http://127.0.0.1:<port>/slack/events``). The ids default
    to :class:`~tests.slack.fake_web_api.FakeSlackAPI`'s, so events and API calls agree; DM
    channels follow :func:`~tests.slack.fake_web_api.dm_channel_id`. ``response_url`` is a
    factory for interaction/command response URLs, called with ``channel=``, ``message_ts=`` and
    ``user=`` — pass ``fake.response_url`` so that the app's responses land in the fake (without
    one, payloads carry a URL on a closed loopback port).
    """

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        team_id: str = "T0PROFILE",
        team_domain: str = "profilebot-test",
        api_app_id: str = "A0PROFILE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        verification_token: str = "fake-verification-token",
        response_url: Callable[..., str] | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.verification_token = verification_token
        self.response_url_factory = response_url
        self.timeout = timeout
        self.clock = clock
        self.sent: list[SentRequest] = []
        self.responses: list[DriverResponse] = []
        self._session: aiohttp.ClientSession | None = None
        self._counter = itertools.count(1)
        self._last_ts_micros = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- transport ------------------------------------------------------------------------------

    def signed_headers(
        self,
        body: bytes,
        content_type: str,
        *,
        signing: Signing = "valid",
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> dict[str, str]:
        """The headers Slack would send with ``body`` (signed as ``signing`` asks)."""
        if timestamp is None:
            timestamp = int(self.clock())
            if signing == "stale":
                timestamp -= STALE_AFTER + 60
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(timestamp),
        }
        if signing in ("valid", "stale"):
            headers["X-Slack-Signature"] = sign(self.signing_secret, timestamp, body)
        elif signing == "wrong":
            headers["X-Slack-Signature"] = sign(self.signing_secret + "-wrong", timestamp, body)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return headers

    async def post(
        self,
        body: bytes | str,
        content_type: str,
        *,
        signing: Signing = "valid",
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> DriverResponse:
        """POST a raw body, signed; return the app's answer and how long it took."""
        raw = body.encode() if isinstance(body, str) else body
        headers = self.signed_headers(
            raw,
            content_type,
            signing=signing,
            timestamp=timestamp,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        headers.update(extra_headers or {})
        self.sent.append(SentRequest(raw, content_type, headers))
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        started = time.perf_counter()
        async with self._session.post(self.url, data=raw, headers=headers) as response:
            text = await response.text()
            elapsed = time.perf_counter() - started
            answer = DriverResponse(response.status, dict(response.headers), text, elapsed)
        self.responses.append(answer)
        return answer

    async def post_json(self, payload: Mapping[str, Any], **options: Any) -> DriverResponse:
        return await self.post(json.dumps(payload), "application/json", **options)

    async def post_form(self, fields: Mapping[str, str], **options: Any) -> DriverResponse:
        return await self.post(urlencode(fields), "application/x-www-form-urlencoded", **options)

    async def resend(
        self, request: SentRequest, *, retry_num: int, retry_reason: str = "http_timeout"
    ) -> DriverResponse:
        """Redeliver a request as Slack's retry ``retry_num`` (freshly signed)."""
        return await self.post(
            request.body, request.content_type, retry_num=retry_num, retry_reason=retry_reason
        )

    # -- ids ------------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A message ``ts`` ("seconds.micros"), unique and increasing."""
        micros = max(int(self.clock() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def next_event_id(self) -> str:
        return f"Ev{next(self._counter):08d}FK"

    def trigger_id(self) -> str:
        n = next(self._counter)
        return f"{n}.{int(self.clock())}.{uuid.uuid4().hex[:24]}"

    def new_response_url(self, **context: Any) -> str:
        """A response URL from the factory, told ``channel``, ``message_ts`` and ``user``."""
        if self.response_url_factory is None:
            return _UNREACHABLE_RESPONSE_URL
        return self.response_url_factory(**context)

    # -- event builders -------------------------------------------------------------------------

    def event_callback(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        event_time: int | None = None,
    ) -> JSONDict:
        """The Events API envelope around ``event`` (Slack's "event_callback" sample)."""
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": copy.deepcopy(dict(event)),
            "type": "event_callback",
            "event_id": event_id or self.next_event_id(),
            "event_time": event_time if event_time is not None else int(self.clock()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-fake-{self.team_id}-{self.api_app_id}",
        }

    def message_event(
        self,
        user: str | None,
        text: str,
        *,
        channel: str | None = None,
        channel_type: str = "im",
        subtype: str | None = None,
        bot_id: str | None = None,
        ts: str | None = None,
        thread_ts: str | None = None,
        with_blocks: bool = True,
    ) -> JSONDict:
        """A ``message`` event; a human's DM by default (``channel`` = the user's DM).

        ``bot_id`` makes it bot-authored, as Slack marks messages posted by apps (the bot's own
        messages come back this way with ``user`` = the bot user).
        """
        if channel is None:
            if user is None:
                raise ValueError("a message without a user needs an explicit channel")
            channel = dm_channel_id(user)
        ts = ts or self.next_ts()
        event: JSONDict = {"type": "message"}
        if subtype is not None:
            event["subtype"] = subtype
        if user is not None:
            event["user"] = user
        event["text"] = text
        if bot_id is not None:
            event["bot_id"] = bot_id
            event["app_id"] = self.api_app_id if bot_id == self.bot_id else "A0OTHERAPP"
        elif subtype is None:
            event["client_msg_id"] = str(uuid.uuid4())
        if with_blocks and subtype is None:
            event["blocks"] = [
                {
                    "type": "rich_text",
                    "block_id": uuid.uuid4().hex[:5],
                    "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
                    ],
                }
            ]
        event.update(
            {
                "team": self.team_id,
                "ts": ts,
                "channel": channel,
                "event_ts": ts,
                "channel_type": channel_type,
            }
        )
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return event

    def bot_message_event(
        self,
        text: str,
        *,
        channel: str,
        bot_id: str = "B0OTHERBOT",
        username: str = "Some Integration",
        channel_type: str = "im",
    ) -> JSONDict:
        """A ``bot_message`` subtype (legacy integrations; no ``user``), per Slack's sample."""
        event = self.message_event(
            None,
            text,
            channel=channel,
            channel_type=channel_type,
            subtype="bot_message",
            bot_id=bot_id,
        )
        event["username"] = username
        return event

    def message_changed_event(
        self,
        user: str,
        *,
        ts: str,
        old_text: str,
        new_text: str,
        channel: str | None = None,
        channel_type: str = "im",
    ) -> JSONDict:
        """A ``message_changed`` subtype: the user edited the message sent at ``ts``."""
        channel = channel or dm_channel_id(user)
        now = self.next_ts()
        previous = {"type": "message", "user": user, "text": old_text, "ts": ts}
        return {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "message": {
                "type": "message",
                "user": user,
                "text": new_text,
                "ts": ts,
                "edited": {"user": user, "ts": now},
                "source_team": self.team_id,
                "user_team": self.team_id,
            },
            "previous_message": previous,
            "channel": channel,
            "ts": now,
            "event_ts": now,
            "channel_type": channel_type,
        }

    def channel_join_event(
        self, user: str, *, channel: str, inviter: str | None = None, channel_type: str = "channel"
    ) -> JSONDict:
        """A ``channel_join`` subtype: ``user`` joined ``channel``."""
        event = self.message_event(
            user,
            f"<@{user}> has joined the channel",
            channel=channel,
            channel_type=channel_type,
            subtype="channel_join",
        )
        if inviter is not None:
            event["inviter"] = inviter
        return event

    def app_home_opened_event(
        self,
        user: str,
        *,
        tab: Literal["home", "messages"] = "home",
        view: Mapping[str, Any] | None = None,
    ) -> JSONDict:
        """``app_home_opened``: ``view`` is present when a Home tab was published before."""
        event: JSONDict = {
            "type": "app_home_opened",
            "user": user,
            "channel": dm_channel_id(user),
            "tab": tab,
            "event_ts": self.next_ts(),
        }
        if view is not None:
            event["view"] = copy.deepcopy(dict(view))
        return event

    # -- interactivity and command builders -----------------------------------------------------

    def user_object(self, user: str, name: str | None = None) -> JSONDict:
        return {
            "id": user,
            "username": name or user.lower(),
            "name": name or user.lower(),
            "team_id": self.team_id,
        }

    def button_action(
        self,
        action_id: str,
        *,
        block_id: str,
        value: str | None = None,
        text: str = "Button",
        style: str | None = None,
    ) -> JSONDict:
        action: JSONDict = {
            "action_id": action_id,
            "block_id": block_id,
            "text": {"type": "plain_text", "text": text, "emoji": True},
            "type": "button",
            "action_ts": self.next_ts(),
        }
        if value is not None:
            action["value"] = value
        if style is not None:
            action["style"] = style
        return action

    def checkboxes_action(
        self, action_id: str, *, block_id: str, selected_options: Iterable[Mapping[str, Any]]
    ) -> JSONDict:
        return {
            "type": "checkboxes",
            "action_id": action_id,
            "block_id": block_id,
            "selected_options": [copy.deepcopy(dict(o)) for o in selected_options],
            "action_ts": self.next_ts(),
        }

    def block_actions_payload(
        self,
        user: str,
        actions: Iterable[Mapping[str, Any]],
        *,
        message: Mapping[str, Any] | None = None,
        channel: str | None = None,
        view: Mapping[str, Any] | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
        state_values: Mapping[str, Any] | None = None,
        user_name: str | None = None,
    ) -> JSONDict:
        """A ``block_actions`` payload for a click in a message (default) or a view (Home tab).

        Message interactions carry ``container {type: message, message_ts, channel_id}``,
        ``channel``, ``message`` and a ``response_url``; view ones carry ``view`` instead.
        """
        payload: JSONDict = {
            "type": "block_actions",
            "user": self.user_object(user, user_name),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id or self.trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": copy.deepcopy(dict(state_values or {}))},
            "actions": [copy.deepcopy(dict(action)) for action in actions],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id")}
            payload["view"] = copy.deepcopy(dict(view))
            return payload
        if message is None:
            raise ValueError("a block_actions payload needs a message or a view")
        channel = channel or dm_channel_id(user)
        payload["container"] = {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        }
        payload["channel"] = {
            "id": channel,
            "name": "directmessage" if channel.startswith("D") else channel.lower(),
        }
        payload["message"] = copy.deepcopy(dict(message))
        payload["response_url"] = response_url or self.new_response_url(
            channel=channel, message_ts=message["ts"], user=user
        )
        return payload

    def slash_command_form(
        self,
        user: str,
        text: str = "",
        *,
        command: str = "/profilebot",
        channel_id: str | None = None,
        channel_name: str | None = None,
        user_name: str | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, str]:
        """The form fields of a slash command invocation (Slack's documented sample)."""
        channel_id = channel_id or dm_channel_id(user)
        return {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name
            or ("directmessage" if channel_id.startswith("D") else channel_id.lower()),
            "user_id": user,
            "user_name": user_name or user.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url
            or self.new_response_url(channel=channel_id, message_ts=None, user=user),
            "trigger_id": trigger_id or self.trigger_id(),
        }

    # -- sends ----------------------------------------------------------------------------------

    async def send_event(
        self, event: Mapping[str, Any], *, event_id: str | None = None, **options: Any
    ) -> DriverResponse:
        """Deliver one event in an ``event_callback`` envelope (options as :meth:`post`)."""
        return await self.post_json(self.event_callback(event, event_id=event_id), **options)

    async def message(self, user: str, text: str, **options: Any) -> DriverResponse:
        """The user writes ``text`` to the app in their DM."""
        return await self.send_event(self.message_event(user, text), **options)

    async def app_home_opened(
        self, user: str, *, tab: Literal["home", "messages"] = "home", **options: Any
    ) -> DriverResponse:
        return await self.send_event(self.app_home_opened_event(user, tab=tab), **options)

    async def url_verification(
        self,
        challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        **options: Any,
    ) -> DriverResponse:
        """Slack's handshake when the request URL is saved; the app must echo ``challenge``."""
        body = {
            "token": self.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        return await self.post_json(body, **options)

    async def ssl_check(self, **options: Any) -> DriverResponse:
        """Slack's certificate check for slash command URLs: ``ssl_check=1&token=...``."""
        return await self.post_form({"ssl_check": "1", "token": self.verification_token}, **options)

    async def block_actions(self, payload: Mapping[str, Any], **options: Any) -> DriverResponse:
        """Deliver an interaction payload as Slack does: form field ``payload=<json>``."""
        return await self.post_form({"payload": json.dumps(payload)}, **options)

    async def click_button(
        self,
        user: str,
        message: Mapping[str, Any],
        action_id: str,
        *,
        channel: str | None = None,
        response_url: str | None = None,
        **options: Any,
    ) -> DriverResponse:
        """Click the button ``action_id`` found in ``message["blocks"]`` (e.g. from the fake)."""
        block, element = _find_element(message, action_id, "button")
        action = self.button_action(
            action_id,
            block_id=block["block_id"],
            value=element.get("value"),
            text=element["text"]["text"],
            style=element.get("style"),
        )
        payload = self.block_actions_payload(
            user, [action], message=message, channel=channel, response_url=response_url
        )
        return await self.block_actions(payload, **options)

    async def check_boxes(
        self,
        user: str,
        message: Mapping[str, Any],
        action_id: str,
        values: Iterable[str],
        *,
        channel: str | None = None,
        response_url: str | None = None,
        **options: Any,
    ) -> DriverResponse:
        """Set the checkboxes ``action_id`` in ``message`` to exactly ``values`` (one action)."""
        block, element = _find_element(message, action_id, "checkboxes")
        wanted = list(values)
        by_value = {option["value"]: option for option in element["options"]}
        unknown = [value for value in wanted if value not in by_value]
        if unknown:
            raise ValueError(f"no such checkbox options: {unknown}")
        selected = [by_value[value] for value in wanted]
        action = self.checkboxes_action(
            action_id, block_id=block["block_id"], selected_options=selected
        )
        state = {
            block["block_id"]: {action_id: {"type": "checkboxes", "selected_options": selected}}
        }
        payload = self.block_actions_payload(
            user,
            [action],
            message=message,
            channel=channel,
            response_url=response_url,
            state_values=state,
        )
        return await self.block_actions(payload, **options)

    async def slash_command(self, user: str, text: str = "", **options: Any) -> DriverResponse:
        """``/profilebot <text>`` typed by ``user`` (in their DM unless ``channel_id`` is given)."""
        form_keys = (
            "command",
            "channel_id",
            "channel_name",
            "user_name",
            "response_url",
            "trigger_id",
        )
        form_options = {key: options.pop(key) for key in form_keys if key in options}
        return await self.post_form(self.slash_command_form(user, text, **form_options), **options)


def _find_element(
    message: Mapping[str, Any], action_id: str, kind: str
) -> tuple[JSONDict, JSONDict]:
    """(block, element) of the interactive element ``action_id`` of type ``kind``."""
    for block in message.get("blocks") or []:
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if element.get("action_id") == action_id and element.get("type") == kind:
                return block, element
    raise LookupError(f"no {kind} with action_id {action_id!r} in the message")


__all__ = [
    "ACK_DEADLINE",
    "STALE_AFTER",
    "DriverResponse",
    "SentRequest",
    "SlackDriver",
    "sign",
]
