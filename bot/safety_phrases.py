"""Safety phrases: the list a student's typed words are matched against (``bot.safety``).

The built-in list is ``bot/data/safety_phrases.yaml``; ``SAFETY_PHRASES_FILE`` names another,
read (and refused in one line if bad) when the settings are. A file is a YAML list of
phrases, or categories each with a list. Matching is on whole words: case, accents,
punctuation and apostrophes aside, so "skill" never matches "kill".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

__all__ = ["DEFAULT_SAFETY_MESSAGE", "SafetyPhrases", "load_phrases", "words"]

DEFAULT_SAFETY_MESSAGE: Final = (
    "Thank you for telling me. It sounds like things might be really hard right now. "
    "A counselor at school will reach out to you. If you are in danger or thinking about "
    "hurting yourself, please talk to an adult you trust now, or call or text 988 "
    "(Suicide & Crisis Lifeline; outside the US, your local emergency number)."
)
_PLAIN_LIST: Final = "safety"
"""The category of every phrase of a file that is a plain list."""

_WORD = re.compile(r"[^\W_]+")
_APOSTROPHES = str.maketrans("", "", "'\u2018\u2019\u02bc\u0060\u00b4")


def words(text: str) -> list[str]:
    """The words of ``text`` as phrases are matched: case folded, accents and apostrophes
    dropped ("Don't" and "dont" are one word), split on everything else."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", bare.casefold()).translate(_APOSTROPHES)
    return _WORD.findall(folded)


@dataclass(frozen=True, slots=True)
class SafetyPhrases:
    """Phrases by their first word: (the phrase's words, its category)."""

    by_first_word: dict[str, tuple[tuple[tuple[str, ...], str], ...]]

    @classmethod
    def of(cls, phrases: Iterable[tuple[str, str]]) -> SafetyPhrases:
        """From (phrase, category) pairs."""
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, category in phrases:
            found = tuple(words(phrase))
            if found:
                index.setdefault(found[0], []).append((found, category))
        return cls({first: tuple(entries) for first, entries in index.items()})

    def categories(self, text: str) -> list[str]:
        """The categories of the phrases ``text`` contains, in order of first appearance."""
        found: list[str] = []
        typed = words(text)
        for n, word in enumerate(typed):
            for phrase, category in self.by_first_word.get(word, ()):
                if category not in found and tuple(typed[n : n + len(phrase)]) == phrase:
                    found.append(category)
        return found


@cache
def load_phrases(path: Path | None = None) -> SafetyPhrases:
    """The phrases of ``path`` (None: the built-in list); ValueError in one line when the
    file cannot be read or is not a list of phrases (or categories of lists)."""
    import yaml  # only where a list is read: commands that read none do without it

    if path is None:
        source = resources.files("bot").joinpath("data/safety_phrases.yaml").read_text("utf-8")
        return SafetyPhrases.of(_phrases(yaml.safe_load(source), "the built-in list"))
    name = repr(str(path))
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{name} does not exist (it should list the safety phrases)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name} cannot be read: {exc.__class__.__name__}") from None
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"{name} is not valid YAML{where}") from None
    return SafetyPhrases.of(_phrases(data, name))


def _phrases(data: Any, name: str) -> list[tuple[str, str]]:
    shape = f"{name} must be a list of phrases, or categories each with a list of phrases"
    if isinstance(data, list):
        groups: dict[Any, Any] = {_PLAIN_LIST: data}
    elif isinstance(data, dict):
        groups = data
    else:
        raise ValueError(shape)
    found: list[tuple[str, str]] = []
    for category, phrases in groups.items():
        if not isinstance(category, str) or not isinstance(phrases, list):
            raise ValueError(shape)
        for n, phrase in enumerate(phrases, 1):
            if not isinstance(phrase, str) or not words(phrase):
                raise ValueError(f"{name}: phrase {n} of {category!r} is not words: {phrase!r}")
            found.append((phrase, category))
    if not found:
        raise ValueError(f"{name} has no phrases (an empty list would never raise an alert)")
    return found
