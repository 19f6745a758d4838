"""The fake Slack Web API, driven by slack_sdk's real AsyncWebClient over real HTTP, and the
request driver, checked with slack_sdk's own SignatureVerifier and a real slack-bolt AsyncApp.

These tests pin the fake to what Slack answers and to what slack_sdk expects (it raises
``SlackApiError`` for ``ok: false`` and non-200 answers), so that adapter tests built on the fake
fail for the same reasons production would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.slack.driver import SlackDriver, sign
from tests.slack.fake_web_api import (
    MAX_MESSAGE_TEXT,
    FakeSlackAPI,
    RateLimit,
    dm_channel_id,
    validate_blocks,
)

ALICE, BOB = "U0ALICE", "U0BOB"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
JSONDict = dict[str, Any]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackAPI]:
    """A running fake with two students in the workspace."""
    async with FakeSlackAPI() as server:
        server.add_user(ALICE, email="alice@school.test", name="alice", real_name="Alice Diaz")
        server.add_user(BOB, email="bob@school.test", name="bob", tz="America/New_York")
        yield server


@pytest.fixture
def client(fake: FakeSlackAPI) -> AsyncWebClient:
    return fake.make_client()


async def api_error(call: Awaitable[Any]) -> SlackApiError:
    """Await a slack_sdk call that must fail; return the error it raised."""
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def raw_call(
    fake: FakeSlackAPI,
    method: str,
    *,
    token: str | None = "default",
    **request: Any,
) -> tuple[int, JSONDict]:
    """Call the fake with aiohttp directly (``json=``, ``data=`` or ``params=``)."""
    headers = dict(request.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {fake.token if token == 'default' else token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}{method}", headers=headers, **request) as response,
    ):
        return response.status, await response.json()


# -- helpers to build blocks -----------------------------------------------------------------


def plain(text: str) -> JSONDict:
    return {"type": "plain_text", "text": text}


def section(text: str = "Hi", **extra: Any) -> JSONDict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str = "Go", action_id: str = "go", **extra: Any) -> JSONDict:
    return {"type": "button", "text": plain(text), "action_id": action_id, **extra}


def actions(*elements: JSONDict, **extra: Any) -> JSONDict:
    return {"type": "actions", "elements": list(elements), **extra}


def option(text: str = "A", value: str = "a", kind: str = "plain_text") -> JSONDict:
    return {"text": {"type": kind, "text": text}, "value": value}


def checkboxes(*options: JSONDict, action_id: str = "pick") -> JSONDict:
    return {"type": "checkboxes", "action_id": action_id, "options": list(options)}


def buttons(count: int) -> list[JSONDict]:
    return [button(f"B{i}", f"b{i}") for i in range(count)]


def options(count: int) -> list[JSONDict]:
    return [option(f"O{i}", f"o{i}") for i in range(count)]


# -- identity, auth, transport ---------------------------------------------------------------


async def test_auth_test_describes_the_bot(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    answer = await client.auth_test()

    assert answer["ok"] is True
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == (
        "T0PROFILE",
        "U0BOT",
        "B0BOT",
    )
    assert answer["team"] == "Profilebot Test School"
    assert answer["url"] == "https://profilebot-test.slack.com/"
    assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/api/")
    assert fake.raw_requests[-1].token_source == "header"


async def test_missing_token_is_not_authed_and_a_wrong_one_invalid_auth(
    fake: FakeSlackAPI,
) -> None:
    missing = await api_error(fake.make_client(token="").auth_test())
    wrong = await api_error(
        fake.make_client(token="xoxb-wrong").chat_postMessage(channel=ALICE, text="x")
    )

    assert (missing.response.status_code, missing.response["error"]) == (200, "not_authed")
    assert wrong.response["error"] == "invalid_auth"
    assert fake.messages(ALICE) == []
    assert [e.error for e in fake.errors] == ["not_authed", "invalid_auth"]


async def test_json_form_and_query_requests_decode_alike(fake: FakeSlackAPI) -> None:
    """slack_sdk posts JSON (blocks as values) or query strings; other clients post forms with
    blocks as JSON text and may put the token in the body. All must mean the same."""
    blocks = [section("Hello")]
    channel = dm_channel_id(ALICE)
    as_json = await raw_call(fake, "chat.postMessage", json={"channel": channel, "blocks": blocks})
    as_form = await raw_call(
        fake,
        "chat.postMessage",
        token=None,
        data={"channel": channel, "blocks": json.dumps(blocks), "token": fake.token},
    )
    as_query = await raw_call(fake, "conversations.open", params={"users": ALICE})
    json_token = await raw_call(
        fake, "auth.test", token=None, json={"token": fake.token}
    )  # JSON bodies must use the header

    assert as_json[1]["ok"] and as_form[1]["ok"]
    assert as_json[1]["message"]["blocks"][0]["text"] == as_form[1]["message"]["blocks"][0]["text"]
    assert fake.raw_requests[1].token_source == "param"
    assert as_query[1]["channel"]["id"] == channel
    assert json_token == (200, {"ok": False, "error": "not_authed"})


async def test_malformed_json_and_unknown_methods(fake: FakeSlackAPI) -> None:
    broken = await raw_call(
        fake, "chat.postMessage", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    not_object = await raw_call(fake, "chat.postMessage", json=[1, 2])
    unknown = await raw_call(fake, "chat.sendHologram", json={})

    assert broken == (200, {"ok": False, "error": "invalid_json"})
    assert not_object[1]["error"] == "json_not_object"
    assert unknown == (
        200,
        {"ok": False, "error": "unknown_method", "req_method": "chat.sendHologram"},
    )


# -- conversations.open ------------------------------------------------------------------------


async def test_conversations_open_gives_a_stable_dm_per_user(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    first = await client.conversations_open(users=ALICE)
    again = await client.conversations_open(users=ALICE)
    bob = await client.conversations_open(users=BOB, return_im=True)

    assert first["channel"] == {"id": "D0ALICE"} and "already_open" not in first.data
    assert again["channel"]["id"] == "D0ALICE" and again["already_open"] is True
    assert bob["channel"]["id"] == fake.dm_channel(BOB) == "D0BOB"
    assert bob["channel"]["is_im"] is True and bob["channel"]["user"] == BOB


@pytest.mark.parametrize(
    ("users", "error"),
    [("U0NOBODY", "user_not_found"), ("U0BOT", "cannot_dm_bot"), ("", "users_list_not_supplied")],
)
async def test_conversations_open_refuses_like_slack(
    client: AsyncWebClient, users: str, error: str
) -> None:
    failure = await api_error(client.conversations_open(users=users))
    assert failure.response["error"] == error


# -- chat.postMessage ----------------------------------------------------------------------------


async def test_post_message_returns_ts_and_the_message(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    channel = fake.dm_channel(ALICE)
    first = await client.chat_postMessage(channel=channel, text="Hi *Alice*")
    second = await client.chat_postMessage(channel=ALICE, text="fallback", blocks=[section("Q1")])

    assert first["channel"] == channel and second["channel"] == channel  # a user id means the DM
    assert float(second["ts"]) > float(first["ts"])
    message = second["message"]
    assert (message["user"], message["bot_id"], message["text"]) == ("U0BOT", "B0BOT", "fallback")
    assert message["blocks"][0]["block_id"]  # Slack fills in a block_id
    assert [m["text"] for m in fake.messages(channel)] == ["Hi *Alice*", "fallback"]
    assert fake.messages(ALICE) == fake.messages(channel)
    assert fake.messages(channel)[0]["blocks"] == []


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
async def test_post_message_without_text_or_blocks_is_no_text(client: AsyncWebClient) -> None:
    empty = await api_error(client.chat_postMessage(channel=ALICE, text=""))
    empty_blocks = await api_error(client.chat_postMessage(channel=ALICE, blocks=[]))
    blocks_only = await client.chat_postMessage(channel=ALICE, blocks=[section("only blocks")])

    assert empty.response["error"] == empty_blocks.response["error"] == "no_text"
    assert blocks_only["ok"] is True


@pytest.mark.parametrize("channel", ["C0NOWHERE", "D0NOBODY", "U0NOBODY", "U0BOT", ""])
async def test_post_message_to_an_unknown_channel(client: AsyncWebClient, channel: str) -> None:
    failure = await api_error(client.chat_postMessage(channel=channel, text="x"))
    assert failure.response["error"] == "channel_not_found"


async def test_text_over_40000_characters_is_msg_too_long(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=ALICE, text="é" * MAX_MESSAGE_TEXT)
    failure = await api_error(
        client.chat_postMessage(channel=ALICE, text="x" * (MAX_MESSAGE_TEXT + 1))
    )

    assert failure.response["error"] == "msg_too_long"
    assert len(fake.messages(ALICE)) == 1


async def test_posting_to_a_channel_the_bot_is_in(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    fake.add_channel("C0CLASS7B", "class-7b", members=[ALICE])
    await client.chat_postMessage(channel="C0CLASS7B", text="Hello class")
    assert fake.messages("C0CLASS7B")[0]["text"] == "Hello class"


# -- chat.update ---------------------------------------------------------------------------------


async def test_update_edits_are_visible_in_messages(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    channel = fake.dm_channel(ALICE)
    posted = await client.chat_postMessage(
        channel=channel, text="Pick one", blocks=[section("Pick"), actions(button("Yes", "yes"))]
    )
    ts = posted["ts"]

    text_only = await client.chat_update(channel=channel, ts=ts, text="Picked: yes")
    [after_text] = fake.messages(channel)
    assert text_only["text"] == "Picked: yes" and text_only["ts"] == ts
    assert after_text["text"] == "Picked: yes"
    assert len(after_text["blocks"]) == 2  # omitted blocks are retained, as Slack documents
    assert after_text["edited"]["user"] == "U0BOT"

    await client.chat_update(channel=channel, ts=ts, text="Done", blocks=[section("Thanks!")])
    [after_blocks] = fake.messages(channel)
    assert [b["text"]["text"] for b in after_blocks["blocks"]] == ["Thanks!"]

    await client.chat_update(channel=channel, ts=ts, text="Cleared", blocks=[])
    assert fake.messages(channel)[0]["blocks"] == []


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
async def test_update_refuses_like_slack(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    channel = fake.dm_channel(ALICE)
    ts = (await client.chat_postMessage(channel=channel, text="x"))["ts"]

    unknown_ts = await api_error(client.chat_update(channel=channel, ts="1.000001", text="y"))
    wrong_channel = await api_error(client.chat_update(channel="D0BOB", ts=ts, text="y"))
    user_id = await api_error(client.chat_update(channel=ALICE, ts=ts, text="y"))
    nothing = await api_error(client.chat_update(channel=channel, ts=ts, text=""))
    invalid = await api_error(
        client.chat_update(channel=channel, ts=ts, text="y", blocks=[{"type": "nope"}])
    )

    assert unknown_ts.response["error"] == "message_not_found"
    assert wrong_channel.response["error"] == "message_not_found"
    assert user_id.response["error"] == "channel_not_found"  # chat.update needs the D… id
    assert nothing.response["error"] == "no_text"
    assert invalid.response["error"] == "invalid_blocks"
    assert fake.messages(channel)[0]["text"] == "x"


# -- chat.postEphemeral ------------------------------------------------------------------------


async def test_post_ephemeral(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    channel = fake.dm_channel(ALICE)
    answer = await client.chat_postEphemeral(
        channel=channel, user=ALICE, text="Only you", blocks=[section("psst")]
    )

    assert answer["message_ts"]
    [ephemeral] = fake.ephemerals
    assert (ephemeral["channel"], ephemeral["user"], ephemeral["text"]) == (
        channel,
        ALICE,
        "Only you",
    )
    assert ephemeral["blocks"][0]["text"]["text"] == "psst"
    assert fake.ephemerals_for(BOB) == []
    assert fake.messages(channel) == []  # not part of the conversation


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
async def test_post_ephemeral_refuses_like_slack(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    channel = fake.dm_channel(ALICE)
    outsider = await api_error(client.chat_postEphemeral(channel=channel, user=BOB, text="x"))
    nobody = await api_error(client.chat_postEphemeral(channel=channel, user="U0NOBODY", text="x"))
    no_text = await api_error(client.chat_postEphemeral(channel=channel, user=ALICE, text=""))

    assert outsider.response["error"] == "user_not_in_channel"
    assert nobody.response["error"] == "user_not_found"
    assert no_text.response["error"] == "no_text"
    assert fake.ephemerals == []


# -- views.publish ---------------------------------------------------------------------------------


async def test_views_publish_sets_the_home_tab(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    view = {"type": "home", "blocks": [section("My profile")], "private_metadata": "p1"}
    first = await client.views_publish(user_id=ALICE, view=view)
    second = await client.views_publish(
        user_id=ALICE, view={"type": "home", "blocks": [section("v2")]}, hash=first["view"]["hash"]
    )

    assert first["view"]["type"] == "home" and first["view"]["private_metadata"] == "p1"
    assert second["view"]["id"] == first["view"]["id"]
    assert fake.home_views[ALICE]["blocks"][0]["text"]["text"] == "v2"
    assert BOB not in fake.home_views


async def test_views_publish_refuses_like_slack(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [section()]}
    modal = await api_error(client.views_publish(user_id=ALICE, view={**home, "type": "modal"}))
    nobody = await api_error(client.views_publish(user_id="U0NOBODY", view=home))
    stale_hash = await api_error(client.views_publish(user_id=ALICE, view=home, hash="1.abc"))
    too_many = await api_error(
        client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [section()] * 101})
    )
    _, missing = await raw_call(fake, "views.publish", json={"user_id": ALICE})

    assert modal.response["error"] == "invalid_arguments"
    assert nobody.response["error"] == "user_not_found"
    assert stale_hash.response["error"] == "hash_conflict"
    assert too_many.response["error"] == "invalid_arguments"
    assert too_many.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]
    assert missing["error"] == "invalid_arguments"
    assert fake.home_views == {}


async def test_home_tab_takes_100_blocks_and_a_form_encoded_view(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    await client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [section()] * 100})
    _, answer = await raw_call(
        fake,
        "views.publish",
        data={"user_id": BOB, "view": json.dumps({"type": "home", "blocks": [section("form")]})},
    )

    assert len(fake.home_views[ALICE]["blocks"]) == 100
    assert answer["ok"] is True and fake.home_views[BOB]["blocks"][0]["text"]["text"] == "form"


# -- users.info ----------------------------------------------------------------------------------


async def test_users_info(client: AsyncWebClient) -> None:
    alice = (await client.users_info(user=ALICE))["user"]
    bob = (await client.users_info(user=BOB))["user"]
    bot = (await client.users_info(user="U0BOT"))["user"]

    assert alice["profile"]["email"] == "alice@school.test"
    assert (alice["real_name"], alice["name"], alice["is_bot"]) == ("Alice Diaz", "alice", False)
    assert alice["tz"] == "Europe/London" and bob["tz"] == "America/New_York"
    assert bob["tz_offset"] in (-5 * 3600, -4 * 3600)
    assert bot["is_bot"] is True and bot["profile"]["bot_id"] == "B0BOT"
    failure = await api_error(client.users_info(user="U0NOBODY"))
    assert failure.response["error"] == "user_not_found"


# -- Block Kit limits ------------------------------------------------------------------------------

# (id, blocks exactly at the limit, blocks one past it, JSON pointer of the error)
LIMITS: list[tuple[str, list[JSONDict], list[JSONDict], str]] = [
    ("blocks per message", [section()] * 50, [section()] * 51, "/blocks"),
    ("section text", [section("x" * 3000)], [section("x" * 3001)], "/blocks/0/text/text"),
    (
        "section fields",
        [{"type": "section", "fields": [plain("f")] * 10}],
        [{"type": "section", "fields": [plain("f")] * 11}],
        "/blocks/0/fields",
    ),
    (
        "header text",
        [{"type": "header", "text": plain("h" * 150)}],
        [{"type": "header", "text": plain("h" * 151)}],
        "/blocks/0/text/text",
    ),
    (
        "header is plain_text",
        [{"type": "header", "text": plain("h")}],
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
        "/blocks/0/text/type",
    ),
    (
        "block_id length",
        [section(block_id="b" * 255)],
        [section(block_id="b" * 256)],
        "/blocks/0/block_id",
    ),
    (
        "block_id unique",
        [section(block_id="q1"), section(block_id="q2")],
        [section(block_id="q1"), section(block_id="q1")],
        "/blocks/1/block_id",
    ),
    ("actions elements", [actions(*buttons(25))], [actions(*buttons(26))], "/blocks/0/elements"),
    (
        "button text",
        [actions(button("b" * 75))],
        [actions(button("b" * 76))],
        "/blocks/0/elements/0/text/text",
    ),
    (
        "button text is plain_text",
        [actions(button("b"))],
        [actions({**button(), "text": {"type": "mrkdwn", "text": "*b*"}})],
        "/blocks/0/elements/0/text/type",
    ),
    (
        "action_id length",
        [actions(button(action_id="a" * 255))],
        [actions(button(action_id="a" * 256))],
        "/blocks/0/elements/0/action_id",
    ),
    (
        "action_id unique in its block",
        [actions(button("A", "a"), button("B", "b"))],
        [actions(button("A", "a"), button("B", "a"))],
        "/blocks/0/elements/1/action_id",
    ),
    (
        "button value",
        [actions(button(value="v" * 2000))],
        [actions(button(value="v" * 2001))],
        "/blocks/0/elements/0/value",
    ),
    (
        "button style",
        [actions(button("ok", "ok", style="primary"), button("no", "no", style="danger"))],
        [actions(button(style="secondary"))],
        "/blocks/0/elements/0/style",
    ),
    (
        "checkbox count",
        [actions(checkboxes(*options(10)))],
        [actions(checkboxes(*options(11)))],
        "/blocks/0/elements/0/options",
    ),
    (
        "checkbox text",
        [actions(checkboxes(option("t" * 75, kind="mrkdwn")))],
        [actions(checkboxes(option("t" * 76)))],
        "/blocks/0/elements/0/options/0/text/text",
    ),
    (
        "checkbox value",
        [actions(checkboxes(option(value="v" * 150)))],
        [actions(checkboxes(option(value="v" * 151)))],
        "/blocks/0/elements/0/options/0/value",
    ),
    (
        "checkbox initial_options",
        [actions({**checkboxes(option()), "initial_options": [option()]})],
        [actions({**checkboxes(option()), "initial_options": [option("Z", "z")]})],
        "/blocks/0/elements/0/initial_options/0",
    ),
    (
        "known block types",
        [{"type": "divider"}, section()],
        [{"type": "carousel"}],
        "/blocks/0/type",
    ),
    (
        "context elements",
        [{"type": "context", "elements": [plain("c")] * 10}],
        [{"type": "context", "elements": [plain("c")] * 11}],
        "/blocks/0/elements",
    ),
    (
        "section needs text or fields",
        [section()],
        [{"type": "section"}],
        "/blocks/0",
    ),
]


@pytest.mark.parametrize(
    ("at_limit", "over_limit", "pointer"),
    [pytest.param(ok, bad, pointer, id=name) for name, ok, bad, pointer in LIMITS],
)
async def test_block_kit_limits(
    fake: FakeSlackAPI,
    client: AsyncWebClient,
    at_limit: list[JSONDict],
    over_limit: list[JSONDict],
    pointer: str,
) -> None:
    await client.chat_postMessage(channel=ALICE, text="fits", blocks=at_limit)
    failure = await api_error(client.chat_postMessage(channel=ALICE, text="no", blocks=over_limit))

    assert failure.response["error"] == "invalid_blocks"
    [error] = failure.response["errors"]
    assert error.endswith(f"[json-pointer:{pointer}]"), error
    assert failure.response["response_metadata"]["messages"] == [f"[ERROR] {error}"]
    assert [m["text"] for m in fake.messages(ALICE)] == ["fits"]


async def test_rich_text_input_and_accessories_are_accepted(client: AsyncWebClient) -> None:
    blocks: list[JSONDict] = [
        {
            "type": "rich_text",
            "elements": [
                {"type": "rich_text_section", "elements": [{"type": "text", "text": "r"}]}
            ],
        },
        {"type": "input", "label": plain("Why?"), "element": {"type": "plain_text_input"}},
        section("Pick", accessory=checkboxes(option("x", "x", "mrkdwn"), action_id="acc")),
        {"type": "divider"},
    ]
    answer = await client.chat_postMessage(channel=ALICE, text="mixed", blocks=blocks)
    stored = answer["message"]["blocks"]
    assert len(stored) == 4
    assert stored[1]["element"]["action_id"]  # Slack generates missing action_ids


async def test_action_ids_may_repeat_across_blocks_unless_asked_to_be_strict(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    blocks = [actions(button("A", "same")), actions(button("B", "same"))]
    await client.chat_postMessage(channel=ALICE, text="ok", blocks=blocks)

    fake.action_id_scope = "message"
    failure = await api_error(client.chat_postMessage(channel=ALICE, text="no", blocks=blocks))
    assert failure.response["errors"] == [
        "duplicate action_id: same [json-pointer:/blocks/1/elements/0/action_id]"
    ]


async def test_blocks_must_be_a_json_array(fake: FakeSlackAPI) -> None:
    channel = fake.dm_channel(ALICE)
    not_json = await raw_call(fake, "chat.postMessage", data={"channel": channel, "blocks": "[{"})
    an_object = await raw_call(
        fake, "chat.postMessage", json={"channel": channel, "blocks": section()}
    )
    in_form = await raw_call(
        fake, "chat.postMessage", data={"channel": channel, "blocks": json.dumps([section("f")])}
    )

    assert not_json[1] == {"ok": False, "error": "invalid_blocks_format"}
    assert an_object[1] == {"ok": False, "error": "invalid_blocks_format"}
    assert in_form[1]["ok"] is True


def test_validate_blocks_reports_every_error() -> None:
    errors = validate_blocks(
        [section("x" * 3001), {"type": "header", "text": plain("h" * 151)}, actions()]
    )
    assert errors == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
        "must be less than 151 characters [json-pointer:/blocks/1/text/text]",
        "must provide at least 1 items [json-pointer:/blocks/2/elements]",
    ]


# -- response_url ----------------------------------------------------------------------------------


async def test_response_url_posts_are_recorded_and_can_replace_the_message(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    channel = fake.dm_channel(ALICE)
    ts = (await client.chat_postMessage(channel=channel, text="Q?", blocks=[section("Q?")]))["ts"]
    url = fake.response_url(channel=channel, message_ts=ts, user=ALICE)
    assert url.startswith(f"{fake.url}/response/")

    webhook = AsyncWebhookClient(url)
    ephemeral = await webhook.send(text="Saved!")
    replaced = await webhook.send(text="Q? — yes", blocks=[section("yes")], replace_original=True)
    in_channel = await webhook.send_dict(
        {"text": "Everyone sees this", "response_type": "in_channel"}
    )

    assert ephemeral.status_code == replaced.status_code == in_channel.status_code == 200
    assert [r.payload.get("text") for r in fake.responses] == [
        "Saved!",
        "Q? — yes",
        "Everyone sees this",
    ]
    assert fake.responses[1].payload["replace_original"] is True
    assert fake.ephemerals_for(ALICE)[0]["text"] == "Saved!"
    assert [m["text"] for m in fake.messages(channel)] == ["Q? — yes", "Everyone sees this"]
    assert fake.messages(channel)[0]["blocks"][0]["text"]["text"] == "yes"

    await webhook.send_dict({"delete_original": True})
    assert [m["text"] for m in fake.messages(channel)] == ["Everyone sees this"]


async def test_response_url_refuses_bad_posts_and_a_sixth_use(fake: FakeSlackAPI) -> None:
    webhook = AsyncWebhookClient(fake.response_url())
    bad_blocks = await webhook.send(text="x", blocks=[{"type": "nope"}])
    no_text = await webhook.send_dict({"response_type": "ephemeral"})
    uses = [(await webhook.send(text=f"use {i}")).status_code for i in range(6)]
    unknown = await AsyncWebhookClient(f"{fake.url}/response/999").send(text="x")

    assert (
        bad_blocks.status_code == 400 and json.loads(bad_blocks.body)["error"] == "invalid_blocks"
    )
    assert no_text.status_code == 400 and json.loads(no_text.body)["error"] == "no_text"
    assert uses == [200, 200, 200, 200, 200, 404]  # refused posts do not count
    assert (unknown.status_code, unknown.body) == (404, "expired_url")
    assert len(fake.responses) == 5


# -- failure injection -----------------------------------------------------------------------------


async def test_injected_429_carries_retry_after(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", 429, retry_after=7)

    failure = await api_error(client.chat_postMessage(channel=ALICE, text="first"))
    await client.chat_postMessage(channel=ALICE, text="second")

    assert failure.response.status_code == 429
    assert failure.response.headers["Retry-After"] == "7"
    assert failure.response["error"] == "ratelimited"
    assert [m["text"] for m in fake.messages(ALICE)] == ["second"]
    assert fake.errors[-1] == ("chat.postMessage", 429, "ratelimited")


async def test_sdk_retry_handler_honours_the_injected_429(fake: FakeSlackAPI) -> None:
    client = fake.make_client(retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=0)

    await client.chat_postMessage(channel=ALICE, text="eventually")

    assert len(fake.calls_to("chat.postMessage")) == 2
    assert [m["text"] for m in fake.messages(ALICE)] == ["eventually"]


async def test_injected_invalid_auth_and_slack_errors(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    fake.fail_next("auth.test", "invalid_auth")
    fake.fail_next("users.info", "ratelimited", count=2)
    fake.fail_next("chat.postMessage", "channel_not_found", channel="D0BOB")

    auth = await api_error(client.auth_test())
    limited = [await api_error(client.users_info(user=ALICE)) for _ in range(2)]
    await client.chat_postMessage(channel="D0ALICE", text="not the faulty channel")
    lost = await api_error(client.chat_postMessage(channel="D0BOB", text="x"))

    assert (auth.response.status_code, auth.response["error"]) == (200, "invalid_auth")
    assert [e.response.status_code for e in limited] == [429, 429]
    assert (await client.users_info(user=ALICE))["ok"] is True
    assert lost.response["error"] == "channel_not_found"
    assert (await client.auth_test())["ok"] is True


@pytest.mark.parametrize("status", [500, 503])
async def test_injected_server_errors(
    fake: FakeSlackAPI, client: AsyncWebClient, status: int
) -> None:
    fake.fail_next("chat.postMessage", status)
    failure = await api_error(client.chat_postMessage(channel=ALICE, text="x"))
    assert failure.response.status_code == status

    quick = FixedValueRetryIntervalCalculator(0.01)
    retry = AsyncServerErrorRetryHandler(max_retry_count=1, interval_calculator=quick)
    retrying = fake.make_client(retry_handlers=[retry])
    fake.fail_next("chat.postMessage", status)
    await retrying.chat_postMessage(channel=ALICE, text="after a retry")
    assert [m["text"] for m in fake.messages(ALICE)] == ["after a retry"]


def test_unsupported_injected_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        FakeSlackAPI().fail_next("chat.postMessage", 418)


# -- rate limits ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_is_per_channel_and_reports_retry_after() -> None:
    clock = FakeClock()
    async with FakeSlackAPI(clock=clock) as fake:
        fake.add_user(ALICE)
        fake.add_user(BOB)
        fake.enforce_rate_limits = True
        client = fake.make_client()

        await client.chat_postMessage(channel=ALICE, text="1")
        too_fast = await api_error(client.chat_postMessage(channel=ALICE, text="2"))
        await client.chat_postMessage(channel=BOB, text="other channel")
        clock.now += 0.6
        still = await api_error(client.chat_postMessage(channel=ALICE, text="2"))
        clock.now += 0.4
        await client.chat_postMessage(channel=ALICE, text="2")

        assert too_fast.response.status_code == 429
        assert too_fast.response.headers["Retry-After"] == "1"
        assert still.response.status_code == 429
        assert [m["text"] for m in fake.messages(ALICE)] == ["1", "2"]
        assert fake.max_rate_per_channel(1.0) == 1

        fake.per_channel_limit = RateLimit(3, 1.0)  # tests may loosen or tighten it
        for text in ("3", "4"):
            await client.chat_postMessage(channel=ALICE, text=text)
        assert fake.max_rates(1.0) == {"D0ALICE": 3, "D0BOB": 1}


async def test_rates_are_recorded_when_not_enforced(
    fake: FakeSlackAPI, client: AsyncWebClient
) -> None:
    await asyncio.gather(*(client.chat_postMessage(channel=ALICE, text=str(i)) for i in range(4)))
    assert fake.max_rate_per_channel(1.0, channel="D0ALICE") == 4
    assert fake.max_rate_per_channel(1.0, channel="D0BOB") == 0


# -- wait_until ----------------------------------------------------------------------------------


async def test_wait_until_wakes_on_calls(fake: FakeSlackAPI, client: AsyncWebClient) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=ALICE, text="late")

    task = asyncio.create_task(later())
    await fake.wait_until(lambda: bool(fake.messages(ALICE)), timeout=2)
    await task

    with pytest.raises(
        AssertionError, match=r"not met within 0.05 s; last calls: \['chat.postMessage'\]"
    ):
        await fake.wait_until(lambda: False, timeout=0.05)


# -- the driver ------------------------------------------------------------------------------------


class Receiver:
    """A stand-in app endpoint that records what arrives and answers after ``delay``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        await asyncio.sleep(self.delay)
        return web.json_response({"received": True}, headers={"X-Test": "1"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recorder = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield recorder
    await runner.cleanup()


@pytest.fixture
async def driver(receiver: Receiver, fake: FakeSlackAPI) -> AsyncIterator[SlackDriver]:
    async with SlackDriver(receiver.url, SECRET, response_url=fake.response_url) as slack:
        yield slack


def verify(headers: dict[str, str], body: bytes) -> bool:
    return SignatureVerifier(SECRET).is_valid(
        body,
        headers.get("X-Slack-Request-Timestamp", ""),
        headers.get("X-Slack-Signature", ""),
    )


async def test_driver_signs_like_slack(driver: SlackDriver, receiver: Receiver) -> None:
    answer = await driver.message(ALICE, "hello")
    await driver.message(ALICE, "forged", signing="wrong")
    await driver.message(ALICE, "unsigned", signing="none")
    await driver.message(ALICE, "replayed", signing="stale")

    (good_h, good_b), (wrong_h, wrong_b), (none_h, _), (stale_h, stale_b) = receiver.requests
    assert verify(good_h, good_b)
    assert good_h["X-Slack-Signature"] == sign(SECRET, good_h["X-Slack-Request-Timestamp"], good_b)
    assert good_h["Content-Type"] == "application/json"
    assert not verify(wrong_h, wrong_b)
    assert "X-Slack-Signature" not in none_h
    assert not verify(stale_h, stale_b)
    stale_age = int(good_h["X-Slack-Request-Timestamp"]) - int(stale_h["X-Slack-Request-Timestamp"])
    assert stale_age > 5 * 60
    assert answer.status == 200 and answer.json() == {"received": True}
    assert answer.headers["X-Test"] == "1" and answer.acked_in_time


async def test_driver_retries_and_measures_ack_time(
    driver: SlackDriver, receiver: Receiver
) -> None:
    receiver.delay = 0.2
    slow = await driver.message(ALICE, "hi")
    receiver.delay = 0
    again = await driver.resend(driver.sent[-1], retry_num=1)

    assert 0.2 <= slow.elapsed < 3
    first, retry = receiver.requests
    assert "X-Slack-Retry-Num" not in first[0]
    assert (retry[0]["X-Slack-Retry-Num"], retry[0]["X-Slack-Retry-Reason"]) == (
        "1",
        "http_timeout",
    )
    assert retry[1] == first[1] and verify(*retry)
    assert again.elapsed < slow.elapsed


async def test_event_payloads_are_shaped_like_slacks(
    driver: SlackDriver, receiver: Receiver
) -> None:
    await driver.message(ALICE, "hello")
    ts = json.loads(receiver.requests[0][1])["event"]["ts"]
    await driver.send_event(driver.bot_message_event("beep", channel="D0ALICE"))
    await driver.send_event(
        driver.message_event("U0BOT", "mine", channel="D0ALICE", bot_id="B0BOT")
    )
    await driver.send_event(
        driver.message_changed_event(ALICE, ts=ts, old_text="hello", new_text="hi")
    )
    await driver.send_event(driver.channel_join_event(ALICE, channel="C0CLASS", inviter=BOB))
    await driver.app_home_opened(ALICE)

    envelopes = [json.loads(body) for _, body in receiver.requests]
    first = envelopes[0]
    assert first["type"] == "event_callback"
    assert (first["team_id"], first["api_app_id"]) == ("T0PROFILE", "A0PROFILE")
    assert first["event_id"].startswith("Ev") and isinstance(first["event_time"], int)
    assert first["authorizations"][0]["user_id"] == "U0BOT"
    assert len({e["event_id"] for e in envelopes}) == len(envelopes)
    message = first["event"]
    assert message["type"] == "message" and "subtype" not in message
    assert (message["user"], message["text"], message["channel"]) == (ALICE, "hello", "D0ALICE")
    assert message["channel_type"] == "im" and message["event_ts"] == message["ts"]
    assert message["client_msg_id"] and message["blocks"][0]["type"] == "rich_text"

    bot, own, changed, joined, home = (e["event"] for e in envelopes[1:])
    assert bot["subtype"] == "bot_message" and bot["bot_id"] and "user" not in bot
    assert own["bot_id"] == "B0BOT" and own["user"] == "U0BOT" and "subtype" not in own
    assert changed["subtype"] == "message_changed" and changed["hidden"] is True
    assert changed["message"]["text"] == "hi" and changed["message"]["ts"] == ts
    assert changed["previous_message"]["text"] == "hello"
    assert joined["subtype"] == "channel_join" and joined["inviter"] == BOB
    assert joined["channel_type"] == "channel"
    assert home == {**home, "type": "app_home_opened", "user": ALICE, "tab": "home"}
    assert home["channel"] == "D0ALICE"


async def test_form_payloads_are_shaped_like_slacks(
    fake: FakeSlackAPI, driver: SlackDriver, receiver: Receiver
) -> None:
    client = fake.make_client()
    blocks = [
        section("Q1", block_id="q1"),
        actions(button("Yes", "answer_yes", value="yes"), block_id="a1"),
        actions(checkboxes(option("Art", "art"), option("Maths", "maths")), block_id="c1"),
    ]
    posted = await client.chat_postMessage(channel=ALICE, text="Q1", blocks=blocks)
    message = posted["message"]

    await driver.click_button(ALICE, message, "answer_yes")
    await driver.check_boxes(ALICE, message, "pick", ["maths"])
    await driver.slash_command(ALICE, "checkin")
    await driver.ssl_check()
    await driver.url_verification("challenge-1")

    (click_h, click), (check_h, check), (command_h, command), (_, ssl), (_, handshake) = (
        receiver.requests
    )
    assert click_h["Content-Type"] == "application/x-www-form-urlencoded"
    assert verify(click_h, click) and verify(check_h, check) and verify(command_h, command)
    [(field, raw)] = parse_qsl(click.decode())
    payload = json.loads(raw)
    assert field == "payload" and payload["type"] == "block_actions"
    assert payload["user"]["id"] == ALICE and payload["team"]["id"] == "T0PROFILE"
    assert payload["container"] == {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": "D0ALICE",
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == "D0ALICE" and payload["message"]["ts"] == message["ts"]
    [action] = payload["actions"]
    assert (action["type"], action["action_id"], action["block_id"], action["value"]) == (
        "button",
        "answer_yes",
        "a1",
        "yes",
    )
    assert payload["trigger_id"] and payload["response_url"].startswith(f"{fake.url}/response/")

    checked = json.loads(dict(parse_qsl(check.decode()))["payload"])
    [check_action] = checked["actions"]
    assert check_action["type"] == "checkboxes"
    assert [o["value"] for o in check_action["selected_options"]] == ["maths"]
    assert checked["state"]["values"]["c1"]["pick"]["selected_options"][0]["value"] == "maths"

    fields = dict(parse_qsl(command.decode()))
    assert (fields["command"], fields["text"], fields["user_id"]) == (
        "/profilebot",
        "checkin",
        ALICE,
    )
    assert (fields["channel_id"], fields["team_id"]) == ("D0ALICE", "T0PROFILE")
    assert fields["response_url"].startswith(fake.url) and fields["trigger_id"]
    assert dict(parse_qsl(ssl.decode())) == {"ssl_check": "1", "token": driver.verification_token}
    assert json.loads(handshake) == {
        "token": driver.verification_token,
        "challenge": "challenge-1",
        "type": "url_verification",
    }

    with pytest.raises(LookupError):
        await driver.click_button(ALICE, message, "no_such_button")


# -- the whole stack: a real slack-bolt AsyncApp between the driver and the fake -------------------


@pytest.fixture
async def bolt_app(fake: FakeSlackAPI) -> AsyncIterator[tuple[AsyncApp, str]]:
    app = AsyncApp(client=fake.make_client(), signing_secret=SECRET)
    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield app, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    await runner.cleanup()


async def test_bolt_app_round_trip(fake: FakeSlackAPI, bolt_app: tuple[AsyncApp, str]) -> None:
    """The driver's requests pass Bolt's checks and Bolt's calls land in the fake."""
    app, url = bolt_app
    Handler = Callable[..., Awaitable[None]]

    async def on_message(event: JSONDict, say: Handler) -> None:
        question = actions(button("Yes", "yes", value="y"))
        await say(text=f"echo {event['text']}", blocks=[section("Sure?"), question])

    async def on_yes(ack: Handler, respond: Handler) -> None:
        await ack()
        await respond(text="You said yes", replace_original=True)

    async def on_command(ack: Handler, command: JSONDict) -> None:
        await ack(f"ok {command['text']}")

    app.event("message")(on_message)
    app.action("yes")(on_yes)
    app.command("/profilebot")(on_command)

    async with SlackDriver(url, SECRET, response_url=fake.response_url) as slack:
        handshake = await slack.url_verification("xyz")
        said = await slack.message(ALICE, "hi")
        await fake.wait_until(lambda: bool(fake.messages(ALICE)))
        [question] = fake.messages(ALICE)
        clicked = await slack.click_button(ALICE, question, "yes")
        await fake.wait_until(lambda: bool(fake.responses))
        command = await slack.slash_command(ALICE, "help")
        ssl = await slack.ssl_check()
        refused = [
            (await slack.message(ALICE, "x", signing=signing)).status
            for signing in ("wrong", "none", "stale")
        ]

    assert handshake.json() == {"challenge": "xyz"}
    assert said.status == clicked.status == ssl.status == 200 and said.acked_in_time
    assert question["text"] == "echo hi"
    assert fake.messages(ALICE)[0]["text"] == "You said yes"
    assert command.body == "ok help"
    assert refused == [401, 401, 401]
    assert [c.method for c in fake.calls] == ["auth.test", "chat.postMessage"]
