"""Fast seeding for statement tests and the benchmark: vendors, plans and many REP rows at once."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Table, insert

from core.clients.models import Client
from core.db.engine import Database
from core.stamping.models import Payment, PaymentComplement, RepStatus
from core.vendors.models import CfdiSettings, Vendor

RECEIVERS: tuple[tuple[str, str], ...] = (
    ("XAXX010101000", "PÚBLICO EN GENERAL"),
    ("EKU9003173C9", "ESCUELA KEMPER URGATE"),
    ("IIA040805DZ4", "INDISTRIA ILUMINADORA DE ALMACENES"),
)


async def seed_vendor(
    db: Database,
    now: dt.datetime,
    *,
    rfc: str = "EKU9003173C9",
    razon_social: str = "ESCUELA KEMPER URGATE",
    correo: str = "proveedor@ekemper.test",
    time_zone: str | None = None,
    client_id: int | None = None,
) -> tuple[int, int]:
    """A vendor (and a client when none is given); ``time_zone`` adds Datos del CFDI.  (client, vendor)."""
    async with db.transaction() as s:
        if client_id is None:
            client = Client(
                name="Compradora Industrial", rfc=f"CIN{uuidlib.uuid4().hex[:6].upper()}AB1"[:12],
                proveedores_plus=True, timbrado_enabled=True, created_at=now, updated_at=now,
            )  # fmt: skip
            s.add(client)
            await s.flush()
            client_id = client.id
        vendor = Vendor(
            client_id=client_id, rfc=rfc, razon_social=razon_social, correo=correo, created_at=now, updated_at=now
        )
        s.add(vendor)
        await s.flush()
        if time_zone:
            s.add(
                CfdiSettings(
                    vendor_id=vendor.id, lugar_expedicion="06600", time_zone=time_zone, serie="P",
                    next_folio=1, folio_start=1, updated_at=now,
                )
            )  # fmt: skip
        return client_id, vendor.id


async def seed_payment(db: Database, client_id: int, vendor_id: int, now: dt.datetime, **kw: object) -> int:
    async with db.transaction() as s:
        values: dict[str, object] = {
            "vendor_id": vendor_id, "client_id": client_id, "paid_at": now, "payment_form": "03",
            "currency": "MXN", "amount": Decimal("100.00"), "status": "stamped", "errors": [],
            "created_at": now, "updated_at": now,
        }  # fmt: skip
        values.update(kw)
        payment = Payment(**values)
        s.add(payment)
        await s.flush()
        return payment.id


def rep_rows(
    client_id: int,
    vendor_id: int,
    payment_id: int,
    count: int,
    *,
    newest: dt.datetime,
    step: dt.timedelta = dt.timedelta(minutes=7),
    first_folio: int = 1,
    receivers: Sequence[tuple[str, str]] = RECEIVERS,
    currencies: Sequence[str] = ("MXN", "MXN", "USD"),
    status: str = RepStatus.STAMPED.value,
) -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        folio = first_folio + i
        issued = newest - step * (count - 1 - i)
        rfc, name = receivers[i % len(receivers)]
        rows.append(
            {
                "payment_id": payment_id, "vendor_id": vendor_id, "client_id": client_id, "serie": "P",
                "folio": folio, "fecha": issued.strftime("%Y-%m-%dT%H:%M:%S"), "issued_at": issued,
                "status": status, "idempotency_key": f"seed:{vendor_id}:{folio}", "sealed_xml": b"<x/>",
                "uuid": str(uuidlib.UUID(int=vendor_id << 64 | folio)).upper(), "stamped_at": issued,
                "amount": Decimal(1000 + (i % 997)) + Decimal("0.50"), "currency": currencies[i % len(currencies)],
                "receiver_rfc": rfc, "receiver_name": name, "stamp_state": "debited", "late": False,
                "errors": [], "created_at": issued, "updated_at": issued,
            }
        )  # fmt: skip
    return rows


async def insert_reps(db: Database, rows: list[dict[str, object]], *, batch: int = 5000) -> None:
    """Insert REP rows with one executemany per batch (every row must have the first row's keys)."""
    for start in range(0, len(rows), batch):
        async with db.transaction() as s:
            await s.execute(insert(PaymentComplement.__table__), rows[start : start + batch])


async def bulk_insert_reps(db: Database, rows: list[dict[str, object]]) -> None:
    """Insert many REP rows fast: ``COPY`` through asyncpg on PostgreSQL, :func:`insert_reps` on SQLite.

    COPY skips SQLAlchemy's executemany machinery (200,000 rows: about 5 s instead of 8 s here, on a
    loaded machine); values still go through each column type's bind processor, so they are stored
    as an INSERT would store them.
    """
    if not rows:
        return
    if db.dialect != "postgresql":
        await insert_reps(db, rows)
        return
    table = PaymentComplement.__table__
    assert isinstance(table, Table)
    names = list(rows[0])
    dialect = db.engine.dialect
    columns = [(name, table.c[name].type.bind_processor(dialect)) for name in names]
    records = [tuple(row[n] if proc is None else proc(row[n]) for n, proc in columns) for row in rows]
    async with db.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection  # the asyncpg connection
        assert driver is not None
        await driver.copy_records_to_table(table.name, records=records, columns=names)
