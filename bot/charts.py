"""The summary's chart: one PNG of each advisee's goal progress over the term (a row per
student, a column per week) above the group's check-in rate per week.

matplotlib is imported when a chart is drawn, never at start-up (a command that draws none
loads none of it), and only through its object API on the Agg canvas: no pyplot, no global
state, no display needed. The panels sit at fixed places (no layout engine, which would draw
the figure twice to measure it): a school's charts are drawn by the dozen.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from statistics import fmean
from typing import Any, Final

from .summaries import GoalSummary, Summary

__all__ = ["summary_chart", "summary_charts"]

_DPI: Final = 100
_WIDTH: Final = 9.0
"""Inches, like every size here."""
_LEFT: Final = 1.7  # the students' names
_RIGHT: Final = 1.1  # the colour bar
_TOP: Final = 0.75  # the title and the first panel's
_GAP: Final = 0.45  # the second panel's title
_BOTTOM: Final = 0.6  # the weeks
_TITLE_AT: Final = 0.12
"""The title's top, below the figure's."""
_HEADING_ABOVE: Final = 0.06
"""A panel's title, above the panel."""
_NAME_CHARACTERS: Final = 24
"""A longer name is cut to this many, an ellipsis last: it fits in ``_LEFT``."""
_ROW: Final = 0.26
_ROWS_MIN: Final = 1.2
_ROWS_MAX: Final = 9.0
_RATES: Final = 1.6
_SCALE: Final = (1, 5)
_PARALLEL_FROM: Final = 8
"""Fewer charts than this are drawn here: starting the processes would cost more."""
_LABELLED_WEEKS: Final = 10
"""Up to this many weeks each is labelled; beyond, every other one."""


def summary_chart(summary: Summary) -> bytes:
    """The PNG's bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weeks = summary.weeks[-len(summary.checkin_rate) :] if summary.checkin_rate else ()
    rows = [
        (_short(s.person.display_name), _weekly_progress(s.goals, len(weeks)))
        for s in summary.students
    ]
    rows_in = min(max(_ROW * len(rows), _ROWS_MIN), _ROWS_MAX)
    height = _TOP + rows_in + _GAP + _RATES + _BOTTOM
    figure = Figure(figsize=(_WIDTH, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    plot_width = _WIDTH - _LEFT - _RIGHT
    progress_axes = figure.add_axes(
        (_LEFT / _WIDTH, (_BOTTOM + _RATES + _GAP) / height, plot_width / _WIDTH, rows_in / height)
    )
    rate_axes = figure.add_axes(
        (_LEFT / _WIDTH, _BOTTOM / height, plot_width / _WIDTH, _RATES / height)
    )
    figure.suptitle(
        f"{summary.advisor.display_name}'s advisees, to {summary.week}",
        y=1 - _TITLE_AT / height,
        va="top",
    )
    image = _progress(progress_axes, rows, len(weeks))
    if image is not None:
        bar = figure.add_axes(
            (
                (_WIDTH - _RIGHT + 0.25) / _WIDTH,
                _BOTTOM / height,
                0.15 / _WIDTH,
                (height - _TOP - _BOTTOM) / height,
            )
        )
        figure.colorbar(
            image, cax=bar, label="goal progress", ticks=range(_SCALE[0], _SCALE[1] + 1)
        )
    _rates(rate_axes, summary, [w.split("-")[1] for w in weeks])
    out = io.BytesIO()
    figure.savefig(out, format="png", pil_kwargs={"compress_level": 1})
    return out.getvalue()


def summary_charts(summaries: Sequence[Summary], *, workers: int | None = None) -> list[bytes]:
    """The charts of many summaries (a school's week), in order, drawn by ``workers``
    processes (default: one per core): matplotlib draws in Python, on one core at a time."""
    workers = min(workers or os.cpu_count() or 1, len(summaries))
    if workers <= 1 or len(summaries) < _PARALLEL_FROM:
        return [summary_chart(s) for s in summaries]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": a fresh interpreter, not a fork of this one with its database threads
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(summary_chart, summaries, chunksize=4))


def _weekly_progress(goals: Sequence[GoalSummary], weeks: int) -> list[float]:
    """Per week, the mean progress of the student's goals that week (NaN: none reported)."""
    out = []
    for k in range(weeks):
        values = [
            float(value)
            for value in (g.weekly[len(g.weekly) - weeks + k] for g in goals)
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        out.append(fmean(values) if values else float("nan"))
    return out


def _progress(axes: Any, rows: list[tuple[str, list[float]]], weeks: int) -> Any:
    """The students' rows of weekly progress; the image drawn (None: nothing to draw)."""
    _heading(axes, "Goal progress per week (mean of the student's goals, 1–5)")
    axes.set_xticks([])
    if not rows or not weeks:
        axes.text(0.5, 0.5, "no advisees yet", ha="center", va="center")
        axes.set_yticks([])
        return None
    image = axes.imshow(
        [values for _, values in rows],
        aspect="auto",
        cmap="viridis",
        vmin=_SCALE[0],
        vmax=_SCALE[1],
        interpolation="nearest",
    )
    axes.set_yticks([])
    beside = axes.get_yaxis_transform()  # x in the axes, y in rows
    for row, (name, _) in enumerate(rows):  # plain texts: a tick per name costs four artists
        axes.text(-0.01, row, name, transform=beside, ha="right", va="center", fontsize=7)
    return image


def _short(name: str) -> str:
    """The name, cut with an ellipsis when longer than ``_NAME_CHARACTERS``."""
    if len(name) <= _NAME_CHARACTERS:
        return name
    return name[: _NAME_CHARACTERS - 1].rstrip() + "…"


def _heading(axes: Any, text: str) -> None:
    """A panel's title, a fixed distance above it whatever its height (``set_title`` would
    measure the axes again)."""
    figure = axes.get_figure()
    left, top = axes.get_position().x0, axes.get_position().y1
    above = _HEADING_ABOVE / figure.get_figheight()
    figure.text(left, top + above, text, ha="left", va="bottom", fontsize=11)


def _rates(axes: Any, summary: Summary, labels: list[str]) -> None:
    _heading(axes, "Check-in rate per week")
    rates = [r.rate * 100 for r in summary.checkin_rate]
    axes.bar(range(len(rates)), rates, color="#4c72b0")
    axes.set_xlim(-0.5, len(rates) - 0.5)  # the weeks line up with the progress columns
    axes.set_ylim(0, 100)
    axes.set_yticks((0, 50, 100))
    axes.set_ylabel("% checked in")
    every = 1 if len(labels) <= _LABELLED_WEEKS else 2  # the latest week always labelled
    shown = range(len(labels) - 1, -1, -every)
    axes.set_xticks(list(shown), [labels[k] for k in shown], fontsize=7, rotation=90)
