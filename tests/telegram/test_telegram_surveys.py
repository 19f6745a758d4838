"""Surveys from Telegram, end to end against the fake Bot API: a teacher's /survey reaches the
class, /survey status counts, a repeat asks first with a button that works once, students and
other teachers are refused politely, and a waiting conversation arrives when a student joins."""

from __future__ import annotations

from pathlib import Path

from bot.frontdesk import STAFF_MENU, STALE_TEXT
from storage import RosterEntry
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import (
    Running,
    Student,
    button_labels,
    make_app,
    running_bot,
    sqlite_url,
)

CLASS = [
    RosterEntry(2, "Tina Park", "teacher", handle="tina", groups=("7B",)),
    RosterEntry(3, "Theo Ruiz", "teacher", handle="theo", groups=("8A",)),
    RosterEntry(4, "Ana Diaz", "student", handle="ana", groups=("7B",)),
    RosterEntry(5, "Bo Chen", "student", handle="bo", groups=("7B",)),
]


def _member(bot: Running, handle: str, user_id: int) -> Student:
    person = bot.app.people.get(handle)
    code = bot.app.invites.issue(person.id).code
    return Student(bot.fake.user(user_id, person.first_name), person.id, code)


async def _say(bot: Running, who: Student, text: str) -> list[str]:
    bot.fake.push_text(who.user, text)
    return [m["text"] for m in await bot.rest(who)]


async def test_a_teacher_sends_a_survey_and_follows_it(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), quiet_hours="off")
        app.roster.import_people(CLASS)
        async with running_bot(fake, app) as bot:
            tina, ana = _member(bot, "tina", 2001), _member(bot, "ana", 1001)
            app.profiles.set(ana.person_id, "preferred_name", "Ana")
            welcome = await bot.join(tina)
            assert "/survey FLOW GROUP" in welcome["text"]
            assert [c["command"] for c in fake.commands_for({"type": "chat", "chat_id": 2001})] == [
                c.name for c in STAFF_MENU
            ]
            await bot.join(ana)

            [sent] = await _say(bot, tina, "/survey weekly_checkin 7B")
            assert sent == (
                "Sent weekly_checkin to 7B (survey 1): 2 started, 1 of them waits for a chat "
                "account. See how it's going with /survey status 1."
            )
            question = await bot.next_question(ana)
            assert bot.step_of(ana, question) == "mood"
            await bot.tap(ana, question, "4")

            [status] = await _say(bot, tina, "/survey status 1")
            assert status.splitlines()[1:] == [
                "0 completed, 2 in progress, 0 expired (of 2 started)",
                "1 waiting for a chat account, 0 opted out, 0 unreachable",
            ]
            # ids that are no number or that no survey can have: the usage, not a crash
            for odd in ("status ²", "results ³", "status 99999999999999999999"):
                [usage] = await _say(bot, tina, f"/survey {odd}")
                assert usage.startswith("To send a survey to a class: /survey FLOW GROUP")
            assert app.failed.parked() == []


