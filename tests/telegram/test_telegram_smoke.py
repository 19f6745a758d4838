from __future__ import annotations

from pathlib import Path

from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import make_app, running_bot, sqlite_url


async def test_join_and_first_question(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        async with running_bot(fake, app) as bot:
            sam = bot.add_student("Sam Lee", 1001)
            first = await bot.join(sam)
            print(first)
            q = await bot.next_question(sam)
            print(q)
            fake.push_text(sam.user, "Sammy")
            q2 = await bot.next_question(sam)
            print(q2)
            print(bot.messages(sam)[:3])
