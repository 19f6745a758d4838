"""The front desk on both backends: joining with invite codes, strangers, menu commands,
stale buttons and the answered question, without any chat platform in the way."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.config import load_settings
from bot.frontdesk import (
    BUSY_TEXT,
    HELP_TEXT,
    IDLE_TEXT,
    NO_GOALS_HINT,
    STAFF_HELP_TEXT,
    STRANGER_TEXT,
    FrontDesk,
    Visitor,
    desk_command,
)
from bot.notice_delivery import queue_notice
from bot.notices import Notice
from dialogues import Inbound
from storage import Chat, Database, PersonRecord

FLOW = """
id: club
version: 1
title: Club
steps:
  - id: name
    ask: What should we call you?
    type: text
    save: profile.preferred_name
  - id: sport
    ask: Favourite sport?
    type: choice
    options: [football, swimming]
    save: profile.sport
"""


@pytest.fixture
def app(database: Database, tmp_path: Path) -> App:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club.yaml").write_text(FLOW)
    url = database.url.render_as_string(hide_password=False)
    return App.create(load_settings(database_url=url, profilebot_flows_dir=flows))


@pytest.fixture
def desk(app: App) -> FrontDesk:
    return FrontDesk(app, "telegram")


SAM = Visitor("telegram", "1001", "1001")


def texts(app: App, address: str = "1001") -> list[str]:
    return [r.reply.text for r in app.outbox.pending(platform="telegram", address=address)]


def join(app: App, desk: FrontDesk, visitor: Visitor = SAM, role: str = "student") -> PersonRecord:
    person = app.people.add("Sam Lee", role)
    code = app.invites.issue(person.id).code
    desk.receive(visitor, Inbound.of_text(f"/start {code}"), event_key="start")
    return person


def test_a_stranger_gets_a_polite_refusal_and_no_data(app: App, desk: FrontDesk) -> None:
    outcome = desk.receive(SAM, Inbound.of_text("what is my profile?"))
    assert outcome.person is None
    assert texts(app) == [STRANGER_TEXT]
    assert app.people.by_identity("telegram", None, "1001") is None
    for command in ("/profile", "/goals", "/checkin", "/help"):
        assert desk.receive(SAM, Inbound.of_text(command)).person is None
    assert texts(app) == [STRANGER_TEXT] * 5


_NEW_LINK = "Ask your advisor for a new invite link."


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown", f"Sorry, that invite code is not one we know. {_NEW_LINK}"),
        ("used", f"Sorry, that invite code has already been used. {_NEW_LINK}"),
        ("expired", f"Sorry, that invite code has expired. {_NEW_LINK}"),
        ("none", STRANGER_TEXT),
    ],
)
def test_a_bad_invite_code_is_explained(
    app: App, desk: FrontDesk, case: str, expected: str
) -> None:
    person = app.people.add("Ana Diaz", "student")
    code = "NOPE-NOPE"
    if case == "used":
        code = app.invites.issue(person.id).code
        app.invites.redeem(code, platform="telegram", workspace=None, user_id="9", chat_id="9")
    elif case == "expired":
        code = app.invites.issue(person.id, ttl=timedelta(seconds=-1)).code
    desk.receive(SAM, Inbound.of_text("/start" if case == "none" else f"/start {code}"))
    assert texts(app) == [expected]
    assert app.people.by_identity("telegram", None, "1001") is None


def test_joining_links_the_account_and_starts_the_profile_interview(
    app: App, desk: FrontDesk
) -> None:
    person = join(app, desk)
    linked = app.people.by_identity("telegram", None, "1001")
    assert linked is not None and linked.id == person.id
    sent = texts(app)
    assert sent and "learner profile" in sent[0]
    assert app.outbox.pending(platform="telegram")[-1].reply.is_question
    # the same /start delivered again (a redelivered update) changes nothing
    desk.receive(SAM, Inbound.of_text("/start whatever"), event_key="start")
    assert texts(app) == sent


def test_a_student_with_a_profile_and_staff_are_greeted_with_the_menu(
    app: App, desk: FrontDesk
) -> None:
    teacher = Visitor("telegram", "2002", "2002")
    join(app, desk, teacher, role="advisor")
    [greeting] = texts(app, "2002")
    assert greeting.startswith("Welcome back, Sam!") and "/checkin" in greeting
    assert HELP_TEXT in greeting
    assert greeting.endswith(STAFF_HELP_TEXT) and "/survey FLOW GROUP" in greeting


def test_menu_commands_answer_with_cards_and_help(app: App, desk: FrontDesk) -> None:
    person = join(app, desk, role="advisor")  # no interview in the way
    before = len(texts(app))
    desk.receive(SAM, Inbound.of_text("/profile"))
    desk.receive(SAM, Inbound.of_text("/goals@profilebot_test_bot"))
    desk.receive(SAM, Inbound.of_text("/help"))
    desk.receive(SAM, Inbound.of_text("hello?"))
    profile, goals, help_text, idle = texts(app)[before:]
    assert profile == app.profile_card(person)
    assert goals == f"{app.plan_card(person)}\n\n{NO_GOALS_HINT}"
    assert help_text == STAFF_HELP_TEXT  # an advisor: the student menu, then the staff one
    assert help_text.startswith(HELP_TEXT)
    assert idle.startswith(IDLE_TEXT) and idle.endswith(STAFF_HELP_TEXT)


def test_a_repeated_menu_command_is_answered_once(app: App, desk: FrontDesk) -> None:
    join(app, desk, role="advisor")
    before = len(texts(app))
    for _ in range(3):
        desk.receive(SAM, Inbound.of_text("/profile"), event_key="profile-1")
    assert len(texts(app)) == before + 1


def test_checkin_starts_the_weekly_checkin(app: App, desk: FrontDesk) -> None:
    join(app, desk, role="advisor")
    outcome = desk.receive(SAM, Inbound.of_text("/checkin"))
    assert outcome.outbox_ids
    conversation = app.outbox.get(outcome.outbox_ids[-1]).conversation_id
    assert conversation is not None
    flow_ids = {
        r.payload.get("step_id") for r in app.outbox.pending(platform="telegram") if r.reply
    }
    assert flow_ids - {None}  # it asked something


def last_question(app: App) -> str | None:
    return app.outbox.pending(platform="telegram")[-1].reply.step_id


def test_newgoal_starts_goal_setting_and_checkin_waits_for_a_conversation_under_way(
    app: App, desk: FrontDesk
) -> None:
    join(app, desk)  # an empty profile: the interview starts
    assert last_question(app) == "preferred_name"
    asked = texts(app)[-1]
    desk.receive(SAM, Inbound.of_text("/checkin"))
    assert texts(app)[-1] == f"{BUSY_TEXT}\n\n{asked}"
    assert last_question(app) == "preferred_name"
    desk.receive(SAM, Inbound.of_text("/pause"))
    desk.receive(SAM, Inbound.of_text("/newgoal"))  # a paused conversation can wait
    assert last_question(app) == "goal1_title"
    asked = texts(app)[-1]
    desk.receive(SAM, Inbound.of_text("/checkin"))
    assert texts(app)[-1] == f"{BUSY_TEXT}\n\n{asked}"
    assert last_question(app) == "goal1_title"


def test_a_skipped_or_asked_again_question_is_closed_too(app: App, desk: FrontDesk) -> None:
    join(app, desk)
    name = app.outbox.pending(platform="telegram")[-1].id
    outcome = desk.receive(SAM, Inbound.of_text("Sam"))
    assert outcome.closed is not None and outcome.closed.outbox_id == name
    strengths = outcome.outbox_ids[-1]
    outcome = desk.receive(SAM, Inbound.of_text("/help"))  # help, then the question anew
    assert outcome.closed is not None and outcome.closed.outbox_id == strengths
    assert outcome.closed.answer is None
    desk.receive(SAM, Inbound.of_text("creative"))
    desk.receive(SAM, Inbound.of_text("music"))
    assert last_question(app) == "dislikes"
    dislikes = app.outbox.pending(platform="telegram")[-1].id
    outcome = desk.receive(SAM, Inbound.of_text("/skip"))
    assert outcome.closed is not None and outcome.closed.outbox_id == dislikes
    assert outcome.closed.answer == "skipped"
    outcome = desk.receive(SAM, Inbound.of_text("/pause"))
    assert outcome.closed is None  # still the question to answer when Sam is back


def test_only_the_current_question_takes_a_button(app: App, desk: FrontDesk) -> None:
    person = app.people.add("Sam Lee", "student")
    code = app.invites.issue(person.id).code
    app.invites.redeem(code, platform="telegram", workspace=None, user_id="1001", chat_id="1001")
    opened = app.service.open(
        person.id, app.registry.get("club"), platform="telegram", address="1001"
    )
    name_question = opened.outbox_ids[-1]
    answered = desk.receive(SAM, Inbound.of_text("Sammy"))
    assert answered.closed is not None
    assert answered.closed.outbox_id == name_question
    assert answered.closed.answer == "Sammy"
    sport_question = answered.outbox_ids[-1]

    stale = desk.receive(SAM, Inbound.of_button("football"), question_ref=name_question)
    assert stale.stale and not stale.outbox_ids
    assert app.profiles.current(person.id).get("sport") is None

    forged = desk.receive(SAM, Inbound.of_button("football"), question_ref=10**9)
    assert forged.stale

    taken = desk.receive(SAM, Inbound.of_button("swimming"), question_ref=sport_question)
    assert not taken.stale
    assert app.profiles.current(person.id)["sport"] == "swimming"
    # the flow ended: the student sees their profile card
    assert texts(app)[-1] == app.profile_card(person)


def test_unsupported_messages_get_a_harmless_reply(app: App, desk: FrontDesk) -> None:
    join(app, desk, role="advisor")
    before = len(texts(app))
    desk.unsupported(SAM)
    assert texts(app)[before:] == [
        "I can read text, button taps, photos and documents — not that kind of message, sorry."
    ]


def test_blocking_and_unblocking_sets_reachability(app: App, desk: FrontDesk) -> None:
    join(app, desk, role="advisor")
    assert app.people.is_reachable("telegram", None, "1001") is True
    assert desk.set_reachable(SAM, False) == 1
    assert app.people.is_reachable("telegram", None, "1001") is False
    assert desk.set_reachable(SAM, True) == 1
    assert app.people.is_reachable("telegram", None, "1001") is True
    assert desk.set_reachable(Visitor("telegram", "404", "404"), False) == 0


@pytest.mark.parametrize(
    ("inbound", "expected"),
    [
        (Inbound.of_text("/start ABC-123"), ("start", "ABC-123")),
        (Inbound.of_text("/start@profilebot_test_bot  ABC "), ("start", "ABC")),
        (Inbound.of_text("/GOALS"), ("goals", "")),
        (Inbound.of_text("/profile please\nnow"), ("profile", "please\nnow")),
        (Inbound.of_text("goals"), (None, "")),
        (Inbound.of_text("/"), (None, "")),
        (Inbound.of_text("a /goals"), (None, "")),
        (Inbound.of_button("goals"), (None, "")),
        (Inbound.of_command("Link", " CODE "), ("link", "CODE")),
    ],
)
def test_desk_commands_are_read_from_text_and_platform_commands(
    inbound: Inbound, expected: tuple[str | None, str]
) -> None:
    assert desk_command(inbound) == expected


def test_a_press_forged_on_a_notice_is_stale(app: App, desk: FrontDesk) -> None:
    sam = join(app, desk)
    [row] = queue_notice(app, sam.id, Notice("Your card"), to=Chat("telegram", "1001")).outbox_ids
    assert desk.press(SAM, row, 0).stale