async def test_a_repeat_asks_first_and_its_button_works_once(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), quiet_hours="off")
        app.roster.import_people(CLASS)
        async with running_bot(fake, app) as bot:
            tina, theo = _member(bot, "tina", 2001), _member(bot, "theo", 2002)
            await bot.join(tina)
            await bot.join(theo)
            await _say(bot, tina, "/survey goal_setting 7B")
            bot.fake.push_text(tina.user, "/survey goal_setting 7B")
            [prompt] = await bot.rest(tina)
            assert prompt["text"].startswith("goal_setting was sent to 7B on ")
            assert prompt["text"].endswith("(survey 1). Send it again?")
            assert button_labels(prompt) == ["Send again", "Cancel"]
            assert len(app.roster.groups_of(tina.person_id)) == 1

            # another teacher sending its callback data (forged, from his own chat): nothing
            theo_welcome = bot.messages(theo)[0]
            await bot.callback(theo, theo_welcome, _callback_data(prompt, "Send again"))
            assert fake.callback_answers[-1].text == STALE_TEXT
            assert _survey_ids(app) == [1]

            await bot.press(tina, prompt, "Send again")
            assert fake.callback_answers[-1].text is None
            [sent] = [m["text"] for m in await bot.rest(tina)]
            # the students have not begun the first one yet: the second waits behind it
            assert sent.startswith("Sent goal_setting to 7B (survey 2): 0 started, 2 busy")
            assert button_labels(bot.message(tina, prompt["message_id"])) == []

            # the same button again (an old client still shows it): nothing more
            await bot.callback(tina, prompt, _callback_data(prompt, "Send again"))
            assert fake.callback_answers[-1].text == STALE_TEXT
            assert _survey_ids(app) == [1, 2]

            bot.fake.push_text(tina.user, "/survey goal_setting 7B")
            [second_prompt] = await bot.rest(tina)
            await bot.press(tina, second_prompt, "Cancel")
            assert [m["text"] for m in await bot.rest(tina)] == ["Okay, I won't send it again."]
            assert _survey_ids(app) == [1, 2]


async def test_students_and_other_teachers_are_refused_politely(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), quiet_hours="off")
        app.roster.import_people(CLASS)
        async with running_bot(fake, app) as bot:
            theo, ana = _member(bot, "theo", 2002), _member(bot, "ana", 1001)
            app.profiles.set(ana.person_id, "preferred_name", "Ana")
            await bot.join(theo)
            await bot.join(ana)
            assert fake.commands_for({"type": "chat", "chat_id": 1001}) == []  # the usual menu

            assert await _say(bot, theo, "/survey weekly_checkin 7B") == [
                "Sorry, only a teacher of 7B or an admin can send 7B a survey."
            ]
            assert await _say(bot, ana, "/survey weekly_checkin 7B") == [
                "Sorry, only a teacher of 7B or an admin can send 7B a survey."
            ]
            assert await _say(bot, theo, "/survey weekly_checkin 9Z") == [
                "Sorry, no group named '9Z'."
            ]
            assert await _say(bot, theo, "/survey status 5") == ["Sorry, no survey 5."]
            [usage] = await _say(bot, theo, "/survey")
            assert usage.startswith("To send a survey to a class: /survey FLOW GROUP")
            assert _survey_ids(app) == []
            # Ana got her welcome and her answer, and no conversation was started for her
            assert all(r.conversation_id is None for r in app.outbox.for_person(ana.person_id))


async def test_joining_delivers_the_survey_that_waited_for_an_account(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = make_app(fake, sqlite_url(tmp_path), quiet_hours="off")
        app.roster.import_people(CLASS)
        async with running_bot(fake, app) as bot:
            tina, bo = _member(bot, "tina", 2001), _member(bot, "bo", 1002)
            await bot.join(tina)
            await _say(bot, tina, "/survey weekly_checkin 7B")
            assert app.outbox.for_person(bo.person_id) == []

            first = await bot.join(bo)  # no profile yet, but the check-in comes first
            assert first["text"].startswith("Hi Bo! 👋 Time for your weekly check-in")
            question = await bot.next_question(bo)
            assert bot.step_of(bo, question) == "mood"
            assert not any("learner profile" in text for text in bot.texts(bo))


def _callback_data(message: dict[str, object], label: str) -> str:
    rows = message["reply_markup"]["inline_keyboard"]  # type: ignore[index]
    return next(b["callback_data"] for row in rows for b in row if b["text"] == label)


def _survey_ids(app: object) -> list[int]:
    from sqlalchemy import select

    from storage import metadata

    survey = metadata.tables["survey"]
    with app.db.read() as conn:  # type: ignore[attr-defined]
        return list(conn.execute(select(survey.c.id).order_by(survey.c.id)).scalars())
