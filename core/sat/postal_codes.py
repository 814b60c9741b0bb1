"""Postal codes from SAT's ``c_CodigoPostal`` catalog (as shipped, offline, by ``satcfdi``).

``lookup_postal_code("06600")`` returns the estado, municipio and localidad of the code and the IANA
time zone in which REP dates issued there must be written. The catalog gives each code a *huso horario*
description; it is mapped to an IANA zone as follows (``TIME_ZONE_RULES``):

============================== ===================== ==========================================
SAT description                state                 IANA zone
============================== ===================== ==========================================
Tiempo del Centro              CHH                   America/Chihuahua
Tiempo del Centro              NAY (Bahía de B.)     America/Bahia_Banderas
Tiempo del Centro              any other             America/Mexico_City
Tiempo del Centro en Frontera  CHH, Juárez (037)     America/Ciudad_Juarez
Tiempo del Centro en Frontera  CHH, other            America/Ojinaga
Tiempo del Centro en Frontera  COA, NLE, TAM         America/Matamoros
Tiempo del Pacífico            SON                   America/Hermosillo
Tiempo del Pacífico            BCS, SIN, NAY         America/Mazatlan
Tiempo del Noroeste            BCN                   America/Tijuana
Tiempo del Sureste             ROO                   America/Cancun
============================== ===================== ==========================================

Since the 2022 law every zone without "Frontera" is a fixed offset with no daylight saving time
(Centro UTC-6, Pacífico UTC-7, Sureste UTC-5), while the border strips follow US daylight saving
(Noroeste = US Pacific, Centro en Frontera = US Central). We follow SAT's catalog with one exception:
SAT still labels Ciudad Juárez (CHH, municipio 037) "Centro en Frontera" (US Central rules), whereas
since November 2022 the city keeps US Mountain time (tzdata ``America/Ciudad_Juarez``, one hour
behind). We write REP dates there on the city's real clock: a PAC that reads SAT's catalog then sees a
``Fecha`` one hour in the past (well inside the 72-hour window), while the catalog's clock would put
it one hour in the future for a PAC that uses tzdata, and "a date after the stamping time" is a
rejection. This module is the only postal code -> time zone mapping: the REP builder and the
validator use it too (``core.cfdi.catalogs.postal_code_time_zone``).

The placeholder ``00000`` (state TLA, municipio ``000``) is in SAT's file but is not a real postal
code: it is treated as absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TIME_ZONE_RULES",
    "PostalCode",
    "PostalCodeError",
    "lookup_postal_code",
    "time_zone_for",
]

_FIVE_DIGITS = re.compile(r"[0-9]{5}")
_PLACEHOLDERS = frozenset({"00000"})
_CP_TABLE = "C756_c_CodigoPostal"
_STATE_TABLE = "C756_c_Estado"
_MUNICIPALITY_TABLE = "C756_c_Municipio"
_LOCALITY_TABLE = "C756_c_Localidad"

# (SAT huso horario description, state or None for "any state", municipio or None for "any") -> IANA
# zone; the first match wins.
TIME_ZONE_RULES: tuple[tuple[str, str | None, str | None, str], ...] = (
    ("Tiempo del Centro", "CHH", None, "America/Chihuahua"),
    ("Tiempo del Centro", "NAY", None, "America/Bahia_Banderas"),
    ("Tiempo del Centro", None, None, "America/Mexico_City"),
    ("Tiempo del Centro en Frontera", "CHH", "037", "America/Ciudad_Juarez"),
    ("Tiempo del Centro en Frontera", "CHH", None, "America/Ojinaga"),
    ("Tiempo del Centro en Frontera", None, None, "America/Matamoros"),
    ("Tiempo del Pacífico", "SON", None, "America/Hermosillo"),
    ("Tiempo del Pacífico", None, None, "America/Mazatlan"),
    ("Tiempo del Noroeste", None, None, "America/Tijuana"),
    ("Tiempo del Sureste", None, None, "America/Cancun"),
)


class PostalCodeError(ValueError):
    """A postal code that is not five digits (``postal_code_format``) or an unmappable catalog entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PostalCode:
    """One entry of ``c_CodigoPostal`` with names resolved and its IANA time zone."""

    code: str
    estado: str  # SAT state key, e.g. "CMX"
    estado_nombre: str
    municipio: str | None  # SAT municipio key (None when the catalog leaves it blank)
    municipio_nombre: str | None
    localidad: str | None
    localidad_nombre: str | None
    time_zone: str  # IANA name
    huso_horario: str  # SAT's description, e.g. "Tiempo del Centro"
    estimulo_franja_fronteriza: bool  # the catalog's border-region VAT incentive flag


def time_zone_for(huso_horario: str, estado: str, municipio: str | None = None) -> str:
    """The IANA zone for a SAT huso horario description in a state and municipio (``TIME_ZONE_RULES``)."""
    for description, state, town, zone in TIME_ZONE_RULES:
        if description == huso_horario and state in (None, estado) and town in (None, municipio):
            return zone
    raise PostalCodeError(
        "unknown_time_zone",
        f"El huso horario «{huso_horario}» del catálogo del SAT no tiene zona horaria asignada.",
    )


def _select(table: str, key: object) -> Any:
    # Imported lazily: satcfdi opens its SQLite catalog when the module is imported.
    from satcfdi.catalogs import select

    return select(table, key)


def _normalise(code: object) -> str:
    if not isinstance(code, str):
        raise PostalCodeError("postal_code_format", "El código postal debe ser texto de 5 dígitos.")
    text = code.strip()
    if not _FIVE_DIGITS.fullmatch(text):
        raise PostalCodeError(
            "postal_code_format", "El código postal debe tener exactamente 5 dígitos (por ejemplo, 06600)."
        )
    return text


def lookup_postal_code(code: str) -> PostalCode | None:
    """The catalog entry of a 5-digit postal code, or None when SAT's catalog does not list it.

    Raises ``PostalCodeError`` (code ``postal_code_format``) when ``code`` is not exactly five ASCII
    digits (surrounding whitespace is ignored).
    """
    text = _normalise(code)
    if text in _PLACEHOLDERS:
        return None
    row = _select(_CP_TABLE, text)
    if not row:
        return None
    estado, municipio, localidad, frontera, huso = (str(v) if v is not None else "" for v in row[:5])
    state_row = _select(_STATE_TABLE, estado)
    municipio_nombre = _select(_MUNICIPALITY_TABLE, (municipio, estado)) if municipio else None
    localidad_nombre = _select(_LOCALITY_TABLE, (localidad, estado)) if localidad else None
    return PostalCode(
        code=text,
        estado=estado,
        estado_nombre=str(state_row[1]) if state_row else estado,
        municipio=municipio or None,
        municipio_nombre=str(municipio_nombre) if municipio_nombre else None,
        localidad=localidad or None,
        localidad_nombre=str(localidad_nombre) if localidad_nombre else None,
        time_zone=time_zone_for(huso, estado, municipio or None),
        huso_horario=huso,
        estimulo_franja_fronteriza=frontera not in ("", "0"),
    )
