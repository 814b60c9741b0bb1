"""PAC rejections, timeouts, rate limits and a worker dying between the PAC's answer and the commit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.jobs.worker import JobContext, RetryLater
from core.pac.base import PacRateLimited, PacRejected, PacUnavailable, StampResult
from core.pac.sandbox import SandboxPac
from core.stamping.models import PaymentStatus, RepStatus
from core.stamping.stamping import Outcome
from core.stamps.models import StampLedgerEntry
from tests.integration.stamping.conftest import World


class ScriptedPac:
    """Wraps the sandbox: ``before`` errors are raised before it is called, ``after`` ones after it
    answered (the answer is lost, as when a worker dies or the connection drops)."""

    def __init__(
        self, inner: SandboxPac, *, before: list[Exception] | None = None, after: list[Exception] | None = None
    ):
        self.inner = inner
        self.before = list(before or [])
        self.after = list(after or [])
        self.sent: list[bytes] = []
        self.name = "scripted"

    async def stamp(self, xml: bytes, *, idempotency_key: str) -> StampResult:
        self.sent.append(xml)
        if self.before:
            raise self.before.pop(0)
        result = await self.inner.stamp(xml, idempotency_key=idempotency_key)
        if self.after:
            raise self.after.pop(0)
        return result

    async def recover(self, xml_or_uuid: bytes | str) -> StampResult | None:
        return await self.inner.recover(xml_or_uuid)

    async def cancel(self, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.cancel(*args, **kwargs)

    async def cancel_status(self, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.cancel_status(*args, **kwargs)


async def ledger_kinds(world: World) -> list[str]:
    async with world.db.session() as s:
        return [e.kind for e in await s.scalars(select(StampLedgerEntry).order_by(StampLedgerEntry.id))]


async def test_pac_rejection_releases_the_stamp_and_records_the_errors(world: World) -> None:
    pac = ScriptedPac(world.pac, before=[PacRejected("CFDI40102", "El sello no es válido.")])
    stamper = world.make_stamper(pac)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    assert await stamper.stamp_payment(payment_id) is Outcome.REJECTED
    payment = await world.payment(payment_id)
    assert payment.status == PaymentStatus.REJECTED.value and payment.errors[0]["code"] == "CFDI40102"
    [rep] = await world.reps(payment_id)
    assert (rep.status, rep.stamp_state) == (RepStatus.REJECTED.value, "released")
    [plan] = await world.plans()
    assert (plan.stamps_used, plan.stamps_reserved, plan.stamps_available) == (0, 0, 50)
    assert await ledger_kinds(world) == ["provision", "reserve", "release"]


async def test_timeout_then_retry_gives_one_uuid_and_one_debit(world: World) -> None:
    pac = ScriptedPac(world.pac, before=[PacUnavailable()])
    stamper = world.make_stamper(pac)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    with pytest.raises(PacUnavailable):
        await stamper.stamp_payment(payment_id)
    assert (await world.payment(payment_id)).status == PaymentStatus.STAMPING.value
    assert await stamper.stamp_payment(payment_id) is Outcome.STAMPED
    assert pac.sent[0] == pac.sent[1]  # the same persisted bytes: no new folio, no new Fecha
    [rep] = await world.reps(payment_id)
    assert rep.status == RepStatus.STAMPED.value and rep.folio == 1
    assert await ledger_kinds(world) == ["provision", "reserve", "debit"]
    assert await stamper.stamp_payment(payment_id) is Outcome.ALREADY


async def test_worker_killed_after_the_pac_answered_recovers_through_the_duplicate_answer(world: World) -> None:
    pac = ScriptedPac(world.pac, after=[RuntimeError("worker killed before commit")])
    stamper = world.make_stamper(pac)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    with pytest.raises(RuntimeError):
        await stamper.stamp_payment(payment_id)
    assert len(world.pac._store) == 1  # type: ignore[attr-defined]  # the PAC did stamp it
    assert await stamper.stamp_payment(payment_id) is Outcome.STAMPED
    assert len(world.pac._store) == 1  # type: ignore[attr-defined]  # and did not stamp it twice
    [rep] = await world.reps(payment_id)
    assert rep.uuid is not None and rep.uuid in (rep.stamped_xml or b"").decode()
    [plan] = await world.plans()
    assert (plan.stamps_used, plan.stamps_reserved) == (1, 0)


async def test_rate_limit_becomes_retry_later_with_the_pac_delay(world: World) -> None:
    pac = ScriptedPac(world.pac, before=[PacRateLimited(30.0)])
    stamper = world.make_stamper(pac)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    with pytest.raises(RetryLater) as info:
        await stamper.handle_stamp(JobContext(1, "rep.stamp", {"payment_id": payment_id}, 1, "k"))
    assert info.value.delay == 30.0
    assert await stamper.stamp_payment(payment_id) is Outcome.STAMPED
    assert await ledger_kinds(world) == ["provision", "reserve", "debit"]


async def test_timeouts_through_the_worker_end_stamped_once(world: World) -> None:
    pac = ScriptedPac(world.pac, before=[PacUnavailable(), PacUnavailable()])
    world.stamper = world.make_stamper(pac)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    for _ in range(3):
        await world.run_jobs("rep.stamp")
    assert (await world.payment(payment_id)).status == PaymentStatus.STAMPED.value
    assert len(set(pac.sent)) == 1 and len(pac.sent) == 3
