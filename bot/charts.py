"""The summary's chart: one PNG of each advisee's goal progress over the term (a row per
student, a column per week) above the group's check-in rate per week.

matplotlib is imported when a chart is drawn, never at start-up (a command that draws none
loads none of it), and only through its object API on the Agg canvas: no pyplot, no global
state, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from statistics import fmean
from typing import Any, Final

from .summaries import Summary

__all__ = ["summary_chart"]

_WIDTH_IN: Final = 9.0
_ROW_IN: Final = 0.28
_MIN_ROWS_IN: Final = 1.6
_MAX_ROWS_IN: Final = 9.0
_RATE_IN: Final = 1.9
_DPI: Final = 100
_SCALE: Final = (1, 5)


def summary_chart(summary: Summary) -> bytes:
    """The PNG's bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weeks = summary.weeks[-len(summary.checkin_rate) :] if summary.checkin_rate else ()
    rows = [
        (s.person.display_name, _weekly_progress(s.goals, len(weeks))) for s in summary.students
    ]
    rows_in = min(max(_ROW_IN * len(rows), _MIN_ROWS_IN), _MAX_ROWS_IN)
    figure = Figure(figsize=(_WIDTH_IN, rows_in + _RATE_IN + 0.9), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    progress_axes, rate_axes = figure.subplots(2, 1, height_ratios=[rows_in, _RATE_IN], sharex=True)
    figure.suptitle(f"{summary.advisor.display_name}'s advisees, to {summary.week}")
    labels = [w.split("-")[1] for w in weeks]
    image = _progress(progress_axes, rows, len(weeks))
    if image is not None:  # beside both panels, so the weeks line up
        figure.colorbar(image, ax=[progress_axes, rate_axes], shrink=0.6, label="goal progress")
    _rates(rate_axes, summary, labels)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _weekly_progress(goals: Sequence[Any], weeks: int) -> list[float]:
    """Per week, the mean progress of the student's goals that week (NaN: none reported)."""
    out = []
    for k in range(weeks):
        values = [
            float(g.weekly[len(g.weekly) - weeks + k])
            for g in goals
            if isinstance(g.weekly[len(g.weekly) - weeks + k], int | float)
        ]
        out.append(fmean(values) if values else float("nan"))
    return out


def _progress(axes: Any, rows: list[tuple[str, list[float]]], weeks: int) -> Any:
    """The students' rows of weekly progress; the image drawn (None: nothing to draw)."""
    axes.set_title("Goal progress per week (mean of the student's goals, 1–5)", loc="left")
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
    axes.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=7)
    return image


def _rates(axes: Any, summary: Summary, labels: list[str]) -> None:
    axes.set_title("Check-in rate per week", loc="left")
    rates = [r.rate * 100 for r in summary.checkin_rate]
    axes.bar(range(len(rates)), rates, color="#4c72b0")
    axes.set_ylim(0, 100)
    axes.set_ylabel("% checked in")
    axes.set_xticks(range(len(labels)), labels, fontsize=7, rotation=90)
