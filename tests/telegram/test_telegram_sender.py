"""TelegramSender: the raw sendMessage call, and the message ids it hands to closing edits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.adapters.telegram import TelegramSender
from bot.delivery import SendKind
from dialogues import Option, Reply, ReplyKind
from storage import OutboxRecord
from storage._tables import utcnow


class StubBot:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.gate = asyncio.Event()

    async def do_api_request(self, endpoint: str, api_kwargs: dict[str, Any]) -> Any:
        self.calls.append((endpoint, api_kwargs))
        await self.gate.wait()
        return {"message_id": 77, "chat": {"id": 1}}


def record(outbox_id: int, reply: Reply) -> OutboxRecord:
    now = utcnow()
    return OutboxRecord(
        id=outbox_id,
        person_id=1,
        conversation_id=1,
        platform="telegram",
        address="500",
        payload=reply.to_json(),
        status="pending",
        attempts=0,
        not_before=now,
        last_error=None,
        platform_message_id=None,
        created_at=now,
        sent_at=None,
    )


async def test_a_closing_edit_gets_the_id_of_a_question_still_being_sent() -> None:
    bot = StubBot()
    sender = TelegramSender(bot)  # type: ignore[arg-type]
    question = Reply(
        "Pick one",
        kind=ReplyKind.CHOICE,
        options=(Option("a", "A"), Option("b", "B")),
        step_id="q1",
    )
    assert await sender.message_id(5, 1.0) is None  # never sent here: no waiting
    sending = asyncio.create_task(sender.send(record(5, question)))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(sender.message_id(5, 5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    bot.gate.set()
    result = await sending
    assert result.kind is SendKind.SENT and result.platform_message_id == "77"
    assert await waiting == "77"
    assert await sender.message_id(5, 0.0) == "77"

    endpoint, params = bot.calls[0]
    assert endpoint == "sendMessage" and params["parse_mode"] == "HTML"
    markup = json.loads(params["reply_markup"])
    assert [b["text"] for row in markup["inline_keyboard"] for b in row] == ["A", "B"]
    assert json.loads(params["link_preview_options"]) == {"is_disabled": True}
