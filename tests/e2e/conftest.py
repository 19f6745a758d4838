"""Fixtures for end-to-end tests of the `profilebot` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_driver import Profilebot, make_profilebot


@pytest.fixture
def profilebot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profilebot:
    return make_profilebot(tmp_path, monkeypatch)
