"""Export, erasure and retention on SQLite and PostgreSQL: every table that reaches a person is
covered, an erasure leaves nothing of them (and nobody else's data changes), the export holds
everything, and prunes (by hand and the running bot's daily one) follow a moved clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ForeignKey, Table, func, select, text

from bot.app import App
from bot.clock import FrozenClock
from bot.data_rights import erase_person, export_person, operator_name
from bot.errors import NotAllowedError
from bot.scheduler import Scheduler
from dialogues import Inbound
from storage import (
    ABOUT_THEM,
    BLANKED,
    ERASED_STAFF,
    PARTS,
    UNLINKS,
    Database,
    PersonRecord,
    SafetyStore,
    UnknownPersonError,
    metadata,
)
from tests.flows_app import app_with_flows

MINE = """
id: mine
version: 1
title: Mine
steps:
  - id: name
    ask: What should we call you?
    type: text
    save: profile.preferred_name
  - id: family
    ask: Anything about your family?
    type: text
    private: true
    save: profile.family
  - id: goal
    ask: A goal for this term?
    type: text
    save: goal.new.title
  - id: steps
    ask: Two steps, one per line, then done.
    type: list
    min: 1
    max: 3
    save: goal.action_steps
"""

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def app(database: Database, tmp_path: Path, clock: FrozenClock) -> App:
    return app_with_flows(database, tmp_path / "flows", clock, {"mine": MINE})


def talk(app: App, person: PersonRecord, *answers: str) -> None:
    """A whole conversation of ``mine``, through the real turn service."""
    address = f"chat-{person.handle}"
    app.service.open(person.id, app.registry.get("mine"), platform="telegram", address=address)
    for answer in answers:
        app.service.handle(person.id, Inbound.of_text(answer), platform="telegram", address=address)


def student(app: App, name: str, account: str) -> PersonRecord:
    if app.people.find("mr-lee") is None:
        app.people.add("Mr Lee", "advisor", handle="mr-lee")
    person = app.people.add(name, "student", group="7B", advisor="mr-lee")
    app.people.link_identity(person.id, "telegram", None, account, account)
    app.invites.issue(person.id)
    return person


@pytest.fixture
def school(app: App) -> tuple[PersonRecord, PersonRecord]:
    sam = student(app, "Sam Stone", "1001")
    ana = student(app, "Ana Diaz", "1002")
    talk(app, sam, "Sammy-zq81", "granny-zq81", "read-zq81", "page a day-zq81", "done")
    talk(app, ana, "Ana-kw55", "aunt-kw55", "swim-kw55", "twice a week-kw55", "done")
    with app.db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (actor_person_id, action, subject_person_id, detail, "
                "created_at) VALUES (:actor, 'profile.show', :subject, '{}', :at)"
            ),
            [
                {"actor": sam.id, "subject": ana.id, "at": START},  # Sam looked at Ana's
                {"actor": None, "subject": sam.id, "at": START},  # someone looked at Sam's
            ],
        )
    return sam, ana


def reaching_person() -> set[str]:
    """Every table with a foreign key to ``person``, directly or through tables that have."""
    found = {"person"}
    while True:
        more = {
            table.name
            for table in metadata.sorted_tables
            for fk in table.foreign_keys
            if fk.column.table.name in found and table.name not in found
        }
        if not more:
            return found
        found |= more


def references_to(table_name: str) -> list[ForeignKey]:
    return [
        fk
        for table in metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == table_name
    ]


def test_every_table_that_reaches_a_person_is_exported_and_erased() -> None:
    covered = {part.table.name for part in PARTS}
    unlinked = {column.table.name for column in UNLINKS}
    missing = sorted(reaching_person() - covered - unlinked)
    assert not missing, f"export/erasure do not cover: {', '.join(missing)} (storage PARTS)"
    direct = {(fk.parent.table.name, fk.parent.name) for fk in references_to("person")}
    unlinked_columns = {(c.table.name, c.name) for c in UNLINKS}
    for table_name, column in sorted(direct - unlinked_columns):
        assert table_name in covered, f"{table_name}.{column} names a person: cover it"


def rows_naming(db: Database, person_id: int) -> dict[str, int]:
    """Rows of any table whose foreign key to ``person`` holds this id."""
    counts: dict[str, int] = {}
    with db.read() as conn:
        for fk in references_to("person"):
            table: Table = fk.parent.table  # type: ignore[assignment]
            n = conn.execute(select(func.count()).where(fk.parent == person_id)).scalar_one()
            if n:
                counts[f"{table.name}.{fk.parent.name}"] = n
        if conn.execute(
            text("SELECT count(*) FROM person WHERE id = :id"), {"id": person_id}
        ).scalar():
            counts["person"] = 1
    return counts


def everything_of(app: App, handle: str) -> dict[str, Any]:
    data = app.person_data.export(handle)
    return {name: rows for name, rows in data["tables"].items()}


def test_erasure_leaves_nothing_of_the_person_and_a_receipt_without_content(
    app: App, school: tuple[PersonRecord, PersonRecord], clock: FrozenClock
) -> None:
    sam, ana = school
    ana_before = everything_of(app, ana.handle)
    clock.advance(timedelta(days=3))

    receipt = erase_person(app, "sam-stone")

    assert receipt.person == "sam-stone" and receipt.erased_at == clock.now()
    assert receipt.by == operator_name(None)
    assert receipt.counts["person"] == 1
    assert receipt.counts["conversation"] == 1 and receipt.counts["answer"] == 4
    assert receipt.counts["profile_fact"] == 2 and receipt.counts["goal"] == 1
    assert receipt.counts["action_step"] == 1 and receipt.counts["channel_identity"] == 1
    assert receipt.counts["invite_code"] == 1 and receipt.counts["audit_log"] == 1
    assert receipt.counts["advisor_link"] == 1 and receipt.counts["group_member"] == 1
    assert receipt.counts["outbox"] > 0
    assert rows_naming(app.db, sam.id) == {}
    with pytest.raises(UnknownPersonError):
        app.people.get("sam-stone")
    # Ana's data is as it was, but for the audit row of what Sam looked at: it stays, unnamed
    ana_after = everything_of(app, ana.handle)
    assert ana_after["audit_log"][0]["actor_person_id"] is None
    ana_after["audit_log"][0]["actor_person_id"] = sam.id
    assert ana_after == ana_before
    assert app.profiles.current(ana.id, include_private=True)["family"] == "aunt-kw55"
    # the receipt: counts, when, who; nothing Sam typed
    with app.db.read() as conn:
        stored = conn.execute(text("SELECT * FROM erasure_receipt")).mappings().one()
    assert "zq81" not in repr(dict(stored))
    assert app.person_data.receipts("sam-stone") == [receipt]


def test_an_erasure_is_all_or_nothing(
    app: App, school: tuple[PersonRecord, PersonRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    sam, _ = school
    before = everything_of(app, sam.handle)
    import storage._person_data as person_data

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(person_data, "_forget_in_schedules", broken)
    with pytest.raises(RuntimeError):
        erase_person(app, sam.handle)
    assert everything_of(app, sam.handle) == before
    assert app.person_data.receipts(sam.handle) == []


def test_only_an_admin_may_erase_and_the_receipt_names_them(
    app: App, school: tuple[PersonRecord, PersonRecord]
) -> None:
    sam, _ = school
    with pytest.raises(NotAllowedError):
        erase_person(app, sam.handle, actor=app.actor("mr-lee"))
    with pytest.raises(NotAllowedError):
        erase_person(app, sam.handle, actor=app.actor(sam.handle))
    assert app.people.get(sam.handle)
    app.people.add("Ada Admin", "admin", handle="ada")
    assert erase_person(app, sam.handle, actor=app.actor("ada")).by == "ada"


def test_a_teachers_survey_stays_when_the_teacher_is_erased(app: App) -> None:
    from bot.surveys import Surveys

    tina = app.people.add("Tina Teach", "teacher", handle="tina", group="7B")
    sam = student(app, "Sam Stone", "1001")
    report = Surveys(app).send("mine", "7B", actor=app.actor("tina"))
    assert report is not None

    counts = erase_person(app, "tina").counts

    assert counts["person"] == 1
    assert rows_naming(app.db, tina.id) == {}
    with app.db.read() as conn:
        assert conn.execute(text("SELECT sent_by FROM survey")).scalar_one_or_none() is None
        assert conn.execute(text("SELECT count(*) FROM survey")).scalar() == 1
    assert app.people.get(sam.handle)


def test_the_export_holds_everything_of_the_person_and_nothing_of_others(
    app: App, school: tuple[PersonRecord, PersonRecord], tmp_path: Path
) -> None:
    sam, _ = school
    files = export_person(app, sam.handle, tmp_path / "sam.json")

    import json

    data = json.loads(files.json_path.read_text(encoding="utf-8"))
    assert set(data) == {"exported_at", "person", "groups", "advisors", "advisees", "tables"}
    assert data["person"]["handle"] == "sam-stone" and data["person"]["roles"] == ["student"]
    assert data["groups"] == ["7B"] and data["advisors"] == ["mr-lee"] and data["advisees"] == []
    tables = data["tables"]
    assert set(tables) == {part.name for part in PARTS}
    facts = {f["field"]: f["value"] for f in tables["profile_fact"]}
    assert facts == {"preferred_name": "Sammy-zq81", "family": "granny-zq81"}  # private too
    assert [g["title"] for g in tables["goal"]] == ["read-zq81"]
    assert [s["text"] for s in tables["action_step"]] == ["page a day-zq81"]
    assert [a["raw"] for a in tables["answer"]][:2] == ["Sammy-zq81", "granny-zq81"]
    assert tables["outbox"][0]["payload"]["text"]  # the messages, as JSON values
    assert [c["platform_user_id"] for c in tables["channel_identity"]] == ["1001"]
    assert len(tables["invite_code"]) == 1 and len(tables["audit_log"]) == 1
    assert "kw55" not in files.json_path.read_text(encoding="utf-8")
    assert files.rows == sum(len(rows) for rows in tables.values())
    assert "granny-zq81" in files.html_path.read_text(encoding="utf-8")


def test_the_page_shows_what_a_student_typed_as_text(app: App, tmp_path: Path) -> None:
    eve = app.people.add("Eve <script>alert(1)</script>", "student", handle="eve")
    talk(app, eve, "<script>alert('x')</script>", "<b>bold</b>", "goal", "step", "done")

    page = export_person(app, "eve", tmp_path / "eve.json").html_path.read_text(encoding="utf-8")

    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_a_student_may_export_their_own_data_only(
    app: App, school: tuple[PersonRecord, PersonRecord], tmp_path: Path
) -> None:
    sam, ana = school
    export_person(app, sam.handle, tmp_path / "mine.json", actor=app.actor(sam.handle))
    with pytest.raises(NotAllowedError):
        export_person(app, ana.handle, tmp_path / "hers.json", actor=app.actor(sam.handle))
    assert not (tmp_path / "hers.json").exists() and not (tmp_path / "hers.html").exists()


# -- retention -----------------------------------------------------------------------------


def counts(db: Database, *tables: str) -> dict[str, int]:
    with db.read() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def mark_sent(app: App) -> None:
    with app.db.begin() as conn:
        conn.execute(text("UPDATE outbox SET status = 'sent', sent_at = created_at"))


def test_prune_removes_old_transcripts_and_messages_never_the_profile_or_plan(
    app: App, clock: FrozenClock
) -> None:
    sam = student(app, "Sam Stone", "1001")
    talk(app, sam, "Sammy-zq81", "granny-zq81", "read-zq81", "page a day-zq81", "done")
    mark_sent(app)
    clock.advance(timedelta(days=300))
    ana = student(app, "Ana Diaz", "1002")
    talk(app, ana, "Ana", "aunt", "swim")  # under way: never pruned, however old
    profile = app.profiles.current(sam.id, include_private=True)
    plan = app.plans.plan(sam.id)

    clock.advance(timedelta(days=64))  # 364 days after Sam's conversation: kept
    assert app.person_data.prune(clock.now(), keep=app.settings.retention).total == 0

    clock.advance(timedelta(days=2))
    report = app.person_data.prune(clock.now(), keep=app.settings.retention)

    assert report.counts["answer"] == 4 and report.counts["conversation"] == 1
    assert report.counts["outbox"] > 0
    assert counts(app.db, "answer")["answer"] == 3  # Ana's
    assert app.profiles.current(sam.id, include_private=True) == profile
    assert app.plans.plan(sam.id) == plan
    with app.db.read() as conn:
        states = conn.execute(text("SELECT state FROM conversation")).scalars().all()
    assert not any("zq81" in s for s in states)
    assert app.person_data.prune(clock.now(), keep=app.settings.retention).total == 0


def test_the_running_bot_prunes_once_a_day_whichever_process_comes_first(
    app: App, clock: FrozenClock
) -> None:
    sam = student(app, "Sam Stone", "1001")
    talk(app, sam, "Sammy", "granny", "read", "page a day", "done")
    mark_sent(app)
    clock.advance(timedelta(days=400))
    schedulers = [Scheduler(app), Scheduler(app)]
    results: list[Any] = []

    def housekeep(scheduler: Scheduler) -> None:
        results.append(scheduler.housekeep(clock.now()))

    threads = [threading.Thread(target=housekeep, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = [r for r in results if r is not None]
    assert len(done) == 1 and done[0].counts["answer"] == 4
    clock.advance(timedelta(hours=23))
    assert schedulers[0].housekeep(clock.now()) is None
    clock.advance(timedelta(hours=1))
    again = schedulers[1].housekeep(clock.now())
    assert again is not None and again.total == 0


async def test_the_scheduler_loop_prunes(app: App, clock: FrozenClock) -> None:
    import asyncio

    sam = student(app, "Sam Stone", "1001")
    talk(app, sam, "Sammy", "granny", "read", "page a day", "done")
    clock.advance(timedelta(days=366))
    stop = asyncio.Event()

    async def offload(work, *args):  # type: ignore[no-untyped-def]
        stop.set()
        return work(*args)

    await Scheduler(app, offload=offload).run(stop)

    assert counts(app.db, "answer") == {"answer": 0}


def test_an_erased_person_is_taken_out_of_the_schedules_that_name_them(
    app: App, school: tuple[PersonRecord, PersonRecord]
) -> None:
    from storage import Audience

    sam, ana = school
    added = app.schedules.add(
        "mine",
        "FREQ=WEEKLY;BYDAY=WE;BYHOUR=10",
        Audience(people=(sam.handle, ana.handle)),
        now=app.clock.now(),
        default_zone="UTC",
    )

    erase_person(app, sam.handle)

    (kept,) = [s for s in app.schedules.schedules() if s.id == added.id]
    assert kept.audience.people == (ana.handle,)


# -- messages about a student to staff, and safety alerts ------------------------------------


def counselor(app: App, name: str, account: str) -> PersonRecord:
    person = app.people.add(name, "counselor")
    app.people.link_identity(person.id, "telegram", None, account, account)
    return person


def urgent_payloads(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(text("SELECT payload FROM outbox WHERE urgent")).scalars())


def test_a_delivered_safety_notice_is_listed_as_reached_after_retention_without_its_text(
    app: App, clock: FrozenClock
) -> None:
    counselor(app, "Cora Diaz", "2001")
    sam = student(app, "Sam Stone", "1001")
    talk(app, sam, "zq81 I get bullied", "granny", "read", "page a day", "done")
    mark_sent(app)
    assert any("zq81" in p for p in urgent_payloads(app.db))

    clock.advance(timedelta(days=366))
    report = app.person_data.prune(clock.now(), keep=app.settings.retention)

    assert report.counts[BLANKED] >= 1 and report.counts["outbox"] > 0
    assert not any("zq81" in p for p in urgent_payloads(app.db))
    [alert] = SafetyStore(app.db).alerts()
    assert alert.reached and [(n.handle, n.status) for n in alert.notified] == [
        ("cora-diaz", "sent")
    ]
    assert app.person_data.prune(clock.now(), keep=app.settings.retention).total == 0


def test_parked_messages_go_once_past_retention_replayed_or_not(
    app: App, clock: FrozenClock
) -> None:
    from storage import Letter

    sam = student(app, "Sam Stone", "1001")
    for words in ("never replayed zq81", "replayed zq81"):
        letter = Letter("telegram", Inbound.of_text(words), {}, person_id=sam.id)
        app.failed.park(letter, error="boom", attempts=3, now=clock.now())
    _, replayed = app.failed.parked()
    app.failed.replayed(replayed.id, now=clock.now())

    clock.advance(timedelta(days=364))
    assert app.person_data.prune(clock.now(), keep=app.settings.retention).total == 0
    clock.advance(timedelta(days=2))
    report = app.person_data.prune(clock.now(), keep=app.settings.retention)

    assert report.counts["failed_inbound"] == 2
    assert app.failed.parked(include_replayed=True) == []


def test_erasing_a_counselor_takes_their_handle_out_of_other_students_alerts(
    app: App, clock: FrozenClock
) -> None:
    cora = counselor(app, "Cora Diaz", "2001")
    counselor(app, "Carl Ode", "2002")
    sam = student(app, "Sam Stone", "1001")
    talk(app, sam, "I get bullied", "granny", "read", "page a day", "done")
    mark_sent(app)

    erase_person(app, cora.handle)

    [alert] = SafetyStore(app.db).alerts()
    assert [(n.handle, n.status) for n in alert.notified] == [
        (ERASED_STAFF, "sent"),
        ("carl-ode", "sent"),
    ]
    with app.db.read() as conn:
        details = conn.execute(text("SELECT detail FROM audit_log")).scalars().all()
    assert not any(cora.handle in d for d in details)


def test_erasing_a_student_takes_their_safety_notice_from_the_counselors_outbox(
    app: App, school: tuple[PersonRecord, PersonRecord]
) -> None:
    sam, ana = school
    cora = counselor(app, "Cora Diaz", "2001")
    talk(app, sam, "zq81 I get bullied", "granny", "read", "page a day", "done")
    talk(app, ana, "kw55 I get bullied", "aunt", "swim", "twice", "done")
    [(to, kind)] = {
        (row["to"], row["kind"]) for row in app.person_data.export(sam.handle)["tables"][ABOUT_THEM]
    }
    assert (to, kind) == (cora.handle, "safety notice")

    receipt = erase_person(app, sam.handle)

    assert receipt.counts[ABOUT_THEM] >= 1
    left = [r.payload for r in app.outbox.for_person(cora.id)]
    assert left and not any("zq81" in repr(p) for p in left)
    assert all("kw55" in repr(p) for p in left)  # Ana's notice stays
