"""The adapter's pure translations: a tapped button to a neutral answer, a reply to messages."""

from __future__ import annotations

import pytest
from telegram import InlineKeyboardMarkup

from bot.adapters.telegram import _parts, inbound_for_callback, keyboard_for
from bot.adapters.telegram_render import MAX_MESSAGE_CHARS, CallbackAction, toggled
from dialogues import Inbound, Option, Reply, ReplyKind, Scale

CHOICE = Reply(
    "Pick one",
    ReplyKind.CHOICE,
    step_id="sport",
    options=(Option("football", "Football"), Option("swim", "Swimming")),
)
MULTI = Reply(
    "Pick some",
    ReplyKind.MULTI_CHOICE,
    step_id="likes",
    options=(Option("art", "Art"), Option("music", "Music"), Option("maths", "Maths")),
)
SCALE = Reply("How loud?", ReplyKind.SCALE, step_id="noise", scale=Scale(1, 5))
YES_NO = Reply("Meet?", ReplyKind.YES_NO, step_id="meet")
LIST = Reply("Your steps?", ReplyKind.LIST, step_id="steps", optional=True)


@pytest.mark.parametrize(
    ("reply", "action", "expected"),
    [
        (CHOICE, CallbackAction("pick", "7", 1), Inbound.of_button("swim")),
        (CHOICE, CallbackAction("pick", "7", 2), None),  # no third option
        (SCALE, CallbackAction("pick", "7", 0), Inbound.of_button("1")),
        (SCALE, CallbackAction("pick", "7", 4), Inbound.of_button("5")),
        (SCALE, CallbackAction("pick", "7", 5), None),
        (YES_NO, CallbackAction("pick", "7", 0), Inbound.of_button("yes")),
        (YES_NO, CallbackAction("pick", "7", 1), Inbound.of_button("no")),
        (YES_NO, CallbackAction("pick", "7", 2), None),
        (LIST, CallbackAction("done", "7"), Inbound.of_command("done")),
        (LIST, CallbackAction("skip", "7"), Inbound.of_command("skip")),
        (LIST, CallbackAction("pick", "7", 0), None),  # a list has nothing to pick
    ],
)
def test_a_tap_becomes_the_answer_it_shows(
    reply: Reply, action: CallbackAction, expected: Inbound | None
) -> None:
    assert inbound_for_callback(action, reply, None) == expected


def test_done_sends_exactly_the_ticked_options() -> None:
    selected = toggled(toggled(toggled(frozenset(), 2), 0), 2)  # tick maths, art; untick maths
    markup = keyboard_for(MULTI, "7", selected=selected)
    assert isinstance(markup, InlineKeyboardMarkup)
    done = inbound_for_callback(CallbackAction("done", "7"), MULTI, markup)
    assert done == Inbound.of_selection(("art",))
    nothing = inbound_for_callback(CallbackAction("done", "7"), MULTI, keyboard_for(MULTI, "7"))
    assert nothing == Inbound.of_selection(())


def test_a_long_question_is_split_with_its_buttons_on_the_last_part() -> None:
    paragraphs = "\n\n".join(f"Paragraph {i}: " + "words " * 150 for i in range(8))
    long_choice = Reply(paragraphs, CHOICE.kind, CHOICE.step_id, CHOICE.options)
    parts = _parts(long_choice)
    assert len(parts) > 1
    assert all(len(p.text) <= MAX_MESSAGE_CHARS - 200 for p in parts)
    assert " ".join(" ".join(p.text for p in parts).split()) == " ".join(paragraphs.split())
    assert [p.is_question for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].options == CHOICE.options


def test_a_short_message_is_one_part() -> None:
    assert _parts(CHOICE) == [CHOICE]
    assert _parts(Reply("")) == [Reply("")]
