"""Decimal helpers with SAT's rounding: half up, per-currency decimals from c_Moneda."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

from core.cfdi.catalogs import currency_decimals
from core.cfdi.errors import InvalidRepInput

_EXPONENTS = {n: Decimal(1).scaleb(-n) for n in range(0, 11)}


def unit(decimals: int) -> Decimal:
    """10^-decimals (0.01 for 2)."""
    return _EXPONENTS[decimals]


def round_half_up(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(_EXPONENTS[decimals], rounding=ROUND_HALF_UP)


def truncate(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(_EXPONENTS[decimals], rounding=ROUND_FLOOR)


def round_up(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(_EXPONENTS[decimals], rounding=ROUND_CEILING)


def decimals_of(value: Decimal) -> int:
    """Number of decimals written in ``value`` (Decimal('1.50') → 2, Decimal('3') → 0)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def decimals_for(currency: str) -> int:
    """Decimals of a currency in c_Moneda; raises InvalidRepInput for an unknown code."""
    decimals = currency_decimals(currency)
    if decimals is None:
        raise InvalidRepInput("moneda_desconocida", f"La moneda {currency!r} no está en el catálogo c_Moneda.")
    return decimals


def fmt(value: Decimal, decimals: int) -> str:
    """Fixed-point text with exactly ``decimals`` decimals (never scientific notation)."""
    return f"{round_half_up(value, decimals):.{decimals}f}"


def fmt_rate(value: Decimal) -> str:
    """TasaOCuota as SAT writes it: six decimals."""
    return f"{value.quantize(_EXPONENTS[6], rounding=ROUND_HALF_UP):.6f}"


def plain(value: Decimal) -> str:
    """Decimal as written, without exponent (Decimal('1E+1') → '10')."""
    return f"{value:f}"


def parse_decimal(text: str | None) -> Decimal | None:
    """Decimal from an XML attribute; None when absent or not a finite number."""
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
