"""parse_answer / parse_command: what counts as an answer for every step type."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogues._answers import (
    Accepted,
    AnswerResult,
    ListProgress,
    Rejected,
    normalize,
    parse_answer,
    parse_command,
)
from dialogues._messages import Attachment, Command, Inbound, InboundKind, Option
from dialogues._schema import OptionSpec, Step, StepType

TODAY = date(2026, 11, 23)  # a Monday

OPTIONS = (
    Option("art", "Art"),
    Option("music", "Música"),
    Option("sports", "Sports"),
    Option("science", "Science & tech"),
)
LEARN = (
    Option("seeing", "By seeing: pictures, diagrams, videos"),
    Option("talking", "By listening and talking it through"),
    Option("doing", "By doing and building"),
)


def answer(
    step: Step,
    message: Inbound | str,
    *,
    options: tuple[Option, ...] = OPTIONS,
    collected: tuple[str, ...] = (),
) -> AnswerResult:
    inbound = Inbound.of_text(message) if isinstance(message, str) else message
    return parse_answer(step, inbound, options=options, today=TODAY, collected=collected)


def accepted(result: AnswerResult) -> Any:
    assert isinstance(result, Accepted), result
    return result.value


def hint(result: AnswerResult) -> str:
    assert isinstance(result, Rejected), result
    return result.hint


def step(kind: StepType, **fields: Any) -> Step:
    return Step(id="s", type=kind, **fields)


# ------------------------------------------------------------------------------ text

TEXT = step(StepType.TEXT)


@pytest.mark.parametrize(
    ("message", "value"),
    [("Sam", "Sam"), ("  Sam  ", "Sam"), ("Zoë 🎨", "Zoë 🎨"), ("two\nlines", "two\nlines")],
)
def test_text_accepts_and_strips(message: str, value: str) -> None:
    assert accepted(answer(TEXT, message)) == value


@pytest.mark.parametrize("message", ["", "   ", "\n\t"])
def test_text_rejects_empty(message: str) -> None:
    assert "type an answer" in hint(answer(TEXT, message))


def test_text_length_limits() -> None:
    bounded = step(StepType.TEXT, min_length=3, max_length=40)
    assert "at least 3 characters" in hint(answer(bounded, "ab"))
    assert "40 characters" in hint(answer(bounded, "x" * 41))
    assert accepted(answer(bounded, "x" * 40)) == "x" * 40


def test_text_default_cap_rejects_huge_messages() -> None:
    assert "2000 characters" in hint(answer(TEXT, "x" * 10_000))
    assert accepted(answer(TEXT, "x" * 2000)) == "x" * 2000


def test_text_display_is_short() -> None:
    result = answer(TEXT, "word " * 300)
    assert isinstance(result, Accepted)
    assert len(result.display) <= 120 and result.display.endswith("…")


def test_text_drops_nul_bytes() -> None:
    assert accepted(answer(TEXT, "a\x00b")) == "ab"


def test_text_refuses_a_button() -> None:
    assert hint(answer(TEXT, Inbound.of_button("yes"))) == "Please type your answer."


# ------------------------------------------------------------------------------ number


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("7", 7.0),
        ("7.5", 7.5),
        ("7,5", 7.5),
        (" -3 ", -3.0),
        ("+2", 2.0),
        ("1,000", 1000.0),
        ("about 7 hours", 7.0),
        ("７", 7.0),  # fullwidth digit
        ("−4", -4.0),  # unicode minus
    ],
)
def test_number_accepts(message: str, value: float) -> None:
    result = accepted(answer(step(StepType.NUMBER), message))
    assert result == value and isinstance(result, float)


def test_number_integer_step_gives_int() -> None:
    integer = step(StepType.NUMBER, integer=True)
    assert accepted(answer(integer, "7")) == 7 and type(accepted(answer(integer, "7"))) is int
    assert accepted(answer(integer, "7.0")) == 7
    assert "whole number" in hint(answer(integer, "7.5"))


@pytest.mark.parametrize(
    "message", ["", "seven", "nan", "inf", "-inf", "1e5", "3-4", "3 or 4", "1" * 400, "x" * 10_000]
)
def test_number_rejects(message: str) -> None:
    assert "Please type a number" in hint(answer(step(StepType.NUMBER), message))


def test_number_bounds() -> None:
    bounded = step(StepType.NUMBER, min=1, max=10, integer=True)
    assert hint(answer(bounded, "0")) == "Please type a whole number from 1 to 10."
    assert hint(answer(bounded, "11")) == "Please type a whole number from 1 to 10."
    assert accepted(answer(bounded, "10")) == 10
    assert "at least 0" in hint(answer(step(StepType.NUMBER, min=0), "-1"))
    assert "no bigger than 2.5" in hint(answer(step(StepType.NUMBER, max=2.5), "3"))


def test_number_display() -> None:
    result = answer(step(StepType.NUMBER), "7")
    assert isinstance(result, Accepted) and result.display == "7"


# ------------------------------------------------------------------------------ choice

CHOICE = step(StepType.CHOICE)


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("2", "music"),
        (" 2. ", "music"),
        ("#3", "sports"),
        ("2️⃣", "music"),
        ("music", "music"),
        ("MUSIC", "music"),
        ("Música", "music"),
        ("musica", "music"),
        ("música!", "music"),
        ("science & tech", "science"),
        ("Science and tech", "science"),  # words only
        ("spo", "sports"),  # unique prefix
        ("sci", "science"),
    ],
)
def test_choice_typed(message: str, value: str) -> None:
    assert accepted(answer(CHOICE, message)) == value


def test_choice_button_and_display() -> None:
    assert answer(CHOICE, Inbound.of_button("music")) == Accepted("music", "Música")


@pytest.mark.parametrize("message", ["0", "5", "xyz", "", "ar", "s", "x" * 10_000])
def test_choice_rejects_with_numbers(message: str) -> None:
    assert hint(answer(CHOICE, message)) == (
        "Please choose one of the options (1–4), or type its name."
    )


def test_choice_rejects_unknown_button() -> None:
    assert "(1–4)" in hint(answer(CHOICE, Inbound.of_button("drama")))


def test_choice_prefers_exact_value_over_position() -> None:
    counts = (Option("0", "none"), Option("1", "once"), Option("2", "twice"))
    assert accepted(answer(CHOICE, "1", options=counts)) == "1"
    assert accepted(answer(CHOICE, "3", options=counts)) == "2"  # by position


def test_choice_long_labels_by_prefix() -> None:
    assert accepted(answer(CHOICE, "by doing", options=LEARN)) == "doing"
    assert hint(answer(CHOICE, "by", options=LEARN))  # ambiguous and too short


def test_choice_allow_other_keeps_free_text() -> None:
    other = step(StepType.CHOICE, allow_other=True)
    assert answer(other, "  Drama club ") == Accepted("Drama club", "Drama club")
    assert accepted(answer(other, "art")) == "art"
    assert "(1–4)" in hint(answer(other, "9"))  # a number is a missed pick, not "other"
    assert "500 characters" in hint(answer(other, "x" * 600))


def test_choice_with_one_or_no_options() -> None:
    assert "(1)" in hint(answer(CHOICE, "zzz", options=(Option("a", "Apple"),)))
    assert hint(answer(CHOICE, "zzz", options=())) == "Please type your answer."


# ------------------------------------------------------------------------------ multi_choice

MULTI = step(StepType.MULTI_CHOICE)


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("1, 3", ["art", "sports"]),
        ("1 3", ["art", "sports"]),
        ("3,1", ["art", "sports"]),  # option order, not typed order
        ("1, 1, 3", ["art", "sports"]),  # deduped
        ("art, music", ["art", "music"]),
        ("Art and Música", ["art", "music"]),
        ("art & sports", ["art", "sports"]),
        ("art\nsports", ["art", "sports"]),
        ("art, music, and science", ["art", "music", "science"]),
        ("Science & tech", ["science"]),  # "&" inside a label is not a separator
        ("música y arte", None),  # "arte" is unknown: rejected below
        ("2", ["music"]),
    ],
)
def test_multi_choice_typed(message: str, value: list[str] | None) -> None:
    result = answer(MULTI, message)
    if value is None:
        assert '"arte"' in hint(result)
    else:
        assert accepted(result) == value


def test_multi_choice_label_containing_and() -> None:
    assert accepted(answer(MULTI, "By listening and talking it through, 3", options=LEARN)) == [
        "talking",
        "doing",
    ]


def test_multi_choice_selection_button() -> None:
    result = answer(MULTI, Inbound.of_selection(("sports", "art")))
    assert result == Accepted(["art", "sports"], "Art, Sports")


def test_multi_choice_single_button_counts_as_a_selection() -> None:
    assert accepted(answer(MULTI, Inbound.of_button("art"))) == ["art"]


def test_multi_choice_rejects_unknown_button_value() -> None:
    assert '"drama"' in hint(answer(MULTI, Inbound.of_selection(("art", "drama"))))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("1, 9", "There's no option 9; please use 1 to 4."),
        ("art, drama", 'I couldn\'t find "drama" among the options.'),
    ],
)
def test_multi_choice_names_the_bad_token(message: str, expected: str) -> None:
    assert expected in hint(answer(MULTI, message))


def test_multi_choice_min_max() -> None:
    two_or_three = step(StepType.MULTI_CHOICE, min=2.0, max=3.0)
    assert "at least 2 options" in hint(answer(two_or_three, "1"))
    assert "at most 3 (you picked 4)" in hint(answer(two_or_three, "1 2 3 4"))
    assert accepted(answer(two_or_three, "1 2")) == ["art", "music"]
    assert "at least one option" in hint(answer(MULTI, Inbound.of_selection(())))
    assert accepted(answer(step(StepType.MULTI_CHOICE, min=0), Inbound.of_selection(()))) == []


@pytest.mark.parametrize(
    "message",
    [Inbound.of_text("done"), Inbound.of_command("done"), Inbound.of_button("done")],
)
def test_multi_choice_done_without_picks(message: Inbound) -> None:
    assert "at least one option" in hint(answer(MULTI, message))


def test_multi_choice_allow_other() -> None:
    other = step(StepType.MULTI_CHOICE, allow_other=True)
    result = answer(other, "art, Drama, music and chess, drama")
    assert result == Accepted(["art", "music", "Drama", "chess"], "Art, Música, Drama, chess")
    assert accepted(answer(other, "rock and roll")) == ["rock and roll"]
    assert "no option 7" in hint(answer(other, "1, 7"))
    counted = step(StepType.MULTI_CHOICE, allow_other=True, max=2)
    assert "at most 2" in hint(answer(counted, "art, music, chess"))


def test_multi_choice_rejects_huge_text() -> None:
    assert "(1–4)" in hint(answer(MULTI, "art, " * 3000))


# ------------------------------------------------------------------------------ scale

SCALE = step(StepType.SCALE, min=1, max=5, labels=((1, "silent"), (5, "lively")))


@pytest.mark.parametrize(
    ("message", "value", "display"),
    [
        ("4", 4, "4"),
        ("5", 5, "5 (lively)"),
        (" 1 ", 1, "1 (silent)"),
        ("lively", 5, "5 (lively)"),
        ("SILENT!", 1, "1 (silent)"),
        ("liv", 5, "5 (lively)"),
        ("4/5", 4, "4"),
        ("4 out of 5", 4, "4"),
        ("5 (lively)", 5, "5 (lively)"),
        ("4️⃣", 4, "4"),
        (Inbound.of_button("3"), 3, "3"),
    ],
)
def test_scale_accepts(message: Inbound | str, value: int, display: str) -> None:
    assert answer(SCALE, message) == Accepted(value, display)


@pytest.mark.parametrize(
    "message", ["0", "6", "3.5", "loud", "", "4/10", Inbound.of_button("9"), "x" * 10_000]
)
def test_scale_rejects(message: Inbound | str) -> None:
    assert hint(answer(SCALE, message)) == "Please pick a number from 1 to 5."


def test_scale_defaults_to_one_to_five() -> None:
    plain = step(StepType.SCALE)
    assert accepted(answer(plain, "5")) == 5
    assert hint(answer(plain, "6")) == "Please pick a number from 1 to 5."


def test_scale_negative_range() -> None:
    centred = step(StepType.SCALE, min=-2, max=2)
    assert accepted(answer(centred, "-2")) == -2


# ------------------------------------------------------------------------------ yes_no

YES_NO = step(StepType.YES_NO)


@pytest.mark.parametrize(
    "message",
    [
        "yes", "Yes!", "YES", "y", "yeah", "yep", "sure", "ok", "okay", "true", "of course",
        "yes please", "yes, I do", "sí", "si", "Sí.", "oui", "ja", "sim", "certo", "👍", "👍🏽",
        "✔️", Inbound.of_button("yes"), Inbound.of_button("true"),
    ],
)  # fmt: skip
def test_yes(message: Inbound | str) -> None:
    assert answer(YES_NO, message) == Accepted(True, "yes")


@pytest.mark.parametrize(
    "message",
    [
        "no", "No.", "n", "nope", "nah", "false", "not really", "no thanks", "non", "nein",
        "não", "nao", "👎", "no, not this term", Inbound.of_button("no"),
        Inbound.of_button("false"),
    ],
)  # fmt: skip
def test_no(message: Inbound | str) -> None:
    assert answer(YES_NO, message) == Accepted(False, "no")


@pytest.mark.parametrize(
    "message", ["maybe", "", "yes and no", "not sure", "🤷", Inbound.of_button("maybe")]
)
def test_yes_no_rejects(message: Inbound | str) -> None:
    assert hint(answer(YES_NO, message)) == "Please answer yes or no."


# ------------------------------------------------------------------------------ date

DATE = step(StepType.DATE)


@pytest.mark.parametrize(
    ("message", "value", "display"),
    [
        ("2026-12-01", "2026-12-01", "Tue 1 Dec 2026"),
        ("next friday", "2026-11-27", "Fri 27 Nov 2026"),
        ("1 Jan", "2027-01-01", "Fri 1 Jan 2027"),
        ("tomorrow", "2026-11-24", "Tue 24 Nov 2026"),
    ],
)
def test_date(message: str, value: str, display: str) -> None:
    assert answer(DATE, message) == Accepted(value, display)


@pytest.mark.parametrize("message", ["whenever", "", "31 Feb 2026", "x" * 10_000])
def test_date_rejects(message: str) -> None:
    assert hint(answer(DATE, message)) == (
        "Please give a date like 2026-12-01, 1 Dec, or next friday."
    )


# ------------------------------------------------------------------------------ list

LIST = step(StepType.LIST)


def test_list_accumulates_one_item_per_message_until_done() -> None:
    first = answer(LIST, "  Read chapter 3 ")
    assert first == ListProgress(("Read chapter 3",))
    second = answer(LIST, "Ask Ms Lee", collected=first.items)
    assert second == ListProgress(("Read chapter 3", "Ask Ms Lee"))
    done = answer(LIST, "done", collected=second.items)
    assert done == Accepted(["Read chapter 3", "Ask Ms Lee"], "Read chapter 3, Ask Ms Lee")


@pytest.mark.parametrize(
    "message",
    [
        "Done",
        "done.",
        "listo",
        "fini",
        "fertig",
        "pronto",
        "finito",
        "/done",
        Inbound.of_button("done"),
        Inbound.of_command("done"),
    ],
)
def test_list_done_words(message: Inbound | str) -> None:
    assert accepted(answer(LIST, message, collected=("a",))) == ["a"]


def test_list_done_too_early() -> None:
    assert hint(answer(LIST, "done")) == "Please add 1 more item before done."
    three = step(StepType.LIST, min=3)
    assert hint(answer(three, "done", collected=("a",))) == "Please add 2 more items before done."


def test_list_several_lines_complete_the_answer() -> None:
    result = answer(LIST, "- maths\n\n* science \n3. art")
    assert result == Accepted(["maths", "science", "art"], "maths, science, art")


def test_list_several_lines_below_min_keep_collecting() -> None:
    three = step(StepType.LIST, min=3)
    assert answer(three, "a\nb") == ListProgress(("a", "b"))
    assert accepted(answer(three, "c\nd", collected=("a",))) == ["a", "c", "d"]


def test_list_trailing_done_line() -> None:
    assert accepted(answer(step(StepType.LIST, min=3), "a\nb\ndone", collected=("z",))) == [
        "z",
        "a",
        "b",
    ]
    assert "2 more items" in hint(answer(step(StepType.LIST, min=3), "a\ndone"))


def test_list_max() -> None:
    two = step(StepType.LIST, max=2)
    assert answer(two, "a") == ListProgress(("a",))
    assert accepted(answer(two, "b", collected=("a",))) == ["a", "b"]  # reaching max completes
    assert hint(answer(two, "b\nc", collected=("a",))) == (
        "Please list at most 2 items; you can add 1 more."
    )


def test_list_item_length() -> None:
    assert "500 characters per item" in hint(answer(LIST, "x" * 501))
    assert "10 characters per item" in hint(answer(step(StepType.LIST, max_length=10), "x" * 11))


@pytest.mark.parametrize("message", ["", "  \n  ", Inbound.of_button("art")])
def test_list_rejects_empty(message: Inbound | str) -> None:
    assert "type an item" in hint(answer(LIST, message))


# ------------------------------------------------------------------------------ file

FILE = step(StepType.FILE)


def test_file_attachment() -> None:
    photo = Attachment(kind="photo", file_id="f1", name="poster.jpg", caption="my poster")
    result = answer(FILE, Inbound.of_file(photo))
    assert result == Accepted(photo.to_json(), "poster.jpg")
    unnamed = Attachment(kind="document", file_id="f2")
    assert answer(FILE, Inbound.of_file(unnamed)) == Accepted(unnamed.to_json(), "document")


def test_file_link_with_caption() -> None:
    result = answer(FILE, "my essay: https://docs.example.com/d/1?x=2. thanks")
    assert accepted(result) == {
        "kind": "link",
        "file_id": None,
        "name": None,
        "mime_type": None,
        "url": "https://docs.example.com/d/1?x=2",
        "caption": "my essay: thanks",
    }
    assert accepted(answer(FILE, "HTTP://example.com"))["caption"] is None


@pytest.mark.parametrize(
    "message",
    ["my essay", "", "ftp://example.com", "https://", Inbound.of_button("x"), "done"],
)
def test_file_rejects(message: Inbound | str) -> None:
    assert hint(answer(FILE, message)) == "Please send a photo, a document or a link."


def test_file_without_attachment_is_rejected() -> None:
    assert hint(answer(FILE, Inbound(InboundKind.FILE))) == (
        "Please send a photo, a document or a link."
    )


@pytest.mark.parametrize("kind", [StepType.TEXT, StepType.CHOICE, StepType.YES_NO, StepType.LIST])
def test_a_file_is_not_a_typed_answer(kind: StepType) -> None:
    photo = Inbound.of_file(Attachment(kind="photo", file_id="f", caption="yes"))
    assert hint(answer(step(kind), photo)).startswith("Please type your answer")


# ------------------------------------------------------------------------------ commands


@pytest.mark.parametrize("kind", list(StepType))
def test_a_command_is_not_an_answer(kind: StepType) -> None:
    assert isinstance(answer(step(kind), Inbound.of_command("back")), Rejected)


@pytest.mark.parametrize(
    ("message", "command"),
    [
        (Inbound.of_command("back"), Command.BACK),
        (Inbound.of_command("SKIP"), Command.SKIP),
        (Inbound.of_command("/help"), Command.HELP),
        (Inbound.of_command("later"), Command.PAUSE),
        ("/back", Command.BACK),
        ("/back@profilebot", Command.BACK),
        ("/Skip please", Command.SKIP),
        ("/unsubscribe", Command.STOP),
        ("back", Command.BACK),
        ("Go back", Command.BACK),
        ("atrás", Command.BACK),
        ("atras", Command.BACK),
        ("retour", Command.BACK),
        ("zurück", Command.BACK),
        ("skip", Command.SKIP),
        ("saltar", Command.SKIP),
        ("passer", Command.SKIP),
        ("überspringen", Command.SKIP),
        ("pause", Command.PAUSE),
        ("later", Command.PAUSE),
        ("Not now.", Command.PAUSE),
        ("luego", Command.PAUSE),
        ("más tarde", Command.PAUSE),
        ("plus tard", Command.PAUSE),
        ("später", Command.PAUSE),
        ("restart", Command.RESTART),
        ("start over", Command.RESTART),
        ("help", Command.HELP),
        ("Help?", Command.HELP),
        ("ayuda", Command.HELP),
        ("aide", Command.HELP),
        ("hilfe", Command.HELP),
        ("stop", Command.STOP),
        ("STOP!", Command.STOP),
        ("unsubscribe", Command.STOP),
        ("parar", Command.STOP),
        ("arrête", Command.STOP),
        ("stopp", Command.STOP),
        ("done", Command.DONE),
        ("fertig", Command.DONE),
    ],
)
def test_parse_command(message: Inbound | str, command: Command) -> None:
    inbound = Inbound.of_text(message) if isinstance(message, str) else message
    assert parse_command(inbound) is command


@pytest.mark.parametrize(
    "message",
    [
        Inbound.of_text("/foo"),
        Inbound.of_text("/"),
        Inbound.of_text("/ back"),
        Inbound.of_text("go back to the start"),
        Inbound.of_text("I need help with maths"),
        Inbound.of_text("no"),
        Inbound.of_text(""),
        Inbound.of_command("frobnicate"),
        Inbound.of_command(""),
        Inbound.of_button("back"),
        Inbound.of_file(Attachment(kind="photo", caption="back")),
        Inbound(InboundKind.COMMAND, command=None),
    ],
)
def test_parse_command_ignores_answers_and_unknowns(message: Inbound) -> None:
    assert parse_command(message) is None


# ------------------------------------------------------------------------------ robustness


@pytest.mark.parametrize("kind", [StepType.TEXT, StepType.CHOICE, StepType.LIST, StepType.FILE])
def test_an_unknown_slash_command_is_not_an_answer(kind: StepType) -> None:
    assert hint(answer(step(kind), "/nonsense 2")).startswith(
        '"/nonsense" is not a command I know.'
    )


def test_message_step_accepts_nothing_in_particular() -> None:
    assert answer(step(StepType.MESSAGE), "hi") == Accepted(None, "")


def test_none_ish_fields_do_not_crash() -> None:
    broken = Inbound(InboundKind.TEXT, text=None)  # type: ignore[arg-type]
    for kind in StepType:
        assert isinstance(answer(step(kind), broken), Accepted | Rejected | ListProgress)
    assert parse_command(broken) is None
    weird_button = Inbound(InboundKind.BUTTON, value=None, values=None)
    assert isinstance(answer(CHOICE, weird_button), Rejected)


def test_normalize() -> None:
    assert normalize("  Árbol  GRANDE ") == "arbol grande"


ALL_STEPS = [
    step(StepType.TEXT),
    step(StepType.TEXT, min_length=2, max_length=5),
    step(StepType.NUMBER),
    step(StepType.NUMBER, integer=True, min=0, max=10),
    step(StepType.CHOICE, options=(OptionSpec("a", "Apple"), OptionSpec("b", "Banana"))),
    step(StepType.CHOICE, allow_other=True),
    step(StepType.MULTI_CHOICE, min=1, max=2),
    step(StepType.MULTI_CHOICE, allow_other=True, min=0),
    step(StepType.SCALE, labels=((1, "low"), (5, "high"))),
    step(StepType.YES_NO),
    step(StepType.DATE),
    step(StepType.LIST, min=2, max=3),
    step(StepType.FILE),
    step(StepType.MESSAGE),
]


@settings(max_examples=300)
@given(
    st.sampled_from(ALL_STEPS),
    st.one_of(
        st.text(),
        st.text(alphabet="0123456789 ,.-/andyes", max_size=30),
        st.text(min_size=2000, max_size=12_000),
    ),
    st.lists(st.text(max_size=20), max_size=4),
)
def test_parse_answer_never_raises_on_text(text_step: Step, text: str, items: list[str]) -> None:
    for inbound in (Inbound.of_text(text), Inbound.of_button(text)):
        result = answer(text_step, inbound, collected=tuple(items))
        assert isinstance(result, Accepted | Rejected | ListProgress)
        if isinstance(result, Rejected):
            assert result.hint
    parse_command(Inbound.of_text(text))


@given(st.sampled_from(ALL_STEPS), st.lists(st.text(max_size=10), max_size=5))
def test_parse_answer_never_raises_on_selections(any_step: Step, values: list[str]) -> None:
    options = tuple(Option(o.value, o.label) for o in any_step.options) or OPTIONS
    result = answer(any_step, Inbound.of_selection(tuple(values)), options=options)
    assert isinstance(result, Accepted | Rejected | ListProgress)


def test_text_that_is_not_valid_unicode_is_cleaned_where_a_message_is_built() -> None:
    from dialogues import REPLACEMENT_CHARACTER, Attachment, Inbound, clean_text

    assert clean_text("plain ascii") == "plain ascii"
    assert clean_text("café 😀") == "café 😀"
    assert clean_text("a\udc91b\x00") == f"a{REPLACEMENT_CHARACTER}b"
    assert Inbound.of_text("Sa\ud800m").text == "Sa\ufffdm"
    assert Inbound.of_selection(("x", "\udcff")).values == ("x", "\ufffd")
    assert Inbound.of_command("link", "c\x00de").text == "cde"
    photo = Inbound.of_file(Attachment("photo", name="\udc80.jpg", caption="hi\udc80"))
    assert photo.attachment is not None
    assert (photo.attachment.name, photo.attachment.caption, photo.text) == (
        "\ufffd.jpg",
        "hi\ufffd",
        "hi\ufffd",
    )
    assert Inbound.from_json(photo.to_json()) == photo


@pytest.mark.parametrize("typed", ["⓵", "²", "①"])
def test_a_digit_that_is_no_number_is_an_answer_not_a_crash(typed: str) -> None:
    """``"⓵".isdigit()`` is true but ``int("⓵")`` fails: such text is read, never a crash."""
    assert answer(CHOICE, typed) is not None
    assert answer(MULTI, typed) is not None


def test_digits_of_other_scripts_pick_by_number() -> None:
    assert accepted(answer(CHOICE, "٢")) == accepted(answer(CHOICE, "2"))
