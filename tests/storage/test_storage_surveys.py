"""Surveys in storage (SurveyStore), on SQLite and PostgreSQL: who a survey is for, the repeat
check under the group's lock, a chat message's redelivery, the live counts, and the responses."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from dialogues import ConversationState, Flow
from storage import (
    ConversationStore,
    Database,
    PeopleStore,
    RecentSurveyError,
    RosterEntry,
    RosterStore,
    StaleSurveyError,
    SurveyAnswer,
    SurveyStore,
    UnknownRecordError,
    metadata,
)

NOW = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _class(database: Database) -> RosterStore:
    roster = RosterStore(database)
    roster.import_people(
        [
            RosterEntry(2, "Tina", "teacher", handle="tina", groups=("7B",)),
            RosterEntry(3, "Ana", "student", handle="ana", groups=("7B",)),
            RosterEntry(4, "Bo", "student", handle="bo", groups=("7B", "8A")),
            RosterEntry(5, "Cy", "student", handle="cy", groups=("8A",)),
        ]
    )
    return roster


def _due_rows(database: Database, survey_id: int) -> list[tuple[object, ...]]:
    due = metadata.tables["due_start"]
    with database.read() as conn:
        rows = conn.execute(
            select(due.c.person_id, due.c.flow_id, due.c.occurrence, due.c.wake_at).where(
                due.c.survey_id == survey_id
            )
        )
        return sorted(tuple(r) for r in rows)


def test_a_survey_is_for_the_students_of_its_group_each_with_a_due_start(
    database: Database,
) -> None:
    roster, people, surveys = _class(database), PeopleStore(database), SurveyStore(database)
    sent = surveys.send("weekly_checkin", roster.group("7B"), sent_by=None, now=NOW, not_since=None)
    assert sent is not None
    survey, students = sent
    ana, bo = people.get("ana").id, people.get("bo").id
    assert students == sorted([ana, bo])  # the teacher of 7B is not asked
    assert _due_rows(database, survey.id) == [
        (ana, "weekly_checkin", "send", NOW),
        (bo, "weekly_checkin", "send", NOW),
    ]
    assert surveys.get(survey.id) == survey
    assert survey.group.name == "7B" and survey.sent_at == NOW and survey.sent_by is None
    assert surveys.latest("weekly_checkin", roster.group("7B").id) == survey
    with pytest.raises(UnknownRecordError, match="no survey 99"):
        surveys.get(99)


def test_the_same_flow_to_the_same_group_within_the_window_is_refused(database: Database) -> None:
    roster, surveys = _class(database), SurveyStore(database)
    seventh = roster.group("7B")
    first = surveys.send("weekly_checkin", seventh, sent_by=None, now=NOW, not_since=None)
    assert first is not None
    later = NOW + timedelta(days=6)
    with pytest.raises(RecentSurveyError) as refused:
        surveys.send("weekly_checkin", seventh, sent_by=None, now=later, not_since=later - WEEK)
    assert refused.value.earlier == first[0]
    assert "weekly_checkin was sent to 7B on 2026-09-07 09:00 UTC (survey 1)" in str(refused.value)
    # another flow, another group, or a week later: fine
    assert surveys.send("goal_setting", seventh, sent_by=None, now=later, not_since=later - WEEK)
    assert surveys.send(
        "weekly_checkin", roster.group("8A"), sent_by=None, now=later, not_since=later - WEEK
    )
    week_later = NOW + WEEK + timedelta(minutes=1)
    again = surveys.send(
        "weekly_checkin", seventh, sent_by=None, now=week_later, not_since=week_later - WEEK
    )
    assert again is not None and again[0].id == 4


def test_a_confirmed_repeat_goes_out_once_however_often_it_is_confirmed(
    database: Database,
) -> None:
    roster, surveys = _class(database), SurveyStore(database)
    seventh = roster.group("7B")
    first = surveys.send("weekly_checkin", seventh, sent_by=None, now=NOW, not_since=None)
    assert first is not None
    again = surveys.send(
        "weekly_checkin", seventh, sent_by=None, now=NOW, not_since=None, repeating=first[0].id
    )
    assert again is not None
    with pytest.raises(StaleSurveyError, match="sent to 7B again since you were asked"):
        surveys.send(
            "weekly_checkin", seventh, sent_by=None, now=NOW, not_since=None, repeating=first[0].id
        )
    assert surveys.latest("weekly_checkin", seventh.id) == again[0]


def test_a_redelivered_chat_message_sends_nothing(database: Database) -> None:
    roster, surveys = _class(database), SurveyStore(database)
    seventh = roster.group("7B")
    key = "telegram:1:42"
    assert surveys.send("weekly_checkin", seventh, sent_by=None, not_since=None, event_key=key)
    assert (
        surveys.send("goal_setting", seventh, sent_by=None, not_since=None, event_key=key) is None
    )
    assert surveys.latest("goal_setting", seventh.id) is None


def test_two_sends_at_once_to_one_group_make_one_survey(database: Database) -> None:
    roster, surveys = _class(database), SurveyStore(database)
    seventh = roster.group("7B")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        try:
            surveys.send("weekly_checkin", seventh, sent_by=None, now=NOW, not_since=NOW - WEEK)
            outcomes.append("sent")
        except RecentSurveyError:
            outcomes.append("refused")

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused", "sent"]


def test_unanswered_are_the_open_conversations_of_students_who_did_not_opt_out(
    database: Database, make_flow: Callable[..., Flow]
) -> None:
    roster, people, surveys = _class(database), PeopleStore(database), SurveyStore(database)
    sent = surveys.send("weekly_checkin", roster.group("8A"), sent_by=None, now=NOW, not_since=None)
    assert sent is not None
    survey = sent[0]
    assert surveys.unanswered(survey.id) == []
    flow = make_flow("weekly_checkin")
    ids = {
        handle: _start(database, people.get(handle).id, flow, survey.id, status)
        for handle, status in (("bo", "active"), ("cy", "paused"))
    }
    assert surveys.unanswered(survey.id) == [
        (people.get("bo").id, ids["bo"]),
        (people.get("cy").id, ids["cy"]),
    ]
    _set(database, "conversation", ids["bo"], status="completed")
    _set(database, "person", people.get("cy").id, opted_out=True)
    assert surveys.unanswered(survey.id) == []


def _start(database: Database, person_id: int, flow: Flow, survey_id: int, status: str) -> int:
    """A conversation of the survey for the person, in ``status``."""
    with ConversationStore(database).turn(person_id) as turn:
        record = turn.start_conversation(flow, ConversationState(step="q1"), survey_id=survey_id)
    _set(database, "conversation", record.id, status=status)
    return record.id


def _set(database: Database, table_name: str, row_id: int, **values: object) -> None:
    table = metadata.tables[table_name]
    with database.begin() as conn:
        conn.execute(update(table).where(table.c.id == row_id).values(**values))


def test_counts_follow_each_student_live(
    database: Database, make_flow: Callable[..., Flow]
) -> None:
    roster, people, surveys = _class(database), PeopleStore(database), SurveyStore(database)
    roster.import_people(
        [
            RosterEntry(2, "Dan", "student", handle="dan", groups=("8A",)),
            RosterEntry(3, "Eve", "student", handle="eve", groups=("8A",)),
            RosterEntry(4, "Fay", "student", handle="fay", groups=("8A",)),
        ]
    )
    sent = surveys.send("weekly_checkin", roster.group("8A"), sent_by=None, now=NOW, not_since=None)
    assert sent is not None
    survey = sent[0]
    assert surveys.counts(survey.id).to_json() == dict.fromkeys(
        (
            "started",
            "completed",
            "expired",
            "in_progress",
            "no_account",
            "opted_out",
            "unreachable",
        ),
        0,
    )
    flow = make_flow("weekly_checkin")
    who = {h: people.get(h).id for h in ("bo", "cy", "dan", "eve", "fay")}
    for handle in ("bo", "cy", "dan", "eve"):  # Fay: not started (busy, say)
        _start(database, who[handle], flow, survey.id, "active")
    for handle in ("bo", "dan", "fay"):
        people.link_identity(who[handle], "telegram", None, str(who[handle]), str(who[handle]))
    people.set_reachable("telegram", None, reachable=False, user_id=str(who["dan"]))
    _set(database, "person", who["fay"], opted_out=True)
    counts = surveys.counts(survey.id)
    assert counts.to_json() == {
        "started": 4,
        "completed": 0,
        "expired": 0,
        "in_progress": 4,
        "no_account": 2,  # Cy and Eve
        "opted_out": 1,  # Fay
        "unreachable": 1,  # Dan blocked the bot
    }
    conversation = metadata.tables["conversation"]
    with database.read() as conn:
        by_person = dict(
            conn.execute(
                select(conversation.c.person_id, conversation.c.id).where(
                    conversation.c.survey_id == survey.id
                )
            ).all()
        )
    _set(database, "conversation", by_person[who["bo"]], status="completed")
    _set(database, "conversation", by_person[who["cy"]], status="expired")
    _set(database, "conversation", by_person[who["dan"]], status="completed")
    assert surveys.counts(survey.id).to_json() == {
        "started": 4,
        "completed": 2,
        "expired": 1,
        "in_progress": 1,  # Eve, still without an account
        "no_account": 1,
        "opted_out": 1,
        "unreachable": 0,  # Dan finished: nothing more to reach him for
    }
    with pytest.raises(UnknownRecordError, match="no survey 42"):
        surveys.counts(42)


def _answer(
    database: Database, conversation_id: int, step_id: str, value: object, status: str = "answered"
) -> None:
    with database.begin() as conn:
        conn.execute(
            insert(metadata.tables["answer"]),
            {
                "conversation_id": conversation_id,
                "step_id": step_id,
                "iteration": None,
                "value": json.dumps(value),
                "raw": "",
                "status": status,
            },
        )


def test_responses_are_the_completed_conversations_with_their_last_answers(
    database: Database, make_flow: Callable[..., Flow]
) -> None:
    roster, people, surveys = _class(database), PeopleStore(database), SurveyStore(database)
    sent = surveys.send("club", roster.group("7B"), sent_by=None, now=NOW, not_since=None)
    assert sent is not None
    survey, flow = sent[0], make_flow("club")
    ana = _start(database, people.get("ana").id, flow, survey.id, "completed")
    bo = _start(database, people.get("bo").id, flow, survey.id, "active")
    _answer(database, ana, "sport", "swimming")
    _answer(database, ana, "sport", "football")  # changed after /back: the last one counts
    _answer(database, ana, "likes", ["art", "<script>"])
    _answer(database, ana, "why", "fun", status="answered")
    _answer(database, ana, "why", None, status="skipped")  # taken back: no answer
    _answer(database, bo, "sport", "swimming")  # not completed: not a response
    (response,) = surveys.responses(survey.id)
    assert (response.conversation_id, response.handle, response.display_name) == (
        ana,
        "ana",
        "Ana",
    )
    assert response.answers == (
        SurveyAnswer("sport", None, "football"),
        SurveyAnswer("likes", None, ["art", "<script>"]),
    )
    assert surveys.responses(404) == ()


def test_responses_take_two_statements_however_many_answered(
    stores: Any, make_flow: Callable[..., Flow]
) -> None:
    database = stores.db
    roster, people, surveys = _class(database), PeopleStore(database), SurveyStore(database)
    roster.import_people(
        [RosterEntry(n, f"S{n}", "student", handle=f"s{n}", groups=("7B",)) for n in range(2, 9)]
    )
    sent = surveys.send("club", roster.group("7B"), sent_by=None, now=NOW, not_since=None)
    assert sent is not None
    survey, flow = sent[0], make_flow("club")

    def statements() -> int:
        with stores.statements() as seen:
            surveys.responses(survey.id)
        return len([sql for sql in seen if sql.lstrip().upper().startswith("SELECT")])

    handles = ["ana", "bo", *(f"s{n}" for n in range(2, 9))]
    for count, handle in enumerate(handles, start=1):
        conversation_id = _start(database, people.get(handle).id, flow, survey.id, "completed")
        _answer(database, conversation_id, "sport", "football")
        if count in (1, len(handles)):
            assert statements() == 2
    assert len(surveys.responses(survey.id)) == len(handles)
