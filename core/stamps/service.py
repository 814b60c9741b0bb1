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


# --------------------------------------------------------------------------- reservations (stamping)
# A REP reserves one stamp before its PAC is called, debits it in the transaction that stores the
# UUID, and releases it when the PAC rejects the document.  Plans are consumed earliest-expiring
# first; each change locks the plan row and writes a ledger row; CHECK constraints keep the
# counters non-negative and within the plan's total whatever happens.


class NoStampAvailable(Exception):
    """No plan can give a stamp: ``code`` is ``sin_saldo`` or ``plan_vencido`` (Spanish ``message``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _available(plan: StampPlan) -> int:
    return plan.stamps_total - plan.stamps_used - plan.stamps_reserved


def _ledger(session: AsyncSession, plan: StampPlan, kind: str, delta: int, reference: str, now: datetime) -> None:
    session.add(
        StampLedgerEntry(
            vendor_id=plan.vendor_id,
            plan_id=plan.id,
            kind=kind,
            delta=delta,
            available_after=_available(plan),
            reference=reference[:100],
            created_at=now,
        )
    )


async def reserve(session: AsyncSession, vendor_id: int, *, reference: str, now: datetime) -> int:
    """Reserve one stamp from the usable plan that expires first; returns the plan id.

    Raises :class:`NoStampAvailable` (``plan_vencido`` when only expired plans have stamps left).
    """
    plan = await session.scalar(
        select(StampPlan)
        .where(
            StampPlan.vendor_id == vendor_id,
            StampPlan.valid_from <= now,
            StampPlan.valid_until > now,
            StampPlan.stamps_used + StampPlan.stamps_reserved < StampPlan.stamps_total,
        )
        .order_by(StampPlan.valid_until, StampPlan.id)
        .limit(1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if plan is None:
        expired_left = await session.scalar(
            select(StampPlan.id)
            .where(
                StampPlan.vendor_id == vendor_id,
                StampPlan.valid_until <= now,
                StampPlan.stamps_used + StampPlan.stamps_reserved < StampPlan.stamps_total,
            )
            .limit(1)
        )
        if expired_left is not None:
            raise NoStampAvailable("plan_vencido", "Tu plan de timbrado está vencido: compra un paquete vigente.")
        raise NoStampAvailable("sin_saldo", "No tienes timbres disponibles: compra un paquete de timbrado.")
    plan.stamps_reserved += 1
    await session.flush()
    _ledger(session, plan, "reserve", -1, reference, now)
    return plan.id


async def _locked_plan(session: AsyncSession, plan_id: int) -> StampPlan:
    plan = await session.scalar(
        select(StampPlan).where(StampPlan.id == plan_id).with_for_update().execution_options(populate_existing=True)
    )
    if plan is None:
        raise LookupError(f"stamp plan {plan_id} not found")
    return plan


async def debit(session: AsyncSession, plan_id: int, *, reference: str, now: datetime) -> None:
    """Turn one reservation of ``plan_id`` into a used stamp (available balance unchanged)."""
    plan = await _locked_plan(session, plan_id)
    if plan.stamps_reserved < 1:
        raise ValueError("no reservation to debit")
    plan.stamps_reserved -= 1
    plan.stamps_used += 1
    await session.flush()
    _ledger(session, plan, "debit", 0, reference, now)


async def release(session: AsyncSession, plan_id: int, *, reference: str, now: datetime) -> None:
    """Give back one reservation of ``plan_id`` (the PAC rejected the document)."""
    plan = await _locked_plan(session, plan_id)
    if plan.stamps_reserved < 1:
        raise ValueError("no reservation to release")
    plan.stamps_reserved -= 1
    await session.flush()
    _ledger(session, plan, "release", 1, reference, now)


async def refund(session: AsyncSession, plan_id: int, *, reference: str, now: datetime) -> None:
    """Give back one used stamp of ``plan_id`` (a cancelled REP, when the policy refunds)."""
    plan = await _locked_plan(session, plan_id)
    if plan.stamps_used < 1:
        raise ValueError("no used stamp to refund")
    plan.stamps_used -= 1
    await session.flush()
    _ledger(session, plan, "refund", 1, reference, now)
