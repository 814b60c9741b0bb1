"""Run and inspect migrations programmatically (``timbrado db upgrade``, readiness, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url:
        cfg.attributes["url"] = url
    return cfg


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        # A read: on SQLite it must not wait for the write lock a busy server keeps taking.
        conn = await conn.execution_options(read_only=True)
        result: set[str] = await conn.run_sync(_current)
        return result


async def is_at_head(engine: AsyncEngine) -> bool:
    return await current_revisions(engine) == head_revisions()


def _diff(connection: Connection) -> list[Any]:
    from alembic.autogenerate import compare_metadata

    from core.db.models import Base

    ctx = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def schema_diff(engine: AsyncEngine) -> list[Any]:
    """Differences between the models and the migrated database (empty when they agree)."""
    async with engine.connect() as conn:
        result: list[Any] = await conn.run_sync(_diff)
        return result
