"""The weekly advisor summary as the scheduler sends it: who builds it, and why one was not sent.

Schedules of the built-in pseudo-flow ``advisor_summary`` (``storage.ADVISOR_SUMMARY``) send
advisors a notice instead of starting a conversation. The scheduler does not know what a
summary says: it asks a ``SummaryComposer`` for the notices of every advisor due at a tick,
at once (a school's charts are drawn side by side), and queues each (proactive) to its
advisor's chat. Without a composer nothing is sent, and ``schedule run-due`` says so
(``no_composer``). ``Scheduler(app, composer=...)`` takes another (tests do).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeAlias

from storage import PersonRecord

from .notices import Notice

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "NOTHING_TO_SEND",
    "NO_COMPOSER",
    "SummaryComposer",
    "compose_summaries",
    "default_composer",
]

SummaryComposer: TypeAlias = Callable[
    ["App", Sequence[tuple[PersonRecord, datetime]]], Sequence[Notice | None]
]
"""Builds the summaries of these advisors, each of the week its instant falls in (its
occurrence's), one per advisor in order; None: nothing to send (no advisees, say). Called
outside any transaction."""

NO_COMPOSER: Final = "no_composer"
"""Why a summary was not sent: no composer is configured."""
NOTHING_TO_SEND: Final = "nothing_to_send"
"""Why a summary was not sent: the composer had nothing for this advisor."""


def compose_summaries(
    app: App, due: Sequence[tuple[PersonRecord, datetime]]
) -> list[Notice | None]:
    """Each advisor's summary of the week their instant falls in (in their time zone), with
    its chart; None for an advisor who advises nobody."""
    from .charts import summary_charts
    from .summaries import build_summary
    from .summary_render import summary_notice

    summaries = [build_summary(app, advisor, at=instant) for advisor, instant in due]
    shown = [s for s in summaries if s.students]
    charts = iter(summary_charts(shown))
    return [summary_notice(s, next(charts)) if s.students else None for s in summaries]


def default_composer() -> SummaryComposer | None:
    """The composer every scheduler (``run``, ``worker``, ``schedule run-due``) uses unless
    given another."""
    return compose_summaries
