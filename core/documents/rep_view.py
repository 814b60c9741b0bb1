"""What the printed REP shows, read from the stamped XML (pure: no fonts, no drawing).

:func:`read_rep` parses a stamped CFDI 4.0 tipo P with Pagos 2.0 safely and returns a
:class:`RepView` whose strings are ready to print (catalog codes come with their SAT
descriptions). :func:`verification_url` builds the QR's URL as SAT specifies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from core.cfdi import catalogs
from core.cfdi.cadena import CFDI_NS, PAGOS_NS, TFD_NS, tfd_cadena_original_native
from core.cfdi.errors import CfdiError
from core.cfdi.parsing import parse_untrusted

_C = "{" + CFDI_NS + "}"
_P = "{" + PAGOS_NS + "}"
_T = "{" + TFD_NS + "}"
VERIFY_BASE = "https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx"
TAX_NAMES = {"001": "ISR", "002": "IVA", "003": "IEPS"}
OBJETO_IMP = {
    "01": "No objeto de impuesto",
    "02": "Sí objeto de impuesto",
    "03": "Sí objeto del impuesto y no obligado al desglose",
    "04": "Sí objeto del impuesto y no causa impuesto",
    "05": "Sí objeto del impuesto, IVA crédito PODEBI",
}
_TOTAL_LABELS = (
    ("TotalRetencionesIVA", "Total retenciones IVA"),
    ("TotalRetencionesISR", "Total retenciones ISR"),
    ("TotalRetencionesIEPS", "Total retenciones IEPS"),
    ("TotalTrasladosBaseIVA16", "Base IVA 16%"),
    ("TotalTrasladosImpuestoIVA16", "IVA 16%"),
    ("TotalTrasladosBaseIVA8", "Base IVA 8%"),
    ("TotalTrasladosImpuestoIVA8", "IVA 8%"),
    ("TotalTrasladosBaseIVA0", "Base IVA 0%"),
    ("TotalTrasladosImpuestoIVA0", "IVA 0%"),
    ("TotalTrasladosBaseIVAExento", "Base IVA exento"),
    ("MontoTotalPagos", "Monto total de pagos"),
)


class NotAStampedRep(CfdiError):
    """The XML is not a stamped CFDI 4.0 payment receipt."""


@dataclass(frozen=True, slots=True)
class Party:
    rfc: str
    nombre: str
    regimen: str
    codigo_postal: str


@dataclass(frozen=True, slots=True)
class TaxLine:
    kind: str  # "Traslado" / "Retención"
    impuesto: str
    tipo_factor: str
    tasa: str
    base: str
    importe: str


@dataclass(frozen=True, slots=True)
class RelatedDoc:
    serie_folio: str
    uuid: str
    moneda: str
    equivalencia: str
    parcialidad: str
    saldo_anterior: str
    importe_pagado: str
    saldo_insoluto: str
    objeto_imp: str
    taxes: tuple[TaxLine, ...]


@dataclass(frozen=True, slots=True)
class PaymentView:
    fecha_pago: str
    forma_pago: str
    moneda: str
    tipo_cambio: str
    monto: str
    num_operacion: str
    ordenante: str
    beneficiario: str
    documents: tuple[RelatedDoc, ...]
    taxes: tuple[TaxLine, ...]


@dataclass(frozen=True, slots=True)
class RepView:
    serie: str
    folio: str
    fecha: str
    lugar_expedicion: str
    no_certificado: str
    emisor: Party
    receptor: Party
    uso_cfdi: str
    uuid: str
    fecha_timbrado: str
    no_certificado_sat: str
    rfc_prov_certif: str
    sello_cfd: str
    sello_sat: str
    tfd_cadena: str
    payments: tuple[PaymentView, ...]
    totals: tuple[tuple[str, str], ...]
    total: str

    @property
    def verification_url(self) -> str:
        return verification_url(self.uuid, self.emisor.rfc, self.receptor.rfc, self.total, self.sello_cfd)


def money(text: str | None) -> str:
    """ "1234.5" → "1,234.50" (keeps the decimals written, at least two)."""
    if not text:
        return ""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:,.{places}f}"


def verification_url(uuid: str, rfc_emisor: str, rfc_receptor: str, total: str, sello: str) -> str:
    """SAT's QR URL: id, re, rr, tt (total, 6 decimals) and fe (last 8 characters of the sello)."""
    try:
        tt = f"{Decimal(total or '0'):.6f}"
    except InvalidOperation:
        tt = "0.000000"
    return f"{VERIFY_BASE}?id={uuid}&re={rfc_emisor}&rr={rfc_receptor}&tt={tt}&fe={sello[-8:]}"


def _with_description(code: str, description: str | None) -> str:
    return f"{code} - {description}" if code and description else code


def _describe(table: str, code: str) -> str:
    if not code:
        return ""
    row = catalogs._select(table, code)
    if isinstance(row, list | tuple):
        row = row[0] if row else None
    return _with_description(code, str(row) if row else None)


