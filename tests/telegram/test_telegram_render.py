"""Telegram rendering: escaping, splitting, callback data, keyboards and the ✓ state."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.adapters.telegram import keyboard_for, selected_from_markup
from bot.adapters.telegram_render import (
    MAX_CALLBACK_BYTES,
    MAX_MESSAGE_CHARS,
    CallbackAction,
    answered_html,
    decode_callback,
    encode_callback,
    escape,
    keyboard_json,
    keyboard_rows,
    message_html,
    split_text,
    toggled,
)
from dialogues import Option, Reply, ReplyKind, Scale
from tests.telegram.fake_bot_api import EntityParseError, parse_html

REF = "k3x9z"


def plain(html_text: str) -> str:
    """The text Telegram would show: raises EntityParseError like a refused message."""
    text, _entities = parse_html(html_text)
    return text


def buttons(markup: InlineKeyboardMarkup | None) -> list[list[tuple[str, str]]]:
    assert markup is not None
    return [[(b.text, str(b.callback_data)) for b in row] for row in markup.inline_keyboard]


def assert_callbacks_fit(markup: InlineKeyboardMarkup | None) -> None:
    if markup is None:
        return
    for row in markup.inline_keyboard:
        for button in row:
            assert isinstance(button.callback_data, str)
            assert 1 <= len(button.callback_data.encode()) <= MAX_CALLBACK_BYTES
            assert decode_callback(button.callback_data) is not None
            assert button.text.strip()


# -- escaping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
        ("&amp;", "&amp;amp;"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("hi 👋🏽 ünï", "hi 👋🏽 ünï"),
        ("say \"hi\" & 'bye'", "say &quot;hi&quot; &amp; &#x27;bye&#x27;"),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped
    assert plain(escape(text)) == text


def test_raw_text_is_refused_by_the_parser() -> None:
    with pytest.raises(EntityParseError):
        parse_html("<script>&")


@given(st.text())
def test_escaped_text_always_parses_back(text: str) -> None:
    assert plain(escape(text)) == text


# -- splitting ------------------------------------------------------------------------------


def assert_faithful(text: str, chunks: list[str], limit: int) -> None:
    """Chunks are non-empty, within the limit, and appear in order with only whitespace between."""
    position = 0
    for chunk in chunks:
        assert chunk.strip()
        assert chunk == chunk.strip()
        assert len(chunk.encode("utf-16-le")) // 2 <= limit
        found = text.find(chunk, position)
        assert found >= 0
        assert text[position:found].strip() == ""
        position = found + len(chunk)
    assert text[position:].strip() == ""


def test_short_text_is_one_chunk() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("  \n ") == []
    assert split_text("") == []


def test_splits_at_paragraph_boundaries() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 60 + "end." for i in range(40)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 10_000
    chunks = split_text(text)
    assert len(chunks) >= 3
    assert_faithful(text, chunks, MAX_MESSAGE_CHARS)
    assert "\n\n".join(chunks) == text
    for chunk in chunks:
        assert chunk.startswith("Paragraph ") and chunk.endswith("end.")


def test_prefers_lines_then_spaces() -> None:
    lines = "\n".join(f"line {i} " + "x" * 30 for i in range(400))
    chunks = split_text(lines)
    assert "\n".join(chunks) == lines
    words = " ".join(["word"] * 3000)
    chunks = split_text(words)
    assert " ".join(chunks) == words
    assert all(len(c) <= MAX_MESSAGE_CHARS for c in chunks)


def test_hard_cut_for_one_long_word() -> None:
    text = "a" * 10_000
    chunks = split_text(text)
    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert "".join(chunks) == text


def test_astral_characters_count_twice_and_are_never_cut_in_half() -> None:
    text = "😀" * 3000
    chunks = split_text(text)
    assert "".join(chunks) == text
    assert all(len(c.encode("utf-16-le")) // 2 <= MAX_MESSAGE_CHARS for c in chunks)


def test_escaping_does_not_count_against_the_limit() -> None:
    text = "<&>" * 2000
    chunks = split_text(text)
    assert all(len(c) <= MAX_MESSAGE_CHARS for c in chunks)
    assert all(plain(escape(c)) == c for c in chunks)
    assert "".join(chunks) == text


def test_limit_must_allow_a_character() -> None:
    with pytest.raises(ValueError):
        split_text("abc", limit=1)


@given(
    st.text(alphabet=st.sampled_from(list("ab😀 \n\t.")), max_size=400),
    st.integers(min_value=2, max_value=40),
)
def test_split_is_faithful(text: str, limit: int) -> None:
    assert_faithful(text, split_text(text, limit), limit)


# -- callback data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "ref", "index"),
    [
        ("pick", REF, 0),
        ("pick", "zz", 10),
        ("toggle", "ref:with:colons", 3),
        ("done", "é漢字🙂", None),
        ("skip", REF, None),
    ],
)
def test_callback_round_trip(action: str, ref: str, index: int | None) -> None:
    data = encode_callback(action, ref, index)
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert decode_callback(data) == CallbackAction(action, ref, index)


def test_callback_limit() -> None:
    longest = "r" * (MAX_CALLBACK_BYTES - len("t:999999:"))
    assert decode_callback(encode_callback("toggle", longest, 999_999)) is not None
    with pytest.raises(ValueError):
        encode_callback("toggle", longest + "r", 999_999)
    with pytest.raises(ValueError):
        encode_callback("done", "🙂" * 16)  # 64 bytes of ref plus the prefix


@pytest.mark.parametrize(
    ("action", "ref", "index"),
    [("pick", REF, None), ("done", REF, 1), ("vote", REF, 1), ("pick", "", 1), ("pick", REF, -1)],
)
def test_encode_rejects_bad_input(action: str, ref: str, index: int | None) -> None:
    with pytest.raises(ValueError):
        encode_callback(action, ref, index)


@pytest.mark.parametrize(
    "data",
    [
        "",
        "p",
        "p:1",
        "p::x",
        "x:1:r",
        "p:1:",
        "p:-1:r",
        "p:01:r",
        "p:²:r",
        "d:1:r",
        "p:1:" + "r" * 70,
    ],
)
def test_garbage_decodes_to_none(data: str) -> None:
    assert decode_callback(data) is None


@given(st.text())
def test_decode_never_raises(data: str) -> None:
    decoded = decode_callback(data)
    if decoded is not None:
        assert encode_callback(decoded.action, decoded.ref, decoded.index) == data


@given(
    st.sampled_from(["pick", "toggle", "done", "skip"]),
    st.text(min_size=1, max_size=20),
    st.integers(min_value=0, max_value=999_999),
)
def test_round_trip_property(action: str, ref: str, index: int) -> None:
    idx = index if action in ("pick", "toggle") else None
    try:
        data = encode_callback(action, ref, idx)
    except ValueError:
        return  # too long: refused before Telegram would refuse it
    assert decode_callback(data) == CallbackAction(action, ref, idx)


# -- keyboards ------------------------------------------------------------------------------


def question(kind: ReplyKind, **kwargs: object) -> Reply:
    return Reply("Pick?", kind=kind, step_id="s1", **kwargs)  # type: ignore[arg-type]


def test_choice_short_labels_two_per_row() -> None:
    options = tuple(Option(f"v{i}", f"Opt {i}") for i in range(3))
    markup = keyboard_for(question(ReplyKind.CHOICE, options=options), REF)
    assert buttons(markup) == [
        [("Opt 0", f"p:0:{REF}"), ("Opt 1", f"p:1:{REF}")],
        [("Opt 2", f"p:2:{REF}")],
    ]
    assert_callbacks_fit(markup)


def test_choice_long_labels_one_per_row_and_trimmed() -> None:
    options = (Option("a", "A fairly long label that does not fit"), Option("b", "x" * 200))
    markup = keyboard_for(question(ReplyKind.CHOICE, options=options), REF)
    rows = buttons(markup)
    assert [len(row) for row in rows] == [1, 1]
    assert rows[1][0][0].endswith("…") and len(rows[1][0][0]) == 60
    assert_callbacks_fit(markup)


def test_choice_blank_label_falls_back_to_value() -> None:
    markup = keyboard_for(question(ReplyKind.CHOICE, options=(Option("val", "  "),)), REF)
    assert buttons(markup) == [[("val", f"p:0:{REF}")]]


def test_scale_with_short_end_labels() -> None:
    scale = Scale(1, 5, ((1, "silent"), (5, "loud")))
    markup = keyboard_for(question(ReplyKind.SCALE, scale=scale), REF)
    rows = buttons(markup)
    assert len(rows) == 1
    assert [text for text, _ in rows[0]] == ["1 · silent", "2", "3", "4", "5 · loud"]
    assert [decode_callback(d) for _, d in rows[0]] == [
        CallbackAction("pick", REF, i) for i in range(5)
    ]
    assert_callbacks_fit(markup)


def test_scale_long_labels_and_limits() -> None:
    scale = Scale(0, 10, ((0, "not at all like me"), (10, "exactly me")))
    rows = buttons(keyboard_for(question(ReplyKind.SCALE, scale=scale), REF))
    assert [text for text, _ in rows[0]] == [*(str(n) for n in range(10)), "10 · exactly me"]
    assert keyboard_for(question(ReplyKind.SCALE, scale=Scale(1, 12)), REF) is None
    assert keyboard_for(question(ReplyKind.SCALE), REF) is None


def test_yes_no() -> None:
    markup = keyboard_for(question(ReplyKind.YES_NO), REF)
    assert buttons(markup) == [[("Yes", f"p:0:{REF}"), ("No", f"p:1:{REF}")]]


def test_multi_choice_with_selection_and_skip() -> None:
    options = (Option("a", "Art"), Option("b", "Biology"), Option("c", "✓ Chemistry"))
    reply = question(ReplyKind.MULTI_CHOICE, options=options, optional=True)
    markup = keyboard_for(reply, REF, selected=frozenset({1}))
    assert buttons(markup) == [
        [("Art", f"t:0:{REF}"), ("✓ Biology", f"t:1:{REF}")],
        [("Chemistry", f"t:2:{REF}")],
        [("Done ✓", f"d::{REF}"), ("Skip", f"s::{REF}")],
    ]
    assert_callbacks_fit(markup)
    assert selected_from_markup(markup) == frozenset({1})


def test_list_text_file() -> None:
    assert buttons(keyboard_for(question(ReplyKind.LIST), REF)) == [[("Done", f"d::{REF}")]]
    assert keyboard_for(question(ReplyKind.TEXT), REF) is None
    assert keyboard_for(question(ReplyKind.FILE), REF) is None
    assert keyboard_for(Reply("Hello!"), REF) is None
    for kind in (ReplyKind.TEXT, ReplyKind.FILE):
        skip = keyboard_for(question(kind, optional=True), REF)
        assert buttons(skip) == [[("Skip", f"s::{REF}")]]


@pytest.mark.parametrize("kind", list(ReplyKind))
def test_every_kind_fits_the_limit_with_a_long_unicode_ref(kind: ReplyKind) -> None:
    options = tuple(Option(f"v{i}", f"Option {i} 🙂") for i in range(12))
    reply = question(kind, options=options, scale=Scale(-5, 5), optional=True)
    ref = "é" * 26  # 52 bytes: the most a ref may take next to "t:11:"
    markup = keyboard_for(reply, ref, selected=frozenset({0, 11}))
    assert markup is not None
    assert_callbacks_fit(markup)
    InlineKeyboardMarkup.de_json(markup.to_dict(), None)  # serialises cleanly


@pytest.mark.parametrize("kind", list(ReplyKind))
def test_the_plain_keyboard_is_the_one_ptb_would_send(kind: ReplyKind) -> None:
    options = tuple(Option(f"v{i}", f"Option {i}") for i in range(3))
    reply = question(kind, options=options, scale=Scale(1, 5), optional=kind is ReplyKind.LIST)
    rows = keyboard_rows(reply, REF, selected=frozenset({1}))
    markup = keyboard_for(reply, REF, selected=frozenset({1}))
    sent = keyboard_json(reply, REF, selected=frozenset({1}))
    if kind in (ReplyKind.TEXT, ReplyKind.FILE):
        assert rows == [] and markup is None and sent is None
        return
    assert markup is not None and sent is not None
    assert buttons(markup) == rows
    assert json.loads(sent) == markup.to_dict()


# -- toggle state ---------------------------------------------------------------------------


def test_toggle_and_read_back() -> None:
    options = tuple(Option(str(i), f"Item {i}") for i in range(4))
    reply = question(ReplyKind.MULTI_CHOICE, options=options)
    state: frozenset[int] = frozenset()
    markup = keyboard_for(reply, REF, selected=state)
    for tap in (2, 0, 2, 3):
        press = decode_callback(str(buttons(markup)[tap // 2][tap % 2][1]))
        assert press is not None and press.action == "toggle" and press.index == tap
        state = toggled(selected_from_markup(markup), press.index)
        markup = keyboard_for(reply, REF, selected=state)
    assert selected_from_markup(markup) == frozenset({0, 3})
    assert toggled(frozenset({1}), 1) == frozenset()


def test_read_back_ignores_foreign_buttons() -> None:
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("✓ odd", callback_data="garbage")],
            [InlineKeyboardButton("✓ link", url="https://example.com")],
            [InlineKeyboardButton("✓ pick", callback_data=f"p:4:{REF}")],
            [InlineKeyboardButton("✓ yes", callback_data=f"t:7:{REF}")],
        ]
    )
    assert selected_from_markup(markup) == frozenset({7})
    assert selected_from_markup(None) == frozenset()


# -- message text ---------------------------------------------------------------------------


def test_message_html_is_safe() -> None:
    reply = Reply("<script>alert(1)</script> & <b>", kind=ReplyKind.TEXT, step_id="s")
    rendered = message_html(reply)
    assert "<script>" not in rendered
    assert plain(rendered) == reply.text


@pytest.mark.parametrize(
    ("reply", "hint"),
    [
        (Reply("Q <&>"), None),
        (question(ReplyKind.YES_NO), None),
        (question(ReplyKind.CHOICE, options=(Option("a", "A"),)), None),
        (
            question(ReplyKind.CHOICE, options=(Option("a", "A"),), allow_other=True),
            "Tap one — or type your own",
        ),
        (
            question(ReplyKind.MULTI_CHOICE, allow_other=True),
            "Tap all that fit, then Done — or type your own",
        ),
        (question(ReplyKind.MULTI_CHOICE), "Tap all that fit, then Done"),
        (question(ReplyKind.LIST), "Send one per message, then tap Done"),
        (question(ReplyKind.FILE), "Send a photo, a document or a link"),
        (
            question(ReplyKind.SCALE, scale=Scale(1, 5, ((1, "<quiet>"), (5, "loud & proud")))),
            "1 = <quiet> · 5 = loud & proud",
        ),
        (question(ReplyKind.SCALE, scale=Scale(1, 5)), None),
        (question(ReplyKind.SCALE, scale=Scale(0, 100)), "Type a number from 0 to 100"),
    ],
)
def test_message_html_parses_to_text_and_hint(reply: Reply, hint: str | None) -> None:
    text, entities = parse_html(message_html(reply))
    if hint is None:
        assert text == reply.text
        assert entities == []
    else:
        assert text == f"{reply.text}\n{hint}"
        assert [e["type"] for e in entities] == ["italic"]


@given(st.text(min_size=1), st.text(min_size=1))
def test_answered_html_parses(question_text: str, display: str) -> None:
    text, entities = parse_html(answered_html(question_text, display))
    assert len(text) <= MAX_MESSAGE_CHARS
    assert [e["type"] for e in entities] == ["bold"]


def test_answered_html() -> None:
    rendered = answered_html("Which <one>?", "Art & <Design>")
    assert rendered == "Which &lt;one&gt;?\n→ <b>Art &amp; &lt;Design&gt;</b>"
    text, entities = parse_html(rendered)
    assert text == "Which <one>?\n→ Art & <Design>"
    assert entities[0]["type"] == "bold"
    long_text, _ = parse_html(answered_html("q" * 5000, "yes"))
    assert len(long_text) <= MAX_MESSAGE_CHARS
    assert long_text.endswith("…\n→ yes")
