"""The App Home tab (what students, strangers and staff see there, escaped for mrkdwn), Socket
Mode wiring (Bolt's own socket handler fed envelopes reaches the same listeners as HTTP), and a
bot token Slack refuses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from sqlalchemy import func, select

from bot.adapters.slack import SlackBot
from bot.errors import ConfigError
from bot.frontdesk import STAFF_HOME_TEXT
from storage._tables import answer, channel_identity
from tests.slack.driver import SlackDriver
from tests.slack.fake_web_api import FakeSlackAPI
from tests.slack.harness import (
    FAST,
    SIGNING_SECRET,
    Running,
    action_id_of,
    checkbox_labels,
    make_app,
    running_bot,
    sqlite_url,
)
from tests.slack.test_slack_conversations import _two_goals

JSONDict = dict[str, Any]
TEAM = "T0PROFILE"


def _escaped(text: str) -> str:
    """How plain text must appear in mrkdwn: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _home_texts(view: JSONDict) -> list[str]:
    """The text of every block of a Home view (header, sections, context), in order."""
    texts = []
    for block in view["blocks"]:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements") or [] if isinstance(e.get("text"), str)]
    return texts


async def _open_home(bot: Running, user: str) -> JSONDict:
    response = await bot.driver.app_home_opened(user)
    assert response.status == 200 and response.acked_in_time, response
    await bot.wait_for(lambda: user in bot.fake.home_views)
    view = bot.fake.home_views[user]
    assert view["type"] == "home"
    return view


def _linked_identities(bot: Running) -> int:
    with bot.app.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(channel_identity)).scalar_one())


# ----------------------------------------------------------------------------------------------
# App Home
# ----------------------------------------------------------------------------------------------


async def test_a_student_sees_their_profile_card_and_plan_on_the_home_tab(tmp_path: Path) -> None:
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", "U0SAM")
            app.profiles.set(sam.person_id, "preferred_name", "<!channel> & co")
            app.profiles.set(sam.person_id, "strengths", ["creative", "teamwork"])
            app.profiles.set(sam.person_id, "dreams", "Build a <robot> & win")
            _two_goals(app, sam.person_id)
            person = app.people.by_id(sam.person_id)

            response = await bot.driver.app_home_opened(sam.user, tab="messages")
            assert response.status == 200
            view = await _open_home(bot, sam.user)
            assert len(fake.calls_to("views.publish")) == 1  # the Messages tab shows no page

            texts = _home_texts(view)
            assert view["blocks"][0] == {
                "type": "header",
                "text": {"type": "plain_text", "text": "profilebot", "emoji": True},
                "block_id": view["blocks"][0]["block_id"],
            }
            body = "\n".join(texts)
            assert _escaped(app.profile_card(person)) in body
            assert _escaped(app.plan_card(person)) in body
            assert "&lt;!channel&gt; &amp; co" in body  # the markup shows, and pings nobody
            assert "Build a &lt;robot&gt; &amp; win" in body
            assert "<!channel>" not in body and "<robot>" not in body
            assert "🪪 &lt;!channel&gt; &amp; co's learner profile" in body
            assert "🎯 Sam Lee's learning plan" in body
            assert "Hand in maths homework on time" in body
            assert "Read a book a month" in body
            assert "/profilebot checkin" in body  # the command list closes the page
            assert STAFF_HOME_TEXT not in body
            # Opening Home linked Sam by email (users.info), as writing would.
            assert app.people.by_identity("slack", TEAM, sam.user) is not None
            assert fake.calls_to("chat.postMessage") == []  # looking is not a conversation
        assert fake.errors == []


