"""Read sessions and write transactions: what each may do, and how writers of one process queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from core.audit.models import AuditEvent
from core.audit.service import Actor, record
from core.db.engine import Database, ReadOnlyError, create_engine
from core.db.migrate import upgrade

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def _audit(db: Database, n: int) -> None:
    async with db.transaction() as session:
        await record(session, actor=Actor.system(), action=f"test.{n}", subject_type="t", subject_id=n, at=NOW)


async def test_a_read_session_refuses_to_write(database: Database) -> None:
    async with database.session() as session:
        await record(session, actor=Actor.system(), action="test.read", subject_type="t", subject_id=1, at=NOW)
        with pytest.raises(ReadOnlyError):
            await session.flush()
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0


async def test_many_writers_of_one_process_all_commit(database: Database) -> None:
    """Two hundred concurrent transactions: every one commits, none gives up on a busy database."""
    await asyncio.gather(*(_audit(database, n) for n in range(200)))
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 200


async def test_a_read_does_not_wait_for_a_writer_on_sqlite(tmp_path: Path) -> None:
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'rw.db'}"))
    await upgrade(db.engine)
    try:
        async with db.transaction() as writer:
            await writer.execute(text("UPDATE jobs SET status = 'x' WHERE 1 = 0"))  # holds the write lock
            async with db.session() as reader:
                count = await asyncio.wait_for(reader.scalar(select(func.count()).select_from(AuditEvent)), 5)
            assert count == 0
    finally:
        await db.dispose()


async def test_a_failed_transaction_hands_the_write_turn_on_on_sqlite(tmp_path: Path) -> None:
    """A writer that fails (rolls back) must not keep the in-process queue locked."""
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'turn.db'}"))
    await upgrade(db.engine)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await session.execute(text("UPDATE jobs SET status = 'x' WHERE 1 = 0"))
                raise RuntimeError("boom")
        await asyncio.wait_for(_audit(db, 1), 5)

        async def cancelled() -> None:
            async with db.transaction() as session:
                await session.execute(text("UPDATE jobs SET status = 'x' WHERE 1 = 0"))
                await asyncio.sleep(60)

        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(_audit(db, 2), 5)
    finally:
        await db.dispose()
