"""The scheduler's side of stamping: the legal-deadline sweep, the late flag, and resuming waiting payments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from core.clock import FrozenClock
from core.db.engine import Database
from core.notifications.models import OutboundEmail
from core.stamping import payments
from core.stamping.deadlines import DeadlineConfig, deadline_sweep, rep_deadline
from core.stamping.models import PaymentStatus
from core.stamping.stamping import Outcome
from core.vendors.models import Contract
from tests.integration.stamping.conftest import World, make_world

MX = ZoneInfo("America/Mexico_City")
CFG = DeadlineConfig(mail_from="Timbrado <timbrado@test.local>", mail_domain="test.local")


async def deadline_emails(world: World) -> list[OutboundEmail]:
    async with world.db.session() as s:
        return list(await s.scalars(select(OutboundEmail).where(OutboundEmail.template == "rep_deadline")))


async def sweep(world: World) -> int:
    async with world.db.transaction() as s:
        return await deadline_sweep(s, cfg=CFG, now=world.clock.now())


def test_deadline_is_day_5_of_the_next_month_in_local_time() -> None:
    assert rep_deadline(dt.datetime(2026, 11, 28, 12, tzinfo=MX)) == dt.datetime(2026, 12, 6, tzinfo=MX)
    assert rep_deadline(dt.datetime(2026, 12, 31, 23, 30, tzinfo=MX)) == dt.datetime(2027, 1, 6, tzinfo=MX)
    # 1 December 03:00 UTC is still 30 November in Mexico City: the November deadline applies
    assert rep_deadline(dt.datetime(2026, 12, 1, 3, tzinfo=dt.UTC)) == dt.datetime(2026, 12, 6, tzinfo=MX)


async def test_sweep_warns_each_vendor_once_when_the_deadline_approaches(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    world = await make_world(database, clock, tmp_path, stamps_count=0)  # payments wait: sin saldo
    november = dt.datetime(2026, 11, 28, 12, tzinfo=MX)
    early = await world.pay(await world.add_invoice(), "100.00", paid_at=november)
    late_one = await world.pay(await world.add_invoice(), "100.00", paid_at=november)
    december = await world.pay(await world.add_invoice(), "100.00", paid_at=clock.now() - dt.timedelta(hours=1))
    for payment_id in (early, late_one, december):
        assert await world.stamper.stamp_payment(payment_id) is Outcome.WAITING
    assert await sweep(world) == 0  # 1 December: the November deadline (6 Dec 00:00) is 4+ days away
    clock.set(dt.datetime(2026, 12, 3, 12, tzinfo=MX))  # within the 3-day warning
    assert await sweep(world) == 1
    [email] = await deadline_emails(world)
    assert email.to_addrs == ["proveedor@ekemper.test"] and "(2)" in email.subject
    warned = {p: (await world.payment(p)).deadline_warned_at is not None for p in (early, late_one, december)}
    assert warned == {early: True, late_one: True, december: False}
    assert await sweep(world) == 0  # warned once
    assert len(await deadline_emails(world)) == 1


async def test_stamped_payments_are_not_warned_and_a_rep_after_the_deadline_is_flagged_late(world: World) -> None:
    paid = dt.datetime(2026, 11, 28, 12, tzinfo=MX)
    on_time = await world.pay(await world.add_invoice(), "100.00", paid_at=paid)
    assert await world.stamper.stamp_payment(on_time) is Outcome.STAMPED
    overdue = await world.pay(await world.add_invoice(), "100.00", paid_at=paid)
    world.clock.set(dt.datetime(2026, 12, 6, 0, 0, 1, tzinfo=MX))
    assert await sweep(world) == 1  # only the payment without REP
    assert await world.stamper.stamp_payment(overdue) is Outcome.STAMPED
    [first] = await world.reps(on_time)
    [second] = await world.reps(overdue)
    assert (first.late, second.late) == (False, True)


async def test_resume_waiting_queues_only_payments_whose_vendor_became_ready(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    world = await make_world(database, clock, tmp_path, stamps_count=0, contract=False)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    assert await world.stamper.stamp_payment(payment_id) is Outcome.WAITING
    waiting = await world.payment(payment_id)
    assert (waiting.status, waiting.waiting_code) == (PaymentStatus.PENDING.value, "sin_saldo")
    assert "Sin contrato" in (waiting.waiting_message or "")  # every missing piece is named
    jobs_before = len(await world.jobs("rep.stamp"))

    async def resume() -> int:
        async with world.db.transaction() as s:
            return await payments.resume_waiting(s, now=clock.now())

    assert await resume() == 0
    await world.provision(5)
    assert await resume() == 0  # still no signed contract
    async with world.db.transaction() as s:
        s.add(Contract(vendor_id=world.vendor_id, signed_at=clock.now(), updated_at=clock.now()))
    assert await resume() == 1
    assert len(await world.jobs("rep.stamp")) == jobs_before + 1
    await world.run_jobs("rep.stamp")
    assert (await world.payment(payment_id)).status == PaymentStatus.STAMPED.value
    assert await resume() == 0  # nothing waits any more
