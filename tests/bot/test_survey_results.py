"""Survey results (bot/survey_results.py and `profilebot survey results`), on SQLite and
PostgreSQL: counts per option, free text, completion, anonymity and its threshold of 5,
groups by an answer, who may see them, private steps, and student text kept literal in every
format."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App
from bot.clock import FrozenClock
from bot.errors import InputError, NotAllowedError
from bot.notices import Span
from bot.survey_results import results_notice, survey_results
from bot.surveys import Surveys
from dialogues import Inbound
from storage import Database, RosterEntry
from tests.flows_app import app_with_flows

NOON = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
HELD_BACK = "<script>alert(1)</script> *bold* <!channel> & co"

CLUBS = """
id: clubs
version: 1
title: Clubs
steps:
  - id: sport
    ask: Favourite sport?
    type: choice
    options:
      - football
      - swimming
      - {value: robotics, label: "Robotics club"}
  - id: likes
    ask: What do you like?
    type: multi_choice
    options: [art, music, robotics]
  - id: fun
    ask: How much fun was this term?
    type: scale
    min: 1
    max: 5
    labels: {1: meh, 5: great}
  - id: again
    ask: Would you join again?
    type: yes_no
  - id: why
    ask: Why?
    type: text
  - id: home
    ask: Anything about home we should know?
    type: text
    private: true
    save: profile.home_life
