"""The storage contract: every store behaves the same on SQLite and on PostgreSQL.

Every test here runs twice through the `database` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, func, select

from dialogues import (
    AddActionSteps,
    AnswerRecord,
    Attachment,
    ConversationState,
    ConversationStatus,
    ExistingGoal,
    FlagStep,
    NewGoal,
    Reply,
    ReplyKind,
    SaveArtifact,
    SetCheckin,
    SetCheckinGoal,
    SetGoal,
    SetOptOut,
    SetProfile,
    SetReflection,
    TurnResult,
)
from storage import (
    ConflictError,
    Database,
    InvalidValueError,
    OutboxStore,
    PeopleStore,
    PersonRecord,
    StorageError,
    UnknownPersonError,
    UnknownRecordError,
)
from storage._tables import (
    advisor_link,
    answer,
    audit_log,
    flow_version,
    group_member,
    metadata,
    student_group,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures

    from dialogues import Flow

    MakeFlow = Callable[..., Flow]

# --- helpers -----------------------------------------------------------------------------


def rows(db: Database, stmt: Any) -> list[Any]:
    with db.begin() as conn:
        return list(conn.execute(stmt).all())


def audit_actions(db: Database) -> list[tuple[str, dict[str, Any]]]:
    found = rows(db, select(audit_log.c.action, audit_log.c.detail).order_by(audit_log.c.id))
    return [(r.action, json.loads(r.detail)) for r in found]


def goal_id(stores: Stores, person: PersonRecord, title: str) -> int:
    for goal in stores.plan.plan(person.id)["goals"]:
        if goal["title"] == title:
            return int(goal["id"])
    raise AssertionError(f"no goal {title!r}")


def new_goal(stores: Stores, person: PersonRecord, title: str, key: str = "goal_title#0") -> int:
    stores.turn(person, SetGoal(NewGoal(key), "title", title, key))
    return goal_id(stores, person, title)


# --- schema ------------------------------------------------------------------------------


def test_migrated_schema_matches_the_models(database: Database) -> None:
    with database.begin() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_schema_comparison_would_notice_a_difference(database: Database) -> None:
    changed = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    Table("not_migrated", changed, Column("id", Integer, primary_key=True))
    with database.begin() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), changed)
    assert [d[0] for d in diff] == ["add_table"]


def test_schema_is_at_head_and_ensure_schema_is_a_no_op(database: Database) -> None:
    assert database.current_revision() == database.head_revision() == "0014"
    database.ensure_schema()
    assert database.current_revision() == "0014"


def test_a_database_without_a_version_table_is_at_no_revision(database: Database) -> None:
    with database.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE alembic_version RENAME TO alembic_version_aside")
    try:
        assert database.current_revision() is None
    finally:
        with database.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE alembic_version_aside RENAME TO alembic_version")
    assert database.current_revision() == database.head_revision()


def test_check_passes_on_a_reachable_database(database: Database) -> None:
    database.check()


# --- people ------------------------------------------------------------------------------


def test_add_derives_a_slug_handle_and_numbers_duplicates(stores: Stores) -> None:
    first = stores.people.add("Ana María López", "student")
    second = stores.people.add("Ana  María López", "student")
    third = stores.people.add("ANA MARIA LOPEZ", "teacher")
    assert (first.handle, second.handle, third.handle) == (
        "ana-maria-lopez",
        "ana-maria-lopez-2",
        "ana-maria-lopez-3",
    )
    assert first.display_name == "Ana María López"
    assert first.first_name == "Ana"
    assert first.roles == ("student",)
    assert third.roles == ("teacher",)
    assert first.language == "en" and first.timezone is None and not first.opted_out


def test_add_with_an_explicit_handle(stores: Stores) -> None:
    person = stores.people.add(
        "Bo Teacher", "teacher", handle="@Bo.T", timezone="America/Chicago", language="es"
    )
    assert person.handle == "bo.t"
    assert (person.timezone, person.language) == ("America/Chicago", "es")
    assert stores.people.get("BO.T") == person
    with pytest.raises(InvalidValueError, match="already taken"):
        stores.people.add("Someone Else", "student", handle="bo.t")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "X", "role": "janitor"}, "unknown role"),
        ({"name": "  ", "role": "student"}, "needs a name"),
        ({"name": "X", "role": "student", "timezone": "Mars/Olympus"}, "time zone"),
        ({"name": "X", "role": "student", "handle": "no spaces"}, "invalid handle"),
    ],
)
def test_add_refuses_bad_values(stores: Stores, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        stores.people.add(**kwargs)


def test_person_json(stores: Stores, student: PersonRecord) -> None:
    assert student.to_json() == {
        "id": student.id,
        "handle": "ana-lopez",
        "display_name": "Ana López",
        "first_name": "Ana",
        "timezone": "Europe/Madrid",
        "language": "en",
        "roles": ["student"],
        "opted_out": False,
    }


def test_get_find_and_by_id(stores: Stores, student: PersonRecord) -> None:
    assert stores.people.get("ana-lopez") == student
    assert stores.people.find("@Ana-Lopez") == student
    assert stores.people.by_id(student.id) == student
    assert stores.people.find("nobody") is None
    with pytest.raises(UnknownPersonError, match="nobody"):
        stores.people.get("nobody")
    with pytest.raises(LookupError):
        stores.people.by_id(999_999)


def test_advisor_link_and_unknown_advisor(stores: Stores) -> None:
    advisor = stores.people.add("Mr Rivera", "advisor", handle="rivera")
    student = stores.people.add("Sam", "student", advisor="rivera")
    links = rows(stores.db, select(advisor_link.c.advisor_id, advisor_link.c.student_id))
    assert [tuple(r) for r in links] == [(advisor.id, student.id)]

    with pytest.raises(UnknownPersonError, match="ghost"):
        stores.people.add("Kim", "student", advisor="ghost")
    assert stores.people.find("kim") is None  # nothing half-created

    with pytest.raises(InvalidValueError, match="cannot be an advisor"):
        stores.people.add("Lee", "student", advisor=student.handle)


def test_group_created_on_demand_and_shared(stores: Stores) -> None:
    a = stores.people.add("Ann", "student", group="7B")
    b = stores.people.add("Ben", "student", group=" 7B ")
    groups = rows(stores.db, select(student_group.c.id, student_group.c.name))
    assert [r.name for r in groups] == ["7B"]
    members = rows(stores.db, select(group_member.c.person_id).order_by(group_member.c.person_id))
    assert [r.person_id for r in members] == [a.id, b.id]


def test_ensure_student_creates_once(stores: Stores) -> None:
    created = stores.people.ensure_student("newbie")
    assert created.handle == "newbie" and created.roles == ("student",)
    assert stores.people.ensure_student("NewBie") == created


def test_identities(stores: Stores, student: PersonRecord) -> None:
    other = stores.people.add("Other", "student")
    assert stores.people.by_identity("telegram", None, "42") is None
    stores.people.link_identity(student.id, "telegram", None, "42", "chat-42")
    assert stores.people.by_identity("telegram", "", "42") == student
    assert stores.people.by_identity("slack", "", "42") is None
    stores.people.link_identity(student.id, "slack", "T1", "U1", "D1")
    assert stores.people.by_identity("slack", "T1", "U1") == student
    assert stores.people.by_identity("slack", "T2", "U1") is None
    stores.people.link_identity(other.id, "telegram", None, "42", "chat-42")  # re-linked
    assert stores.people.by_identity("telegram", None, "42") == other
    with pytest.raises(UnknownPersonError):
        stores.people.link_identity(999_999, "telegram", None, "43", None)


# --- profile -----------------------------------------------------------------------------


def test_profile_current_is_latest_per_field_nested(stores: Stores, student: PersonRecord) -> None:
    stores.profile.set(student.id, "interests", ["art"])
    stores.profile.set(student.id, "environment.noise_level", 2)
    stores.profile.set(student.id, "environment.light", "bright")
    stores.profile.set(student.id, "interests", ["music", "señales"])
    assert stores.profile.current(student.id) == {
        "interests": ["music", "señales"],
        "environment": {"noise_level": 2, "light": "bright"},
    }


def test_profile_history_keeps_every_value(stores: Stores, student: PersonRecord) -> None:
    stores.profile.set(student.id, "interests", ["art"])
    stores.profile.set(student.id, "environment.noise_level", 2)
    stores.profile.set(student.id, "interests", ["music"], source="admin")
    history = stores.profile.history(student.id, "interests")
    assert [(f.value, f.source) for f in history] == [(["art"], "cli"), (["music"], "admin")]
    assert [f.field for f in stores.profile.history(student.id, "environment")] == [
        "environment.noise_level"
    ]
    assert len(stores.profile.history(student.id)) == 3
    assert history[0].created_at.tzinfo is not None
    assert history[0].to_json()["value"] == ["art"]


def test_profile_private_fields_hidden_by_default(stores: Stores, student: PersonRecord) -> None:
    stores.profile.set(student.id, "family.languages", ["es"])
    stores.profile.set(student.id, "family.languages", ["es", "en"], private=True)
    stores.profile.set(student.id, "interests", ["art"])
    assert stores.profile.current(student.id) == {"interests": ["art"]}
    assert stores.profile.current(student.id, include_private=True) == {
        "interests": ["art"],
        "family": {"languages": ["es", "en"]},
    }
    with stores.conversations.turn(student.id) as turn:
        assert turn.load_profile()["family"] == {"languages": ["es", "en"]}


def test_profile_cleared_field_disappears(stores: Stores, student: PersonRecord) -> None:
    stores.profile.set(student.id, "nickname", "Ani")
    stores.profile.set(student.id, "nickname", None)
    assert stores.profile.current(student.id) == {}
    assert len(stores.profile.history(student.id, "nickname")) == 2


def test_profile_set_refuses_bad_field_and_unknown_person(
    stores: Stores, student: PersonRecord
) -> None:
    with pytest.raises(InvalidValueError):
        stores.profile.set(student.id, "bad field", 1)
    with pytest.raises(UnknownPersonError):
        stores.profile.set(999_999, "x", 1)


def test_profile_effect_keeps_provenance(
    make_flow: MakeFlow, stores: Stores, student: PersonRecord
) -> None:
    record = stores.start(student, make_flow(version=3))
    stores.turn(student, SetProfile(("environment", "noise_level"), 4, False, False, "noise#None"))
    [fact] = stores.profile.history(student.id)
    assert (fact.field, fact.value, fact.private, fact.source) == (
        "environment.noise_level",
        4,
        False,
        "conversation",
    )
    assert (fact.conversation_id, fact.flow_id, fact.flow_version) == (record.id, "this_is_me", 3)
    assert (fact.step_id, fact.origin) == ("noise", "noise#None")
    assert stores.profile.current(student.id) == {"environment": {"noise_level": 4}}


def test_profile_append_builds_on_current_and_re_answers_replace(
    stores: Stores, student: PersonRecord
) -> None:
    stores.profile.set(student.id, "interests", ["art"])
    stores.start(student)

    def append(items: list[str], origin: str) -> Any:
        stores.turn(student, SetProfile(("interests",), items, True, False, origin))
        return stores.profile.current(student.id)["interests"]

    assert append(["music", "art"], "more#0") == ["art", "music"]
    assert append(["coding"], "more#0") == ["art", "coding"]  # /back and re-answer
    assert append(["nature"], "more#0") == ["art", "nature"]  # and again
    assert append(["music"], "other#0") == ["art", "nature", "music"]
    assert len(stores.profile.history(student.id, "interests")) == 5


# --- goals and action steps --------------------------------------------------------------


def test_new_goal_is_created_once_and_filled(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    key = NewGoal("goal_title#0")
    stores.turn(student, SetGoal(key, "title", "Read more", "goal_title#0"))
    stores.turn(
        student,
        SetGoal(key, "why", "I like stories", "goal_why#0"),
        SetGoal(key, "target_date", "2026-12-01", "goal_date#0"),
        SetGoal(key, "support", ["library", "time"], "goal_support#0"),
        SetGoal(key, "category", "academic", "goal_category#0"),
    )
    stores.turn(student, SetGoal(key, "title", "Read a lot more", "goal_title#0"))  # re-answer
    plan = stores.plan.plan(student.id)
    [goal] = plan["goals"]
    assert plan["active_goals"] == [goal]
    assert {k: goal[k] for k in ("title", "why", "category", "target_date", "support")} == {
        "title": "Read a lot more",
        "why": "I like stories",
        "category": "academic",
        "target_date": "2026-12-01",
        "support": "library, time",
    }
    assert goal["status"] == "active"
    assert goal["action_steps"] == [] and goal["checkins"] == [] and goal["last_checkin"] is None
    assert datetime.fromisoformat(goal["created_at"]).tzinfo is not None


def test_goal_status_is_validated(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    gid = new_goal(stores, student, "Run 5k")
    stores.turn(student, SetGoal(ExistingGoal(gid), "status", "finished-ish", "s#0"))
    assert stores.plan.plan(student.id)["goals"][0]["status"] == "active"
    stores.turn(student, SetGoal(ExistingGoal(gid), "status", "paused", "s#0"))
    plan = stores.plan.plan(student.id)
    assert plan["goals"][0]["status"] == "paused" and plan["active_goals"] == []


def test_someone_elses_goal_is_ignored_and_audited(stores: Stores, student: PersonRecord) -> None:
    other = stores.people.add("Other", "student")
    stores.start(other)
    foreign = new_goal(stores, other, "Theirs")
    stores.start(student)
    stores.turn(
        student,
        SetGoal(ExistingGoal(foreign), "status", "dropped", "g#1"),
        AddActionSteps(ExistingGoal(foreign), ("sneaky",), "steps#1"),
        SetCheckinGoal(foreign, "progress", 1, "progress#1"),
    )
    [theirs] = stores.plan.plan(other.id)["goals"]
    assert theirs["status"] == "active" and theirs["action_steps"] == []
    assert theirs["checkins"] == []
    actions = audit_actions(stores.db)
    assert [a for a, _ in actions] == ["foreign_goal_ignored"] * 3
    assert actions[0][1] == {"goal_id": foreign, "origin": "g#1"}


def test_action_steps_replace_by_origin(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    key = NewGoal("goal_title#0")
    stores.turn(student, SetGoal(key, "title", "Math", "goal_title#0"))

    def steps(*items: str, origin: str) -> list[str]:
        stores.turn(student, AddActionSteps(key, items, origin))
        return list(stores.plan.plan(student.id)["goals"][0]["action_steps"])

    assert steps("practice", "ask for help", origin="steps#0") == ["practice", "ask for help"]
    assert steps("flash cards", origin="steps#0") == ["flash cards"]
    assert steps("study group", origin="steps#1") == ["flash cards", "study group"]
    assert steps("tutor", "quiz", origin="steps#0") == ["study group", "tutor", "quiz"]
    stores.turn(student, SetGoal(key, "action_steps", ["one", "two"], "steps#2"))
    assert stores.plan.plan(student.id)["goals"][0]["action_steps"][-2:] == ["one", "two"]


# --- check-ins, reflections, artifacts ---------------------------------------------------


def test_checkins_and_goal_updates(
    make_flow: MakeFlow, stores: Stores, student: PersonRecord
) -> None:
    stores.start(student, make_flow("goal_setting"))
    read = new_goal(stores, student, "Read")
    run = new_goal(stores, student, "Run", key="goal_title#1")

    first = stores.start(student, make_flow("weekly_checkin"))
    stores.turn(student, SetCheckin("mood", 4, "mood#0"), SetCheckin("energy", "low", "e#0"))
    stores.turn(
        student,
        SetCheckinGoal(read, "progress", 3, "progress#0"),
        SetCheckinGoal(read, "did", "two chapters", "did#0"),
    )
    stores.turn(student, SetCheckinGoal(read, "blockers", ["time"], "blockers#0"))
    stores.turn(
        student,
        SetCheckin("wants_meeting", True, "meet#0"),
        SetCheckin("note_for_advisor", "busy week", "note#0"),
        SetCheckin("highlight", "the play", "highlight#0"),
    )
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation("weekly_checkin")
        assert record is not None and record.id == first.id
        turn.end_conversation(record, ConversationStatus.COMPLETED)

    stores.start(student, make_flow("weekly_checkin"))
    stores.turn(
        student, SetCheckin("mood", 5, "mood#0"), SetCheckinGoal(read, "progress", 4, "p#0")
    )

    [c1, c2] = stores.plan.checkins(student.id)
    assert (c1.mood, c1.energy, c1.wants_meeting, c1.note_for_advisor, c1.highlight) == (
        4,
        "low",
        True,
        "busy week",
        "the play",
    )
    assert c1.conversation_id == first.id
    [update] = c1.goal_updates
    assert (update.goal_id, update.progress, update.did, update.blockers, update.next_step) == (
        read,
        3,
        "two chapters",
        "time",
        None,
    )
    assert (c2.mood, c2.wants_meeting, c2.goal_updates[0].progress) == (5, None, 4)

    goals = {g["id"]: g for g in stores.plan.plan(student.id)["goals"]}
    assert goals[run]["checkins"] == [] and goals[run]["last_checkin"] is None
    history = goals[read]["checkins"]
    assert [(c["mood"], c["progress"]) for c in history] == [(4, 3), (5, 4)]
    assert goals[read]["last_checkin"] == {
        "progress": 4,
        "did": None,
        "blockers": None,
        "next_step": None,
        "at": history[1]["at"],
    }


def test_reflection_fields_collect_per_conversation(
    make_flow: MakeFlow, stores: Stores, student: PersonRecord
) -> None:
    record = stores.start(student, make_flow("reflection"))
    stores.turn(student, SetReflection("proud_of", "my essay", "proud#0"))
    stores.turn(student, SetReflection("next_term", ["more art"], "next#0"))
    stores.turn(student, SetReflection("proud_of", "my essay and poem", "proud#0"))
    [reflection] = stores.plan.reflections(student.id)
    assert reflection.conversation_id == record.id
    assert reflection.fields == {"proud_of": "my essay and poem", "next_term": ["more art"]}


def test_artifacts_replace_by_origin(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    photo = Attachment("photo", file_id="F1", caption="my drawing")
    doc = Attachment("document", file_id="F2", name="essay.pdf", mime_type="application/pdf")
    link = Attachment("link", url="https://example.org/work")
    stores.turn(student, SaveArtifact(photo, None, "sample#0"))
    stores.turn(student, SaveArtifact(doc, None, "sample#0"))  # re-answer replaces
    key = NewGoal("goal_title#0")
    stores.turn(student, SetGoal(key, "title", "Write", "goal_title#0"))
    stores.turn(student, SaveArtifact(link, key, "evidence#0"))
    artifacts = stores.plan.artifacts(student.id)
    assert [a.attachment for a in artifacts] == [doc, link]
    assert artifacts[0].goal_id is None
    assert artifacts[1].goal_id == goal_id(stores, student, "Write")
    assert artifacts[1].to_json()["url"] == "https://example.org/work"


def test_opt_out_and_back(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    stores.turn(student, SetOptOut(True, "stop"))
    assert stores.people.get(student.handle).opted_out is True
    with stores.conversations.turn(student.id) as turn:
        assert turn.person.opted_out is True
    stores.turn(student, SetOptOut(False))
    assert stores.people.get(student.handle).opted_out is False


def test_flagged_step_is_audited(stores: Stores, student: PersonRecord) -> None:
    record = stores.start(student)
    stores.turn(student, FlagStep("age", "too many invalid answers", "age#0"))
    [(action, detail)] = audit_actions(stores.db)
    assert action == "step_flagged"
    assert detail["step_id"] == "age" and detail["conversation_id"] == record.id


# --- conversations -----------------------------------------------------------------------


def test_flow_version_stored_once_and_conversations_stay_pinned(
    make_flow: MakeFlow, stores: Stores
) -> None:
    ann = stores.people.add("Ann", "student")
    ben = stores.people.add("Ben", "student")
    v1 = make_flow(version=1)
    v2 = make_flow(version=2, extra="# more questions\n")
    first = stores.start(ann, v1)
    stores.start(ben, v1)
    later = stores.start(ben, v2)
    versions = rows(stores.db, select(flow_version.c.version, flow_version.c.content_hash))
    assert sorted((r.version, r.content_hash) for r in versions) == sorted(
        [(1, v1.content_hash), (2, v2.content_hash)]
    )
    assert later.content_hash == v2.content_hash and later.flow_version == 2
    with stores.conversations.turn(ann.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        assert (record.id, record.content_hash, record.flow_version) == (
            first.id,
            v1.content_hash,
            1,
        )
        assert turn.flow_source(record.content_hash) == v1.source
        assert turn.flow_source("0" * 64) is None


def test_open_conversation_picks_latest_open_one(
    make_flow: MakeFlow, stores: Stores, student: PersonRecord
) -> None:
    profile = stores.start(student, make_flow("this_is_me"))
    checkin = stores.start(student, make_flow("weekly_checkin"))
    with stores.conversations.turn(student.id) as turn:
        latest = turn.open_conversation()
        assert latest is not None and latest.id == checkin.id
        by_flow = turn.open_conversation("this_is_me")
        assert by_flow is not None and by_flow.id == profile.id
        assert turn.open_conversation("unknown_flow") is None
    stores.turn(student, flow_id="this_is_me")  # now the most recently updated
    with stores.conversations.turn(student.id) as turn:
        latest = turn.open_conversation()
        assert latest is not None and latest.id == profile.id
        turn.end_conversation(latest, "completed")
    with stores.conversations.turn(student.id) as turn:
        remaining = turn.open_conversation()
        assert remaining is not None and remaining.id == checkin.id
        assert turn.open_conversation("this_is_me") is None


def test_paused_and_stopped_conversations_are_open(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    for status in (ConversationStatus.PAUSED, ConversationStatus.STOPPED):
        with stores.conversations.turn(student.id) as turn:
            record = turn.open_conversation()
            assert record is not None
            state = ConversationState(step="q1", status=status)
            turn.save(record, TurnResult(state=state), platform="console", address="a")
        with stores.conversations.turn(student.id) as turn:
            record = turn.open_conversation()
            assert record is not None and record.state.status is status


def test_save_writes_state_answers_and_outbox(stores: Stores, student: PersonRecord) -> None:
    record = stores.start(student)
    replies = [
        Reply("Nice!"),
        Reply("Pick some", kind=ReplyKind.MULTI_CHOICE, step_id="interests", min_picks=1),
    ]
    with stores.conversations.turn(student.id) as turn:
        loaded = turn.open_conversation()
        assert loaded is not None and loaded.version == 0
        state = ConversationState(step="interests", answers={"q1": "Ani ✨"})
        result = TurnResult(
            state=state,
            replies=replies,
            answers=[
                AnswerRecord("q1", None, "Ani ✨", "Ani ✨"),
                AnswerRecord("q2", 0, None, "", "skipped"),
            ],
        )
        ids = turn.save(loaded, result, platform="telegram", address="chat-1")
    assert len(ids) == 2 and ids[0] < ids[1]
    with stores.conversations.turn(student.id) as turn:
        again = turn.open_conversation()
        assert again is not None
        assert (again.version, again.state.step, again.state.answers) == (
            1,
            "interests",
            {"q1": "Ani ✨"},
        )
    saved = rows(
        stores.db,
        select(answer.c.step_id, answer.c.iteration, answer.c.value, answer.c.raw, answer.c.status)
        .where(answer.c.conversation_id == record.id)
        .order_by(answer.c.id),
    )
    assert [tuple(r) for r in saved] == [
        ("q1", None, '"Ani ✨"', "Ani ✨", "answered"),
        ("q2", 0, "null", "", "skipped"),
    ]
    messages = stores.outbox.for_person(student.id)
    assert [m.id for m in messages] == ids
    assert [m.reply for m in messages] == replies
    assert {(m.platform, m.address, m.status, m.conversation_id) for m in messages} == {
        ("telegram", "chat-1", "pending", record.id)
    }


def test_a_record_from_an_earlier_turn_is_refused(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    with stores.conversations.turn(student.id) as turn:
        stale = turn.open_conversation()
    assert stale is not None
    stores.turn(student)
    with pytest.raises(ConflictError), stores.conversations.turn(student.id) as turn:
        turn.save(stale, TurnResult(state=stale.state), platform="console", address="a")
    with pytest.raises(ConflictError), stores.conversations.turn(student.id) as turn:
        fresh = turn.open_conversation()  # even beside a fresh copy, the stale one is refused
        assert fresh is not None and fresh.version == stale.version + 1
        turn.save(stale, TurnResult(state=stale.state), platform="console", address="a")
    other = stores.people.add("Other", "student")
    with (
        pytest.raises(ConflictError, match="belongs to person"),
        stores.conversations.turn(other.id) as turn,
    ):
        turn.save(stale, TurnResult(state=stale.state), platform="console", address="a")


def test_two_saves_in_one_turn(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    with stores.conversations.turn(student.id) as turn:
        record = turn.open_conversation()
        assert record is not None
        turn.save(record, TurnResult(state=record.state), platform="console", address="a")
        turn.end_conversation(record, ConversationStatus.EXPIRED)
    with stores.conversations.turn(student.id) as turn:
        assert turn.open_conversation() is None


def test_turn_for_unknown_person(stores: Stores) -> None:
    with pytest.raises(UnknownPersonError), stores.conversations.turn(999_999):
        pass


def test_claim_event_deduplicates_and_keeps_the_transaction_usable(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    with stores.conversations.turn(student.id) as turn:
        assert turn.claim_event("telegram:1001") is True
        assert turn.claim_event("telegram:1001") is False
        record = turn.open_conversation()  # still usable after the conflict
        assert record is not None
        turn.save(record, TurnResult(state=record.state), platform="console", address="a")
    with stores.conversations.turn(student.id) as turn:
        assert turn.claim_event("telegram:1001") is False
        assert turn.claim_event("telegram:1002") is True
        record = turn.open_conversation()
        assert record is not None and record.version == 1


def test_a_failed_turn_rolls_everything_back(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    with pytest.raises(RuntimeError), stores.conversations.turn(student.id) as turn:
        assert turn.claim_event("slack:E1")
        record = turn.open_conversation()
        assert record is not None
        turn.save(
            record,
            TurnResult(state=record.state, replies=[Reply("hi")]),
            platform="console",
            address="a",
        )
        raise RuntimeError("engine crashed")
    with stores.conversations.turn(student.id) as turn:
        assert turn.claim_event("slack:E1") is True  # the platform's retry is processed
        record = turn.open_conversation()
        assert record is not None and record.version == 0
    assert stores.outbox.for_person(student.id) == []


def test_load_plan_takes_at_most_three_queries(
    make_flow: MakeFlow, stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    for i in range(4):
        key = NewGoal(f"goal_title#{i}")
        stores.turn(
            student,
            SetGoal(key, "title", f"Goal {i}", f"goal_title#{i}"),
            AddActionSteps(key, ("a", "b"), f"steps#{i}"),
        )
    goal_ids = [g["id"] for g in stores.plan.plan(student.id)["goals"]]
    stores.start(student, make_flow("weekly_checkin"))
    stores.turn(student, *(SetCheckinGoal(g, "progress", 2, f"p#{g}") for g in goal_ids))

    with stores.statements() as statements, stores.conversations.turn(student.id) as turn:
        before = len(statements)
        plan = turn.load_plan()
        queries = statements[before:]
    assert 1 <= len(queries) <= 3, queries
    assert [len(g["action_steps"]) for g in plan["goals"]] == [2, 2, 2, 2]
    assert all(g["last_checkin"]["progress"] == 2 for g in plan["goals"])


# --- outbox ------------------------------------------------------------------------------


def test_outbox_lifecycle(stores: Stores, student: PersonRecord) -> None:
    stores.start(student)
    ids = stores.turn(student, replies=[Reply("one"), Reply("two"), Reply("three")])
    slack_ids = stores.turn(student, replies=[Reply("four")])
    now = datetime.now(UTC)
    assert [m.id for m in stores.outbox.pending(now=now)] == [*ids, *slack_ids]
    assert [m.id for m in stores.outbox.pending(limit=2, now=now)] == ids[:2]
    assert stores.outbox.pending(platform="slack", now=now) == []
    assert len(stores.outbox.pending(platform="console", now=now)) == 4
    assert len(stores.outbox.pending(platform="console", address=student.handle, now=now)) == 4
    assert stores.outbox.pending(address="someone-else", now=now) == []
    assert stores.outbox.pending(now=now - timedelta(hours=1)) == []

    stores.outbox.mark_sent(ids[0], platform_message_id="m-1")
    later = now + timedelta(minutes=5)
    stores.outbox.mark_retry(ids[1], later, "HTTP 429 Too Many Requests")
    stores.outbox.mark_dead(ids[2], "chat not found")
    assert [m.id for m in stores.outbox.pending(now=now)] == slack_ids
    assert [m.id for m in stores.outbox.pending(now=later)] == [ids[1], *slack_ids]

    by_id = {m.id: m for m in stores.outbox.for_person(student.id)}
    sent, retried, dead = by_id[ids[0]], by_id[ids[1]], by_id[ids[2]]
    assert (sent.status, sent.attempts, sent.platform_message_id) == ("sent", 1, "m-1")
    assert sent.sent_at is not None and sent.sent_at.tzinfo is not None
    assert (retried.status, retried.attempts, retried.last_error) == (
        "pending",
        1,
        "HTTP 429 Too Many Requests",
    )
    assert retried.not_before == later
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, "chat not found")
    assert stores.outbox.get(ids[0]) == sent
    with pytest.raises(UnknownRecordError):
        stores.outbox.mark_sent(999_999)
    with pytest.raises(StorageError):
        stores.outbox.get(999_999)


def test_outbox_not_before_compares_across_time_zones(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    [message_id] = stores.turn(student, replies=[Reply("later")])
    tokyo = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    stores.outbox.mark_retry(message_id, tokyo + timedelta(minutes=10), "timeout")
    assert stores.outbox.pending(now=datetime.now(UTC) + timedelta(minutes=9)) == []
    [due] = stores.outbox.pending(now=datetime.now(UTC) + timedelta(minutes=11))
    assert due.not_before.tzinfo is not None
    assert due.not_before == tokyo + timedelta(minutes=10)


def test_flow_version_rows_count(
    make_flow: MakeFlow, stores: Stores, student: PersonRecord
) -> None:
    flow = make_flow()
    for _ in range(3):
        stores.start(student, flow)
    count = rows(stores.db, select(func.count()).select_from(flow_version))
    assert count[0][0] == 1


def test_reachability_follows_the_platform_user_or_chat(database: Database) -> None:
    people = PeopleStore(database)
    sam = people.add("Sam Lee", "student")
    people.link_identity(sam.id, "telegram", None, "1001", "1001")
    people.link_identity(sam.id, "slack", "T1", "U1", "D1")
    assert people.is_reachable("telegram", None, "1001") is True
    assert people.set_reachable("telegram", None, reachable=False, chat_id="1001") == 1
    assert people.is_reachable("telegram", None, "1001") is False
    assert people.is_reachable("slack", "T1", "U1") is True  # other platforms unaffected
    people.link_identity(sam.id, "telegram", None, "1001", "1001")  # linking again: reachable
    assert people.is_reachable("telegram", None, "1001") is True
    assert people.is_reachable("telegram", None, "nobody") is None
    with pytest.raises(ValueError, match="exactly one"):
        people.set_reachable("telegram", None, reachable=True)


def test_messages_outside_conversations_are_queued_in_order(database: Database) -> None:
    outbox = OutboxStore(database)
    ids = outbox.queue(
        [Reply("one"), Reply("two")], person_id=None, platform="telegram", address="42"
    )
    assert ids == sorted(ids) and len(ids) == 2
    pending = outbox.pending(platform="telegram", address="42")
    assert [(r.id, r.reply.text, r.conversation_id) for r in pending] == [
        (ids[0], "one", None),
        (ids[1], "two", None),
    ]


def test_open_question_is_only_the_question_a_conversation_waits_on(
    stores: Stores, student: PersonRecord
) -> None:
    def ask(step: str) -> int:
        return stores.turn(student, replies=[Reply("ok"), Reply(f"{step}?", step_id=step)])[1]

    first = stores.start(student)
    old, current = ask("q1"), ask("q2")
    notice = stores.outbox.queue([Reply("card")], person_id=student.id, platform="x", address="a")
    assert stores.outbox.open_question(old) is None
    assert stores.outbox.open_question(notice[0]) is None
    open_now = stores.outbox.open_question(current)
    assert open_now is not None and open_now.reply.step_id == "q2"
    assert stores.outbox.open_question(999_999) is None

    stores.start(student)  # a second conversation, now the one the student is in
    assert stores.outbox.open_question(current) is None
    with stores.conversations.turn(student.id) as turn:
        latest = turn.open_conversation()
        assert latest is not None and latest.id != first.id
        turn.end_conversation(latest, "completed")
    assert stores.outbox.open_question(current) is not None  # back to the first one
    with stores.conversations.turn(student.id) as turn:
        again = turn.open_conversation()
        assert again is not None and again.id == first.id
        turn.end_conversation(again, "completed")
    assert stores.outbox.open_question(current) is None


def test_a_platform_user_links_by_the_email_on_the_roster(stores: Stores) -> None:
    ana = stores.people.add("Ana Diaz", "student", email="  Ana.Diaz@School.example ")
    assert stores.people.link_by_email("nobody@school.example", "slack", "T1", "U1", "D1") is None
    linked = stores.people.link_by_email("ana.diaz@school.EXAMPLE", "slack", "T1", "U9", "D9")
    assert linked is not None and linked.id == ana.id
    found = stores.people.by_identity("slack", "T1", "U9")
    assert found is not None and found.id == ana.id
    assert stores.people.by_identity("slack", "T2", "U9") is None  # another workspace
    with pytest.raises(InvalidValueError, match="already has the email"):
        stores.people.add("Ana Two", "student", email="ana.diaz@school.example")
    with pytest.raises(InvalidValueError, match="not an email address"):
        stores.people.add("Bo", "student", email="bo at school")
    stores.people.add("No Email", "student")
    stores.people.add("Also None", "student")  # many people without an email
