"""`profilebot summary` end to end: the JSON contract (and nothing else on stdout), every
format to a file, the chart, and one clear line with exit 1 for every refusal or mistake."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cli_driver import Profilebot

from storage import Database
from tests.summary_term import Term, week_day

WEEK = "2026-W49"
HELD_BACK = "<script>x</script> *bold* <!channel> & co"


@pytest.fixture
def school(profilebot: Profilebot) -> Iterator[Profilebot]:
    """Rosa advises Ana (who wants to meet) and Bo (who did not check in)."""
    profilebot("db", "upgrade")
    db = Database(profilebot.env["DATABASE_URL"])
    term = Term(db)
    term.person("Rosa Rivera", "advisor", "rosa")
    term.person("Olga Other", "advisor", "olga")
    term.person("Tina Teach", "teacher", "tina")
    ana = term.person("Ana Diaz", "student", "ana", advisor="rosa")
    bo = term.person("Bo Chen", "student", "bo", advisor="rosa")
    goal = term.goal(ana, "Finish the robot")
    term.goal(bo, "Read a book")
    term.checkin(
        ana,
        week_day(WEEK),
        wants_meeting=True,
        note=HELD_BACK,
        progress={goal: 4},
        next_steps={goal: "wire the motor"},
    )
    term.checkin(bo, week_day("2026-W48"))
    db.dispose()
    yield profilebot


def test_json_is_the_document_alone(school: Profilebot) -> None:
    done = school.run("summary", "--advisor", "rosa", "--week", WEEK, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["advisor"]["handle"] == "rosa" and data["week"] == WEEK
    assert [s["person"]["handle"] for s in data["students"]] == ["ana", "bo"]
    ana, bo = data["students"]
    assert ana["urgent"] == ["wants_meeting", "note"] and ana["note_for_advisor"] == HELD_BACK
    assert ana["goals"] == [
        {
            "title": "Finish the robot",
            "status": "active",
            "progress": 4,
            "trend": [None, None, None, None, None, 4],
            "next_step": "wire the motor",
        }
    ]
    assert bo["urgent"] == ["no_checkin"] and bo["checked_in"] is False


def test_json_as_product_md_writes_it(school: Profilebot) -> None:
    """``summary --json`` (product.md) is ``--format json``; with another format, one line."""
    as_json = school.run("summary", "--advisor", "rosa", "--week", WEEK, "--json")
    assert as_json.returncode == 0, as_json.stderr
    both = school("summary", "--advisor", "rosa", "--week", WEEK, "--json", "--format", "json")
    assert json.loads(as_json.stdout) == json.loads(both)
    assert json.loads(both)["advisor"]["handle"] == "rosa"
    done = school.run("summary", "--advisor", "rosa", "--week", WEEK, "--json", "--format", "md")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "profilebot: --json and --format 'md' disagree: give one of them\n"


def test_text_by_default_and_every_format_to_a_file(school: Profilebot) -> None:
    text = school("summary", "--advisor", "rosa", "--week", WEEK, "--as", "rosa")
    assert "Needs you this week (2)" in text and "Ana Diaz: wants to meet" in text
    assert "Finish the robot ·····▆ 4, next: wire the motor" in text
    for fmt, marker in (("md", "\\<script\\>"), ("html", "&lt;script&gt;"), ("json", '"week"')):
        out = school.workdir / f"summary.{fmt}"
        shown = school(
            "summary", "--advisor", "rosa", "--week", WEEK, "--format", fmt, "--output", str(out)
        )
        assert shown == f"wrote Rosa Rivera's summary of {WEEK} ({fmt}) to {out}\n"
        assert marker in out.read_text()
        assert "<script>" not in out.read_text() or fmt == "json"


def test_the_chart_file(school: Profilebot) -> None:
    chart = school.workdir / "chart.png"
    school("summary", "--advisor", "rosa", "--week", WEEK, "--chart", str(chart))
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("where", ["missing/summary.md", "."])
def test_nothing_is_written_unless_everything_can_be(school: Profilebot, where: str) -> None:
    chart, output = school.workdir / "chart.png", school.workdir / where
    args = ("--week", WEEK, "--chart", str(chart), "--output", str(output))
    done = school.run("summary", "--advisor", "rosa", *args)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"profilebot: cannot write {output}: ")
    assert done.stderr.count("\n") == 1
    assert not chart.exists()
    output = school.workdir / "summary.md"
    wrote = school("summary", "--advisor", "rosa", *args[:-1], str(output))
    assert wrote == (
        f"wrote Rosa Rivera's summary of {WEEK} (text) to {output} and its chart to {chart}\n"
    )
    assert chart.read_bytes().startswith(b"\x89PNG") and "Rosa Rivera" in output.read_text()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--as", "ana"],
            "Sorry, only the advisor themself or an admin can see an advisor's weekly summary.",
        ),
        (
            ["--as", "olga"],
            "Sorry, only the advisor themself or an admin can see an advisor's weekly summary.",
        ),
        (
            ["--as", "tina"],
            "Sorry, only the advisor themself or an admin can see an advisor's weekly summary.",
        ),
        (["--week", "2026-W60"], "week '2026-W60' is not an ISO week: use YYYY-Www, like 2026-W49"),
        (["--format", "pdf"], "--format 'pdf': use one of text, md, html, json"),
        (["--week", "9999-W52"], "week '9999-W52' is out of range: use a week of 1900 to 2999"),
        (["--week", "0001-W01"], "week '0001-W01' is out of range: use a week of 1900 to 2999"),
        (
            ["--week", "２０２６-W49"],
            "week '２０２６-W49' is not an ISO week: use YYYY-Www, like 2026-W49",
        ),
    ],
)
def test_refusals_and_mistakes_are_one_line(
    school: Profilebot, args: list[str], error: str
) -> None:
    chart = school.workdir / "refused.png"
    done = school.run("summary", "--advisor", "rosa", "--chart", str(chart), *args)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"profilebot: {error}\n"
    assert not chart.exists()


@pytest.mark.parametrize(
    ("advisor", "error"),
    [("nobody", "no person with handle 'nobody'"), ("tina", "tina is not an advisor")],
)
def test_an_unknown_advisor_or_someone_advising_nobody(
    school: Profilebot, advisor: str, error: str
) -> None:
    done = school.run("summary", "--advisor", advisor)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"profilebot: {error}") and done.stderr.count("\n") == 1
