"""Estado de cuenta queries: plan summary, the REP list (filters, keyset pagination) and the portfolio.

Every query is a fixed number of statements whatever the number of rows (no N+1).  The REP list is
ordered newest first by ``(issued_at, id)`` and pages with a keyset cursor, served by the index
``ix_payment_complements_vendor_issued_id``: a deep page costs the same as the first one.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Dialect, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Invalid, NotFound
from core.orders.models import Order, OrderStatus
from core.stamping.models import PaymentComplement, RepStatus
from core.stamps.models import StampPlan
from core.vendors.models import CfdiSettings, Vendor

DEFAULT_TIME_ZONE = "America/Mexico_City"
MAX_PAGE = 500

STATUS_LABELS: dict[str, str] = {
    RepStatus.SEALED.value: "En proceso",
    RepStatus.STAMPED.value: "Vigente",
    RepStatus.REJECTED.value: "Rechazado",
    RepStatus.CANCEL_REQUESTED.value: "Cancelación solicitada",
    RepStatus.CANCEL_PENDING.value: "Cancelación en espera de aceptación",
    RepStatus.CANCELLED.value: "Cancelado",
    RepStatus.CANCEL_REJECTED.value: "Vigente (cancelación rechazada)",
}


# ------------------------------------------------------------------------------------ vendor
@dataclass(frozen=True, slots=True)
class VendorRef:
    id: int
    rfc: str
    razon_social: str
    correo: str
    time_zone: str
    created_at: datetime


async def vendor_ref(session: AsyncSession, vendor_id: int) -> VendorRef:
    """The vendor with its time zone (Datos del CFDI, else America/Mexico_City); NotFound if absent."""
    row = (
        await session.execute(
            select(Vendor, CfdiSettings.time_zone)
            .outerjoin(CfdiSettings, CfdiSettings.vendor_id == Vendor.id)
            .where(Vendor.id == vendor_id)
        )
    ).first()
    if row is None:
        raise NotFound("No se encontró el proveedor.", code="vendor_not_found")
    vendor, zone = row
    return VendorRef(
        vendor.id, vendor.rfc, vendor.razon_social, vendor.correo, zone or DEFAULT_TIME_ZONE, vendor.created_at
    )


# ------------------------------------------------------------------------------------ plans
@dataclass(frozen=True, slots=True)
class PlanLine:
    plan_id: int
    plan_name: str
    stamps_total: int
    stamps_used: int
    stamps_reserved: int
    stamps_available: int
    valid_from: datetime
    valid_until: datetime
    purchased_at: datetime
    price_paid_mxn: Decimal
    expired: bool
    days_to_expiry: int


@dataclass(frozen=True, slots=True)
class StatementSummary:
    vendor: VendorRef
    plans: tuple[PlanLine, ...]
    stamps_available: int  # in plans still valid
    stamps_used: int  # all plans
    stamps_reserved: int
    total_paid_mxn: Decimal
    next_expiry: datetime | None  # of the valid plan with stamps left that expires first
    days_to_expiry: int | None


def _days_left(until: datetime, now: datetime) -> int:
    return max(0, (until - now) // timedelta(days=1))


def plan_line(plan: StampPlan, now: datetime) -> PlanLine:
    available = plan.stamps_total - plan.stamps_used - plan.stamps_reserved
    return PlanLine(
        plan_id=plan.id,
        plan_name=plan.plan_name,
        stamps_total=plan.stamps_total,
        stamps_used=plan.stamps_used,
        stamps_reserved=plan.stamps_reserved,
        stamps_available=available,
        valid_from=plan.valid_from,
        valid_until=plan.valid_until,
        purchased_at=plan.purchased_at,
        price_paid_mxn=plan.price_paid_mxn,
        expired=plan.valid_until <= now,
        days_to_expiry=_days_left(plan.valid_until, now),
    )


async def statement_summary(session: AsyncSession, vendor_id: int, now: datetime) -> StatementSummary:
    """The vendor's plans (newest purchase first) and totals; used + reserved + available = total per plan."""
    vendor = await vendor_ref(session, vendor_id)
    rows = await session.scalars(
        select(StampPlan)
        .where(StampPlan.vendor_id == vendor_id)
        .order_by(StampPlan.purchased_at.desc(), StampPlan.id.desc())
    )
    plans = tuple(plan_line(p, now) for p in rows)
    valid = [p for p in plans if not p.expired]
    usable = [p for p in valid if p.stamps_available > 0]
    next_expiry = min((p.valid_until for p in usable), default=None)
    return StatementSummary(
        vendor=vendor,
        plans=plans,
        stamps_available=sum(p.stamps_available for p in valid),
        stamps_used=sum(p.stamps_used for p in plans),
        stamps_reserved=sum(p.stamps_reserved for p in plans),
        total_paid_mxn=sum((p.price_paid_mxn for p in plans), Decimal("0.00")),
        next_expiry=next_expiry,
        days_to_expiry=_days_left(next_expiry, now) if next_expiry else None,
    )


