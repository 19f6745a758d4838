"""An advisor's summary as people read it: a chat ``Notice``, plain text, Markdown, HTML.

Student text (a note, a goal, a next step, a profile value) is only ever shown, never obeyed:
the Notice keeps it raw in its spans (each chat adapter escapes for its platform), Markdown
escapes every character Markdown would read, and the HTML page is rendered by Jinja2 with
autoescape on. The JSON is ``bot.summaries.summary_json``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .notices import FileKind, Line, Notice, NoticeFile, Section, Span, Style
from .summaries import LOW_MOOD, Reason, StudentSummary, Summary, summary_json

if TYPE_CHECKING:
    from jinja2 import Template

__all__ = [
    "FORMATS",
    "reason_spans",
    "render_summary",
    "sparkline",
    "summary_html",
    "summary_markdown",
    "summary_notice",
    "summary_text",
]

FORMATS: Final = ("text", "md", "html", "json")
"""What ``profilebot summary --format`` writes."""

_BLOCKS: Final = "▁▂▃▄▅▆▇█"
_GAP: Final = "·"
_SCALE: Final = (1, 5)
"""The check-in's scales (mood, energy, progress) run from 1 to 5."""
_MARKDOWN_SPECIAL: Final = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")
_TEMPLATES: Final = Path(__file__).parent / "templates"


def sparkline(values: Iterable[Any]) -> str:
    """``[1, 3, None, 5]`` -> ``▁▄·█``: one block per week on the 1-5 scale, ``·`` for none."""
    low, high = _SCALE
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(_GAP)
            continue
        share = (min(max(value, low), high) - low) / (high - low)
        out.append(_BLOCKS[round(share * (len(_BLOCKS) - 1))])
    return "".join(out)


def _rate_line(values: Iterable[float]) -> str:
    return "".join(_BLOCKS[round(v * (len(_BLOCKS) - 1))] for v in values)


# ----------------------------------------------------------------------------- the Notice


def summary_notice(summary: Summary, chart_png: bytes | None = None) -> Notice:
    """The chat message: who needs the advisor and why, then everyone else one line each,
    the group's check-ins, and the chart (a photo) when given."""
    sections = []
    if not summary.students:
        sections.append(Section(None, (Line.of("No advisees yet."),)))
    if summary.urgent:
        lines: list[Line] = []
        for student in summary.urgent:
            lines.append(Line((_name(student), Span(": "), *_reasons(student)), bullet=True))
            lines.append(Line((Span("    "), *_details(student))))
        sections.append(Section(f"Needs you this week ({len(summary.urgent)})", tuple(lines)))
    if summary.others:
        title = "Everyone else" if summary.urgent else "Everyone"
        sections.append(
            Section(
                f"{title} ({len(summary.others)})",
                tuple(
                    Line((_name(s), Span(" — "), *_details(s)), bullet=True) for s in summary.others
                ),
            )
        )
    if summary.students:
        sections.append(Section("Check-ins", _rate_lines(summary)))
    files: tuple[NoticeFile, ...] = ()
    if chart_png is not None:
        files = (
            NoticeFile(
                FileKind.PHOTO,
                f"summary-{summary.week}.png",
                "image/png",
                chart_png,
                caption="Goal progress and check-ins over the term",
            ),
        )
    return Notice(_title(summary), tuple(sections), files)


def _title(summary: Summary) -> str:
    return (
        f"Weekly summary for {summary.advisor.display_name}: {summary.week} "
        f"(week of {summary.starts_on:%a %d %b %Y})"
    )


def _name(student: StudentSummary) -> Span:
    return Span(student.person.display_name, Style.BOLD)


def _rate_lines(summary: Summary) -> tuple[Line, ...]:
    this_week = summary.checkin_rate[-1]
    lines = [
        Line.of(
            f"This week: {this_week.checked_in} of {this_week.students} checked in "
            f"({this_week.rate:.0%})"
        )
    ]
    if len(summary.checkin_rate) > 1:
        rates = [r.rate for r in summary.checkin_rate]
        lines.append(
            Line.of(
                f"Since {summary.checkin_rate[0].week}: {_rate_line(rates)} "
                f"(share of the group checking in, week by week)"
            )
        )
    return tuple(lines)


def reason_spans(student: StudentSummary, reason: Reason) -> tuple[Span, ...]:
    """Why ``student`` needs their advisor, for one ``reason`` (student text as raw spans)."""
    if reason is Reason.WANTS_MEETING:
        return (Span("wants to meet"),)
    if reason is Reason.NOTE:
        return (Span("note: “"), Span(student.note_for_advisor or ""), Span("”"))
    if reason is Reason.NO_CHECKIN:
        return (Span(_missed(student.missed_weeks)),)
    if reason is Reason.LOW_MOOD:
        if student.mood_average is not None and not _at_most_low(student.mood):
            return (Span(f"mood {student.mood}, down from {student.mood_average:.1f} on average"),)
        return (Span(f"low mood ({student.mood})"),)
    if reason is Reason.GOAL_STALLED:
        titles = [g.title or "(untitled goal)" for g in student.stalled_goals]
        return (Span("goal stalled: "), *_joined(titles))
    return (Span("new challenge: "), *_joined(student.new_challenges))


