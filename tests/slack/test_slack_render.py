"""Slack rendering: escaping, splitting, Block Kit widgets, action ids and what a click means.

Every block list produced here goes through the fake Web API's ``validate_blocks``, which
checks Block Kit limits the way Slack does, so a rendering bug fails here and not in a school.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.slack_render import (
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_CHECKBOX_OPTIONS,
    MAX_HOME_BLOCKS,
    MAX_MESSAGE_CHARS,
    MAX_SECTION_CHARS,
    NO_INDEX,
    YES_INDEX,
    SlackAction,
    SlackMessage,
    closed_message,
    decode_action,
    encode_action,
    escape_mrkdwn,
    home_view,
    inbound_for_action,
    render_notice,
    render_reply,
    selected_indexes,
    split_text,
)
from bot.notices import Line, Notice, Section, Span, Style
from dialogues import Command, Inbound, Option, Reply, ReplyKind, Scale
from tests.slack.fake_web_api import validate_blocks

REF = "123"
INJECTION = "Hi <!channel> <!here> <@U123> <https://evil.test|click> & co"
INJECTION_ESCAPED = (
    "Hi &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;https://evil.test|click&gt; &amp; co"
)


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def assert_valid(message: SlackMessage) -> None:
    """What Slack would accept: valid blocks, action ids unique in the message, text in limits."""
    assert validate_blocks(message.blocks, action_id_scope="message") == []
    assert 1 <= len(message.blocks) <= MAX_BLOCKS
    assert message.text.strip()
    assert len(message.text) <= MAX_MESSAGE_CHARS
    for element in elements(message.blocks):
        decoded = decode_action(element["action_id"])
        assert decoded is not None
        assert decoded.ref == REF


def elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every interactive element, in order."""
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, action id) of every button, in order."""
    return [(e["text"]["text"], e["action_id"]) for e in elements(blocks) if e["type"] == "button"]


def checkbox_groups(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in elements(blocks) if e["type"] == "checkboxes"]


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def all_strings(value: Any) -> list[str]:
    """Every string in a JSON value: where an unescaped ``<`` could hide."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


def options(n: int, label: str = "Option") -> tuple[Option, ...]:
    return tuple(Option(f"v{i}", f"{label} {i}") for i in range(n))


# -- escaping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://x|y>", "&lt;https://x|y&gt;"),
        ("&amp;", "&amp;amp;"),
        ("say \"hi\" & 'bye' *bold* _it_", "say \"hi\" &amp; 'bye' *bold* _it_"),
        ("hi 👋🏽 ünï", "hi 👋🏽 ünï"),
    ],
)
def test_escape_only_touches_slacks_control_characters(text: str, escaped: str) -> None:
    assert escape_mrkdwn(text) == escaped
    assert unescape(escaped) == text


@given(st.text())
def test_escaped_text_has_no_control_characters_and_round_trips(text: str) -> None:
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped
    assert unescape(escaped) == text


# -- splitting ------------------------------------------------------------------------------


def assert_faithful(text: str, parts: list[str], limit: int) -> None:
    """Parts are non-empty, fit once escaped, and appear in order with only whitespace between."""
    position = 0
    for part in parts:
        assert part.strip()
        assert part == part.strip()
        assert len(escape_mrkdwn(part)) <= limit
        found = text.find(part, position)
        assert found >= 0
        assert text[position:found].strip() == ""
        position = found + len(part)
    assert text[position:].strip() == ""


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("  \n ") == []
    assert split_text("") == []


def test_splits_at_paragraph_boundaries() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 60 + "end." for i in range(40)]
    text = "\n\n".join(paragraphs)
    parts = split_text(text)
    assert len(parts) >= 3
    assert_faithful(text, parts, MAX_MESSAGE_CHARS)
    assert "\n\n".join(parts) == text
    assert all(p.startswith("Paragraph ") and p.endswith("end.") for p in parts)


def test_prefers_lines_then_spaces() -> None:
    lines = "\n".join(f"line {i} " + "x" * 30 for i in range(400))
    assert "\n".join(split_text(lines)) == lines
    words = " ".join(["word"] * 3000)
    parts = split_text(words)
    assert " ".join(parts) == words
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in parts)


