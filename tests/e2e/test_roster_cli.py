"""`profilebot people import` and `people link` end to end: the CSV as schools write it, the
JSON contract, line numbers for bad rows, and nothing applied when a row is bad."""

from __future__ import annotations

import json

import pytest
from cli_driver import Profilebot

HEADER = "name,role,handle,group,advisor,timezone,email,telegram_id,slack_id\n"
ROSTER = (
    HEADER
    + "Tina Park,teacher,tina,7B;7C,,Europe/Berlin,tina@school.example,,\n"
    + '"López, Ana",student,ana,7B,tina,,,12345,\n'
    + "Bo Chen,student,,7B,tina,,,,U0BO\n"
    + '"Kim ""KJ"" Lee",student,kim,"7B; Choir",tina,,,,\n'
)


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _write(profilebot: Profilebot, text: str, name: str = "roster.csv", bom: bool = False) -> str:
    data = text.encode()
    (profilebot.workdir / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return name


def test_import_then_again_changes_nothing(profilebot: Profilebot) -> None:
    name = _write(profilebot, ROSTER, bom=True)
    assert profilebot.json("people", "import", name) == {"added": 4, "updated": 0, "unchanged": 0}
    ana = profilebot.json("profile", "show", "ana")["person"]
    assert ana["display_name"] == "López, Ana" and ana["first_name"] == "López,"
    kim = profilebot.json("profile", "show", "kim")["person"]
    assert kim["display_name"] == 'Kim "KJ" Lee'
    assert profilebot.json("profile", "show", "bo-chen")["person"]["roles"] == ["student"]

    again = profilebot("people", "import", name)
    assert again.strip() == "imported roster.csv: 0 added, 0 updated, 4 unchanged"
    changed = _write(profilebot, ROSTER.replace("Bo Chen,student,,7B", "Bo Chen,student,,8A"))
    assert profilebot.json("people", "import", changed) == {
        "added": 0,
        "updated": 1,
        "unchanged": 3,
    }


def test_json_output_is_one_document_and_nothing_else(profilebot: Profilebot) -> None:
    name = _write(profilebot, ROSTER)
    result = profilebot.run("people", "import", name, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"added": 4, "updated": 0, "unchanged": 0}
    assert result.stderr == ""  # not a terminal: no progress bar, no summary there


def test_a_bad_row_names_its_line_and_nothing_is_imported(profilebot: Profilebot) -> None:
    # the quoted value spans two lines, so the bad row is on line 5 of the file
    text = ROSTER.replace("Bo Chen,student,,7B", '"Bo\nChen",wizard,,7B')
    name = _write(profilebot, text)
    result = profilebot.run("people", "import", name)
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line == (
        "profilebot: roster.csv: 1 bad row, nothing imported: line 4: unknown role 'wizard': "
        "use one of student, advisor, teacher, counselor, admin"
    )
    assert profilebot.run("profile", "show", "ana").returncode == 1  # nobody was added

    text = ROSTER + "Late,student,late,7B,ghost,,,,\n"
    result = profilebot.run("people", "import", _write(profilebot, text))
    assert "line 6: no advisor with handle 'ghost'" in _one_line(result.stderr)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "roster.csv: line 1: the file is empty"),
        ("name,grade\nAna,7\n", "roster.csv: line 1: unknown column 'grade'"),
        ("name,handle\nAna,ana\n", "roster.csv: line 1: the header needs the column role"),
        (HEADER + "Ana,student,ana,7B,,,,,,,extra\n", "roster.csv: line 2: 11 values but"),
        (HEADER + 'Ana,student,"ana\n', "roster.csv: line 2: not valid CSV"),
    ],
)
def test_a_file_that_is_not_a_roster_is_one_clear_line(
    profilebot: Profilebot, text: str, expected: str
) -> None:
    result = profilebot.run("people", "import", _write(profilebot, text))
    assert result.returncode == 1
    assert expected in _one_line(result.stderr)


def test_a_file_that_is_not_utf8_or_missing_is_one_clear_line(profilebot: Profilebot) -> None:
    (profilebot.workdir / "latin1.csv").write_bytes(
        HEADER.encode() + "José,student\n".encode("latin-1")
    )
    result = profilebot.run("people", "import", "latin1.csv")
    assert result.returncode == 1
    assert "latin1.csv: line 2: not UTF-8 text" in _one_line(result.stderr)
    result = profilebot.run("people", "import", "missing.csv")
    assert result.returncode == 1
    assert "cannot read missing.csv" in _one_line(result.stderr)


def test_empty_optional_columns_and_a_short_header(profilebot: Profilebot) -> None:
    name = _write(profilebot, "Role , NAME\nstudent,Ana Diaz\n\nteacher,Tom Wu\n")
    assert profilebot.json("people", "import", name)["added"] == 2
    assert profilebot.json("profile", "show", "tom-wu")["person"]["roles"] == ["teacher"]


def test_people_link(profilebot: Profilebot) -> None:
    profilebot("people", "import", _write(profilebot, ROSTER))
    out = profilebot("people", "link", "bo-chen", "--platform", "telegram", "--account", "999")
    assert out.strip() == "linked telegram account 999 to Bo Chen (bo-chen)"
    for args, expected in [
        (("nobody", "--platform", "telegram", "--account", "1"), "no person with handle 'nobody'"),
        (("kim", "--platform", "telegram", "--account", "12345"), "already linked to 'ana'"),
        (("kim", "--platform", "irc", "--account", "1"), "unknown platform 'irc'"),
        (("kim", "--platform", "slack", "--account", "kim"), "'kim' is not a Slack user id"),
    ]:
        result = profilebot.run("people", "link", *args)
        assert result.returncode == 1
        assert expected in _one_line(result.stderr)
