"""Find Mexican RFCs (Registro Federal de Contribuyentes) written in free text.

An RFC is 3 (persona moral) or 4 (persona física) letters from ``A-Z``, ``Ñ`` and ``&``, a date
``YYMMDD`` and a three-character homoclave whose last character is a digit or ``A``. People write
them in lower case and with hyphens or spaces between the groups (``ABC-010203-XY9``); the result is
always the canonical upper-case form without separators. The generic RFCs ``XAXX010101000`` and
``XEXX010101000`` (público en general, extranjeros) identify nobody and are left out.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["find_rfcs", "is_plausible_rfc"]

MAX_SCAN_CHARS = 500_000
GENERIC_RFCS = frozenset({"XAXX010101000", "XEXX010101000"})

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_RFC = re.compile(
    r"(?<![A-Za-z0-9Ññ&])"
    r"([A-Za-zÑñ&]{3,4})[- ]?(\d{6})[- ]?([A-Za-z0-9]{2}[0-9Aa])"
    r"(?![A-Za-z0-9Ññ&])"
)
_CANONICAL = re.compile(r"[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{2}[0-9A]")


def is_plausible_rfc(value: str) -> bool:
    """True for a canonical (upper case, no separators) RFC with a real month/day."""
    if not _CANONICAL.fullmatch(value) or value in GENERIC_RFCS:
        return False
    date = value[-9:-3]
    month, day = int(date[2:4]), int(date[4:6])
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]


def find_rfcs(text: str) -> list[str]:
    """Canonical RFCs in ``text`` in order of first appearance, without repeats; never raises."""
    normalized = unicodedata.normalize("NFC", text[:MAX_SCAN_CHARS])
    found: list[str] = []
    for match in _RFC.finditer(normalized):
        letters, date, homoclave = match.groups()
        separators = match.group(0).count("-") + match.group(0).count(" ")
        if separators not in (0, 2):
            continue
        candidate = (letters + date + homoclave).upper()
        if is_plausible_rfc(candidate) and candidate not in found:
            found.append(candidate)
    return found
