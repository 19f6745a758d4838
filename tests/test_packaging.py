"""`pip install .` (not only an editable install) must ship the built-in flows, migrations and
the card's template."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_wheel_contains_flows_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("profilebot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    flows = {f"dialogues/flows/{p.name}" for p in (ROOT / "dialogues" / "flows").glob("*.yaml")}
    assert len(flows) == 4 and flows <= names
    assert {
        "storage/migrations/env.py",
        "storage/migrations/script.py.mako",
        "storage/migrations/versions/0001_initial.py",
        "bot/cli.py",
        "bot/templates/card.html.j2",
        "bot/templates/card.css",
        "bot/templates/summary.html.j2",
        "bot/data/safety_phrases.yaml",
    } <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "profilebot = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