def _at_most_low(mood: Any) -> bool:
    return isinstance(mood, int | float) and mood <= LOW_MOOD


def _missed(weeks: int) -> str:
    if weeks <= 1:
        return "no check-in this week"
    if weeks == 2:
        return "no check-in two weeks in a row"
    return f"no check-in {weeks} weeks in a row"


def _joined(texts: Sequence[str]) -> list[Span]:
    spans: list[Span] = []
    for k, text in enumerate(texts):
        if k:
            spans.append(Span(", "))
        spans.append(Span(text))
    return spans


def _reasons(student: StudentSummary) -> list[Span]:
    spans: list[Span] = []
    for k, reason in enumerate(student.urgent):
        if k:
            spans.append(Span("; "))
        spans.extend(reason_spans(student, reason))
    return spans


def _details(student: StudentSummary) -> list[Span]:
    """Checked in or not, mood, energy, each goal with its trend, the week's profile changes."""
    parts: list[list[Span]] = [[Span("checked in" if student.checked_in else "no check-in")]]
    if student.mood is not None:
        parts.append([Span(f"mood {student.mood}")])
    if student.energy is not None:
        parts.append([Span(f"energy {student.energy}")])
    for goal in student.goals:
        spans = [Span(goal.title or "(untitled goal)", Style.ITALIC)]
        spans.append(Span(f" {sparkline(goal.trend)} {_value(goal.progress)}"))
        if goal.status != "active":
            spans.append(Span(f" ({goal.status})"))
        if goal.next_step:
            spans += [Span(", next: "), Span(goal.next_step)]
        parts.append(spans)
    if student.profile_changes:
        spans = [Span("profile: ")]
        for k, change in enumerate(student.profile_changes):
            if k:
                spans.append(Span("; "))
            spans += [Span(f"{change.field} → "), Span(change.shown)]
        parts.append(spans)
    out: list[Span] = []
    for k, spans in enumerate(parts):
        if k:
            out.append(Span(" · "))
        out.extend(spans)
    return out


def _value(value: Any) -> str:
    return "–" if value is None else str(value)


# ----------------------------------------------------------------------------- text formats


def summary_text(summary: Summary) -> str:
    """Plain text, as the terminal shows it (the Notice's own plain rendering)."""
    return summary_notice(summary).plain_text()


def summary_markdown(summary: Summary) -> str:
    """CommonMark; every span's text escaped, so student text is shown as written. A student
    is a list item; a line under a bullet stays in its item, and lines of a paragraph stay
    lines, each by a hard break (a trailing backslash)."""
    notice = summary_notice(summary)
    out = [f"# {_md(notice.title)}"]
    for section in notice.sections:
        out.append("")
        if section.title:
            out += [f"## {_md(section.title)}", ""]
        in_item = previous = False
        for line in section.lines:
            text = "".join(_md_span(s) for s in line.spans).strip()
            if line.bullet:
                out.append(f"- {text}")
                in_item = True
            elif text:
                if previous:
                    out[-1] += "\\"
                out.append(f"  {text}" if in_item else text)
            previous = bool(text) or line.bullet
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))


def _md_span(span: Span) -> str:
    text = _md(span.text)
    if not text.strip():
        return text
    if span.style is Style.BOLD:
        return f"**{text}**"
    if span.style is Style.ITALIC:
        return f"*{text}*"
    return text


@cache
def _template() -> Template:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sparkline"] = sparkline
    return env.get_template("summary.html.j2")


def summary_html(summary: Summary, chart_png: bytes | None = None) -> str:
    """A standalone HTML page (the chart inlined when given)."""
    reasons = {
        s.person.id: ["".join(x.text for x in reason_spans(s, r)) for r in s.urgent]
        for s in summary.urgent
    }
    chart = base64.b64encode(chart_png).decode("ascii") if chart_png else None
    return _template().render(
        title=_title(summary),
        summary=summary,
        reasons=reasons,
        rate=summary.checkin_rate[-1] if summary.checkin_rate else None,
        chart=chart,
    )


def render_summary(summary: Summary, fmt: str, chart_png: bytes | None = None) -> str:
    """``summary`` in one of ``FORMATS`` (json: the document, indented)."""
    if fmt == "json":
        import json

        return json.dumps(summary_json(summary), ensure_ascii=False, indent=2)
    if fmt == "md":
        return summary_markdown(summary)
    if fmt == "html":
        return summary_html(summary, chart_png)
    return summary_text(summary)
