"""The weekly advisor summary as the scheduler sends it: who builds it, and why one was not sent.

Schedules of the built-in pseudo-flow ``advisor_summary`` (``storage.ADVISOR_SUMMARY``) send
advisors a notice instead of starting a conversation. The scheduler does not know what a
summary says: it asks a ``SummaryComposer`` for the advisor's notice at the occurrence's
instant and queues what it gets (proactive) to the advisor's chat. Without a composer nothing
is sent, and ``schedule run-due`` says so (``no_composer``).

Plug the real one in here (``default_composer``), or give one to ``Scheduler(app,
composer=...)``::

    def compose(app: App, advisor: PersonRecord, now: datetime) -> Notice | None:
        return summary_notice(build_summary(app, advisor, now), chart_png(...))
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeAlias

from storage import PersonRecord

from .notices import Notice

if TYPE_CHECKING:
    from .app import App

__all__ = ["NOTHING_TO_SEND", "NO_COMPOSER", "SummaryComposer", "default_composer"]

SummaryComposer: TypeAlias = Callable[["App", PersonRecord, datetime], Notice | None]
"""Builds one advisor's summary at an instant (the occurrence's); None: nothing to send
(no advisees, say). Called outside any transaction, once per advisor and occurrence."""

NO_COMPOSER: Final = "no_composer"
"""Why a summary was not sent: no composer is configured."""
NOTHING_TO_SEND: Final = "nothing_to_send"
"""Why a summary was not sent: the composer had nothing for this advisor."""


def default_composer() -> SummaryComposer | None:
    """The composer every scheduler (``run``, ``worker``, ``schedule run-due``) uses unless
    given another: none yet, until the summaries are wired in here."""
    return None
