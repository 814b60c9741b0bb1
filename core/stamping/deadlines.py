"""The legal deadline of a REP and the scheduler sweep that warns vendors before it passes.

SAT (RMF 2.7.1.35 / guía de llenado): the REP of a payment must be issued no later than the
fifth natural day of the month after the payment.  We take "day 5" as the whole day in the local
time of the lugar de expedición: the deadline is midnight at the start of day 6.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.notifications.outbox import EmailSpec, queue_email
from core.stamping.models import Payment, PaymentStatus
from core.vendors.models import CfdiSettings, Vendor

DEFAULT_TIME_ZONE = "America/Mexico_City"
DEFAULT_WARNING = timedelta(days=3)


def rep_deadline(paid_at: datetime, time_zone: str = DEFAULT_TIME_ZONE) -> datetime:
    """The instant after which a REP for a payment made at ``paid_at`` is late (aware, UTC-comparable)."""
    if paid_at.tzinfo is None:
        raise ValueError("paid_at must be aware")
    zone = ZoneInfo(time_zone)
    local = paid_at.astimezone(zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 6, tzinfo=zone)


def is_late(paid_at: datetime, stamped_at: datetime, time_zone: str = DEFAULT_TIME_ZONE) -> bool:
    return stamped_at >= rep_deadline(paid_at, time_zone)


@dataclass(frozen=True, slots=True)
class DeadlineConfig:
    mail_from: str
    mail_domain: str
    warning: timedelta = DEFAULT_WARNING


async def deadline_sweep(session: AsyncSession, *, cfg: DeadlineConfig, now: datetime) -> int:
    """E-mail each vendor once about its payments without REP whose deadline is near or past.

    A payment is warned once (``deadline_warned_at``); one e-mail per vendor per sweep lists them.
    Returns the number of e-mails queued.
    """
    horizon = now - timedelta(days=40)  # deadlines are at most ~36 days after the payment
    rows = await session.scalars(
        select(Payment)
        .where(
            Payment.status.in_([PaymentStatus.PENDING.value, PaymentStatus.REJECTED.value]),
            Payment.deadline_warned_at.is_(None),
            Payment.paid_at >= horizon,
        )
        .order_by(Payment.vendor_id, Payment.paid_at)
        .with_for_update(skip_locked=True)
    )
    zones: dict[int, str] = {}
    due: dict[int, list[tuple[Payment, datetime]]] = defaultdict(list)
    for payment in rows:
        if payment.vendor_id not in zones:
            settings = await session.get(CfdiSettings, payment.vendor_id)
            zones[payment.vendor_id] = settings.time_zone if settings else DEFAULT_TIME_ZONE
        deadline = rep_deadline(payment.paid_at, zones[payment.vendor_id])
        if deadline - cfg.warning <= now:
            due[payment.vendor_id].append((payment, deadline))
    sent = 0
    for vendor_id, items in due.items():
        vendor = await session.get(Vendor, vendor_id)
        if vendor is None:
            continue
        zone = ZoneInfo(zones[vendor_id])
        for payment, _ in items:
            payment.deadline_warned_at = now
        ids = ",".join(str(p.id) for p, _ in items)
        await queue_email(
            session,
            EmailSpec(
                template="rep_deadline",
                to=[vendor.correo],
                subject=f"Pagos sin complemento de pago: vence el plazo ({len(items)})",
                context={
                    "razon_social": vendor.razon_social,
                    "payments": [
                        {
                            "id": p.id,
                            "paid_at": p.paid_at.astimezone(zone).strftime("%d/%m/%Y"),
                            "amount": f"{p.amount:,.2f}",
                            "currency": p.currency,
                            "deadline": (d - timedelta(seconds=1)).strftime("%d/%m/%Y"),
                            "late": d <= now,
                            "reason": p.waiting_message or "",
                        }
                        for p, d in items
                    ],
                },
                key=f"rep-deadline:{vendor_id}:{hashlib.sha256(ids.encode()).hexdigest()[:32]}",
                related_type="vendor",
                related_id=vendor_id,
            ),
            mail_from=cfg.mail_from,
            domain=cfg.mail_domain,
            now=now,
        )
        sent += 1
    return sent
