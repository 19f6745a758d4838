"""The roster at once (RosterStore), on SQLite and PostgreSQL: one transaction, idempotent by
handle, every bad row named by its line with nothing applied; accounts linked by hand."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from storage import (
    Database,
    InvalidValueError,
    PeopleStore,
    RosterEntry,
    RosterError,
    RosterStore,
    UnknownPersonError,
    UnknownRecordError,
    metadata,
)

ROSTER_TABLES = ("person", "person_role", "student_group", "group_member", "advisor_link")


def _entries() -> list[RosterEntry]:
    return [
        RosterEntry(2, "Ana López", "student", handle="ana", groups=("7B",), advisor="tina"),
        RosterEntry(
            3,
            "Bo Chen",
            "student",
            groups=("7B", "Choir"),
            advisor="tina",
            timezone="America/New_York",
            email="Bo@School.example",
            telegram_id="4242",
        ),
        RosterEntry(
            4, "Tina Park", "teacher", handle="tina", groups=("7B", "7C"), slack_id="U0TINA"
        ),
    ]


def _snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the roster's tables (and identities), ignoring creation times."""
    tables = {t.name: t for t in metadata.sorted_tables}
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as conn:
        for name in (*ROSTER_TABLES, "channel_identity"):
            table = tables[name]
            columns = [c for c in table.c if c.name != "created_at"]
            out[name] = sorted(tuple(row) for row in conn.execute(select(*columns)))
    return out


def _roster(database: Database) -> RosterStore:
    return RosterStore(database)


def test_an_import_adds_everyone_with_roles_groups_advisors_and_accounts(
    database: Database,
) -> None:
    roster, people = _roster(database), PeopleStore(database)
    counts = roster.import_people(_entries())
    assert counts.to_json() == {"added": 3, "updated": 0, "unchanged": 0}

    bo = people.get("bo-chen")  # no handle in the file: derived from the name
    assert bo.display_name == "Bo Chen" and bo.roles == ("student",)
    assert bo.timezone == "America/New_York"
    assert people.get("tina").roles == ("teacher",)
    seventh = roster.group("7B")
    assert roster.groups_of(bo.id) == {seventh.id, roster.group("Choir").id}
    assert roster.groups_of(people.get("tina").id) == {seventh.id, roster.group("7C").id}
    # Telegram: the private chat is the user id, so the account can be written to at once
    assert people.by_identity("telegram", None, "4242") == bo
    assert people.is_reachable("slack", None, "U0TINA") is True
    with database.read() as conn:
        advisors = set(conn.execute(select(metadata.tables["advisor_link"])).all())
        emails = set(conn.execute(select(metadata.tables["person"].c.email)).scalars())
    tina = people.get("tina").id
    assert advisors == {(tina, people.get("ana").id), (tina, bo.id)}
    assert "bo@school.example" in emails


def test_importing_the_same_file_twice_changes_nothing(database: Database) -> None:
    roster = _roster(database)
    roster.import_people(_entries())
    before = _snapshot(database)
    counts = roster.import_people(_entries())
    assert counts.to_json() == {"added": 0, "updated": 0, "unchanged": 3}
    assert _snapshot(database) == before


def test_a_changed_row_updates_its_person_and_empty_columns_keep_what_is_stored(
    database: Database,
) -> None:
    roster, people = _roster(database), PeopleStore(database)
    roster.import_people(_entries())
    moved = [
        RosterEntry(2, "Ana  López", "student", handle="ana"),  # nothing new
        RosterEntry(3, "Bo Chen", "student", groups=("8A",)),  # moved to another class
        RosterEntry(4, "Tina Park-Lee", "teacher", handle="tina"),  # renamed
    ]
    counts = roster.import_people(moved)
    assert counts.to_json() == {"added": 0, "updated": 2, "unchanged": 1}
    bo = people.get("bo-chen")
    assert roster.groups_of(bo.id) == {roster.group("8A").id}
    assert bo.timezone == "America/New_York"  # the empty column left it alone
    assert people.by_identity("telegram", None, "4242") == bo
    assert people.get("tina").display_name == "Tina Park-Lee"
    assert people.get("tina").first_name == "Tina"
    assert roster.groups_of(people.get("ana").id) == {roster.group("7B").id}


