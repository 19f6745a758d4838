"""Every built-in flow, driven end to end through the console adapter and the real CLI."""

from __future__ import annotations

from datetime import date

from cli_driver import Profilebot

THIS_IS_ME = [
    "Sam",  # preferred_name
    "1, 3, drawing comics",  # strengths: two options + one of their own
    "music, 8",  # interests: by label and by number
    "/skip",  # dislikes (optional)
    "doing, 1",  # learning_preferences
    "2",  # noise_level
    "2",  # social
    "morning",  # time_of_day
    "1, 2",  # motivation
    "/back",  # back to motivation ...
    "2",  # ... and change it
    "getting started",  # challenges
    "1",  # supports
    "Design video games",  # dreams
    "We speak Tagalog at home",  # family_culture (private)
]


def test_this_is_me_builds_the_structured_profile(profilebot: Profilebot) -> None:
    profilebot("people", "add", "--name", "Sam", "--role", "student", "--handle", "sam")
    profilebot("consent", "grant", "sam", "--by", "Sam's mother")  # the family question too
    out = profilebot.chat("sam", THIS_IS_ME)
    assert "learner profile" in out and "Design video games" in out  # the card at the end
    # /back shows the earlier answer as the options read, not as stored values
    assert (
        "Your answer was: Learning about things I'm curious about, Seeing myself get better"
    ) in out
    assert "  1. Being creative" in out  # options are numbered
    shown = profilebot.json("profile", "show", "sam")
    assert shown["person"]["handle"] == "sam"
    assert shown["profile"] == {
        "preferred_name": "Sam",
        "strengths": ["creative", "curious", "drawing comics"],
        "interests": ["music", "tech_coding"],
        "learning_preferences": ["seeing", "doing"],
        "environment": {"noise_level": 2, "social": "partner", "time_of_day": "morning"},
        "motivation": ["progress"],
        "challenges": ["getting_started"],
        "supports": ["an_example"],
        "dreams": "Design video games",
    }
    private = profilebot.json("profile", "show", "sam", "--include-private")
    assert private["profile"]["identity"] == {"family_culture": "We speak Tagalog at home"}
    card = profilebot("profile", "show", "sam")
    assert "Tagalog" not in card and "Tech and coding" in card


def test_chat_resumes_at_the_same_question_after_input_ends(profilebot: Profilebot) -> None:
    first = profilebot.chat("ana", THIS_IS_ME[:3])
    assert "carry on" in first
    second = profilebot.chat("ana", THIS_IS_ME[3:])
    assert second.startswith("Welcome back! Here's where we were:")
    assert (
        "dislike" in second.split("\n\n")[0].lower() or "enjoy" in second.split("\n\n")[1].lower()
    )
    profile = profilebot.json("profile", "show", "ana")["profile"]
    assert profile["strengths"] == ["creative", "curious", "drawing comics"]
    assert profile["dreams"] == "Design video games"


GOALS = [
    "Hand in maths homework on time",
    "1",  # academic
    "So I keep up in class",
    "Write homework in my planner",  # a list: one item per line ...
    "Start it the same day",
    "done",  # ... until done
    "2026-12-18",
    "A reminder from my advisor",
    "yes",
    "Swim 50 metres",
    "personal",
    "To stay healthy",
    "Go to the pool on Saturday",
    "Practise breathing",
    "done",
    "next friday",
    "/skip",
    "no",
]


def test_goal_setting_then_weekly_checkin_then_reflection_build_the_plan(
    profilebot: Profilebot,
) -> None:
    profilebot.chat("sam", GOALS, "--flow", "goal_setting")
    plan = profilebot.json("plan", "show", "sam")
    goals = plan["goals"]
    assert [g["title"] for g in goals] == ["Hand in maths homework on time", "Swim 50 metres"]
    assert goals[0] | {"checkins": None} == {
        "title": "Hand in maths homework on time",
        "category": "academic",
        "why": "So I keep up in class",
        "status": "active",
        "target_date": "2026-12-18",
        "support": "A reminder from my advisor",
        "action_steps": ["Write homework in my planner", "Start it the same day"],
        "checkins": None,
    }
    assert goals[1]["action_steps"] == ["Go to the pool on Saturday", "Practise breathing"]
    assert date.fromisoformat(goals[1]["target_date"]).weekday() == 4  # a Friday
    assert goals[1]["support"] is None

    out = profilebot.chat(
        "sam",
        [
            "4",
            "3",
            "Finished my poster",
            "3",
            "Did 3 of 4 homeworks",
            "/skip",
            "Start on Monday",
            "2",
            "/skip",
            "The pool was closed",
            "Go on Sunday",
            "Can we talk about maths?",
            "yes",
        ],
        "--flow",
        "weekly_checkin",
    )
    assert "Hand in maths homework on time" in out and "Swim 50 metres" in out
    goals = profilebot.json("plan", "show", "sam")["goals"]
    maths, swim = goals
    assert [(c["progress"], c["did"], c["next_step"]) for c in maths["checkins"]] == [
        (3, "Did 3 of 4 homeworks", "Start on Monday")
    ]
    assert [(c["progress"], c["blockers"], c["next_step"]) for c in swim["checkins"]] == [
        (2, "The pool was closed", "Go on Sunday")
    ]
    assert maths["checkins"][0]["mood"] == 4 and maths["checkins"][0]["energy"] == 3

    profilebot.chat(
        "sam",
        [
            "My comic won a prize",
            "https://example.org/comic.png my comic",
            "I learn best when I draw it out",
            "no",
            "completed",
            "active",
            "/skip",
        ],
        "--flow",
        "term_reflection",
    )
    goals = profilebot.json("plan", "show", "sam")["goals"]
    assert [g["status"] for g in goals] == ["completed", "active"]
    card = profilebot("plan", "show", "sam")
    assert "Swim 50 metres" in card and "completed" in card