def _tax_lines(parent: etree._Element | None, prefix: str) -> tuple[TaxLine, ...]:
    if parent is None:
        return ()
    lines: list[TaxLine] = []
    for tag, kind in ((f"Traslado{prefix}", "Traslado"), (f"Retencion{prefix}", "Retención")):
        for item in parent.iter(_P + tag):
            impuesto = item.get(f"Impuesto{prefix}", "")
            rate = item.get(f"TasaOCuota{prefix}", "")
            try:
                rate_text = f"{Decimal(rate) * 100:.2f}%" if rate else ""
            except InvalidOperation:
                rate_text = rate
            lines.append(
                TaxLine(
                    kind=kind,
                    impuesto=TAX_NAMES.get(impuesto, impuesto),
                    tipo_factor=item.get(f"TipoFactor{prefix}", ""),
                    tasa=rate_text,
                    base=money(item.get(f"Base{prefix}")),
                    importe=money(item.get(f"Importe{prefix}")),
                )
            )
    return tuple(lines)


def _party(el: etree._Element | None, *, receptor: bool) -> Party:
    if el is None:
        return Party("", "", "", "")
    regimen = el.get("RegimenFiscalReceptor" if receptor else "RegimenFiscal", "")
    return Party(
        rfc=el.get("Rfc", ""),
        nombre=el.get("Nombre", ""),
        regimen=_describe("C756_c_RegimenFiscal", regimen),
        codigo_postal=el.get("DomicilioFiscalReceptor", "") if receptor else "",
    )


def _payment(pago: etree._Element) -> PaymentView:
    docs = []
    for doc in pago.iter(_P + "DoctoRelacionado"):
        serie_folio = "-".join(part for part in (doc.get("Serie", ""), doc.get("Folio", "")) if part)
        docs.append(
            RelatedDoc(
                serie_folio=serie_folio,
                uuid=doc.get("IdDocumento", ""),
                moneda=doc.get("MonedaDR", ""),
                equivalencia=doc.get("EquivalenciaDR", ""),
                parcialidad=doc.get("NumParcialidad", ""),
                saldo_anterior=money(doc.get("ImpSaldoAnt")),
                importe_pagado=money(doc.get("ImpPagado")),
                saldo_insoluto=money(doc.get("ImpSaldoInsoluto")),
                objeto_imp=_with_description(doc.get("ObjetoImpDR", ""), OBJETO_IMP.get(doc.get("ObjetoImpDR", ""))),
                taxes=_tax_lines(doc.find(_P + "ImpuestosDR"), "DR"),
            )
        )
    moneda = pago.get("MonedaP", "")
    currency = catalogs._select("C756_c_Moneda", moneda) if moneda else None
    cuentas = [
        " ".join(p for p in (pago.get(rfc, ""), pago.get(cta, "")) if p)
        for rfc, cta in (("RfcEmisorCtaOrd", "CtaOrdenante"), ("RfcEmisorCtaBen", "CtaBeneficiario"))
    ]
    return PaymentView(
        fecha_pago=pago.get("FechaPago", "").replace("T", " "),
        forma_pago=_describe("C756_c_FormaPago", pago.get("FormaDePagoP", "")),
        moneda=_with_description(moneda, str(currency[0]) if isinstance(currency, list | tuple) else None),
        tipo_cambio=pago.get("TipoCambioP", ""),
        monto=money(pago.get("Monto")),
        num_operacion=pago.get("NumOperacion", ""),
        ordenante=" / ".join(p for p in (pago.get("NomBancoOrdExt", ""), cuentas[0]) if p),
        beneficiario=cuentas[1],
        documents=tuple(docs),
        taxes=_tax_lines(pago.find(_P + "ImpuestosP"), "P"),
    )


def read_rep(stamped_xml: bytes) -> RepView:
    """Parse a stamped REP; raise :class:`NotAStampedRep` (or ``UnsafeXml``) otherwise."""
    root = parse_untrusted(stamped_xml)
    if root.tag != _C + "Comprobante" or root.get("TipoDeComprobante") != "P":
        raise NotAStampedRep("no_es_rep", "El XML no es un comprobante de recepción de pagos (tipo P).")
    tfd = root.find(f"{_C}Complemento/{_T}TimbreFiscalDigital")
    pagos = root.find(f"{_C}Complemento/{_P}Pagos")
    if tfd is None or pagos is None:
        raise NotAStampedRep("rep_sin_timbre", "El complemento de pago no está timbrado o no contiene Pagos 2.0.")
    totales = pagos.find(_P + "Totales")
    totals = tuple(
        (label, money(totales.get(attr))) for attr, label in _TOTAL_LABELS if totales is not None and totales.get(attr)
    )
    receptor = root.find(_C + "Receptor")
    return RepView(
        serie=root.get("Serie", ""),
        folio=root.get("Folio", ""),
        fecha=root.get("Fecha", "").replace("T", " "),
        lugar_expedicion=root.get("LugarExpedicion", ""),
        no_certificado=root.get("NoCertificado", ""),
        emisor=_party(root.find(_C + "Emisor"), receptor=False),
        receptor=_party(receptor, receptor=True),
        uso_cfdi="CP01 - Pagos" if receptor is not None and receptor.get("UsoCFDI") == "CP01" else "",
        uuid=tfd.get("UUID", ""),
        fecha_timbrado=tfd.get("FechaTimbrado", "").replace("T", " "),
        no_certificado_sat=tfd.get("NoCertificadoSAT", ""),
        rfc_prov_certif=tfd.get("RfcProvCertif", ""),
        sello_cfd=root.get("Sello", ""),
        sello_sat=tfd.get("SelloSAT", ""),
        tfd_cadena=tfd_cadena_original_native(tfd),
        payments=tuple(_payment(p) for p in pagos.iter(_P + "Pago")),
        totals=totals,
        total=root.get("Total", "0"),
    )
