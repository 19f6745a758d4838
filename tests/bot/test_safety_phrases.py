"""Which typed words raise a safety alert: whole words and phrases, case, accents, punctuation
and apostrophes aside; never a word inside another ("skill" is not "kill"). The built-in list,
a school's own file, and a bad file refused in one line when the settings are read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import load_settings
from bot.errors import ConfigError
from bot.safety_phrases import SafetyPhrases, load_phrases, words

BUILT_IN = load_phrases()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("I want to kill myself", "self_harm"),
        ("sometimes i want to KILL MYSELF.", "self_harm"),
        ("kill... myself!!!", "self_harm"),
        ("I don't want to live anymore", "self_harm"),
        ("I don’t want to live anymore", "self_harm"),  # a typographic apostrophe
        ("i dont want to live", "self_harm"),
        ("I thought about self-harm", "self_harm"),
        ("I thought about self harm", "self_harm"),
        ("Kİll myself", "self_harm"),  # Turkish dotted capital I folds to i
        ("ＫＩＬＬ　ＭＹＳＥＬＦ", "self_harm"),  # full-width letters and space
        ("SUİCİDE", "self_harm"),
        ("My stepdad hits me", "abuse"),
        ("I'm scared to go home", "abuse"),
        ("I get bullied every day", "bullying"),
        ("everyone hates me\nand I'm tired", "bullying"),
        ("I've been self-harming again", "self_harm"),
        ("I do not want to live anymore", "self_harm"),
        ("I'm going to hang myself", "self_harm"),
        ("my stepdad hit me last night", "abuse"),
        ("my dad beat me", "abuse"),
        ("he raped me", "abuse"),
        ("I was sexually assaulted", "abuse"),
        ("I got cyberbullied", "bullying"),
    ],
)
def test_the_built_in_list_catches_each_phrase_however_it_is_typed(
    text: str, category: str
) -> None:
    assert BUILT_IN.categories(text) == [category]


@pytest.mark.parametrize(
    "text",
    [
        "I have the skill to fix bikes",
        "skill myself up in maths",  # "skill" is not "kill"
        "my killer whale drawing",
        "I want to live by the sea",
        "The story touched me",
        "my brother beat me at chess",
        "Bullyingham is a made-up town",
        "Beats me!",  # "I don't know"
        "My brother always beats me at chess",
        "It really hits me when I hear that song",
        "Teachers always pick on me to answer",
        "",
    ],
)
def test_a_phrase_inside_other_words_or_a_harmless_sentence_raises_nothing(text: str) -> None:
    assert BUILT_IN.categories(text) == []


def test_several_categories_in_one_answer_are_each_named_once() -> None:
    text = "I get bullied and I want to die. I want to die."
    assert BUILT_IN.categories(text) == ["bullying", "self_harm"]


def test_words_fold_case_accents_and_apostrophes_and_split_on_the_rest() -> None:
    assert words("Don't—STOP_it, Café!") == ["dont", "stop", "it", "cafe"]


def test_a_school_file_may_be_a_plain_list_or_categories(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("- run away\n- Hate my life\n", encoding="utf-8")
    grouped = tmp_path / "grouped.yaml"
    grouped.write_text("neglect:\n  - nobody feeds me\n", encoding="utf-8")

    assert load_phrases(plain).categories("I hate my life") == ["safety"]
    assert load_phrases(plain).categories("I want to kill myself") == []  # only its own list
    assert load_phrases(grouped).categories("Nobody FEEDS me.") == ["neglect"]


def test_a_file_named_in_the_settings_is_the_list_used(tmp_path: Path) -> None:
    path = tmp_path / "phrases.yaml"
    path.write_text("- run away\n", encoding="utf-8")
    settings = load_settings(safety_phrases_file=path)
    assert settings.safety_phrases_file == path
    assert load_phrases(settings.safety_phrases_file).categories("I'll run away") == ["safety"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("- kill myself\n- a: b: c\n", "is not valid YAML (line 2)"),
        ("kill myself", "must be a list of phrases, or categories each with a list of phrases"),
        ("self_harm: kill myself\n", "must be a list of phrases, or categories each"),
        ("- kill myself\n- 42\n", "phrase 2 of 'safety' is not words: 42"),
        ("- '!!!'\n", "phrase 1 of 'safety' is not words: '!!!'"),
        ("[]\n", "has no phrases (an empty list would never raise an alert)"),
    ],
)
def test_a_bad_file_is_one_clear_line_when_the_settings_are_read(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "phrases.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(safety_phrases_file=path)
    message = str(refused.value)
    assert message.startswith(f"setting SAFETY_PHRASES_FILE: Value error, '{path}'")
    assert problem in message and "\n" not in message


def test_a_missing_file_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(safety_phrases_file=tmp_path / "nowhere.yaml")


def test_an_empty_support_message_is_refused() -> None:
    with pytest.raises(ConfigError, match="SAFETY_MESSAGE"):
        load_settings(safety_message="   ")


def test_phrases_are_indexed_by_their_first_word() -> None:
    phrases = SafetyPhrases.of([("want to die", "a"), ("want more", "b")])
    assert phrases.categories("I want more cake") == ["b"]
    assert phrases.categories("want to") == []  # a phrase cut short by the end of the text


def _built_in_phrases() -> list[str]:
    return [" ".join(p) for entries in BUILT_IN.by_first_word.values() for p, _ in entries]


@given(
    phrase=st.sampled_from(_built_in_phrases()),
    before=st.text(st.characters(categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=3),
    after=st.text(st.characters(categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=3),
)
def test_no_phrase_matches_inside_longer_words(phrase: str, before: str, after: str) -> None:
    assert BUILT_IN.categories(f"{before}{phrase}{after}") == []
    assert BUILT_IN.categories(f"{before} {phrase}, {after}") != []
