"""Pure validation of a vendor's "Datos del CFDI": lugar de expedición, Serie REP, Folio inicial REP.

* **Lugar de expedición**: five digits that exist in SAT's ``c_CodigoPostal``; its IANA time zone is
  returned so REP dates can be written in local time.
* **Serie REP**: CFDI 4.0 XSD rule for ``Serie`` (``[^|]{1,25}``, whitespace collapsed): trimmed, inner
  whitespace collapsed, 1-25 characters, no ``|`` (the separator of the cadena original) and no control
  or invisible formatting characters.
* **Folio inicial REP**: a positive integer (ASCII digits or a JSON integer) up to ``FOLIO_MAX``; once
  REPs exist the next folio may only move forward (``check_folio_change``).

The logo is checked by ``core.uploads.check_logo``. Every problem is a ``FieldError`` (field, code,
Spanish message) inside ``ValidationErrors``; ``validate_cfdi_settings`` reports all fields at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.orders.contact import FieldError, ValidationErrors
from core.sat.postal_codes import PostalCode, PostalCodeError, lookup_postal_code

__all__ = [
    "FOLIO_MAX",
    "SERIE_MAX",
    "CfdiSettingsInput",
    "check_folio_change",
    "validate_cfdi_settings",
    "validate_folio_inicial",
    "validate_lugar_expedicion",
    "validate_serie",
]

SERIE_MAX = 25
FOLIO_MAX = 10**15 - 1  # fits BIGINT and JSON's exactly representable integers (< 2**53)
_INTEGER = re.compile(r"-?[0-9]+")

PostalCodeLookup = Callable[[str], PostalCode | None]


@dataclass(frozen=True)
class CfdiSettingsInput:
    """Validated Datos del CFDI (without the logo)."""

    lugar_expedicion: str
    time_zone: str
    serie: str
    folio_inicial: int


def _fail(field: str, code: str, message: str) -> ValidationErrors:
    return ValidationErrors([FieldError(field, code, message)])


def validate_lugar_expedicion(value: object, *, lookup: PostalCodeLookup = lookup_postal_code) -> PostalCode:
    """The catalog entry of the postal code; field ``lugar_expedicion``."""
    field = "lugar_expedicion"
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(field, "required", "El lugar de expedición (código postal) es obligatorio.")
    try:
        if not isinstance(value, str):
            raise PostalCodeError("postal_code_format", "not text")
        entry = lookup(value)
    except PostalCodeError as exc:
        raise _fail(
            field,
            "postal_code_format",
            "El lugar de expedición debe ser un código postal de 5 dígitos (por ejemplo, 06600).",
        ) from exc
    if entry is None:
        code = value.strip() if isinstance(value, str) else value
        raise _fail(
            field,
            "postal_code_not_found",
            f"El código postal {code} del lugar de expedición no existe en el catálogo del SAT.",
        )
    return entry


def validate_serie(value: object) -> str:
    """The Serie REP, trimmed and with inner whitespace collapsed; field ``serie``."""
    field = "serie"
    if value is None:
        raise _fail(field, "required", "La serie de los complementos de pago es obligatoria.")
    if not isinstance(value, str):
        raise _fail(field, "invalid_type", "La serie debe ser texto.")
    serie = " ".join(unicodedata.normalize("NFC", value).split())
    if not serie:
        raise _fail(field, "required", "La serie de los complementos de pago es obligatoria.")
    if "|" in serie:
        raise _fail(field, "invalid_characters", "La serie no puede contener el carácter «|».")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn"} for c in serie):
        raise _fail(field, "invalid_characters", "La serie contiene caracteres no permitidos.")
    if len(serie) > SERIE_MAX:
        raise _fail(
            field,
            "too_long",
            f"La serie admite como máximo {SERIE_MAX} caracteres (se recibieron {len(serie)}).",
        )
    return serie


def validate_folio_inicial(value: object) -> int:
    """The Folio inicial REP as a positive integer; field ``folio_inicial``."""
    field = "folio_inicial"
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(field, "required", "El folio inicial es obligatorio.")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(field, "not_an_integer", "El folio inicial debe ser un número entero.")
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER.fullmatch(text) or len(text) > 20:
            raise _fail(field, "not_an_integer", "El folio inicial debe ser un número entero.")
        folio = int(text)
    else:
        folio = value
    if folio < 1:
        raise _fail(field, "not_positive", "El folio inicial debe ser un número entero mayor que cero.")
    if folio > FOLIO_MAX:
        raise _fail(field, "too_large", f"El folio inicial no puede ser mayor que {FOLIO_MAX}.")
    return folio


def check_folio_change(current_next: int, new_start: int, reps_exist: bool) -> None:
    """Refuse moving the next folio backwards once REPs have been issued; field ``folio_inicial``.

    ``current_next`` is the folio the next REP would take; ``new_start`` the requested folio inicial.
    Before the first REP any positive folio is allowed; afterwards only ``new_start >= current_next``.
    """
    validate_folio_inicial(new_start)
    if reps_exist and new_start < current_next:
        raise _fail(
            "folio_inicial",
            "folio_backwards",
            f"El folio inicial no puede ser menor que {current_next}: ya se emitieron complementos de "
            "pago y los folios solo pueden avanzar.",
        )


def validate_cfdi_settings(
    data: Mapping[str, object],
    *,
    current_next_folio: int | None = None,
    reps_exist: bool = False,
    lookup: PostalCodeLookup = lookup_postal_code,
) -> CfdiSettingsInput:
    """Validate ``{"lugar_expedicion", "serie", "folio_inicial"}`` at once; raises ``ValidationErrors``.

    Pass ``current_next_folio`` and ``reps_exist`` when settings already exist so a backwards folio
    move is refused.
    """
    if not isinstance(data, Mapping):
        raise _fail("_", "invalid_type", "Los datos del CFDI deben ser un objeto.")
    errors: list[FieldError] = []
    place: PostalCode | None = None
    serie = ""
    folio = 0
    try:
        place = validate_lugar_expedicion(data.get("lugar_expedicion"), lookup=lookup)
    except ValidationErrors as exc:
        errors.extend(exc.errors)
    try:
        serie = validate_serie(data.get("serie"))
    except ValidationErrors as exc:
        errors.extend(exc.errors)
    try:
        folio = validate_folio_inicial(data.get("folio_inicial"))
        if current_next_folio is not None:
            check_folio_change(current_next_folio, folio, reps_exist)
    except ValidationErrors as exc:
        errors.extend(exc.errors)
    if errors or place is None:
        raise ValidationErrors(errors)
    return CfdiSettingsInput(lugar_expedicion=place.code, time_zone=place.time_zone, serie=serie, folio_inicial=folio)
