"""Drive the real `profilebot` command: in-process for speed, as a subprocess for exit paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bot.cli import app


@dataclass
class Profilebot:
    """The CLI pointed at one SQLite file, run from a scratch working directory."""

    workdir: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> str:
        result = CliRunner().invoke(
            app, list(args), input=input, env=self.env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    def chat(self, handle: str, answers: list[str], *extra: str) -> str:
        return self("chat", "--as", handle, *extra, input="".join(a + "\n" for a in answers))

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def run(self, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        """The installed entry point in a subprocess, to see exit codes and stderr."""
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env={**os.environ, **self.env},
            timeout=120,
        )


def make_profilebot(tmp_path: Path, monkeypatch: Any) -> Profilebot:
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'profilebot.db'}", "DEFAULT_TIMEZONE": "UTC"}
    for name in ("PROFILEBOT_FLOWS_DIR", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return Profilebot(tmp_path, env)
