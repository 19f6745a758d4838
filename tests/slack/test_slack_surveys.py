"""Surveys from Slack, end to end against the fake Web API: ``/profilebot survey FLOW GROUP``
reaches the class, ``/profilebot survey status ID`` counts, a repeat asks first with buttons
(ephemeral, where the command was typed) that work once, and refusals are polite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.app import App
from bot.surveys import Surveys
from storage import RosterEntry, metadata
from tests.slack.harness import Running, Student, slack_bot

JSONDict = dict[str, Any]


def _roster(bot: Running) -> tuple[Student, Student, Student]:
    """Tina teaches 7B, Theo 8A; Ana is in 7B. All joined by their Slack email."""
    people = []
    for user, handle, name, role, group in (
        ("U0TINA", "tina", "Tina Park", "teacher", "7B"),
        ("U0THEO", "theo", "Theo Ruiz", "teacher", "8A"),
        ("U0ANA", "ana", "Ana Diaz", "student", "7B"),
    ):
        email = f"{handle}@school.example"
        bot.fake.add_user(user, email=email, real_name=name)
        bot.app.roster.import_people(
            [RosterEntry(2, name, role, handle=handle, groups=(group,), email=email)]
        )
        person = bot.app.people.get(handle)
        people.append(Student(user, bot.fake.dm_channel(user), person.id, ""))
    bot.app.profiles.set(people[2].person_id, "preferred_name", "Ana")
    bot.fake.add_channel("C0GENERAL", "general", members=[p.user for p in people])
    return people[0], people[1], people[2]


async def _command(bot: Running, who: Student, text: str) -> JSONDict:
    """``/profilebot <text>`` typed in #general; the ephemeral answer it got."""
    before = len(bot.fake.responses)
    response = await bot.command(who, text, channel_id="C0GENERAL")
    assert response.status == 200 and response.acked_in_time
    await bot.wait_for(lambda: len(bot.fake.responses) > before)
    await bot.settle()
    answer = bot.fake.responses[before].payload
    assert answer["response_type"] == "ephemeral"
    return answer


async def _click(bot: Running, who: Student, ephemeral: JSONDict, label: str) -> None:
    """Click a button of an ephemeral message, as Slack sends it (no ``message`` in it)."""
    action_id, block_id = next(
        (element["action_id"], block["block_id"])
        for block in ephemeral["blocks"]
        for element in block.get("elements") or []
        if element.get("type") == "button" and element["text"]["text"] == label
    )
    action = bot.driver.button_action(action_id, block_id=block_id, text=label)
    payload = bot.driver.block_actions_payload(
        who.user, [action], message={"ts": "1.000001"}, channel="C0GENERAL"
    )
    del payload["message"]
    payload["container"]["is_ephemeral"] = True
    await bot.driver.block_actions(payload)
    await bot.settle()


def _surveys(app: App) -> list[int]:
    survey = metadata.tables["survey"]
    with app.db.read() as conn:
        return list(conn.execute(select(survey.c.id).order_by(survey.c.id)).scalars())


