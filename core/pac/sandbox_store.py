"""Storage of the sandbox PAC: what it stamped and where each cancellation stands.

The sandbox answers a re-sent document with its first stamp, and ``recover`` finds a stamp by
UUID, so it needs memory. :class:`MemorySandboxStore` keeps it in the process (tests, benchmarks,
a single-process deployment); a deployment that wants the sandbox's memory to survive restarts
implements :class:`SandboxStore` over its database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from core.pac.base import CancelStatus


@dataclass(frozen=True, slots=True)
class StampRecord:
    uuid: str
    xml: bytes = field(repr=False)
    fecha_timbrado: str
    no_certificado_sat: str
    rfc_prov_certif: str
    rfc_emisor: str
    rfc_receptor: str
    total: str
    tipo: str
    stamped_at: datetime


@dataclass(frozen=True, slots=True)
class CancellationRecord:
    uuid: str
    status: CancelStatus
    motivo: str
    folio_sustitucion: str | None
    requested_at: datetime
    acuse: bytes = field(repr=False, default=b"")

    def with_status(self, status: CancelStatus) -> CancellationRecord:
        return replace(self, status=status)


class SandboxStore(Protocol):
    async def get(self, uuid: str) -> StampRecord | None: ...

    async def get_by_key(self, idempotency_key: str) -> StampRecord | None: ...

    async def put(self, record: StampRecord, idempotency_key: str | None) -> None: ...

    async def get_cancellation(self, uuid: str) -> CancellationRecord | None: ...

    async def put_cancellation(self, record: CancellationRecord) -> None: ...


class MemorySandboxStore:
    """In-process :class:`SandboxStore` (dicts; no locking needed on one event loop)."""

    def __init__(self) -> None:
        self._stamps: dict[str, StampRecord] = {}
        self._keys: dict[str, str] = {}
        self._cancellations: dict[str, CancellationRecord] = {}

    def __len__(self) -> int:
        return len(self._stamps)

    async def get(self, uuid: str) -> StampRecord | None:
        return self._stamps.get(uuid.upper())

    async def get_by_key(self, idempotency_key: str) -> StampRecord | None:
        uuid = self._keys.get(idempotency_key)
        return None if uuid is None else self._stamps.get(uuid)

    async def put(self, record: StampRecord, idempotency_key: str | None) -> None:
        self._stamps.setdefault(record.uuid.upper(), record)
        if idempotency_key:
            self._keys.setdefault(idempotency_key, record.uuid.upper())

    async def get_cancellation(self, uuid: str) -> CancellationRecord | None:
        return self._cancellations.get(uuid.upper())

    async def put_cancellation(self, record: CancellationRecord) -> None:
        self._cancellations[record.uuid.upper()] = record