# ------------------------------------------------------------------------------------ REP list
@dataclass(frozen=True, slots=True)
class RepFilter:
    """Filters of the REP list.  Dates are calendar days in the vendor's time zone, both inclusive."""

    date_from: date | None = None
    date_to: date | None = None
    receptor: str | None = None  # RFC (exact) or part of the name
    status: str | None = None  # a RepStatus value; None = every REP that received a UUID
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise Invalid("La fecha inicial es posterior a la fecha final.", code="rango_invalido")
        if self.status is not None and self.status not in STATUS_LABELS:
            raise Invalid(f"Estado desconocido; use uno de: {', '.join(STATUS_LABELS)}.", code="estado_invalido")
        if self.currency is not None and (len(self.currency) != 3 or not self.currency.isalpha()):
            raise Invalid("La moneda debe ser un código de tres letras (c_Moneda), p. ej. MXN.", code="moneda_invalida")
        if self.receptor is not None and len(self.receptor) > 300:
            raise Invalid("El receptor buscado es demasiado largo.", code="receptor_invalido")


@dataclass(frozen=True, slots=True)
class RepLine:
    id: int
    issued_at: datetime  # UTC
    issued_local: datetime  # naive, in the vendor's time zone
    payment_id: int  # No. pago
    serie: str
    folio: int
    receiver_rfc: str
    receiver_name: str
    uuid: str | None
    amount: Decimal
    currency: str
    status: str

    @property
    def serie_folio(self) -> str:
        return f"{self.serie}-{self.folio}" if self.serie else str(self.folio)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True, slots=True)
class RepPage:
    items: tuple[RepLine, ...]
    next_cursor: str | None


REP_COLUMNS = (
    PaymentComplement.id,
    PaymentComplement.issued_at,
    PaymentComplement.payment_id,
    PaymentComplement.serie,
    PaymentComplement.folio,
    PaymentComplement.receiver_rfc,
    PaymentComplement.receiver_name,
    PaymentComplement.uuid,
    PaymentComplement.amount,
    PaymentComplement.currency,
    PaymentComplement.status,
)


def local_bounds(filters: RepFilter, time_zone: str) -> tuple[datetime | None, datetime | None]:
    """UTC bounds [start, end) of the filter's calendar days in ``time_zone``."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(filters.date_from, time(0), zone).astimezone(UTC) if filters.date_from else None
    end = (
        datetime.combine(filters.date_to + timedelta(days=1), time(0), zone).astimezone(UTC)
        if filters.date_to
        else None
    )
    return start, end


def rep_query(vendor_id: int, filters: RepFilter, time_zone: str) -> Select[*tuple[Any, ...]]:
    """The REP list as one SELECT of plain columns, newest first (used by the page and the exports)."""
    pc = PaymentComplement
    stmt = select(*REP_COLUMNS).where(pc.vendor_id == vendor_id)
    stmt = stmt.where(pc.uuid.is_not(None)) if filters.status is None else stmt.where(pc.status == filters.status)
    start, end = local_bounds(filters, time_zone)
    if start is not None:
        stmt = stmt.where(pc.issued_at >= start)
    if end is not None:
        stmt = stmt.where(pc.issued_at < end)
    if filters.currency:
        stmt = stmt.where(pc.currency == filters.currency.upper())
    if filters.receptor and filters.receptor.strip():
        needle = " ".join(filters.receptor.split())
        stmt = stmt.where(
            or_(
                pc.receiver_rfc == needle.upper(),
                func.lower(pc.receiver_name).contains(needle.lower(), autoescape=True),
            )
        )
    return stmt.order_by(pc.issued_at.desc(), pc.id.desc())


def rep_sql(vendor_id: int, filters: RepFilter, time_zone: str, dialect: Dialect) -> tuple[str, list[Any]]:
    """:func:`rep_query` as SQL text for ``dialect``'s driver and its positional parameters, already
    converted by their column types (so a bare driver cursor runs exactly the query the ORM would).

    Rows come back in ``REP_COLUMNS`` order as the driver returns them, with no type processing."""
    compiled = rep_query(vendor_id, filters, time_zone).compile(dialect=dialect)
    values = compiled.construct_params()
    params: list[Any] = []
    for name in compiled.positiontup or ():
        value = values[name]
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        params.append(process(value) if process is not None else value)
    return compiled.string, params


def rep_line(row: Any, zone: ZoneInfo) -> RepLine:
    issued: datetime = row.issued_at
    return RepLine(
        id=row.id,
        issued_at=issued,
        issued_local=issued.astimezone(zone).replace(tzinfo=None),
        payment_id=row.payment_id,
        serie=row.serie,
        folio=row.folio,
        receiver_rfc=row.receiver_rfc,
        receiver_name=row.receiver_name,
        uuid=row.uuid,
        amount=row.amount,
        currency=row.currency,
        status=row.status,
    )


def encode_cursor(line: RepLine) -> str:
    raw = f"{line.issued_at.astimezone(UTC).isoformat()}|{line.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    bad = Invalid("El cursor de paginación no es válido; vuelva a pedir la primera página.", code="cursor_invalido")
    if len(cursor) > 100:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        when = datetime.fromisoformat(stamp)
        row_id = int(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    if when.tzinfo is None or row_id < 1:
        raise bad
    return when.astimezone(UTC), row_id


async def list_reps(
    session: AsyncSession,
    vendor: VendorRef,
    filters: RepFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> RepPage:
    """One page of the vendor's REPs, newest first; ``next_cursor`` is None on the last page."""
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"El tamaño de página debe estar entre 1 y {MAX_PAGE}.", code="limite_invalido")
    stmt = rep_query(vendor.id, filters, vendor.time_zone)
    if cursor:
        when, row_id = decode_cursor(cursor)
        pc = PaymentComplement
        # the redundant ``issued_at <= when`` gives both databases an index range to seek into
        stmt = stmt.where(pc.issued_at <= when, or_(pc.issued_at < when, and_(pc.issued_at == when, pc.id < row_id)))
    rows = (await session.execute(stmt.limit(limit + 1))).all()
    zone = ZoneInfo(vendor.time_zone)
    items = tuple(rep_line(r, zone) for r in rows[:limit])
    return RepPage(items, encode_cursor(items[-1]) if len(rows) > limit and items else None)


