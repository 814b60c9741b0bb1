"""Cancellation through the sandbox PAC: motivos, the receiver's answer, the stamp policy."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import DomainError
from core.pac.sandbox import AcceptancePolicy, SandboxPac
from core.stamping.cancellation import Canceller, CancelStampPolicy, request_cancellation
from core.stamping.models import PaymentStatus, RepStatus
from tests.integration.stamping.conftest import ACTOR, World, make_world, sandbox_identity


async def stamped(world: World) -> tuple[int, int]:
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    await world.stamper.stamp_payment(payment_id)
    [rep] = await world.reps(payment_id)
    return payment_id, rep.id


async def ask(world: World, rep_id: int, motivo: str, substitute: str | None = None) -> None:
    async with world.db.transaction() as s:
        await request_cancellation(
            s, rep_id, motivo=motivo, substitute_uuid=substitute, actor=ACTOR, now=world.clock.now()
        )


async def test_cancelled_rep_returns_the_payment_to_pending(world: World) -> None:
    payment_id, rep_id = await stamped(world)
    await ask(world, rep_id, "02")
    assert len(await world.jobs("rep.cancel")) == 1
    canceller = Canceller(world.db, world.pac, world.box, world.clock)
    assert await canceller.cancel(rep_id) == RepStatus.CANCELLED.value
    payment = await world.payment(payment_id)
    assert (payment.status, payment.waiting_code) == (PaymentStatus.PENDING.value, "rep_cancelado")
    [plan] = await world.plans()
    assert plan.stamps_used == 1  # default policy: neither refunds nor consumes
    # re-stamping the payment gives a new REP with a new folio and UUID
    assert (await world.stamper.stamp_payment(payment_id)).value == "stamped"
    first, second = await world.reps(payment_id)
    assert second.folio == first.folio + 1 and second.uuid != first.uuid


async def test_refund_policy_gives_the_stamp_back(world: World) -> None:
    _, rep_id = await stamped(world)
    await ask(world, rep_id, "03")
    await Canceller(world.db, world.pac, world.box, world.clock, CancelStampPolicy.REFUND).cancel(rep_id)
    [plan] = await world.plans()
    assert plan.stamps_used == 0


@pytest.mark.parametrize(("motivo", "substitute", "code"), [
    ("01", None, "folio_sustitucion_requerido"),
    ("02", "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8", "folio_sustitucion_no_aplica"),
    ("05", None, "motivo_invalido"),
    ("01", "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8", "folio_sustitucion_no_encontrado"),
])  # fmt: skip
async def test_malformed_cancellations_are_refused(
    world: World, motivo: str, substitute: str | None, code: str
) -> None:
    _, rep_id = await stamped(world)
    with pytest.raises(DomainError) as info:
        await ask(world, rep_id, motivo, substitute)
    assert info.value.code == code


async def test_receiver_rejection_keeps_the_rep_valid(database: Any, clock: Any, tmp_path: Any) -> None:
    pac = SandboxPac(sandbox_identity().signer(), clock=clock, acceptance=AcceptancePolicy.ALWAYS)
    world = await make_world(database, clock, tmp_path, pac=pac)
    payment_id, rep_id = await stamped(world)
    await ask(world, rep_id, "02")
    canceller = Canceller(world.db, pac, world.box, world.clock)
    assert await canceller.cancel(rep_id) == RepStatus.CANCEL_PENDING.value
    [rep] = await world.reps(payment_id)
    await pac.receiver_answer(rep.uuid or "", accept=False)
    assert await canceller.refresh_pending() == 1
    [rep] = await world.reps(payment_id)
    assert rep.status == RepStatus.CANCEL_REJECTED.value
    assert (await world.payment(payment_id)).status == PaymentStatus.STAMPED.value
