"""profilebot on Slack: a Bolt ``AsyncApp`` in Socket Mode or over HTTP, and outbox delivery.

Slack events become ``Visitor`` + ``Inbound`` for the front desk (``to_inbound`` style
translation only); the desk's replies reach Slack through the outbox and ``SlackSender``.
Every request is acknowledged within Slack's 3 seconds: the turn runs first and the
acknowledgement waits for it up to ``ACK_BUDGET``; a slower turn finishes after the ack.
A turn that fails before the ack answers 500, so Slack delivers the event again; the event id
makes a redelivery change nothing. ``SlackDelivery`` is delivery alone, with no inbound side
(``profilebot worker``); ``SlackService`` is the whole bot as ``profilebot run`` hosts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from dialogues import Attachment, Command, Inbound
from storage import OutboxRecord

from ..app import App
from ..config import Settings
from ..delivery import DeliveryWorker, Pacer, SendResult
from ..errors import ConfigError
from ..frontdesk import SLACK_COMMAND, STAFF_MENU, STALE_TEXT, DeskOutcome, Visitor, desk_for
from ..notice_delivery import notice_of
from ..notices import Notice, NoticeFile
from ..offload import StorageThreads
from ..runtime import SHUTDOWN_GRACE, run_until_stopped
from ..service import ClosedQuestion
from .slack_render import (
    SlackAction,
    SlackMessage,
    closed_message,
    decode_action,
    home_view,
    inbound_for_action,
    inert_mrkdwn,
    render_notice,
    render_reply,
    selected_indexes,
)

__all__ = [
    "ACK_BUDGET",
    "OVERALL_RATE",
    "PER_CHANNEL_RATE",
    "PLATFORM",
    "SlackBot",
    "SlackDelivery",
    "SlackSender",
    "SlackService",
]

log = logging.getLogger("profilebot.slack")

PLATFORM = "slack"
SORRY_TEXT = "Sorry, something went wrong on my side. Please try that again in a moment."
ACK_BUDGET = 2.0
"""Seconds a request waits for its turn before it is acknowledged anyway (Slack allows 3)."""
COMMAND = SLACK_COMMAND
EVENTS_PATH = "/slack/events"
OVERALL_RATE = 20.0
"""Messages per second to the whole workspace: ours (Slack publishes no overall limit)."""
PER_CHANNEL_RATE = 0.9
"""Messages per second to one channel: under Slack's one a second, so that network jitter
bunching two sends together cannot put them inside one second."""


class _ClientWins(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our configured client wins: it does."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOG = logging.getLogger("profilebot.slack.bolt")
_JSON = "application/json; charset=utf-8"
_BOLT_LOG.addFilter(_ClientWins())

# Slack says the recipient is gone: stop sending to them.
_GONE = frozenset(
    {"channel_not_found", "is_archived", "account_inactive", "user_disabled", "not_in_channel"}
)
# What ``/profilebot <word>`` may ask for: the desk's menu (staff's, which has every command)
# and the conversation commands.
_COMMAND_WORDS = frozenset({c.name for c in STAFF_MENU} | {Command.RESTART.value, "link"})


# ----------------------------------------------------------------------------------------------
# Outbound
# ----------------------------------------------------------------------------------------------


class SlackSender:
    """Sends one outbox message; Slack's answer becomes a ``SendResult``.

    An address is a DM channel id, or a slash command's ``response_url`` for the replies
    only its caller should see (ephemeral). ``chat.postMessage`` and ``chat.update`` — a call
    or two on every turn — go straight over the client's pooled aiohttp session: slack_sdk's
    wrapping costs about a third more CPU per call, and the answer is one JSON object.
    """

    platform = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def send(self, message: OutboxRecord) -> SendResult:
        notice = notice_of(message)
        if notice is not None:
            return await self._send_notice(message.address, notice)
        parts = render_reply(message.reply, str(message.id))
        if _is_response_url(message.address):
            return await self._respond(message.address, parts)
        ts = ""
        for part in parts:
            answer = await self._call(
                "chat.postMessage",
                {
                    "channel": message.address,
                    "text": part.text,
                    "blocks": part.blocks,
                    "unfurl_links": False,
                    "unfurl_media": False,
                },
            )
            if not isinstance(answer, dict):
                return answer
            ts = str(answer.get("ts", ""))
        return SendResult.sent(ts or None)

    async def _send_notice(self, address: str, notice: Notice) -> SendResult:
        """A notice part: its text as Block Kit messages, then each file through Slack's
        upload flow (``files.upload`` is retired), in order."""
        parts = render_notice(notice)
        if _is_response_url(address):
            if notice.files:  # refused when queued (``queue_notice_in``): nothing to upload to
                return SendResult.failed("files cannot go to a response_url")
            return await self._respond(address, parts)
        ts = ""
        for part in parts:
            answer = await self._call(
                "chat.postMessage",
                {
                    "channel": address,
                    "text": part.text,
                    "blocks": part.blocks,
                    "unfurl_links": False,
                    "unfurl_media": False,
                },
            )
            if not isinstance(answer, dict):
                return answer
            ts = str(answer.get("ts", ""))
        for file in notice.files:
            uploaded = await self._upload(address, file)
            if uploaded is not None:
                return uploaded
        return SendResult.sent(ts or None)

    async def _upload(self, address: str, file: NoticeFile) -> SendResult | None:
        """One file: ``files.getUploadURLExternal``, the bytes to the URL it gives, then
        ``files.completeUploadExternal`` shares it in the DM; None when it went through."""
        try:
            channel = address
            if address.startswith(("U", "W")):  # a user id: files are shared to their DM's id
                opened = await self._client.conversations_open(users=address)
                channel = str(opened["channel"]["id"])
            url = await self._client.files_getUploadURLExternal(
                filename=file.filename, length=len(file.data)
            )
            session = self._client.session
            if session is None or session.closed:
                raise RuntimeError("SlackSender used outside `async with SlackBot(...)`")
            async with session.post(
                str(url["upload_url"]),
                data=file.data,
                headers={"Content-Type": "application/octet-stream"},
            ) as response:
                if response.status >= 300:
                    return _result_of(
                        response.status,
                        f"upload HTTP {response.status}",
                        response.headers.get("Retry-After", "1"),
                    )
            title = file.caption.strip() or file.filename
            await self._client.files_completeUploadExternal(
                files=[{"id": str(url["file_id"]), "title": title}],
                channel_id=channel,
                initial_comment=inert_mrkdwn(file.caption) if file.caption.strip() else None,
            )
        except SlackApiError as exc:
            answer = exc.response
            error = str(answer.get("error") or f"HTTP {answer.status_code}")
            return _result_of(answer.status_code, error, answer.headers.get("Retry-After", "1"))
        except aiohttp.ClientError as exc:
            return SendResult.failed(f"upload: {type(exc).__name__}")
        return None

    async def _respond(self, url: str, parts: list[SlackMessage]) -> SendResult:
        webhook = AsyncWebhookClient(url, session=self._client.session)
        for part in parts:
            response = await webhook.send(
                text=part.text, blocks=part.blocks, response_type="ephemeral"
            )
            if response.status_code == 404:  # expired or used up: nobody can be answered there
                return SendResult.unreachable(f"response_url {response.status_code}")
            if response.status_code == 429:
                retry = response.headers.get("Retry-After", "1")
                return SendResult.retry_after(_seconds(retry), "response_url 429")
            if response.status_code >= 300:
                return SendResult.failed(f"response_url {response.status_code}")
        return SendResult.sent(None)

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        """Rewrite a posted message (a closed question); failures are logged, not raised."""
        payload = {"channel": channel, "ts": ts, "text": message.text, "blocks": message.blocks}
        answer = await self._call("chat.update", payload)
        if not isinstance(answer, dict):
            log.warning("chat.update failed: %s", answer.error)

    async def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any] | SendResult:
        """One Web API call: its answer when Slack says ok, else what that means for sending."""
        client = self._client
        session = client.session
        if session is None or session.closed:
            raise RuntimeError("SlackSender used outside `async with SlackBot(...)`")
        headers = {"Authorization": f"Bearer {client.token}", "Content-Type": _JSON}
        body = _json_body(payload)
        async with session.post(client.base_url + method, data=body, headers=headers) as r:
            answer = _json_answer(await r.read())
            retry_after = r.headers.get("Retry-After", "1")
            status = r.status
        if not isinstance(answer, dict):
            answer = {"ok": False, "error": f"HTTP {status}"}
        if answer.get("ok") is True:
            return answer
        return _result_of(status, str(answer.get("error") or f"HTTP {status}"), retry_after)


def _json_body(payload: dict[str, Any]) -> bytes:
    """The request body; orjson is several times faster than ``json`` with Block Kit's nesting."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:  # a lone surrogate, say: ``json`` escapes it
        return json.dumps(payload).encode()


