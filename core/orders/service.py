"""Stamp packages and their purchase: catalog, orders, proofs of payment, review, provisioning.

Order states: ``awaiting_payment → in_review → approved | rejected``; a rejected order accepts a new
proof (back to ``in_review``).  The review is due 24 business hours after the proof arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, insert_event, record
from core.calendar import BusinessCalendar
from core.clients.models import Client
from core.db.base import table_of
from core.errors import Conflict, FieldProblem, Invalid, NotFound
from core.jobs.queue import enqueue
from core.notifications.outbox import EmailSpec, queue_email_row
from core.orders.contact import ValidationErrors, validate_contact
from core.orders.models import Order, OrderProof, OrderStatus, Package
from core.orders.reference import make_payment_reference
from core.stamps import service as stamps
from core.uploads.models import FileRecord
from core.uploads.store import StoredFile
from core.vendors.models import Vendor

SLACK_SYNC_ORDER = "slack.sync_order"
SLACK_ORDER_NOTE = "slack.order_note"
MAX_REASON = 2000
STATUS_LABELS = {
    OrderStatus.AWAITING_PAYMENT.value: "En espera de pago",
    OrderStatus.IN_REVIEW.value: "Comprobante en revisión",
    OrderStatus.APPROVED.value: "Aprobada",
    OrderStatus.REJECTED.value: "Comprobante rechazado",
}


@dataclass(frozen=True, slots=True)
class BankData:
    beneficiary: str
    bank: str
    clabe: str


@dataclass(frozen=True, slots=True)
class OrdersConfig:
    mail_from: str
    mail_domain: str
    slack_enabled: bool
    bank: BankData
    calendar: BusinessCalendar
    sla_hours: int = 24
    reminder_fraction: float = 0.75


@dataclass(frozen=True, slots=True)
class PackageView:
    id: int
    name: str
    stamps: int
    price_mxn: Decimal
    validity_days: int
    active: bool


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    vendor_id: int
    vendor_rfc: str
    vendor_razon_social: str
    package_id: int
    package_name: str
    package_stamps: int
    package_price_mxn: Decimal
    package_validity_days: int
    contact_empresa: str
    contact_nombre: str
    contact_telefono: str
    contact_correo: str
    payment_reference: str
    status: str
    status_label: str
    proof_sha256: str | None
    proof_content_type: str | None
    proof_received_at: datetime | None
    sla_due_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    decided_via: str | None
    rejection_reason: str | None
    review_round: int
    slack_channel: str | None
    slack_ts: str | None
    created_at: datetime


class AlreadyDecided(Conflict):
    code = "already_decided"


def _money(value: Decimal | str | int | float) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise Invalid("El precio debe ser un número.", code="invalid_price") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")) or amount >= Decimal("1e10"):
        raise Invalid("El precio debe ser mayor que cero, en pesos con hasta 2 decimales.", code="invalid_price")
    return amount


# --------------------------------------------------------------------------- packages
def _package_view(p: Package) -> PackageView:
    return PackageView(p.id, p.name, p.stamps, p.price_mxn, p.validity_days, p.active)


def _check_package(name: str, stamps: int, validity_days: int) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > 120:
        raise Invalid("El nombre del paquete es obligatorio (máximo 120 caracteres).", code="invalid_name")
    if not 1 <= stamps <= 10_000_000:
        raise Invalid("El número de timbres debe estar entre 1 y 10,000,000.", code="invalid_stamps")
    if not 1 <= validity_days <= 3660:
        raise Invalid("La vigencia debe estar entre 1 y 3660 días.", code="invalid_validity")
    return clean


async def create_package(
    session: AsyncSession,
    *,
    name: str,
    stamps: int,
    price_mxn: Decimal | str,
    validity_days: int,
    actor: Actor,
    now: datetime,
) -> PackageView:
    clean = _check_package(name, stamps, validity_days)
    pkg = Package(
        name=clean,
        stamps=stamps,
        price_mxn=_money(price_mxn),
        validity_days=validity_days,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(pkg)
    await session.flush()
    await record(
        session,
        actor=actor,
        action="package.created",
        subject_type="package",
        subject_id=pkg.id,
        at=now,
        after={"name": clean, "stamps": stamps, "price_mxn": str(pkg.price_mxn), "validity_days": validity_days},
    )
    return _package_view(pkg)


async def update_package(
    session: AsyncSession,
    package_id: int,
    *,
    actor: Actor,
    now: datetime,
    name: str | None = None,
    stamps: int | None = None,
    price_mxn: Decimal | str | None = None,
    validity_days: int | None = None,
    active: bool | None = None,
) -> PackageView:
    pkg = await session.get(Package, package_id, with_for_update=True)
    if pkg is None:
        raise NotFound("No se encontró el paquete.")
    before = {
        "name": pkg.name,
        "stamps": pkg.stamps,
        "price_mxn": str(pkg.price_mxn),
        "validity_days": pkg.validity_days,
        "active": pkg.active,
    }
    new_name = _check_package(
        name if name is not None else pkg.name,
        stamps if stamps is not None else pkg.stamps,
        validity_days if validity_days is not None else pkg.validity_days,
    )
    pkg.name = new_name
    if stamps is not None:
        pkg.stamps = stamps
    if validity_days is not None:
        pkg.validity_days = validity_days
    if price_mxn is not None:
        pkg.price_mxn = _money(price_mxn)
    if active is not None:
        pkg.active = active
    pkg.updated_at = now
    await record(
        session,
        actor=actor,
        action="package.updated",
        subject_type="package",
        subject_id=pkg.id,
        at=now,
        before=before,
        after={
            "name": pkg.name,
            "stamps": pkg.stamps,
            "price_mxn": str(pkg.price_mxn),
            "validity_days": pkg.validity_days,
            "active": pkg.active,
        },
    )
    return _package_view(pkg)


async def list_packages(session: AsyncSession, *, active_only: bool = True) -> list[PackageView]:
    stmt = select(Package).order_by(Package.price_mxn, Package.id)
    if active_only:
        stmt = stmt.where(Package.active.is_(True))
    return [_package_view(p) for p in await session.scalars(stmt)]


async def get_package(session: AsyncSession, package_id: int) -> PackageView:
    pkg = await session.get(Package, package_id)
    if pkg is None:
        raise NotFound("No se encontró el paquete.")
    return _package_view(pkg)


# --------------------------------------------------------------------------- orders: reading
async def _load(session: AsyncSession, order_id: int, vendor_id: int | None = None, *, lock: bool = False) -> Order:
    order = await session.get(Order, order_id, with_for_update=lock, populate_existing=lock)
    # Another vendor's order answers exactly like a missing one: existence does not leak.
    if order is None or (vendor_id is not None and order.vendor_id != vendor_id):
        raise NotFound("No se encontró la orden.")
    return order


def _view_of(m: Mapping[str, Any]) -> OrderView:
    """An :class:`OrderView` from an ``orders`` row's mapping with its vendor's ``vendor_rfc`` /
    ``vendor_razon_social`` and its proof's ``proof_sha256`` / ``proof_content_type``."""
    return OrderView(
        id=m["id"],
        vendor_id=m["vendor_id"],
        vendor_rfc=m["vendor_rfc"],
        vendor_razon_social=m["vendor_razon_social"],
        package_id=m["package_id"],
        package_name=m["package_name"],
        package_stamps=m["package_stamps"],
        package_price_mxn=m["package_price_mxn"],
        package_validity_days=m["package_validity_days"],
        contact_empresa=m["contact_empresa"],
        contact_nombre=m["contact_nombre"],
        contact_telefono=m["contact_telefono"],
        contact_correo=m["contact_correo"],
        payment_reference=m["payment_reference"] or make_payment_reference(m["id"]),
        status=m["status"],
        status_label=STATUS_LABELS.get(m["status"], m["status"]),
        proof_sha256=m["proof_sha256"],
        proof_content_type=m["proof_content_type"],
        proof_received_at=m["proof_received_at"],
        sla_due_at=m["sla_due_at"],
        decided_at=m["decided_at"],
        decided_by=m["decided_by"],
        decided_via=m["decided_via"],
        rejection_reason=m["rejection_reason"],
        review_round=m["review_round"],
        slack_channel=m["slack_channel"],
        slack_ts=m["slack_ts"],
        created_at=m["created_at"],
    )


