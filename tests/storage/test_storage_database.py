"""Database setup that needs no server: URL forms, unreachable databases, migrating from zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from storage import (
    Database,
    DatabaseUnavailable,
    InvalidDatabaseURL,
    PeopleStore,
    SchemaError,
    StorageError,
    metadata,
)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db.example:5432/profilebot",
        "postgres://u:p@db.example:5432/profilebot",
        "postgresql+psycopg://u:p@db.example:5432/profilebot",
    ],
)
def test_every_postgres_spelling_uses_psycopg(url: str) -> None:
    db = Database(url)
    assert db.dialect == "postgresql"
    assert db.url.drivername == "postgresql+psycopg"
    assert db.safe_url == "postgresql+psycopg://u:***@db.example:5432/profilebot"


@pytest.mark.parametrize("url", ["sqlite:///profilebot.db", "sqlite:////tmp/x.db", "sqlite://"])
def test_sqlite_urls(url: str) -> None:
    assert Database(url).dialect == "sqlite"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "cannot parse database URL"),
        ("profilebot.db", "cannot parse database URL"),
        ("mysql://u:secret@h/db", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg2://u:secret@h/db", "unsupported database URL scheme"),
        ("postgresql://u:secret@h", "names no database"),
    ],
)
def test_bad_urls_are_refused_in_one_line(url: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as caught:
        Database(url)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and "secret" not in text
    assert isinstance(caught.value, StorageError) and isinstance(caught.value, ValueError)


def test_unreachable_postgres_is_one_clear_line() -> None:
    db = Database("postgresql://profilebot:secret@127.0.0.1:1/profilebot?connect_timeout=3")
    with pytest.raises(DatabaseUnavailable) as caught:
        db.check()
    text = str(caught.value)
    assert text.startswith(
        "cannot reach database at postgresql+psycopg://profilebot:***@127.0.0.1:1/"
    )
    assert "\n" not in text and "secret" not in text
    assert "refused" in text.lower()


@pytest.mark.parametrize("where", ["under-a-file", "missing-directory"])
def test_unwritable_sqlite_path_is_one_clear_line(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    parent = blocker if where == "under-a-file" else tmp_path / "missing"
    db = Database(f"sqlite:///{parent / 'profilebot.db'}")
    with pytest.raises(DatabaseUnavailable) as caught:
        db.check()
    text = str(caught.value)
    assert text.startswith(f"cannot reach database at sqlite:///{parent}")
    assert "unable to open database file" in text and "\n" not in text
    with pytest.raises(DatabaseUnavailable):  # stores fail the same way
        PeopleStore(db).find("anyone")


def test_ensure_schema_migrates_a_fresh_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    db = Database(f"sqlite:///{path}")
    db.check()
    assert db.current_revision() is None
    db.ensure_schema()
    assert db.current_revision() == db.head_revision() == "0014"
    tables = set(inspect(db.engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}
    db.ensure_schema()  # already at head: nothing to do
    db.upgrade()  # and upgrading again is harmless
    with db.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    db.dispose()


def test_in_memory_sqlite_works_for_quick_scripts() -> None:
    db = Database("sqlite://")
    db.upgrade()
    person = PeopleStore(db).add("Quick Test", "student")
    assert PeopleStore(db).get("quick-test") == person
    db.dispose()


def test_a_newer_schema_is_reported_not_guessed(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'newer.db'}")
    db.upgrade()
    with db.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaError, match="9999"):
        db.ensure_schema()
    db.dispose()


def test_the_head_revision_known_without_alembic_is_the_newest_migration() -> None:
    """`head_revision()` is written down so that commands need not import Alembic to see that
    a database is up to date; a new migration must move it too."""
    db = Database("sqlite://")
    script = ScriptDirectory.from_config(db._alembic_config())
    assert db.head_revision() == script.get_current_head()


def test_an_up_to_date_database_is_found_so_without_alembic(tmp_path: Path) -> None:
    path = tmp_path / "current.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    code = (
        "import sys; from storage import Database; "
        f"db = Database({f'sqlite:///{path}'!r}); db.ensure_schema(); "
        "print(db.current_revision(), 'alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == [db.head_revision(), "False"]


def test_several_revisions_at_once_are_reported_in_one_line(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'branched.db'}")
    db.upgrade()
    with db.begin() as conn:
        conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('0003')")
    head = db.head_revision()
    with pytest.raises(SchemaError, match=rf"several schema revisions at once \(0003, {head}\)"):
        db.current_revision()
    db.dispose()


def test_alembic_config_is_built_in_code_from_the_package() -> None:
    db = Database("sqlite://")
    cfg = db._alembic_config()
    assert cfg.config_file_name is None
    script_location = Path(cfg.get_main_option("script_location") or "")
    assert (script_location / "env.py").is_file()
    assert (script_location / "versions" / "0001_initial.py").is_file()
