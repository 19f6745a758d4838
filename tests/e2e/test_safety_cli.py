"""Safety escalation from the command line: counselors and safety contacts on the roster, a
phrase typed in `profilebot chat` (the student sees the support message), `safety list` (who
was told, never what was written; counselors and admins only), and a bad phrase file refused
in one line before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

from cli_driver import Profilebot

SUPPORT = "Talk to someone now: call 555-0100."


def test_counselors_and_safety_contacts_join_the_roster(profilebot: Profilebot) -> None:
    cora = profilebot.json("people", "add", "--name", "Cora Diaz", "--role", "counselor")
    tina = profilebot.json(
        "people", "add", "--name", "Tina Teach", "--role", "teacher", "--safety-contact"
    )
    assert cora["roles"] == ["counselor"]
    assert sorted(tina["roles"]) == ["counselor", "teacher"]
    staff = profilebot.workdir / "staff.csv"
    staff.write_text("name,role,handle\nRosa Rivera,advisor,rosa\n", encoding="utf-8")
    counselors = profilebot.workdir / "counselors.csv"  # staff who also get safety alerts
    counselors.write_text(
        "name,role,handle\nCarl Ode,counselor,carl\nRosa Rivera,counselor,rosa\n",
        encoding="utf-8",
    )
    profilebot("people", "import", str(staff))
    assert profilebot.json("people", "import", str(counselors)) | {"unchanged": 0} == {
        "added": 1,
        "updated": 1,
        "unchanged": 0,
    }
    shown = profilebot("people", "add", "--help")
    assert "counselor" in shown and "--safety-contact" in shown


def test_a_phrase_typed_in_chat_shows_help_and_is_listed_without_its_text(
    profilebot: Profilebot,
) -> None:
    profilebot.env["SAFETY_MESSAGE"] = SUPPORT
    profilebot("people", "add", "--name", "Cora Diaz", "--role", "counselor", "--handle", "cora")
    chat = profilebot.run("chat", "--as", "sam", input="I want to DIE.\n")
    assert chat.returncode == 0, chat.stderr
    assert SUPPORT in chat.stdout
    # Cora has no chat account yet: nobody could be told, which is an error for the adults
    assert "reached nobody" in chat.stderr and "DIE" not in chat.stderr

    listed = profilebot.run("safety", "list")
    assert listed.returncode == 0, listed.stderr
    assert "sam" in listed.stdout and "self_harm" in listed.stdout
    assert "NOBODY" in listed.stdout and "DIE" not in listed.stdout
    [alert] = json.loads(profilebot("safety", "list", "--json", "--as", "cora"))
    assert alert["student"] == "sam" and alert["step"] == "preferred_name"
    assert alert["notified"] == [] and alert["reached"] is False


def test_only_counselors_and_admins_see_the_alerts(profilebot: Profilebot) -> None:
    profilebot("people", "add", "--name", "Tina Teach", "--role", "teacher", "--handle", "tina")
    refused = profilebot.run("safety", "list", "--as", "tina")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "profilebot: Sorry, only a counselor or an admin can see safety alerts."
    ]
    assert profilebot("safety", "list").strip() == "no safety alerts"


def test_a_bad_phrase_file_stops_every_command_in_one_line(
    profilebot: Profilebot, tmp_path: Path
) -> None:
    bad = tmp_path / "phrases.yaml"
    bad.write_text("self_harm: [kill myself\n", encoding="utf-8")
    profilebot.env["SAFETY_PHRASES_FILE"] = str(bad)
    for command in (("flows", "list"), ("chat", "--as", "sam")):
        done = profilebot.run(*command)
        assert done.returncode == 1
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("profilebot: setting SAFETY_PHRASES_FILE:")
        assert "is not valid YAML" in line
        assert done.stdout == ""
