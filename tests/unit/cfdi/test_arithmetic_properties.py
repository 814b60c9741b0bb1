"""Property tests: whatever the invoices and partial payments, the builder's REP is valid."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from lxml import etree

from core.cfdi.builder import build_rep
from core.cfdi.cadena import cadena_original_native, cadena_original_xslt
from core.cfdi.model import RelatedDocument
from core.cfdi.taxes import amount_limits, prorate_taxes
from core.cfdi.validator import validate_rep

from .factories import make_signer
from .strategies import ISSUED, invoices, rep_inputs

NOW = ISSUED + dt.timedelta(minutes=5)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rep_inputs())
def test_builder_output_always_passes_the_validator(rep) -> None:  # type: ignore[no-untyped-def]
    built = build_rep(rep, make_signer())
    findings = validate_rep(built.xml, now=NOW)
    assert findings == [], findings


@SETTINGS
@given(rep_inputs(texts=True))
def test_native_cadena_equals_sat_xslt(rep) -> None:  # type: ignore[no-untyped-def]
    built = build_rep(rep, make_signer())
    root = etree.fromstring(built.xml)
    assert cadena_original_native(root) == cadena_original_xslt(root)
    assert built.cadena_original == cadena_original_xslt(root)


@settings(max_examples=40, deadline=None)
@given(rep_inputs())
def test_builder_output_parses_with_satcfdi_and_full_xsd(rep) -> None:  # type: ignore[no-untyped-def]
    from satcfdi.cfdi import CFDI

    from core.cfdi.xsd import validate_xsd

    built = build_rep(rep, make_signer())
    assert validate_xsd(etree.fromstring(built.xml), variant="full") == []
    parsed = CFDI.from_string(built.xml)
    assert len(parsed["Complemento"]["Pagos"]["Pago"][0]["DoctoRelacionado"]) == len(rep.payment.documents)


@settings(max_examples=100, deadline=None)
@given(invoices("MXN"), invoices("JPY"))
def test_installments_of_an_invoice_add_up_to_its_tax_bases(mxn, jpy) -> None:  # type: ignore[no-untyped-def]
    for currency, (total, transfers, withholdings), parts in (("MXN", mxn, 3), ("JPY", jpy, 4)):
        unit = Decimal(1) if currency == "JPY" else Decimal("0.01")
        balance = total
        bases = [Decimal(0)] * len(transfers)
        for n in range(1, parts + 1):
            paid = balance if n == parts else max(unit, (total / parts).quantize(unit))
            paid = min(paid, balance)
            doc = RelatedDocument(
                uuid="X", currency=currency, installment=n, previous_balance=balance, amount_paid=paid,
                invoice_total=total, invoice_transfers=transfers, invoice_withholdings=withholdings,
            )  # fmt: skip
            taxes = prorate_taxes(doc)
            for i, line in enumerate(taxes.transfers):
                bases[i] += line.base
                if line.rate is not None and line.amount is not None:
                    lower, upper = amount_limits(line.base, line.rate, 0 if currency == "JPY" else 2)
                    assert lower <= line.amount <= upper
            balance -= paid
            if balance == 0:
                break
        if all(t.base >= 100 * unit for t in transfers):
            assert bases == [t.base for t in transfers]
