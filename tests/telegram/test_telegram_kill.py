"""SIGKILL the real `profilebot run --platform telegram` mid-conversation, start it again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from storage._tables import answer
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import make_app, sqlite_url

ROOT = Path(__file__).parents[2]


async def _start_bot(fake: FakeBotAPI, tmp_path: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url(tmp_path),
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.url,
        "DEFAULT_TIMEZONE": "UTC",
        "PYTHONPATH": str(ROOT),
    }
    for name in ("TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "PROFILEBOT_FLOWS_DIR"):
        env.pop(name, None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "--platform",
        "telegram",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def _sent_texts(fake: FakeBotAPI) -> list[str]:
    return [str(c.params.get("text", "")) for c in fake.calls if c.method == "sendMessage"]


async def test_a_killed_bot_resumes_at_the_same_question(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path))
        person = app.people.add("Sam Lee", "student")
        code = app.invites.issue(person.id).code
        sam = fake.user(1001, "Sam")
        process = await _start_bot(fake, tmp_path)
        try:
            fake.push_text(sam, f"/start {code}")
            await fake.wait_until(lambda: len(fake.sent(1001)) >= 2, 30)
            fake.push_text(sam, "Sammy")
            await fake.wait_until(lambda: len(fake.sent(1001)) >= 3, 30)
            fake.push_text(sam, "1")  # the strengths question, answered by number...
            await asyncio.sleep(0.05)
            process.send_signal(signal.SIGKILL)  # ...and the bot dies around it
            await process.wait()

            process = await _start_bot(fake, tmp_path)
            await fake.wait_until(lambda: len(fake.sent(1001)) >= 4, 30)
            await fake.wait_until(lambda: not fake.pending_updates, 30)
            fake.push_text(sam, "2")  # the interests question, next in line
            await fake.wait_until(lambda: len(fake.sent(1001)) >= 5, 30)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                await process.wait()

        with app.db.begin() as conn:
            rows = conn.execute(select(answer.c.step_id, answer.c.raw).order_by(answer.c.id)).all()
        assert [tuple(r) for r in rows][:3] == [
            ("preferred_name", "Sammy"),
            ("strengths", "1"),
            ("interests", "2"),
        ]
        duplicates = [t for t, n in Counter(_sent_texts(fake)).items() if n > 1]
        assert duplicates == []
        assert fake.pending_updates == []
        assert fake.errors == []
