"""`profilebot schedule ...` and `profilebot calendar ...` end to end: every command, its JSON,
and the one clear line (exit 1, nothing half-applied) of each kind of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_driver import Profilebot

CALENDAR = Path(__file__).parent.parent / "bot" / "data" / "school_calendar.ics"


def _one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def school(profilebot: Profilebot) -> Profilebot:
    """Two students of 7B in their own zones, one without a zone (DEFAULT_TIMEZONE: UTC),
    and their teacher, who is in 7B too but gets no check-ins."""
    profilebot("people", "add", "--name", "Ana Ny", "--role", "student", "--handle", "ana",
               "--group", "7B", "--timezone", "America/New_York")  # fmt: skip
    profilebot("people", "add", "--name", "Bo Tokyo", "--role", "student", "--handle", "bo",
               "--group", "7B", "--timezone", "Asia/Tokyo")  # fmt: skip
    profilebot("people", "add", "--name", "Cy Utc", "--role", "student", "--handle", "cy")
    profilebot("people", "add", "--name", "Tess Teacher", "--role", "teacher",
               "--handle", "tess", "--group", "7B")  # fmt: skip
    return profilebot


def test_schedules_are_added_listed_paused_resumed_and_removed(school: Profilebot) -> None:
    added = school.json(
        "schedule", "add", "--flow", "weekly_checkin", "--group", "7B", "--on", "wed",
        "--at", "10:00", "--name", "Weekly 7B",
    )  # fmt: skip
    assert added == {"id": 1}
    line = school(
        "schedule", "add", "--flow", "goal_setting", "--person", "cy",
        "--rrule", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=9;BYMINUTE=30",
    )  # fmt: skip
    assert line.startswith("added schedule 2: goal_setting for cy, FREQ=WEEKLY;INTERVAL=2")
    assert "(1 person; first: " in line

    listed = school.json("schedule", "list")
    assert [(s["id"], s["flow"], s["status"], s["audience"]) for s in listed] == [
        (1, "weekly_checkin", "active", {"everyone": False, "groups": ["7B"], "people": []}),
        (2, "goal_setting", "active", {"everyone": False, "groups": [], "people": ["cy"]}),
    ]
    assert listed[0]["rule"] == "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10;BYMINUTE=0"
    assert listed[0]["name"] == "Weekly 7B" and listed[0]["next"].endswith("T10:00")

    assert school("schedule", "pause", "1").startswith("paused schedule 1")
    text = school("schedule", "list")
    assert "paused" in text and "nothing upcoming" in text
    assert school("schedule", "resume", "1").startswith("resumed schedule 1")
    assert [s["status"] for s in school.json("schedule", "list")] == ["active", "active"]
    assert school("schedule", "remove", "2").startswith("removed schedule 2")
    assert [s["id"] for s in school.json("schedule", "list")] == [1]


def test_run_due_starts_at_each_students_local_time_once(school: Profilebot) -> None:
    school("schedule", "add", "--flow", "weekly_checkin", "--everyone", "--on", "wed",
           "--at", "10:00")  # fmt: skip
    upcoming = school.json("schedule", "list")[0]["next"]
    wednesday = upcoming[:10]

    tokyo = school.json("schedule", "run-due", "--now", f"{wednesday}T01:00:00+00:00")
    assert [(i["person"], i["reason"]) for i in tokyo["started"]] == [("bo", "no_account")]
    assert tokyo["started"][0] == {
        "person": "bo", "flow": "weekly_checkin", "schedule": 1, "survey": None,
        "reason": "no_account",
    }  # fmt: skip
    assert set(tokyo) == {"now", "started", "reminded", "expired", "waiting", "skipped"}
    assert tokyo["now"] == f"{wednesday}T01:00:00+00:00"
    again = school.json("schedule", "run-due", "--now", f"{wednesday}T01:00:00+00:00")
    assert [again[k] for k in ("started", "reminded", "expired", "waiting", "skipped")] == [
        [],
        [],
        [],
        [],
        [],
    ]
    utc = school.json("schedule", "run-due", "--now", f"{wednesday}T10:00")  # naive: UTC
    assert [i["person"] for i in utc["started"]] == ["cy"]
    new_york = school("schedule", "run-due", "--now", f"{wednesday}T16:00:00Z")
    assert new_york.strip() == (
        f"{wednesday}T16:00:00+00:00: started 1 (no account 1), reminded 0, expired 0, "
        "waiting 0, skipped 0"
    )
    # the check-in waits for Ana without a chat account: `chat --as ana` resumes it
    chat = school.chat("ana", [])
    assert "Time for your weekly check-in" in chat and "How have you been feeling" in chat


def test_calendar_breaks_are_added_imported_once_and_listed(school: Profilebot) -> None:
    shutil.copy(CALENDAR, school.workdir / "school.ics")
    assert school("calendar", "add-break", "--from", "2026-10-26", "--to", "2026-10-30",
                  "--name", "Autumn half term").strip() == (
        "added break 'Autumn half term': 2026-10-26 to 2026-10-30"
    )  # fmt: skip
    first = school("calendar", "import", "school.ics").strip()
    assert first == (
        "imported school.ics: 2 breaks (2 new, 0 updated, 0 unchanged); "
        "left out 1 timed event and 1 recurring event"
    )
    second = school("calendar", "import", "school.ics").strip()
    assert "(0 new, 0 updated, 2 unchanged)" in second
    listed = school.json("calendar", "list")
    assert [(b["name"], b["from"], b["to"]) for b in listed] == [
        ("Autumn half term", "2026-10-26", "2026-10-30"),
        ("Winter break", "2026-12-21", "2027-01-01"),
        ("Staff development day (no students)", "2027-01-06", "2027-01-06"),
    ]
    assert "2026-12-21 – 2027-01-01  Winter break" in school("calendar", "list")


def test_no_check_in_starts_on_a_break_day(school: Profilebot) -> None:
    school("schedule", "add", "--flow", "weekly_checkin", "--person", "cy", "--on", "wed",
           "--at", "10:00")  # fmt: skip
    wednesday = school.json("schedule", "list")[0]["next"][:10]  # cy's zone is UTC
    school("calendar", "add-break", "--from", wednesday, "--to", wednesday, "--name", "Snow day")
    during = school.json("schedule", "run-due", "--now", f"{wednesday}T10:00")
    assert [(i["person"], i["reason"]) for i in during["skipped"]] == [("cy", "break")]
    assert during["started"] == []
    assert school.json("schedule", "list")[0]["next"][:10] > wednesday


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--flow", "nope", "--group", "7B", "--on", "wed", "--at", "10:00"],
         "unknown flow 'nope'"),
        (["--flow", "weekly_checkin", "--group", "7Z", "--on", "wed", "--at", "10:00"],
         "no group named '7Z'"),
        (["--flow", "weekly_checkin", "--person", "zed", "--on", "wed", "--at", "10:00"],
         "no person with handle 'zed'"),
        (["--flow", "weekly_checkin", "--group", "7B", "--on", "wendsday", "--at", "10:00"],
         "--on 'wendsday' is not a day"),
        (["--flow", "weekly_checkin", "--group", "7B", "--on", "wed", "--at", "10"],
         "--at '10' is not a time of day"),
        (["--flow", "weekly_checkin", "--group", "7B", "--on", "wed", "--at", "24:00"],
         "--at '24:00' is not a time of day"),
        (["--flow", "weekly_checkin", "--group", "7B", "--rrule", "FREQ=HOURLY;BYHOUR=1"],
         "FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"),
        (["--flow", "weekly_checkin", "--group", "7B", "--rrule", "FREQ=WEEKLY;BYDAY=WE"],
         "say at what time"),
        (["--flow", "weekly_checkin", "--group", "7B", "--rrule",
          "FREQ=WEEKLY;BYDAY=XX;BYHOUR=10"], "invalid 'BYDAY': XX"),
        (["--flow", "weekly_checkin", "--group", "7B", "--rrule",
          "FREQ=WEEKLY;BYHOUR=10;UNTIL=20270101T000000Z"], "write UNTIL in local time"),
        (["--flow", "weekly_checkin", "--group", "7B", "--rrule", "garbage"],
         "'garbage' is not NAME=VALUE"),
        (["--flow", "weekly_checkin", "--group", "7B", "--on", "wed", "--at", "10:00",
          "--rrule", "FREQ=DAILY;BYHOUR=9"], "give --on and --at, or --rrule, not both"),
        (["--flow", "weekly_checkin", "--group", "7B", "--on", "wed"], "say when"),
        (["--flow", "weekly_checkin", "--on", "wed", "--at", "10:00"], "say for whom"),
        (["--flow", "weekly_checkin", "--everyone", "--person", "ana", "--on", "wed",
          "--at", "10:00"], "--everyone already means every student"),
    ],
)  # fmt: skip
def test_bad_schedule_input_is_one_line_and_adds_nothing(
    school: Profilebot, args: list[str], says: str
) -> None:
    result = school.run("schedule", "add", *args)
    assert result.returncode == 1 and result.stdout == ""
    line = _one_clean_line(result.stderr)
    assert line.startswith("profilebot: ") and says in line, line
    assert school.json("schedule", "list") == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["schedule", "remove", "9"], "no schedule 9: see `profilebot schedule list`"),
        (["schedule", "pause", "9"], "no schedule 9"),
        (["schedule", "resume", "9"], "no schedule 9"),
        (["schedule", "run-due", "--now", "next tuesday"], "--now 'next tuesday' is not an ISO"),
        (["calendar", "add-break", "--from", "2026-12-32", "--to", "2027-01-01"],
         "--from '2026-12-32' is not a date: use YYYY-MM-DD"),
        (["calendar", "add-break", "--from", "2027-01-02", "--to", "2027-01-01"],
         "a break cannot end (2027-01-01) before it starts (2027-01-02)"),
        (["calendar", "import", "missing.ics"], "cannot read missing.ics"),
        (["calendar", "import", "notes.ics"], "notes.ics is not an iCalendar file"),
    ],
)  # fmt: skip
def test_bad_calendar_and_schedule_ids_are_one_line(
    school: Profilebot, args: list[str], says: str
) -> None:
    (school.workdir / "notes.ics").write_text("Winter break: from the 21st\n")
    result = school.run(*args)
    assert result.returncode == 1 and result.stdout == ""
    line = _one_clean_line(result.stderr)
    assert line.startswith("profilebot: ") and says in line, line
    assert school.json("calendar", "list") == []


def test_run_due_json_is_one_document(school: Profilebot) -> None:
    result = school.run("schedule", "run-due", "--now", "2026-12-09T10:00:00+00:00", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["now"] == "2026-12-09T10:00:00+00:00"
