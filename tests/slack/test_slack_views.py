"""The views in Slack, end to end with a real Bolt app against the fake Web API: an advisor's
weekly summary (Block Kit in their DM, then its chart through the upload flow) on
``/profilebot summary`` and from the Friday schedule, with the student who needs a person
first; student text inert (no mention, no markup); ``/profilebot card`` as an uploaded PDF;
``/profilebot survey results ID``; and polite refusals that send nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.adapters.slack_render import inert_mrkdwn
from bot.app import App
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.scheduler import Scheduler
from bot.surveys import Surveys
from bot.view_chat import FOR_ADVISORS
from storage import PersonRecord
from tests.slack.fake_web_api import FakeSlackAPI
from tests.slack.harness import SIGNING_SECRET, Running, Student, running_bot, sqlite_url
from tests.telegram.test_telegram_proactive import SURVEY
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
UPLOAD_FLOW = ["files.getUploadURLExternal", "files.completeUploadExternal"]


def _app(fake: FakeSlackAPI, tmp_path: Path, **settings: Any) -> App:
    values = {
        "database_url": sqlite_url(tmp_path),
        "slack_bot_token": fake.token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_base_url": fake.base_url,
        **SETTINGS,
        **settings,
    }
    return App.create(load_settings(**values), clock=FrozenClock(WEDNESDAY))


def _member(bot: Running, person: PersonRecord, user: str) -> Student:
    """``person``'s Slack account, linked by an administrator; no conversation under way."""
    bot.fake.add_user(user, email=f"{person.handle}@home.example", real_name=person.display_name)
    channel = bot.fake.dm_channel(user)
    bot.app.people.link_identity(person.id, "slack", bot.bot.team_id, user, channel)
    return Student(user, channel, person.id, "")


async def _command(
    bot: Running, who: Student, text: str, **options: Any
) -> tuple[list[str], list[JSONDict]]:
    """``/profilebot <text>``; what it answered where it was typed (ephemeral), and what
    arrived in the DM, once the bot is idle."""
    before = len(bot.fake.responses)
    response = await bot.command(who, text, **options)
    assert response.status == 200 and response.acked_in_time
    await bot.settle()
    answers = [str(r.payload["text"]) for r in bot.fake.responses[before:]]
    return answers, await bot.rest(who)


def _files(fake: FakeSlackAPI, channel: str) -> list[JSONDict]:
    return [f for f in fake.files if f["channel"] == channel]


def _upload_calls(fake: FakeSlackAPI) -> list[str]:
    return [method for method, *_ in fake.calls if method.startswith("files.")]


def _mrkdwn(message: JSONDict) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def _assert_summary(fake: FakeSlackAPI, messages: list[JSONDict], dm: str) -> str:
    """Block Kit message(s) headed by the summary's title, and the chart uploaded to the DM
    (the current flow; never files.upload); the messages' mrkdwn, whole."""
    assert messages and all(m.get("blocks") for m in messages)
    header = messages[0]["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"].startswith(f"Weekly summary for Ada Ng: {WEEK}")
    [chart] = _files(fake, dm)
    assert chart["data"].startswith(PNG_SIGNATURE)
    assert chart["filename"] == f"summary-{WEEK}.png"
    assert "files.upload" not in _upload_calls(fake)
    return "\n".join(_mrkdwn(m) for m in messages)


def _urgent_first(body: str) -> None:
    needs = body.index("*Needs you this week (1)*")
    ana = body.index("• *Ana Diaz*: wants to meet")
    others = body.index("*Everyone else (1)*")
    assert needs < ana < others < body.index("• *Bo Chen* — checked in")
    assert "low mood (1)" in body[ana:others]


