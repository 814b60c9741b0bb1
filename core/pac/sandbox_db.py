"""A database-backed :class:`~core.pac.sandbox_store.SandboxStore`: the sandbox PAC's memory survives restarts.

Three tables, written only by the sandbox (it plays the PAC, so it keeps its own records apart
from the service's ``payment_complements``):

* ``sandbox_stamps``: every CFDI it certified, by UUID (the stamped XML, for ``recover``);
* ``sandbox_stamp_keys``: idempotency key -> UUID (a re-sent document gets its first stamp);
* ``sandbox_cancellations``: where each cancellation stands.

Each call is its own short transaction, as a remote PAC's storage would be.  Writes are
first-wins (``INSERT ... ON CONFLICT DO NOTHING``), like :class:`MemorySandboxStore`'s
``setdefault``; cancellations are upserted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime
from core.db.engine import Database
from core.pac.base import CancelStatus
from core.pac.sandbox_store import CancellationRecord, StampRecord


class SandboxStamp(Base):
    __tablename__ = "sandbox_stamps"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    fecha_timbrado: Mapped[str] = mapped_column(String(19))
    no_certificado_sat: Mapped[str] = mapped_column(String(20))
    rfc_prov_certif: Mapped[str] = mapped_column(String(13))
    rfc_emisor: Mapped[str] = mapped_column(String(13))
    rfc_receptor: Mapped[str] = mapped_column(String(13))
    total: Mapped[str] = mapped_column(String(40))
    tipo: Mapped[str] = mapped_column(String(1))
    stamped_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SandboxStampKey(Base):
    __tablename__ = "sandbox_stamp_keys"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))


class SandboxCancellation(Base):
    __tablename__ = "sandbox_cancellations"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(30))
    motivo: Mapped[str] = mapped_column(String(2))
    folio_sustitucion: Mapped[str | None] = mapped_column(String(36), default=None)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acuse: Mapped[bytes] = mapped_column(LargeBinary)


def _stamp_record(row: SandboxStamp) -> StampRecord:
    return StampRecord(
        uuid=row.uuid,
        xml=row.xml,
        fecha_timbrado=row.fecha_timbrado,
        no_certificado_sat=row.no_certificado_sat,
        rfc_prov_certif=row.rfc_prov_certif,
        rfc_emisor=row.rfc_emisor,
        rfc_receptor=row.rfc_receptor,
        total=row.total,
        tipo=row.tipo,
        stamped_at=row.stamped_at,
    )


class DatabaseSandboxStore:
    """:class:`~core.pac.sandbox_store.SandboxStore` over the service's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"DatabaseSandboxStore(dialect={self._db.dialect!r})"

    def _insert(self, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
        if self._db.is_postgres:
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def get(self, uuid: str) -> StampRecord | None:
        async with self._db.session() as session:
            row = await session.get(SandboxStamp, uuid.upper())
            return None if row is None else _stamp_record(row)

    async def get_by_key(self, idempotency_key: str) -> StampRecord | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(SandboxStamp)
                .join(SandboxStampKey, SandboxStampKey.uuid == SandboxStamp.uuid)
                .where(SandboxStampKey.idempotency_key == idempotency_key)
            )
            return None if row is None else _stamp_record(row)

    async def put(self, record: StampRecord, idempotency_key: str | None) -> None:
        uuid = record.uuid.upper()
        async with self._db.transaction() as session:
            await session.execute(
                self._insert(SandboxStamp)
                .values(
                    uuid=uuid,
                    xml=record.xml,
                    fecha_timbrado=record.fecha_timbrado,
                    no_certificado_sat=record.no_certificado_sat,
                    rfc_prov_certif=record.rfc_prov_certif,
                    rfc_emisor=record.rfc_emisor,
                    rfc_receptor=record.rfc_receptor,
                    total=record.total,
                    tipo=record.tipo,
                    stamped_at=record.stamped_at,
                )
                .on_conflict_do_nothing(index_elements=["uuid"])
            )
            if idempotency_key:
                await session.execute(
                    self._insert(SandboxStampKey)
                    .values(idempotency_key=idempotency_key, uuid=uuid)
                    .on_conflict_do_nothing(index_elements=["idempotency_key"])
                )

    async def get_cancellation(self, uuid: str) -> CancellationRecord | None:
        async with self._db.session() as session:
            row = await session.get(SandboxCancellation, uuid.upper())
            if row is None:
                return None
            return CancellationRecord(
                uuid=row.uuid,
                status=CancelStatus(row.status),
                motivo=row.motivo,
                folio_sustitucion=row.folio_sustitucion,
                requested_at=row.requested_at,
                acuse=row.acuse,
            )

    async def put_cancellation(self, record: CancellationRecord) -> None:
        values = {
            "status": record.status.value,
            "motivo": record.motivo,
            "folio_sustitucion": record.folio_sustitucion,
            "requested_at": record.requested_at,
            "acuse": record.acuse,
        }
        async with self._db.transaction() as session:
            await session.execute(
                self._insert(SandboxCancellation)
                .values(uuid=record.uuid.upper(), **values)
                .on_conflict_do_update(index_elements=["uuid"], set_=values)
            )