def test_hard_cut_for_one_long_word() -> None:
    text = "a" * 10_000
    parts = split_text(text)
    assert [len(p) for p in parts] == [4000, 4000, 2000]
    assert "".join(parts) == text


def test_the_escaped_length_is_what_counts() -> None:
    text = "<&>" * 2000  # 6000 characters, 26,000 once escaped
    parts = split_text(text)
    assert all(len(escape_mrkdwn(p)) <= MAX_MESSAGE_CHARS for p in parts)
    assert "".join(parts) == text
    assert len(parts) >= 7


def test_astral_characters_are_kept_whole() -> None:
    text = "😀" * 5000
    parts = split_text(text, MAX_SECTION_CHARS)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-16-le")) // 2 <= MAX_SECTION_CHARS for p in parts)


def test_limit_must_fit_an_escaped_character() -> None:
    with pytest.raises(ValueError):
        split_text("abc", limit=4)


@given(
    st.text(alphabet=st.sampled_from(list("ab&<>😀 \n\t.")), max_size=400),
    st.integers(min_value=5, max_value=40),
)
def test_split_is_faithful(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert_faithful(text, parts, limit)
    assert bool(parts) == bool(text.strip())


# -- rendering: text ------------------------------------------------------------------------


def test_plain_text_reply_is_one_section_without_buttons() -> None:
    [message] = render_reply(Reply("Hello *there* & welcome"), REF)
    assert_valid(message)
    assert message.text == "Hello *there* &amp; welcome"
    assert message.blocks == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Hello *there* &amp; welcome"}}
    ]


def test_blank_reply_renders_nothing() -> None:
    assert render_reply(Reply("  \n"), REF) == []


def test_blank_question_still_gets_its_buttons() -> None:
    [message] = render_reply(Reply("", ReplyKind.YES_NO, step_id="s"), REF)
    assert_valid(message)
    assert [label for label, _ in buttons(message.blocks)] == ["Yes", "No"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(INJECTION),
        Reply(INJECTION, ReplyKind.CHOICE, "s", options=(Option("a", INJECTION), Option("b", "B"))),
        Reply(INJECTION, ReplyKind.MULTI_CHOICE, "s", options=(Option("a", INJECTION),) * 3),
        Reply(INJECTION, ReplyKind.SCALE, "s", scale=Scale(1, 3, ((1, "<!here>"),))),
        Reply(INJECTION, ReplyKind.SCALE, "s", scale=Scale(0, 50, ((0, "<!channel>"),))),
    ],
    ids=["text", "choice", "multi", "scale", "typed-scale"],
)
def test_markup_in_text_and_labels_shows_literally(reply: Reply) -> None:
    [message] = render_reply(reply, REF)
    assert_valid(message)
    assert message.text == INJECTION_ESCAPED
    assert section_texts(message.blocks)[0] == INJECTION_ESCAPED
    for text in [message.text, *all_strings(message.blocks)]:
        assert "<" not in text and ">" not in text, text
    if reply.kind is ReplyKind.CHOICE:
        label = buttons(message.blocks)[0][0]
        assert label.startswith("Hi &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt;")
        assert len(label) <= MAX_BUTTON_TEXT


def test_long_reply_becomes_several_messages_with_buttons_on_the_last() -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum & dolor " * 12 for i in range(40)]
    text = "\n\n".join(paragraphs)[:10_000]
    assert len(text) == 10_000
    reply = Reply(text, ReplyKind.CHOICE, "s", options=options(3), optional=True)
    messages = render_reply(reply, REF)
    assert len(messages) >= 3
    for message in messages:
        assert_valid(message)
        sections = section_texts(message.blocks)
        assert all(len(s) <= MAX_SECTION_CHARS for s in sections)
        assert sum(len(s) for s in sections) <= MAX_MESSAGE_CHARS
        assert len(message.text) <= MAX_MESSAGE_CHARS
    assert all(elements(m.blocks) == [] for m in messages[:-1])
    assert [label for label, _ in buttons(messages[-1].blocks)] == [
        "Option 0",
        "Option 1",
        "Option 2",
        "Skip",
    ]
    shown = " ".join(unescape(s) for m in messages for s in section_texts(m.blocks))
    assert shown.split() == text.split()  # no word lost, none added
    fallback = " ".join(unescape(m.text) for m in messages)
    assert fallback.split() == text.split()


