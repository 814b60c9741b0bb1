"""Signed CFDI 4.0 ingreso invoices with a TimbreFiscalDigital, for the stamping tests.

Built with lxml, sealed with a CSD issued by the project's test CA (``tests/support/certs.py``)
over the cadena original, and stamped by the built-in sandbox PAC.  Options cover the hostile
cases: PUE, another emitter or receiver, several currencies, IVA 16/8/0/exento, ISR and IVA
retentions, no taxes (ObjetoImp 01).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from lxml import etree

from core.cfdi.cadena import CFDI_NS, cadena_original
from core.cfdi.money import decimals_for
from core.cfdi.signing import RsaSigner, seal
from core.clock import FrozenClock
from core.pac.sandbox import SandboxIdentity, SandboxPac
from tests.support.certs import IssuedCredential, TestCa, pooled_key

UTC = dt.UTC
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_C = "{" + CFDI_NS + "}"
VENDOR_RFC = "EKU9003173C9"
VENDOR_NAME = "ESCUELA KEMPER URGATE"
CLIENT_RFC = "URE180429TM6"
CLIENT_NAME = "UNIVERSIDAD ROBOTICA ESPAÑOLA"
VALID_FROM = dt.datetime(2024, 1, 1, tzinfo=UTC)
VALID_UNTIL = dt.datetime(2029, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1)
def sat_ca() -> TestCa:
    return TestCa.sat_like()


@lru_cache(maxsize=16)
def csd(
    rfc: str = VENDOR_RFC,
    not_before: dt.datetime = VALID_FROM,
    not_after: dt.datetime = VALID_UNTIL,
    slot: int = 11,
) -> IssuedCredential:
    return sat_ca().issue(kind="csd", rfc=rfc, not_before=not_before, not_after=not_after, key=pooled_key(slot))


@lru_cache(maxsize=1)
def invoice_pac_identity() -> SandboxIdentity:
    return SandboxIdentity.generate(now=VALID_FROM, certificate_number="99001000000500000099")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class InvoiceSpec:
    subtotal: Decimal = Decimal("1000.00")
    taxes: tuple[Tax, ...] = (IVA16,)
    currency: str = "MXN"
    exchange_rate: Decimal | None = None
    metodo_pago: str = "PPD"
    tipo: str = "I"
    emisor_rfc: str = VENDOR_RFC
    receptor_rfc: str = CLIENT_RFC
    serie: str = "F"
    folio: str = "1001"
    issued_at: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 11, 20, 17, 0, tzinfo=UTC))


def _q(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _fmt(value: Decimal, decimals: int) -> str:
    return f"{_q(value, decimals):.{decimals}f}"


def build_invoice(spec: InvoiceSpec, credential: IssuedCredential | None = None) -> bytes:
    """A sealed (not yet stamped) invoice."""
    cred = credential or csd(spec.emisor_rfc)
    signer = RsaSigner(cred.private_key, cred.certificate)
    d = decimals_for(spec.currency)
    sub = _q(spec.subtotal, d)
    transfers = [(t, _q(sub * t.rate, d) if t.rate is not None else None) for t in spec.taxes if not t.withholding]
    withholdings = [(t, _q(sub * (t.rate or 0), d)) for t in spec.taxes if t.withholding]
    total_t = sum((a for _, a in transfers if a is not None), Decimal(0))
    total_w = sum((a for _, a in withholdings), Decimal(0))
    total = sub + total_t - total_w
    local = spec.issued_at.astimezone(dt.timezone(dt.timedelta(hours=-6)))
    root = etree.Element(_C + "Comprobante", nsmap={"cfdi": CFDI_NS, "xsi": XSI})
    root.set(
        "{" + XSI + "}schemaLocation",
        "http://www.sat.gob.mx/cfd/4 http://www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd",
    )
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
              ("MetodoPago", spec.metodo_pago), ("LugarExpedicion", "06600")]  # fmt: skip
    for k, v in attrs:
        root.set(k, v)
    em = etree.SubElement(root, _C + "Emisor", Rfc=spec.emisor_rfc, Nombre=VENDOR_NAME, RegimenFiscal="601")
    del em
    etree.SubElement(root, _C + "Receptor", Rfc=spec.receptor_rfc, Nombre=CLIENT_NAME,
                     DomicilioFiscalReceptor="86991", RegimenFiscalReceptor="601", UsoCFDI="G03")  # fmt: skip
    conceptos = etree.SubElement(root, _C + "Conceptos")
    concepto = etree.SubElement(
        conceptos, _C + "Concepto", ClaveProdServ="81112100", Cantidad="1", ClaveUnidad="E48",
        Descripcion="Servicios de soporte", ValorUnitario=_fmt(sub, d), Importe=_fmt(sub, d),
        ObjetoImp="02" if spec.taxes else "01",
    )  # fmt: skip

    def tax_attrs(t: Tax, amount: Decimal | None, *, summary: bool) -> dict[str, str]:
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
                etree.SubElement(group, _C + "Traslado", **tax_attrs(t, a, summary=False))
        if withholdings:
            group = etree.SubElement(imp, _C + "Retenciones")
            for t, a in withholdings:
                etree.SubElement(group, _C + "Retencion", **tax_attrs(t, a, summary=False))
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
                etree.SubElement(group, _C + "Traslado", **tax_attrs(t, a, summary=True))
        # Impuestos goes after Conceptos and before Complemento (already in order)
    root.set("Sello", seal(cadena_original(root), signer))
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return xml


async def stamp_invoice_async(xml: bytes, issued_at: dt.datetime) -> bytes:
    pac = SandboxPac(invoice_pac_identity().signer(), clock=FrozenClock(issued_at + dt.timedelta(minutes=1)))
    result = await pac.stamp(xml, idempotency_key="")
    return result.xml


def make_invoice(spec: InvoiceSpec | None = None, credential: IssuedCredential | None = None) -> bytes:
    """A stamped invoice (runs the sandbox PAC in a private event loop)."""
    spec = spec or InvoiceSpec()
    return asyncio.run(stamp_invoice_async(build_invoice(spec, credential), spec.issued_at))


async def amake_invoice(spec: InvoiceSpec | None = None, credential: IssuedCredential | None = None) -> bytes:
    """A stamped invoice, from inside a running event loop."""
    spec = spec or InvoiceSpec()
    return await stamp_invoice_async(build_invoice(spec, credential), spec.issued_at)
