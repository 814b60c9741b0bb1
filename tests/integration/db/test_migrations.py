"""Migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

from core.db import migrate
from core.db.engine import Database, create_engine


async def test_models_and_migrations_agree(database: Database) -> None:
    assert await migrate.is_at_head(database.engine)
    assert await migrate.schema_diff(database.engine) == []


async def test_upgrade_head_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    assert not await migrate.is_at_head(engine)
    await migrate.upgrade(engine)
    assert await migrate.current_revisions(engine) == migrate.head_revisions()
    assert await migrate.schema_diff(engine) == []
    await engine.dispose()


async def test_the_schema_check_does_not_wait_for_a_writer_on_sqlite(tmp_path: Path) -> None:
    """A CLI next to a busy server must not queue behind its write lock just to read the schema."""
    import asyncio

    from sqlalchemy import text

    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    server, cli = create_engine(url), create_engine(url)
    await migrate.upgrade(server)
    conn = await server.connect()
    tx = await conn.begin()  # BEGIN IMMEDIATE: the write lock is held from here on
    await conn.execute(text("UPDATE jobs SET status = 'x' WHERE 1 = 0"))
    try:
        assert await asyncio.wait_for(migrate.is_at_head(cli), 5)
    finally:
        await tx.rollback()
        await conn.close()
        await server.dispose()
        await cli.dispose()
