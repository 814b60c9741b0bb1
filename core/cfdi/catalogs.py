"""Read-only access to SAT catalogs shipped by satcfdi (``satcfdi/catalogs/catalogs.db``).

The SQLite file is opened lazily, read-only, once per process, and queried through small cached
functions. satcfdi stores keys and values pickled (protocol 4); the file belongs to an installed
package we trust, never to user input.
"""

from __future__ import annotations

import importlib.util
import pickle
import sqlite3
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.sat.postal_codes import PostalCodeError, time_zone_for

_lock = threading.RLock()
_state: dict[str, sqlite3.Connection] = {}


def satcfdi_root() -> Path:
    """Directory of the installed satcfdi package, found without importing it."""
    spec = importlib.util.find_spec("satcfdi")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("satcfdi no está instalado")
    return Path(next(iter(spec.submodule_search_locations)))


def _connection() -> sqlite3.Connection:
    with _lock:
        conn = _state.get("conn")
        if conn is None:
            path = satcfdi_root() / "catalogs" / "catalogs.db"
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            _state["conn"] = conn
        return conn


def _select(table: str, key: str) -> Any:
    data = pickle.dumps(key, protocol=4)
    with _lock:
        row = _connection().execute(f"SELECT value FROM {table} WHERE key = ?", (data,)).fetchone()  # noqa: S608
    if row is None:
        return None
    return pickle.loads(row[0])  # noqa: S301 - package data, not user input


@lru_cache(maxsize=256)
def currency_decimals(currency: str) -> int | None:
    """Decimals of a c_Moneda code (MXN 2, JPY 0), or None when the code is not in the catalog."""
    row = _select("C756_c_Moneda", currency)
    return None if row is None else int(row[1])


@lru_cache(maxsize=4096)
def postal_code_row(postal_code: str) -> tuple[str, ...] | None:
    """(estado, municipio, localidad, franja fronteriza, huso horario) of a c_CodigoPostal, or None."""
    if len(postal_code) != 5 or not postal_code.isdigit():
        return None
    row = _select("C756_c_CodigoPostal", postal_code)
    return None if row is None else tuple(str(v) for v in row)


def postal_code_exists(postal_code: str) -> bool:
    return postal_code_row(postal_code) is not None


def postal_code_time_zone(postal_code: str) -> str | None:
    """IANA zone of a c_CodigoPostal (REP dates are written in it), or None if unknown.

    The mapping itself lives in ``core.sat.postal_codes`` (one table for the whole service)."""
    row = postal_code_row(postal_code)
    if row is None:
        return None
    state, municipality, _, _, description = row[:5]
    try:
        return time_zone_for(description, state, municipality or None)
    except PostalCodeError:
        return None


@lru_cache(maxsize=128)
def in_catalog(table: str, key: str) -> bool:
    """Whether ``key`` is in a satcfdi catalog table such as ``C756_c_FormaPago``."""
    return _select(table, key) is not None


def payment_form_exists(code: str) -> bool:
    return in_catalog("C756_c_FormaPago", code)


def tax_regime_exists(code: str) -> bool:
    return in_catalog("C756_c_RegimenFiscal", code)
