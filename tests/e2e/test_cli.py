"""The command line's contract: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from cli_driver import Profilebot

from tests.slack.fake_web_api import FakeSlackAPI
from tests.telegram.fake_bot_api import FakeBotAPI

BROKEN = "id: Bad\nversion: 1\nsteps:\n  - id: pick\n    type: choice\n    ask: Pick one\n"


def _one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["profile", "show", "nobody"], {}, "no person with handle 'nobody'"),
        (["plan", "show", "nobody", "--json"], {}, "no person with handle 'nobody'"),
        (
            ["chat", "--as", "sam", "--flow", "nope"],
            {},
            "unknown flow 'nope' (known flows: goal_setting",
        ),
        (
            ["profile", "show", "sam"],
            {"DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/x"},
            "cannot reach database at postgresql+psycopg://u:***@127.0.0.1:1/x",
        ),
        (
            ["db", "upgrade"],
            {"DATABASE_URL": "sqlite:////nonexistent/dir/x.db"},
            "cannot reach database at sqlite:////nonexistent/dir/x.db",
        ),
        (["flows", "list"], {"DEFAULT_TIMEZONE": "Mars/Base"}, "setting DEFAULT_TIMEZONE"),
        (
            ["flows", "list"],
            {"PROFILEBOT_FLOWS_DIR": "no/such/folder"},
            "setting PROFILEBOT_FLOWS_DIR: Value error, 'no/such/folder' does not exist",
        ),
        (
            ["chat", "--as", "sam"],
            {"PROFILEBOT_FLOWS_DIR": "/dev/null"},
            "setting PROFILEBOT_FLOWS_DIR: Value error, '/dev/null' is not a folder",
        ),
        (
            ["people", "add", "--name", "Ana", "--role", "student", "--advisor", "ghost"],
            {},
            "no advisor with handle 'ghost'",
        ),
        (["people", "add", "--name", "Ana", "--role", "wizard"], {}, "wizard"),
    ],
)
def test_expected_failures_print_one_line_and_exit_1(
    profilebot: Profilebot, args: list[str], env: dict[str, str], expected: str
) -> None:
    profilebot.env.update(env)
    result = profilebot.run(*args)
    assert result.returncode == 1
    line = _one_clean_line(result.stderr)
    assert line.startswith("profilebot: ") and expected in line
    assert "secret" not in line


def test_flows_check_reports_every_problem_with_file_line_and_step(profilebot: Profilebot) -> None:
    (profilebot.workdir / "bad.yaml").write_text(BROKEN)
    result = profilebot.run("flows", "check", "bad.yaml")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "bad.yaml:1: title: missing; add a title people will see, e.g. title: This is me",
        "bad.yaml:1: id: 'Bad' is not snake_case (lowercase letters, digits and _, starting "
        "with a letter); e.g. 'bad'",
        "bad.yaml:4: step 'pick': options: missing; a choice step needs options: "
        "[first, second, ...]",
    ]


def test_flows_check_passes_the_built_in_flows(profilebot: Profilebot) -> None:
    from dialogues import BUILTIN_FLOWS_DIR

    paths = sorted(str(p) for p in BUILTIN_FLOWS_DIR.glob("*.yaml"))
    result = profilebot.run("flows", "check", *paths)
    assert result.returncode == 0 and "ok: 4 files valid" in result.stdout


def test_a_broken_flow_file_never_reaches_a_student(profilebot: Profilebot) -> None:
    (profilebot.workdir / "bad.yaml").write_text(BROKEN)
    result = profilebot.run("chat", "--as", "sam", "--file", "bad.yaml", input="hello\n")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "options: missing" in result.stderr and result.stdout == ""


def test_chat_runs_any_valid_flow_file(profilebot: Profilebot) -> None:
    (profilebot.workdir / "club.yaml").write_text(
        "id: club\nversion: 1\ntitle: Club\nsteps:\n"
        "  - id: sport\n    ask: Favourite sport?\n    type: choice\n"
        "    options: [football, swimming]\n    save: profile.sport\n"
    )
    out = profilebot.chat("sam", ["2"], "--file", "club.yaml")
    assert "  1. football\n  2. swimming" in out
    assert profilebot.json("profile", "show", "sam")["profile"] == {"sport": "swimming"}


def test_resuming_a_flow_file_without_it_ends_cleanly(profilebot: Profilebot) -> None:
    (profilebot.workdir / "two.yaml").write_text(
        "id: two_q\nversion: 1\ntitle: Two\nsteps:\n"
        "  - id: colour\n    ask: Favourite colour?\n    type: text\n    save: profile.colour\n"
        "  - id: food\n    ask: Favourite food?\n    type: text\n    save: profile.food\n"
    )
    first = profilebot.run("chat", "--as", "quinn", "--file", "two.yaml", input="blue\n")
    assert first.returncode == 0 and "profilebot chat --as quinn" in first.stdout
    second = profilebot.run("chat", "--as", "quinn", input="pasta\n")
    assert (second.returncode, second.stderr) == (0, "")
    assert "Favourite food?" in second.stdout


def test_flows_list_shows_the_built_in_flows(profilebot: Profilebot) -> None:
    out = profilebot("flows", "list")
    for flow_id in ("this_is_me", "goal_setting", "weekly_checkin", "term_reflection"):
        assert flow_id in out


def test_people_add_json_and_advisor_links(profilebot: Profilebot) -> None:
    advisor = json.loads(
        profilebot("people", "add", "--name", "Mr Lee", "--role", "advisor", "--json")
    )
    assert advisor["handle"] == "mr-lee" and advisor["roles"] == ["advisor"]
    student = profilebot.json(
        "people",
        "add",
        "--name",
        "Ana Diaz",
        "--role",
        "student",
        "--advisor",
        "mr-lee",
        "--group",
        "7B",
        "--timezone",
        "Europe/Berlin",
    )
    assert student["handle"] == "ana-diaz" and student["timezone"] == "Europe/Berlin"
    assert len(student["invite_code"]) == 10 and student["invite_expires_at"] > "2026"
    assert advisor["invite_code"] != student["invite_code"]


def test_db_upgrade_creates_the_schema(profilebot: Profilebot) -> None:
    assert "up to date" in profilebot("db", "upgrade")
    assert (profilebot.workdir / "profilebot.db").exists()


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({}, "setting SLACK_BOT_TOKEN is needed for --platform slack"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1"},
            "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) "
            "for --platform slack",
        ),
    ],
)
def test_run_on_slack_says_which_setting_is_missing(
    profilebot: Profilebot, settings: dict[str, str], says: str
) -> None:
    profilebot.env.update({"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "", **settings})
    profilebot.env["SLACK_SIGNING_SECRET"] = ""
    result = profilebot.run("run", "--platform", "slack")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == f"profilebot: {says}"


async def test_run_on_slack_with_a_token_slack_refuses(profilebot: Profilebot) -> None:
    async with FakeSlackAPI() as fake:
        profilebot.env.update(
            SLACK_BOT_TOKEN="xoxb-wrong",
            SLACK_SIGNING_SECRET="s3cret",
            SLACK_API_BASE_URL=fake.base_url,
        )
        result = await asyncio.to_thread(profilebot.run, "run", "--platform", "slack")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == (
        "profilebot: setting SLACK_BOT_TOKEN: Slack refused it (invalid_auth)"
    )


def test_run_on_telegram_needs_a_token(profilebot: Profilebot) -> None:
    profilebot.env["TELEGRAM_BOT_TOKEN"] = ""
    result = profilebot.run("run", "--platform", "telegram")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == (
        "profilebot: setting TELEGRAM_BOT_TOKEN is needed for --platform telegram"
    )


def test_run_on_telegram_refuses_a_webhook_without_a_secret(profilebot: Profilebot) -> None:
    profilebot.env.update(
        TELEGRAM_BOT_TOKEN="123:ABC", TELEGRAM_WEBHOOK_URL="https://school.example/telegram"
    )
    result = profilebot.run("run", "--platform", "telegram")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == (
        "profilebot: setting TELEGRAM_WEBHOOK_SECRET is needed with TELEGRAM_WEBHOOK_URL"
    )


def test_run_with_two_platforms_says_what_the_second_one_misses(profilebot: Profilebot) -> None:
    profilebot.env.update(TELEGRAM_BOT_TOKEN="123:ABC", SLACK_BOT_TOKEN="")
    result = profilebot.run("run", "--platform", "telegram", "--platform", "slack")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == (
        "profilebot: setting SLACK_BOT_TOKEN is needed for --platform slack"
    )


def test_run_refuses_one_port_for_two_platforms_that_serve_http(profilebot: Profilebot) -> None:
    profilebot.env.update(
        TELEGRAM_BOT_TOKEN="123:ABC",
        TELEGRAM_WEBHOOK_URL="https://school.example/telegram",
        TELEGRAM_WEBHOOK_SECRET="s3cret",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s3cret",
        SLACK_APP_TOKEN="",
    )
    args = ("run", "--platform", "telegram", "--platform", "slack", "--port", "9000")
    result = profilebot.run(*args)
    assert result.returncode == 1
    assert _one_clean_line(result.stderr).startswith("profilebot: --port is ambiguous")


def test_run_refuses_an_unknown_platform(profilebot: Profilebot) -> None:
    result = profilebot.run("run", "--platform", "discord")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == (
        "profilebot: unknown platform 'discord': use telegram or slack"
    )


def test_worker_needs_a_platform_to_deliver_to(profilebot: Profilebot) -> None:
    profilebot.env.update(TELEGRAM_BOT_TOKEN="", SLACK_BOT_TOKEN="")
    result = profilebot.run("worker")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr) == (
        "profilebot: profilebot worker delivers to the configured platforms, and none is: "
        "set TELEGRAM_BOT_TOKEN and/or SLACK_BOT_TOKEN"
    )


async def test_worker_with_a_token_telegram_refuses(profilebot: Profilebot) -> None:
    async with FakeBotAPI() as fake:
        profilebot.env.update(TELEGRAM_BOT_TOKEN="123:wrong", TELEGRAM_API_BASE_URL=fake.url)
        profilebot.env["SLACK_BOT_TOKEN"] = ""
        result = await asyncio.to_thread(profilebot.run, "worker")
    assert result.returncode == 1
    assert _one_clean_line(result.stderr).startswith(
        "profilebot: setting TELEGRAM_BOT_TOKEN: Telegram refused it"
    )


async def test_people_add_prints_a_telegram_link_when_a_token_is_set(
    profilebot: Profilebot,
) -> None:
    async with FakeBotAPI(username="school_profile_bot") as fake:
        profilebot.env.update(TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.url)
        result = await asyncio.to_thread(
            profilebot.run, "people", "add", "--name", "Ana Diaz", "--role", "student", "--json"
        )
    assert result.returncode == 0, result.stderr
    added = json.loads(result.stdout)
    assert added["telegram_link"] == (
        f"https://t.me/school_profile_bot?start={added['invite_code']}"
    )


def test_people_add_without_telegram_has_no_link(profilebot: Profilebot) -> None:
    added = profilebot.json("people", "add", "--name", "Bo Li", "--role", "student")
    assert added["telegram_link"] is None


async def test_people_add_when_telegram_refuses_the_token_says_so_and_adds(
    profilebot: Profilebot,
) -> None:
    async with FakeBotAPI(username="school_profile_bot") as fake:
        profilebot.env.update(TELEGRAM_BOT_TOKEN="123:wrong", TELEGRAM_API_BASE_URL=fake.url)
        result = await asyncio.to_thread(
            profilebot.run, "people", "add", "--name", "Ana Diaz", "--role", "student", "--json"
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["telegram_link"] is None
    line = _one_clean_line(result.stderr)
    assert line.startswith("profilebot: no Telegram link (Telegram said: ")


# Imported by no command that does not use it: an up-to-date database needs no migration tool,
# reading needs no chat SDK, and --help needs neither flows nor a database.
_SERVING = {"alembic", "telegram", "slack_bolt", "slack_sdk", "aiohttp"}
_REPORT_MODULES = """\
import json, sys
from bot.cli import main
sys.argv = ["profilebot", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
with open(REPORT, "w") as out:
    json.dump(sorted(sys.modules), out)
"""


@pytest.mark.parametrize(
    ("args", "unused"),
    [
        (["--help"], _SERVING | {"sqlalchemy", "storage", "yaml", "jinja2", "pydantic"}),
        (["flows", "list"], _SERVING | {"sqlalchemy", "storage", "transitions"}),
        (["flows", "check", "flow.yaml"], _SERVING | {"sqlalchemy", "storage", "transitions"}),
        (["profile", "show", "sam", "--json"], _SERVING | {"transitions", "yaml", "jinja2"}),
        (["plan", "show", "sam", "--json"], _SERVING | {"transitions", "yaml", "jinja2"}),
        (["people", "add", "--name", "Bo", "--role", "student"], _SERVING | {"yaml", "jinja2"}),
        (["profile", "show", "sam"], _SERVING | {"transitions"}),
        (["inbound", "failed", "--json"], _SERVING | {"transitions", "yaml", "jinja2"}),
        (
            ["profile", "card", "sam", "--format", "html", "--output", "sam.html"],
            _SERVING | {"weasyprint"},  # the PDF library loads only for a PDF
        ),
    ],
)
def test_a_command_imports_only_what_it_uses(
    profilebot: Profilebot, args: list[str], unused: set[str]
) -> None:
    profilebot("people", "add", "--name", "Sam", "--role", "student")
    (profilebot.workdir / "flow.yaml").write_text(BROKEN)
    report = profilebot.workdir / "modules.json"
    code = _REPORT_MODULES.replace("REPORT", repr(str(report)))
    result = subprocess.run(
        [sys.executable, "-c", code, "-", *args],
        capture_output=True,
        text=True,
        cwd=profilebot.workdir,
        env={**os.environ, **profilebot.env},
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    loaded = {name.split(".")[0] for name in json.loads(report.read_text())}
    assert loaded & unused == set()


def test_a_broken_flow_file_stops_what_uses_flows_and_only_that(profilebot: Profilebot) -> None:
    profilebot("people", "add", "--name", "Sam", "--role", "student")
    flows = profilebot.workdir / "flows"
    flows.mkdir()
    (flows / "bad.yaml").write_text(BROKEN)
    profilebot.env["PROFILEBOT_FLOWS_DIR"] = str(flows)
    for args in (
        ["chat", "--as", "sam"],
        ["run", "--platform", "telegram"],
        ["profile", "show", "sam"],
    ):
        result = profilebot.run(*args)
        assert result.returncode == 1, args
        assert "options: missing" in result.stderr and "Traceback" not in result.stderr
    assert profilebot.json("profile", "show", "sam")["profile"] == {}