async def test_a_stranger_on_the_home_tab_is_told_how_to_join_and_not_linked(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            bot.add_student("Sam Lee", "U0SAM")  # someone else is on the roster
            fake.add_user("U0STRANGER", email="visitor@elsewhere.example", real_name="Vi Sitor")

            view = await _open_home(bot, "U0STRANGER")

            body = "\n".join(_home_texts(view))
            assert "I don't know who you are yet" in body
            assert "/profilebot link" in body
            assert "🪪" not in body and "🎯" not in body  # no cards for a stranger
            assert app.people.by_identity("slack", TEAM, "U0STRANGER") is None
            assert _linked_identities(bot) == 0
            assert fake.calls_to("chat.postMessage") == []
            assert app.outbox.pending(platform="slack") == []  # nothing queued for a visit
        assert fake.errors == []


async def test_an_advisor_sees_the_staff_text_and_the_commands_on_the_home_tab(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            email = "ada.advisor@school.example"
            advisor = app.people.add("Ada Advisor", "advisor", email=email)
            fake.add_user("U0ADA", email=email, real_name="Ada Advisor")

            view = await _open_home(bot, "U0ADA")

            body = "\n".join(_home_texts(view))
            assert _escaped(STAFF_HOME_TEXT) in body
            for word in ("profile", "goals", "checkin", "newgoal", "help"):
                assert f"/profilebot {word}" in body
            assert "🪪" not in body and "🎯" not in body  # no student cards for staff
            linked = app.people.by_identity("slack", TEAM, "U0ADA")
            assert linked is not None and linked.id == advisor.id
        assert fake.errors == []


# ----------------------------------------------------------------------------------------------
# Socket Mode
# ----------------------------------------------------------------------------------------------


class FakeSocketClient:
    """What Bolt's socket handler needs of slack_sdk's client: ``send_socket_mode_response``
    (how an envelope is acknowledged over the WebSocket) and a ``logger``."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("tests.slack.socket_mode")
        self.responses: list[SocketModeResponse] = []

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.responses.append(response)


def _submit_boxes(driver: SlackDriver, user: str, message: JSONDict, *labels: str) -> JSONDict:
    """The ``block_actions`` payload of ticking ``labels`` and pressing Submit on ``message``."""
    state: JSONDict = {}
    for block in message["blocks"]:
        for element in block.get("elements") or []:
            if element.get("type") != "checkboxes":
                continue
            ticked = [o for o in element["options"] if o["text"]["text"] in labels]
            state[block["block_id"]] = {
                element["action_id"]: {"type": "checkboxes", "selected_options": ticked}
            }
    submit = action_id_of(message, "Submit")
    [block_id] = [
        block["block_id"]
        for block in message["blocks"]
        if any(e.get("action_id") == submit for e in block.get("elements") or [])
    ]
    action = driver.button_action(submit, block_id=block_id, text="Submit")
    return driver.block_actions_payload(user, [action], message=message, state_values=state)


async def test_socket_mode_envelopes_reach_the_same_listeners_and_are_acknowledged(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        # A Socket Mode install: bot token and app-level token, no signing secret.
        app = make_app(
            fake, sqlite_url(tmp_path), slack_app_token="xapp-1-test", slack_signing_secret=None
        )
        email = "sam.lee@school.example"
        person = app.people.add("Sam Lee", "student", email=email)
        fake.add_user("U0SAM", email=email, real_name="Sam Lee")
        dm = fake.dm_channel("U0SAM")
        # Only the driver's payload builders are used: Socket Mode has no request URL.
        driver = SlackDriver(
            "http://127.0.0.1:9/unused", SIGNING_SECRET, response_url=fake.response_url
        )
        client = FakeSocketClient()

        async with SlackBot(app, pacer=FAST) as bot:
            handler = AsyncSocketModeHandler(bot.bolt, "xapp-1-test")
            try:

                async def envelope(kind: str, envelope_id: str, payload: JSONDict) -> None:
                    request = SocketModeRequest(type=kind, envelope_id=envelope_id, payload=payload)
                    await handler.handle(client, request)  # type: ignore[arg-type]
                    assert client.responses[-1].envelope_id == envelope_id
                    await bot.worker.deliver_due()

                # events_api: the student writes "hi" in their DM.
                hello = driver.event_callback(driver.message_event("U0SAM", "hi"))
                await envelope("events_api", "env-1", hello)
                intro, first = fake.messages(dm)
                assert intro["text"].startswith("Hi Sam! 👋 Let's build your learner")
                [record] = [
                    r
                    for r in app.outbox.for_person(person.id)
                    if r.platform_message_id == first["ts"]
                ]
                assert record.reply.step_id == "preferred_name"

                await envelope(
                    "events_api",
                    "env-2",
                    driver.event_callback(driver.message_event("U0SAM", "Sammy")),
                )
                strengths = fake.messages(dm)[-1]
                assert "Being creative" in checkbox_labels(strengths)

                # interactive: ticking a box and pressing Submit under the strengths question.
                payload = _submit_boxes(driver, "U0SAM", strengths, "Being creative")
                await envelope("interactive", "env-3", payload)
                closed = next(m for m in fake.messages(dm) if m["ts"] == strengths["ts"])
                assert not [b for b in closed["blocks"] if b["type"] == "actions"]
                assert len(fake.messages(dm)) == 4  # the interests question came next

                # slash_commands: `/profilebot help`, answered only to the caller.
                form = driver.slash_command_form("U0SAM", "help")
                await envelope("slash_commands", "env-4", form)
                [response] = fake.responses
                assert response.url == form["response_url"]
                assert response.payload["response_type"] == "ephemeral"
                assert response.payload["text"].startswith("Here's what I can do:")
                assert "/profilebot checkin" in response.payload["text"]
                assert len(fake.messages(dm)) == 4  # nothing in the DM for it

                # A redelivered envelope (Slack's retry) is acknowledged and changes nothing.
                await handler.handle(
                    client,  # type: ignore[arg-type]
                    SocketModeRequest(
                        type="events_api",
                        envelope_id="env-5",
                        payload=hello,
                        retry_attempt=1,
                        retry_reason="timeout",
                    ),
                )
                assert client.responses[-1].envelope_id == "env-5"
                await bot.worker.deliver_due()
                assert len(fake.messages(dm)) == 4
            finally:
                await handler.close_async()  # type: ignore[no-untyped-call]

        assert [r.envelope_id for r in client.responses] == [f"env-{n}" for n in range(1, 6)]
        assert all(not r.payload for r in client.responses)  # a bare ack for each
        with app.db.begin() as conn:
            rows = conn.execute(select(answer.c.step_id).order_by(answer.c.id)).scalars().all()
        assert rows == ["preferred_name", "strengths"]
        assert fake.errors == []


# ----------------------------------------------------------------------------------------------
# A refused token
# ----------------------------------------------------------------------------------------------


async def test_a_bot_token_slack_refuses_is_a_config_error(tmp_path: Path) -> None:
    async with FakeSlackAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), slack_bot_token="xoxb-not-the-right-one")
        with pytest.raises(ConfigError, match="invalid_auth") as caught:
            async with SlackBot(app):
                pytest.fail("a refused token must not get this far")
        assert "SLACK_BOT_TOKEN" in str(caught.value)
        assert "xoxb-not-the-right-one" not in str(caught.value)  # secrets stay out of errors
        assert [c.method for c in fake.calls] == ["auth.test"]
