"""The audit of views (AuditStore), on SQLite and PostgreSQL: one row per person shown, none
for a person's own data, written in the view's own transaction when it reads in one; listed
oldest first with the viewer's handle (None: the command line); never what was shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage import (
    AuditStore,
    Database,
    PeopleStore,
    PlanStore,
    ProfileStore,
    RosterEntry,
    RosterStore,
    Viewed,
    Viewing,
    metadata,
)

AT = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
SECRET = "my-uncle-is-in-prison-xyzzy"


def _school(db: Database) -> dict[str, int]:
    RosterStore(db).import_people(
        [
            RosterEntry(2, "Tina Park", "teacher", handle="tina", groups=("7B",)),
            RosterEntry(3, "Ada Ng", "advisor", handle="ada"),
            RosterEntry(4, "Ana Diaz", "student", handle="ana", groups=("7B",), advisor="ada"),
            RosterEntry(5, "Bo Chen", "student", handle="bo", groups=("7B",)),
            RosterEntry(6, "Cy Dunn", "student", handle="cy", groups=("8A",)),
        ]
    )
    people = PeopleStore(db)
    return {h: people.get(h).id for h in ("tina", "ada", "ana", "bo", "cy")}


def test_a_view_of_several_people_writes_a_row_each_and_none_of_the_viewers_own(
    database: Database,
) -> None:
    ids = _school(database)
    audit = AuditStore(database)
    viewing = Viewing(ids["tina"], Viewed.SURVEY_RESULTS, AT, "chat", {"survey": 12})
    written = audit.record(viewing, [ids["ana"], ids["bo"], ids["tina"], ids["ana"]])
    assert written == 2
    [seen] = audit.views(ids["ana"])
    assert seen.to_json() == {
        "at": AT.isoformat(),
        "viewer": "tina",
        "action": "viewed_survey_results",
        "subject": "ana",
    }
    assert seen.via == "chat"
    assert [r.subject for r in audit.views(ids["bo"])] == ["bo"]
    assert audit.views(ids["tina"]) == [] and audit.views(ids["cy"]) == []


def test_the_command_line_is_a_viewer_of_its_own(database: Database) -> None:
    ids = _school(database)
    audit = AuditStore(database)
    audit.record(Viewing(None, Viewed.PROFILE, AT + timedelta(minutes=1), "cli"), [ids["ana"]])
    audit.record(Viewing(ids["ada"], Viewed.PLAN, AT, "cli"), [ids["ana"]])
    assert [(r.viewer, r.via, r.action) for r in audit.views(ids["ana"])] == [
        ("ada", "cli", "viewed_plan"),
        (None, "cli", "viewed_profile"),
    ]


def test_profile_and_plan_reads_write_their_row_in_the_same_transaction(
    database: Database,
) -> None:
    ids = _school(database)
    ProfileStore(database).set(ids["ana"], "family.story", SECRET, private=True)
    seen = Viewing(None, Viewed.PROFILE, AT, "cli", {"private": True})
    profile = ProfileStore(database).current(ids["ana"], include_private=True, seen=seen)
    assert profile["family"]["story"] == SECRET
    PlanStore(database).plan(ids["ana"], seen=Viewing(ids["ada"], Viewed.PLAN, AT, "cli"))
    assert ProfileStore(database).current(ids["ana"]) == {}  # unaudited reads: no row
    assert [r.action for r in AuditStore(database).views(ids["ana"])] == [
        "viewed_profile",
        "viewed_plan",
    ]
    assert _stored_text_without(database, SECRET)


def test_other_audit_events_are_not_listed_as_views(database: Database) -> None:
    ids = _school(database)
    audit_log = metadata.tables["audit_log"]
    with database.begin() as conn:
        conn.execute(
            audit_log.insert(),
            {"action": "step_flagged", "subject_person_id": ids["ana"], "created_at": AT},
        )
    assert AuditStore(database).views(ids["ana"]) == []


def test_a_teachers_pupils_are_the_students_of_the_groups_they_teach(database: Database) -> None:
    ids = _school(database)
    roster = RosterStore(database)
    assert roster.pupils_of(ids["tina"]) == {ids["ana"], ids["bo"]}
    assert roster.pupils_of(ids["ada"]) == frozenset()


def _stored_text_without(db: Database, text: str) -> bool:
    audit_log = metadata.tables["audit_log"]
    with db.read() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.detail)).all()
    return bool(rows) and all(text not in f"{action} {detail}" for action, detail in rows)
