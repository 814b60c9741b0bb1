"""Embedded SQLite runs every connection in WAL mode with foreign keys enforced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from admin.container import build_container
from core.db.engine import Database, create_engine
from core.db.migrate import upgrade
from core.jobs.models import JobAttempt
from core.settings import Settings

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}", pool_size=3))
    await upgrade(db.engine)
    yield db
    await db.dispose()


async def pragmas_of_one_connection(db: Database, hold: asyncio.Event) -> tuple[str, int]:
    async with db.session() as s:
        journal = (await s.execute(text("PRAGMA journal_mode"))).scalar_one()
        foreign_keys = (await s.execute(text("PRAGMA foreign_keys"))).scalar_one()
        await hold.wait()  # keep this connection checked out so the others open their own
    return str(journal), int(foreign_keys)


async def test_every_pooled_sqlite_connection_uses_wal_and_enforces_foreign_keys(sqlite_db: Database) -> None:
    hold = asyncio.Event()
    readers = [asyncio.create_task(pragmas_of_one_connection(sqlite_db, hold)) for _ in range(3)]
    await asyncio.sleep(0.2)
    hold.set()
    assert await asyncio.gather(*readers) == [("wal", 1)] * 3
    async with sqlite_db.transaction() as s:
        assert (await s.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await s.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1


async def test_a_row_pointing_at_a_missing_parent_is_refused_on_sqlite(sqlite_db: Database) -> None:
    orphan = {
        "job_id": 4242,
        "attempt": 1,
        "worker": "w",
        "started_at": NOW,
        "finished_at": NOW,
        "outcome": "succeeded",
        "error": None,
    }
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        async with sqlite_db.transaction() as s:
            await s.execute(insert(JobAttempt), [orphan])


async def test_the_embedded_default_database_is_a_wal_file_with_foreign_keys(tmp_path: Path) -> None:
    container = build_container(Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    try:
        async with container.db.session() as s:
            assert (await s.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await s.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await container.aclose()