def test_heavily_escaped_long_text_still_fits() -> None:
    text = "<&>" * 3000
    messages = render_reply(Reply(text), REF)
    for message in messages:
        assert_valid(message)
    assert "".join(unescape(s) for m in messages for s in section_texts(m.blocks)) == text


# -- rendering: widgets ---------------------------------------------------------------------


WIDGETS = [
    Reply("Say something", step_id="s"),
    Reply("Say something", step_id="s", optional=True),
    Reply("Pick", ReplyKind.CHOICE, "s", options=options(4)),
    Reply("Pick", ReplyKind.CHOICE, "s", options=options(4), optional=True, allow_other=True),
    Reply("Pick", ReplyKind.CHOICE, "s", options=options(60), optional=True),
    Reply("Pick", ReplyKind.CHOICE, "s", options=options(25), optional=True),
    Reply("Sure?", ReplyKind.YES_NO, "s"),
    Reply("Sure?", ReplyKind.YES_NO, "s", optional=True),
    Reply("Rate", ReplyKind.SCALE, "s", scale=Scale(1, 5, ((1, "Not at all"), (5, "Very")))),
    Reply("Rate", ReplyKind.SCALE, "s", scale=Scale(0, 10), optional=True),
    Reply("Rate", ReplyKind.SCALE, "s", scale=Scale(0, 100, ((0, "none"),)), optional=True),
    Reply("Tick", ReplyKind.MULTI_CHOICE, "s", options=options(5), max_picks=3),
    Reply("Tick", ReplyKind.MULTI_CHOICE, "s", options=options(12), optional=True),
    Reply("Tick", ReplyKind.MULTI_CHOICE, "s", options=options(30), min_picks=2),
    Reply("List", ReplyKind.LIST, "s"),
    Reply("List", ReplyKind.LIST, "s", optional=True),
    Reply("File", ReplyKind.FILE, "s", optional=True),
]


@pytest.mark.parametrize("reply", WIDGETS)
def test_every_widget_renders_blocks_slack_accepts(reply: Reply) -> None:
    [message] = render_reply(reply, REF)
    assert_valid(message)
    labels = [label for label, _ in buttons(message.blocks)]
    assert ("Skip" in labels) == reply.optional
    if labels:
        assert labels[-1] == "Skip" or not reply.optional


def test_choice_buttons_carry_the_option_index() -> None:
    reply = Reply("Pick", ReplyKind.CHOICE, "s", options=options(3))
    [message] = render_reply(reply, REF)
    assert buttons(message.blocks) == [
        ("Option 0", "pb:pick:123:0"),
        ("Option 1", "pb:pick:123:1"),
        ("Option 2", "pb:pick:123:2"),
    ]
    assert [e["value"] for e in elements(message.blocks)] == ["0", "1", "2"]
    assert "type your own" not in json.dumps(message.blocks)


def test_many_choices_fill_several_actions_blocks() -> None:
    reply = Reply("Pick", ReplyKind.CHOICE, "s", options=options(60), optional=True)
    [message] = render_reply(reply, REF)
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [len(b["elements"]) for b in actions] == [25, 25, 11]  # Skip joins the last
    assert len(buttons(message.blocks)) == 61


def test_skip_gets_its_own_block_when_the_last_is_full() -> None:
    reply = Reply("Pick", ReplyKind.CHOICE, "s", options=options(25), optional=True)
    [message] = render_reply(reply, REF)
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [len(b["elements"]) for b in actions] == [25, 1]
    assert actions[-1]["elements"][0]["action_id"] == "pb:skip:123"


def test_absurdly_many_options_are_cut_to_fit_one_message() -> None:
    reply = Reply("x" * 3900, ReplyKind.CHOICE, "s", options=options(2000), optional=True)
    [message] = render_reply(reply, REF)
    assert_valid(message)
    assert len(message.blocks) == MAX_BLOCKS
    assert buttons(message.blocks)[-1] == ("Skip", "pb:skip:123")


