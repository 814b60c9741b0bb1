"""Payment references for bank transfers ("concepto de pago").

Format: ``TCP`` + the order id zero-padded to at least 8 digits + one check digit, e.g. order 1234 ->
``TCP000012344``. 12 characters for ids below 10^8, letters and digits only, so it fits any bank's
transfer concept (SPEI allows up to 40 characters) and survives being typed by hand.

Check digit: **Luhn (mod 10)** over the padded digits, the same algorithm as card numbers and as many
Mexican bank "referencias" (base 10, weights 2-1 from the right). It detects every single-digit error and
every transposition of adjacent digits except 09/90. Leading zeros do not change it.

Parsing tolerates what people do when they copy a reference: lower case, spaces, dashes and dots
anywhere. ``find_payment_reference`` picks a reference out of a whole transfer concept.
"""

from __future__ import annotations

import re

__all__ = [
    "PREFIX",
    "PaymentReferenceError",
    "find_payment_reference",
    "luhn_check_digit",
    "make_payment_reference",
    "parse_payment_reference",
]

PREFIX = "TCP"
_MIN_DIGITS = 8
_MAX_DIGITS = 18  # ids beyond this are not order ids
_SEPARATORS = re.compile(r"[\s\-.]")
_SHAPE = re.compile(rf"{PREFIX}(\d{{{_MIN_DIGITS},{_MAX_DIGITS}}})(\d)")
_IN_TEXT = re.compile(rf"{PREFIX}[\s\-.]*((?:\d[\s\-.]*){{{_MIN_DIGITS + 1},{_MAX_DIGITS + 1}}})", re.IGNORECASE)


class PaymentReferenceError(ValueError):
    """A reference that is malformed or whose check digit does not match."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def luhn_check_digit(digits: str) -> int:
    """The Luhn digit that makes ``digits + digit`` pass the Luhn test."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("digits must be ASCII digits")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # rightmost payload digit is doubled (the check digit will follow it)
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def make_payment_reference(order_id: int) -> str:
    """``TCP`` + zero-padded order id + Luhn check digit."""
    if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id <= 0:
        raise ValueError("order_id must be a positive integer")
    digits = f"{order_id:0{_MIN_DIGITS}d}"
    if len(digits) > _MAX_DIGITS:
        raise ValueError("order_id is too large for a payment reference")
    return f"{PREFIX}{digits}{luhn_check_digit(digits)}"


def parse_payment_reference(text: str) -> int:
    """The order id inside a reference; raises ``PaymentReferenceError`` if malformed or mistyped."""
    if not isinstance(text, str):
        raise PaymentReferenceError("invalid_reference", "La referencia de pago debe ser texto.")
    compact = _SEPARATORS.sub("", text).upper()
    match = _SHAPE.fullmatch(compact)
    if match is None:
        raise PaymentReferenceError(
            "invalid_reference",
            f"La referencia de pago no tiene el formato esperado ({make_payment_reference(1234)}).",
        )
    digits, check = match.groups()
    if luhn_check_digit(digits) != int(check):
        raise PaymentReferenceError(
            "invalid_check_digit",
            "La referencia de pago tiene un error de captura (el dígito verificador no coincide).",
        )
    order_id = int(digits)
    if order_id <= 0:
        raise PaymentReferenceError("invalid_reference", "La referencia de pago no corresponde a un pedido.")
    return order_id


def find_payment_reference(concept: str) -> int | None:
    """The order id of the first valid reference found in a free-text transfer concept, if any.

    A hint for staff matching bank statements, not proof: digits typed right after a reference are
    ambiguous, so the canonical 9-digit form (ids below 10^8) is tried first, then longer forms.
    """
    if not isinstance(concept, str):
        return None
    for match in _IN_TEXT.finditer(concept):
        candidate = PREFIX + _SEPARATORS.sub("", match.group(1))
        # The digit run may have swallowed digits that follow the reference: shortest valid form wins.
        for end in range(len(PREFIX) + _MIN_DIGITS + 1, len(candidate) + 1):
            try:
                return parse_payment_reference(candidate[:end])
            except PaymentReferenceError:
                continue
    return None