"""
ANONYMOUS = CLUBS.replace("id: clubs", "id: clubs_anon").replace(
    "steps:", "settings:\n  anonymous: true\nsteps:", 1
)
STUDENTS = ["ana", "bo", "cy", "di", "ed", "fay"]
# sport, likes, fun, again, why, home (private)
ANSWERS: dict[str, list[str]] = {
    "ana": ["football", "1, 3", "5", "yes", HELD_BACK, "my gran lives with us"],
    "bo": ["3", "3", "4", "no", "robots!", "secret"],
    "cy": ["swimming", "2", "4", "yes", "water", "secret"],
    "di": ["robotics", "1, 2, 3", "1", "yes", "build things", "secret"],
    "ed": ["football", "2", "2", "no", "friends", "secret"],
    "fay": ["robotics", "1", "3", "yes", "coding", "secret"],
}


@pytest.fixture
def app(database: Database, tmp_path: Path) -> App:
    app = app_with_flows(
        database,
        tmp_path / "flows",
        FrozenClock(NOON),
        {"clubs": CLUBS, "clubs_anon": ANONYMOUS},
        quiet_hours="23:00-05:00",
    )
    entries = [
        RosterEntry(2, "Tina", "teacher", handle="tina", groups=("7B",)),
        RosterEntry(3, "Omar", "teacher", handle="omar", groups=("8A",)),
        RosterEntry(4, "Adam", "admin", handle="adam"),
    ]
    entries += [
        RosterEntry(
            10 + n,
            f"{h.capitalize()} Student",
            "student",
            handle=h,
            groups=("7B",),
            telegram_id=str(1000 + n),
        )
        for n, h in enumerate(STUDENTS)
    ]
    app.roster.import_people(entries)
    return app


def _send_and_answer(app: App, flow_id: str, handles: list[str]) -> int:
    """Send ``flow_id`` to 7B as Tina; each of ``handles`` answers every question."""
    report = Surveys(app).send(flow_id, "7B", actor=app.actor("tina"))
    assert report is not None
    for handle in handles:
        person = app.people.get(handle)
        address = str(1000 + STUDENTS.index(handle))
        for text in ANSWERS[handle]:
            app.service.handle(
                person.id, Inbound.of_text(text), platform="telegram", address=address
            )
    return report.survey.id


def test_counts_free_text_and_completion(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana", "bo", "cy"])
    results = survey_results(app, survey_id, actor=app.actor("tina"))
    data = results.to_json()
    assert list(data) == ["id", "flow", "responses", "questions"]
    assert (data["id"], data["flow"], data["responses"]) == (survey_id, "clubs", 3)
    questions = {q["step"]: q for q in data["questions"]}
    assert list(questions) == ["sport", "likes", "fun", "again", "why"]  # home is private
    assert questions["sport"]["counts"] == {"football": 1, "swimming": 1, "robotics": 1}
    assert questions["likes"]["counts"] == {"art": 1, "music": 1, "robotics": 2}
    assert questions["fun"]["counts"] == {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1}
    assert questions["again"]["counts"] == {"true": 2, "false": 1}
    assert questions["why"]["counts"] is None
    assert questions["why"]["answers"] == [
        {"person": "ana", "value": HELD_BACK},
        {"person": "bo", "value": "robots!"},
        {"person": "cy", "value": "water"},
    ]
    assert questions["sport"]["answers"][1] == {"person": "bo", "value": "robotics"}
    assert results.completion.counts.completed == 3
    assert results.completion.counts.in_progress == 3  # di, ed, fay started, not finished
    text = results.text()
    assert "3 completed, 3 in progress" in text
    assert "Robotics club: 1 (Bo Student)" in text
    assert "5 (great): 1 (Ana Student)" in text
    assert "yes: 2 (Ana Student, Cy Student)" in text
    assert f"Ana Student: {HELD_BACK}" in text


def test_private_answers_appear_nowhere(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana", "bo"])
    results = survey_results(app, survey_id, actor=None)
    everything = json.dumps(results.to_json()) + results.text() + results.csv_text()
    assert "gran" not in everything and "secret" not in everything
    assert "home" not in everything


@pytest.mark.parametrize("flow_id", ["clubs", "clubs_anon"])
def test_held_back_strings_stay_literal_in_every_format(app: App, flow_id: str) -> None:
    survey_id = _send_and_answer(app, flow_id, STUDENTS)
    results = survey_results(app, survey_id, actor=app.actor("tina"))
    assert HELD_BACK in results.text()
    why = next(q for q in results.to_json()["questions"] if q["step"] == "why")
    assert HELD_BACK in [a["value"] for a in why["answers"]]
    rows = list(csv.DictReader(io.StringIO(results.csv_text())))
    assert HELD_BACK in [row["why"] for row in rows]
    spans = [
        span.text
        for section in results_notice(results).sections
        for line in section.lines
        for span in line.spans
    ]
    assert HELD_BACK in spans  # raw: each adapter escapes it for its platform


def test_csv_has_a_row_per_respondent_and_a_column_per_step(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana", "di"])
    rows = list(csv.reader(io.StringIO(survey_results(app, survey_id, actor=None).csv_text())))
    assert rows == [
        ["person", "name", "sport", "likes", "fun", "again", "why"],
        ["ana", "Ana Student", "football", "art; robotics", "5", "true", HELD_BACK],
        ["di", "Di Student", "robotics", "art; music; robotics", "1", "true", "build things"],
    ]


def test_anonymous_with_five_responses_shows_counts_and_unnamed_text(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs_anon", ["ana", "bo", "cy", "di", "ed"])
    results = survey_results(app, survey_id, actor=app.actor("tina"))
    data = results.to_json()
    assert data["responses"] == 5
    questions = {q["step"]: q for q in data["questions"]}
    assert questions["sport"]["counts"] == {"football": 2, "swimming": 1, "robotics": 2}
    assert questions["sport"]["answers"] == []  # counts only: no answers to line up
    assert sorted(a["value"] for a in questions["why"]["answers"]) == sorted(
        [HELD_BACK, "robots!", "water", "build things", "friends"]
    )
    assert {a["person"] for a in questions["why"]["answers"]} == {None}
    everything = json.dumps(data) + results.text() + results.csv_text()
    for handle in STUDENTS:
        assert f'"{handle}"' not in everything
        assert f"{handle.capitalize()} Student" not in everything
    rows = list(csv.reader(io.StringIO(results.csv_text())))
    assert rows[0] == ["sport", "likes", "fun", "again", "why"]
    assert len(rows) == 6
    assert "Anonymous survey" in results.text()


def test_anonymous_under_five_responses_shows_only_how_many(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs_anon", ["ana", "bo", "cy", "di"])
    results = survey_results(app, survey_id, actor=app.actor("tina"))
    data = results.to_json()
    assert data["responses"] == 4
    assert all(q["counts"] is None and q["answers"] == [] for q in data["questions"])
    assert list(csv.reader(io.StringIO(results.csv_text()))) == [
        ["sport", "likes", "fun", "again", "why"]
    ]
    text = results.text()
    assert "4 responses" in text and "once 5 students have completed it" in text
    assert "robots!" not in text and "Favourite sport?" not in text


def test_group_by_puts_each_student_in_every_group_they_chose(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana", "bo", "cy", "di"])
    results = survey_results(app, survey_id, actor=app.actor("tina"), group_by="likes")
    groups = {g["value"]: g["people"] for g in results.to_json()["groups"]}
    assert groups == {"art": ["ana", "di"], "music": ["cy", "di"], "robotics": ["ana", "bo", "di"]}
    assert "robotics (3): Ana Student, Bo Student, Di Student" in results.text()
    rows = list(csv.DictReader(io.StringIO(results.csv_text())))
    assert [(r["group"], r["person"]) for r in rows] == [
        ("art", "ana"),
        ("art", "di"),
        ("music", "cy"),
        ("music", "di"),
        ("robotics", "ana"),
        ("robotics", "bo"),
        ("robotics", "di"),
    ]
    by_sport = survey_results(app, survey_id, actor=None, group_by="sport")
    assert [(g.label, len(g.people)) for g in by_sport.groups] == [
        ("football", 1),
        ("swimming", 1),
        ("Robotics club", 2),
    ]


@pytest.mark.parametrize(
    ("flow_id", "step", "refusal"),
    [
        ("clubs_anon", "sport", "is anonymous: its answers cannot be grouped"),
        ("clubs", "why", "a text step has no options to group by"),
        ("clubs", "home", "clubs has no such step to group by (these: sport, likes, fun, again)"),
    ],
)
def test_group_by_is_refused_clearly(app: App, flow_id: str, step: str, refusal: str) -> None:
    survey_id = _send_and_answer(app, flow_id, ["ana"])
    with pytest.raises(InputError, match=re.escape(refusal)):
        survey_results(app, survey_id, actor=app.actor("tina"), group_by=step)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [("tina", True), ("adam", True), (None, True), ("omar", False), ("ana", False)],
)
def test_who_may_see_the_results(app: App, who: str | None, allowed: bool) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana"])
    if allowed:
        assert survey_results(app, survey_id, actor=app.actor(who)).responses == 1
        return
    with pytest.raises(NotAllowedError, match="only a teacher of 7B or an admin can see survey"):
        survey_results(app, survey_id, actor=app.actor(who))


def test_the_notice_has_no_markup_of_its_own(app: App) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana", "bo"])
    notice = results_notice(survey_results(app, survey_id, actor=None))
    assert notice.title.startswith(f"Survey {survey_id} results: Clubs (clubs) to 7B")
    assert all(
        isinstance(span, Span) and "<b>" not in span.text and "*" not in span.text.strip("*")
        for section in notice.sections
        for line in section.lines
        for span in line.spans
        if HELD_BACK not in span.text
    )


# -- the command line -----------------------------------------------------------------------


def _cli(app: App, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
    env["DATABASE_URL"] = app.db.url.render_as_string(hide_password=False)
    env["PROFILEBOT_FLOWS_DIR"] = str(tmp_path / "flows")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "survey", "results", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_command_prints_json_writes_csv_and_refuses_in_one_line(
    app: App, tmp_path: Path
) -> None:
    survey_id = _send_and_answer(app, "clubs", ["ana", "bo"])
    shown = _cli(app, tmp_path, str(survey_id), "--as", "tina", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == survey_results(app, survey_id, actor=None).to_json()
    out = tmp_path / "results.csv"
    written = _cli(app, tmp_path, str(survey_id), "--format", "csv", "--output", str(out))
    assert written.returncode == 0, written.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [r["why"] for r in rows] == [HELD_BACK, "robots!"]
    refused = _cli(app, tmp_path, str(survey_id), "--as", "omar")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0
    assert "Sorry, only a teacher of 7B" in refused.stderr
    bad = _cli(app, tmp_path, str(survey_id), "--format", "xml")
    assert (bad.returncode, bad.stderr.strip()) == (
        1,
        "profilebot: --format 'xml': use text, json or csv",
    )


def test_the_command_says_why_an_anonymous_csv_is_empty(app: App, tmp_path: Path) -> None:
    survey_id = _send_and_answer(app, "clubs_anon", ["ana", "bo"])
    done = _cli(app, tmp_path, str(survey_id), "--format", "csv")
    assert done.returncode == 0
    assert done.stdout.strip() == "sport,likes,fun,again,why"
    assert "has 2 of the 5 responses it needs: the CSV has no rows" in done.stderr
