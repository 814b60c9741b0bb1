"""Payments: registration (client-scoped or staff), validation, the installment ledger, views.

Registering a payment locks the invoices it pays (row locks in id order on PostgreSQL; SQLite
serialises writers with BEGIN IMMEDIATE), allocates the next NumParcialidad of each invoice, moves
its balance, and queues the ``rep.stamp`` job in the same transaction (outbox).  Concurrent payments
of the same invoice therefore serialise and the ledger never goes negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, insert_event, record
from core.cfdi.builder import check_input
from core.cfdi.catalogs import payment_form_exists
from core.cfdi.errors import InvalidRepInput
from core.cfdi.model import Issuer, Receiver, RelatedDocument, RepInput
from core.cfdi.model import Payment as CfdiPayment
from core.cfdi.money import decimals_for, decimals_of
from core.db.base import AnyRow, table_of
from core.errors import FieldProblem, Invalid, NotFound
from core.jobs.queue import enqueue
from core.stamping.invoices import taxes_from_json
from core.stamping.models import Invoice, InvoiceStatus, Payment, PaymentComplement, PaymentLine, PaymentStatus
from core.vendors.models import Vendor

STAMP_JOB = "rep.stamp"
MAX_DOCUMENTS = 500

STATUS_LABELS = {
    PaymentStatus.PENDING.value: "Pendiente de complemento",
    PaymentStatus.STAMPING.value: "Timbrando",
    PaymentStatus.STAMPED.value: "Complemento timbrado",
    PaymentStatus.REJECTED.value: "Complemento rechazado",
}


class PaymentRefused(Invalid):
    code = "payment_refused"


def _refuse(code: str, message: str, field_name: str | None = None) -> PaymentRefused:
    details = [FieldProblem(field_name, code, message).as_dict()] if field_name else None
    return PaymentRefused(message, code=code, details=details)


@dataclass(frozen=True, slots=True)
class AppliedInvoice:
    """The amount of a payment applied to one invoice (ImpPagado, in the invoice's currency)."""

    amount_paid: Decimal
    invoice_id: int | None = None
    uuid: str | None = None
    equivalence: Decimal | None = None  # EquivalenciaDR: units of MonedaDR per unit of MonedaP


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    vendor_id: int
    paid_at: datetime
    payment_form: str
    currency: str
    amount: Decimal
    documents: tuple[AppliedInvoice, ...]
    exchange_rate: Decimal | None = None
    operation_number: str | None = None
    payer_bank_rfc: str | None = None
    payer_bank_name: str | None = None
    payer_account: str | None = None
    payee_bank_rfc: str | None = None
    payee_account: str | None = None
    notify_email: str | None = None


@dataclass(frozen=True, slots=True)
class LineView:
    invoice_id: int
    invoice_uuid: str
    serie: str | None
    folio: str | None
    currency: str
    installment: int
    previous_balance: Decimal
    amount_paid: Decimal
    outstanding_balance: Decimal
    equivalence: Decimal | None


@dataclass(frozen=True, slots=True)
class RepSummary:
    id: int
    serie: str
    folio: int
    uuid: str | None
    status: str


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: int
    vendor_id: int
    client_id: int
    paid_at: datetime
    payment_form: str
    currency: str
    exchange_rate: Decimal | None
    amount: Decimal
    operation_number: str | None
    status: str
    status_label: str
    waiting_code: str | None
    waiting_message: str | None
    errors: list[dict[str, str]]
    stamped_at: datetime | None
    created_at: datetime
    lines: tuple[LineView, ...] = ()
    reps: tuple[RepSummary, ...] = field(default=())


def _check_decimals(value: Decimal, currency: str, code: str, what: str, field_name: str) -> None:
    if decimals_of(value.normalize()) > decimals_for(currency):
        raise _refuse(code, f"{what} tiene más decimales de los que admite {currency}.", field_name)


_invoices = table_of(Invoice)
_payments = table_of(Payment)
_lines = table_of(PaymentLine)
_vendors = table_of(Vendor)

# Statements built once: registering a payment runs them for every payment (see docs/benchmarks.md).
_VENDOR = select(
    _vendors.c.id,
    _vendors.c.client_id,
    _vendors.c.rfc,
    _vendors.c.razon_social,
    _vendors.c.regimen_fiscal,
    _vendors.c.codigo_postal,
).where(_vendors.c.id == bindparam("vendor_id"))
_INVOICE_IDS = select(_invoices.c.uuid, _invoices.c.id).where(_invoices.c.uuid.in_(bindparam("uuids", expanding=True)))
#: Every column but the invoice's XML (the payment never needs it).
_LOCK_INVOICES = (
    select(*(c for c in _invoices.c if c.key != "xml"))
    .where(_invoices.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_invoices.c.id)
    .with_for_update()
)
_INSERT_PAYMENT = insert(_payments).returning(_payments.c.id)
_INSERT_LINES = insert(_lines)
_UPDATE_INVOICE = (
    update(_invoices)
    .where(_invoices.c.id == bindparam("invoice_id"))
    .values(
        installments=bindparam("new_installments"),
        balance=bindparam("new_balance"),
        status=bindparam("new_status"),
        updated_at=bindparam("at"),
    )
)


async def _lock_invoices(session: AsyncSession, vendor: AnyRow, docs: Sequence[AppliedInvoice]) -> dict[int, AnyRow]:
    ids = [d.invoice_id for d in docs if d.invoice_id is not None]
    uuids = [d.uuid.strip().upper() for d in docs if d.invoice_id is None and d.uuid]
    if len(ids) + len(uuids) != len(docs):
        raise _refuse("factura_requerida", "Cada documento debe indicar invoice_id o uuid.", "documents")
    if uuids:
        found = await session.execute(_INVOICE_IDS, {"uuids": uuids})
        by_uuid = {u: i for u, i in found.all()}
        for u in uuids:
            if u not in by_uuid:
                raise _refuse("factura_no_encontrada", f"No se encontró la factura {u}.", "documents")
        ids += [by_uuid[u] for u in uuids]
    rows = await session.execute(_LOCK_INVOICES, {"ids": ids})
    invoices = {r.id: r for r in rows.all()}
    for invoice_id in ids:
        inv = invoices.get(invoice_id)
        if inv is None or inv.vendor_id != vendor.id or inv.client_id != vendor.client_id:
            raise _refuse("factura_ajena", f"La factura {invoice_id} no es de este proveedor y cliente.", "documents")
    return invoices


def _invoice_of(doc: AppliedInvoice, invoices: dict[int, AnyRow]) -> AnyRow:
    if doc.invoice_id is not None:
        return invoices[doc.invoice_id]
    key = (doc.uuid or "").strip().upper()
    return next(i for i in invoices.values() if i.uuid == key)


async def register_payment(
    session: AsyncSession,
    req: PaymentRequest,
    *,
    actor: Actor,
    now: datetime,
    client_id: int | None = None,
) -> PaymentView:
    """Validate and register a payment; queue its ``rep.stamp`` job in the same transaction.

    ``client_id`` scopes the call to one client (a client token): another client's vendor is
    "not found", so nothing leaks.
    """
    vendor = (await session.execute(_VENDOR, {"vendor_id": req.vendor_id})).first()
    if vendor is None or (client_id is not None and vendor.client_id != client_id):
        raise NotFound("No se encontró el proveedor.")
    if req.paid_at.tzinfo is None:
        raise _refuse("fecha_pago_sin_zona", "La fecha de pago debe incluir zona horaria.", "paid_at")
    if req.paid_at > now:
        raise _refuse("fecha_pago_futura", "La fecha de pago no puede ser posterior al momento actual.", "paid_at")
    if req.payment_form == "99":
        raise _refuse("CRP20212", "La forma de pago no puede ser 99 (Por definir).", "payment_form")
    if not payment_form_exists(req.payment_form):
        raise _refuse("forma_pago_invalida", "La forma de pago no está en el catálogo c_FormaPago.", "payment_form")
    if req.currency == "XXX":
        raise _refuse("CRP20213", "La moneda del pago no puede ser XXX.", "currency")
    try:
        decimals_for(req.currency)
    except InvalidRepInput as exc:
        raise _refuse(exc.code, exc.message, "currency") from None
    if req.amount <= 0:
        raise _refuse("CRP20218", "El monto del pago debe ser mayor que cero.", "amount")
    _check_decimals(req.amount, req.currency, "CRP20219", "El monto del pago", "amount")
    if not req.documents:
        raise _refuse("sin_documentos", "El pago debe relacionar al menos una factura.", "documents")
    if len(req.documents) > MAX_DOCUMENTS:
        raise _refuse("demasiados_documentos", f"Un pago relaciona como máximo {MAX_DOCUMENTS} facturas.", "documents")
    invoices = await _lock_invoices(session, vendor, req.documents)
    related: list[RelatedDocument] = []
    planned: list[tuple[AnyRow, AppliedInvoice]] = []
    seen: set[int] = set()
    for doc in req.documents:
        inv = _invoice_of(doc, invoices)
        if inv.id in seen:
            raise _refuse("documento_repetido", f"La factura {inv.uuid} aparece dos veces en el pago.", "documents")
        seen.add(inv.id)
        if inv.status == InvoiceStatus.CANCELLED.value:
            raise _refuse("factura_cancelada", f"La factura {inv.uuid} está cancelada.", "documents")
        if inv.status == InvoiceStatus.PAID.value or inv.balance <= 0:
            raise _refuse("factura_pagada", f"La factura {inv.uuid} ya está pagada en su totalidad.", "documents")
        if doc.amount_paid <= 0:
            raise _refuse(
                "CRP20241", f"El importe pagado a la factura {inv.uuid} debe ser mayor que cero.", "documents"
            )
        _check_decimals(doc.amount_paid, inv.currency, "CRP20242", "El importe pagado", "documents")
        if doc.amount_paid > inv.balance:
            raise _refuse(
                "CRP20244",
                f"El importe pagado ({doc.amount_paid}) excede el saldo de la factura {inv.uuid} ({inv.balance}).",
                "documents",
            )
        related.append(
            RelatedDocument(
                uuid=inv.uuid,
                currency=inv.currency,
                installment=inv.installments + 1,
                previous_balance=inv.balance,
                amount_paid=doc.amount_paid,
                tax_object=inv.tax_object,
                series=inv.serie,
                folio=inv.folio,
                equivalence=doc.equivalence,
                invoice_total=inv.total,
                invoice_transfers=taxes_from_json(inv.taxes.get("transfers", [])),
                invoice_withholdings=taxes_from_json(inv.taxes.get("withholdings", [])),
            )
        )
        planned.append((inv, doc))
    first = planned[0][0]
    cfdi_payment = CfdiPayment(
        paid_at=req.paid_at,
        payment_form=req.payment_form,
        currency=req.currency,
        amount=req.amount,
        documents=tuple(related),
        exchange_rate=req.exchange_rate,
        operation_number=req.operation_number,
        payer_bank_rfc=req.payer_bank_rfc,
        payer_bank_name=req.payer_bank_name,
        payer_account=req.payer_account,
        payee_bank_rfc=req.payee_bank_rfc,
        payee_account=req.payee_account,
    )
    try:
        check_input(
            RepInput(
                issuer=Issuer(vendor.rfc, vendor.razon_social, vendor.regimen_fiscal),
                receiver=Receiver(
                    first.receiver_rfc, first.receiver_name, first.receiver_postal_code, first.receiver_tax_regime
                ),
                postal_code=vendor.codigo_postal or "00000",
                time_zone="America/Mexico_City",
                issued_at=now,
                payment=cfdi_payment,
            )
        )
    except InvalidRepInput as exc:
        raise _refuse(exc.code, exc.message) from None
    # Core statements, no ORM unit of work: this runs for every payment (see docs/benchmarks.md).
    values: dict[str, Any] = {
        "vendor_id": vendor.id,
        "client_id": vendor.client_id,
        "paid_at": req.paid_at,
        "payment_form": req.payment_form,
        "currency": req.currency,
        "exchange_rate": req.exchange_rate,
        "amount": req.amount,
        "operation_number": req.operation_number,
        "payer_bank_rfc": req.payer_bank_rfc,
        "payer_bank_name": req.payer_bank_name,
        "payer_account": req.payer_account,
        "payee_bank_rfc": req.payee_bank_rfc,
        "payee_account": req.payee_account,
        "notify_email": req.notify_email,
        "status": PaymentStatus.PENDING.value,
        "errors": [],
        "attempts": 1,  # the rep.stamp job queued below (no second UPDATE)
        "registered_by": actor.label[:200],
        "created_at": now,
        "updated_at": now,
    }
    payment_id = int((await session.execute(_INSERT_PAYMENT, values)).scalar_one())
    invoice_updates: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    lines: list[LineView] = []
    for inv, doc in planned:
        installment = inv.installments + 1
        outstanding = inv.balance - doc.amount_paid
        equivalence = None if inv.currency == req.currency else doc.equivalence
        invoice_updates.append(
            {"invoice_id": inv.id, "new_installments": installment, "new_balance": outstanding, "at": now,
             "new_status": InvoiceStatus.PAID.value if outstanding == 0 else inv.status}
        )  # fmt: skip
        line_rows.append(
            {"payment_id": payment_id, "invoice_id": inv.id, "installment": installment,
             "previous_balance": inv.balance, "amount_paid": doc.amount_paid, "outstanding_balance": outstanding,
             "equivalence": equivalence}
        )  # fmt: skip
        lines.append(
            LineView(inv.id, inv.uuid, inv.serie, inv.folio, inv.currency, installment, inv.balance,
                     doc.amount_paid, outstanding, equivalence)
        )  # fmt: skip
    await session.execute(_UPDATE_INVOICE, invoice_updates)
    await session.execute(_INSERT_LINES, line_rows)
    await enqueue(
        session, kind=STAMP_JOB, payload={"payment_id": payment_id}, key=f"{STAMP_JOB}:{payment_id}:1", now=now
    )
    await insert_event(
        session,
        actor=actor,
        action="payment.registered",
        subject_type="payment",
        subject_id=payment_id,
        at=now,
        after={"vendor_id": vendor.id, "amount": str(req.amount), "currency": req.currency, "invoices": len(planned)},
    )
    # A new payment has no REP yet and its lines are the ones just written: no re-read.
    return PaymentView(
        id=payment_id,
        vendor_id=vendor.id,
        client_id=vendor.client_id,
        paid_at=req.paid_at,
        payment_form=req.payment_form,
        currency=req.currency,
        exchange_rate=req.exchange_rate,
        amount=req.amount,
        operation_number=req.operation_number,
        status=PaymentStatus.PENDING.value,
        status_label=STATUS_LABELS[PaymentStatus.PENDING.value],
        waiting_code=None,
        waiting_message=None,
        errors=[],
        stamped_at=None,
        created_at=now,
        lines=tuple(lines),
    )


async def queue_stamp(session: AsyncSession, payment: Payment, *, now: datetime) -> bool:
    """Queue (again) the ``rep.stamp`` job of ``payment`` in the caller's transaction."""
    payment.attempts += 1
    payment.updated_at = now
    return await _enqueue_stamp(session, payment, now=now)


async def _enqueue_stamp(session: AsyncSession, payment: Payment, *, now: datetime) -> bool:
    return await enqueue(
        session,
        kind=STAMP_JOB,
        payload={"payment_id": payment.id},
        key=f"{STAMP_JOB}:{payment.id}:{payment.attempts}",
        now=now,
    )


async def lines_of(session: AsyncSession, payment_id: int) -> list[tuple[PaymentLine, Invoice]]:
    rows = await session.execute(
        select(PaymentLine, Invoice)
        .join(Invoice, Invoice.id == PaymentLine.invoice_id)
        .where(PaymentLine.payment_id == payment_id)
        .order_by(PaymentLine.id)
    )
    return [(line, inv) for line, inv in rows.all()]


async def payment_view(session: AsyncSession, payment: Payment, *, with_lines: bool = True) -> PaymentView:
    lines: tuple[LineView, ...] = ()
    reps: tuple[RepSummary, ...] = ()
    if with_lines:
        lines = tuple(
            LineView(
                inv.id,
                inv.uuid,
                inv.serie,
                inv.folio,
                inv.currency,
                line.installment,
                line.previous_balance,
                line.amount_paid,
                line.outstanding_balance,
                line.equivalence,
            )
            for line, inv in await lines_of(session, payment.id)
        )
        rows = await session.scalars(
            select(PaymentComplement).where(PaymentComplement.payment_id == payment.id).order_by(PaymentComplement.id)
        )
        reps = tuple(RepSummary(r.id, r.serie, r.folio, r.uuid, r.status) for r in rows)
    return PaymentView(
        id=payment.id,
        vendor_id=payment.vendor_id,
        client_id=payment.client_id,
        paid_at=payment.paid_at,
        payment_form=payment.payment_form,
        currency=payment.currency,
        exchange_rate=payment.exchange_rate,
        amount=payment.amount,
        operation_number=payment.operation_number,
        status=payment.status,
        status_label=STATUS_LABELS.get(payment.status, payment.status),
        waiting_code=payment.waiting_code,
        waiting_message=payment.waiting_message,
        errors=list(payment.errors or []),
        stamped_at=payment.stamped_at,
        created_at=payment.created_at,
        lines=lines,
        reps=reps,
    )


async def get_payment(session: AsyncSession, payment_id: int) -> Payment:
    row = await session.get(Payment, payment_id)
    if row is None:
        raise NotFound("No se encontró el pago.")
    return row


async def list_payments(
    session: AsyncSession,
    *,
    vendor_id: int | None = None,
    client_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[PaymentView]:
    stmt = select(Payment).order_by(Payment.id.desc()).limit(limit)
    if vendor_id is not None:
        stmt = stmt.where(Payment.vendor_id == vendor_id)
    if client_id is not None:
        stmt = stmt.where(Payment.client_id == client_id)
    if status is not None:
        stmt = stmt.where(Payment.status == status)
    return [await payment_view(session, p, with_lines=False) for p in await session.scalars(stmt)]


async def retry_payment(session: AsyncSession, payment_id: int, *, actor: Actor, now: datetime) -> PaymentView:
    """Queue the REP of a pending or rejected payment again."""
    payment = await session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise NotFound("No se encontró el pago.")
    if payment.status in (PaymentStatus.STAMPED.value,):
        raise Invalid("El pago ya tiene su complemento timbrado.", code="already_stamped")
    if payment.status == PaymentStatus.REJECTED.value:
        payment.status = PaymentStatus.PENDING.value
    await queue_stamp(session, payment, now=now)
    await record(session, actor=actor, action="payment.retry", subject_type="payment", subject_id=payment.id, at=now)
    return await payment_view(session, payment)


#: Waiting reasons that clear by themselves once the vendor completes its setup or buys stamps.
RESUMABLE = ("sin_saldo", "plan_vencido", "sin_contrato", "sin_csd_vigente", "faltan_datos_cfdi")


async def resume_waiting(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Queue again the payments waiting for a setup step whose vendor is now ready (scheduler)."""
    from core.vendors.onboarding import readiness

    rows = list(
        await session.scalars(
            select(Payment)
            .where(Payment.status == PaymentStatus.PENDING.value, Payment.waiting_code.in_(RESUMABLE))
            .order_by(Payment.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    ready: dict[int, bool] = {}
    queued = 0
    for payment in rows:
        if payment.vendor_id not in ready:
            ready[payment.vendor_id] = (await readiness(session, payment.vendor_id, now)).ready
        if ready[payment.vendor_id]:
            payment.waiting_code = None
            await queue_stamp(session, payment, now=now)
            queued += 1
    return queued
