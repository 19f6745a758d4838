"""One process, several services: inbound adapters, delivery and the scheduler, side by side.

``profilebot run`` hosts the bot on one or more platforms (each with its own delivery); and
``profilebot worker`` hosts delivery alone for every configured platform. Both run the
scheduler. Every service is built before anything starts, so a missing setting is one clear
line at start, not a failure minutes later; they run in one task group until SIGINT/SIGTERM
(or until one of them ends: then the others are stopped too), and a stop ends the process
within ``SHUTDOWN_GRACE`` seconds whatever they were doing.

Several ``worker`` processes (and one ``run``) may serve one database: delivery claims the
messages it sends, and the platform's rate is a budget they share (``bot.delivery``). On
SQLite they take turns on the one file; PostgreSQL is what more processes are for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .app import App
from .errors import ConfigError
from .runtime import run_until_stopped, stop_on_signals, tune_for_serving

if TYPE_CHECKING:
    from .adapters.slack import SlackService
    from .adapters.telegram import TelegramService

__all__ = [
    "PLATFORMS",
    "Service",
    "configured_platforms",
    "host",
    "run_services",
    "scheduler",
    "worker_services",
]

log = logging.getLogger("profilebot.host")

PLATFORMS = ("telegram", "slack")
_DEFAULT_PORTS = {"telegram": 8080, "slack": 3000}


class Service(Protocol):
    """Something a serving process runs until ``stop`` is set: an adapter, delivery, the
    scheduler. It should notice ``stop`` and return within a few seconds; if it also is an
    async context manager, the host enters it before anything runs and leaves it after."""

    async def run(self, stop: asyncio.Event) -> None: ...


def scheduler(app: App) -> Service:
    """The scheduler every serving process runs beside delivery (``run`` and ``worker``):
    several processes may run it against one PostgreSQL (it claims with SKIP LOCKED).

    Its database work runs on a daemon thread of its own: a round waiting for a lock another
    process holds must not hold up the exit after SIGTERM (asyncio's default executor is
    joined at exit, however long its call waits)."""
    from .offload import StorageThreads
    from .scheduler import Scheduler

    return Scheduler(app, offload=StorageThreads(1))


def configured_platforms(app: App) -> list[str]:
    """The platforms whose bot token is set: those a worker delivers to."""
    settings = app.settings
    tokens = {"telegram": settings.telegram_bot_token, "slack": settings.slack_bot_token}
    return [p for p in PLATFORMS if tokens[p] is not None]


def run_services(
    app: App,
    platforms: Sequence[str],
    *,
    port: int | None = None,
    announce: Callable[[str], None] = log.info,
) -> list[Service]:
    """What ``profilebot run --platform P...`` hosts: each platform's bot (inbound and
    delivery) and the scheduler. ``port`` is for the one platform that serves HTTP (a
    Telegram webhook, Slack's HTTP mode); two that do keep their defaults (8080, 3000)."""
    wanted = list(dict.fromkeys(platforms))  # once each, in the order given
    for platform in wanted:
        if platform not in PLATFORMS:
            raise ConfigError(f"unknown platform {platform!r}: use telegram or slack")
    kinds = {p: _bot_service(p) for p in wanted}  # imports only the platforms' own SDKs
    listening = [p for p in wanted if kinds[p].serves_http(app.settings)]
    if port is not None and len(listening) > 1:
        raise ConfigError(
            "--port is ambiguous: both Telegram (webhook) and Slack (HTTP mode) serve HTTP; "
            f"leave it out and they listen on {_DEFAULT_PORTS['telegram']} and "
            f"{_DEFAULT_PORTS['slack']}"
        )
    services: list[Service] = [
        kinds[p](app, port=_DEFAULT_PORTS[p] if port is None else port, announce=announce)
        for p in wanted
    ]
    return [*services, scheduler(app)]


def worker_services(app: App, *, announce: Callable[[str], None] = log.info) -> list[Service]:
    """What ``profilebot worker`` hosts: delivery for every configured platform (no inbound
    side: no webhook, no polling, no Socket Mode) and the scheduler."""
    platforms = configured_platforms(app)
    if not platforms:
        raise ConfigError(
            "profilebot worker delivers to the configured platforms, and none is: "
            "set TELEGRAM_BOT_TOKEN and/or SLACK_BOT_TOKEN"
        )
    services: list[Service] = []
    for platform in platforms:
        if platform == "telegram":
            from .adapters.telegram import TelegramDelivery

            services.append(TelegramDelivery(app, announce=announce))
        else:
            from .adapters.slack import SlackDelivery

            services.append(SlackDelivery(app, announce=announce))
    return [*services, scheduler(app)]


def _bot_service(platform: str) -> type[TelegramService | SlackService]:
    if platform == "telegram":
        from .adapters.telegram import TelegramService

        return TelegramService
    from .adapters.slack import SlackService

    return SlackService


async def host(services: Sequence[Service], *, stop: asyncio.Event | None = None) -> None:
    """Run ``services`` together until SIGINT/SIGTERM (or ``stop``), or until one ends.

    One that fails stops the others (cleanly, like a signal would) and its error is raised
    once they have ended; one stuck past ``SHUTDOWN_GRACE`` after the stop is cancelled.
    """
    stop = stop_on_signals(stop)
    async with contextlib.AsyncExitStack() as entered:
        for service in services:
            if isinstance(service, contextlib.AbstractAsyncContextManager):
                await entered.enter_async_context(service)
        tune_for_serving()
        failures: list[BaseException] = []
        await run_until_stopped(_together(services, stop, failures), stop)
    if failures:
        raise failures[0]


async def _together(
    services: Sequence[Service], stop: asyncio.Event, failures: list[BaseException]
) -> None:
    async def one(service: Service) -> None:
        try:
            await service.run(stop)
        except Exception as exc:
            failures.append(exc)
        finally:
            stop.set()  # whichever ends first, for whatever reason, ends them all

    async with asyncio.TaskGroup() as group:
        for service in services:
            group.create_task(one(service))
