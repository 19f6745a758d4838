"""Safety escalation inside a student's turn, on SQLite and PostgreSQL: a typed safety phrase in
any free-text answer (a text step, an "other" answer, a list item) queues an urgent notice to
each counselor's direct messages, the support message to the student first, and an audit row
without the text, all in the turn's one transaction; a redelivered message alerts nobody twice;
with no counselor to reach the admins get it, and with nobody the alert is logged and listed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import App
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.frontdesk import Visitor, desk_for
from bot.intake import sorry_text
from bot.notice_delivery import notice_of
from bot.safety import SafetyWatch
from bot.service import ConversationService
from dialogues import FlowRegistry, Inbound
from storage import (
    IMMEDIATELY,
    AuditStore,
    Database,
    OutboxRecord,
    OutboxStore,
    PeopleStore,
    PersonRecord,
    SafetyStore,
)
from tests.faults import inject

SUPPORT = "You matter. Call the crisis line: 000-HELP."
NOW = datetime(2026, 12, 9, 23, 30, tzinfo=UTC)  # inside the default quiet hours everywhere

FLOW = """\
id: feelings
version: 1
title: How are you
steps:
  - id: week
    type: text
    ask: How was your week?
  - id: mood
    type: choice
    ask: How do you feel?
    options: [good, okay]
    allow_other: true
  - id: wishes
    type: list
    ask: Three wishes?
    max: 3
