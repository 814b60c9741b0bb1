"""The one-hop aiosqlite adapter (core/db/sqlite_driver.py) behaves like the driver it replaces."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from core.audit.models import AuditEvent
from core.db import engine as engine_module
from core.db.engine import Database, create_engine
from core.db.migrate import upgrade
from core.db.sqlite_driver import OneHopConnection

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _event(n: int) -> dict[str, object]:
    return {
        "occurred_at": NOW,
        "actor_kind": "system",
        "actor_id": "sistema",
        "driver": "system",
        "action": f"test.{n}",
        "subject_type": "t",
        "subject_id": f"{n:03d}",
    }


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}", pool_size=2))
    await upgrade(db.engine)
    yield db
    await db.dispose()


async def _count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def test_the_engine_uses_the_one_hop_adapter(sqlite_db: Database) -> None:
    async with sqlite_db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneHopConnection)


async def test_rows_rowcount_and_returning_come_back_from_one_hop(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as session:
        ids = (await session.execute(insert(AuditEvent).returning(AuditEvent.id), [_event(1)])).scalars().all()
        await session.execute(insert(AuditEvent), [_event(n) for n in range(2, 6)])  # executemany
        changed = await session.execute(update(AuditEvent).where(AuditEvent.subject_id > "003").values(reason="x"))
        assert changed.rowcount == 2
    assert len(ids) == 1 and ids[0] > 0
    async with sqlite_db.session() as session:
        rows = (await session.execute(select(AuditEvent.subject_id).order_by(AuditEvent.subject_id))).scalars()
        assert list(rows) == ["001", "002", "003", "004", "005"]


async def test_a_failed_statement_rolls_back_the_whole_transaction(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as session:
        await session.execute(insert(AuditEvent), [_event(1)])
    with pytest.raises(IntegrityError):
        async with sqlite_db.transaction() as session:
            await session.execute(insert(AuditEvent), [_event(2)])
            first_id = await session.scalar(select(func.min(AuditEvent.id)))
            await session.execute(insert(AuditEvent), [{**_event(3), "id": first_id}])
    assert await _count(sqlite_db) == 1  # event 2 went with the failed transaction
    await asyncio.wait_for(_write(sqlite_db, 4), 5)  # and the write turn was handed on
    assert await _count(sqlite_db) == 2


async def _write(db: Database, n: int) -> None:
    async with db.transaction() as session:
        await session.execute(insert(AuditEvent), [_event(n)])


async def test_a_write_lock_held_elsewhere_fails_cleanly_and_frees_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE runs with the first statement; when another process holds the lock past the
    busy timeout that statement fails, nothing is written and the next writer is not blocked."""
    monkeypatch.setattr(engine_module, "SQLITE_LOCK_TIMEOUT", 0.2)
    path = tmp_path / "busy.db"
    db = Database(create_engine(f"sqlite+aiosqlite:///{path}", pool_size=2))
    await upgrade(db.engine)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            await _write(db, 1)
        other.execute("ROLLBACK")
        await asyncio.wait_for(_write(db, 2), 5)
        assert await _count(db) == 1
    finally:
        other.close()
        await db.dispose()


async def test_a_read_session_leaves_no_transaction_open(sqlite_db: Database) -> None:
    async with sqlite_db.session():
        pass  # nothing ran: the deferred BEGIN never went to SQLite
    async with sqlite_db.session() as session:
        assert await session.scalar(text("SELECT 1")) == 1
    async with sqlite_db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.dbapi_connection._connection._connection.in_transaction is False
