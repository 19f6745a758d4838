"""`profilebot export`, `erase` and `db prune`, run as an administrator would: what a student
typed in a real conversation is gone from the SQLite file's bytes (and its WAL) after `erase`."""

from __future__ import annotations

import json
import sqlite3

import pytest
from cli_driver import Profilebot

from bot.app import App
from bot.frontdesk import Visitor, desk_for
from dialogues import Inbound

SAM_TOKEN = "Zebracorn-q7x3"
ANA_TOKEN = "Narwhalia-k2p9"


def file_bytes(profilebot: Profilebot) -> bytes:
    """The database file and its WAL, as a disk reader would see them."""
    db = profilebot.workdir / "profilebot.db"
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def two_students(profilebot: Profilebot) -> None:
    profilebot.chat("sam", [SAM_TOKEN, "1, 3"])
    profilebot.chat("ana", [ANA_TOKEN])


def test_erase_leaves_no_trace_of_what_the_student_typed_in_the_file(
    profilebot: Profilebot,
) -> None:
    two_students(profilebot)
    assert SAM_TOKEN.encode() in file_bytes(profilebot)

    receipt = profilebot.json("erase", "sam", "--yes")

    assert set(receipt) == {"person", "erased_at", "by", "counts"}
    assert receipt["person"] == "sam" and receipt["by"].startswith("command line")
    assert receipt["counts"]["person"] == 1 and receipt["counts"]["answer"] >= 2
    assert all(isinstance(n, int) for n in receipt["counts"].values())
    content = file_bytes(profilebot)
    assert SAM_TOKEN.encode() not in content
    assert ANA_TOKEN.encode() in content  # nobody else's data goes
    assert json.loads(profilebot("profile", "show", "ana", "--json"))["profile"] == {
        "preferred_name": ANA_TOKEN
    }
    again = profilebot.run("erase", "sam", "--yes")
    assert again.returncode == 1 and again.stderr == "profilebot: no person with handle 'sam'\n"


def staff_rows_holding(profilebot: Profilebot, token: str) -> dict[str, int]:
    """How many outbox rows to each staff member carry ``token``."""
    with sqlite3.connect(profilebot.workdir / "profilebot.db") as con:
        rows = con.execute(
            "SELECT person.handle, count(*) FROM outbox JOIN person ON person.id = "
            "outbox.person_id WHERE payload LIKE ? AND person.handle != 'sam' GROUP BY 1",
            (f"%{token}%",),
        ).fetchall()
    return dict(rows)


def test_erase_leaves_no_trace_of_what_staff_were_told_about_the_student(
    profilebot: Profilebot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A safety notice to a counselor and the summary and card an advisor asked for in chat
    carry Sam's words in their outbox rows: they go with Sam, and the export lists them
    without their content."""
    add = ("people", "add", "--name")
    profilebot(*add, "Adam Adv", "--role", "advisor", "--handle", "adam")
    profilebot(*add, "Cora Diaz", "--role", "counselor", "--handle", "cora")
    profilebot(*add, "Sam Lee", "--role", "student", "--handle", "sam", "--advisor", "adam")
    profilebot("people", "link", "cora", "--platform", "telegram", "--account", "777")
    profilebot("people", "link", "adam", "--platform", "telegram", "--account", "900")
    profilebot.chat("sam", [f"{SAM_TOKEN} and I get bullied"])
    note = ["3", "3", f"{SAM_TOKEN} highlight", f"{SAM_TOKEN} note", "yes"]
    profilebot.chat("sam", note, "--flow", "weekly_checkin")
    monkeypatch.setenv("DATABASE_URL", profilebot.env["DATABASE_URL"])
    app = App.create(read_flows=True)
    desk = desk_for(app, "telegram")
    adam = Visitor("telegram", "900", "900")
    desk.receive(adam, Inbound.of_text("/summary"), event_key="summary")
    desk.receive(adam, Inbound.of_text("/card sam"), event_key="card")
    app.db.dispose()
    assert set(staff_rows_holding(profilebot, SAM_TOKEN)) == {"adam", "cora"}

    profilebot("export", "sam", "--output", "sam.json")
    data = json.loads((profilebot.workdir / "sam.json").read_text(encoding="utf-8"))
    about = data["tables"]["outbox (about them, to others)"]
    assert {row["to"] for row in about} == {"adam", "cora"}
    assert {row["kind"] for row in about} == {"safety notice", "notice"}
    assert all(set(row) == {"id", "to", "platform", "created_at", "kind"} for row in about)

    receipt = profilebot.json("erase", "sam", "--yes")

    assert receipt["counts"]["outbox (about them, to others)"] == len(about)
    assert staff_rows_holding(profilebot, SAM_TOKEN) == {}
    assert SAM_TOKEN.encode() not in file_bytes(profilebot)


def test_erase_without_yes_refuses_in_one_line_and_deletes_nothing(
    profilebot: Profilebot,
) -> None:
    two_students(profilebot)

    refused = profilebot.run("erase", "sam")

    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "--yes" in refused.stderr
    shown = json.loads(profilebot("profile", "show", "sam", "--json"))
    assert shown["profile"]["preferred_name"] == SAM_TOKEN


def test_export_writes_the_json_and_a_page_beside_it(profilebot: Profilebot) -> None:
    two_students(profilebot)

    said = profilebot("export", "sam", "--output", "sam.json")

    json_path, page = profilebot.workdir / "sam.json", profilebot.workdir / "sam.html"
    assert said.startswith("wrote everything held about sam") and "sam.html" in said
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["person"]["handle"] == "sam"
    facts = [f["value"] for f in data["tables"]["profile_fact"]]
    assert SAM_TOKEN in facts and ANA_TOKEN not in json_path.read_text(encoding="utf-8")
    assert SAM_TOKEN in page.read_text(encoding="utf-8")
    [seen] = json.loads(profilebot("audit", "sam", "--json"))
    assert (seen["action"], seen["viewer"], seen["subject"]) == ("exported", None, "sam")


def test_a_student_cannot_export_someone_else(profilebot: Profilebot) -> None:
    two_students(profilebot)

    refused = profilebot.run("export", "ana", "--output", "ana.json", "--as", "sam")

    assert refused.returncode == 1 and refused.stderr.startswith("profilebot: Sorry, only")
    assert not (profilebot.workdir / "ana.json").exists()


def test_db_prune_removes_transcripts_past_retention(profilebot: Profilebot) -> None:
    profilebot.chat("sam", [SAM_TOKEN, "1, 3"])
    with sqlite3.connect(profilebot.workdir / "profilebot.db") as con:  # a year and more ago
        con.execute("UPDATE conversation SET status = 'completed', updated_at = '2020-01-01'")

    report = profilebot.json("db", "prune")

    assert set(report) == {"cutoff", "counts"}
    assert report["counts"]["answer"] == 2 and report["counts"]["conversation"] == 1
    assert (
        json.loads(profilebot("profile", "show", "sam", "--json"))["profile"]["preferred_name"]
        == SAM_TOKEN
    )
    assert profilebot.json("db", "prune")["counts"]["answer"] == 0