# ------------------------------------------------------------------------------------ portfolio
@dataclass(frozen=True, slots=True)
class VendorBalance:
    vendor_id: int
    rfc: str
    razon_social: str
    stamps_available: int
    active_plans: int
    next_expiry: datetime | None


@dataclass(frozen=True, slots=True)
class ExpiringPlan:
    plan_id: int
    vendor_id: int
    rfc: str
    razon_social: str
    plan_name: str
    stamps_available: int
    valid_until: datetime
    days_to_expiry: int


@dataclass(frozen=True, slots=True)
class OrderInReview:
    order_id: int
    vendor_id: int
    rfc: str
    razon_social: str
    package_name: str
    amount_mxn: Decimal
    proof_received_at: datetime | None
    sla_due_at: datetime | None
    overdue: bool


@dataclass(frozen=True, slots=True)
class Portfolio:
    vendors: tuple[VendorBalance, ...]  # lowest balance first
    expiring: tuple[ExpiringPlan, ...]  # soonest first
    orders_in_review: tuple[OrderInReview, ...]  # most urgent first


async def portfolio(session: AsyncSession, now: datetime, *, expiring_days: int = 30, limit: int = 200) -> Portfolio:
    """Staff view: vendors by balance, plans expiring within ``expiring_days``, orders waiting review."""
    sp = StampPlan
    available = sp.stamps_total - sp.stamps_used - sp.stamps_reserved
    active = and_(sp.id.is_not(None), sp.valid_from <= now, sp.valid_until > now)
    balance_col = func.coalesce(func.sum(case((active, available), else_=0)), 0)
    vendor_rows = (
        await session.execute(
            select(
                Vendor.id,
                Vendor.rfc,
                Vendor.razon_social,
                balance_col.label("available"),
                func.count(case((active, sp.id))).label("active_plans"),
                func.min(case((and_(active, available > 0), sp.valid_until))).label("next_expiry"),
            )
            .outerjoin(sp, sp.vendor_id == Vendor.id)
            .group_by(Vendor.id, Vendor.rfc, Vendor.razon_social)
            .order_by(balance_col, Vendor.id)
            .limit(limit)
        )
    ).all()
    vendors = tuple(
        VendorBalance(r.id, r.rfc, r.razon_social, int(r.available), int(r.active_plans), r.next_expiry)
        for r in vendor_rows
    )
    plan_rows = (
        await session.execute(
            select(sp, Vendor.rfc, Vendor.razon_social)
            .join(Vendor, Vendor.id == sp.vendor_id)
            .where(sp.valid_until > now, sp.valid_until <= now + timedelta(days=expiring_days))
            .order_by(sp.valid_until, sp.id)
            .limit(limit)
        )
    ).all()
    expiring = tuple(
        ExpiringPlan(
            p.id,
            p.vendor_id,
            rfc,
            name,
            p.plan_name,
            p.stamps_total - p.stamps_used - p.stamps_reserved,
            p.valid_until,
            _days_left(p.valid_until, now),
        )
        for p, rfc, name in plan_rows
    )
    order_rows = (
        await session.execute(
            select(Order, Vendor.rfc, Vendor.razon_social)
            .join(Vendor, Vendor.id == Order.vendor_id)
            .where(Order.status == OrderStatus.IN_REVIEW.value)
            .order_by(Order.sla_due_at, Order.id)
            .limit(limit)
        )
    ).all()
    orders = tuple(
        OrderInReview(
            o.id,
            o.vendor_id,
            rfc,
            name,
            o.package_name,
            o.package_price_mxn,
            o.proof_received_at,
            o.sla_due_at,
            o.sla_due_at is not None and o.sla_due_at <= now,
        )
        for o, rfc, name in order_rows
    )
    return Portfolio(vendors, expiring, orders)