def test_long_labels_are_cut_to_fit_a_button() -> None:
    long_label = "word " * 40
    heavy = "&" * 80  # 400 characters once escaped
    reply = Reply(
        "Pick",
        ReplyKind.CHOICE,
        "s",
        options=(Option("a", long_label), Option("b", heavy), Option("c", "  "), Option("", "")),
    )
    [message] = render_reply(reply, REF)
    assert_valid(message)
    labels = [label for label, _ in buttons(message.blocks)]
    assert all(1 <= len(label) <= MAX_BUTTON_TEXT for label in labels)
    assert labels[0].endswith("…") and labels[0].startswith("word word")
    assert labels[1] == "&amp;" * 14 + "…"
    assert labels[2:] == ["c", "4"]  # blank labels fall back to the value, then the number


def test_yes_no_buttons() -> None:
    [message] = render_reply(Reply("Sure?", ReplyKind.YES_NO, "s"), REF)
    assert buttons(message.blocks) == [
        ("Yes", f"pb:pick:123:{YES_INDEX}"),
        ("No", f"pb:pick:123:{NO_INDEX}"),
    ]


def test_scale_buttons_label_their_ends() -> None:
    scale = Scale(1, 5, ((1, "Not at all"), (5, "Very much so, absolutely")))
    [message] = render_reply(Reply("Rate", ReplyKind.SCALE, "s", scale=scale), REF)
    assert [label for label, _ in buttons(message.blocks)] == [
        "1 · Not at all",
        "2",
        "3",
        "4",
        "5",  # too long for a button: it is in the hint instead
    ]
    assert message.blocks[1]["type"] == "context"
    assert "5 = Very much so, absolutely" in message.blocks[1]["elements"][0]["text"]


def test_wide_scale_is_typed() -> None:
    reply = Reply("Rate", ReplyKind.SCALE, "s", scale=Scale(0, 100))
    [message] = render_reply(reply, REF)
    assert_valid(message)
    assert buttons(message.blocks) == []
    assert "Type a number from 0 to 100" in json.dumps(message.blocks)


@pytest.mark.parametrize(("count", "groups"), [(5, [5]), (12, [10, 2]), (30, [10, 10, 10])])
def test_multi_choice_splits_checkboxes_into_groups_of_ten(count: int, groups: list[int]) -> None:
    reply = Reply("Tick", ReplyKind.MULTI_CHOICE, "s", options=options(count), optional=True)
    [message] = render_reply(reply, REF)
    assert_valid(message)
    found = checkbox_groups(message.blocks)
    assert [len(g["options"]) for g in found] == groups
    assert all(len(g["options"]) <= MAX_CHECKBOX_OPTIONS for g in found)
    assert [g["action_id"] for g in found] == [f"pb:picks:123:{i}" for i in range(len(groups))]
    block_ids = [b["block_id"] for b in message.blocks if b["type"] == "actions"]
    assert block_ids[: len(groups)] == [f"pb-picks-{i}" for i in range(len(groups))]
    values = [o["value"] for g in found for o in g["options"]]
    assert values == [str(i) for i in range(count)]  # the global index, not the value
    assert all("initial_options" not in g for g in found)
    assert buttons(message.blocks) == [("Submit", "pb:done:123"), ("Skip", "pb:skip:123")]
    submit = next(e for e in elements(message.blocks) if e.get("action_id") == "pb:done:123")
    assert submit["style"] == "primary"


@pytest.mark.parametrize(
    ("low", "high", "hint"),
    [
        (None, 3, "Tick up to 3, then Submit"),
        (2, None, "Tick at least 2, then Submit"),
        (2, 4, "Tick 2 to 4, then Submit"),
        (2, 2, "Tick exactly 2, then Submit"),
        (None, None, "Tick all that fit, then Submit"),
        (1, None, "Tick all that fit, then Submit"),
    ],
)
def test_multi_choice_hint_says_how_many(low: int | None, high: int | None, hint: str) -> None:
    reply = Reply(
        "Tick", ReplyKind.MULTI_CHOICE, "s", options=options(5), min_picks=low, max_picks=high
    )
    [message] = render_reply(reply, REF)
    contexts = [b for b in message.blocks if b["type"] == "context"]
    assert [c["elements"][0]["text"] for c in contexts] == [hint]


def test_list_gets_done_and_skip_beside_it() -> None:
    [message] = render_reply(Reply("List", ReplyKind.LIST, "s", optional=True), REF)
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert len(actions) == 1
    assert buttons(message.blocks) == [("Done", "pb:done:123"), ("Skip", "pb:skip:123")]


