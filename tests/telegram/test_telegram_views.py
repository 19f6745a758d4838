"""The views in Telegram, end to end with a real PTB bot against the fake Bot API: an advisor's
weekly summary (text, then its chart with ``sendPhoto``) on ``/summary`` and from the Friday
schedule, built from stored check-ins with the student who needs a person first; student text
shown as typed; ``/card`` as a PDF document; ``/survey results ID``; and polite refusals that
send nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app import App
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.surveys import Surveys
from storage import PersonRecord
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.harness import Running, Student, running_bot, sqlite_url
from tests.telegram.test_telegram_proactive import SURVEY, command_line
from tests.views_setup import (
    ARM,
    FRIDAY_15,
    HOSTILE,
    NEXT_STEP,
    PNG_SIGNATURE,
    SETTINGS,
    WEDNESDAY,
    WEEK,
    pdf_text,
    school,
    this_weeks_checkin,
)

JSONDict = dict[str, Any]

CHECKIN = (
    ("mood", "1"),
    ("energy", "2"),
    ("highlight", "/skip"),
    ("goal_progress", "2"),
    ("goal_did", "/skip"),
    ("goal_blockers", "/skip"),
    ("goal_next_step", NEXT_STEP),
    ("note_for_advisor", HOSTILE),
    ("wants_meeting", "yes"),
)
"""Ana's answers to the weekly check-in, step by step."""


def _app(fake: FakeBotAPI, tmp_path: Path, **settings: Any) -> App:
    values = {
        "database_url": sqlite_url(tmp_path),
        "telegram_bot_token": fake.token,
        "telegram_api_base_url": fake.url,
        **SETTINGS,
        **settings,
    }
    return App.create(load_settings(**values), clock=FrozenClock(WEDNESDAY))


async def _member(bot: Running, person: PersonRecord, user_id: int) -> Student:
    """``person``'s Telegram account, linked by an administrator, in a chat they opened with
    /help (a bot cannot write first); no conversation under way."""
    bot.app.people.link_identity(person.id, "telegram", None, str(user_id), str(user_id))
    member = Student(bot.fake.user(user_id, person.first_name), person.id, "")
    await _ask(bot, member, "/help")
    return member


async def _ask(bot: Running, who: Student, text: str) -> list[JSONDict]:
    """``who`` sends ``text``; everything the bot sent back, once it is idle (the update is
    confirmed only after its answer is queued, and the outbox is empty)."""
    bot.fake.push_text(who.user, text)
    return await bot.rest(who)


def _photos(fake: FakeBotAPI, chat: int) -> list[bytes]:
    return [upload.data for to, kind, upload in fake.uploaded if to == chat and kind == "photo"]


def _documents(fake: FakeBotAPI, chat: int) -> list[bytes]:
    return [upload.data for to, kind, upload in fake.uploaded if to == chat and kind == "document"]


def _assert_summary(messages: list[JSONDict], fake: FakeBotAPI, chat: int) -> str:
    """Text message(s), then one photo (a PNG); the text, whole."""
    *texts, photo = messages
    assert texts and all("text" in m for m in texts)
    assert "photo" in photo and photo["caption"] == "Goal progress and check-ins over the term"
    [png] = _photos(fake, chat)
    assert png.startswith(PNG_SIGNATURE)
    text = "\n".join(m["text"] for m in texts)
    assert text.startswith(f"Weekly summary for Ada Ng: {WEEK}")
    return text


def _urgent_first(text: str) -> None:
    lines = text.splitlines()
    needs = lines.index("Needs you this week (1)")
    ana = next(k for k, line in enumerate(lines) if line.startswith("• Ana Diaz: wants to meet"))
    bo = next(k for k, line in enumerate(lines) if line.startswith("• Bo Chen — checked in"))
    assert needs < ana < lines.index("Everyone else (1)") < bo
    assert "low mood (1)" in lines[ana]


