"""Statement summary e-mails (weekly or monthly, per vendor, in its time zone) and balance alerts.

Exactly once: each summary claims a row ``(vendor, "summary", period)`` in ``statement_deliveries``
(unique) in the same transaction that queues its e-mail, one vendor per transaction.  A second
scheduler blocks on the same key and then skips it; a run stopped halfway leaves the vendors it did
committed, and the next run does only the rest.  The e-mail job key repeats the guarantee.

Alerts: the low-balance alert goes out when the balance falls below the threshold and is re-armed
only when the balance is back at or above it (one alert per crossing, a conditional UPDATE decides
it); the expiry alert goes out once per plan, ``expiry_days`` before it expires, while it has stamps.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import Invalid
from core.notifications.outbox import EmailSpec, queue_email
from core.settings import Settings
from core.stamping.deadlines import rep_deadline
from core.stamping.models import Payment, PaymentComplement, PaymentStatus, RepStatus
from core.stamps.models import StampLedgerEntry, StampPlan
from core.statements.exports import export_filename, write_xlsx
from core.statements.models import StatementDelivery, StatementPreference
from core.statements.periods import FREQUENCIES, Period, last_due_period
from core.statements.queries import RepFilter, StatementSummary, VendorRef, statement_summary, vendor_ref

log = logging.getLogger("timbrado.statements")

MAX_LISTED_PAYMENTS = 50


@dataclass(frozen=True, slots=True)
class SummaryConfig:
    mail_from: str
    mail_domain: str
    data_dir: Path
    frequency: str = "weekly"
    send_hour: int = 8
    low_balance_threshold: int = 10
    expiry_days: int = 15
    buy_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> SummaryConfig:
        return cls(
            mail_from=settings.mail_from,
            mail_domain=settings.mail_domain,
            data_dir=settings.data_dir,
            frequency=settings.statement_frequency,
            send_hour=settings.statement_send_hour,
            low_balance_threshold=settings.low_balance_threshold,
            expiry_days=settings.expiry_alert_days,
            buy_url=settings.buy_url or f"{settings.base_url}/paquetes",
        )

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {FREQUENCIES}")
        if not 0 <= self.send_hour <= 23:
            raise ValueError("send_hour must be 0..23")


# ------------------------------------------------------------------------------------ preferences
@dataclass(frozen=True, slots=True)
class Preferences:
    vendor_id: int
    frequency: str | None  # None: the service default
    attach_xlsx: bool
    low_balance_threshold: int | None  # None: the service default


async def preferences_of(session: AsyncSession, vendor_id: int) -> Preferences:
    row = await session.get(StatementPreference, vendor_id)
    if row is None:
        return Preferences(vendor_id, None, False, None)
    return Preferences(vendor_id, row.frequency, row.attach_xlsx, row.low_balance_threshold)


_UNSET: Any = object()


async def set_preferences(
    session: AsyncSession,
    vendor_id: int,
    *,
    now: datetime,
    frequency: str | None = _UNSET,
    attach_xlsx: bool | None = None,
    low_balance_threshold: int | None = _UNSET,
) -> Preferences:
    """Change a vendor's summary preferences (arguments left out keep their value)."""
    await vendor_ref(session, vendor_id)
    if frequency is not _UNSET and frequency is not None and frequency not in FREQUENCIES:
        raise Invalid("Frecuencia inválida; use weekly, monthly u off.", code="frecuencia_invalida")
    if (
        low_balance_threshold is not _UNSET
        and low_balance_threshold is not None
        and not (0 <= low_balance_threshold <= 10_000_000)
    ):
        raise Invalid("El umbral de saldo bajo debe estar entre 0 y 10,000,000.", code="umbral_invalido")
    row = await _ensure_preferences(session, vendor_id, now)
    if frequency is not _UNSET:
        row.frequency = frequency
    if attach_xlsx is not None:
        row.attach_xlsx = attach_xlsx
    if low_balance_threshold is not _UNSET:
        row.low_balance_threshold = low_balance_threshold
    row.updated_at = now
    await session.flush()
    return Preferences(vendor_id, row.frequency, row.attach_xlsx, row.low_balance_threshold)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _ensure_preferences(session: AsyncSession, vendor_id: int, now: datetime) -> StatementPreference:
    stmt = (
        _insert(session)(StatementPreference)
        .values(vendor_id=vendor_id, attach_xlsx=False, updated_at=now)
        .on_conflict_do_nothing(index_elements=["vendor_id"])
    )
    await session.execute(stmt)
    row = await session.get(StatementPreference, vendor_id, populate_existing=True)
    assert row is not None
    return row


