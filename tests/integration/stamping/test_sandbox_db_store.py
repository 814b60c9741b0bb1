"""The sandbox PAC's database store: its memory (stamps, idempotency keys, cancellations) survives a restart."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from core.pac.base import CancelStatus
from core.pac.sandbox import SandboxPac
from core.pac.sandbox_db import DatabaseSandboxStore, SandboxStamp
from core.pac.sandbox_store import CancellationRecord, StampRecord
from core.stamping.cancellation import Canceller, request_cancellation
from core.stamping.models import RepStatus
from core.stamping.stamping import Outcome
from tests.integration.stamping.conftest import ACTOR, World, sandbox_identity
from tests.integration.stamping.test_pac_failures import ScriptedPac, ledger_kinds


def restarted_pac(world: World) -> SandboxPac:
    """A new sandbox PAC process: same identity, a fresh store object over the same database."""
    return SandboxPac(sandbox_identity().signer(), clock=world.clock, store=DatabaseSandboxStore(world.db))


async def stamps_in_db(world: World) -> int:
    async with world.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(SandboxStamp)) or 0)


def record(uuid: str = "6f1a2b3c-4d5e-4f60-8172-839405a6b7c8", xml: bytes = b"<first/>") -> StampRecord:
    return StampRecord(
        uuid=uuid, xml=xml, fecha_timbrado="2026-12-01T10:00:00", no_certificado_sat="99001000000000000001",
        rfc_prov_certif="SPR190613I52", rfc_emisor="EKU9003173C9", rfc_receptor="XAXX010101000", total="0",
        tipo="P", stamped_at=dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC),
    )  # fmt: skip


async def test_put_is_first_wins_and_lookups_ignore_uuid_case(world: World) -> None:
    store = DatabaseSandboxStore(world.db)
    await store.put(record(), "payment:1")
    await store.put(record(xml=b"<second/>"), "payment:1")  # a late duplicate changes nothing
    await store.put(record(xml=b"<third/>"), "payment:1:2")  # a second key for the same UUID
    found = await store.get("6F1A2B3C-4D5E-4F60-8172-839405A6B7C8")
    assert found is not None and found.xml == b"<first/>" and found.uuid == "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8"
    by_key = await store.get_by_key("payment:1:2")
    assert by_key is not None and by_key.xml == b"<first/>"
    assert await store.get_by_key("payment:2") is None
    assert await store.get("00000000-0000-4000-8000-000000000000") is None
    assert "xml" not in repr(found)


async def test_cancellation_is_upserted(world: World) -> None:
    store = DatabaseSandboxStore(world.db)
    at = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
    pending = CancellationRecord("ABC", CancelStatus.PENDING_ACCEPTANCE, "02", None, at, b"<Acuse/>")
    await store.put_cancellation(pending)
    await store.put_cancellation(pending.with_status(CancelStatus.REJECTED))
    again = await store.get_cancellation("abc")
    assert again == pending.with_status(CancelStatus.REJECTED)
    assert await store.get_cancellation("other") is None


async def test_a_resent_document_gets_its_first_uuid_after_a_restart(world: World) -> None:
    first_pac = restarted_pac(world)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    assert await world.make_stamper(first_pac).stamp_payment(payment_id) is Outcome.STAMPED
    [rep] = await world.reps(payment_id)
    second_pac = restarted_pac(world)  # the process restarted: nothing in memory
    again = await second_pac.stamp(rep.sealed_xml, idempotency_key=rep.idempotency_key)
    assert again.recovered and again.uuid == rep.uuid and again.xml == rep.stamped_xml
    other_key = await second_pac.stamp(rep.sealed_xml, idempotency_key="otra-llave")
    assert other_key.uuid == rep.uuid
    by_xml = await second_pac.recover(rep.sealed_xml)
    by_uuid = await second_pac.recover((rep.uuid or "").lower())
    assert by_xml is not None and by_uuid is not None and by_xml.uuid == by_uuid.uuid == rep.uuid
    assert await stamps_in_db(world) == 1


async def test_worker_and_pac_restarted_between_the_answer_and_the_commit_still_one_uuid(world: World) -> None:
    before = ScriptedPac(restarted_pac(world), after=[RuntimeError("worker killed before commit")])
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    with pytest.raises(RuntimeError):
        await world.make_stamper(before).stamp_payment(payment_id)
    assert await stamps_in_db(world) == 1  # the PAC stamped it; the answer was lost
    after = restarted_pac(world)
    assert await world.make_stamper(after).stamp_payment(payment_id) is Outcome.STAMPED
    assert await stamps_in_db(world) == 1
    [rep] = await world.reps(payment_id)
    assert rep.status == RepStatus.STAMPED.value and rep.uuid is not None
    assert rep.uuid in (rep.stamped_xml or b"").decode()
    assert await ledger_kinds(world) == ["provision", "reserve", "debit"]


async def test_a_cancellation_requested_before_a_restart_is_known_after_it(world: World) -> None:
    pac = restarted_pac(world)
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    assert await world.make_stamper(pac).stamp_payment(payment_id) is Outcome.STAMPED
    [rep] = await world.reps(payment_id)
    async with world.db.transaction() as s:
        await request_cancellation(s, rep.id, motivo="02", substitute_uuid=None, actor=ACTOR, now=world.clock.now())
    assert await Canceller(world.db, pac, world.box, world.clock).cancel(rep.id) == RepStatus.CANCELLED.value
    status = await restarted_pac(world).cancel_status(
        rep.uuid or "", rfc_emisor="EKU9003173C9", rfc_receptor="", total="0"
    )
    assert status.status is CancelStatus.CANCELLED and status.uuid == rep.uuid
