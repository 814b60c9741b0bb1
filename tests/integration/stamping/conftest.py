"""A ready vendor (plan, signed contract, active CSD, Datos del CFDI) of a client, on both databases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.audit.service import Actor
from core.clients.models import Client, ClientContact
from core.clock import FrozenClock
from core.db.engine import Database
from core.jobs.models import Job
from core.jobs.worker import Worker, WorkerConfig
from core.pac.base import Pac
from core.pac.sandbox import SandboxIdentity, SandboxPac
from core.sat.trust import SatTrust
from core.secrets.box import SecretBox
from core.secrets.keys import Keyring
from core.stamping import invoices, payments
from core.stamping.models import Payment, PaymentComplement
from core.stamping.stamping import Stamper, StampingConfig
from core.stamps import service as stamps
from core.vendors import onboarding
from core.vendors.models import Contract
from core.vendors.service import register_vendor
from tests.support.certs import PASSWORD, IssuedCredential
from tests.support.invoices import CLIENT_NAME, CLIENT_RFC, VENDOR_RFC, InvoiceSpec, amake_invoice, csd

ACTOR = Actor.system()
NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)


@dataclass
class World:
    db: Database
    clock: FrozenClock
    pac: SandboxPac
    box: SecretBox
    data_dir: Path
    vendor_id: int = 0
    client_id: int = 0
    stamper: Stamper = field(init=False)

    def __post_init__(self) -> None:
        self.stamper = self.make_stamper(self.pac)

    def make_stamper(self, pac: Pac) -> Stamper:
        cfg = StampingConfig(
            mail_from="Timbrado <timbrado@test.local>", mail_domain="test.local", data_dir=self.data_dir
        )
        return Stamper(self.db, pac, self.box, self.clock, cfg, pdf_renderer=lambda xml, logo: b"%PDF-1.4 test")

    async def add_invoice(self, spec: InvoiceSpec | None = None, *, vendor_id: int | None = None) -> int:
        xml = await amake_invoice(spec or InvoiceSpec(folio=str(await self.count_invoices() + 1)))
        async with self.db.transaction() as s:
            view = await invoices.register_invoice(
                s, vendor_id or self.vendor_id, xml, actor=ACTOR, now=self.clock.now()
            )
        return view.id

    async def count_invoices(self) -> int:
        from core.stamping.models import Invoice

        async with self.db.session() as s:
            return int(await s.scalar(select(func.count()).select_from(Invoice)) or 0)

    def request(
        self, invoice_id: int, amount: str, *, total: str | None = None, **kw: object
    ) -> payments.PaymentRequest:
        base: dict[str, object] = {
            "vendor_id": self.vendor_id,
            "paid_at": self.clock.now() - dt.timedelta(hours=2),
            "payment_form": "03",
            "currency": "MXN",
            "amount": Decimal(total or amount),
            "documents": (payments.AppliedInvoice(Decimal(amount), invoice_id=invoice_id),),
            "operation_number": "SPEI-001",
        }
        base.update(kw)
        return payments.PaymentRequest(**base)  # type: ignore[arg-type]

    async def pay(self, invoice_id: int, amount: str = "580.00", **kw: object) -> int:
        async with self.db.transaction() as s:
            view = await payments.register_payment(
                s, self.request(invoice_id, amount, **kw), actor=ACTOR, now=self.clock.now()
            )
        return view.id

    async def payment(self, payment_id: int) -> Payment:
        async with self.db.session() as s:
            row = await s.get(Payment, payment_id)
            assert row is not None
            return row

    async def reps(self, payment_id: int | None = None) -> list[PaymentComplement]:
        async with self.db.session() as s:
            stmt = select(PaymentComplement).order_by(PaymentComplement.id)
            if payment_id is not None:
                stmt = stmt.where(PaymentComplement.payment_id == payment_id)
            return list(await s.scalars(stmt))

    async def balance(self) -> stamps.Balance:
        async with self.db.session() as s:
            return await stamps.balance(s, self.vendor_id, self.clock.now())

    async def plans(self) -> list[stamps.PlanView]:
        async with self.db.session() as s:
            return await stamps.plans_of(s, self.vendor_id, self.clock.now())

    async def jobs(self, kind: str) -> list[Job]:
        async with self.db.session() as s:
            return list(await s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))

    async def run_jobs(self, *kinds: str) -> None:
        worker = Worker(
            self.db,
            self.stamper.handlers(),
            clock=self.clock,
            config=WorkerConfig(concurrency=4, batch_size=16, backoff_base=0.0, backoff_max=0.0),
            kinds=frozenset(kinds or ("rep.stamp", "rep.deliver")),
        )
        await worker.run_until_empty()

    async def provision(self, stamps_count: int, *, days: int = 365, at: dt.datetime | None = None) -> None:
        async with self.db.transaction() as s:
            await stamps.provision(
                s, vendor_id=self.vendor_id, order_id=None, plan_name="Paquete de prueba", stamps=stamps_count,
                validity_days=days, price_paid_mxn=Decimal("500.00"), purchased_at=at or self.clock.now(),
                now=at or self.clock.now(),
            )  # fmt: skip


async def make_world(
    db: Database,
    clock: FrozenClock,
    data_dir: Path,
    *,
    stamps_count: int = 50,
    contract: bool = True,
    credential: IssuedCredential | None = None,
    cfdi_settings: bool = True,
    pac: SandboxPac | None = None,
    box: SecretBox | None = None,
) -> World:
    box = box or SecretBox(Keyring.generate())
    world = World(db, clock, pac or SandboxPac(sandbox_identity().signer(), clock=clock), box, data_dir)
    now = clock.now()
    async with db.transaction() as s:
        client = Client(name=CLIENT_NAME, rfc=CLIENT_RFC, proveedores_plus=True, timbrado_enabled=True,
                        created_at=now, updated_at=now)  # fmt: skip
        s.add(client)
        await s.flush()
        s.add(ClientContact(client_id=client.id, kind="email", value="pagos@cliente.test", created_at=now))
        vendor = await register_vendor(
            s, client_id=client.id, rfc=VENDOR_RFC, razon_social="ESCUELA KEMPER URGATE",
            correo="proveedor@ekemper.test", regimen_fiscal="601", codigo_postal="06600", actor=ACTOR, now=now,
        )  # fmt: skip
        world.client_id, world.vendor_id = client.id, vendor.id
        if contract:
            s.add(Contract(vendor_id=vendor.id, signed_at=now, updated_at=now))
        cred = credential or csd()
        await onboarding.add_csd(
            s, vendor.id, cer=cred.cer_der(), key=cred.key_der(PASSWORD), password=PASSWORD, box=box,
            trust=SatTrust(sandbox=True), actor=ACTOR, now=now, require_contract=False,
        )  # fmt: skip
        if cfdi_settings:
            await onboarding.set_cfdi_settings(
                s, vendor.id, {"lugar_expedicion": "06600", "serie": "P", "folio_inicial": 1}, actor=ACTOR, now=now
            )
    if stamps_count:
        await world.provision(stamps_count)
    return world


_IDENTITY: list[SandboxIdentity] = []


def sandbox_identity() -> SandboxIdentity:
    if not _IDENTITY:
        _IDENTITY.append(SandboxIdentity.generate(now=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
    return _IDENTITY[0]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def world(database: Database, clock: FrozenClock, tmp_path: Path) -> World:
    return await make_world(database, clock, tmp_path)
