"""The local validator names each broken SAT rule by its code, on REPs made here or elsewhere."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from core.cfdi.builder import build_rep
from core.cfdi.validator import Installment, validate_rep

from .factories import UTC, make_signer, simple_rep

NOW = dt.datetime(2025, 3, 10, 19, 0, tzinfo=UTC)
P = "{http://www.sat.gob.mx/Pagos20}"
UUID = "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8"


@pytest.fixture(scope="module")
def rep_xml() -> bytes:
    return build_rep(simple_rep(), make_signer()).xml


def codes(xml: bytes | etree._Element, **kwargs: object) -> set[str]:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("check_seal", False)
    return {f.code for f in validate_rep(xml, **kwargs)}  # type: ignore[arg-type]


def mutate(xml: bytes, xpath: str, attribute: str, value: str | None) -> etree._Element:
    root = etree.fromstring(xml)
    ns = {"cfdi": "http://www.sat.gob.mx/cfd/4", "pago20": "http://www.sat.gob.mx/Pagos20"}
    for el in root.xpath(xpath, namespaces=ns):
        if value is None:
            del el.attrib[attribute]
        else:
            el.set(attribute, value)
    return root


@pytest.mark.parametrize(
    ("xpath", "attribute", "value", "code"),
    [
        ("/cfdi:Comprobante", "TipoDeComprobante", "I", "CRP20101"),
        ("/cfdi:Comprobante", "Exportacion", "02", "CRP20102"),
        ("/cfdi:Comprobante", "SubTotal", "1", "CRP20103"),
        ("/cfdi:Comprobante", "Moneda", "MXN", "CRP20104"),
        ("/cfdi:Comprobante", "FormaPago", "03", "CRP20105"),
        ("/cfdi:Comprobante", "MetodoPago", "PPD", "CRP20106"),
        ("/cfdi:Comprobante", "Total", "1", "CRP20110"),
        ("//cfdi:Concepto", "ClaveProdServ", "01010101", "CRP20113"),
        ("//cfdi:Concepto", "Descripcion", "Pago de factura", "CRP20118"),
        ("//cfdi:Concepto", "ObjetoImp", "02", "CRP20122"),
        ("/cfdi:Comprobante", "LugarExpedicion", "00001", "CFDI40126"),
        ("//pago20:Pago", "FormaDePagoP", "99", "CRP20212"),
        ("//pago20:Pago", "TipoCambioP", "1.5", "CRP20215"),
        ("//pago20:Pago", "Monto", "579.99", "CRP20217"),
        ("//pago20:Pago", "Monto", "0", "CRP20218"),
        ("//pago20:Pago", "Monto", "580.001", "CRP20219"),
        ("//pago20:Pago", "FormaDePagoP", "01", None),
        ("//pago20:DoctoRelacionado", "EquivalenciaDR", "2", "CRP20238"),
        ("//pago20:DoctoRelacionado", "ImpSaldoAnt", "0", "CRP20239"),
        ("//pago20:DoctoRelacionado", "ImpPagado", "0", "CRP20241"),
        ("//pago20:DoctoRelacionado", "ImpPagado", "580.005", "CRP20242"),
        ("//pago20:DoctoRelacionado", "ImpSaldoInsoluto", "579.00", "CRP20244"),
        ("//pago20:DoctoRelacionado", "ObjetoImpDR", "01", "CRP20247"),
        ("//pago20:TrasladoDR", "BaseDR", "400.00", "CRP20261"),
        ("//pago20:TrasladoDR", "TasaOCuotaDR", "0.150000", "CRP20260"),
        ("//pago20:TrasladoP", "BaseP", "501.00", "CRP20268"),
        ("//pago20:TrasladoP", "ImporteP", "80.50", "CRP20274"),
        ("//pago20:Totales", "TotalTrasladosBaseIVA16", "499.00", "CRP20204"),
        ("//pago20:Totales", "TotalTrasladosImpuestoIVA16", "81.00", "CRP20205"),
        ("//pago20:Totales", "MontoTotalPagos", "581.00", "CRP20211"),
        ("//pago20:Totales", "TotalTrasladosImpuestoIVA16", None, "CRP20273"),
    ],
)
def test_each_broken_rule_is_reported_with_its_sat_code(
    rep_xml: bytes, xpath: str, attribute: str, value: str | None, code: str | None
) -> None:
    found = codes(mutate(rep_xml, xpath, attribute, value), check_xsd=False)
    if code is None:
        assert found == set()
    else:
        assert code in found


def test_foreign_currency_payment_without_tipo_cambio_is_crp20214(rep_xml: bytes) -> None:
    root = mutate(rep_xml, "//pago20:Pago", "TipoCambioP", None)
    root.find(f".//{P}Pago").set("MonedaP", "USD")  # type: ignore[union-attr]
    assert "CRP20214" in codes(root, check_xsd=False)


def test_bank_accounts_with_cash_payment_are_reported(rep_xml: bytes) -> None:
    root = mutate(rep_xml, "//pago20:Pago", "FormaDePagoP", "01")
    root.find(f".//{P}Pago").set("CtaOrdenante", "1234567890")  # type: ignore[union-attr]
    assert "CRP20224" in codes(root, check_xsd=False)


def test_valid_rep_has_no_findings_including_sello(rep_xml: bytes) -> None:
    assert validate_rep(rep_xml, now=NOW) == []


def test_tampered_amount_breaks_the_sello(rep_xml: bytes) -> None:
    tampered = rep_xml.replace(b'NumOperacion="SPEI-123"', b'NumOperacion="SPEI-124"')
    assert {f.code for f in validate_rep(tampered, now=NOW)} == {"CFDI40102"}


def test_fecha_older_than_72_hours_or_in_the_future_is_out_of_range(rep_xml: bytes) -> None:
    assert "401" in codes(rep_xml, now=NOW + dt.timedelta(hours=73))
    assert "401" in codes(rep_xml, now=NOW - dt.timedelta(hours=2))
    assert "401" not in codes(rep_xml, pac_time=NOW + dt.timedelta(hours=71))


def test_history_requires_the_next_num_parcialidad_and_the_last_saldo_insoluto(rep_xml: bytes) -> None:
    ok = {UUID: [Installment(0, Decimal("0"), Decimal("0"), Decimal("1160.00"))]}
    assert codes(rep_xml, history={}) == set()
    assert codes(rep_xml, history={UUID: []}) == set()
    gap = {UUID: [Installment(1, Decimal("1160.00"), Decimal("100.00"), Decimal("1060.00"))]}
    assert {"num_parcialidad_fuera_de_secuencia", "saldo_anterior_no_coincide"} <= codes(rep_xml, history=gap)
    paid = {UUID: [Installment(1, Decimal("1160.00"), Decimal("1160.00"), Decimal("0.00"))]}
    assert "factura_liquidada" in codes(rep_xml, history=paid)
    assert codes(rep_xml, history=ok) == set()


def test_cross_currency_monto_outside_limits_is_crp20276() -> None:
    from core.cfdi.model import RelatedDocument

    doc = RelatedDocument(
        uuid=UUID, currency="MXN", installment=1, previous_balance=Decimal("2000.00"), amount_paid=Decimal("1740.00"),
        tax_object="01", equivalence=Decimal("17.4"),
    )  # fmt: skip
    rep = simple_rep(amount=Decimal("100.00"), currency="USD", exchange_rate=Decimal("17.4"), documents=(doc,))
    xml = build_rep(rep, make_signer()).xml
    assert codes(xml, check_xsd=False) == set()
    low = mutate(xml, "//pago20:Pago", "Monto", "99.00")
    assert "CRP20276" in codes(low, check_xsd=False)
    lower = mutate(xml, "//pago20:Pago", "Monto", "50.00")
    assert "CRP20275" in codes(lower, check_xsd=False)


def test_xsd_violations_are_reported(rep_xml: bytes) -> None:
    root = mutate(rep_xml, "//cfdi:Emisor", "RegimenFiscal", "999")
    assert "XSD" in codes(root)


def test_a_document_that_is_not_a_cfdi_is_refused() -> None:
    assert codes(b"<factura><total>1</total></factura>") == {"no_es_cfdi40"}