@pytest.mark.parametrize("kind", [ReplyKind.TEXT, ReplyKind.FILE])
def test_typed_answers_get_no_buttons(kind: ReplyKind) -> None:
    [message] = render_reply(Reply("Tell me", kind, "s"), REF)
    assert elements(message.blocks) == []


# -- action ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "ref", "index", "encoded"),
    [
        ("pick", "123", 2, "pb:pick:123:2"),
        ("picks", "123", 0, "pb:picks:123:0"),
        ("done", "123", None, "pb:done:123"),
        ("skip", "9223372036854775807", None, "pb:skip:9223372036854775807"),
        ("pick", "0", 999_999, "pb:pick:0:999999"),
    ],
)
def test_action_round_trip(action: str, ref: str, index: int | None, encoded: str) -> None:
    assert encode_action(action, ref, index) == encoded
    assert decode_action(encoded) == SlackAction(action, ref, index)


@pytest.mark.parametrize(
    ("action", "ref", "index"),
    [
        ("pick", REF, None),
        ("done", REF, 1),
        ("vote", REF, 1),
        ("pick", "", 1),
        ("pick", "12a", 1),
        ("pick", "012", 1),
        ("pick", REF, -1),
        ("pick", REF, 1_000_000),
        ("skip", "1" * 30, None),
    ],
)
def test_encode_rejects_bad_input(action: str, ref: str, index: int | None) -> None:
    with pytest.raises(ValueError):
        encode_action(action, ref, index)


@pytest.mark.parametrize(
    "action_id",
    [
        "",
        "pb",
        "pb:pick",
        "pb:pick:123",
        "pb:pick:123:",
        "pb:pick:123:x",
        "pb:pick:123:-1",
        "pb:pick:123:01",
        "pb:pick:123:²",
        "pb:pick:123:1:2",
        "pb:done:123:1",
        "pb:done:",
        "pb:done:abc",
        "pb:done:-5",
        "pb:done:١٢٣",  # Arabic-Indic digits are digits to str.isdigit, not to us
        "pb:vote:123:1",
        "xx:pick:123:1",
        "PB:pick:123:1",
        "pb:pick:" + "9" * 300 + ":1",
        "pb:pick:123:" + "9" * 50,
        "actionId-0",
    ],
)
def test_garbage_decodes_to_none(action_id: str) -> None:
    assert decode_action(action_id) is None


@given(st.text())
def test_decode_never_raises(action_id: str) -> None:
    decoded = decode_action(action_id)
    if decoded is not None:
        assert encode_action(decoded.action, decoded.ref, decoded.index) == action_id


@given(
    st.sampled_from(["pick", "picks", "done", "skip"]),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=0, max_value=999_999),
)
def test_round_trip_property(action: str, ref: int, index: int) -> None:
    idx = index if action in ("pick", "picks") else None
    encoded = encode_action(action, str(ref), idx)
    assert len(encoded) <= 255
    assert decode_action(encoded) == SlackAction(action, str(ref), idx)


# -- what a click means ---------------------------------------------------------------------

CHOICE = Reply("Pick", ReplyKind.CHOICE, "s", options=options(3))
MULTI = Reply("Tick", ReplyKind.MULTI_CHOICE, "s", options=options(12))
YES_NO = Reply("Sure?", ReplyKind.YES_NO, "s")
SCALE = Reply("Rate", ReplyKind.SCALE, "s", scale=Scale(1, 5))
LIST = Reply("List", ReplyKind.LIST, "s", optional=True)


