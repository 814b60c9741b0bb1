"""REP builder: CFDI 4.0 tipo P with Pagos 2.0, sealed with the vendor's CSD.

Our own (lxml + Decimal) because satcfdi's Pagos builder mis-rounds multi-currency totals.
Arithmetic lives in :mod:`core.cfdi.taxes`; the envelope is fixed by SAT (CRP20101–CRP20123):
Moneda XXX, SubTotal 0, Total 0, Exportacion 01, UsoCFDI CP01 and one Concepto
84111506 / ACT / "Pago" / ObjetoImp 01.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree

from core.cfdi.cadena import CFDI_NS, PAGOS_NS, cadena_original
from core.cfdi.errors import InvalidRepInput
from core.cfdi.model import Payment, RelatedDocument, RepInput, TaxFactor, TaxLine
from core.cfdi.money import decimals_for, decimals_of, fmt, fmt_rate, plain, round_half_up
from core.cfdi.signing import Signer, seal
from core.cfdi.taxes import DocumentTaxes, PaymentTax, Totals, compute_totals, payment_taxes, prorate_taxes

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = (
    "http://www.sat.gob.mx/cfd/4 http://www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd "
    "http://www.sat.gob.mx/Pagos20 http://www.sat.gob.mx/sitio_internet/cfd/Pagos/Pagos20.xsd"
)
NSMAP = {"cfdi": CFDI_NS, "pago20": PAGOS_NS, "xsi": XSI_NS}
_C = "{" + CFDI_NS + "}"
_P = "{" + PAGOS_NS + "}"
ONE = Decimal(1)
_BANKED_FORMS = frozenset({"02", "03", "04", "05", "06", "28", "29"})


@dataclass(frozen=True, slots=True)
class BuiltRep:
    """A sealed REP: the XML bytes plus the figures callers store next to it."""

    xml: bytes
    cadena_original: str
    sello: str
    fecha: str
    totals: Totals


def local_timestamp(moment: datetime, time_zone: str) -> str:
    """``moment`` in the local time of ``time_zone`` as SAT wants it: ``YYYY-MM-DDThh:mm:ss``.

    A naive ``moment`` is taken as already local.
    """
    if moment.tzinfo is not None:
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidRepInput("zona_horaria_invalida", f"Zona horaria desconocida: {time_zone!r}.") from exc
        moment = moment.astimezone(zone)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _fail(code: str, message: str) -> InvalidRepInput:
    return InvalidRepInput(code, message)


def _check_decimals(value: Decimal, decimals: int, what: str, code: str) -> None:
    if value != 0 and decimals_of(value.normalize()) > decimals:
        raise _fail(code, f"{what} tiene más decimales de los que admite su moneda ({decimals}).")


def _equivalence(doc: RelatedDocument, payment: Payment) -> Decimal:
    if doc.currency == payment.currency:
        if doc.equivalence is not None and doc.equivalence != ONE:
            raise _fail("CRP20238", "EquivalenciaDR debe ser 1 cuando MonedaDR es igual a MonedaP.")
        return ONE
    if doc.equivalence is None or doc.equivalence <= 0:
        raise _fail("CRP20237", f"Falta EquivalenciaDR para la factura {doc.uuid} en {doc.currency}.")
    if decimals_of(doc.equivalence.normalize()) > 10:
        raise _fail("equivalencia_decimales", "EquivalenciaDR admite hasta 10 decimales.")
    return doc.equivalence


def check_input(rep: RepInput) -> None:
    """Refuse input that cannot give a valid REP (Spanish message, SAT code where one exists)."""
    payment = rep.payment
    texts = [
        rep.issuer.name,
        rep.receiver.name,
        rep.series,
        rep.folio,
        payment.operation_number,
        payment.payer_bank_name,
        payment.payer_account,
        payment.payee_account,
    ]
    texts += [t for doc in payment.documents for t in (doc.series, doc.folio)]
    if any(t is not None and "|" in t for t in texts):
        raise _fail("caracter_invalido", "Los datos del CFDI no pueden contener el carácter «|».")
    if any(t is not None and any(ord(c) < 0x20 and c not in "\t\n\r" for c in t) for t in texts):
        raise _fail("caracter_invalido", "Los datos del CFDI contienen caracteres de control no permitidos.")
    if payment.payment_form == "99":
        raise _fail("CRP20212", "La forma de pago no puede ser 99 (Por definir).")
    if payment.currency == "XXX":
        raise _fail("CRP20213", "La moneda del pago no puede ser XXX.")
    p_decimals = decimals_for(payment.currency)
    if payment.currency != "MXN":
        if payment.exchange_rate is None or payment.exchange_rate <= 0:
            raise _fail("CRP20214", "Falta el tipo de cambio del pago (TipoCambioP).")
        if decimals_of(payment.exchange_rate.normalize()) > 6:
            raise _fail("tipo_cambio_decimales", "TipoCambioP admite hasta 6 decimales.")
    elif payment.exchange_rate is not None and payment.exchange_rate != ONE:
        raise _fail("CRP20215", "El tipo de cambio de un pago en MXN debe ser 1.")
    if payment.amount <= 0:
        raise _fail("CRP20218", "El monto del pago debe ser mayor que cero.")
    _check_decimals(payment.amount, p_decimals, "El monto del pago", "CRP20219")
    if not payment.documents:
        raise _fail("sin_documentos", "El pago no relaciona ninguna factura.")
    if payment.payment_form not in _BANKED_FORMS and any(
        (payment.payer_bank_rfc, payment.payer_account, payment.payee_bank_rfc, payment.payee_account)
    ):
        raise _fail("CRP20221", "Las cuentas bancarias solo se registran con formas de pago bancarizadas.")
    if payment.operation_number is not None and not (1 <= len(payment.operation_number) <= 100):
        raise _fail("num_operacion_invalido", "NumOperacion debe tener de 1 a 100 caracteres.")
    converted = Decimal(0)
    seen: set[str] = set()
    for doc in payment.documents:
        key = doc.uuid.upper()
        if key in seen:
            raise _fail("documento_repetido", f"La factura {doc.uuid} aparece dos veces en el pago.")
        seen.add(key)
        if doc.currency == "XXX":
            raise _fail("CRP20236", "La moneda de la factura no puede ser XXX.")
        d = decimals_for(doc.currency)
        if doc.installment < 1:
            raise _fail("num_parcialidad_invalido", "NumParcialidad debe ser 1 o mayor.")
        if doc.previous_balance <= 0:
            raise _fail("CRP20239", f"El saldo anterior de la factura {doc.uuid} debe ser mayor que cero.")
        if doc.amount_paid <= 0:
            raise _fail("CRP20241", f"El importe pagado a la factura {doc.uuid} debe ser mayor que cero.")
        _check_decimals(doc.previous_balance, d, "El saldo anterior", "CRP20240")
        _check_decimals(doc.amount_paid, d, "El importe pagado", "CRP20242")
        if doc.outstanding_balance < 0:
            raise _fail("CRP20244", f"El importe pagado excede el saldo de la factura {doc.uuid}.")
        if doc.tax_object not in {"01", "02", "03", "04", "05", "06", "07", "08"}:
            raise _fail("CRP20245", "ObjetoImpDR no está en el catálogo c_ObjetoImp.")
        converted += doc.amount_paid / _equivalence(doc, payment)
    if converted > payment.amount:
        same = all(doc.currency == payment.currency for doc in payment.documents)
        if same or round_half_up(converted, p_decimals) > payment.amount:
            raise _fail("CRP20217", "La suma de los importes pagados excede el monto del pago.")


def _set(el: etree._Element, name: str, value: str | None) -> None:
    if value is not None:
        el.set(name, value)


def _tax_dr(parent: etree._Element, tag: str, line: TaxLine, decimals: int) -> None:
    el = etree.SubElement(parent, _P + tag)
    el.set("BaseDR", fmt(line.base, decimals))
    el.set("ImpuestoDR", line.tax)
    el.set("TipoFactorDR", line.factor.value)
    if line.factor is not TaxFactor.EXEMPT and line.rate is not None:
        el.set("TasaOCuotaDR", fmt_rate(line.rate))
        el.set("ImporteDR", fmt(line.amount or Decimal(0), decimals))


def _totales(parent: etree._Element, totals: Totals) -> None:
    el = etree.SubElement(parent, _P + "Totales")
    for name, value in (
        ("TotalRetencionesIVA", totals.withheld_iva),
        ("TotalRetencionesISR", totals.withheld_isr),
        ("TotalRetencionesIEPS", totals.withheld_ieps),
        ("TotalTrasladosBaseIVA16", totals.base_iva16),
        ("TotalTrasladosImpuestoIVA16", totals.tax_iva16),
        ("TotalTrasladosBaseIVA8", totals.base_iva8),
        ("TotalTrasladosImpuestoIVA8", totals.tax_iva8),
        ("TotalTrasladosBaseIVA0", totals.base_iva0),
        ("TotalTrasladosImpuestoIVA0", totals.tax_iva0),
        ("TotalTrasladosBaseIVAExento", totals.base_iva_exempt),
    ):
        if value is not None:
            el.set(name, fmt(value, 2))
    el.set("MontoTotalPagos", fmt(totals.total_payments, 2))


def _impuestos_p(
    parent: etree._Element, transfers: tuple[PaymentTax, ...], withholdings: tuple[PaymentTax, ...]
) -> None:
    if not transfers and not withholdings:
        return
    imp = etree.SubElement(parent, _P + "ImpuestosP")
    if withholdings:
        group = etree.SubElement(imp, _P + "RetencionesP")
        for w in withholdings:
            el = etree.SubElement(group, _P + "RetencionP")
            el.set("ImpuestoP", w.tax)
            el.set("ImporteP", fmt(w.amount or Decimal(0), w.decimals))
    if transfers:
        group = etree.SubElement(imp, _P + "TrasladosP")
        for t in transfers:
            el = etree.SubElement(group, _P + "TrasladoP")
            el.set("BaseP", fmt(t.base, t.decimals))
            el.set("ImpuestoP", t.tax)
            el.set("TipoFactorP", t.factor.value)
            if t.factor is not TaxFactor.EXEMPT and t.rate is not None:
                el.set("TasaOCuotaP", fmt_rate(t.rate))
                el.set("ImporteP", fmt(t.amount or Decimal(0), t.decimals))


def build_rep_tree(
    rep: RepInput, signer: Signer, *, substitutes: Sequence[str] = ()
) -> tuple[etree._Element, BuiltRep]:
    """Build and seal the REP; returns the lxml root and the sealed result.

    ``substitutes``: UUIDs of earlier REPs this one replaces (cancellation motivo 01), written as
    ``CfdiRelacionados`` with ``TipoRelacion="04"`` (the only relation SAT allows in a tipo P).
    """
    check_input(rep)
    payment = rep.payment
    fecha = local_timestamp(rep.issued_at, rep.time_zone)
    p_decimals = decimals_for(payment.currency)
    exchange_rate = ONE if payment.currency == "MXN" else (payment.exchange_rate or ONE)

    root = etree.Element(_C + "Comprobante", nsmap=NSMAP)
    root.set("{" + XSI_NS + "}schemaLocation", SCHEMA_LOCATION)
    root.set("Version", "4.0")
    _set(root, "Serie", rep.series)
    _set(root, "Folio", rep.folio)
    root.set("Fecha", fecha)
    root.set("Sello", "")
    root.set("NoCertificado", signer.certificate_number)
    root.set("Certificado", base64.b64encode(signer.certificate_der).decode("ascii"))
    root.set("SubTotal", "0")
    root.set("Moneda", "XXX")
    root.set("Total", "0")
    root.set("TipoDeComprobante", "P")
    root.set("Exportacion", "01")
    root.set("LugarExpedicion", rep.postal_code)

    if substitutes:
        relacionados = etree.SubElement(root, _C + "CfdiRelacionados")
        relacionados.set("TipoRelacion", "04")
        for uuid in substitutes:
            etree.SubElement(relacionados, _C + "CfdiRelacionado").set("UUID", uuid.strip().upper())
    emisor = etree.SubElement(root, _C + "Emisor")
    emisor.set("Rfc", rep.issuer.rfc)
    emisor.set("Nombre", rep.issuer.name)
    emisor.set("RegimenFiscal", rep.issuer.tax_regime)
    receptor = etree.SubElement(root, _C + "Receptor")
    receptor.set("Rfc", rep.receiver.rfc)
    receptor.set("Nombre", rep.receiver.name)
    receptor.set("DomicilioFiscalReceptor", rep.receiver.postal_code)
    receptor.set("RegimenFiscalReceptor", rep.receiver.tax_regime)
    receptor.set("UsoCFDI", "CP01")
    conceptos = etree.SubElement(root, _C + "Conceptos")
    concepto = etree.SubElement(conceptos, _C + "Concepto")
    for name, value in (
        ("ClaveProdServ", "84111506"),
        ("Cantidad", "1"),
        ("ClaveUnidad", "ACT"),
        ("Descripcion", "Pago"),
        ("ValorUnitario", "0"),
        ("Importe", "0"),
        ("ObjetoImp", "01"),
    ):
        concepto.set(name, value)

    complemento = etree.SubElement(root, _C + "Complemento")
    pagos = etree.SubElement(complemento, _P + "Pagos")
    pagos.set("Version", "2.0")

    doc_taxes: list[tuple[Decimal, DocumentTaxes]] = []
    pago = etree.Element(_P + "Pago")
    pago.set("FechaPago", local_timestamp(payment.paid_at, rep.time_zone))
    pago.set("FormaDePagoP", payment.payment_form)
    pago.set("MonedaP", payment.currency)
    pago.set("TipoCambioP", "1" if payment.currency == "MXN" else plain(exchange_rate))
    pago.set("Monto", fmt(payment.amount, p_decimals))
    _set(pago, "NumOperacion", payment.operation_number)
    _set(pago, "RfcEmisorCtaOrd", payment.payer_bank_rfc)
    _set(pago, "NomBancoOrdExt", payment.payer_bank_name)
    _set(pago, "CtaOrdenante", payment.payer_account)
    _set(pago, "RfcEmisorCtaBen", payment.payee_bank_rfc)
    _set(pago, "CtaBeneficiario", payment.payee_account)
    for doc in payment.documents:
        d = decimals_for(doc.currency)
        equivalence = _equivalence(doc, payment)
        taxes = prorate_taxes(doc)
        doc_taxes.append((equivalence, taxes))
        el = etree.SubElement(pago, _P + "DoctoRelacionado")
        el.set("IdDocumento", doc.uuid)
        _set(el, "Serie", doc.series)
        _set(el, "Folio", doc.folio)
        el.set("MonedaDR", doc.currency)
        el.set("EquivalenciaDR", "1" if equivalence == ONE else plain(equivalence))
        el.set("NumParcialidad", str(doc.installment))
        el.set("ImpSaldoAnt", fmt(doc.previous_balance, d))
        el.set("ImpPagado", fmt(doc.amount_paid, d))
        el.set("ImpSaldoInsoluto", fmt(doc.outstanding_balance, d))
        el.set("ObjetoImpDR", doc.tax_object)
        if not taxes.empty:
            imp = etree.SubElement(el, _P + "ImpuestosDR")
            if taxes.withholdings:
                group = etree.SubElement(imp, _P + "RetencionesDR")
                for line in taxes.withholdings:
                    _tax_dr(group, "RetencionDR", line, d)
            if taxes.transfers:
                group = etree.SubElement(imp, _P + "TrasladosDR")
                for line in taxes.transfers:
                    _tax_dr(group, "TrasladoDR", line, d)
    same_currency = all(doc.currency == payment.currency for doc in payment.documents)
    transfers_p, withholdings_p = payment_taxes(payment.currency, doc_taxes, same_currency=same_currency)
    _impuestos_p(pago, transfers_p, withholdings_p)
    totals = compute_totals([(round_half_up(payment.amount, p_decimals), exchange_rate, transfers_p, withholdings_p)])
    _totales(pagos, totals)
    pagos.append(pago)

    cadena = cadena_original(root)
    sello = seal(cadena, signer)
    root.set("Sello", sello)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return root, BuiltRep(xml=xml, cadena_original=cadena, sello=sello, fecha=fecha, totals=totals)


def build_rep(rep: RepInput, signer: Signer) -> BuiltRep:
    """Build, compute and seal one REP (see :func:`build_rep_tree`)."""
    return build_rep_tree(rep, signer)[1]
