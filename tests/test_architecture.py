"""The architecture's import contracts (pyproject.toml, [tool.importlinter]) hold.

`make test` runs `lint-imports`; this test runs it too, so the contracts are checked wherever
the suite runs, and it fails if one of them is dropped from the configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from importlinter.api import read_configuration

ROOT = Path(__file__).parents[1]
CONTRACTS = {
    "layers",
    "private-modules",
    "sql-in-storage",
    "telegram-in-its-adapter",
    "slack-in-its-adapter",
    "aiohttp-in-adapters",
}


def test_every_contract_is_configured() -> None:
    config = read_configuration(str(ROOT / "pyproject.toml"))
    assert set(config["session_options"]["root_packages"]) == {"dialogues", "storage", "bot"}
    assert {c["id"] for c in config["contracts_options"]} == CONTRACTS


def test_lint_imports_keeps_every_contract() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout
