"""Shared fixtures: a migrated, empty database per test, on SQLite and on PostgreSQL.

`database` is parametrized over both backends; contract tests use it so every store is held
to the same behaviour. Each backend is migrated (Alembic) once per session, and every test
starts from an empty, migrated database of its own:

- SQLite: a copy of the migrated template file in the test's ``tmp_path``.
- PostgreSQL: one database per session (per xdist worker) on the server named by
  PROFILEBOT_TEST_POSTGRES_URL (``eval "$(bash .ci/postgres.sh)"``), emptied before each test
  and dropped at the end. Without the URL the PostgreSQL cases skip, unless
  PROFILEBOT_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

# Property tests check behaviour, not speed (benchmarks do that): on a busy CI machine a
# per-example deadline or a "too slow" health check would fail a correct run at random.
settings.register_profile("profilebot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("profilebot")


def _import_app_packages(*names: str) -> None:
    """Import the application packages before a tests/<name>/ folder can shadow them.

    pytest puts tests/ on sys.path (there is no tests/__init__.py); a folder tests/storage/
    then counts as a namespace package "storage", and wins over the editable install's
    finder. Importing the real packages first, without tests/ on the path, settles it.
    """
    here = Path(__file__).resolve().parent
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        for name in names:
            importlib.import_module(name)
    finally:
        sys.path[:] = saved


_import_app_packages("dialogues", "storage")

from storage import Database, metadata  # noqa: E402

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
POSTGRES_URL_VAR = "PROFILEBOT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_VAR = "PROFILEBOT_REQUIRE_POSTGRES"


def postgres_admin_url() -> URL:
    """The test server's URL, or None when PostgreSQL tests are not configured."""
    raw = os.environ.get(POSTGRES_URL_VAR, "").strip()
    if not raw:
        if os.environ.get(REQUIRE_POSTGRES_VAR) == "1":
            pytest.fail(
                f"{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: "
                'run eval "$(bash .ci/postgres.sh)" first',
                pytrace=False,
            )
        pytest.skip(f'PostgreSQL tests need {POSTGRES_URL_VAR} (eval "$(bash .ci/postgres.sh)")')
    return Database(raw).url


class PostgresScratch:
    """One migrated database per test session (per xdist worker), emptied before each test.

    Emptying (DELETE every table, restart every sequence: ~30 ms) is much quicker than
    CREATE DATABASE ... TEMPLATE (0.05-0.5 s, it syncs to disk) or a schema per test.
    """

    def __init__(self, admin_url: URL) -> None:
        self._admin_url = admin_url
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"pbt_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.url = admin_url.set(database=self.name).render_as_string(hide_password=False)
        self._sequences: list[str] = []

    def create(self) -> None:
        self._execute(f'CREATE DATABASE "{self.name}"')
        db = Database(self.url)
        try:
            db.upgrade()
            with db.begin() as conn:
                self._sequences = list(
                    conn.scalars(
                        text(
                            "SELECT quote_ident(sequencename) FROM pg_sequences"
                            " WHERE schemaname = current_schema()"
                        )
                    )
                )
        finally:
            db.dispose()

    def empty(self, db: Database) -> None:
        with db.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
            for sequence in self._sequences:
                conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))

    def drop(self) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.dispose()

    def _execute(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(sql))


@pytest.fixture(scope="session")
def _postgres_scratch() -> Iterator[PostgresScratch]:
    admin_url = postgres_admin_url()
    Database(admin_url.render_as_string(hide_password=False)).check()
    scratch = PostgresScratch(admin_url)
    scratch.create()
    yield scratch
    scratch.drop()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()  # checkpoints the WAL into the file, so a plain copy is complete
    return path


@pytest.fixture
def sqlite_database(_sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty SQLite database in this test's tmp_path."""
    path = tmp_path / "profilebot.db"
    shutil.copyfile(_sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated, empty PostgreSQL database (the session's, emptied for this test)."""
    scratch: PostgresScratch = request.getfixturevalue("_postgres_scratch")
    db = Database(scratch.url)
    scratch.empty(db)
    yield db
    db.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest) -> Database:
    """A migrated, empty database: once on SQLite, once on PostgreSQL."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    db: Database = request.getfixturevalue(fixture)
    return db