async def test_an_advisor_asks_for_the_summary_and_gets_blocks_and_an_uploaded_chart(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ada = _member(bot, people.ada, "U0ADA")
            answers, messages = await _command(bot, ada, "summary", channel_id="C0GENERAL")
        assert fake.errors == []

    assert answers == []  # nothing in #general: the summary goes to the advisor's DM
    _urgent_first(_assert_summary(fake, messages, ada.channel))
    assert _upload_calls(fake) == UPLOAD_FLOW


async def test_the_weekly_summary_arrives_on_friday_from_the_schedule(tmp_path: Path) -> None:
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ada = _member(bot, people.ada, "U0ADA")
            assert isinstance(app.clock, FrozenClock)
            scheduler = Scheduler(app)
            assert not scheduler.tick(WEDNESDAY)  # the default schedule, seeded
            friday = app.clock.advance(FRIDAY_15 + timedelta(seconds=30) - WEDNESDAY)
            sent = scheduler.tick(friday)
            assert [(i.person, i.flow) for i in sent.started] == [("ada", "advisor_summary")]
            bot.bot.worker.wake()
            await bot.wait_for(lambda: bool(fake.files))
            messages = await bot.rest(ada)
            assert not scheduler.tick(friday + timedelta(minutes=1)).started
            assert await bot.rest(ada) == []
        assert fake.errors == []

    _urgent_first(_assert_summary(fake, messages, ada.channel))
    assert _upload_calls(fake) == UPLOAD_FLOW


async def test_student_text_in_a_summary_is_inert(tmp_path: Path) -> None:
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ada = _member(bot, people.ada, "U0ADA")
            _, messages = await _command(bot, ada, "summary")
        assert fake.errors == []

    body = _assert_summary(fake, messages, ada.channel)
    fallback = "\n".join(m["text"] for m in messages)
    for shown in (body, fallback):
        assert "<!channel>" not in shown and "<script>" not in shown and "<b>" not in shown
        assert "&lt;!channel&gt;" in shown and "&lt;script&gt;" in shown
        assert "&amp; co" in shown and "&lt;b&gt;Ms Lee&lt;/b&gt; &amp;" in shown
    assert "*bold*" not in body  # the student's stars are shown, not made bold
    assert inert_mrkdwn(HOSTILE) in body and inert_mrkdwn(NEXT_STEP) in body


async def test_a_student_gets_their_card_and_their_advisor_may_too_but_not_a_classmate(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        async with running_bot(fake, app) as bot:
            ana, bo = _member(bot, people.ana, "U0ANA"), _member(bot, people.bo, "U0BO")
            ada = _member(bot, people.ada, "U0ADA")
            own = await _command(bot, ana, "card")
            advisors = await _command(bot, ada, "card ana", channel_id="C0GENERAL")
            refused = await _command(bot, bo, "card ana")
        assert fake.errors == []

    assert [m["text"] for m in own[1]] == ["Your one-page card"]
    [pdf] = _files(fake, ana.channel)
    assert pdf["filename"] == "card-ana.pdf" and pdf["data"].startswith(b"%PDF")
    text = pdf_text(pdf["data"], tmp_path)
    assert "Ana Diaz" in text and ARM in text
    assert [m["text"] for m in advisors[1]] == ["Ana Diaz's one-page card"]
    [for_ada] = _files(fake, ada.channel)
    assert "Ana Diaz" in pdf_text(for_ada["data"], tmp_path)
    assert refused == (
        ["Sorry, you can only see your own: send /profilebot card."],
        [],
    )
    assert _files(fake, bo.channel) == []
    assert "files.upload" not in _upload_calls(fake)


async def test_a_summary_is_refused_to_a_student_and_another_advisor_but_not_an_admin(
    tmp_path: Path,
) -> None:
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ana, ada = _member(bot, people.ana, "U0ANA"), _member(bot, people.ada, "U0ADA")
            admin = _member(bot, people.max, "U0MAX")
            from_student = await _command(bot, ana, "summary")
            from_other = await _command(bot, ada, "summary olu")
            _, for_admin = await _command(bot, admin, "summary ada")
        assert fake.errors == []

    assert from_student == ([FOR_ADVISORS], [])
    assert from_other == (
        ["Sorry, only the advisor themself or an admin can see an advisor's weekly summary."],
        [],
    )
    _urgent_first(_assert_summary(fake, for_admin, admin.channel))
    assert len(fake.files) == 1


async def test_a_teacher_sees_the_results_of_a_survey_to_their_class_only(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "club_survey.yaml").write_text(SURVEY)
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path, profilebot_flows_dir=flows)
        people = school(app)
        async with running_bot(fake, app) as bot:
            ana, bo = _member(bot, people.ana, "U0ANA"), _member(bot, people.bo, "U0BO")
            tina, theo = _member(bot, people.tina, "U0TINA"), _member(bot, people.theo, "U0THEO")
            report = Surveys(app).send("club_survey", "7B", actor=app.actor("tina"))
            assert report is not None
            bot.bot.worker.wake()
            for student in (ana, bo):
                question = await bot.next_question(student)
                await bot.tap(student, question, "robotics")
                await bot.say(student, "Robots & me")
                await bot.rest(student)
            survey = report.survey.id
            answers, [results] = await _command(bot, tina, f"survey results {survey}")
            refused = await _command(bot, theo, f"survey results {survey}")
        assert fake.errors == []

    assert answers == []
    assert results["blocks"][0]["text"]["text"].startswith(
        f"Survey {survey} results: Club survey (club_survey) to 7B"
    )
    body = _mrkdwn(results)
    assert "• robotics: *2* (Ana Diaz, Bo Chen)" in body
    assert "• *Ana Diaz:* Robots &amp; me" in body  # the marks hug the name: it is bold
    assert refused == (
        [f"Sorry, only a teacher of 7B or an admin can see survey {survey}'s results."],
        [],
    )


async def test_a_redelivered_command_is_answered_once(tmp_path: Path) -> None:
    async with FakeSlackAPI() as fake:
        app = _app(fake, tmp_path)
        people = school(app)
        this_weeks_checkin(app, people)
        async with running_bot(fake, app) as bot:
            ada = _member(bot, people.ada, "U0ADA")
            trigger = bot.driver.trigger_id()
            _, first = await _command(bot, ada, "summary", trigger_id=trigger)
            again = await _command(bot, ada, "summary", trigger_id=trigger)
        assert fake.errors == []

    assert first and again == ([], [])
    assert len(fake.files) == 1 and _upload_calls(fake) == UPLOAD_FLOW