def test_every_bad_row_is_named_by_its_line_and_nothing_is_applied(database: Database) -> None:
    roster, people = _roster(database), PeopleStore(database)
    people.add("Someone Else", "student", handle="else", email="taken@school.example")
    before = _snapshot(database)
    bad = [
        RosterEntry(2, "Good Row", "student", groups=("7B",)),
        RosterEntry(3, "", "student"),
        RosterEntry(4, "Wizard", "wizard"),
        RosterEntry(5, "Zoned", "student", timezone="Mars/Base"),
        RosterEntry(6, "Mailed", "student", email="taken@school.example"),
        RosterEntry(7, "Advised", "student", advisor="ghost"),
        RosterEntry(8, "Advised Too", "student", advisor="good-row"),
        RosterEntry(9, "Good Row", "teacher"),
        RosterEntry(10, "Bad Handle", "student", handle="no spaces"),
        RosterEntry(11, "Tele", "student", telegram_id="@tele"),
    ]
    with pytest.raises(RosterError) as caught:
        roster.import_people(bad)
    problems = dict(caught.value.problems)
    assert set(problems) == {3, 4, 5, 6, 7, 8, 9, 10, 11}
    assert "name is empty" in problems[3]
    assert "unknown role 'wizard'" in problems[4]
    assert "Mars/Base" in problems[5]
    assert "'else'" in problems[6]
    assert "no advisor with handle 'ghost'" in problems[7]
    assert "'good-row' cannot be an advisor" in problems[8]
    assert "also on line 2" in problems[9] and "handle of their own" in problems[9]
    assert "no spaces" in problems[10]
    assert "Telegram user id" in problems[11]
    message = str(caught.value)
    assert message.startswith("9 bad rows, nothing imported: line 3: ")
    assert "\n" not in message and "(and 6 more)" in message
    assert _snapshot(database) == before


def test_an_account_linked_to_someone_else_is_a_bad_row(database: Database) -> None:
    roster, people = _roster(database), PeopleStore(database)
    other = people.add("Other", "student", handle="other")
    people.link_identity(other.id, "telegram", None, "777", "777")
    before = _snapshot(database)
    with pytest.raises(RosterError) as caught:
        roster.import_people([RosterEntry(2, "Ana", "student", telegram_id="777")])
    assert caught.value.problems == ((2, "telegram account 777 is already linked to 'other'"),)
    assert _snapshot(database) == before


def test_an_advisor_may_come_later_in_the_file_or_be_on_the_roster_already(
    database: Database,
) -> None:
    roster, people = _roster(database), PeopleStore(database)
    people.add("Ada Advisor", "advisor", handle="ada")
    roster.import_people(
        [
            RosterEntry(2, "Sam", "student", advisor="ada"),
            RosterEntry(3, "Kim", "student", advisor="ted"),
            RosterEntry(4, "Ted", "teacher", handle="ted"),
        ]
    )
    with database.read() as conn:
        links = set(conn.execute(select(metadata.tables["advisor_link"])).all())
    assert links == {
        (people.get("ada").id, people.get("sam").id),
        (people.get("ted").id, people.get("kim").id),
    }


def test_ten_thousand_rows_import_in_one_transaction(database: Database) -> None:
    roster = _roster(database)
    entries = [
        RosterEntry(line, f"Teacher {g}", "teacher", handle=f"t{g}", groups=(f"G{g}",))
        for line, g in enumerate(range(50), start=2)
    ]
    entries += [
        RosterEntry(
            line,
            f"Student {n}",
            "student",
            handle=f"s{n}",
            groups=(f"G{n % 50}",),
            advisor=f"t{n % 50}",
        )
        for line, n in enumerate(range(10_000), start=52)
    ]
    assert roster.import_people(entries).added == 10_050
    assert roster.import_people(entries).unchanged == 10_050
    with database.read() as conn:
        members = conn.execute(select(metadata.tables["group_member"])).all()
    assert len(members) == 10_050


def test_link_account_links_once_and_refuses_what_it_cannot(database: Database) -> None:
    roster, people = _roster(database), PeopleStore(database)
    ana = people.add("Ana", "student", handle="ana")
    people.add("Bo", "student", handle="bo")
    assert roster.link_account("@Ana", "telegram", " 12345 ") == ana
    assert roster.link_account("ana", "telegram", "12345") == ana  # again: nothing new
    assert people.by_identity("telegram", None, "12345") == ana
    with database.read() as conn:
        rows = conn.execute(select(metadata.tables["channel_identity"])).all()
    assert [(r.platform, r.workspace, r.chat_id) for r in rows] == [("telegram", "", "12345")]

    roster.link_account("ana", "slack", "U0ANA", workspace="T0SCHOOL")
    assert people.by_identity("slack", "T0SCHOOL", "U0ANA") == ana
    with pytest.raises(InvalidValueError, match="already linked to 'ana'"):
        roster.link_account("bo", "telegram", "12345")
    with pytest.raises(UnknownPersonError, match="'nobody'"):
        roster.link_account("nobody", "telegram", "1")
    with pytest.raises(InvalidValueError, match="unknown platform 'irc'"):
        roster.link_account("bo", "irc", "1")
    with pytest.raises(InvalidValueError, match="not a Slack user id"):
        roster.link_account("bo", "slack", "bo@school")


def test_groups_are_found_by_name(database: Database) -> None:
    roster = _roster(database)
    roster.import_people([RosterEntry(2, "Ana", "student", groups=("7 B",))])
    group = roster.group(" 7  B ")
    assert group.name == "7 B" and roster.group_by_id(group.id) == group
    with pytest.raises(UnknownRecordError, match="no group named '8C'"):
        roster.group("8C")
