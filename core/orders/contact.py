"""Contact data given by a vendor when it orders a stamp package (Empresa, Nombre, Teléfono, Correo).

``validate_contact`` checks every field and reports all problems at once, each with the field name, a
stable machine code and a Spanish message, so a form can mark every bad field in one round trip.

Normalisation:

* ``empresa`` (razón social): trimmed, inner whitespace collapsed, 1-300 characters.
* ``nombre``: trimmed, inner whitespace collapsed, 1-200 characters.
* ``telefono``: spaces, dashes, dots and parentheses removed, an optional ``+52`` / ``52`` country
  prefix removed; exactly 10 digits remain (Mexican numbers since the 2019 numbering plan). Stored as the
  10 digits.
* ``correo``: trimmed, ``local@domain.tld``; the domain is lower-cased (IDN domains are accepted and kept
  in Unicode), the local part keeps its case. Limits: 64 for the local part, 253 for the domain,
  254 in total (RFC 5321).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "EMPRESA_MAX",
    "NOMBRE_MAX",
    "ContactData",
    "FieldError",
    "ValidationErrors",
    "normalize_email",
    "normalize_phone",
    "validate_contact",
]

EMPRESA_MAX = 300
NOMBRE_MAX = 200
EMAIL_MAX = 254
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``field`` as named in the API, a machine ``code``, a Spanish message."""

    field: str
    code: str
    message: str


class ValidationErrors(ValueError):
    """Every field problem found in one input, in field order."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @property
    def code(self) -> str:
        return "validation_error"

    @property
    def message(self) -> str:
        return "Revise los datos: " + " ".join(e.message for e in self.errors)

    def by_field(self) -> dict[str, list[FieldError]]:
        grouped: dict[str, list[FieldError]] = {}
        for error in self.errors:
            grouped.setdefault(error.field, []).append(error)
        return grouped

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"field": e.field, "code": e.code, "message": e.message} for e in self.errors]


@dataclass(frozen=True)
class ContactData:
    """Validated, normalised contact data."""

    empresa: str
    nombre: str
    telefono: str
    correo: str


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co"} for c in text)


def _clean_text(value: object, label: str, max_length: int, *, feminine: bool = False) -> str:
    """Trimmed text with inner whitespace collapsed; ``label`` is the Spanish field name with article."""
    required = f"{label} es {'obligatoria' if feminine else 'obligatorio'}."
    if value is None:
        raise _Invalid("required", required)
    if not isinstance(value, str):
        raise _Invalid("invalid_type", f"{label} debe ser texto.")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise _Invalid("required", required)
    if _has_control_characters(text):
        raise _Invalid("invalid_characters", f"{label} contiene caracteres no permitidos.")
    if len(text) > max_length:
        raise _Invalid("too_long", f"{label} admite como máximo {max_length} caracteres (se recibieron {len(text)}).")
    return text


def normalize_phone(value: object) -> str:
    """The 10 digits of a Mexican phone number; raises ``ValidationErrors`` for field ``telefono``."""
    try:
        return _phone(value)
    except _Invalid as exc:
        raise ValidationErrors([FieldError("telefono", exc.code, exc.message)]) from None


def _phone(value: object) -> str:
    if value is None:
        raise _Invalid("required", "El teléfono es obligatorio.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Invalid("invalid_type", "El teléfono debe ser texto.")
    raw = str(value).strip()
    if not raw:
        raise _Invalid("required", "El teléfono es obligatorio.")
    compact = _PHONE_SEPARATORS.sub("", raw)
    plus = compact.startswith("+")
    if plus:
        compact = compact[1:]
    if not compact.isascii() or not compact.isdigit():
        raise _Invalid(
            "invalid_characters",
            "El teléfono solo puede contener dígitos, espacios, guiones, puntos, paréntesis y el prefijo +52.",
        )
    if plus:
        if not compact.startswith("52"):
            raise _Invalid("invalid_country_code", "El teléfono debe ser de México (prefijo +52).")
        compact = compact[2:]
    elif len(compact) == 12 and compact.startswith("52"):
        compact = compact[2:]
    if len(compact) != 10:
        raise _Invalid("invalid_length", f"El teléfono debe tener 10 dígitos (se recibieron {len(compact)}).")
    return compact


def normalize_email(value: object) -> str:
    """A syntactically valid address, trimmed, domain lower-cased; raises ``ValidationErrors``."""
    try:
        return _email(value)
    except _Invalid as exc:
        raise ValidationErrors([FieldError("correo", exc.code, exc.message)]) from None


def _email(value: object) -> str:
    if value is None:
        raise _Invalid("required", "El correo es obligatorio.")
    if not isinstance(value, str):
        raise _Invalid("invalid_type", "El correo debe ser texto.")
    text = value.strip()
    if not text:
        raise _Invalid("required", "El correo es obligatorio.")
    invalid = _Invalid("invalid_email", "El correo no tiene un formato válido (ejemplo: nombre@empresa.com.mx).")
    if any(c.isspace() for c in text) or _has_control_characters(text) or text.count("@") != 1:
        raise invalid
    local, domain = text.split("@")
    if not local or not domain:
        raise _Invalid("invalid_email", "El correo debe tener un usuario y un dominio (nombre@empresa.com.mx).")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise invalid
    domain = domain.lower()
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise invalid from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253:
        raise _Invalid("invalid_email", "El dominio del correo no es válido (ejemplo: nombre@empresa.com.mx).")
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels) or not _TLD.fullmatch(labels[-1]):
        raise _Invalid("invalid_email", "El dominio del correo no es válido (ejemplo: nombre@empresa.com.mx).")
    address = f"{local}@{domain}"
    if len(local) + 1 + len(ascii_domain) > EMAIL_MAX:
        raise _Invalid("too_long", f"El correo admite como máximo {EMAIL_MAX} caracteres.")
    return address


_FIELDS: tuple[tuple[str, str, int, bool], ...] = (
    ("empresa", "La razón social (Empresa)", EMPRESA_MAX, True),
    ("nombre", "El nombre de contacto", NOMBRE_MAX, False),
)


def validate_contact(data: Mapping[str, object]) -> ContactData:
    """Validate and normalise ``{"empresa", "nombre", "telefono", "correo"}``.

    Raises ``ValidationErrors`` naming every bad field at once. Unknown keys are ignored.
    """
    if not isinstance(data, Mapping):
        raise ValidationErrors([FieldError("_", "invalid_type", "Los datos de contacto deben ser un objeto.")])
    errors: list[FieldError] = []
    values: dict[str, str] = {}
    for field, label, max_length, feminine in _FIELDS:
        try:
            values[field] = _clean_text(data.get(field), label, max_length, feminine=feminine)
        except _Invalid as exc:
            errors.append(FieldError(field, exc.code, exc.message))
    for field, check in (("telefono", _phone), ("correo", _email)):
        try:
            values[field] = check(data.get(field))
        except _Invalid as exc:
            errors.append(FieldError(field, exc.code, exc.message))
    if errors:
        raise ValidationErrors(errors)
    return ContactData(**values)
