"""Vendor registration and lookups (the portal's Expediente digital is the source of truth)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.clients.models import Client
from core.errors import Conflict, Invalid, NotFound
from core.orders.contact import normalize_email
from core.sat.errors import SatError
from core.sat.rfc import Rfc
from core.vendors.models import Vendor


@dataclass(frozen=True, slots=True)
class VendorView:
    id: int
    client_id: int
    client_name: str
    client_timbrado_enabled: bool
    rfc: str
    razon_social: str
    direccion: str
    correo: str
    regimen_fiscal: str
    codigo_postal: str


async def _view(session: AsyncSession, v: Vendor) -> VendorView:
    client = await session.get(Client, v.client_id)
    assert client is not None
    return VendorView(
        v.id,
        v.client_id,
        client.name,
        client.timbrado_enabled,
        v.rfc,
        v.razon_social,
        v.direccion,
        v.correo,
        v.regimen_fiscal,
        v.codigo_postal,
    )


async def get_vendor(session: AsyncSession, vendor_id: int) -> VendorView:
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No se encontró el proveedor.")
    return await _view(session, vendor)


async def list_vendors(session: AsyncSession, *, client_id: int | None = None, limit: int = 100) -> list[VendorView]:
    stmt = select(Vendor).order_by(Vendor.id).limit(limit)
    if client_id is not None:
        stmt = stmt.where(Vendor.client_id == client_id)
    return [await _view(session, v) for v in await session.scalars(stmt)]


async def register_vendor(
    session: AsyncSession,
    *,
    client_id: int,
    rfc: str,
    razon_social: str,
    correo: str,
    direccion: str = "",
    regimen_fiscal: str = "601",
    codigo_postal: str = "",
    actor: Actor,
    now: datetime,
) -> VendorView:
    """Register a vendor of a client (data comes from the portal's Expediente digital)."""
    if await session.get(Client, client_id) is None:
        raise NotFound("No se encontró el cliente.")
    try:
        norm_rfc = Rfc.parse(rfc).value
    except SatError as exc:
        raise Invalid(str(exc), code="invalid_rfc") from None
    razon = " ".join(razon_social.split())
    if not razon or len(razon) > 300:
        raise Invalid("La razón social es obligatoria (máximo 300 caracteres).", code="invalid_razon_social")
    try:
        email = normalize_email(correo)
    except ValueError as exc:
        raise Invalid(str(getattr(exc, "message", exc)), code="invalid_email") from None
    if not (len(regimen_fiscal) == 3 and regimen_fiscal.isdigit()):
        raise Invalid("El régimen fiscal debe ser una clave de 3 dígitos del catálogo del SAT.", code="invalid_regimen")
    if codigo_postal and not (len(codigo_postal) == 5 and codigo_postal.isdigit()):
        raise Invalid("El código postal debe tener 5 dígitos.", code="invalid_postal_code")
    exists = await session.scalar(select(Vendor.id).where(Vendor.client_id == client_id, Vendor.rfc == norm_rfc))
    if exists:
        raise Conflict(
            f"El proveedor con RFC {norm_rfc} ya está registrado para este cliente.", code="duplicate_vendor"
        )
    vendor = Vendor(
        client_id=client_id,
        rfc=norm_rfc,
        razon_social=razon,
        direccion=" ".join(direccion.split())[:500],
        correo=email,
        regimen_fiscal=regimen_fiscal,
        codigo_postal=codigo_postal,
        created_at=now,
        updated_at=now,
    )
    session.add(vendor)
    await session.flush()
    await record(
        session,
        actor=actor,
        action="vendor.registered",
        subject_type="vendor",
        subject_id=vendor.id,
        at=now,
        after={"rfc": norm_rfc, "client_id": client_id},
    )
    return await _view(session, vendor)
