"""An effect type storage was never taught fails the turn instead of being dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import pytest

from dialogues import Effect, SetProfile
from storage import PersonRecord

if TYPE_CHECKING:
    from conftest import Stores  # tests/storage/conftest.py, handed in as fixtures


@dataclass(frozen=True, slots=True)
class Promote:
    """An effect the engine might grow one day, that storage was never taught."""

    origin: str


def test_an_effect_storage_does_not_know_fails_the_turn(
    stores: Stores, student: PersonRecord
) -> None:
    stores.start(student)
    known = SetProfile(("nickname",), "Ani", False, False, "q1#None")
    with pytest.raises(TypeError, match="Promote"):
        stores.turn(student, known, cast(Effect, Promote("q2#None")))
    assert stores.profile.current(student.id) == {}  # the whole turn was rolled back
