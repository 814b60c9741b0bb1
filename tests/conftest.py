"""Suite-wide fixtures.  Every test that asks for ``database`` runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.clock import FrozenClock
from core.db.engine import Database, create_engine
from tests.support import databases

REPO_ROOT = Path(__file__).resolve().parents[1]
SAT_CREDENTIALS = REPO_ROOT.parent / "shared" / "sat-test-credentials"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(databases.make_sqlite_template(path))
    return path


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[databases.PostgresTestDatabase]:
    reason = databases.pg_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but not reachable: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL not reachable at {databases.pg_admin_dsn()}: {reason}")
    pg = databases.PostgresTestDatabase()
    asyncio.run(pg.create())
    yield pg
    asyncio.run(pg.drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return databases.copy_sqlite(template, tmp_path / "test.db")
    pg: databases.PostgresTestDatabase = request.getfixturevalue("postgres_db")
    asyncio.run(pg.truncate())
    return pg.url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    engine = create_engine(database_url)
    db = Database(engine)
    try:
        yield db
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 12, 1, 16, 0, tzinfo=UTC))


@pytest.fixture
def sat_credentials() -> Path:
    if not SAT_CREDENTIALS.is_dir():
        pytest.skip(f"SAT test credentials not found at {SAT_CREDENTIALS}")
    return SAT_CREDENTIALS