def _views_query() -> Select[Any]:
    """Orders with what their views need from the vendor and the proof file: one statement."""
    return (
        select(
            *Order.__table__.columns,
            Vendor.rfc.label("vendor_rfc"),
            Vendor.razon_social.label("vendor_razon_social"),
            FileRecord.sha256.label("proof_sha256"),
            FileRecord.content_type.label("proof_content_type"),
        )
        .join(Vendor, Vendor.id == Order.vendor_id)
        .outerjoin(FileRecord, FileRecord.id == Order.proof_file_id)
    )


async def _view(session: AsyncSession, o: Order) -> OrderView:
    return _view_of((await session.execute(_views_query().where(Order.id == o.id))).one()._mapping)


async def get_order(session: AsyncSession, order_id: int, *, vendor_id: int | None = None) -> OrderView:
    row = (await session.execute(_views_query().where(Order.id == order_id))).one_or_none()
    # Another vendor's order answers exactly like a missing one: existence does not leak.
    if row is None or (vendor_id is not None and row.vendor_id != vendor_id):
        raise NotFound("No se encontró la orden.")
    return _view_of(row._mapping)


async def check_order(session: AsyncSession, order_id: int, *, vendor_id: int) -> None:
    """Raise NotFound unless ``order_id`` exists and belongs to ``vendor_id`` (one indexed read)."""
    found = await session.scalar(select(Order.id).where(Order.id == order_id, Order.vendor_id == vendor_id))
    if found is None:
        raise NotFound("No se encontró la orden.")


