"""Typing helpers for the Core statements of the stamping path (rows read without the ORM)."""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import Row, Table
from sqlalchemy.orm import DeclarativeBase

#: A result row of a Core ``select`` (columns read by name: ``row.balance``).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def table_of(model: type[DeclarativeBase]) -> Table:
    """The ``Table`` of a mapped class (``__table__`` is typed as a plain ``FromClause``)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