async def _answer_the_weekly_checkin(bot: Running, ana: Student) -> None:
    """Ana's check-in of the week, typed into the bot: she feels rough, leaves a note (that
    could break HTML or Slack markup) and wants to meet."""
    bot.fake.push_text(ana.user, "/checkin")
    question = await bot.next_question(ana)
    for step, answer in CHECKIN:
        assert bot.step_of(ana, question) == step
        if step == "wants_meeting":
            bot.fake.push_text(ana.user, answer)
            break
        question = await bot.type(ana, answer)
    after = [m["text"] for m in await bot.rest(ana)]
    assert any("Your advisor will see that you'd like to meet" in text for text in after)


async def test_an_advisor_asks_for_the_summary_of_checkins_answered_through_the_bot(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        async with running_bot(fake, app) as bot:
            ana = await _member(bot, people.ana, 1001)
            ada = await _member(bot, people.ada, 2001)
            await _answer_the_weekly_checkin(bot, ana)
            messages = await _ask(bot, ada, "/summary")
        assert fake.errors == []

    text = _assert_summary(messages, fake, 2001)
    _urgent_first(text)
    assert f"note: “{HOSTILE}”" in text
    assert f"next: {NEXT_STEP}" in text
    assert "This week: 2 of 2 checked in (100%)" in text


async def test_the_weekly_summary_arrives_on_friday_from_the_schedule(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ada = await _member(bot, people.ada, 2001)
            admin = command_line(tmp_path, QUIET_HOURS="off")
            seeded = admin.json("schedule", "run-due", "--now", WEDNESDAY.isoformat())
            assert seeded["started"] == [] and seeded["skipped"] == []
            [default] = admin.json("schedule", "list")
            assert default["flow"] == "advisor_summary"

            friday = (FRIDAY_15 + timedelta(seconds=30)).isoformat()
            due = admin.json("schedule", "run-due", "--now", friday)
            assert [(i["person"], i["flow"]) for i in due["started"]] == [
                ("ada", "advisor_summary")
            ]
            bot.bot.worker.wake()
            await bot.wait_for(lambda: bool(_photos(fake, 2001)))
            messages = await bot.rest(ada)
            again = admin.json("schedule", "run-due", "--now", friday)
            assert again["started"] == []
            assert await bot.rest(ada) == []
        assert fake.errors == []

    _urgent_first(_assert_summary(messages, fake, 2001))


async def test_student_text_in_a_summary_is_shown_as_typed(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ada = await _member(bot, people.ada, 2001)
            messages = await _ask(bot, ada, "/summary")
        assert fake.errors == []  # the HTML parsed: nothing the student typed broke it

    text = _assert_summary(messages, fake, 2001)
    assert HOSTILE in text and NEXT_STEP in text
    styled = [
        (e["type"], m["text"][e["offset"] : e["offset"] + e["length"]])
        for m in messages[:-1]
        for e in m.get("entities", [])
    ]
    assert ("bold", "Ana Diaz") in styled
    assert not any("alert" in part or "Ms Lee" in part for _, part in styled)
    assert all(kind in {"bold", "italic"} for kind, _ in styled)


async def test_a_student_gets_their_card_and_their_advisor_may_too_but_not_a_classmate(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        async with running_bot(fake, app) as bot:
            ana = await _member(bot, people.ana, 1001)
            bo = await _member(bot, people.bo, 1002)
            ada = await _member(bot, people.ada, 2001)
            title, own = await _ask(bot, ana, "/card")
            advisors_title, advisors = await _ask(bot, ada, "/card ana")
            refused = await _ask(bot, bo, "/card ana")
        assert fake.errors == []

    assert (title["text"], advisors_title["text"]) == (
        "Your one-page card",
        "Ana Diaz's one-page card",
    )
    assert own["document"]["file_name"] == "card-ana.pdf"
    assert own["caption"] == "For your student-led conference: print it or show it."
    [pdf] = _documents(fake, 1001)
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    assert "Ana Diaz" in text and ARM in text
    assert advisors["document"]["file_name"] == "card-ana.pdf"
    [for_ada] = _documents(fake, 2001)
    assert "Ana Diaz" in pdf_text(for_ada, tmp_path)
    assert [m["text"] for m in refused] == ["Sorry, you can only see your own: send /card."]
    assert _documents(fake, 1002) == []


async def test_a_summary_is_refused_to_a_student_and_another_advisor_but_not_an_admin(
    tmp_path: Path,
) -> None:
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ana = await _member(bot, people.ana, 1001)
            ada = await _member(bot, people.ada, 2001)
            admin = await _member(bot, people.max, 3001)
            from_student = await _ask(bot, ana, "/summary")
            from_other = await _ask(bot, ada, "/summary olu")
            for_admin = await _ask(bot, admin, "/summary ada")
        assert fake.errors == []

    assert [m["text"] for m in from_student] == [
        "Sorry, weekly summaries are for advisors: they sum up their students' check-ins."
    ]
    assert [m["text"] for m in from_other] == [
        "Sorry, only the advisor themself or an admin can see an advisor's weekly summary."
    ]
    assert _photos(fake, 1001) == [] and _photos(fake, 2001) == []
    _urgent_first(_assert_summary(for_admin, fake, 3001))


async def test_a_teacher_sees_the_results_of_a_survey_to_their_class_only(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club_survey.yaml").write_text(SURVEY)
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path, profilebot_flows_dir=flows)
        people = school(app)
        async with running_bot(fake, app) as bot:
            ana = await _member(bot, people.ana, 1001)
            bo = await _member(bot, people.bo, 1002)
            tina = await _member(bot, people.tina, 2002)
            theo = await _member(bot, people.theo, 2003)
            report = Surveys(app).send("club_survey", "7B", actor=app.actor("tina"))
            assert report is not None
            bot.bot.worker.wake()
            for student, club in ((ana, "robotics"), (bo, "robotics")):
                question = await bot.next_question(student)
                await bot.tap(student, question, club)
                bot.fake.push_text(student.user, f"I like {club} & <b>making</b>")
                await bot.rest(student)
            survey = report.survey.id
            [results] = await _ask(bot, tina, f"/survey results {survey}")
            refused = await _ask(bot, theo, f"/survey results {survey}")
        assert fake.errors == []

    lines = results["text"].splitlines()
    assert lines[0].startswith(f"Survey {survey} results: Club survey (club_survey) to 7B")
    assert "• robotics: 2 (Ana Diaz, Bo Chen)" in lines
    assert "• Ana Diaz: I like robotics & <b>making</b>" in lines
    assert [m["text"] for m in refused] == [
        f"Sorry, only a teacher of 7B or an admin can see survey {survey}'s results."
    ]
    for student in (people.ana, people.bo):  # audited once, for tina; theo was shown nothing
        [seen] = app.audit.views(student)
        assert (seen.viewer, seen.via, seen.action) == ("tina", "chat", "viewed_survey_results")
    # the results hold Ana's words in Tina's outbox: they go when Ana is erased
    erased = app.person_data.erase(people.ana.handle, by="test", at=app.clock.now())
    assert erased.counts["outbox (about them, to others)"] == 1
    told_tina = [repr(m.payload) for m in app.outbox.for_person(people.tina.id)]
    assert not any("Ana Diaz" in p for p in told_tina)


async def test_a_redelivered_command_is_answered_once(tmp_path: Path) -> None:
    async with FakeBotAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app, webhook=True) as bot:
            ana = await _member(bot, people.ana, 1001)
            ada = await _member(bot, people.ada, 2001)
            card = fake.push_text(ana.user, "/card")
            summary = fake.push_text(ada.user, "/summary")
            await bot.wait_for(lambda: bool(_photos(fake, 2001) and _documents(fake, 1001)))
            await bot.settle()
            answered = (len(fake.sent(1001)), len(fake.sent(2001)))
            assert await fake.post_to_webhook(card) == 200  # Telegram sends them again
            assert await fake.post_to_webhook(summary) == 200
            await bot.settle()
            assert (len(fake.sent(1001)), len(fake.sent(2001))) == answered
        assert fake.errors == []

    assert len(_documents(fake, 1001)) == 1 and len(_photos(fake, 2001)) == 1
    assert [update for update, _ in fake.webhook_deliveries].count(card["update_id"]) == 2