@pytest.mark.parametrize(
    ("action", "reply", "selected", "expected"),
    [
        (SlackAction("pick", REF, 2), CHOICE, [], Inbound.of_button("v2")),
        (SlackAction("pick", REF, 3), CHOICE, [], None),
        (SlackAction("pick", REF, -1), CHOICE, [], None),
        (SlackAction("pick", REF, None), CHOICE, [], None),
        (SlackAction("pick", REF, YES_INDEX), YES_NO, [], Inbound.of_button("yes")),
        (SlackAction("pick", REF, NO_INDEX), YES_NO, [], Inbound.of_button("no")),
        (SlackAction("pick", REF, 2), YES_NO, [], None),
        (SlackAction("pick", REF, 0), SCALE, [], Inbound.of_button("1")),
        (SlackAction("pick", REF, 4), SCALE, [], Inbound.of_button("5")),
        (SlackAction("pick", REF, 5), SCALE, [], None),
        (SlackAction("pick", REF, 0), MULTI, [], None),
        (SlackAction("pick", REF, 0), LIST, [], None),
        (SlackAction("picks", REF, 0), MULTI, [1, 2], None),
        (SlackAction("done", REF), MULTI, [11, 0, 0, 12, 99], Inbound.of_selection(("v0", "v11"))),
        (SlackAction("done", REF), MULTI, [], Inbound.of_selection(())),
        (SlackAction("done", REF), LIST, [1], Inbound.of_command(Command.DONE.value)),
        (SlackAction("skip", REF), MULTI, [1], Inbound.of_command(Command.SKIP.value)),
        (SlackAction("skip", REF), CHOICE, [], Inbound.of_command(Command.SKIP.value)),
        (SlackAction("vote", REF, 0), CHOICE, [], None),
    ],
)
def test_inbound_for_action(
    action: SlackAction, reply: Reply, selected: list[int], expected: Inbound | None
) -> None:
    assert inbound_for_action(action, reply, selected) == expected


def test_every_rendered_button_means_something() -> None:
    for reply in WIDGETS:
        [message] = render_reply(reply, REF)
        for element in elements(message.blocks):
            decoded = decode_action(element["action_id"])
            assert decoded is not None
            meaning = inbound_for_action(decoded, reply, [])
            assert (meaning is None) == (decoded.action == "picks"), (reply, element)


def state(*entries: tuple[str, str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for block_id, action_id, value in entries:
        values.setdefault(block_id, {})[action_id] = value
    return values


def ticked(*indexes: Any) -> dict[str, Any]:
    return {"type": "checkboxes", "selected_options": [{"value": i} for i in indexes]}


def test_selected_indexes_reads_every_group() -> None:
    values = state(
        ("pb-picks-0", "pb:picks:123:0", ticked("3", "0")),
        ("pb-picks-1", "pb:picks:123:1", ticked("11", "3")),
        ("pb-picks-2", "pb:picks:123:2", {"type": "checkboxes", "selected_options": []}),
    )
    assert selected_indexes(values) == [0, 3, 11]


@pytest.mark.parametrize(
    "values",
    [
        None,
        {},
        [],
        "garbage",
        {"b": "x"},
        {"b": {"pb:picks:123:0": "x"}},
        {"b": {"pb:picks:123:0": {"type": "checkboxes"}}},
        {"b": {"pb:picks:123:0": {"type": "checkboxes", "selected_options": "0"}}},
        {"b": {"pb:picks:123:0": ticked("-1", "x", "01", "", "1e3", "²", 5, None)}},
        {"b": {"pb:picks:123:0": {"type": "checkboxes", "selected_options": [None, 3, "1"]}}},
        {"b": {"pb:pick:123:0": ticked("1")}},
        {"b": {"pb:picks:123:0": {"type": "static_select", "selected_options": [{"value": "1"}]}}},
        {"b": {"other-app": ticked("1")}},
        {"b": {7: ticked("1")}},
        {"b": {"pb:picks:123:0": ticked("9" * 40)}},
    ],
)
def test_selected_indexes_ignores_garbage(values: Any) -> None:
    assert selected_indexes(values) == []


def test_rendered_checkboxes_read_back() -> None:
    [message] = render_reply(MULTI, REF)
    values = {}
    for block in message.blocks:
        if block["type"] == "actions" and block["elements"][0]["type"] == "checkboxes":
            group = block["elements"][0]
            picked = group["options"][-1:]  # Slack echoes the option objects back
            values[block["block_id"]] = {
                group["action_id"]: {"type": "checkboxes", "selected_options": picked}
            }
    chosen = selected_indexes(values)
    assert chosen == [9, 11]
    assert inbound_for_action(SlackAction("done", REF), MULTI, chosen) == Inbound.of_selection(
        ("v9", "v11")
    )


# -- closed questions -----------------------------------------------------------------------


def test_closed_message_shows_the_answer_without_buttons() -> None:
    message = closed_message("How are you? <!channel>", "Fine & <@U1>")
    assert validate_blocks(message.blocks, action_id_scope="message") == []
    assert elements(message.blocks) == []
    assert section_texts(message.blocks) == [
        "How are you? &lt;!channel&gt;",
        "→ *Fine &amp; &lt;@U1&gt;*",
    ]
    assert message.text == "How are you? &lt;!channel&gt;\n→ Fine &amp; &lt;@U1&gt;"


def test_closed_message_without_an_answer_keeps_only_the_question() -> None:
    message = closed_message("How are you?", None)
    assert validate_blocks(message.blocks, action_id_scope="message") == []
    assert message.blocks == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "How are you?"}}
    ]
    assert message.text == "How are you?"


