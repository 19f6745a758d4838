"""The real `profilebot` command with delivery paced for tests: ``python -m tests.pacing ARGS``.

Exactly-once delivery and recovery from a crash do not depend on the rate, but at the
platforms' real rates (Telegram 25 messages/s) a fan-out to thousands takes minutes; the
real pacing is measured by bench/fanout.py instead. Read from the environment, here only:

- ``PROFILEBOT_TEST_RATE``: messages per second overall (and the shared budget), default 500;
- ``PROFILEBOT_TEST_LEASE``: seconds a claim holds messages, default 2 (a restart after a
  SIGKILL waits that long for what the dead process held);
- ``PROFILEBOT_TEST_CONCURRENCY``: sends in flight at once, default 32; with 1, at most one
  message is sent but not yet recorded as sent at any moment (the one a SIGKILL can repeat).
"""

from __future__ import annotations

import os
from typing import Any

from bot.delivery import DeliveryWorker, Pacer


def install() -> None:
    rate = float(os.environ.get("PROFILEBOT_TEST_RATE", "500"))
    lease = float(os.environ.get("PROFILEBOT_TEST_LEASE", "2"))
    concurrency = int(os.environ.get("PROFILEBOT_TEST_CONCURRENCY", "32"))
    original = DeliveryWorker.__init__

    def paced(self: DeliveryWorker, *args: Any, **kwargs: Any) -> None:
        kwargs["pacer"] = Pacer(per_address_rate=1.0, overall_rate=rate, overall_burst=1)
        kwargs["lease"] = lease
        kwargs["concurrency"] = concurrency
        original(self, *args, **kwargs)

    DeliveryWorker.__init__ = paced  # type: ignore[method-assign]


if __name__ == "__main__":
    from bot.cli import main

    install()
    main()