async def test_a_teacher_sends_a_survey_from_slack_and_a_repeat_asks_first(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path, quiet_hours="off") as bot:
        tina, theo, ana = _roster(bot)
        await bot.say(ana, "hi")  # Ana joins by her email
        await bot.rest(ana)

        help_answer = await _command(bot, tina, "help")
        assert "/profilebot survey FLOW GROUP" in help_answer["text"]
        sent = await _command(bot, tina, "survey weekly_checkin 7B")
        assert sent["text"] == (
            "Sent weekly_checkin to 7B (survey 1): 1 started. See how it's going with "
            "/profilebot survey status 1."
        )
        question = await bot.next_question(ana)
        assert bot.step_of(ana, question) == "mood"  # in Ana's DM

        status = await _command(bot, tina, "survey status 1")
        assert "0 completed, 1 in progress, 0 expired (of 1 started)" in status["text"]

        prompt = await _command(bot, tina, "survey weekly_checkin 7B")
        assert "weekly_checkin was sent to 7B on" in prompt["text"]
        labels = [
            e["text"]["text"]
            for b in prompt["blocks"]
            for e in b.get("elements") or []
            if e.get("type") == "button"
        ]
        assert labels == ["Send again", "Cancel"]

        await _click(bot, theo, prompt, "Send again")  # not his: nothing happens
        assert _surveys(bot.app) == [1]
        assert bot.fake.ephemerals_for("U0THEO")[-1]["text"].startswith("That question is")

        before = len(bot.fake.responses)
        await _click(bot, tina, prompt, "Send again")
        assert _surveys(bot.app) == [1, 2]
        answer = bot.fake.responses[before].payload["text"]
        assert answer.startswith("Sent weekly_checkin to 7B (survey 2): 0 started, 1 busy")
        await _click(bot, tina, prompt, "Send again")  # a second click: nothing more
        assert _surveys(bot.app) == [1, 2]
        assert bot.fake.ephemerals_for("U0TINA")[-1]["text"].startswith("That question is")
        assert bot.fake.errors == []


async def test_students_and_other_teachers_are_refused_politely_in_slack(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path, quiet_hours="off") as bot:
        tina, theo, ana = _roster(bot)
        await bot.say(ana, "hi")
        await bot.rest(ana)
        refusal = "Sorry, only a teacher of 7B or an admin can send 7B a survey."
        assert (await _command(bot, theo, "survey weekly_checkin 7B"))["text"] == refusal
        assert (await _command(bot, ana, "survey weekly_checkin 7B"))["text"] == refusal
        usage = (await _command(bot, tina, "survey"))["text"]
        assert usage.startswith("To send a survey to a class: /profilebot survey FLOW GROUP")
        assert _surveys(bot.app) == []
        assert all(r.conversation_id is None for r in bot.app.outbox.for_person(ana.person_id))


async def test_accounts_from_the_roster_or_by_email_get_the_survey_that_waited(
    tmp_path: Path,
) -> None:
    async with slack_bot(tmp_path, quiet_hours="off") as bot:
        fake, app = bot.fake, bot.app
        fake.add_user("U0KIM", email="kim@school.example", real_name="Kim Lee")
        fake.add_user("U0LEO", email="leo@school.example", real_name="Leo Ng")
        app.roster.import_people(
            [
                RosterEntry(2, "Tina Park", "teacher", handle="tina", groups=("7B",)),
                # a Slack export gave Kim's user id, not the workspace
                RosterEntry(
                    3, "Kim Lee", "student", handle="kim", groups=("7B",), slack_id="U0KIM"
                ),
                # Leo has no account yet: he joins by his email when he first writes
                RosterEntry(
                    4, "Leo Ng", "student", handle="leo", groups=("7B",), email="leo@school.example"
                ),
            ]
        )
        report = Surveys(app).send("weekly_checkin", "7B", actor=None)
        assert report is not None and (report.started, report.no_account) == (2, 1)
        bot.bot.worker.wake()

        kim = Student("U0KIM", fake.dm_channel("U0KIM"), app.people.get("kim").id, "")
        mood = await bot.next_question(kim)
        assert bot.step_of(kim, mood) == "mood"
        energy = await bot.tap(kim, mood, "4")  # the click counts: it is her question
        assert bot.step_of(kim, energy) == "energy"
        placed = app.people.by_identity("slack", "T0PROFILE", "U0KIM")
        assert placed is not None and placed.handle == "kim"

        leo = Student("U0LEO", fake.dm_channel("U0LEO"), app.people.get("leo").id, "")
        await bot.say(leo, "hi")
        hello = await bot.next_message(leo)
        assert hello["text"].startswith("Hi Leo! 👋 Time for your weekly check-in")
        assert bot.step_of(leo, await bot.next_question(leo)) == "mood"  # "hi" answered nothing
        counts = Surveys(app).status(report.survey.id, actor=None).counts
        assert (counts.in_progress, counts.no_account) == (2, 0)
        assert fake.errors == []