def test_back_out_of_a_goal_branch_keeps_only_the_goals_still_wanted(
    profilebot: Profilebot,
) -> None:
    answers = [*GOALS[:10], "/back", "/back", "no"]  # "yes", goal 2's title, then back to "no"
    out = profilebot.chat("lee", answers, "--flow", "goal_setting")
    assert "Swim 50 metres" not in out.split("learning plan")[-1]  # the card at the end
    goals = profilebot.json("plan", "show", "lee")["goals"]
    assert [(g["title"], g["status"]) for g in goals] == [
        ("Hand in maths homework on time", "active")
    ]


def test_weekly_checkin_without_goals_offers_goal_setting(profilebot: Profilebot) -> None:
    checkin = ["3", "3", "/skip"]  # mood, energy, no highlight: then there are no goals
    out = profilebot.chat(
        "kai", [*checkin, "/newgoal", *GOALS[:8], "no"], "--flow", "weekly_checkin"
    )
    offer, goal_setting = out.split("send /newgoal", 1)
    assert "don't have any active goals" in offer
    assert "Sorry, I don't know" not in goal_setting
    assert "Let's set your goals for this term" in goal_setting
    goals = profilebot.json("plan", "show", "kai")["goals"]
    assert [g["title"] for g in goals] == ["Hand in maths homework on time"]
    out = profilebot.chat("kai", ["/skip", "no"])  # the check-in is still there to finish
    assert out.startswith("Welcome back!") and "advisor" in out
    assert "Hand in maths homework on time" in out  # its card shows the new goal


def test_profile_and_goals_show_cards_and_the_question_still_waits(
    profilebot: Profilebot,
) -> None:
    out = profilebot.chat("mia", [*THIS_IS_ME[:2], "/profile", "/goals"])
    cards = out.split("or write your own)")[-1]  # after the interests question
    assert "Sam's learner profile" in cards and "drawing comics" in cards
    assert "mia has no goals yet" in cards and "Send /newgoal" in cards
    assert "Sorry, I don't know" not in out
    out = profilebot.chat("mia", [])
    assert out.startswith("Welcome back!") and "What do you love doing" in out


def test_a_flow_file_resumed_without_the_file_still_finishes(profilebot: Profilebot) -> None:
    (profilebot.workdir / "two.yaml").write_text(TWO_QUESTIONS)
    profilebot.chat("quinn", ["blue"], "--file", "two.yaml")
    (profilebot.workdir / "two.yaml").unlink()
    out = profilebot.chat("quinn", ["pasta"])  # the conversation is pinned to stored content
    assert "Favourite food?" in out and "Input ended" not in out
    assert "quinn's learner profile" in out and "pasta" in out  # the card of the pinned flow
    profile = profilebot.json("profile", "show", "quinn")["profile"]
    assert profile == {"colour": "blue", "food": "pasta"}


def test_a_school_flow_deleted_mid_conversation_still_finishes(profilebot: Profilebot) -> None:
    flows = profilebot.workdir / "flows"
    flows.mkdir()
    (flows / "two.yaml").write_text(TWO_QUESTIONS)
    profilebot.env["PROFILEBOT_FLOWS_DIR"] = str(flows)
    profilebot.chat("quinn", ["blue"], "--flow", "two_q")
    (flows / "two.yaml").unlink()
    profilebot.chat("quinn", ["pasta"])
    profile = profilebot.json("profile", "show", "quinn")["profile"]
    assert profile == {"colour": "blue", "food": "pasta"}


TWO_QUESTIONS = """\
id: two_q
version: 1
title: Two questions
steps:
  - id: colour
    ask: Favourite colour?
    type: text
    save: profile.colour
  - id: food
    ask: Favourite food?
    type: text
    save: profile.food
"""


def test_chat_without_a_flow_resumes_whatever_conversation_is_open(profilebot: Profilebot) -> None:
    profilebot.chat("lea", ["4"], "--flow", "weekly_checkin")  # mood, then input ends
    out = profilebot.chat("lea", [])
    assert out.startswith("Welcome back! Here's where we were:")
    assert "energy" in out.lower()  # the check-in's next question, not a new interview
