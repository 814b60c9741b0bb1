"""Stamp plans: provisioning from an approved order, balances, and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import UTCDateTime
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


_plans = cast(Table, StampPlan.__table__)
_ledger_table = cast(Table, StampLedgerEntry.__table__)
_available_col = (_plans.c.stamps_total - _plans.c.stamps_used - _plans.c.stamps_reserved).label("available")

# Statements built once (SQLAlchemy compiles each once and caches it): the stamping pipeline runs
# them for every REP, and building them per call cost more than running them.
_PICK_USABLE = (
    select(_plans.c.id)
    .where(
        _plans.c.vendor_id == bindparam("vendor_id"),
        _plans.c.valid_from <= bindparam("now", type_=UTCDateTime),
        _plans.c.valid_until > bindparam("now", type_=UTCDateTime),
        _plans.c.stamps_used + _plans.c.stamps_reserved < _plans.c.stamps_total,
    )
    .order_by(_plans.c.valid_until, _plans.c.id)
    .limit(1)
    .with_for_update()
)
_EXPIRED_LEFT = (
    select(_plans.c.id)
    .where(
        _plans.c.vendor_id == bindparam("vendor_id"),
        _plans.c.valid_until <= bindparam("now", type_=UTCDateTime),
        _plans.c.stamps_used + _plans.c.stamps_reserved < _plans.c.stamps_total,
    )
    .limit(1)
)
_RESERVE = (
    update(_plans)
    .where(_plans.c.id == bindparam("plan_id"))
    .values(stamps_reserved=_plans.c.stamps_reserved + 1)
    .returning(_plans.c.vendor_id, _available_col)
)
_DEBIT = (
    update(_plans)
    .where(_plans.c.id == bindparam("plan_id"), _plans.c.stamps_reserved >= 1)
    .values(stamps_reserved=_plans.c.stamps_reserved - 1, stamps_used=_plans.c.stamps_used + 1)
    .returning(_plans.c.vendor_id, _available_col)
)
_RELEASE = (
    update(_plans)
    .where(_plans.c.id == bindparam("plan_id"), _plans.c.stamps_reserved >= 1)
    .values(stamps_reserved=_plans.c.stamps_reserved - 1)
    .returning(_plans.c.vendor_id, _available_col)
)
_REFUND = (
    update(_plans)
    .where(_plans.c.id == bindparam("plan_id"), _plans.c.stamps_used >= 1)
    .values(stamps_used=_plans.c.stamps_used - 1)
    .returning(_plans.c.vendor_id, _available_col)
)
_PLAN_EXISTS = select(_plans.c.id).where(_plans.c.id == bindparam("plan_id"))
_INSERT_LEDGER = insert(_ledger_table)


async def _write_ledger(
    session: AsyncSession, vendor_id: int, plan_id: int, kind: str, delta: int, available_after: int,
    reference: str, now: datetime,
) -> None:  # fmt: skip
    await session.execute(
        _INSERT_LEDGER,
        {"vendor_id": vendor_id, "plan_id": plan_id, "kind": kind, "delta": delta,
         "available_after": available_after, "reference": reference[:100], "created_at": now},
    )  # fmt: skip


async def reserve(session: AsyncSession, vendor_id: int, *, reference: str, now: datetime) -> int:
    """Reserve one stamp from the usable plan that expires first; returns the plan id.

    The plan row is locked (``FOR UPDATE`` on PostgreSQL; SQLite writers hold the database lock)
    before its counter moves.  Raises :class:`NoStampAvailable` (``plan_vencido`` when only expired
    plans have stamps left).
    """
    params = {"vendor_id": vendor_id, "now": now}
    plan_id = (await session.execute(_PICK_USABLE, params)).scalar()
    if plan_id is None:
        if (await session.execute(_EXPIRED_LEFT, params)).scalar() is not None:
            raise NoStampAvailable("plan_vencido", "Tu plan de timbrado está vencido: compra un paquete vigente.")
        raise NoStampAvailable("sin_saldo", "No tienes timbres disponibles: compra un paquete de timbrado.")
    row = (await session.execute(_RESERVE, {"plan_id": plan_id})).one()
    await _write_ledger(session, row.vendor_id, plan_id, "reserve", -1, row.available, reference, now)
    return int(plan_id)


async def _move(
    session: AsyncSession, statement: Any, plan_id: int, kind: str, delta: int, reference: str, now: datetime,
    refusal: str,
) -> None:  # fmt: skip
    """Run one guarded counter change of ``plan_id`` (it locks the row) and write its ledger row."""
    row = (await session.execute(statement, {"plan_id": plan_id})).first()
    if row is None:
        if (await session.execute(_PLAN_EXISTS, {"plan_id": plan_id})).scalar() is None:
            raise LookupError(f"stamp plan {plan_id} not found")
        raise ValueError(refusal)
    await _write_ledger(session, row.vendor_id, plan_id, kind, delta, row.available, reference, now)


async def debit(session: AsyncSession, plan_id: int, *, reference: str, now: datetime) -> None:
    """Turn one reservation of ``plan_id`` into a used stamp (available balance unchanged)."""
    await _move(session, _DEBIT, plan_id, "debit", 0, reference, now, "no reservation to debit")


async def release(session: AsyncSession, plan_id: int, *, reference: str, now: datetime) -> None:
    """Give back one reservation of ``plan_id`` (the PAC rejected the document)."""
    await _move(session, _RELEASE, plan_id, "release", 1, reference, now, "no reservation to release")


async def refund(session: AsyncSession, plan_id: int, *, reference: str, now: datetime) -> None:
    """Give back one used stamp of ``plan_id`` (a cancelled REP, when the policy refunds)."""
    await _move(session, _REFUND, plan_id, "refund", 1, reference, now, "no used stamp to refund")