def _json_answer(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _result_of(status: int, error: str, retry_after: str) -> SendResult:
    if status == 429 or error == "ratelimited":
        return SendResult.retry_after(_seconds(retry_after), "429 ratelimited")
    if error in _GONE:
        return SendResult.unreachable(error)
    return SendResult.failed(error)


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 1.0
    return seconds if 0 <= seconds < 3600 else 1.0


def _is_response_url(address: str) -> bool:
    return address.startswith(("https://", "http://"))


# ----------------------------------------------------------------------------------------------
# Inbound translation
# ----------------------------------------------------------------------------------------------


def message_inbound(event: Mapping[str, Any]) -> Inbound | None:
    """A DM from a student as an ``Inbound``; None for messages the bot must not answer.

    Its own and other bots' messages, edits, deletions and joins are ignored; a shared file
    (with its text as the caption) is an attachment for ``file`` steps.
    """
    if event.get("channel_type") != "im" or event.get("bot_id"):
        return None
    if not all(isinstance(event.get(key), str) and event[key] for key in ("user", "channel")):
        return None
    subtype = event.get("subtype")
    raw = event.get("text")
    text = raw if isinstance(raw, str) else ""
    files = event.get("files")
    if subtype == "file_share" and isinstance(files, list) and files:
        attachment = _attachment(files[0], text)
        return None if attachment is None else Inbound.of_file(attachment)
    if subtype is not None or not text.strip():
        return None
    return Inbound.of_text(_unescape(text))


def _attachment(file: Any, caption: str) -> Attachment | None:
    if not isinstance(file, Mapping) or not isinstance(file.get("id"), str):
        return None
    mime = str(file.get("mimetype") or "")
    return Attachment(
        "photo" if mime.startswith("image/") else "document",
        file_id=file["id"],
        name=file.get("name") if isinstance(file.get("name"), str) else None,
        mime_type=mime or None,
        caption=_unescape(caption) or None,
    )


def _unescape(text: str) -> str:
    """What the student typed, from Slack's markup: links, mentions and ``&lt;`` decoded.

    Slack turns a typed ``ana.dev`` into ``<http://ana.dev|ana.dev>`` and ``@here`` into
    ``<!here>``; the engine should store the text as it was written.
    """
    return _ENTITY.sub(_entity, _MARKUP.sub(_plain_markup, text))


_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def _entity(match: re.Match[str]) -> str:
    return _ENTITIES[match[1]]


def _plain_markup(match: re.Match[str]) -> str:
    target, label = match[1], match[2]
    if target.startswith(("@", "#")):
        return (
            label if label and label.startswith(("@", "#")) else target[0] + (label or target[1:])
        )
    if target.startswith("!"):
        return label or "@" + target[1:].split("^", 1)[0]
    if label and target.split("://", 1)[-1].removeprefix("mailto:") == label:
        return label
    return f"{label} ({target})" if label else target


def command_inbound(text: str) -> Inbound:
    """``/profilebot link CODE`` → command "link" with "CODE"; anything unknown → help."""
    word, _, rest = text.strip().partition(" ")
    name = word.lower()
    if name not in _COMMAND_WORDS:
        return Inbound.of_command("help")
    return Inbound.of_command(name, rest.strip())


# ----------------------------------------------------------------------------------------------
# The bot
# ----------------------------------------------------------------------------------------------


class SlackBot:
    """profilebot on Slack: Bolt listeners, Socket Mode or HTTP, and outbox delivery.

    Built from settings; a missing token or secret is a ``ConfigError`` here.
    """

    def __init__(self, app: App, *, pacer: Pacer | None = None) -> None:
        settings = app.settings
        self.client = _client(app)
        if settings.slack_app_token is None and settings.slack_signing_secret is None:
            raise ConfigError(
                "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) "
                "for --platform slack"
            )
        self._app = app
        self._desk = desk_for(app, PLATFORM)
        secret = settings.slack_signing_secret
        self.bolt = AsyncApp(
            logger=_BOLT_LOG,
            client=self.client,
            signing_secret=secret.get_secret_value() if secret else None,
            request_verification_enabled=secret is not None,
            process_before_response=True,
            # Middleware for features the bot does not use (AI-assistant threads, workflow
            # functions): each would run on every event.
            attaching_conversation_kwargs_enabled=False,
            attaching_function_token_enabled=False,
        )
        self.sender = SlackSender(self.client)
        self._offload = StorageThreads(app.db.useful_threads)
        self.worker = _delivery_worker(app, self.sender, pacer, self._offload, self._team)
        self.team_id = ""
        self._dm_channels: dict[str, str] = {}
        self._linked: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._wire()

    def _wire(self) -> None:
        self.bolt.event("message")(self._on_message)
        self.bolt.event("app_home_opened")(self._on_home)
        self.bolt.action(re.compile(r"^pb:"))(self._on_action)
        self.bolt.command(COMMAND)(self._on_command)
        self.bolt.error(self._on_error)

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> SlackBot:
        self.team_id = await _open(self.client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._background:  # turns that outlived their ack: a little time to finish
            _, late = await asyncio.wait(self._background, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
        if self.client.session is not None:
            await self.client.session.close()
        self._offload.close()

    @property
    def busy(self) -> bool:
        """Whether a turn is still running (one that outlived its request's ack, say)."""
        return bool(self._background)

    def http_app(self) -> web.Application:
        """The aiohttp app serving ``/slack/events``: events, interactivity and commands."""

        async def events(request: web.Request) -> web.Response:
            try:
                bolt_request = await to_bolt_request(request)
            except ValueError:  # a body that is not the JSON or form it claims to be
                return web.Response(status=400, text="bad request")
            return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

        webapp = web.Application(client_max_size=1 << 20)
        webapp.router.add_post(EVENTS_PATH, events)
        return webapp

    async def run_http(self, stop: asyncio.Event, *, port: int, host: str = "0.0.0.0") -> None:
        runner = web.AppRunner(self.http_app(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        try:
            await run_until_stopped(self.worker.run(stop), stop)
        finally:
            await runner.cleanup()

    async def run_socket_mode(self, stop: asyncio.Event) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        token = self._app.settings.slack_app_token
        assert token is not None  # checked in __init__ by serve's choice
        handler = AsyncSocketModeHandler(self.bolt, token.get_secret_value())
        await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it untyped
        try:
            await run_until_stopped(self.worker.run(stop), stop)
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]

    # -- listeners -----------------------------------------------------------------------------

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        inbound = message_inbound(event)
        if inbound is None:
            return
        visitor = self._visitor(body, str(event["user"]), str(event.get("channel", "")))
        await self._within_budget(self._receive(visitor, inbound, _event_key(body)))

    async def _on_home(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        user = str(event["user"])
        visitor = self._visitor(body, user, str(event.get("channel", "")))
        await self._within_budget(self._publish_home(visitor))

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        actions = body.get("actions")
        user = _id_of(body.get("user"))
        channel = _channel_of(body)
        if not isinstance(actions, list) or not actions or not user or not channel:
            return
        first = actions[0] if isinstance(actions[0], Mapping) else {}
        action = decode_action(str(first.get("action_id", "")))
        if action is None or action.action == "picks":  # ticking a box changes nothing yet
            return
        visitor = self._visitor(body, str(user), channel)
        interaction = body.get("trigger_id") or first.get("action_ts")
        key = f"{PLATFORM}:{_team(body)}:action:{interaction}"
        await self._within_budget(self._press(visitor, action, body, key), retried=False)

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        user = str(command.get("user_id", ""))
        if user:
            await self._within_budget(self._command(user, command), retried=False)

    async def _command(self, user: str, command: Mapping[str, Any]) -> None:
        visitor = Visitor(
            PLATFORM,
            user,
            await self._dm_channel(user),
            workspace=str(command.get("team_id") or "") or None,
            reply_to=str(command.get("response_url") or "") or None,
        )
        inbound = command_inbound(str(command.get("text") or ""))
        key = f"{PLATFORM}:{visitor.workspace}:command:{command.get('trigger_id')}"
        try:
            await self._receive(visitor, inbound, key)
        except Exception:
            await self._apologise(visitor)
            raise

    async def _on_error(self, error: Exception) -> None:
        # Type only: an exception's text can quote SQL parameters, and those can be student text.
        log.error("Slack request failed: %s", type(error).__name__)

    # -- turns ---------------------------------------------------------------------------------

    async def _within_budget(self, work: Awaitable[Any], *, retried: bool = True) -> None:
        """Run ``work``; if it takes longer than ``ACK_BUDGET``, let Slack have its ack now.

        A failure within the budget answers 500 when Slack delivers the request again
        (``retried``: events); interactions and commands are not retried by Slack, so their
        failures are only logged (the student got an apology).
        """
        task = self._track(asyncio.ensure_future(work))
        done, _ = await asyncio.wait((task,), timeout=ACK_BUDGET)  # never cancels the work
        if not done:
            return
        if task.exception() is not None and retried:
            await task  # raises it

    def _track(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        """Keep a task alive until done (``busy`` and shutdown wait for it); log its failure."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        return task

    async def _apologise(self, visitor: Visitor) -> None:
        with contextlib.suppress(SlackApiError):
            await self.client.chat_postEphemeral(
                channel=visitor.address, user=visitor.user_id, text=SORRY_TEXT
            )

    async def _receive(
        self,
        visitor: Visitor,
        inbound: Inbound,
        event_key: str | None,
        *,
        question_ref: int | None = None,
    ) -> DeskOutcome:
        visitor = await self._with_email(visitor)
        outcome = await self._offload(
            self._desk.receive, visitor, inbound, event_key=event_key, question_ref=question_ref
        )
        self.worker.wake()
        if outcome.closed is not None:  # after the ack: a Web API round trip it need not wait for
            self._track(asyncio.ensure_future(self._close_question(visitor, outcome.closed)))
        return outcome

    async def _press(
        self, visitor: Visitor, action: SlackAction, body: Mapping[str, Any], key: str
    ) -> None:
        record = None
        if action.ref.isdigit():
            record = await self._offload(self._app.outbox.open_question, int(action.ref))
        # A message the bot began a conversation with may have gone to the user id (Slack
        # delivers that to the DM) rather than to the DM channel a click comes from.
        sent_here = record is not None and record.address in (visitor.address, visitor.user_id)
        if record is None or record.platform != PLATFORM or not sent_here:
            if not await self._press_prompt(visitor, action, body):
                await self._stale(visitor, body)
            return
        selected = selected_indexes((body.get("state") or {}).get("values"))
        inbound = inbound_for_action(action, record.reply, selected)
        if inbound is None:
            return
        try:
            outcome = await self._receive(visitor, inbound, key, question_ref=record.id)
        except Exception:
            await self._apologise(visitor)
            raise
        if outcome.stale:
            await self._stale(visitor, body)

    async def _press_prompt(
        self, visitor: Visitor, action: SlackAction, body: Mapping[str, Any]
    ) -> bool:
        """A click on a button of a message outside any conversation (a confirm question):
        the desk decides what it means, and answers where the click happened; False when it
        means nothing (stale, forged)."""
        if action.action != "pick" or action.index is None:
            return False
        response_url = body.get("response_url")
        if isinstance(response_url, str) and response_url:
            visitor = dataclasses.replace(visitor, reply_to=response_url)
        outcome = await self._offload(self._desk.press, visitor, int(action.ref), action.index)
        self.worker.wake()
        if outcome.stale:
            return False
        message = body.get("message")
        if not isinstance(message, Mapping):  # an ephemeral message: it fades on its own
            return True
        ts = message.get("ts")
        if isinstance(ts, str):  # a message in the DM: its buttons go
            await self.sender.update(
                visitor.address, ts, closed_message(_section_text(message), None)
            )
        return True

    async def _stale(self, visitor: Visitor, body: Mapping[str, Any]) -> None:
        """An old button: say so to the presser only, and take that message's buttons away."""
        message = body.get("message") or {}
        ts = message.get("ts") if isinstance(message, Mapping) else None
        if isinstance(ts, str):
            text = _section_text(message)
            await self.sender.update(visitor.address, ts, closed_message(text, None))
        with contextlib.suppress(SlackApiError):
            await self.client.chat_postEphemeral(
                channel=visitor.address, user=visitor.user_id, text=STALE_TEXT
            )

    async def _close_question(self, visitor: Visitor, closed: ClosedQuestion) -> None:
        if closed.platform_message_id is None:
            return
        message = closed_message(closed.reply.text, closed.answer)
        await self.sender.update(visitor.address, closed.platform_message_id, message)

    async def _publish_home(self, visitor: Visitor) -> None:
        visitor = await self._with_email(visitor)
        sections = await self._offload(self._desk.home, visitor)
        try:
            await self.client.views_publish(user_id=visitor.user_id, view=home_view(sections))
        except SlackApiError as exc:
            log.warning("views.publish failed: %s", exc.response.get("error", "?"))

    # -- who is writing ------------------------------------------------------------------------

    def _team(self) -> str:
        return self.team_id

    def _visitor(self, body: Mapping[str, Any], user: str, channel: str) -> Visitor:
        return Visitor(PLATFORM, user, channel, workspace=_team(body) or None)

    async def _with_email(self, visitor: Visitor) -> Visitor:
        """Look up a new user's email (``users.info``) so the desk can match the roster.

        Links are never undone, so a user seen linked once is remembered (a cache of who, not
        of any conversation) and costs no lookup on later messages.
        """
        if visitor.user_id in self._linked:
            return visitor
        if await self._offload(self._desk.knows, visitor):
            self._linked.add(visitor.user_id)
            return visitor
        try:
            info = await self.client.users_info(user=visitor.user_id)
        except SlackApiError as exc:
            log.info("users.info failed: %s", exc.response.get("error", "?"))
            return visitor
        user = info.get("user") or {}
        email = (user.get("profile") or {}).get("email")
        if user.get("is_bot") or not isinstance(email, str):
            return visitor
        return Visitor(
            visitor.platform,
            visitor.user_id,
            visitor.address,
            workspace=visitor.workspace,
            email=email,
            reply_to=visitor.reply_to,
        )

    async def _dm_channel(self, user: str) -> str:
        """The bot's DM with ``user`` (where conversations happen), opened once per user."""
        channel = self._dm_channels.get(user)
        if channel is None:
            response = await self.client.conversations_open(users=user)
            channel = str((response.get("channel") or {}).get("id", ""))
            self._dm_channels[user] = channel
        return channel


def _event_key(body: Mapping[str, Any]) -> str | None:
    event_id = body.get("event_id")
    return f"{PLATFORM}:{_team(body)}:{event_id}" if event_id else None


def _team(body: Mapping[str, Any]) -> str:
    team = body.get("team_id") or body.get("team")
    if isinstance(team, Mapping):
        team = team.get("id")
    return str(team or "")


def _id_of(value: Any) -> str | None:
    """``{"id": "U123", ...}`` → "U123"; anything else (garbage) → None."""
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _channel_of(body: Mapping[str, Any]) -> str | None:
    channel = body.get("channel")
    if isinstance(channel, Mapping) and isinstance(channel.get("id"), str):
        return str(channel["id"])
    container = body.get("container")
    if isinstance(container, Mapping) and isinstance(container.get("channel_id"), str):
        return str(container["channel_id"])
    return None


def _section_text(message: Mapping[str, Any]) -> str:
    """The plain question text of a posted message (its first section), for a closed copy."""
    for block in message.get("blocks") or []:
        if isinstance(block, Mapping) and block.get("type") == "section":
            text = (block.get("text") or {}).get("text")
            if isinstance(text, str):
                return _unescape(text)
    return _unescape(str(message.get("text") or ""))


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Slack turn failed: %s", type(task.exception()).__name__)


# ----------------------------------------------------------------------------------------------
# Running it
# ----------------------------------------------------------------------------------------------


def _delivery_worker(
    app: App,
    sender: SlackSender,
    pacer: Pacer | None,
    offload: StorageThreads,
    team: Callable[[], str],
) -> DeliveryWorker:
    def unreachable(record: OutboxRecord, error: str) -> None:
        """Slack says the DM is gone (account deactivated, say): stop sending to it."""
        if not _is_response_url(record.address):
            app.people.set_reachable(
                PLATFORM, team() or None, reachable=False, chat_id=record.address
            )

    return DeliveryWorker(
        app.outbox,
        sender,
        pacer=pacer or Pacer(per_address_rate=PER_CHANNEL_RATE, overall_rate=OVERALL_RATE),
        on_unreachable=unreachable,
        clock=app.clock,
        offload=offload,
    )


def _client(app: App) -> AsyncWebClient:
    settings = app.settings
    if settings.slack_bot_token is None:
        raise ConfigError("setting SLACK_BOT_TOKEN is needed for --platform slack")
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_base_url.rstrip("/") + "/",
    )


async def _open(client: AsyncWebClient) -> str:
    """Give the client one connection pool for every call and check its token; the
    workspace (team) id."""
    # slack_sdk opens a pool per call without one. The Web API sets no cookies; a real jar
    # costs ~70 µs of URL matching per call.
    client.session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        identity = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "?")
        await client.session.close()
        raise ConfigError(f"setting SLACK_BOT_TOKEN: Slack refused it ({error})") from None
    return str(identity.get("team_id") or "")


class SlackDelivery:
    """Delivery to Slack and nothing else (``profilebot worker``): no events, no Socket Mode,
    so only ``SLACK_BOT_TOKEN`` is needed.

    Several may run, in as many processes, beside the one ``profilebot run``: they claim
    different messages and share the workspace's rate (see ``DeliveryWorker``).
    """

    def __init__(
        self, app: App, *, pacer: Pacer | None = None, announce: Callable[[str], None] = log.info
    ) -> None:
        self.client = _client(app)
        self.sender = SlackSender(self.client)
        self.team_id = ""
        self._offload = StorageThreads(app.db.useful_threads)
        self.worker = _delivery_worker(app, self.sender, pacer, self._offload, self._team)
        self._announce = announce

    def _team(self) -> str:
        return self.team_id

    async def __aenter__(self) -> SlackDelivery:
        self.team_id = await _open(self.client)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client.session is not None:
            await self.client.session.close()
        self._offload.close()

    async def run(self, stop: asyncio.Event) -> None:
        self._announce(f"delivering to Slack (workspace {self.team_id or '?'})")
        await self.worker.run(stop)


class SlackService:
    """The whole bot on Slack as ``profilebot run`` hosts it: Socket Mode with an app token,
    else HTTP on ``port``; delivery alongside."""

    def __init__(
        self, app: App, *, port: int = 3000, announce: Callable[[str], None] = log.info
    ) -> None:
        self.bot = SlackBot(app)
        self._socket_mode = app.settings.slack_app_token is not None
        self._port = port
        self._announce = announce

    @staticmethod
    def serves_http(settings: Settings) -> bool:
        """Whether it would serve HTTP (the events endpoint) on its port: not in Socket Mode."""
        return settings.slack_app_token is None

    async def __aenter__(self) -> SlackService:
        await self.bot.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.bot.__aexit__(*exc_info)

    async def run(self, stop: asyncio.Event) -> None:
        if self._socket_mode:
            self._announce("connected to Slack in Socket Mode")
            await self.bot.run_socket_mode(stop)
        else:
            self._announce(f"serving Slack events on port {self._port} at {EVENTS_PATH}")
            await self.bot.run_http(stop, port=self._port)