"""


@pytest.fixture
def service(database: Database, tmp_path: Path) -> ConversationService:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "feelings.yaml").write_text(FLOW, encoding="utf-8")
    return ConversationService(
        database,
        FlowRegistry([tmp_path / "flows"]),
        clock=FrozenClock(NOW),
        safety=SafetyWatch(None, SUPPORT),
    )


def _staff(db: Database, name: str, role: str, user_id: str | None) -> PersonRecord:
    person = PeopleStore(db).add(name, role)
    if user_id is not None:
        PeopleStore(db).link_identity(person.id, "telegram", None, user_id, "-100999")
    return person


def _start(service: ConversationService, student: PersonRecord) -> None:
    flow = service.registry.get("feelings")
    service.open(student.id, flow, platform="telegram", address="555")


def _say(service: ConversationService, student: PersonRecord, words: str, key: str) -> list[str]:
    outcome = service.handle(
        student.id, Inbound.of_text(words), platform="telegram", address="555", event_key=key
    )
    assert len(outcome.replies) == len(outcome.outbox_ids)
    return [reply.text for reply in outcome.replies]


def _urgent(db: Database) -> list[OutboxRecord]:
    with db.read() as conn:
        ids = conn.execute(text("SELECT id FROM outbox WHERE urgent ORDER BY id")).scalars()
        return [OutboxStore(db).get(i) for i in ids]


def _audit(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        return [(r[0], r[1]) for r in conn.execute(text("SELECT action, detail FROM audit_log"))]


def test_a_phrase_in_a_text_answer_goes_to_each_counselor_and_the_student_sees_help_first(
    database: Database, service: ConversationService
) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    cora = _staff(database, "Cora Diaz", "counselor", "777")
    carl = _staff(database, "Carl Ode", "counselor", "778")
    _staff(database, "Ada Admin", "admin", "779")  # counselors exist: admins are not bothered
    _start(service, sam)

    replies = _say(service, sam, "Honestly I want to kill myself.", "u1")

    assert replies[0] == SUPPORT
    assert replies[1] == "How do you feel?"  # the conversation carries on
    notices = _urgent(database)
    assert [(n.person_id, n.address, n.platform) for n in notices] == [
        (cora.id, "777", "telegram"),  # the user id: their private chat, not the group -100999
        (carl.id, "778", "telegram"),
    ]
    for row in notices:
        assert row.not_before == IMMEDIATELY and not row.proactive
        notice = notice_of(row)
        assert notice is not None
        body = notice.plain_text()
        assert "Safety alert: Sam Lee" in body and "Honestly I want to kill myself." in body
        assert "self harm" in body and "feelings, question week" in body
    [(action, detail)] = _audit(database)
    assert action == "safety.alert" and "kill" not in detail and "Honestly" not in detail
    [alert] = SafetyStore(database).alerts()
    assert alert.to_json() | {"at": None} == {
        "id": alert.id,
        "at": None,
        "student": sam.handle,
        "flow": "feelings",
        "step": "week",
        "categories": ["self_harm"],
        "notified": [
            {"person": cora.handle, "status": "pending"},
            {"person": carl.handle, "status": "pending"},
        ],
        "reached": False,
    }
    seen = AuditStore(database).views(sam.id)  # `profilebot audit`: who was shown the words
    assert [(r.viewer, r.action, r.via) for r in seen] == [
        (cora.handle, "safety_alert", "safety"),
        (carl.handle, "safety_alert", "safety"),
    ]


def test_other_answers_and_list_items_are_watched_too(
    database: Database, service: ConversationService
) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    _staff(database, "Cora Diaz", "counselor", "777")
    _start(service, sam)
    _say(service, sam, "fine", "u1")
    assert _say(service, sam, "I get bullied", "u2")[0] == SUPPORT  # an "other" choice
    assert _say(service, sam, "a dog", "u3")[0] != SUPPORT
    assert _say(service, sam, "that dad stops, he hits me", "u4")[0] == SUPPORT  # a list item
    assert [a.categories for a in SafetyStore(database).alerts()] == [("abuse",), ("bullying",)]


def test_a_redelivered_message_alerts_nobody_twice(
    database: Database, service: ConversationService
) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    _staff(database, "Cora Diaz", "counselor", "777")
    _start(service, sam)
    _say(service, sam, "I want to die", "u1")
    again = service.handle(
        sam.id, Inbound.of_text("I want to die"), platform="telegram", address="555", event_key="u1"
    )
    assert again.duplicate and again.replies == []
    assert len(_urgent(database)) == 1 and len(SafetyStore(database).alerts()) == 1


def test_harmless_words_raise_nothing(database: Database, service: ConversationService) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    _staff(database, "Cora Diaz", "counselor", "777")
    _start(service, sam)
    assert SUPPORT not in _say(service, sam, "I have the skill to kill time", "u1")
    assert _urgent(database) == [] and _audit(database) == []


def test_without_a_reachable_counselor_the_admins_get_it(
    database: Database, service: ConversationService, caplog: pytest.LogCaptureFixture
) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    _staff(database, "Cora Diaz", "counselor", None)  # no chat account
    stopped = _staff(database, "Carl Ode", "counselor", "778")
    left = _staff(database, "Lea Gone", "counselor", "780")  # no longer on the roster
    with database.begin() as conn:
        conn.execute(text("UPDATE person SET opted_out = true WHERE id = :id"), {"id": stopped.id})
        conn.execute(text("UPDATE person SET active = false WHERE id = :id"), {"id": left.id})
    ada = _staff(database, "Ada Admin", "admin", "779")
    _start(service, sam)
    _say(service, sam, "I want to die", "u1")
    assert [(n.person_id, n.address) for n in _urgent(database)] == [(ada.id, "779")]
    assert "ERROR" not in caplog.text


def test_with_nobody_to_reach_the_alert_is_logged_without_the_text_and_listed(
    database: Database, service: ConversationService, caplog: pytest.LogCaptureFixture
) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    _staff(database, "Cora Diaz", "counselor", None)
    with caplog.at_level(logging.INFO):
        _start(service, sam)
        assert _say(service, sam, "I want to die", "u1")[0] == SUPPORT  # the student is helped
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "reached nobody" in errors[0].getMessage()
    assert "die" not in caplog.text
    [alert] = SafetyStore(database).alerts()
    assert alert.notified == () and not alert.reached


def test_the_alert_is_all_or_nothing_with_its_turn(
    database: Database, service: ConversationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    sam = PeopleStore(database).add("Sam Lee", "student")
    _staff(database, "Cora Diaz", "counselor", "777")
    _start(service, sam)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(ConversationService, "_save", broken)
    with pytest.raises(RuntimeError):
        _say(service, sam, "I want to die", "u1")
    assert _urgent(database) == [] and _audit(database) == []
    monkeypatch.undo()
    assert _say(service, sam, "I want to die", "u1")[0] == SUPPORT  # the retry raises it once
    assert len(_urgent(database)) == 1


def test_an_urgent_notice_is_claimed_first_and_never_waits_behind_older_messages(
    database: Database,
) -> None:
    outbox = OutboxStore(database)
    cora = _staff(database, "Cora Diaz", "counselor", "777")
    later = datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
    held = outbox.queue_payloads(
        [{"text": "summary"}],
        person_id=cora.id,
        platform="telegram",
        address="777",
        not_before=later,
        proactive=True,
    )
    reply = outbox.queue_payloads(
        [{"text": "hi"}], person_id=None, platform="telegram", address="1"
    )
    service = ConversationService(
        database, FlowRegistry([]), clock=FrozenClock(NOW), safety=SafetyWatch(None, SUPPORT)
    )
    sam = PeopleStore(database).add("Sam Lee", "student")
    service.handle(sam.id, Inbound.of_text("kill myself"), platform="telegram", address="555")

    claim = outbox.claim(platform="telegram", limit=2, now=NOW, wall=NOW, lease=10)

    [notice] = _urgent(database)
    assert [m.id for m in claim.messages] == [notice.id, reply[0]]
    assert claim.messages[0].urgent and held[0] not in [m.id for m in claim.messages]


# -- every path through the front desk ---------------------------------------------------------


@pytest.fixture
def app(database: Database) -> App:
    url = database.url.render_as_string(hide_password=False)
    return App.create(load_settings(database_url=url, safety_message=SUPPORT))


def _desk_texts(app: App, address: str, platform: str = "telegram") -> list[str]:
    return [r.reply.text for r in app.outbox.pending(platform=platform, address=address)]


def _counselor(app: App) -> PersonRecord:
    cora = app.people.add("Cora Diaz", "counselor")
    app.people.link_identity(cora.id, "telegram", None, "777", "777")
    return cora


def test_a_slack_students_first_message_is_watched_once(app: App) -> None:
    _counselor(app)
    sam = app.people.add("Sam Lee", "student", email="sam@school.example")
    desk = desk_for(app, "slack")
    visitor = Visitor("slack", "U0SAM", "D0SAM", "T0", email="sam@school.example")

    for _ in range(2):  # Slack delivers the event again
        desk.receive(visitor, Inbound.of_text("I want to kill myself"), event_key="e1")

    texts = _desk_texts(app, "D0SAM", "slack")
    assert texts[0] == SUPPORT and texts.count(SUPPORT) == 1
    assert "this is me" in texts[1].lower()  # "This is me" starts after it
    [alert] = SafetyStore(app.db).alerts()
    assert alert.student == sam.handle and alert.flow is None
    assert len(_urgent(app.db)) == 1


def test_words_the_desk_answers_itself_are_watched_once_each(app: App) -> None:
    _counselor(app)
    sam = app.people.add("Sam Lee", "student")
    desk = desk_for(app, "telegram")
    visitor = Visitor("telegram", "1001", "1001")
    app.profiles.set(sam.id, "preferred_name", "Sam")  # no interview waiting
    code = app.invites.issue(sam.id).code
    desk.receive(visitor, Inbound.of_text(f"/start {code}"), event_key="join")

    said = [
        "/start I want to die",  # joined already: a welcome back
        "/profile I want to die",
        "/goals I want to die",
        "I want to die",  # no conversation open: the menu
        "/checkin I want to die",
        "/pause",
        "I want to die",  # a paused conversation
    ]
    for number, words in enumerate(said):
        before = len(_desk_texts(app, "1001"))
        for _ in range(2):  # every event comes twice
            desk.receive(visitor, Inbound.of_text(words), event_key=f"k{number}")
        answer = _desk_texts(app, "1001")[before:]
        assert (answer[0] == SUPPORT) == (words != "/pause"), words
        assert answer.count(SUPPORT) <= 1

    assert len(SafetyStore(app.db).alerts()) == 6
    assert len(_urgent(app.db)) == 6


def test_a_parked_message_alerts_once_and_its_replay_not_again(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    _counselor(app)
    sam = app.people.add("Sam Lee", "student")
    desk = desk_for(app, "telegram")
    visitor = Visitor("telegram", "1001", "1001")
    code = app.invites.issue(sam.id).code
    desk.receive(visitor, Inbound.of_text(f"/start {code}"), event_key="join")
    inject("I want to die", patch=monkeypatch.setattr)
    before = len(_desk_texts(app, "1001"))

    assert desk.receive(visitor, Inbound.of_text("I want to die"), event_key="k1").parked
    assert desk.receive(visitor, Inbound.of_text("I want to die"), event_key="k1").duplicate
    assert _desk_texts(app, "1001")[before:] == [SUPPORT, sorry_text("/")]
    [parked] = app.failed.parked()
    monkeypatch.undo()
    desk.replay(parked.id)

    assert SUPPORT not in _desk_texts(app, "1001")[before + 2 :]
    [alert] = SafetyStore(app.db).alerts()
    assert alert.flow == "this_is_me" and alert.step == "preferred_name"
    assert len(_urgent(app.db)) == 1