async def list_orders(
    session: AsyncSession,
    *,
    status: str | None = None,
    vendor_id: int | None = None,
    limit: int = 100,
    by_sla: bool = False,
) -> list[OrderView]:
    stmt = _views_query().limit(limit)
    stmt = stmt.order_by(Order.sla_due_at, Order.id) if by_sla else stmt.order_by(Order.id.desc())
    if status:
        stmt = stmt.where(Order.status == status)
    if vendor_id is not None:
        stmt = stmt.where(Order.vendor_id == vendor_id)
    return [_view_of(row._mapping) for row in await session.execute(stmt)]


# --------------------------------------------------------------------------- notifications
def local(dt: datetime, cfg: OrdersConfig) -> str:
    return dt.astimezone(ZoneInfo(cfg.calendar.tz)).strftime("%d/%m/%Y %H:%M")


class _Addressee(Protocol):
    """What the order e-mails need of an order (an ``Order`` row or an :class:`OrderView`)."""

    @property
    def id(self) -> int: ...
    @property
    def contact_correo(self) -> str: ...
    @property
    def contact_nombre(self) -> str: ...
    @property
    def contact_empresa(self) -> str: ...
    @property
    def package_name(self) -> str: ...
    @property
    def package_stamps(self) -> int: ...
    @property
    def package_price_mxn(self) -> Decimal: ...
    @property
    def package_validity_days(self) -> int: ...
    @property
    def payment_reference(self) -> str | None: ...


async def _email(
    session: AsyncSession,
    order: _Addressee,
    template: str,
    cfg: OrdersConfig,
    now: datetime,
    *,
    key: str,
    subject: str,
    context: dict[str, Any],
) -> None:
    await queue_email_row(
        session,
        EmailSpec(
            template=template,
            to=[order.contact_correo],
            subject=subject,
            context={
                "order_id": order.id,
                "nombre": order.contact_nombre,
                "empresa": order.contact_empresa,
                "package_name": order.package_name,
                "stamps": order.package_stamps,
                "price": f"{order.package_price_mxn:,.2f}",
                "validity_days": order.package_validity_days,
                "reference": order.payment_reference,
                **context,
            },
            key=key,
            tag=order.payment_reference or "",
            related_type="order",
            related_id=order.id,
        ),
        mail_from=cfg.mail_from,
        domain=cfg.mail_domain,
        now=now,
    )


async def _sync_slack(session: AsyncSession, order: _Addressee, cfg: OrdersConfig, now: datetime, reason: str) -> None:
    if cfg.slack_enabled:
        await enqueue(
            session,
            kind=SLACK_SYNC_ORDER,
            payload={"order_id": order.id},
            key=f"slack:order:{order.id}:{reason}:{now.timestamp()}",
            now=now,
        )


