"""An advisor's weekly summary (bot/summaries.py, bot/summary_render.py, bot/charts.py) over a
generated term with a known answer: who is urgent and why, in which order, each goal's
trend, missed check-ins; who may see it; student text escaped in every format; the chart."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.app import App
from bot.charts import summary_chart, summary_charts
from bot.clock import FrozenClock
from bot.errors import InputError, NotAllowedError
from bot.notices import FileKind, Notice, Style
from bot.summaries import (
    NotAnAdvisorError,
    Reason,
    Summary,
    Week,
    build_summary,
    summary_json,
)
from bot.summary_render import (
    render_summary,
    sparkline,
    summary_html,
    summary_markdown,
    summary_notice,
    summary_text,
)
from bot.summary_schedule import compose_summaries
from storage import Database, PersonRecord
from tests.flows_app import app_with_flows
from tests.summary_term import Term, week_day, weeks_before

WEEK = "2026-W49"  # Monday 30 November to Sunday 6 December 2026
FRIDAY_AFTERNOON = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
TERM = weeks_before(WEEK, 10)  # check-ins since 2026-W40
HELD_BACK = "<script>alert(1)</script> *bold* <!channel> & _under_ [x](y)"


@dataclass
class School:
    app: App
    clock: FrozenClock
    advisor: PersonRecord
    students: dict[str, PersonRecord]


def _steady(term: Term, student: PersonRecord, goal: int, weeks: list[str], **kw: object) -> None:
    for week in weeks:
        term.checkin(student, week_day(week), progress={goal: 3}, **kw)  # type: ignore[arg-type]


@pytest.fixture
def school(database: Database, tmp_path: Path) -> School:
    """Eleven advisees of Rosa (Berlin), each with one story of the term; Olga advises Zed."""
    clock = FrozenClock(FRIDAY_AFTERNOON)
    app = app_with_flows(database, tmp_path / "flows", clock, {})
    term = Term(database)
    rosa = term.person("Rosa Rivera", "advisor", "rosa", tz="Europe/Berlin")
    term.person("Olga Other", "advisor", "olga")
    term.person("Tina Teach", "teacher", "tina")
    zed = term.person("Zed Zimmer", "student", "zed", advisor="olga")
    names = ["Ana", "Bo", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kim"]
    s = {n: term.person(f"{n} Lee", "student", n.lower(), advisor="rosa") for n in names}
    goals = {n: term.goal(s[n], f"{n}'s goal") for n in names}
    before, this = TERM[:-1], TERM[-1]
    for n in ("Ana", "Bo", "Eve", "Ivy"):
        _steady(term, s[n], goals[n], before)
    _steady(term, s["Ana"], goals["Ana"], [this], wants_meeting=True)
    term.checkin(s["Bo"], week_day(this), note=HELD_BACK, progress={goals["Bo"]: 3})
    _steady(term, s["Cy"], goals["Cy"], TERM[:-1])  # missed this week only
    _steady(term, s["Dee"], goals["Dee"], TERM[:-2])  # missed two weeks in a row
    term.checkin(s["Eve"], week_day(this), mood=2, progress={goals["Eve"]: 3})
    _steady(term, s["Fay"], goals["Fay"], before, mood=5)
    term.checkin(s["Fay"], week_day(this), mood=3, progress={goals["Fay"]: 3})
    for week, progress in zip(TERM, [3] * 8 + [1, 1], strict=True):
        term.checkin(s["Gus"], week_day(week), progress={goals["Gus"]: progress})
    for week, progress in zip(TERM, [5] * 7 + [4, 3, 2], strict=True):
        term.checkin(
            s["Hal"],
            week_day(week),
            progress={goals["Hal"]: progress},
            next_steps={goals["Hal"]: "ask"},
        )
    term.checkin(s["Ivy"], week_day(this), progress={goals["Ivy"]: 3})
    term.fact(s["Ivy"], "challenges", ["maths"], week_day(TERM[2]))
    term.fact(s["Ivy"], "challenges", ["maths", "tests"], week_day(this))
    term.fact(s["Ivy"], "identity.family_culture", "private to Ivy", week_day(this))
    term.fact(s["Ivy"], "secret", "stored private", week_day(this), private=True)
    jo_paused = term.goal(s["Jo"], "Jo's paused goal", "paused")
    for week, progress in zip(TERM[:-1], [1, 1, 2, 2, 3, 3, 4, 4, 5], strict=True):
        term.checkin(
            s["Jo"],
            week_day(week),
            progress={goals["Jo"]: progress, jo_paused: 1},
            next_steps={goals["Jo"]: f"step {week}"},
        )
    # Sunday 23:30 UTC is already Monday in Berlin: Jo's check-in of Rosa's week
    sunday_night = datetime.combine(week_day(this, 1).date() - timedelta(days=1), time(23, 30), UTC)
    term.checkin(s["Jo"], sunday_night, progress={goals["Jo"]: 5, jo_paused: 1})
    term.fact(s["Jo"], "challenges", ["maths"], week_day(TERM[0]))
    term.fact(s["Jo"], "challenges", ["maths"], week_day(this))  # saved again, unchanged
    _steady(term, s["Kim"], goals["Kim"], before)
    term.checkin(
        s["Kim"],
        week_day(this),
        mood=1,
        note="Can we talk?",
        wants_meeting=True,
        progress={goals["Kim"]: 3},
    )
    term.checkin(zed, week_day(this), wants_meeting=True)
    return School(app, clock, rosa, s)


def _by_name(summary: Summary) -> dict[str, list[str]]:
    return {st.person.first_name: [r.value for r in st.urgent] for st in summary.students}


def test_urgent_students_first_each_with_why(school: School) -> None:
    summary = build_summary(school.app, "rosa")
    assert summary.week == WEEK and summary.timezone == "Europe/Berlin"
    assert [st.person.handle for st in summary.students] == [
        "kim",
        "ana",
        "bo",
        "cy",
        "dee",
        "eve",
        "fay",
        "gus",
        "hal",
        "ivy",
        "jo",
    ]
    assert _by_name(summary) == {
        "Kim": ["wants_meeting", "note", "low_mood"],
        "Ana": ["wants_meeting"],
        "Bo": ["note"],
        "Cy": ["no_checkin"],
        "Dee": ["no_checkin"],
        "Eve": ["low_mood"],
        "Fay": ["low_mood"],
        "Gus": ["goal_stalled"],
        "Hal": ["goal_stalled"],
        "Ivy": ["new_challenge"],
        "Jo": [],
    }
    assert "zed" not in {st.person.handle for st in summary.students}


def test_what_each_student_line_holds(school: School) -> None:
    students = {st.person.first_name: st for st in build_summary(school.app, "rosa").students}
    assert students["Cy"].missed_weeks == 1 and students["Dee"].missed_weeks == 2
    assert not students["Cy"].checked_in and students["Cy"].mood is None
    assert students["Jo"].checked_in and students["Jo"].missed_weeks == 0
    assert students["Fay"].mood == 3 and students["Fay"].mood_average == 5
    assert students["Bo"].note_for_advisor == HELD_BACK and students["Ana"].wants_meeting
    [hal] = students["Hal"].goals
    assert hal.trend == (5, 5, 5, 4, 3, 2) and hal.progress == 2 and hal.next_step == "ask"
    assert hal.stalled and sparkline(hal.trend) == "███▆▅▃"
    [gus] = students["Gus"].goals
    assert gus.trend == (3, 3, 3, 3, 1, 1) and gus.stalled
    [cy] = students["Cy"].goals
    assert cy.trend == (3, 3, 3, 3, 3, None) and sparkline(cy.trend) == "▅▅▅▅▅·"
    jo, paused = students["Jo"].goals
    assert jo.trend == (3, 3, 4, 4, 5, 5) and jo.next_step == "step 2026-W48"
    assert paused.status == "paused" and not paused.stalled  # only active goals stall
    assert [(c.field, c.value) for c in students["Ivy"].profile_changes] == [
        ("challenges", ["maths", "tests"])
    ]
    assert students["Ivy"].new_challenges == ("Tests and exams",)
    assert students["Jo"].profile_changes == ()


def test_names_sort_case_and_accents_aside(school: School, database: Database) -> None:
    term = Term(database)
    for name, handle in (("émile Roux", "emile"), ("Éva Kis", "eva"), ("adam Ek", "adam")):
        student = term.person(name, "student", handle, advisor="rosa")
        term.checkin(student, week_day(WEEK))
    everyone = [st.person.handle for st in build_summary(school.app, "rosa").others]
    assert everyone == ["adam", "emile", "eva", "jo"]


def test_the_groups_check_in_rate_week_by_week(school: School) -> None:
    rates = build_summary(school.app, "rosa").checkin_rate
    assert [r.week for r in rates] == TERM
    assert [(r.checked_in, r.students) for r in rates[-3:]] == [(11, 11), (10, 11), (9, 11)]


def test_weeks_before_a_student_joined_are_not_missed_check_ins(
    school: School, database: Database
) -> None:
    """Lu joined on Tuesday of the week before, Max this Wednesday: neither missed 20 weeks;
    the weeks before they joined are as if they were not there."""
    term = Term(database)
    lu = term.person("Lu New", "student", "lu", advisor="rosa", joined=week_day(TERM[-2], 2))
    term.person("Max New", "student", "max", advisor="rosa", joined=week_day(TERM[-1]))
    students = {st.person.handle: st for st in build_summary(school.app, "rosa").students}
    assert students["lu"].missed_weeks == 2 and students["max"].missed_weeks == 1
    term.checkin(lu, week_day(TERM[-2], 5))
    lu_now = {st.person.handle: st for st in build_summary(school.app, "rosa").students}["lu"]
    assert lu_now.missed_weeks == 1
    rates = build_summary(school.app, "rosa").checkin_rate
    assert [(r.checked_in, r.students) for r in rates[-3:]] == [(11, 11), (11, 12), (9, 13)]
    earlier = build_summary(school.app, "rosa", TERM[-3])
    assert {st.person.handle for st in earlier.students} == {
        st.handle for st in school.students.values()
    }
    assert all(r.students == 11 for r in earlier.checkin_rate)


def test_an_earlier_week_and_a_bad_one(school: School) -> None:
    earlier = build_summary(school.app, "rosa", "2026-W48")
    assert _by_name(earlier)["Dee"] == ["no_checkin"] and _by_name(earlier)["Cy"] == []
    assert build_summary(school.app, "rosa", Week.parse("2026w47")).week == "2026-W47"
    for bad in ("2026-W54", "2025-W53", "next week", "2026-12-04", "２０２６-W49", "2026-W４9"):
        with pytest.raises(InputError, match="is not an ISO week"):
            build_summary(school.app, "rosa", bad)


@pytest.mark.parametrize("far", ["0001-W01", "1899-W52", "9999-W52", "3000-W01"])
def test_a_week_out_of_range_is_one_clear_error(school: School, far: str) -> None:
    with pytest.raises(InputError, match=rf"^week '{far}' is out of range: use a week of 1900"):
        build_summary(school.app, "rosa", far)


def test_a_week_that_has_not_started_is_refused(school: School) -> None:
    """Not a summary flagging everyone "no check-in" for a week nobody could check in yet."""
    for later in ("2027-W10", Week.parse("2026-W50")):
        with pytest.raises(InputError, match="has not started yet: the current week is 2026-W49"):
            build_summary(school.app, "rosa", later)
    school.clock.set(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))  # Monday 00:30 in Berlin
    assert build_summary(school.app, "rosa", "2026-W50").week == "2026-W50"


def test_the_current_week_is_the_advisors(school: School) -> None:
    school.clock.set(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))  # Monday 00:30 in Berlin
    assert build_summary(school.app, "rosa").week == "2026-W50"
    assert build_summary(school.app, "olga").week == "2026-W49"  # DEFAULT_TIMEZONE: UTC


@pytest.mark.parametrize("who", ["ana", "olga", "tina"])
def test_only_the_advisor_or_an_admin_may_see_it(school: School, who: str) -> None:
    with pytest.raises(NotAllowedError) as refused:
        build_summary(school.app, "rosa", actor=school.app.actor(who))
    assert str(refused.value) == (
        "Sorry, only the advisor themself or an admin can see an advisor's weekly summary."
    )
    assert build_summary(school.app, "rosa", actor=school.app.actor("rosa")).students
    assert build_summary(school.app, "rosa", actor=None).students


def test_someone_who_advises_nobody_has_no_summary(school: School) -> None:
    with pytest.raises(NotAnAdvisorError, match="tina is not an advisor"):
        build_summary(school.app, "tina")


def test_the_scheduler_composes_each_advisors_week_of_their_instant(school: School) -> None:
    """Each advisor is summed up for the week of their own instant, in their time zone: the
    same summary and chart ``summary`` gives for that week; None for someone advising nobody."""
    lone = Term(school.app.db).person("Lou New", "advisor", "lou")
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # Monday of W49 in Berlin
    due = [(school.advisor, sunday_night), (school.app.people.get("olga"), sunday_night)]
    rosa, olga, nobody = compose_summaries(school.app, [*due, (lone, FRIDAY_AFTERNOON)])
    assert nobody is None and rosa is not None and olga is not None
    assert rosa == summary_notice(
        build_summary(school.app, "rosa", WEEK),
        summary_chart(build_summary(school.app, "rosa", WEEK)),
    )
    assert "2026-W48" in olga.title  # UTC: still Sunday


def test_json_is_products_shape(school: School) -> None:
    summary = build_summary(school.app, "rosa")
    data = summary_json(summary)
    assert summary.to_json() == data
    assert set(data) == {"advisor", "week", "students"}
    assert data["advisor"] == {"handle": "rosa", "display_name": "Rosa Rivera"}
    kim = data["students"][0]
    assert set(kim) == {
        "person",
        "urgent",
        "checked_in",
        "mood",
        "energy",
        "note_for_advisor",
        "wants_meeting",
        "goals",
        "profile_changes",
    }
    assert kim["person"] == {"handle": "kim", "display_name": "Kim Lee"}
    assert kim["urgent"] == ["wants_meeting", "note", "low_mood"]
    assert kim["goals"] == [
        {
            "title": "Kim's goal",
            "status": "active",
            "progress": 3,
            "trend": [3] * 6,
            "next_step": None,
        }
    ]
    ivy = next(st for st in data["students"] if st["person"]["handle"] == "ivy")
    assert ivy["profile_changes"] == [{"field": "challenges", "value": ["maths", "tests"]}]
    assert "private to Ivy" not in json.dumps(data) and "stored private" not in json.dumps(data)
    assert set(Reason) == {Reason(r) for st in data["students"] for r in st["urgent"]}


def test_the_notice_urgent_first_with_reasons_then_one_line_each(school: School) -> None:
    notice = summary_notice(build_summary(school.app, "rosa"), b"\x89PNG fake")
    urgent, others, rates = notice.sections
    assert urgent.title == "Needs you this week (10)"
    assert others.title == "Everyone else (1)" and len(others.lines) == 1
    texts = [line.text for line in urgent.lines]
    assert texts[0] == "Kim Lee: wants to meet; note: “Can we talk?”; low mood (1)"
    assert "Dee Lee: no check-in two weeks in a row" in texts
    assert "Cy Lee: no check-in this week" in texts
    assert "Fay Lee: mood 3, down from 5.0 on average" in texts
    assert "Hal Lee: goal stalled: Hal's goal" in texts
    assert "Ivy Lee: new challenge: Tests and exams" in texts
    assert others.lines[0].spans[0].style is Style.BOLD
    assert "Jo's goal ▅▅▆▆██ 5, next: step 2026-W48" in others.lines[0].text
    assert rates.lines[0].text == "This week: 9 of 11 checked in (82%)"
    [chart] = notice.files
    assert chart.kind is FileKind.PHOTO and chart.mime_type == "image/png"
    bo_line = next(line for line in urgent.lines if line.text.startswith("Bo Lee"))
    assert HELD_BACK in [span.text for span in bo_line.spans]  # raw: each adapter escapes
    assert Notice.from_json(json.loads(json.dumps(notice.to_json()))) == notice  # the outbox


def test_text_shows_sparklines(school: School) -> None:
    text = summary_text(build_summary(school.app, "rosa"))
    assert "Hal's goal ███▆▅▃ 2, next: ask" in text
    assert HELD_BACK in text  # the terminal shows it as typed
    assert "private to Ivy" not in text and "stored private" not in text


def test_markdown_escapes_student_text(school: School) -> None:
    md = summary_markdown(build_summary(school.app, "rosa"))
    assert r"\<script\>alert\(1\)\</script\> \*bold\* \<\!channel\> \& \_under\_ \[x\]\(y\)" in md
    assert "<script>" not in md and "*bold*" not in md and "<!channel>" not in md
    assert "## Needs you this week \\(10\\)" in md and "- **Kim Lee**" in md


def test_markdown_keeps_its_lines_in_commonmark(school: School) -> None:
    """Each student is one list item; an urgent one's details on a line of their own in it
    (a hard break, not joined onto the reasons); the check-in lines stay two lines."""
    from markdown_it import MarkdownIt

    summary = build_summary(school.app, "rosa")
    tokens = MarkdownIt("commonmark").parse(summary_markdown(summary))
    # list_item_open, paragraph_open, inline: each item's text
    items = [tokens[k + 2] for k, t in enumerate(tokens) if t.type == "list_item_open"]
    assert len(items) == len(summary.students)
    for item, student in zip(items, summary.students, strict=True):
        lines = [c.type for c in item.children or []].count("hardbreak") + 1
        assert item.content.startswith(f"**{student.person.display_name}**")
        assert lines == (2 if student.urgent else 1)
        if student.urgent:
            assert item.content.split("\\\n")[1].startswith(("checked in", "no check"))
    rates = next(t for t in tokens if t.type == "inline" and t.content.startswith("This week"))
    assert [c.type for c in rates.children or []].count("hardbreak") == 1


def test_html_escapes_student_text(school: School) -> None:
    page = summary_html(build_summary(school.app, "rosa"), b"\x89PNG")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; *bold* &lt;!channel&gt; &amp; _under_" in page
    assert "<script>" not in page and "<!channel>" not in page
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "no check-in two weeks in a row" in page and "███▆▅▃" in page


def test_every_format_renders(school: School) -> None:
    summary = build_summary(school.app, "rosa")
    assert json.loads(render_summary(summary, "json")) == summary_json(summary)
    assert render_summary(summary, "text") == summary_text(summary)
    assert render_summary(summary, "md") == summary_markdown(summary)
    assert render_summary(summary, "html").startswith("<!DOCTYPE html>")


def test_an_advisor_without_advisees_gets_an_empty_summary(school: School) -> None:
    lone = Term(school.app.db).person("Lou New", "advisor", "lou")
    summary = build_summary(school.app, lone)
    assert summary.students == () and summary_notice(summary).plain_text().endswith(
        "No advisees yet."
    )
    assert summary_chart(summary).startswith(b"\x89PNG")
    assert "No advisees yet." in summary_html(summary)


def test_the_chart_is_a_sane_png(school: School) -> None:
    from matplotlib.image import imread

    png = summary_chart(build_summary(school.app, "rosa"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert 10_000 < len(png) < 1_000_000
    height, width, _ = imread(io.BytesIO(png)).shape
    assert width == 900 and 300 <= height <= 1_300


def _ink_bands(image: Image.Image) -> list[tuple[int, int]]:
    """The runs of pixel rows with anything drawn in them, top first (end excluded)."""
    ink = [
        any(image.getpixel((x, y)) < 200 for x in range(image.width)) for y in range(image.height)
    ]
    bands, start = [], None
    for y, drawn in enumerate([*ink, False]):
        if drawn and start is None:
            start = y
        elif not drawn and start is not None:
            bands.append((start, y))
            start = None
    return bands


def test_a_big_groups_chart_keeps_names_and_titles_whole(school: School) -> None:
    """70 advisees with long names: each name cut with an ellipsis inside the chart (nothing
    drawn at its left edge), and the title and the first panel's each a line of their own."""
    summary = build_summary(school.app, "rosa")
    long = "Maximiliana Wolfensteiner-Oyelaran de la Cruz"
    students = [
        replace(st, person=replace(st.person, display_name=f"{long} {k}"))
        for k, st in enumerate(summary.students * 7)
    ][:70]
    png = summary_chart(replace(summary, students=tuple(students)))
    image = Image.open(io.BytesIO(png)).convert("L")
    assert all(image.getpixel((x, y)) == 255 for x in range(3) for y in range(image.height))
    title, heading, *_ = _ink_bands(image)
    one_line = 20  # pixels: a line of 12-point text at 100 dpi, with room
    assert title[1] - title[0] < one_line and heading[1] - heading[0] < one_line


def test_a_schools_charts_in_parallel_are_the_same_charts(school: School) -> None:
    summaries = [build_summary(school.app, "rosa", week) for week in weeks_before(WEEK, 8)]
    assert summary_charts(summaries, workers=2) == [summary_chart(s) for s in summaries]
