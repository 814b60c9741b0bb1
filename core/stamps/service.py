"""Stamp plans: provisioning from an approved order, balances, and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.stamps.models import StampLedgerEntry, StampPlan


@dataclass(frozen=True, slots=True)
class PlanView:
    id: int
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


def _view(plan: StampPlan, now: datetime) -> PlanView:
    available = plan.stamps_total - plan.stamps_used - plan.stamps_reserved
    return PlanView(
        plan.id,
        plan.plan_name,
        plan.stamps_total,
        plan.stamps_used,
        plan.stamps_reserved,
        available,
        plan.valid_from,
        plan.valid_until,
        plan.purchased_at,
        plan.price_paid_mxn,
        plan.valid_until <= now,
    )


async def provision(
    session: AsyncSession,
    *,
    vendor_id: int,
    order_id: int | None,
    plan_name: str,
    stamps: int,
    validity_days: int,
    price_paid_mxn: Decimal,
    purchased_at: datetime,
    now: datetime,
) -> PlanView:
    plan = StampPlan(
        vendor_id=vendor_id,
        order_id=order_id,
        plan_name=plan_name,
        stamps_total=stamps,
        stamps_used=0,
        stamps_reserved=0,
        valid_from=now,
        valid_until=now + timedelta(days=validity_days),
        price_paid_mxn=price_paid_mxn,
        purchased_at=purchased_at,
        created_at=now,
    )
    session.add(plan)
    await session.flush()
    session.add(
        StampLedgerEntry(
            vendor_id=vendor_id,
            plan_id=plan.id,
            kind="provision",
            delta=stamps,
            available_after=stamps,
            reference=f"order:{order_id}" if order_id else "",
            created_at=now,
        )
    )
    return _view(plan, now)


async def plans_of(session: AsyncSession, vendor_id: int, now: datetime) -> list[PlanView]:
    rows = await session.scalars(
        select(StampPlan).where(StampPlan.vendor_id == vendor_id).order_by(StampPlan.valid_until)
    )
    return [_view(p, now) for p in rows]


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    active_plans: int
    next_expiry: datetime | None


async def balance(session: AsyncSession, vendor_id: int, now: datetime) -> Balance:
    plans = [p for p in await plans_of(session, vendor_id, now) if not p.expired]
    usable = [p for p in plans if p.stamps_available > 0]
    return Balance(
        available=sum(p.stamps_available for p in plans),
        active_plans=len(plans),
        next_expiry=min((p.valid_until for p in usable), default=None),
    )


async def ledger_of(session: AsyncSession, vendor_id: int, limit: int = 200) -> list[StampLedgerEntry]:
    rows = await session.scalars(
        select(StampLedgerEntry)
        .where(StampLedgerEntry.vendor_id == vendor_id)
        .order_by(StampLedgerEntry.id)
        .limit(limit)
    )
    return list(rows)
