"""The RFC (Registro Federal de Contribuyentes) as a value object.

Shape rules (SAT):

- persona moral: 12 characters, 3 letters + date (YYMMDD) + 3-character homoclave;
- persona física: 13 characters, 4 letters + date + homoclave;
- letters are A-Z, ``Ñ`` and ``&``; the homoclave is two letters or digits and a check character
  (a digit or ``A``);
- the generic RFCs ``XAXX010101000`` (público en general) and ``XEXX010101000`` (extranjero) are
  accepted.

The check digit is computed and exposed (:attr:`Rfc.has_valid_check_digit`) but not enforced: SAT
has issued real RFCs whose last character does not follow the published algorithm.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from core.sat.errors import RfcError

_RFC_RE = re.compile(r"([A-ZÑ&]{3,4})([0-9]{2})([0-9]{2})([0-9]{2})([A-Z0-9]{2}[0-9A])")
_CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ"
_MAX_SHOWN = 20

GENERIC_NATIONAL = "XAXX010101000"
GENERIC_FOREIGN = "XEXX010101000"


class RfcKind(StrEnum):
    PERSONA_FISICA = "fisica"
    PERSONA_MORAL = "moral"


def _shown(raw: str) -> str:
    """A short, printable rendering of untrusted input for an error message."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in raw[:_MAX_SHOWN])
    return cleaned + ("…" if len(raw) > _MAX_SHOWN else "")


def _check_digit(value: str) -> str:
    padded = value[:-1].rjust(12)
    total = sum(_CHECK_ALPHABET.index(ch) * (13 - i) for i, ch in enumerate(padded))
    digit = 11 - total % 11
    if digit == 11:
        return "0"
    if digit == 10:
        return "A"
    return str(digit)


def _is_valid_date(yy: str, mm: str, dd: str) -> bool:
    # The century is unknown: accept the date if it exists in 19YY or 20YY (29 Feb of "00").
    for century in (1900, 2000):
        try:
            date(century + int(yy), int(mm), int(dd))
        except ValueError:
            continue
        return True
    return False


@dataclass(frozen=True, slots=True)
class Rfc:
    """A well-formed RFC, upper case. Build it with :meth:`parse` to normalise user input."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise RfcError("El RFC debe ser texto.")
        if self.value in (GENERIC_NATIONAL, GENERIC_FOREIGN):
            return
        match = _RFC_RE.fullmatch(self.value)
        if match is None:
            raise RfcError(
                f"El RFC «{_shown(self.value)}» no es válido: debe tener 12 caracteres (persona moral) "
                "o 13 (persona física), con letras, fecha y homoclave."
            )
        if not _is_valid_date(match.group(2), match.group(3), match.group(4)):
            raise RfcError(f"El RFC «{_shown(self.value)}» no es válido: la fecha que contiene no existe.")

    @classmethod
    def parse(cls, raw: str) -> Rfc:
        """Normalise (trim, Unicode NFC, upper case) and validate an RFC typed by a person."""
        if not isinstance(raw, str):
            raise RfcError("El RFC debe ser texto.")
        if len(raw) > 64:
            raise RfcError(f"El RFC «{_shown(raw)}» no es válido: es demasiado largo.")
        return cls(unicodedata.normalize("NFC", raw.strip()).upper())

    @property
    def kind(self) -> RfcKind:
        return RfcKind.PERSONA_MORAL if len(self.value) == 12 else RfcKind.PERSONA_FISICA

    @property
    def is_persona_moral(self) -> bool:
        return self.kind is RfcKind.PERSONA_MORAL

    @property
    def is_persona_fisica(self) -> bool:
        return self.kind is RfcKind.PERSONA_FISICA

    @property
    def is_generic(self) -> bool:
        return self.value in (GENERIC_NATIONAL, GENERIC_FOREIGN)

    @property
    def is_generic_national(self) -> bool:
        return self.value == GENERIC_NATIONAL

    @property
    def is_generic_foreign(self) -> bool:
        return self.value == GENERIC_FOREIGN

    @property
    def has_valid_check_digit(self) -> bool:
        """Whether the last character follows SAT's check-digit algorithm (generic RFCs: True)."""
        return self.is_generic or _check_digit(self.value) == self.value[-1]

    def __str__(self) -> str:
        return self.value
