"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of four.

aiosqlite runs every call on its connection's thread; SQLAlchemy's adapter makes four such calls
per statement (open a cursor, execute, fetch all rows, close the cursor), and every call is a queue
put, a thread wake-up and an event-loop wake-up through its self-pipe.  On the hot paths (a proof
upload, a stamped REP, a batch of inbox mail) those hops, not SQLite, were most of the CPU.  Here a
statement runs as one function on aiosqlite's thread: it opens a cursor, executes, fetches and
closes it, and hands back the description, the rows, the row count and the last row id.

The rest (connection, commit, rollback, errors, isolation level, pool) is SQLAlchemy's own adapter.
This relies on aiosqlite's ``Connection._execute`` and SQLAlchemy's ``AsyncAdapt_dbapi_cursor``
internals; pyproject pins both packages to the minor versions it was tested with, and the whole
suite runs on it.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, list[Any] | None, int, int | None]


def _run(conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On aiosqlite's thread: the pending BEGIN, if any, and the whole statement, cursor to close."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor: no aiosqlite cursor is kept; each statement is one call on its thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no super(): it would open an aiosqlite cursor
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows: collections.deque[Any] = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    async def _call(self, operation: Any, parameters: Any, many: bool) -> None:
        adapted = cast(OneHopConnection, self._adapt_connection)
        async with adapted._execute_mutex:
            connection: Any = self._connection  # an aiosqlite.Connection
            begin, adapted._pending_begin = adapted._pending_begin, None
            outcome: _Outcome = await connection._execute(_run, connection._conn, begin, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows or ())

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._call(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._call(operation, seq_of_parameters, True)

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """Also saves the hops of a transaction's edges: ``BEGIN`` travels with the first statement
    (:meth:`begin_with_next_statement`), and commit or rollback with no transaction open (a read that
    ran nothing, the pool's reset after a commit) does not go to the thread at all."""

    __slots__ = ("_pending_begin",)
    _cursor_cls = OneHopCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._pending_begin: str | None = None

    def begin_with_next_statement(self, sql: str) -> None:
        """Run ``sql`` (``BEGIN`` or ``BEGIN IMMEDIATE``) just before the next statement, in its hop."""
        self._pending_begin = sql

    def _in_transaction(self) -> bool:
        # sqlite3 allows reading this flag from any thread; the connection is ours alone meanwhile.
        raw = self._connection._connection
        return raw is not None and bool(raw.in_transaction)

    def commit(self) -> None:
        if self._pending_begin is not None:
            self._pending_begin = None  # nothing ran: nothing began
        elif self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._pending_begin is not None:
            self._pending_begin = None
        elif self._in_transaction():
            super().rollback()


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module handed to ``create_async_engine(module=...)``."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)


def dbapi() -> OneHopDbapi:
    return OneHopDbapi(aiosqlite, sqlite3)
