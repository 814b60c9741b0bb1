"""Demo invoices: a sealed CFDI 4.0 ingreso (PPD by default) from a vendor to its client.

For ``timbrado demo`` and the tests. The invoice is built with lxml, sealed with the vendor's CSD over
the cadena original, and stamped by a PAC (the sandbox PAC in the demo), so it can be registered as
the document a payment complement refers to. Options cover what the tests need: PUE, another
emitter or receiver, several currencies, IVA 16/8/0/exento, ISR and IVA retentions, no taxes
(ObjetoImp 01).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from lxml import etree

from core.cfdi.cadena import CFDI_NS, cadena_original
from core.cfdi.money import decimals_for
from core.cfdi.signing import Signer, seal

if TYPE_CHECKING:
    from core.pac.base import Pac

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_C = "{" + CFDI_NS + "}"
_SCHEMA_LOCATION = "http://www.sat.gob.mx/cfd/4 http://www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd"
VENDOR_RFC = "EKU9003173C9"
VENDOR_NAME = "ESCUELA KEMPER URGATE"
CLIENT_RFC = "URE180429TM6"
CLIENT_NAME = "UNIVERSIDAD ROBOTICA ESPAÑOLA"


@dataclass(frozen=True, slots=True)
class Tax:
    """A concept tax: ``tax`` 001 ISR / 002 IVA; ``rate`` None for Exento."""

    tax: str = "002"
    rate: Decimal | None = Decimal("0.160000")
    withholding: bool = False


IVA16 = Tax()
IVA8 = Tax(rate=Decimal("0.080000"))
IVA0 = Tax(rate=Decimal("0.000000"))
EXENTO = Tax(rate=None)
RET_ISR10 = Tax("001", Decimal("0.100000"), withholding=True)
RET_IVA = Tax("002", Decimal("0.106667"), withholding=True)


def _default_issued_at() -> dt.datetime:
    return dt.datetime(2026, 11, 20, 17, 0, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class InvoiceSpec:
    """What the invoice says. ``issued_at`` must be within the PAC's 72-hour window when stamped."""

    subtotal: Decimal = Decimal("1000.00")
    taxes: tuple[Tax, ...] = (IVA16,)
    currency: str = "MXN"
    exchange_rate: Decimal | None = None
    metodo_pago: str = "PPD"
    tipo: str = "I"
    emisor_rfc: str = VENDOR_RFC
    emisor_nombre: str = VENDOR_NAME
    emisor_regimen: str = "601"
    receptor_rfc: str = CLIENT_RFC
    receptor_nombre: str = CLIENT_NAME
    receptor_codigo_postal: str = "86991"
    receptor_regimen: str = "601"
    lugar_expedicion: str = "06600"
    serie: str = "F"
    folio: str = "1001"
    descripcion: str = "Servicios de soporte"
    issued_at: dt.datetime = field(default_factory=_default_issued_at)
    utc_offset_hours: int = -6  # the Fecha is local time at LugarExpedicion


