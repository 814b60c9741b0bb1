"""Cancellation motivo 01: a substitute REP (CfdiRelacionados TipoRelacion 04) first, then the cancellation."""

from __future__ import annotations

import pytest
from lxml import etree

from core.cfdi.cadena import CFDI_NS, cadena_original_native, cadena_original_xslt
from core.cfdi.validator import validate_rep
from core.errors import Conflict
from core.pac.base import PacUnavailable
from core.stamping.cancellation import Canceller, substitute_and_cancel
from core.stamping.models import PaymentStatus, RepStatus
from core.stamping.stamping import Outcome
from tests.integration.stamping.conftest import ACTOR, World
from tests.integration.stamping.test_pac_failures import ScriptedPac, ledger_kinds
from tests.integration.stamping.test_pipeline import check_independently

C = "{" + CFDI_NS + "}"


async def stamped(world: World) -> tuple[int, int]:
    payment_id = await world.pay(await world.add_invoice(), "100.00")
    assert await world.stamper.stamp_payment(payment_id) is Outcome.STAMPED
    [rep] = await world.reps(payment_id)
    return payment_id, rep.id


async def test_motivo_01_issues_the_substitute_then_cancels_the_original_with_it(world: World) -> None:
    payment_id, rep_id = await stamped(world)
    substitute = await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    original, again = await world.reps(payment_id)
    assert again.id == substitute.id and again.status == RepStatus.STAMPED.value
    assert again.folio == original.folio + 1 and again.uuid != original.uuid
    root = check_independently(again.stamped_xml or b"", world.pac.certificate_der)
    [relacionados] = root.findall(C + "CfdiRelacionados")
    assert relacionados.get("TipoRelacion") == "04"
    assert [r.get("UUID") for r in relacionados] == [original.uuid]
    assert cadena_original_native(root) == cadena_original_xslt(root)
    assert "||4.0|" in cadena_original_xslt(root) and f"|04|{original.uuid}|" in cadena_original_xslt(root)
    sealed = etree.fromstring(again.sealed_xml)
    assert validate_rep(sealed, now=world.clock.now(), xsd_variant="full") == []
    assert (original.status, original.cancel_motivo, original.cancel_substitute_uuid) == (
        RepStatus.CANCEL_REQUESTED.value, "01", again.uuid,
    )  # fmt: skip
    assert len(await world.jobs("rep.cancel")) == 1
    canceller = Canceller(world.db, world.pac, world.box, world.clock)
    assert await canceller.cancel(rep_id) == RepStatus.CANCELLED.value
    pac_side = await world.pac._store.get_cancellation(original.uuid or "")  # type: ignore[attr-defined]
    assert pac_side is not None and (pac_side.motivo, pac_side.folio_sustitucion) == ("01", again.uuid)
    payment = await world.payment(payment_id)
    assert payment.status == PaymentStatus.STAMPED.value  # the substitute keeps the payment stamped
    assert await ledger_kinds(world) == ["provision", "reserve", "debit", "reserve", "debit"]


async def test_a_second_request_neither_issues_another_substitute_nor_cancels_twice(world: World) -> None:
    payment_id, rep_id = await stamped(world)
    await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    with pytest.raises(Conflict) as info:
        await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    assert info.value.code == "cancel_in_progress"
    assert await world.stamper.stamp_payment(payment_id, replaces=rep_id) is Outcome.ALREADY
    assert len(await world.reps(payment_id)) == 2


async def test_without_balance_the_substitute_is_refused_and_nothing_changes(world: World) -> None:
    async with world.db.transaction() as s:
        from core.stamps.models import StampPlan

        plan = await s.get(StampPlan, (await world.plans())[0].id)
        assert plan is not None
        plan.stamps_total = 1
    payment_id, rep_id = await stamped(world)
    with pytest.raises(Conflict) as info:
        await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    assert info.value.code == "sin_saldo" and "sustituto" in info.value.message
    [rep] = await world.reps(payment_id)
    assert rep.status == RepStatus.STAMPED.value
    assert (await world.payment(payment_id)).status == PaymentStatus.STAMPED.value
    assert await world.jobs("rep.cancel") == []


async def test_a_pac_timeout_on_the_substitute_resumes_with_the_same_bytes(world: World) -> None:
    payment_id, rep_id = await stamped(world)
    pac = ScriptedPac(world.pac, before=[PacUnavailable()])
    stamper = world.make_stamper(pac)
    with pytest.raises(PacUnavailable):
        await substitute_and_cancel(stamper, rep_id, actor=ACTOR)
    assert (await world.payment(payment_id)).status == PaymentStatus.STAMPED.value
    substitute = await substitute_and_cancel(stamper, rep_id, actor=ACTOR)
    assert pac.sent[0] == pac.sent[1]
    reps = await world.reps(payment_id)
    assert [r.id for r in reps] == [rep_id, substitute.id]
    assert await ledger_kinds(world) == ["provision", "reserve", "debit", "reserve", "debit"]


async def test_a_cancelled_rep_cannot_be_substituted(world: World) -> None:
    _, rep_id = await stamped(world)
    await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    await Canceller(world.db, world.pac, world.box, world.clock).cancel(rep_id)
    with pytest.raises(Conflict) as info:
        await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    assert info.value.code == "not_stamped"


async def test_validator_refuses_a_relation_other_than_04_in_a_rep(world: World) -> None:
    _, rep_id = await stamped(world)
    substitute = await substitute_and_cancel(world.stamper, rep_id, actor=ACTOR)
    hostile = substitute.sealed_xml.replace(b'TipoRelacion="04"', b'TipoRelacion="01"')
    codes = {f.code for f in validate_rep(hostile, now=world.clock.now())}
    assert "tipo_relacion_rep" in codes
