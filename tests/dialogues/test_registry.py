"""The flow registry: when it reads the files, and which engines it can hand out."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogues import FlowLoadError, FlowRegistry

CLUB = "id: club\nversion: 1\ntitle: Club\nsteps:\n  - id: sport\n    type: text\n    ask: Sport?\n"
BROKEN = "id: club\nversion: 1\nsteps:\n  - id: sport\n    type: choice\n    ask: Sport?\n"


def test_a_registry_refuses_a_broken_file_when_made(tmp_path: Path) -> None:
    (tmp_path / "club.yaml").write_text(BROKEN)
    with pytest.raises(FlowLoadError, match="options: missing"):
        FlowRegistry([tmp_path])


def test_a_deferred_registry_reads_the_files_when_first_used(tmp_path: Path) -> None:
    (tmp_path / "club.yaml").write_text(BROKEN)
    registry = FlowRegistry([tmp_path], defer=True)  # nothing read yet
    with pytest.raises(FlowLoadError, match="options: missing"):
        registry.flows()
    (tmp_path / "club.yaml").write_text(CLUB)  # fixed: the next use reads it again
    assert registry.get("club").title == "Club"
    assert "this_is_me" in {flow.id for flow in registry.flows()}


def test_the_engine_of_a_known_content_hash_is_at_hand(tmp_path: Path) -> None:
    (tmp_path / "club.yaml").write_text(CLUB)
    registry = FlowRegistry([tmp_path], defer=True)
    club = registry.get("club")
    engine = registry.cached_engine(club.content_hash)
    assert engine is not None and engine is registry.engine(club)
    assert registry.cached_engine("0" * 64) is None
