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
