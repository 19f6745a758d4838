"""`profilebot roster import DIR` end to end, on a OneRoster 1.1 export as SIS systems write
them (tests/e2e/oneroster/): a byte-order mark, quoted commas, empty optional columns, a
homeroom, an administrator, a guardian and an aide left out; then a delta (a student who
left, a changed email, an older row ignored); bad rows by file and line with nothing applied;
a missing file or column in one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from cli_driver import Profilebot
from sqlalchemy import select

from storage import Database, PeopleStore, RosterStore, metadata

SAMPLE = Path(__file__).parent / "oneroster"


def _copy(profilebot: Profilebot, name: str) -> Path:
    return Path(shutil.copytree(SAMPLE / name, profilebot.workdir / name))


def _db(profilebot: Profilebot) -> Database:
    return Database(profilebot.env["DATABASE_URL"])


def _groups(profilebot: Profilebot, handle: str) -> set[str]:
    db = _db(profilebot)
    roster, people = RosterStore(db), PeopleStore(db)
    return {roster.group_by_id(g).name for g in roster.groups_of(people.get(handle).id)}


def _person(profilebot: Profilebot, handle: str) -> dict[str, object]:
    person = metadata.tables["person"]
    with _db(profilebot).read() as conn:
        return dict(conn.execute(select(person).where(person.c.handle == handle)).one()._mapping)


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_bulk_export_becomes_people_groups_teachers_and_advisors(profilebot: Profilebot) -> None:
    bulk = _copy(profilebot, "bulk")
    result = profilebot.run("roster", "import", str(bulk), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == {"added": 6, "updated": 0, "deactivated": 0, "unchanged": 0}

    roles = {
        handle: profilebot.json("profile", "show", handle)["person"]["roles"]
        for handle in ("tpark", "mlee", "principal.ortiz", "ana.lopez", "s-2", "kim")
    }
    assert roles == {
        "tpark": ["advisor", "teacher"],  # teaches the homeroom
        "mlee": ["advisor", "teacher"],  # named in Kim's advisor column
        "principal.ortiz": ["admin"],
        "ana.lopez": ["student"],
        "s-2": ["student"],  # no username: the sourcedId
        "kim": ["student"],
    }
    assert profilebot.run("profile", "show", "maria.lopez").returncode == 1  # a guardian
    assert profilebot.run("profile", "show", "helper").returncode == 1  # an aide
    ana = profilebot.json("profile", "show", "ana.lopez")["person"]
    assert ana["display_name"] == "Ana López, Jr."
    assert _groups(profilebot, "ana.lopez") == {"HR 7B", "Math 7, Section 1"}
    assert _groups(profilebot, "mlee") == {
        "Math 7, Section 1",
        "Science (SCI-1)",
        "Science (SCI-2)",
    }
    db = _db(profilebot)
    people, roster = PeopleStore(db), RosterStore(db)
    tina, mlee = people.get("tpark").id, people.get("mlee").id
    advisees = {people.by_id(s).handle for s in roster.advisees_of(tina)}
    assert advisees == {"ana.lopez", "s-2"}
    assert {people.by_id(s).handle for s in roster.advisees_of(mlee)} == {"kim"}
    assert _person(profilebot, "tpark")["email"] == "tina.park@school.example"
    assert _person(profilebot, "ana.lopez")["birth_date"] == date(2013, 4, 2)
    assert _person(profilebot, "s-2")["birth_date"] == date(2014, 1, 15)  # demographics.csv

    again = profilebot("roster", "import", str(bulk))
    assert again.strip() == (
        "imported bulk: 0 added, 0 updated, 0 deactivated, 6 unchanged "
        "(left out: 1 aide, 1 guardian)"
    )


def test_a_delta_deactivates_updates_and_ignores_older_rows(profilebot: Profilebot) -> None:
    profilebot("roster", "import", str(_copy(profilebot, "bulk")))
    delta = _copy(profilebot, "delta")
    assert profilebot.json("roster", "import", str(delta)) == {
        "added": 0,
        "updated": 2,
        "deactivated": 1,
        "unchanged": 0,
    }
    bo = _person(profilebot, "s-2")
    assert bo["active"] is False and bo["birth_date"] == date(2014, 1, 15)
    assert _groups(profilebot, "s-2") == {"HR 7B", "Science (SCI-1)"}  # their data stays
    assert _person(profilebot, "kim")["email"] == "kim.lee@school.example"
    assert _groups(profilebot, "kim") == {"Math 7, Section 1"}  # left Science (SCI-2)
    ana = _person(profilebot, "ana.lopez")  # her row is older than the one imported
    assert (ana["display_name"], ana["email"]) == ("Ana López, Jr.", "ana@school.example")
    assert "Science (SCI-1)" in _groups(profilebot, "ana.lopez")  # her enrollment is new
    assert profilebot.json("roster", "import", str(delta)) == {
        "added": 0,
        "updated": 0,
        "deactivated": 0,
        "unchanged": 3,
    }


def test_bad_rows_are_named_by_file_and_line_and_nothing_is_imported(
    profilebot: Profilebot,
) -> None:
    bulk = _copy(profilebot, "bulk")
    users = (bulk / "users.csv").read_bytes()
    users = users.replace(
        b"s-3,active,2026-09-01T08:00:00Z,true,org-1,student",
        b"s-3,active,2026-09-01T08:00:00Z,true,org-1,wizard",
    )
    (bulk / "users.csv").write_bytes(users.replace(b"mlee@school.example", b"not-an-email"))
    enrollments = (bulk / "enrollments.csv").read_text()
    (bulk / "enrollments.csv").write_text(enrollments + "e-99,,,c-gone,org-1,s-1,student,,,\n")
    result = profilebot.run("roster", "import", str(bulk))
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("profilebot: 3 bad rows, nothing imported: ")
    assert "enrollments.csv: line 13: no class 'c-gone'" in line
    assert "users.csv: line 7: unknown role 'wizard'" in line
    assert "users.csv: line 3: " in line and "not-an-email" in line
    assert profilebot.run("profile", "show", "tpark").returncode == 1


def test_an_email_username_gives_its_local_part_and_a_handle_is_one_persons(
    profilebot: Profilebot,
) -> None:
    bulk = _copy(profilebot, "bulk")
    users = (bulk / "users.csv").read_bytes()
    (bulk / "users.csv").write_bytes(
        users.replace(b",teacher,tpark,", b",teacher,TPark@school.example,")
    )
    profilebot("roster", "import", str(bulk))
    assert _person(profilebot, "tpark")["email"] == "tina.park@school.example"

    users = (bulk / "users.csv").read_bytes()  # another person, the same name before the @
    (bulk / "users.csv").write_bytes(
        users.replace(b",teacher,mlee,", b",teacher,tpark@other.example,")
    )
    result = profilebot.run("roster", "import", str(bulk))
    assert result.returncode == 1
    assert "users.csv: line 3: the handle 'tpark' is line 2's too" in _one_line(result.stderr)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: (d / "orgs.csv").unlink(), "orgs.csv is missing"),
        (
            lambda d: (d / "users.csv").write_text("sourcedId,givenName,familyName\nx,A,B\n"),
            "users.csv: line 1: the column role is missing",
        ),
        (
            lambda d: (d / "classes.csv").write_bytes(b"sourcedId,title\n\xff,x\n"),
            "classes.csv: line 2: not UTF-8 text",
        ),
        (
            lambda d: (d / "manifest.csv").write_text("propertyName,value\nfile.users,sometimes\n"),
            "manifest.csv: line 2: file.users is 'sometimes'",
        ),
    ],
)
def test_a_missing_file_or_column_is_one_line(
    profilebot: Profilebot, damage: Callable[[Path], object], expected: str
) -> None:
    bulk = _copy(profilebot, "bulk")
    damage(bulk)
    result = profilebot.run("roster", "import", str(bulk), "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert expected in _one_line(result.stderr)


def test_an_absent_file_in_the_manifest_need_not_be_there(profilebot: Profilebot) -> None:
    profilebot("roster", "import", str(_copy(profilebot, "bulk")))
    delta = _copy(profilebot, "delta")
    assert not (delta / "orgs.csv").exists()  # file.orgs,absent
    assert profilebot.run("roster", "import", str(delta)).returncode == 0
    missing = profilebot.run("roster", "import", str(profilebot.workdir / "nowhere"))
    assert "is not a folder" in _one_line(missing.stderr)


_USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
    "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
)
_CLASSES = "sourcedId,status,dateLastModified,title,classCode,classType,schoolSourcedId\n"
_ENROLLMENTS = (
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role\n"
)


def _delta(
    profilebot: Profilebot, users: str = "", classes: str = "", enrollments: str = ""
) -> Path:
    """A small delta export: these rows of users.csv, classes.csv and enrollments.csv."""
    delta = profilebot.workdir / "small-delta"
    shutil.rmtree(delta, ignore_errors=True)
    delta.mkdir()
    (delta / "manifest.csv").write_text(
        "propertyName,value\nfile.orgs,absent\nfile.academicSessions,absent\n"
        "file.users,delta\nfile.classes,delta\nfile.enrollments,delta\n"
    )
    (delta / "users.csv").write_text(_USERS + users)
    (delta / "classes.csv").write_text(_CLASSES + classes)
    (delta / "enrollments.csv").write_text(_ENROLLMENTS + enrollments)
    return delta


def _edit_users(bulk: Path, old: bytes, new: bytes) -> None:
    users = (bulk / "users.csv").read_bytes()
    assert old in users
    (bulk / "users.csv").write_bytes(users.replace(old, new))


def test_a_delta_names_people_by_sourcedid_whatever_their_username(
    profilebot: Profilebot,
) -> None:
    profilebot("roster", "import", str(_copy(profilebot, "bulk")))
    delta = _delta(profilebot, enrollments="e-20,,,c-sci2,org-1,s-1,student\n")
    assert profilebot.json("roster", "import", str(delta))["updated"] == 1
    assert "Science (SCI-2)" in _groups(profilebot, "ana.lopez")  # s-1's username is ana.lopez


def test_a_delta_deactivates_by_sourcedid_even_with_a_minimal_row(profilebot: Profilebot) -> None:
    profilebot("roster", "import", str(_copy(profilebot, "bulk")))
    no_username = "s-3,tobedeleted,2026-11-05T10:00:00Z,false,org-1,student,,,Kim,Lee,,,,,,,07,\n"
    minimal = "s-1,tobedeleted,2026-11-05T10:00:00Z,,,,,,,,,,,,,,,\n"
    delta = _delta(profilebot, users=no_username + minimal)
    assert profilebot.json("roster", "import", str(delta)) == {
        "added": 0,
        "updated": 0,
        "deactivated": 2,
        "unchanged": 0,
    }
    assert _person(profilebot, "kim")["active"] is False
    assert _person(profilebot, "ana.lopez")["active"] is False
    assert profilebot.run("profile", "show", "s-3").returncode == 1  # nobody new

    unknown = _delta(profilebot, users="s-99,tobedeleted,,,,,,,,,,,,,,,,\n")
    result = profilebot.run("roster", "import", str(unknown))
    assert result.returncode == 1
    assert "users.csv: line 2: no person with sourcedId 's-99'" in _one_line(result.stderr)


def test_a_deleted_class_loses_its_members_and_its_group_stays(profilebot: Profilebot) -> None:
    profilebot("roster", "import", str(_copy(profilebot, "bulk")))
    delta = _delta(
        profilebot,
        classes="c-sci2,tobedeleted,2026-12-01T00:00:00Z,Science,SCI-2,scheduled,org-1\n",
        enrollments=(
            "e-10,tobedeleted,2026-12-01T00:00:00Z,c-sci2,org-1,t-2,teacher\n"
            "e-11,tobedeleted,2026-12-01T00:00:00Z,c-sci2,org-1,s-3,student\n"
        ),
    )
    assert profilebot.json("roster", "import", str(delta))["updated"] == 2
    assert _groups(profilebot, "mlee") == {"Math 7, Section 1", "Science (SCI-1)"}
    assert _groups(profilebot, "kim") == {"Math 7, Section 1"}
    assert RosterStore(_db(profilebot)).group("Science (SCI-2)").name == "Science (SCI-2)"


def test_a_changed_username_keeps_the_handle_and_updates_the_name_and_email(
    profilebot: Profilebot,
) -> None:
    bulk = _copy(profilebot, "bulk")
    profilebot("roster", "import", str(bulk))
    _edit_users(
        bulk,
        b"s-1,active,2026-09-01T08:00:00Z,true,org-1,student,ana.lopez,,Ana,"
        b'"L\xc3\xb3pez, Jr.",,S1,ana@school.example',
        b"s-1,active,2026-10-01T08:00:00Z,true,org-1,student,ana.smith@school.example,,Ana,Smith,,"
        b"S1,ana.smith@school.example",
    )
    _edit_users(bulk, b",teacher,tpark,", b",teacher,tina.park,")
    assert profilebot.json("roster", "import", str(bulk))["updated"] == 1
    ana = _person(profilebot, "ana.lopez")
    assert (ana["display_name"], ana["email"]) == ("Ana Smith", "ana.smith@school.example")
    assert profilebot.run("profile", "show", "ana.smith").returncode == 1
    assert profilebot.run("profile", "show", "tina.park").returncode == 1
    db = _db(profilebot)
    people, roster = PeopleStore(db), RosterStore(db)
    advisees = {people.by_id(s).handle for s in roster.advisees_of(people.get("tpark").id)}
    assert advisees == {"ana.lopez", "s-2"}


def test_a_homeroom_teacher_who_left_advises_nobody(profilebot: Profilebot) -> None:
    bulk = _copy(profilebot, "bulk")
    _edit_users(bulk, b"t-1,active,", b"t-1,tobedeleted,")
    result = profilebot.run("roster", "import", str(bulk), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 5
    assert profilebot.run("profile", "show", "tpark").returncode == 1  # never imported
    db = _db(profilebot)
    people, roster = PeopleStore(db), RosterStore(db)
    assert roster.advisees_of(people.get("mlee").id) == {people.get("kim").id}
    assert _groups(profilebot, "ana.lopez") == {"HR 7B", "Math 7, Section 1"}


def test_a_teacher_who_is_also_an_administrator_is_one_person_with_both_roles(
    profilebot: Profilebot,
) -> None:
    bulk = _copy(profilebot, "bulk")
    users = (bulk / "users.csv").read_text(encoding="utf-8-sig")
    admin = (
        "a-2,,2026-09-01T08:00:00Z,true,org-1,administrator,mlee,,Marcus,Lee,,,"
        "mlee@school.example,,,,,,,\n"
    )
    (bulk / "users.csv").write_text(users + admin)
    assert profilebot.json("roster", "import", str(bulk))["added"] == 6
    roles = profilebot.json("profile", "show", "mlee")["person"]["roles"]
    assert roles == ["admin", "advisor", "teacher"]
    assert "Science (SCI-2)" in _groups(profilebot, "mlee")
    again = profilebot.json("roster", "import", str(bulk))
    assert (again["added"], again["unchanged"]) == (0, 6)

    _edit_users(bulk, b"t-2,,", b"t-2,tobedeleted,")  # no longer teaching, still the admin
    assert profilebot.json("roster", "import", str(bulk))["deactivated"] == 0
    assert _person(profilebot, "mlee")["active"] is True
