"""Hypothesis strategies: random invoices, partial payments and REP inputs (MXN, USD, EUR, JPY)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, Decimal

from hypothesis import strategies as st

from core.cfdi.model import IEPS, ISR, IVA, Issuer, Payment, Receiver, RelatedDocument, RepInput, TaxFactor, TaxLine
from core.cfdi.money import round_half_up

UTC = dt.UTC
CURRENCIES = ("MXN", "USD", "EUR", "JPY")
DECIMALS = {"MXN": 2, "USD": 2, "EUR": 2, "JPY": 0}
ISSUED = dt.datetime(2025, 3, 10, 18, 30, tzinfo=UTC)

# (tax, factor, rate, withholding)
TAX_KINDS = (
    (IVA, TaxFactor.RATE, Decimal("0.160000"), False),
    (IVA, TaxFactor.RATE, Decimal("0.080000"), False),
    (IVA, TaxFactor.RATE, Decimal("0.000000"), False),
    (IVA, TaxFactor.EXEMPT, None, False),
    (IEPS, TaxFactor.RATE, Decimal("0.265000"), False),
    (ISR, TaxFactor.RATE, Decimal("0.100000"), True),
    (ISR, TaxFactor.RATE, Decimal("0.012500"), True),
    (IVA, TaxFactor.RATE, Decimal("0.106667"), True),
)

xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="|") | st.sampled_from(" \t\n"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip(" \t\n") != "")


def _amount(draw: st.DrawFn, decimals: int, low: int, high: int) -> Decimal:
    cents = draw(st.integers(min_value=low, max_value=high))
    return Decimal(cents).scaleb(-decimals)


@st.composite
def invoices(draw: st.DrawFn, currency: str) -> tuple[Decimal, tuple[TaxLine, ...], tuple[TaxLine, ...]]:
    d = DECIMALS[currency]
    subtotal = _amount(draw, d, 100, 10**9 if d == 0 else 10**8)
    kinds = draw(st.lists(st.sampled_from(TAX_KINDS), min_size=1, max_size=4, unique=True))
    transfers: list[TaxLine] = []
    withholdings: list[TaxLine] = []
    for tax, factor, rate, withholding in kinds:
        # each tax on a share of the subtotal (as invoices with several conceptos would have)
        base = round_half_up(subtotal * Decimal(draw(st.integers(1, 100))) / 100, d)
        if base <= 0:
            continue
        amount = None if rate is None else round_half_up(base * rate, d)
        line = TaxLine(base, tax, factor, rate, amount)
        (withholdings if withholding else transfers).append(line)
    if not transfers and not withholdings:
        transfers.append(
            TaxLine(subtotal, IVA, TaxFactor.RATE, Decimal("0.160000"), round_half_up(subtotal * Decimal("0.16"), d))
        )
    total = (
        subtotal
        + sum((t.amount or 0 for t in transfers), Decimal(0))
        - sum((w.amount or 0 for w in withholdings), Decimal(0))
    )
    if total <= 0:
        withholdings = []
        total = subtotal + sum((t.amount or 0 for t in transfers), Decimal(0))
    return total, tuple(transfers), tuple(withholdings)


@st.composite
def rep_inputs(draw: st.DrawFn, *, texts: bool = False) -> RepInput:
    p_currency = draw(st.sampled_from(CURRENCIES))
    mxn_per = {
        "MXN": Decimal(1),
        "USD": Decimal(draw(st.integers(160000, 210000))).scaleb(-4),
        "EUR": Decimal(draw(st.integers(180000, 230000))).scaleb(-4),
        "JPY": Decimal(draw(st.integers(1000, 1600))).scaleb(-4),
    }
    documents: list[RelatedDocument] = []
    converted = Decimal(0)
    for i in range(draw(st.integers(1, 3))):
        currency = draw(st.sampled_from(CURRENCIES))
        d = DECIMALS[currency]
        total, transfers, withholdings = draw(invoices(currency))
        previous = draw(st.integers(1, int(total.scaleb(d))))
        previous_balance = Decimal(previous).scaleb(-d)
        paid = Decimal(draw(st.integers(1, previous))).scaleb(-d)
        installment = 1 if previous_balance == total else draw(st.integers(2, 9))
        if currency == p_currency:
            equivalence = None
            converted += paid
        else:
            equivalence = (mxn_per[p_currency] / mxn_per[currency]).quantize(Decimal("0.0000000001"))
            converted += paid / equivalence
        documents.append(
            RelatedDocument(
                uuid=f"6F1A2B3C-4D5E-4F60-8172-8394{i:08X}",
                currency=currency,
                installment=installment,
                previous_balance=previous_balance,
                amount_paid=paid,
                tax_object=draw(st.sampled_from(("01", "02", "02", "02", "03"))),
                series=draw(xml_text) if texts else "F",
                folio=str(draw(st.integers(1, 10**6))),
                equivalence=equivalence,
                invoice_total=total,
                invoice_transfers=transfers,
                invoice_withholdings=withholdings,
            )
        )
    dp = DECIMALS[p_currency]
    monto = converted.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_CEILING)
    monto += Decimal(draw(st.integers(0, 3))).scaleb(-dp)
    name = draw(xml_text) if texts else "ESCUELA KEMPER URGATE"
    return RepInput(
        issuer=Issuer("EKU9003173C9", name, "601"),
        receiver=Receiver("URE180429TM6", draw(xml_text) if texts else "UNIVERSIDAD ROBOTICA", "86991", "601"),
        postal_code="06600",
        time_zone="America/Mexico_City",
        issued_at=ISSUED,
        series="P",
        folio=str(draw(st.integers(1, 10**6))),
        payment=Payment(
            paid_at=ISSUED - dt.timedelta(hours=draw(st.integers(1, 2000))),
            payment_form=draw(st.sampled_from(("01", "02", "03", "28"))),
            currency=p_currency,
            amount=monto,
            exchange_rate=None if p_currency == "MXN" else mxn_per[p_currency],
            documents=tuple(documents),
            operation_number=draw(xml_text) if texts else None,
        ),
    )