# --------------------------------------------------------------------------- orders: writing
async def create_order(
    session: AsyncSession,
    *,
    vendor_id: int,
    package_id: int,
    contact: dict[str, object],
    actor: Actor,
    cfg: OrdersConfig,
    now: datetime,
) -> OrderView:
    """Create an order with a snapshot of the package and the contact data, and e-mail the bank data."""
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No se encontró el proveedor.")
    client = await session.get(Client, vendor.client_id)
    if client is None or not client.timbrado_enabled:
        raise Conflict(
            "El Módulo de Timbrado de complementos de pago no está habilitado para tu cliente; "
            "solicita a tu cliente que lo configure con soporte.",
            code="module_not_enabled",
        )
    pkg = await session.get(Package, package_id)
    if pkg is None or not pkg.active:
        raise NotFound("No se encontró el paquete o ya no está disponible.")
    try:
        data = validate_contact(contact)
    except ValidationErrors as exc:
        raise Invalid(
            "Revisa los datos de contacto.",
            code="invalid_contact",
            details=[FieldProblem(e.field, e.code, e.message).as_dict() for e in exc.errors],
        ) from None
    order = Order(
        vendor_id=vendor_id,
        package_id=pkg.id,
        package_name=pkg.name,
        package_stamps=pkg.stamps,
        package_price_mxn=pkg.price_mxn,
        package_validity_days=pkg.validity_days,
        contact_empresa=data.empresa,
        contact_nombre=data.nombre,
        contact_telefono=data.telefono,
        contact_correo=data.correo,
        status=OrderStatus.AWAITING_PAYMENT.value,
        review_round=0,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    order.payment_reference = make_payment_reference(order.id)
    await record(
        session,
        actor=actor,
        action="order.created",
        subject_type="order",
        subject_id=order.id,
        at=now,
        after={"package_id": pkg.id, "price_mxn": str(pkg.price_mxn), "reference": order.payment_reference},
    )
    await _email(
        session,
        order,
        "order_created",
        cfg,
        now,
        key=f"order:{order.id}:created",
        subject=f"Datos para tu pago - {order.package_name} (referencia {order.payment_reference})",
        context={"bank": cfg.bank},
    )
    return await _view(session, order)


_OPEN_FOR_PROOF = (OrderStatus.AWAITING_PAYMENT.value, OrderStatus.REJECTED.value)
_orders = table_of(Order)
# Built once (with bind parameters): every proof upload runs them, and building an UPDATE with a dozen
# values costs more than running it.
_ORDER_FOR_PROOF = (
    select(_orders.c.vendor_id, _orders.c.status, Vendor.rfc, Vendor.razon_social)
    .join(Vendor, Vendor.id == _orders.c.vendor_id)
    .where(_orders.c.id == bindparam("p_order_id"))
    .with_for_update(of=_orders)
)
_PROOF_RECEIVED = (
    update(_orders)
    .where(_orders.c.id == bindparam("p_order_id"), _orders.c.status.in_(_OPEN_FOR_PROOF))
    .values(
        status=OrderStatus.IN_REVIEW.value,
        proof_file_id=bindparam("p_file_id"),
        proof_received_at=bindparam("p_now"),
        sla_due_at=bindparam("p_sla_due_at"),
        reminder_due_at=bindparam("p_reminder_due_at"),
        reminder_sent_at=None,
        escalated_at=None,
        review_round=_orders.c.review_round + 1,
        decided_at=None,
        decided_by=None,
        decided_via=None,
        updated_at=bindparam("p_now"),
    )
    .returning(*_orders.columns)
)


async def attach_proof(
    session: AsyncSession,
    order_id: int,
    *,
    vendor_id: int,
    stored: StoredFile,
    display_name: str,
    actor: Actor,
    cfg: OrdersConfig,
    now: datetime,
) -> OrderView:
    """Record an uploaded proof of payment; the review is due in 24 business hours.

    Every proof upload runs this, so it is plain statements, not ORM units of work: the order read
    with its row lock, the file record, the conditional update, the proof row, the audit event, the
    e-mail and its job.
    """
    current = (await session.execute(_ORDER_FOR_PROOF, {"p_order_id": order_id})).one_or_none()
    if current is None or current.vendor_id != vendor_id:
        raise NotFound("No se encontró la orden.")
    if current.status == OrderStatus.IN_REVIEW.value:
        raise Conflict(
            "Tu comprobante ya está en revisión; espera la respuesta antes de enviar otro.", code="proof_in_review"
        )
    if current.status == OrderStatus.APPROVED.value:
        raise Conflict("La orden ya fue aprobada; no es necesario enviar otro comprobante.", code="order_approved")
    file_id = await _file_record_id(session, stored, now)
    sla_due_at = cfg.calendar.add_business_hours(now, cfg.sla_hours)
    params = {
        "p_order_id": order_id,
        "p_file_id": file_id,
        "p_now": now,
        "p_sla_due_at": sla_due_at,
        "p_reminder_due_at": cfg.calendar.add_business_hours(now, cfg.sla_hours * cfg.reminder_fraction),
    }
    updated = (await session.execute(_PROOF_RECEIVED, params)).one_or_none()
    if updated is None:
        raise Conflict("La orden cambió mientras se subía el comprobante; vuelve a intentarlo.", code="order_changed")
    view = _view_of(
        {
            **updated._mapping,
            "vendor_rfc": current.rfc,
            "vendor_razon_social": current.razon_social,
            "proof_sha256": stored.sha256,
            "proof_content_type": stored.content_type.value,
        }
    )
    await session.execute(
        _INSERT_PROOF,
        {
            "order_id": order_id,
            "file_id": file_id,
            "display_name": display_name[:255],
            "review_round": view.review_round,
            "uploaded_at": now,
        },
    )
    await insert_event(
        session,
        actor=actor,
        action="order.proof_uploaded",
        subject_type="order",
        subject_id=order_id,
        at=now,
        before={"status": current.status},
        after={"status": view.status, "sha256": stored.sha256, "round": view.review_round},
    )
    await _email(
        session,
        view,
        "proof_received",
        cfg,
        now,
        key=f"order:{order_id}:proof:{view.review_round}",
        subject=f"Recibimos tu comprobante de pago (referencia {view.payment_reference})",
        context={"due_local": local(sla_due_at, cfg), "tz": cfg.calendar.tz, "sla_hours": cfg.sla_hours},
    )
    await _sync_slack(session, view, cfg, now, f"proof-{view.review_round}")
    return view


async def _file_record_id(session: AsyncSession, stored: StoredFile, now: datetime) -> int:
    """The ``files`` row of ``stored``: the existing one (same SHA-256) or a new one."""
    existing = await session.scalar(select(FileRecord.id).where(FileRecord.sha256 == stored.sha256))
    if existing is not None:
        return int(existing)
    values = {
        "sha256": stored.sha256,
        "size": stored.size,
        "content_type": stored.content_type.value,
        "width": stored.width,
        "height": stored.height,
        "created_at": now,
    }
    return int((await session.execute(_INSERT_FILE, values)).scalar_one())


# Built once: the upload path runs them on every request (building a statement costs more than
# running it on SQLite).
_INSERT_PROOF = insert(table_of(OrderProof))
_INSERT_FILE = insert(table_of(FileRecord)).returning(table_of(FileRecord).c.id)


def _already(order: Order) -> AlreadyDecided:
    verb = "aprobada" if order.status == OrderStatus.APPROVED.value else "rechazada"
    who = order.decided_by or "otra persona"
    return AlreadyDecided(f"La orden {order.id} ya fue {verb} por {who}.")


async def approve_order(
    session: AsyncSession, order_id: int, *, actor: Actor, cfg: OrdersConfig, now: datetime
) -> tuple[OrderView, stamps.PlanView]:
    """Approve the proof: provision the stamp plan (exactly once) and e-mail the vendor."""
    order = await _load(session, order_id, lock=True)
    if order.status != OrderStatus.IN_REVIEW.value:
        if order.status in (OrderStatus.APPROVED.value, OrderStatus.REJECTED.value) and order.decided_by:
            raise _already(order)
        raise Conflict("La orden no tiene un comprobante en revisión.", code="no_proof_in_review")
    result = await session.execute(
        update(Order)
        .where(
            and_(
                Order.id == order_id,
                Order.status == OrderStatus.IN_REVIEW.value,
                Order.review_round == order.review_round,
            )
        )
        .values(
            status=OrderStatus.APPROVED.value,
            decided_at=now,
            decided_by=actor.label,
            decided_via=actor.driver.value,
            rejection_reason=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(order)
    if getattr(result, "rowcount", 0) != 1:
        raise _already(order)
    plan = await stamps.provision(
        session,
        vendor_id=order.vendor_id,
        order_id=order.id,
        plan_name=order.package_name,
        stamps=order.package_stamps,
        validity_days=order.package_validity_days,
        price_paid_mxn=order.package_price_mxn,
        purchased_at=order.proof_received_at or now,
        now=now,
    )
    await record(
        session,
        actor=actor,
        action="order.approved",
        subject_type="order",
        subject_id=order.id,
        at=now,
        before={"status": OrderStatus.IN_REVIEW.value},
        after={"status": order.status, "plan_id": plan.id},
    )
    await _email(
        session,
        order,
        "order_approved",
        cfg,
        now,
        key=f"order:{order.id}:approved",
        subject="Ya puedes comenzar a usar el Timbrado para complemento de pago",
        context={"valid_until_local": local(plan.valid_until, cfg)},
    )
    await _sync_slack(session, order, cfg, now, "approved")
    return await _view(session, order), plan


async def reject_order(
    session: AsyncSession, order_id: int, *, reason: str, actor: Actor, cfg: OrdersConfig, now: datetime
) -> OrderView:
    reason = reason.strip()
    if not reason:
        raise Invalid("Escribe el motivo del rechazo; se enviará al proveedor.", code="reason_required")
    if len(reason) > MAX_REASON:
        raise Invalid(f"El motivo no puede exceder {MAX_REASON} caracteres.", code="reason_too_long")
    order = await _load(session, order_id, lock=True)
    if order.status != OrderStatus.IN_REVIEW.value:
        if order.decided_by:
            raise _already(order)
        raise Conflict("La orden no tiene un comprobante en revisión.", code="no_proof_in_review")
    result = await session.execute(
        update(Order)
        .where(
            Order.id == order_id, Order.status == OrderStatus.IN_REVIEW.value, Order.review_round == order.review_round
        )
        .values(
            status=OrderStatus.REJECTED.value,
            decided_at=now,
            decided_by=actor.label,
            decided_via=actor.driver.value,
            rejection_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(order)
    if getattr(result, "rowcount", 0) != 1:
        raise _already(order)
    await record(
        session,
        actor=actor,
        action="order.rejected",
        subject_type="order",
        subject_id=order.id,
        at=now,
        before={"status": OrderStatus.IN_REVIEW.value},
        after={"status": order.status},
        reason=reason,
    )
    await _email(
        session,
        order,
        "order_rejected",
        cfg,
        now,
        key=f"order:{order.id}:rejected:{order.review_round}",
        subject=f"Tu comprobante de pago no fue aprobado (referencia {order.payment_reference})",
        context={"reason": reason},
    )
    await _sync_slack(session, order, cfg, now, f"rejected-{order.review_round}")
    return await _view(session, order)


async def set_slack_message(session: AsyncSession, order_id: int, channel: str, ts: str) -> None:
    order = await _load(session, order_id, lock=True)
    order.slack_channel, order.slack_ts = channel, ts


async def proof_files(
    session: AsyncSession, order_id: int, *, vendor_id: int | None = None
) -> list[tuple[OrderProof, FileRecord]]:
    await _load(session, order_id, vendor_id)
    rows = await session.execute(
        select(OrderProof, FileRecord)
        .join(FileRecord, FileRecord.id == OrderProof.file_id)
        .where(OrderProof.order_id == order_id)
        .order_by(OrderProof.id)
    )
    return [(p, f) for p, f in rows.all()]


# --------------------------------------------------------------------------- SLA
SLACK_ORDER_REMINDER = "slack.order_reminder"
SLACK_ORDER_ESCALATION = "slack.order_escalation"


async def sla_sweep(session: AsyncSession, *, cfg: OrdersConfig, now: datetime) -> tuple[int, int]:
    """Queue reminders for reviews nearing their due time and escalations for overdue ones (once each)."""
    reminders = escalations = 0
    due = await session.scalars(
        select(Order)
        .where(
            Order.status == OrderStatus.IN_REVIEW.value, Order.reminder_sent_at.is_(None), Order.reminder_due_at <= now
        )
        .with_for_update(skip_locked=True)
    )
    for order in due:
        order.reminder_sent_at = now
        if cfg.slack_enabled:
            await enqueue(
                session,
                kind=SLACK_ORDER_REMINDER,
                payload={"order_id": order.id},
                key=f"slack:order:{order.id}:reminder:{order.review_round}",
                now=now,
            )
        reminders += 1
    overdue = await session.scalars(
        select(Order)
        .where(Order.status == OrderStatus.IN_REVIEW.value, Order.escalated_at.is_(None), Order.sla_due_at <= now)
        .with_for_update(skip_locked=True)
    )
    for order in overdue:
        order.escalated_at = now
        if cfg.slack_enabled:
            await enqueue(
                session,
                kind=SLACK_ORDER_ESCALATION,
                payload={"order_id": order.id},
                key=f"slack:order:{order.id}:escalation:{order.review_round}",
                now=now,
            )
        await record(
            session,
            actor=Actor.system(),
            action="order.sla_overdue",
            subject_type="order",
            subject_id=order.id,
            at=now,
            after={"sla_due_at": order.sla_due_at.isoformat() if order.sla_due_at else None},
        )
        escalations += 1
    return reminders, escalations
