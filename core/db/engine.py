"""Engine creation and the transaction helper every service uses."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from core.db import sqlite_driver

#: How long SQLite waits for the write lock (``busy_timeout``, and the in-process queue below).
SQLITE_LOCK_TIMEOUT = 30.0


class ReadOnlyError(RuntimeError):
    """A read session (``Database.session()``) was asked to write."""


class _ReadOnlySession(Session):
    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise ReadOnlyError("a read session (Database.session) cannot write; use Database.transaction()")
        super().flush(objects)


class _SqliteWriterQueue:
    """One writer at a time per process, in arrival order, before SQLite's own lock.

    SQLite lets one connection write at a time; a connection that finds the lock taken sleeps in
    growing steps (up to 100 ms) and polls again.  With many tasks of one process writing at once,
    that polling, not the work, dominated their waits.  Here writers of the same process queue on an
    ``asyncio.Lock`` (handed over the moment the previous transaction ends), so SQLite's busy handler
    only ever waits for other processes (the CLI, a second server).

    ``Database.transaction()`` takes its turn *before* checking out a connection, so transactions
    waiting for their turn do not hold pooled connections that readers need; any other write
    transaction (``engine.begin()``) takes it when it begins.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._owners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._holders: dict[int, asyncio.Lock] = {}  # id(DBAPI connection) -> the lock it took at BEGIN

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def _acquire(self, lock: asyncio.Lock) -> None:
        try:
            await asyncio.wait_for(lock.acquire(), SQLITE_LOCK_TIMEOUT)
        except TimeoutError:
            raise OperationalError(
                "BEGIN IMMEDIATE", None, Exception("database is locked (waited for this process's writers)")
            ) from None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold this process's write turn for a block (the task that holds it begins freely)."""
        lock, loop = self._lock(), asyncio.get_running_loop()
        await self._acquire(lock)
        task = asyncio.current_task()
        assert task is not None
        self._owners[loop] = task
        try:
            yield
        finally:
            self._owners.pop(loop, None)
            lock.release()

    def on_begin(self, dbapi_connection: Any) -> None:
        """Called in SQLAlchemy's greenlet, so it may await (``await_only``)."""
        loop = asyncio.get_running_loop()
        if self._owners.get(loop) is asyncio.current_task():
            return  # inside turn(): already this task's turn
        lock = self._lock()
        await_only(self._acquire(lock))
        self._holders[id(dbapi_connection)] = lock

    def on_end(self, dbapi_connection: Any) -> None:
        lock = self._holders.pop(id(dbapi_connection), None)
        if lock is not None and lock.locked():
            lock.release()


_WRITERS: weakref.WeakKeyDictionary[Engine, _SqliteWriterQueue] = weakref.WeakKeyDictionary()


def _sqlite_setup(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine
    writers = _SqliteWriterQueue()
    _WRITERS[sync_engine] = writers

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin, so we can
        # take the write lock up front (BEGIN IMMEDIATE) and never hit a lock upgrade
        # failure between two writers.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # The BEGIN runs with the transaction's first statement (one trip to aiosqlite's thread);
        # a failure to take SQLite's lock surfaces there and rolls back, which ends the turn.
        dbapi_connection: sqlite_driver.OneHopConnection = conn.connection.dbapi_connection
        # Read-only work (``execution_options(read_only=True)``) needs no write lock in WAL mode.
        if conn.get_execution_options().get("read_only"):
            dbapi_connection.begin_with_next_statement("BEGIN")
            return
        writers.on_begin(dbapi_connection)
        dbapi_connection.begin_with_next_statement("BEGIN IMMEDIATE")

    def _on_end(conn: Any) -> None:
        writers.on_end(conn.connection.dbapi_connection)

    event.listen(sync_engine, "commit", _on_end)
    event.listen(sync_engine, "rollback", _on_end)

    # A connection that leaves without commit or rollback (invalidated, closed) frees its turn too.
    def _on_pool_end(dbapi_connection: Any, *_args: Any) -> None:
        writers.on_end(dbapi_connection)

    for name in ("checkin", "reset", "invalidate", "close", "close_detached"):
        event.listen(sync_engine.pool, name, _on_pool_end)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Create the async engine for ``url`` (SQLite via aiosqlite or PostgreSQL via asyncpg)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=0, pool_timeout=60, module=sqlite_driver.dbapi()
        )
        _sqlite_setup(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


class Database:
    """Owns the engine and hands out transactions (the unit of work)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writers = _WRITERS.get(engine.sync_engine)
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._readers = async_sessionmaker(
            engine.execution_options(read_only=True),
            expire_on_commit=False,
            autoflush=True,
            sync_session_class=_ReadOnlySession,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends normally, rolls back on error."""
        if self._writers is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._writers.turn(), self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads (writes go through ``transaction()``).

        On SQLite it never waits for, or holds, the write lock; asking it to write raises
        ``ReadOnlyError``.
        """
        async with self._readers() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
