"""Invoices: upload of the vendor's stamped CFDI 4.0 ingreso PPD XML, listing, cancellation mark.

The XML comes from outside: it is parsed with entity resolution, DTDs and network off and a size
cap (:func:`core.cfdi.parsing.parse_untrusted`).  Accepted only when it is version 4.0, tipo I,
MetodoPago PPD, Emisor RFC = the vendor's, Receptor RFC = the client's, it carries a
TimbreFiscalDigital UUID and that UUID is not registered yet.  The tax breakdown kept for
ImpuestosDR is aggregated from the Conceptos (the summary of retenciones carries no base).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.cfdi.cadena import CFDI_NS, TFD_NS
from core.cfdi.catalogs import currency_decimals, postal_code_time_zone
from core.cfdi.errors import UnsafeXml
from core.cfdi.model import TaxFactor, TaxLine
from core.cfdi.money import decimals_of, parse_decimal
from core.cfdi.parsing import parse_untrusted
from core.clients.models import Client
from core.errors import Conflict, Invalid, NotFound
from core.stamping.models import Invoice, InvoiceStatus, PaymentLine
from core.vendors.models import Vendor

_C = "{" + CFDI_NS + "}"
_T = "{" + TFD_NS + "}"
MAX_INVOICE_BYTES = 2 * 1024 * 1024
_UUID_LEN = 36


class InvoiceRefused(Invalid):
    code = "invoice_refused"


def _refuse(code: str, message: str) -> InvoiceRefused:
    return InvoiceRefused(message, code=code)


@dataclass(frozen=True, slots=True)
class ParsedInvoice:
    """The facts of an invoice the stamping service needs."""

    uuid: str
    serie: str | None
    folio: str | None
    issued_at: datetime
    currency: str
    exchange_rate: Decimal | None
    total: Decimal
    issuer_rfc: str
    receiver_rfc: str
    receiver_name: str
    receiver_postal_code: str
    receiver_tax_regime: str
    transfers: tuple[TaxLine, ...]
    withholdings: tuple[TaxLine, ...]

    @property
    def tax_object(self) -> str:
        return "02" if self.transfers or self.withholdings else "01"


def _aggregate(nodes: Iterable[etree._Element], *, withholding: bool) -> tuple[TaxLine, ...]:
    groups: dict[tuple[str, str, str], list[Decimal]] = {}
    for node in nodes:
        factor = node.get("TipoFactor", "")
        if factor not in ("Tasa", "Cuota", "Exento"):
            raise _refuse("impuestos_invalidos", "La factura tiene un impuesto con TipoFactor inválido.")
        if withholding and factor == "Exento":
            raise _refuse("impuestos_invalidos", "La factura tiene una retención exenta.")
        base = parse_decimal(node.get("Base"))
        rate = parse_decimal(node.get("TasaOCuota")) if factor != "Exento" else None
        amount = parse_decimal(node.get("Importe")) if factor != "Exento" else None
        if base is None or base < 0 or (factor != "Exento" and (rate is None or amount is None or amount < 0)):
            raise _refuse("impuestos_invalidos", "La factura tiene un impuesto sin Base, TasaOCuota o Importe válidos.")
        key = (node.get("Impuesto", ""), factor, "" if rate is None else f"{rate:.6f}")
        acc = groups.setdefault(key, [Decimal(0), Decimal(0)])
        acc[0] += base
        acc[1] += amount or Decimal(0)
    lines = []
    for (tax, factor, rate_text), (base, amount) in groups.items():
        rate = Decimal(rate_text) if rate_text else None
        lines.append(TaxLine(base, tax, TaxFactor(factor), rate, amount if factor != "Exento" else None))
    return tuple(lines)


def _fecha(text: str, postal_code: str) -> datetime:
    try:
        naive = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _refuse("fecha_invalida", "La Fecha de la factura no tiene el formato AAAA-MM-DDThh:mm:ss.") from None
    zone = postal_code_time_zone(postal_code) or "America/Mexico_City"
    return naive.replace(tzinfo=ZoneInfo(zone))


def parse_invoice(data: bytes, *, max_bytes: int = MAX_INVOICE_BYTES) -> ParsedInvoice:
    """Read and check an invoice XML (without database rules); raises :class:`InvoiceRefused`."""
    try:
        root = parse_untrusted(data, max_bytes=max_bytes)
    except UnsafeXml as exc:
        raise _refuse(exc.code, exc.message) from None
    if root.tag != _C + "Comprobante":
        raise _refuse("no_es_cfdi", "El archivo no es un CFDI (falta cfdi:Comprobante).")
    if root.get("Version") != "4.0":
        raise _refuse("version_no_soportada", "Solo se aceptan facturas CFDI versión 4.0.")
    if root.get("TipoDeComprobante") != "I":
        raise _refuse("tipo_no_ingreso", "Solo se aceptan facturas de tipo ingreso (TipoDeComprobante I).")
    if root.get("MetodoPago") != "PPD":
        raise _refuse(
            "metodo_pago_no_ppd",
            "La factura no es PPD (pago en parcialidades o diferido): no requiere complemento de pago.",
        )
    tfd = root.find(f"{_C}Complemento/{_T}TimbreFiscalDigital")
    uuid = (tfd.get("UUID", "") if tfd is not None else "").strip().upper()
    if len(uuid) != _UUID_LEN:
        raise _refuse("sin_timbre", "La factura no tiene timbre fiscal digital (UUID).")
    emisor, receptor = root.find(_C + "Emisor"), root.find(_C + "Receptor")
    if emisor is None or receptor is None:
        raise _refuse("no_es_cfdi", "La factura no tiene Emisor o Receptor.")
    currency = root.get("Moneda", "")
    decimals = currency_decimals(currency)
    if decimals is None or currency == "XXX":
        raise _refuse("moneda_invalida", "La moneda de la factura no es válida.")
    total = parse_decimal(root.get("Total"))
    if total is None or total <= 0 or decimals_of(total) > decimals:
        raise _refuse("total_invalido", "El total de la factura debe ser mayor que cero.")
    exchange_rate = parse_decimal(root.get("TipoCambio"))
    conceptos = root.findall(f"{_C}Conceptos/{_C}Concepto")
    transfers = _aggregate(
        (n for c in conceptos for n in c.findall(f"{_C}Impuestos/{_C}Traslados/{_C}Traslado")), withholding=False
    )
    withholdings = _aggregate(
        (n for c in conceptos for n in c.findall(f"{_C}Impuestos/{_C}Retenciones/{_C}Retencion")), withholding=True
    )
    lugar = root.get("LugarExpedicion", "")
    texts = (root.get("Serie"), root.get("Folio"), receptor.get("Nombre"))
    if any(t is not None and "|" in t for t in texts):
        raise _refuse("caracter_invalido", "La serie, el folio o el nombre del receptor contienen «|».")
    return ParsedInvoice(
        uuid=uuid,
        serie=root.get("Serie"),
        folio=root.get("Folio"),
        issued_at=_fecha(root.get("Fecha", ""), lugar),
        currency=currency,
        exchange_rate=exchange_rate,
        total=total,
        issuer_rfc=emisor.get("Rfc", "").upper(),
        receiver_rfc=receptor.get("Rfc", "").upper(),
        receiver_name=receptor.get("Nombre", ""),
        receiver_postal_code=receptor.get("DomicilioFiscalReceptor", ""),
        receiver_tax_regime=receptor.get("RegimenFiscalReceptor", ""),
        transfers=transfers,
        withholdings=withholdings,
    )


def taxes_json(lines: Iterable[TaxLine]) -> list[dict[str, str | None]]:
    return [
        {
            "base": str(t.base),
            "tax": t.tax,
            "factor": t.factor.value,
            "rate": None if t.rate is None else str(t.rate),
            "amount": None if t.amount is None else str(t.amount),
        }
        for t in lines
    ]


def taxes_from_json(items: Iterable[dict[str, Any]]) -> tuple[TaxLine, ...]:
    return tuple(
        TaxLine(
            Decimal(i["base"]),
            i["tax"],
            TaxFactor(i["factor"]),
            None if i.get("rate") is None else Decimal(i["rate"]),
            None if i.get("amount") is None else Decimal(i["amount"]),
        )
        for i in items
    )


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: int
    vendor_id: int
    client_id: int
    uuid: str
    serie: str | None
    folio: str | None
    issued_at: datetime
    currency: str
    total: Decimal
    balance: Decimal
    installments: int
    status: str
    receiver_rfc: str
    receiver_name: str


def invoice_view(row: Invoice) -> InvoiceView:
    return InvoiceView(
        row.id,
        row.vendor_id,
        row.client_id,
        row.uuid,
        row.serie,
        row.folio,
        row.issued_at,
        row.currency,
        row.total,
        row.balance,
        row.installments,
        row.status,
        row.receiver_rfc,
        row.receiver_name,
    )


async def register_invoice(
    session: AsyncSession,
    vendor_id: int,
    data: bytes,
    *,
    actor: Actor,
    now: datetime,
    max_bytes: int = MAX_INVOICE_BYTES,
) -> InvoiceView:
    """Register an uploaded invoice of ``vendor_id`` to its client."""
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No se encontró el proveedor.")
    client = await session.get(Client, vendor.client_id)
    assert client is not None
    parsed = parse_invoice(data, max_bytes=max_bytes)
    if parsed.issuer_rfc != vendor.rfc:
        raise _refuse("emisor_no_corresponde", f"El RFC del emisor ({parsed.issuer_rfc}) no es el del proveedor.")
    if not client.rfc or parsed.receiver_rfc != client.rfc.upper():
        raise _refuse("receptor_no_corresponde", f"El RFC del receptor ({parsed.receiver_rfc}) no es el del cliente.")
    if parsed.issued_at > now:
        raise _refuse("fecha_futura", "La fecha de la factura es posterior al momento actual.")
    if await session.scalar(select(Invoice.id).where(Invoice.uuid == parsed.uuid)) is not None:
        raise Conflict(f"La factura {parsed.uuid} ya está registrada.", code="invoice_duplicate")
    row = Invoice(
        vendor_id=vendor_id,
        client_id=vendor.client_id,
        uuid=parsed.uuid,
        serie=parsed.serie,
        folio=parsed.folio,
        issued_at=parsed.issued_at,
        currency=parsed.currency,
        exchange_rate=parsed.exchange_rate,
        total=parsed.total,
        balance=parsed.total,
        installments=0,
        tax_object=parsed.tax_object,
        taxes={"transfers": taxes_json(parsed.transfers), "withholdings": taxes_json(parsed.withholdings)},
        issuer_rfc=parsed.issuer_rfc,
        receiver_rfc=parsed.receiver_rfc,
        receiver_name=parsed.receiver_name,
        receiver_postal_code=parsed.receiver_postal_code,
        receiver_tax_regime=parsed.receiver_tax_regime,
        status=InvoiceStatus.OPEN.value,
        xml=bytes(data),
        xml_sha256=hashlib.sha256(data).hexdigest(),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        actor=actor,
        action="invoice.registered",
        subject_type="invoice",
        subject_id=row.id,
        at=now,
        after={"uuid": row.uuid, "total": str(row.total), "currency": row.currency},
    )
    return invoice_view(row)


async def get_invoice(session: AsyncSession, invoice_id: int) -> Invoice:
    row = await session.get(Invoice, invoice_id)
    if row is None:
        raise NotFound("No se encontró la factura.")
    return row


async def list_invoices(
    session: AsyncSession,
    *,
    vendor_id: int | None = None,
    client_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[InvoiceView]:
    stmt = select(Invoice).order_by(Invoice.id.desc()).limit(limit)
    if vendor_id is not None:
        stmt = stmt.where(Invoice.vendor_id == vendor_id)
    if client_id is not None:
        stmt = stmt.where(Invoice.client_id == client_id)
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    return [invoice_view(r) for r in await session.scalars(stmt)]


async def installments_of(session: AsyncSession, invoice_id: int) -> list[PaymentLine]:
    rows = await session.scalars(
        select(PaymentLine).where(PaymentLine.invoice_id == invoice_id).order_by(PaymentLine.installment)
    )
    return list(rows)


async def mark_cancelled(session: AsyncSession, invoice_id: int, *, actor: Actor, now: datetime) -> InvoiceView:
    """Record that the invoice was cancelled before SAT: no more payments can be applied to it."""
    row = await session.get(Invoice, invoice_id, with_for_update=True)
    if row is None:
        raise NotFound("No se encontró la factura.")
    if row.status == InvoiceStatus.CANCELLED.value:
        return invoice_view(row)
    before = row.status
    row.status, row.cancelled_at, row.updated_at = InvoiceStatus.CANCELLED.value, now, now
    await record(
        session,
        actor=actor,
        action="invoice.cancelled",
        subject_type="invoice",
        subject_id=row.id,
        at=now,
        before={"status": before},
        after={"status": row.status},
    )
    return invoice_view(row)
