"""Waiting in end-to-end tests for a condition only part of which a fake server can see."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol


class _Fake(Protocol):
    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = ...
    ) -> Awaitable[None]: ...


async def wait_for(fake: _Fake, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Like ``fake.wait_until``, but also notices changes the fake cannot see (the database).

    ``fake.wait_until`` re-checks only when the fake is called or pushed to, so a condition on
    storage (the outbox row marked sent) would otherwise wait for the fake's next call.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        with contextlib.suppress(AssertionError):
            await fake.wait_until(predicate, 0.02)
