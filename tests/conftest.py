"""Suite-wide fixtures.  Every test that asks for ``database`` runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.clock import FrozenClock
from core.db.engine import Database, create_engine
from tests.support import databases

REPO_ROOT = Path(__file__).resolve().parents[1]
SAT_CREDENTIALS = REPO_ROOT.parent / "shared" / "sat-test-credentials"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_PARAM = "postgresql"
SAT_CREDENTIALS_MISSING = "SAT test credentials not found"
_POSTGRES_SKIPS = pytest.StashKey[dict[str, str]]()


# --- CI guard: in CI every PostgreSQL variant must run; a skipped one fails the session -----------
def pytest_configure(config: pytest.Config) -> None:
    config.stash[_POSTGRES_SKIPS] = {}


def _runs_on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(value == POSTGRES_PARAM for value in callspec.params.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.skipped and not hasattr(report, "wasxfail") and _runs_on_postgresql(item):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if SAT_CREDENTIALS_MISSING not in reason:  # SAT's files may be absent anywhere: skipped on purpose
            item.config.stash[_POSTGRES_SKIPS].setdefault(item.nodeid, reason)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and session.config.stash.get(_POSTGRES_SKIPS, {}) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash.get(_POSTGRES_SKIPS, {})
    if not skipped:
        return
    title = "PostgreSQL tests skipped" + (" (CI fails because of them)" if IN_CI else "")
    terminalreporter.section(title, sep="=", red=IN_CI, yellow=not IN_CI)
    for nodeid, reason in sorted(skipped.items()):
        terminalreporter.line(f"{nodeid}: {reason}")


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
        pytest.skip(f"{SAT_CREDENTIALS_MISSING} at {SAT_CREDENTIALS}")
    return SAT_CREDENTIALS