def _q(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _fmt(value: Decimal, decimals: int) -> str:
    return f"{_q(value, decimals):.{decimals}f}"


def build_invoice(spec: InvoiceSpec, signer: Signer) -> bytes:
    """A sealed (not yet stamped) CFDI 4.0 invoice, sealed by ``signer`` (the emitter's CSD)."""
    d = decimals_for(spec.currency)
    sub = _q(spec.subtotal, d)
    transfers = [(t, _q(sub * t.rate, d) if t.rate is not None else None) for t in spec.taxes if not t.withholding]
    withholdings = [(t, _q(sub * (t.rate or 0), d)) for t in spec.taxes if t.withholding]
    total_t = sum((a for _, a in transfers if a is not None), Decimal(0))
    total_w = sum((a for _, a in withholdings), Decimal(0))
    total = sub + total_t - total_w
    local = spec.issued_at.astimezone(dt.timezone(dt.timedelta(hours=spec.utc_offset_hours)))
    root = etree.Element(_C + "Comprobante", nsmap={"cfdi": CFDI_NS, "xsi": XSI})
    root.set("{" + XSI + "}schemaLocation", _SCHEMA_LOCATION)
    attrs = [
        ("Version", "4.0"), ("Serie", spec.serie), ("Folio", spec.folio),
        ("Fecha", local.strftime("%Y-%m-%dT%H:%M:%S")),
        ("Sello", ""), ("FormaPago", "99" if spec.metodo_pago == "PPD" else "03"),
        ("NoCertificado", signer.certificate_number),
        ("Certificado", base64.b64encode(signer.certificate_der).decode()),
        ("SubTotal", _fmt(sub, d)), ("Moneda", spec.currency),
    ]  # fmt: skip
    if spec.currency != "MXN":
        attrs.append(("TipoCambio", str(spec.exchange_rate or Decimal("17.5"))))
    attrs += [("Total", _fmt(total, d)), ("TipoDeComprobante", spec.tipo), ("Exportacion", "01"),
              ("MetodoPago", spec.metodo_pago), ("LugarExpedicion", spec.lugar_expedicion)]  # fmt: skip
    for k, v in attrs:
        root.set(k, v)
    etree.SubElement(root, _C + "Emisor", Rfc=spec.emisor_rfc, Nombre=spec.emisor_nombre,
                     RegimenFiscal=spec.emisor_regimen)  # fmt: skip
    etree.SubElement(root, _C + "Receptor", Rfc=spec.receptor_rfc, Nombre=spec.receptor_nombre,
                     DomicilioFiscalReceptor=spec.receptor_codigo_postal,
                     RegimenFiscalReceptor=spec.receptor_regimen, UsoCFDI="G03")  # fmt: skip
    conceptos = etree.SubElement(root, _C + "Conceptos")
    concepto = etree.SubElement(
        conceptos, _C + "Concepto", ClaveProdServ="81112100", Cantidad="1", ClaveUnidad="E48",
        Descripcion=spec.descripcion, ValorUnitario=_fmt(sub, d), Importe=_fmt(sub, d),
        ObjetoImp="02" if spec.taxes else "01",
    )  # fmt: skip

    def tax_attrs(t: Tax, amount: Decimal | None) -> dict[str, str]:
        out = {"Base": _fmt(sub, d), "Impuesto": t.tax, "TipoFactor": "Exento" if t.rate is None else "Tasa"}
        if t.rate is not None:
            out["TasaOCuota"] = f"{t.rate:.6f}"
            out["Importe"] = _fmt(amount or Decimal(0), d)
        return out

    if spec.taxes:
        imp = etree.SubElement(concepto, _C + "Impuestos")
        if transfers:
            group = etree.SubElement(imp, _C + "Traslados")
            for t, a in transfers:
                etree.SubElement(group, _C + "Traslado", **tax_attrs(t, a))
        if withholdings:
            group = etree.SubElement(imp, _C + "Retenciones")
            for t, a in withholdings:
                etree.SubElement(group, _C + "Retencion", **tax_attrs(t, a))
        summary = etree.SubElement(root, _C + "Impuestos")
        if withholdings:
            summary.set("TotalImpuestosRetenidos", _fmt(total_w, d))
        if any(a is not None for _, a in transfers):
            summary.set("TotalImpuestosTrasladados", _fmt(total_t, d))
        if withholdings:
            group = etree.SubElement(summary, _C + "Retenciones")
            by_tax: dict[str, Decimal] = {}
            for t, a in withholdings:
                by_tax[t.tax] = by_tax.get(t.tax, Decimal(0)) + a
            for tax, amount in by_tax.items():
                etree.SubElement(group, _C + "Retencion", Impuesto=tax, Importe=_fmt(amount, d))
        if transfers:
            group = etree.SubElement(summary, _C + "Traslados")
            for t, a in transfers:
                etree.SubElement(group, _C + "Traslado", **tax_attrs(t, a))
    root.set("Sello", seal(cadena_original(root), signer))
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return xml


async def stamped_invoice(spec: InvoiceSpec, signer: Signer, pac: Pac) -> bytes:
    """Build, seal and stamp an invoice with ``pac``; returns the XML with its TimbreFiscalDigital."""
    result = await pac.stamp(build_invoice(spec, signer), idempotency_key="")
    return result.xml
