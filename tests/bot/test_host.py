"""The host: services side by side in one process, stopped together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import bot.host
from bot.app import App
from bot.config import load_settings
from bot.host import host, worker_services


class Recorder:
    """A service that runs until stopped, entered and left as a context manager."""

    def __init__(self, events: list[str], name: str, *, fail: bool = False) -> None:
        self.events = events
        self.name = name
        self.fail = fail
        self.running = asyncio.Event()

    async def __aenter__(self) -> Recorder:
        self.events.append(f"enter {self.name}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.events.append(f"leave {self.name}")

    async def run(self, stop: asyncio.Event) -> None:
        self.events.append(f"run {self.name}")
        self.running.set()
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        await stop.wait()
        self.events.append(f"stopped {self.name}")


class Plain:
    """A service that is no context manager (the scheduler, say)."""

    def __init__(self) -> None:
        self.stopped = False

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopped = True


async def test_services_start_after_all_are_entered_and_stop_together() -> None:
    events: list[str] = []
    first, second, plain = Recorder(events, "a"), Recorder(events, "b"), Plain()
    stop = asyncio.Event()
    hosting = asyncio.create_task(host([first, second, plain], stop=stop))
    await asyncio.wait_for(asyncio.gather(first.running.wait(), second.running.wait()), 5)
    stop.set()
    await asyncio.wait_for(hosting, 5)
    assert events[:2] == ["enter a", "enter b"]
    assert set(events[2:6]) == {"run a", "run b", "stopped a", "stopped b"}
    assert events[6:] == ["leave b", "leave a"]
    assert plain.stopped


async def test_one_failing_service_stops_the_others_and_its_error_surfaces() -> None:
    events: list[str] = []
    healthy, broken = Recorder(events, "healthy"), Recorder(events, "broken", fail=True)
    with pytest.raises(RuntimeError, match="broken broke"):
        await asyncio.wait_for(host([healthy, broken], stop=asyncio.Event()), 5)
    assert "stopped healthy" in events and events[-2:] == ["leave broken", "leave healthy"]


def test_a_worker_runs_the_scheduler_beside_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = App.create(
        load_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", telegram_bot_token="1:A")
    )
    scheduler = Plain()

    def wired(given: App) -> Any:
        assert given is app
        return scheduler

    monkeypatch.setattr(bot.host, "scheduler", wired)
    services = worker_services(app)
    assert [type(s).__name__ for s in services] == ["TelegramDelivery", "Plain"]
    app.db.dispose()
