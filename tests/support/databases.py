"""Test databases: a migrated SQLite template copied per test, and a private PostgreSQL database.

PostgreSQL comes from ``TIMBRADO_TEST_POSTGRES_URL`` (default: the local server, database ``test``).
A private database is created per test run (name includes the pid) and dropped at the end; each
test gets clean tables (TRUNCATE) so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg

from core.db import migrate
from core.db.engine import create_engine
from core.db.models import Base

DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def pg_admin_dsn() -> str:
    return os.environ.get("TIMBRADO_TEST_POSTGRES_URL", DEFAULT_PG_ADMIN).replace(
        "postgresql+asyncpg://", "postgresql://"
    )


async def _pg_reachable(dsn: str) -> str | None:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), 5)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def pg_unavailable_reason() -> str | None:
    return asyncio.run(_pg_reachable(pg_admin_dsn()))


class PostgresTestDatabase:
    def __init__(self) -> None:
        self.admin_dsn = pg_admin_dsn()
        self.name = f"timbrado_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        base = self.admin_dsn.rsplit("/", 1)[0]
        self.url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{self.name}"

    async def create(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        engine = create_engine(self.url)
        await migrate.upgrade(engine)
        await engine.dispose()

    async def truncate(self) -> None:
        """Empty every table (fresh identities) so the next test starts clean."""
        names = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))
        conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


async def make_sqlite_template(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    return url


def copy_sqlite(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"