async def claim(session: AsyncSession, vendor_id: int, kind: str, period_key: str, now: datetime) -> bool:
    """Record that ``kind`` for ``period_key`` goes out now; False when it already went (or is going)."""
    stmt = (
        _insert(session)(StatementDelivery)
        .values(vendor_id=vendor_id, kind=kind, period_key=period_key, created_at=now)
        .on_conflict_do_nothing(index_elements=["vendor_id", "kind", "period_key"])
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


# ------------------------------------------------------------------------------------ summary data
@dataclass(frozen=True, slots=True)
class PendingPayment:
    payment_id: int
    paid_at: datetime
    amount: str
    currency: str
    deadline: datetime  # the first instant the REP is late
    late: bool


@dataclass(frozen=True, slots=True)
class SummaryData:
    vendor: VendorRef
    period: Period
    statement: StatementSummary
    stamps_used: int  # in the period (debits minus refunds)
    reps_issued: int
    reps_cancelled: int
    pending_count: int
    pending: tuple[PendingPayment, ...]


async def summary_data(session: AsyncSession, vendor: VendorRef, period: Period, now: datetime) -> SummaryData:
    """Everything a summary says, in a fixed number of queries."""
    statement = await statement_summary(session, vendor.id, now)
    led = StampLedgerEntry
    used = await session.scalar(
        select(func.coalesce(func.sum(case((led.kind == "debit", 1), (led.kind == "refund", -1), else_=0)), 0)).where(
            led.vendor_id == vendor.id, led.created_at >= period.start, led.created_at < period.end
        )
    )
    pc = PaymentComplement
    issued = await session.scalar(
        select(func.count()).where(
            pc.vendor_id == vendor.id, pc.uuid.is_not(None), pc.issued_at >= period.start, pc.issued_at < period.end
        )
    )
    cancelled = await session.scalar(
        select(func.count()).where(
            pc.vendor_id == vendor.id,
            pc.status == RepStatus.CANCELLED.value,
            pc.cancelled_at >= period.start,
            pc.cancelled_at < period.end,
        )
    )
    waiting = (PaymentStatus.PENDING.value, PaymentStatus.REJECTED.value, PaymentStatus.STAMPING.value)
    pending_count = await session.scalar(
        select(func.count()).where(Payment.vendor_id == vendor.id, Payment.status.in_(waiting))
    )
    rows = await session.scalars(
        select(Payment)
        .where(Payment.vendor_id == vendor.id, Payment.status.in_(waiting))
        .order_by(Payment.paid_at, Payment.id)
        .limit(MAX_LISTED_PAYMENTS)
    )
    pending = []
    for p in rows:
        deadline = rep_deadline(p.paid_at, vendor.time_zone)
        pending.append(PendingPayment(p.id, p.paid_at, f"{p.amount:,.2f}", p.currency, deadline, deadline <= now))
    return SummaryData(
        vendor=vendor,
        period=period,
        statement=statement,
        stamps_used=int(used or 0),
        reps_issued=int(issued or 0),
        reps_cancelled=int(cancelled or 0),
        pending_count=int(pending_count or 0),
        pending=tuple(pending),
    )


def _fmt_day(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y")


def summary_context(data: SummaryData, cfg: SummaryConfig, *, attached: str | None) -> dict[str, Any]:
    zone = ZoneInfo(data.vendor.time_zone)
    st = data.statement
    return {
        "razon_social": data.vendor.razon_social,
        "rfc": data.vendor.rfc,
        "period": data.period.label,
        "balance": st.stamps_available,
        "stamps_used": data.stamps_used,
        "reps_issued": data.reps_issued,
        "reps_cancelled": data.reps_cancelled,
        "pending_count": data.pending_count,
        "pending": [
            {
                "id": p.payment_id,
                "paid_at": _fmt_day(p.paid_at, zone),
                "amount": p.amount,
                "currency": p.currency,
                # the legal deadline is the last day before the first late instant
                "deadline": _fmt_day(p.deadline - timedelta(seconds=1), zone),
                "late": p.late,
            }
            for p in data.pending
        ],
        "pending_more": max(0, data.pending_count - len(data.pending)),
        "days_to_expiry": st.days_to_expiry,
        "next_expiry": _fmt_day(st.next_expiry, zone) if st.next_expiry else None,
        "plans": [
            {
                "name": p.plan_name,
                "available": p.stamps_available,
                "used": p.stamps_used,
                "total": p.stamps_total,
                "valid_until": _fmt_day(p.valid_until, zone),
                "expired": p.expired,
            }
            for p in st.plans
        ],
        "buy_url": cfg.buy_url,
        "attached": attached,
    }


# ------------------------------------------------------------------------------------ sending
async def _vendors_with_plans(db: Database) -> list[int]:
    from core.vendors.models import Vendor

    async with db.session() as session:
        rows = await session.scalars(
            select(Vendor.id).where(exists().where(StampPlan.vendor_id == Vendor.id)).order_by(Vendor.id)
        )
        return list(rows)


async def send_summary(session: AsyncSession, vendor_id: int, cfg: SummaryConfig, now: datetime) -> str | None:
    """Queue the vendor's summary for its last due period, once; returns the period key when sent."""
    vendor = await vendor_ref(session, vendor_id)
    prefs = await preferences_of(session, vendor_id)
    frequency = prefs.frequency or cfg.frequency
    if frequency == "off":
        return None
    period = last_due_period(now, frequency, vendor.time_zone, cfg.send_hour)
    if vendor.created_at >= period.end:
        return None  # the vendor did not exist during that period
    if not await claim(session, vendor_id, "summary", period.key, now):
        return None
    data = await summary_data(session, vendor, period, now)
    attachments: list[dict[str, str]] = []
    attached = None
    if prefs.attach_xlsx:
        filters = RepFilter(date_from=period.first_day, date_to=period.last_day)
        name = export_filename(vendor, filters, "xlsx")
        rel = Path("statements") / str(vendor_id) / name
        target = cfg.data_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        await write_xlsx(session, vendor, filters, target)
        attachments.append(
            {
                "path": str(rel),
                "filename": name,
                "content_type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
        )
        attached = name
    label = "semanal" if frequency == "weekly" else "mensual"
    email = await queue_email(
        session,
        EmailSpec(
            template="statement_summary",
            to=[vendor.correo],
            subject=f"Estado de cuenta {label} del timbrado: {period.label}",
            context=summary_context(data, cfg, attached=attached),
            key=f"statement:{vendor_id}:{period.key}",
            related_type="vendor",
            related_id=vendor_id,
            attachments=attachments,
        ),
        mail_from=cfg.mail_from,
        domain=cfg.mail_domain,
        now=now,
    )
    if email is not None:
        await session.execute(
            update(StatementDelivery)
            .where(
                StatementDelivery.vendor_id == vendor_id,
                StatementDelivery.kind == "summary",
                StatementDelivery.period_key == period.key,
            )
            .values(email_id=email.id)
        )
    return period.key


AfterVendor = Callable[[int], Awaitable[None]]


async def run_summaries(
    db: Database, cfg: SummaryConfig, now: datetime, *, after_vendor: AfterVendor | None = None
) -> int:
    """Send every due summary; one transaction per vendor.  Returns how many were queued."""
    sent = 0
    for vendor_id in await _vendors_with_plans(db):
        async with db.transaction() as session:
            if await send_summary(session, vendor_id, cfg, now):
                sent += 1
        if after_vendor is not None:
            await after_vendor(vendor_id)
    return sent


async def check_alerts(session: AsyncSession, vendor_id: int, cfg: SummaryConfig, now: datetime) -> list[str]:
    """Queue the vendor's low-balance and expiry alerts that are due; returns their kinds."""
    vendor = await vendor_ref(session, vendor_id)
    prefs = await preferences_of(session, vendor_id)
    statement = await statement_summary(session, vendor_id, now)
    zone = ZoneInfo(vendor.time_zone)
    threshold = cfg.low_balance_threshold if prefs.low_balance_threshold is None else prefs.low_balance_threshold
    sent: list[str] = []
    sp = StatementPreference
    if statement.stamps_available < threshold:
        await _ensure_preferences(session, vendor_id, now)
        armed = await session.execute(
            update(sp)
            .where(sp.vendor_id == vendor_id, sp.low_balance_alerted_at.is_(None))
            .values(low_balance_alerted_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(armed, "rowcount", 0):
            key = f"crossing:{now:%Y%m%dT%H%M%S}"
            await claim(session, vendor_id, "low_balance", key, now)
            await _alert(
                session,
                vendor,
                cfg,
                now,
                template="alert_low_balance",
                subject=f"Saldo bajo de timbres: te quedan {statement.stamps_available}",
                key=f"alert:low_balance:{vendor_id}:{key}",
                context={"balance": statement.stamps_available, "threshold": threshold},
            )
            sent.append("low_balance")
    else:
        await session.execute(
            update(sp)
            .where(sp.vendor_id == vendor_id, sp.low_balance_alerted_at.is_not(None))
            .values(low_balance_alerted_at=None)
            .execution_options(synchronize_session=False)
        )
    horizon = now + timedelta(days=cfg.expiry_days)
    for plan in statement.plans:
        if plan.expired or plan.stamps_available <= 0 or plan.valid_until > horizon:
            continue
        if not await claim(session, vendor_id, "expiry", f"plan:{plan.plan_id}", now):
            continue
        await _alert(
            session,
            vendor,
            cfg,
            now,
            template="alert_expiry",
            subject=f"Tu plan de timbrado vence el {_fmt_day(plan.valid_until, zone)}",
            key=f"alert:expiry:{vendor_id}:{plan.plan_id}",
            context={
                "plan_name": plan.plan_name,
                "valid_until": _fmt_day(plan.valid_until, zone),
                "days": plan.days_to_expiry,
                "available": plan.stamps_available,
            },
        )
        sent.append("expiry")
    return sent


async def _alert(
    session: AsyncSession,
    vendor: VendorRef,
    cfg: SummaryConfig,
    now: datetime,
    *,
    template: str,
    subject: str,
    key: str,
    context: dict[str, Any],
) -> None:
    await queue_email(
        session,
        EmailSpec(
            template=template,
            to=[vendor.correo],
            subject=subject,
            context={"razon_social": vendor.razon_social, "rfc": vendor.rfc, "buy_url": cfg.buy_url, **context},
            key=key,
            related_type="vendor",
            related_id=vendor.id,
        ),
        mail_from=cfg.mail_from,
        domain=cfg.mail_domain,
        now=now,
    )


async def run_alerts(db: Database, cfg: SummaryConfig, now: datetime) -> int:
    """Check every vendor with plans; one transaction per vendor.  Returns how many alerts were queued."""
    sent = 0
    for vendor_id in await _vendors_with_plans(db):
        async with db.transaction() as session:
            sent += len(await check_alerts(session, vendor_id, cfg, now))
    return sent


@dataclass(frozen=True, slots=True)
class SweepResult:
    summaries: int
    alerts: int


async def sweep(db: Database, cfg: SummaryConfig, now: datetime) -> SweepResult:
    """The scheduler duty: due summaries, then alerts."""
    summaries = await run_summaries(db, cfg, now)
    alerts = await run_alerts(db, cfg, now)
    if summaries or alerts:
        log.info("statements: %d summaries and %d alerts queued", summaries, alerts)
    return SweepResult(summaries, alerts)
