"""In the terminal too, one bad line never stops a conversation; parked lines can be replayed.

`profilebot inbound failed` lists parked messages, `profilebot inbound retry ID` replays one.
Fault injection (``tests.faults``) runs the real command with a turn that fails on one line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from cli_driver import Profilebot

from bot.intake import MAX_ATTEMPTS, sorry_text
from tests.faults import POISON

ROOT = Path(__file__).parents[2]
SORRY = sorry_text("/")
SUPPORT = "Talk to someone now: call 555-0100."


def _faulty(
    profilebot: Profilebot, *args: str, input: str = ""
) -> subprocess.CompletedProcess[str]:
    """`profilebot ARGS` with the fault injected: turns on the line POISON raise."""
    return subprocess.run(
        [sys.executable, "-m", "tests.faults", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=profilebot.workdir,
        env={**os.environ, **profilebot.env, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def _answers(profilebot: Profilebot) -> list[tuple[str, str]]:
    with sqlite3.connect(profilebot.workdir / "profilebot.db") as conn:
        rows = conn.execute("SELECT step_id, raw FROM answer ORDER BY id").fetchall()
    return [(str(step), str(raw)) for step, raw in rows]


def test_a_line_whose_turn_keeps_failing_is_parked_and_the_conversation_goes_on(
    profilebot: Profilebot,
) -> None:
    chat = _faulty(profilebot, "chat", "--as", "sam", input=f"Sam\n{POISON}\n1\n")
    assert chat.returncode == 0, chat.stderr
    assert "Traceback" not in chat.stderr
    assert POISON not in chat.stderr  # the student's text is never logged
    assert SORRY in chat.stdout
    assert _answers(profilebot) == [("preferred_name", "Sam"), ("strengths", "1")]

    [parked] = profilebot.json("inbound", "failed")
    assert parked["platform"] == "console"
    assert parked["person"] == "sam"
    assert parked["error"] == "InjectedFault"
    assert parked["attempts"] == MAX_ATTEMPTS
    assert parked["status"] == "parked"
    assert POISON not in json.dumps(parked)
    listed = profilebot("inbound", "failed")
    assert f"{parked['id']:>5}" in listed and "InjectedFault" in listed and POISON not in listed

    # a replay that fails again keeps it parked, with one clean line and exit 1
    again = _faulty(profilebot, "inbound", "retry", str(parked["id"]))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        f"profilebot: message {parked['id']} failed again (InjectedFault); it stays parked"
    )
    assert profilebot.json("inbound", "failed")[0]["attempts"] == MAX_ATTEMPTS + 1

    # once the cause is gone, the replay goes through, and only once
    assert "its turn went through" in profilebot("inbound", "retry", str(parked["id"]))
    assert _answers(profilebot)[-1] == ("interests", POISON)
    assert profilebot.json("inbound", "failed") == []
    [replayed] = profilebot.json("inbound", "failed", "--all")
    assert replayed["status"] == "replayed" and replayed["replayed_at"] is not None
    twice = profilebot.run("inbound", "retry", str(parked["id"]))
    assert twice.returncode == 1
    assert twice.stderr.strip() == f"profilebot: message {parked['id']} was replayed already"
    # the replayed turn's replies wait in the outbox for the student's next chat
    resumed = profilebot.chat("sam", [])
    assert resumed.index("Welcome back!") > resumed.index("learn")


def test_inbound_retry_of_an_unknown_id_is_one_line(profilebot: Profilebot) -> None:
    result = profilebot.run("inbound", "retry", "42")
    assert result.returncode == 1
    assert result.stderr.strip() == "profilebot: no parked message with id 42"
    assert profilebot("inbound", "failed").strip() == "no parked messages"


def test_random_bytes_piped_into_chat_are_answers_not_a_traceback(profilebot: Profilebot) -> None:
    noise = b"\xff\xfeSam\xed\xb2\x91\n" + bytes(range(256)) * 12
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--as", "x"],
        input=noise,
        capture_output=True,
        cwd=profilebot.workdir,
        env={**os.environ, **profilebot.env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    assert profilebot.json("inbound", "failed") == []
    # the name: bytes that are not UTF-8 became U+FFFD, and the interview went on
    name, *others = _answers(profilebot)
    assert name[0] == "preferred_name"
    assert name[1].startswith("\ufffd\ufffdSam\ufffd")
    assert others


def test_a_parked_line_still_raises_its_safety_alert_and_its_replay_not_again(
    profilebot: Profilebot,
) -> None:
    words = "I want to die"
    profilebot.env |= {"SAFETY_MESSAGE": SUPPORT, "PROFILEBOT_FAULT_TEXT": words}
    profilebot("people", "add", "--name", "Cora Diaz", "--role", "counselor", "--handle", "cora")

    chat = _faulty(profilebot, "chat", "--as", "sam", input=f"{words}\n")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.index(SUPPORT) < chat.stdout.index(SORRY)
    [parked] = profilebot.json("inbound", "failed")
    assert "its turn went through" in profilebot("inbound", "retry", str(parked["id"]))

    [alert] = json.loads(profilebot("safety", "list", "--json", "--as", "cora"))
    assert alert["student"] == "sam" and alert["categories"] == ["self_harm"]
    assert SUPPORT not in profilebot.chat("sam", [])  # the replay showed it no second time
