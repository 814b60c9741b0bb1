"""The REP builder produces documents that SAT's schemas, our validator and satcfdi accept."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree

from core.cfdi.builder import build_rep, local_timestamp
from core.cfdi.cadena import cadena_original_xslt
from core.cfdi.errors import InvalidRepInput
from core.cfdi.model import IVA, RelatedDocument, TaxFactor, TaxLine
from core.cfdi.signing import load_certificate_b64, verify_seal
from core.cfdi.validator import validate_rep
from core.cfdi.xsd import validate_xsd

from .factories import UTC, make_signer, simple_rep

NOW = dt.datetime(2025, 3, 10, 19, 0, tzinfo=UTC)


def check_independently(xml: bytes) -> etree._Element:
    """XSD (SAT's full schemas), sello over SAT's XSLT cadena, satcfdi parse."""
    from satcfdi.cfdi import CFDI

    root = etree.fromstring(xml)
    assert validate_xsd(root, variant="full") == []
    certificate = load_certificate_b64(root.get("Certificado", ""))
    assert certificate is not None
    assert verify_seal(cadena_original_xslt(root), root.get("Sello", ""), certificate)
    parsed = CFDI.from_string(xml)
    assert parsed["TipoDeComprobante"] == "P"
    return root


def test_simple_mxn_rep_passes_xsd_seal_validator_and_satcfdi() -> None:
    built = build_rep(simple_rep(), make_signer())
    check_independently(built.xml)
    assert validate_rep(built.xml, now=NOW) == []


def test_fecha_is_written_in_local_time_of_lugar_de_expedicion_without_offset() -> None:
    moment = dt.datetime(2025, 7, 1, 0, 30, tzinfo=UTC)
    assert local_timestamp(moment, "America/Mexico_City") == "2025-06-30T18:30:00"
    assert local_timestamp(moment, "America/Tijuana") == "2025-06-30T17:30:00"
    assert local_timestamp(moment, "America/Cancun") == "2025-06-30T19:30:00"


def test_totals_of_a_half_payment_of_an_iva16_invoice() -> None:
    built = build_rep(simple_rep(amount=Decimal("580.00")), make_signer())
    root = etree.fromstring(built.xml)
    totales = root.find(".//{http://www.sat.gob.mx/Pagos20}Totales")
    assert totales is not None
    assert totales.get("TotalTrasladosBaseIVA16") == "500.00"
    assert totales.get("TotalTrasladosImpuestoIVA16") == "80.00"
    assert totales.get("MontoTotalPagos") == "580.00"


def test_usd_payment_of_mxn_invoice_converts_totals_to_mxn() -> None:
    doc = RelatedDocument(
        uuid="11111111-2222-4333-8444-555555555555",
        currency="MXN",
        installment=1,
        previous_balance=Decimal("2000.00"),
        amount_paid=Decimal("1740.00"),
        equivalence=Decimal("17.4"),
        invoice_total=Decimal("2000.00"),
        invoice_transfers=(TaxLine(Decimal("1724.14"), IVA, TaxFactor.RATE, Decimal("0.16"), Decimal("275.86")),),
    )
    rep = simple_rep(amount=Decimal("100.00"), currency="USD", exchange_rate=Decimal("17.4"), documents=(doc,))
    built = build_rep(rep, make_signer())
    check_independently(built.xml)
    assert validate_rep(built.xml, now=NOW) == []
    assert built.totals.total_payments == Decimal("1740.00")


def test_jpy_invoice_amounts_have_no_decimals() -> None:
    doc = RelatedDocument(
        uuid="11111111-2222-4333-8444-555555555556",
        currency="JPY",
        installment=2,
        previous_balance=Decimal("50000"),
        amount_paid=Decimal("12345"),
        invoice_total=Decimal("116000"),
        invoice_transfers=(TaxLine(Decimal("100000"), IVA, TaxFactor.RATE, Decimal("0.16"), Decimal("16000")),),
    )
    rep = simple_rep(amount=Decimal("12345"), currency="JPY", exchange_rate=Decimal("0.1234"), documents=(doc,))
    built = build_rep(rep, make_signer())
    root = check_independently(built.xml)
    assert validate_rep(built.xml, now=NOW) == []
    docto = root.find(".//{http://www.sat.gob.mx/Pagos20}DoctoRelacionado")
    assert docto is not None
    assert docto.get("ImpPagado") == "12345"
    assert docto.get("ImpSaldoInsoluto") == "37655"


@pytest.mark.parametrize(
    ("amount_paid", "code"),
    [
        (Decimal("0"), "CRP20241"),
        (Decimal("-5.00"), "CRP20241"),
        (Decimal("10.005"), "CRP20242"),
        (Decimal("1160.01"), "CRP20244"),
    ],
)
def test_builder_refuses_impossible_amounts_paid(amount_paid: Decimal, code: str) -> None:
    rep = simple_rep(amount=Decimal("2000.00"))
    doc = replace(rep.payment.documents[0], amount_paid=amount_paid)
    rep = replace(rep, payment=replace(rep.payment, documents=(doc,)))
    with pytest.raises(InvalidRepInput) as excinfo:
        build_rep(rep, make_signer())
    assert excinfo.value.code == code


def test_builder_refuses_forma_de_pago_99_and_moneda_xxx() -> None:
    rep = simple_rep()
    with pytest.raises(InvalidRepInput, match="CRP20212"):
        build_rep(replace(rep, payment=replace(rep.payment, payment_form="99")), make_signer())
    with pytest.raises(InvalidRepInput, match="CRP20213"):
        build_rep(replace(rep, payment=replace(rep.payment, currency="XXX")), make_signer())


def test_builder_refuses_pipe_in_num_operacion() -> None:
    rep = simple_rep()
    with pytest.raises(InvalidRepInput) as excinfo:
        build_rep(replace(rep, payment=replace(rep.payment, operation_number="12|34")), make_signer())
    assert excinfo.value.code == "caracter_invalido"


def test_builder_refuses_amount_paid_above_monto() -> None:
    rep = simple_rep(amount=Decimal("580.00"))
    rep = replace(rep, payment=replace(rep.payment, amount=Decimal("579.99")))
    with pytest.raises(InvalidRepInput, match="CRP20217"):
        build_rep(rep, make_signer())


def test_builder_refuses_foreign_currency_without_exchange_rate() -> None:
    rep = simple_rep(currency="USD")
    with pytest.raises(InvalidRepInput, match="CRP20214"):
        build_rep(rep, make_signer())


def test_object_imp_01_and_03_documents_carry_no_impuestos_dr() -> None:
    for objeto in ("01", "03"):
        rep = simple_rep()
        doc = replace(rep.payment.documents[0], tax_object=objeto)
        built = build_rep(replace(rep, payment=replace(rep.payment, documents=(doc,))), make_signer())
        assert b"ImpuestosDR" not in built.xml
        assert b"ImpuestosP" not in built.xml
        assert validate_rep(built.xml, now=NOW) == []


def test_signer_repr_does_not_expose_the_key() -> None:
    assert "PRIVATE" not in repr(make_signer()) and "key" not in repr(make_signer()).lower()
