"""Review reminders and escalation fire at the right business times (injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from core.audit.service import Actor
from core.calendar import BusinessCalendar
from core.clients import service as clients
from core.clock import FrozenClock
from core.db.engine import Database
from core.jobs.models import Job
from core.orders import service
from core.orders.models import Order
from core.uploads.sniff import ContentType
from core.uploads.store import StoredFile
from core.vendors.service import register_vendor

CFG = service.OrdersConfig(
    mail_from="t@timbrado.test",
    mail_domain="timbrado.test",
    slack_enabled=True,
    bank=service.BankData("Beneficiario", "Banco", "012180001234567899"),
    calendar=BusinessCalendar(),
)


async def in_review_order(database: Database, clock: FrozenClock) -> int:
    actor = Actor.system()
    async with database.transaction() as s:
        client = await clients.create_client(
            s, name="ACME", rfc=None, proveedores_plus=True, contacts=[], actor=actor, now=clock.now()
        )
        from core.clients.models import Client

        row = await s.get(Client, client.id)
        assert row is not None
        row.timbrado_enabled = True
        vendor = await register_vendor(
            s,
            client_id=client.id,
            rfc="PBA010101AB1",
            razon_social="Papelera",
            correo="f@papelera.mx",
            actor=actor,
            now=clock.now(),
        )
        pkg = await service.create_package(
            s, name="P", stamps=10, price_mxn="100.00", validity_days=30, actor=actor, now=clock.now()
        )
        order = await service.create_order(
            s,
            vendor_id=vendor.id,
            package_id=pkg.id,
            actor=actor,
            cfg=CFG,
            now=clock.now(),
            contact={"empresa": "Papelera", "nombre": "Rosa", "telefono": "4421234567", "correo": "r@p.mx"},
        )
        stored = StoredFile("a" * 64, 10, ContentType.PDF, path=__import__("pathlib").Path("/dev/null"))
        await service.attach_proof(
            s, order.id, vendor_id=vendor.id, stored=stored, display_name="p.pdf", actor=actor, cfg=CFG, now=clock.now()
        )
        return order.id


async def sweep_kinds(database: Database, clock: FrozenClock) -> list[str]:
    async with database.transaction() as s:
        await service.sla_sweep(s, cfg=CFG, now=clock.now())
    async with database.session() as s:
        return [
            k
            for k in (await s.scalars(select(Job.kind).order_by(Job.id))).all()
            if "reminder" in k or "escalation" in k
        ]


async def test_reminder_at_three_quarters_and_escalation_at_the_due_time_in_business_hours(
    database: Database, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 11, 13, 23, 0, tzinfo=UTC))  # Friday 13 Nov 2026, 17:00 local
    order_id = await in_review_order(database, clock)
    async with database.session() as s:
        order = await s.get(Order, order_id)
        assert order is not None
    # Monday 16 Nov 2026 is the third Monday of November (holiday): 24 business hours end Thursday 14:00.
    assert order.sla_due_at == datetime(2026, 11, 19, 20, 0, tzinfo=UTC)
    # 18 business hours: Tuesday 17 (1h Fri + 9h Tue + 8h Wed) -> Wednesday 17:00 local.
    assert order.reminder_due_at == datetime(2026, 11, 18, 23, 0, tzinfo=UTC)

    clock.set(datetime(2026, 11, 16, 18, 0, tzinfo=UTC))  # the holiday: nothing yet
    assert await sweep_kinds(database, clock) == []
    clock.set(order.reminder_due_at - timedelta(minutes=1))
    assert await sweep_kinds(database, clock) == []
    clock.set(order.reminder_due_at)
    assert await sweep_kinds(database, clock) == ["slack.order_reminder"]
    assert await sweep_kinds(database, clock) == ["slack.order_reminder"]  # once
    clock.set(order.sla_due_at)
    assert await sweep_kinds(database, clock) == ["slack.order_reminder", "slack.order_escalation"]
    clock.advance(timedelta(hours=5))
    assert await sweep_kinds(database, clock) == ["slack.order_reminder", "slack.order_escalation"]