def test_closed_message_cuts_long_parts() -> None:
    message = closed_message("<q> " * 2000, "&" * 2000)
    assert validate_blocks(message.blocks, action_id_scope="message") == []
    question, answer = section_texts(message.blocks)
    assert len(question) <= MAX_SECTION_CHARS and question.endswith("…")
    assert unescape(answer) == "→ *" + "&" * 511 + "…*"
    assert len(message.text) <= MAX_MESSAGE_CHARS
    assert "<" not in message.text


@pytest.mark.parametrize("answer", ["", "   ", None])
def test_closed_message_with_blank_parts_is_still_valid(answer: str | None) -> None:
    message = closed_message("  ", answer)
    assert validate_blocks(message.blocks, action_id_scope="message") == []
    assert message.blocks and message.text.strip()


# -- App Home -------------------------------------------------------------------------------


def assert_valid_home(view: dict[str, Any]) -> None:
    assert view["type"] == "home"
    errors = validate_blocks(view["blocks"], max_blocks=MAX_HOME_BLOCKS, pointer="/view/blocks")
    assert errors == []


def test_home_view_has_a_header_and_dividers_between_sections() -> None:
    view = home_view(["About you: <!here>", "", "Your goals & plans"], title="Alice's <profile>")
    assert_valid_home(view)
    assert [b["type"] for b in view["blocks"]] == ["header", "section", "divider", "section"]
    assert view["blocks"][0]["text"]["text"] == "Alice's &lt;profile&gt;"
    assert section_texts(view["blocks"]) == ["About you: &lt;!here&gt;", "Your goals &amp; plans"]


def test_home_view_splits_long_sections() -> None:
    long = "\n\n".join(f"Goal {i}: " + "step & " * 100 for i in range(20))
    view = home_view([long], title="t" * 300)
    assert_valid_home(view)
    texts = section_texts(view["blocks"])
    assert len(texts) > 1 and all(len(t) <= MAX_SECTION_CHARS for t in texts)
    assert " ".join(unescape(t) for t in texts).split() == long.split()
    assert len(view["blocks"][0]["text"]["text"]) <= 150


def test_home_view_is_cut_at_the_block_limit() -> None:
    view = home_view([f"Section {i}" for i in range(80)])
    assert_valid_home(view)
    blocks = view["blocks"]
    assert MAX_HOME_BLOCKS - 2 <= len(blocks) <= MAX_HOME_BLOCKS  # a trailing divider is dropped
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "…more in the chat"}],
    }
    assert blocks[-2]["type"] == "section"


def test_home_view_just_under_the_limit_is_not_cut() -> None:
    view = home_view([f"Section {i}" for i in range(50)])  # 1 + 50 + 49 = 100 blocks
    assert_valid_home(view)
    assert len(view["blocks"]) == MAX_HOME_BLOCKS
    assert view["blocks"][-1]["type"] == "section"


def test_empty_home_view_is_valid() -> None:
    view = home_view([], title="  ")
    assert_valid_home(view)
    assert view["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "profilebot", "emoji": True}}
    ]


def test_a_styled_spans_marks_hug_its_text_so_slack_shows_it_styled() -> None:
    line = Line.of(Span("Ana Diaz: ", Style.BOLD), "Robots", Span(" & me ", Style.ITALIC), "!")
    [message] = render_notice(Notice("", (Section(None, (line,)),)))
    assert message.blocks[0]["text"]["text"] == "*Ana Diaz:* Robots _&amp; me_ !"
