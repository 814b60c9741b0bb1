"""Hostile inputs from the issue's Tests section, each refused with a stable code (both databases)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from core.errors import Conflict, DomainError, NotFound
from core.notifications.models import OutboundEmail
from core.stamping import invoices, payments
from core.stamping.invoices import parse_invoice
from core.stamping.models import PaymentStatus
from core.stamping.stamping import Outcome
from core.vendors.service import register_vendor
from tests.integration.stamping.conftest import ACTOR, World, make_world
from tests.support.invoices import InvoiceSpec, amake_invoice, csd

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def refused(world: World, xml: bytes) -> str:
    with pytest.raises(DomainError) as info:
        async with world.db.transaction() as s:
            await invoices.register_invoice(s, world.vendor_id, xml, actor=ACTOR, now=world.clock.now())
    return info.value.code


async def payment_refused(world: World, req: payments.PaymentRequest, **kw: Any) -> str:
    with pytest.raises(DomainError) as info:
        async with world.db.transaction() as s:
            await payments.register_payment(s, req, actor=ACTOR, now=world.clock.now(), **kw)
    return info.value.code


async def test_pue_invoice_is_refused(world: World) -> None:
    assert await refused(world, await amake_invoice(InvoiceSpec(metodo_pago="PUE"))) == "metodo_pago_no_ppd"


async def test_invoice_of_another_vendor_or_client_is_refused(world: World) -> None:
    other_vendor = await amake_invoice(InvoiceSpec(emisor_rfc="AAA010101AAA"), csd("AAA010101AAA", slot=12))
    assert await refused(world, other_vendor) == "emisor_no_corresponde"
    other_client = await amake_invoice(InvoiceSpec(receptor_rfc="XAXX010101000"))
    assert await refused(world, other_client) == "receptor_no_corresponde"


async def test_invoice_registered_twice_is_a_conflict(world: World) -> None:
    xml = await amake_invoice()
    async with world.db.transaction() as s:
        await invoices.register_invoice(s, world.vendor_id, xml, actor=ACTOR, now=world.clock.now())
    with pytest.raises(Conflict):
        async with world.db.transaction() as s:
            await invoices.register_invoice(s, world.vendor_id, xml, actor=ACTOR, now=world.clock.now())


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "xml_con_doctype"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>', "xml_con_doctype"),
        (b"<html><body>no soy un CFDI</body></html>", "no_es_cfdi"),
        (b"<cfdi:Comprobante xmlns:cfdi='http://www.sat.gob.mx/cfd/4' Version='4.0'", "xml_mal_formado"),
        (b"", "xml_mal_formado"),
    ],
)
def test_unsafe_or_foreign_xml_is_refused(xml: bytes, code: str) -> None:
    with pytest.raises(DomainError) as info:
        parse_invoice(xml)
    assert info.value.code in (code, "xml_vacio")


def test_fifty_megabyte_xml_is_refused_before_parsing() -> None:
    big = b"<?xml version='1.0'?><a>" + b"x" * (50 * 1024 * 1024) + b"</a>"
    with pytest.raises(DomainError) as info:
        parse_invoice(big)
    assert info.value.code == "xml_demasiado_grande"


async def test_cancelled_invoice_cannot_be_paid(world: World) -> None:
    invoice_id = await world.add_invoice()
    async with world.db.transaction() as s:
        await invoices.mark_cancelled(s, invoice_id, actor=ACTOR, now=world.clock.now())
    assert await payment_refused(world, world.request(invoice_id, "100.00")) == "factura_cancelada"


@pytest.mark.parametrize(
    ("amount", "total", "code"),
    [
        ("1160.01", "1160.01", "CRP20244"),  # above the balance
        ("0", "1.00", "CRP20241"),
        ("-5.00", "1.00", "CRP20241"),
        ("100.005", "100.01", "CRP20242"),  # 3 decimals in MXN
        ("100.00", "100.005", "CRP20219"),
        ("100.00", "99.99", "CRP20217"),  # Σ ImpPagado > Monto
    ],
)
async def test_bad_amounts_are_refused(world: World, amount: str, total: str, code: str) -> None:
    invoice_id = await world.add_invoice()
    assert await payment_refused(world, world.request(invoice_id, amount, total=total)) == code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"operation_number": "SPEI|001"}, "caracter_invalido"),
        ({"payment_form": "99"}, "CRP20212"),
        ({"currency": "XXX"}, "CRP20213"),
        ({"currency": "USD"}, "CRP20237"),  # MXN invoice paid in USD without EquivalenciaDR
        ({"payment_form": "77"}, "forma_pago_invalida"),
    ],
)
async def test_bad_payment_data_is_refused(world: World, changes: dict[str, Any], code: str) -> None:
    invoice_id = await world.add_invoice()
    if changes.get("currency") == "USD":
        changes["exchange_rate"] = Decimal("17.5")
    assert await payment_refused(world, world.request(invoice_id, "100.00", **changes)) == code


async def test_usd_payment_without_exchange_rate_is_refused(world: World) -> None:
    invoice_id = await world.add_invoice(InvoiceSpec(currency="USD", folio="U1"))
    assert await payment_refused(world, world.request(invoice_id, "10.00", currency="USD")) == "CRP20214"


async def test_payment_dated_in_the_future_is_refused(world: World) -> None:
    invoice_id = await world.add_invoice()
    req = world.request(invoice_id, "100.00", paid_at=world.clock.now() + dt.timedelta(minutes=5))
    assert await payment_refused(world, req) == "fecha_pago_futura"


async def test_invoice_of_another_vendor_cannot_be_paid_through_this_one(world: World) -> None:
    async with world.db.transaction() as s:
        other = await register_vendor(
            s, client_id=world.client_id, rfc="AAA010101AAA", razon_social="OTRO PROVEEDOR", correo="otro@p.test",
            actor=ACTOR, now=world.clock.now(),
        )  # fmt: skip
    xml = await amake_invoice(InvoiceSpec(emisor_rfc="AAA010101AAA"), csd("AAA010101AAA", slot=12))
    async with world.db.transaction() as s:
        foreign = await invoices.register_invoice(s, other.id, xml, actor=ACTOR, now=world.clock.now())
    assert await payment_refused(world, world.request(foreign.id, "100.00")) == "factura_ajena"


async def test_client_token_of_another_client_sees_no_vendor(world: World) -> None:
    invoice_id = await world.add_invoice()
    with pytest.raises(NotFound):
        async with world.db.transaction() as s:
            await payments.register_payment(
                s, world.request(invoice_id, "1.00"), actor=ACTOR, now=world.clock.now(), client_id=world.client_id + 1
            )


async def test_fully_paid_invoice_cannot_be_paid_again(world: World) -> None:
    invoice_id = await world.add_invoice()
    await world.pay(invoice_id, "1160.00")
    assert await payment_refused(world, world.request(invoice_id, "1.00")) == "factura_pagada"


async def test_num_parcialidad_gap_is_reported_by_the_validator(world: World) -> None:
    from core.cfdi.validator import validate_rep
    from core.stamping.stamping import history_for

    invoice_id = await world.add_invoice()
    await world.pay(invoice_id, "100.00")
    second = await world.pay(invoice_id, "100.00")
    await world.run_jobs()
    [rep] = await world.reps(second)
    async with world.db.session() as s:
        history = await history_for(s, second)
    assert validate_rep(rep.sealed_xml, history=history, now=world.clock.now()) == []
    codes = {f.code for f in validate_rep(rep.sealed_xml, history={}, now=world.clock.now())}
    assert "num_parcialidad_fuera_de_secuencia" in codes


async def test_csd_that_expired_yesterday_leaves_the_payment_waiting(database: Any, clock: Any, tmp_path: Any) -> None:
    expiring = csd(not_after=clock.now() + dt.timedelta(hours=20), slot=13)
    world = await make_world(database, clock, tmp_path, credential=expiring)
    invoice_id = await world.add_invoice()
    payment_id = await world.pay(invoice_id, "100.00")
    clock.advance(dt.timedelta(days=1, hours=1))  # the CSD expired yesterday (20 h after registration)
    assert await world.stamper.stamp_payment(payment_id) is Outcome.WAITING
    payment = await world.payment(payment_id)
    assert (payment.status, payment.waiting_code) == (PaymentStatus.PENDING.value, "sin_csd_vigente")
    assert await world.reps() == []
    [plan] = await world.plans()
    assert plan.stamps_reserved == 0 and plan.stamps_used == 0


async def test_vendor_without_contract_waits_and_is_emailed_once(database: Any, clock: Any, tmp_path: Any) -> None:
    world = await make_world(database, clock, tmp_path, contract=False, cfdi_settings=False)
    invoice_id = await world.add_invoice()
    ids = [await world.pay(invoice_id, "100.00") for _ in range(3)]
    for pid in ids:
        assert await world.stamper.stamp_payment(pid) is Outcome.WAITING
    payment = await world.payment(ids[0])
    assert payment.waiting_code == "sin_contrato"
    assert "Faltan los Datos del CFDI" in (payment.waiting_message or "")
    async with world.db.session() as s:
        emails = list(await s.scalars(select(OutboundEmail).where(OutboundEmail.template == "rep_waiting")))
    assert len(emails) == 1 and emails[0].to_addrs == ["proveedor@ekemper.test"]


async def test_expired_plan_is_named(database: Any, clock: Any, tmp_path: Any) -> None:
    world = await make_world(database, clock, tmp_path, stamps_count=0)
    await world.provision(10, days=30, at=clock.now() - dt.timedelta(days=40))
    invoice_id = await world.add_invoice()
    payment_id = await world.pay(invoice_id, "100.00")
    assert await world.stamper.stamp_payment(payment_id) is Outcome.WAITING
    assert (await world.payment(payment_id)).waiting_code == "plan_vencido"


async def test_plans_are_consumed_earliest_expiring_first(database: Any, clock: Any, tmp_path: Any) -> None:
    world = await make_world(database, clock, tmp_path, stamps_count=0)
    await world.provision(5, days=365)
    await world.provision(5, days=30)
    invoice_id = await world.add_invoice()
    payment_id = await world.pay(invoice_id, "100.00")
    assert await world.stamper.stamp_payment(payment_id) is Outcome.STAMPED
    by_days = sorted(await world.plans(), key=lambda p: p.valid_until)
    assert [p.stamps_used for p in by_days] == [1, 0]
