"""Single-instance duties (inbox watcher, scheduler): one holder at a time, takeover on death.

PostgreSQL: a session-level advisory lock held on a dedicated connection; if the holder dies its
connection closes, the server releases the lock and another instance acquires it.
SQLite (one machine): an exclusive ``flock`` on a file in the data dir, released by the kernel when
the holding process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` derived from a duty name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class SingletonLock(Protocol):
    name: str

    async def try_acquire(self) -> bool: ...

    async def still_held(self) -> bool: ...

    async def release(self) -> None: ...


class PostgresAdvisoryLock:
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            return await self.still_held()
        conn = await self.engine.connect()
        try:
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})).scalar())
            await conn.commit()
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
            await self._conn.commit()
            return True
        except Exception:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
            self._conn = None
            return False

    async def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            await self._conn.commit()
        with contextlib.suppress(Exception):
            await self._conn.close()
        self._conn = None


class FileLock:
    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock"
        self._fh: IO[bytes] | None = None

    async def try_acquire(self) -> bool:
        if self._fh is not None:
            return True
        fh = self.path.open("a+b")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {self.name}\n".encode())
        fh.flush()
        self._fh = fh
        return True

    async def still_held(self) -> bool:
        return self._fh is not None

    async def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def singleton_lock(engine: AsyncEngine, data_dir: Path, name: str) -> SingletonLock:
    if engine.dialect.name == "postgresql":
        return PostgresAdvisoryLock(engine, name)
    return FileLock(data_dir / "locks", name)
