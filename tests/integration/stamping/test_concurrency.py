"""Concurrent stamping: the balance, the folios and the installment ledger hold (both databases)."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import pytest

from core.errors import DomainError
from core.stamping import payments
from core.stamping.models import PaymentStatus
from core.stamping.stamping import Outcome
from tests.integration.stamping.conftest import ACTOR, make_world
from tests.support.invoices import InvoiceSpec


@pytest.mark.parametrize("available", [0, 5])
async def test_twenty_concurrent_payments_stamp_exactly_the_available_stamps(
    database: Any, clock: Any, tmp_path: Any, available: int
) -> None:
    world = await make_world(database, clock, tmp_path, stamps_count=0)
    if available:
        await world.provision(available)
    ids = []
    for n in range(20):
        invoice_id = await world.add_invoice(InvoiceSpec(folio=f"C{n}"))
        ids.append(await world.pay(invoice_id, "100.00"))
    outcomes = await asyncio.gather(*(world.stamper.stamp_payment(i) for i in ids))
    assert outcomes.count(Outcome.STAMPED) == available
    assert outcomes.count(Outcome.WAITING) == 20 - available
    waiting = [await world.payment(i) for i in ids]
    assert sorted(p.waiting_code or "" for p in waiting if p.status == PaymentStatus.PENDING.value) == ["sin_saldo"] * (
        20 - available
    )
    balance = await world.balance()
    assert balance.available == 0
    plans = await world.plans()
    assert sum(p.stamps_used for p in plans) == available and sum(p.stamps_reserved for p in plans) == 0
    assert sorted(r.folio for r in await world.reps()) == list(range(1, available + 1))


async def test_concurrent_workers_never_share_a_folio(database: Any, clock: Any, tmp_path: Any) -> None:
    world = await make_world(database, clock, tmp_path)
    ids = [await world.pay(await world.add_invoice(InvoiceSpec(folio=f"F{n}")), "100.00") for n in range(12)]
    outcomes = await asyncio.gather(*(world.stamper.stamp_payment(i) for i in ids))
    assert set(outcomes) == {Outcome.STAMPED}
    reps = await world.reps()
    assert sorted(r.folio for r in reps) == list(range(1, 13))
    assert len({r.uuid for r in reps}) == 12


async def test_concurrent_payments_of_one_invoice_serialise_and_never_go_negative(
    database: Any, clock: Any, tmp_path: Any
) -> None:
    world = await make_world(database, clock, tmp_path)
    invoice_id = await world.add_invoice()  # total 1160.00

    async def pay() -> int | str:
        try:
            async with world.db.transaction() as s:
                view = await payments.register_payment(
                    s, world.request(invoice_id, "150.00"), actor=ACTOR, now=world.clock.now()
                )
            return view.id
        except DomainError as exc:
            return exc.code

    results = await asyncio.gather(*(pay() for _ in range(10)))
    assert sum(isinstance(r, int) for r in results) == 7  # 7 × 150 = 1050 ≤ 1160 < 8 × 150
    assert sorted(r for r in results if isinstance(r, str)) == ["CRP20244"] * 3
    from core.stamping.invoices import installments_of

    async with world.db.session() as s:
        lines = await installments_of(s, invoice_id)
    assert [line.installment for line in lines] == list(range(1, 8))
    assert lines[-1].outstanding_balance == Decimal("110.00")
    for before, after in itertools.pairwise(lines):
        assert after.previous_balance == before.outstanding_balance
