"""`profilebot schedule ...` for advisors' summaries end to end: the default appears once there
is an advisor, an advisor's own schedule is added like any other, a student is refused in one
line, and `run-due --json` reports summaries with the usual ITEM shape: skipped without a chat
account, sent (built, with its chart) once there is one."""

from __future__ import annotations

from cli_driver import Profilebot


def test_summary_schedules_are_listed_added_and_run(profilebot: Profilebot) -> None:
    assert "no schedules yet" in profilebot("schedule", "list")
    profilebot("people", "add", "--name", "Ada Ng", "--role", "advisor", "--handle", "ada",
               "--timezone", "America/New_York")  # fmt: skip
    profilebot("people", "add", "--name", "Sam Lee", "--role", "student", "--handle", "sam",
               "--advisor", "ada")  # fmt: skip

    [default] = profilebot.json("schedule", "list")
    assert (default["id"], default["flow"], default["audience"]["everyone"]) == (
        1,
        "advisor_summary",
        True,
    )
    assert default["rule"] == "FREQ=WEEKLY;BYDAY=FR;BYHOUR=15;BYMINUTE=0"
    assert default["next"].endswith("T15:00")
    assert "every advisor" in profilebot("schedule", "list")

    line = profilebot(
        "schedule", "add", "--flow", "advisor_summary", "--person", "ada", "--on", "mon",
        "--at", "08:00",
    )  # fmt: skip
    assert line.startswith("added schedule 2: advisor_summary for ada, ")
    assert "(1 person; first: " in line and line.rstrip().endswith("08:00 local time)")

    refused = profilebot.run(
        "schedule", "add", "--flow", "advisor_summary", "--person", "sam", "--on", "fri",
        "--at", "15:00",
    )  # fmt: skip
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "profilebot: 'sam' is not an advisor: summaries go to advisors"
    ]

    # 2026-12-07 is a Monday: 08:00 in New York is 13:00 UTC. Ada has no chat account yet.
    due = profilebot.json("schedule", "run-due", "--now", "2026-12-07T13:00:30+00:00")
    assert due["started"] == []
    assert due["skipped"] == [
        {
            "person": "ada",
            "flow": "advisor_summary",
            "schedule": 2,
            "survey": None,
            "reason": "no_account",
        }
    ]
    again = profilebot.json("schedule", "run-due", "--now", "2026-12-07T13:00:30+00:00")
    assert again["skipped"] == [] and again["started"] == []

    profilebot("people", "link", "ada", "--platform", "telegram", "--account", "2001")
    next_week = profilebot.json("schedule", "run-due", "--now", "2026-12-14T13:00:30+00:00")
    assert next_week["skipped"] == []
    assert next_week["started"] == [
        {"person": "ada", "flow": "advisor_summary", "schedule": 2, "survey": None, "reason": None}
    ]
