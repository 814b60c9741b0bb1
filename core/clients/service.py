"""Client use cases: register, flag Proveedores Plus, contacts, identification of a sender."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.clients.models import Client, ClientContact
from core.errors import Conflict, Invalid, NotFound

_RFC = re.compile(r"^[A-ZÑ&]{3,4}[0-9]{6}[A-Z0-9]{3}$")
_EMAIL = re.compile(
    r"^[^@\s<>]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")
# Public mailbox providers never identify a company by domain.
PUBLIC_DOMAINS = frozenset(
    {"gmail.com", "hotmail.com", "outlook.com", "live.com", "yahoo.com", "yahoo.com.mx", "icloud.com", "prodigy.net.mx"}
)


@dataclass(frozen=True, slots=True)
class ClientView:
    id: int
    name: str
    rfc: str | None
    proveedores_plus: bool
    timbrado_enabled: bool
    timbrado_enabled_at: datetime | None
    contacts: tuple[str, ...]

    def snapshot(self) -> dict[str, object]:
        return {"proveedores_plus": self.proveedores_plus, "timbrado_enabled": self.timbrado_enabled}


def normalize_rfc(value: str) -> str:
    rfc = value.strip().upper().replace("-", "").replace(" ", "")
    if not _RFC.match(rfc):
        raise Invalid(f"RFC inválido {value!r}: se esperan 12 (moral) o 13 (física) caracteres.", code="invalid_rfc")
    return rfc


def normalize_contact(value: str) -> tuple[str, str]:
    """Return (kind, value) for an e-mail address or a domain (``@empresa.mx`` or ``empresa.mx``)."""
    v = value.strip().lower()
    if v.startswith("@"):
        v = v[1:]
    if "@" in v:
        if not _EMAIL.match(v):
            raise Invalid(f"Correo inválido {value!r}.", code="invalid_email")
        return "email", v
    if not _DOMAIN.match(v):
        raise Invalid(f"Dominio inválido {value!r}.", code="invalid_domain")
    if v in PUBLIC_DOMAINS:
        raise Invalid(
            f"El dominio {v} es de un proveedor de correo público; registre direcciones completas.",
            code="public_domain",
        )
    return "domain", v


async def _view(session: AsyncSession, client: Client) -> ClientView:
    contacts = (
        await session.scalars(
            select(ClientContact.value).where(ClientContact.client_id == client.id).order_by(ClientContact.id)
        )
    ).all()
    return ClientView(
        client.id,
        client.name,
        client.rfc,
        client.proveedores_plus,
        client.timbrado_enabled,
        client.timbrado_enabled_at,
        tuple(contacts),
    )


async def get_client(session: AsyncSession, client_id: int) -> ClientView:
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound("No se encontró el cliente.")
    return await _view(session, client)


async def create_client(
    session: AsyncSession,
    *,
    name: str,
    rfc: str | None,
    proveedores_plus: bool,
    contacts: list[str],
    actor: Actor,
    now: datetime,
) -> ClientView:
    name = " ".join(name.split())
    if not name or len(name) > 300:
        raise Invalid("El nombre del cliente es obligatorio (máximo 300 caracteres).", code="invalid_name")
    norm_rfc = normalize_rfc(rfc) if rfc else None
    if norm_rfc and await session.scalar(select(Client.id).where(Client.rfc == norm_rfc)):
        raise Conflict(f"Ya existe un cliente con el RFC {norm_rfc}.", code="duplicate_rfc")
    client = Client(
        name=name,
        rfc=norm_rfc,
        proveedores_plus=proveedores_plus,
        timbrado_enabled=False,
        created_at=now,
        updated_at=now,
    )
    session.add(client)
    await session.flush()
    for value in contacts:
        await _add_contact(session, client.id, value, now)
    await record(
        session,
        actor=actor,
        action="client.created",
        subject_type="client",
        subject_id=client.id,
        at=now,
        after={"name": name, "rfc": norm_rfc, "proveedores_plus": proveedores_plus},
    )
    return await _view(session, client)


async def _add_contact(session: AsyncSession, client_id: int, value: str, now: datetime) -> None:
    kind, norm = normalize_contact(value)
    owner = await session.scalar(select(ClientContact.client_id).where(ClientContact.value == norm))
    if owner is not None and owner != client_id:
        raise Conflict(f"El contacto {norm} ya pertenece a otro cliente.", code="duplicate_contact")
    if owner is None:
        session.add(ClientContact(client_id=client_id, kind=kind, value=norm, created_at=now))
        await session.flush()


async def add_contacts(
    session: AsyncSession, client_id: int, values: list[str], actor: Actor, now: datetime
) -> ClientView:
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound("No se encontró el cliente.")
    for value in values:
        await _add_contact(session, client_id, value, now)
    await record(
        session,
        actor=actor,
        action="client.contacts_added",
        subject_type="client",
        subject_id=client_id,
        at=now,
        after={"contacts": values},
    )
    return await _view(session, client)


async def set_proveedores_plus(
    session: AsyncSession, client_id: int, enabled: bool, actor: Actor, now: datetime
) -> ClientView:
    client = await session.get(Client, client_id, with_for_update=True)
    if client is None:
        raise NotFound("No se encontró el cliente.")
    before = client.proveedores_plus
    if before != enabled:
        client.proveedores_plus = enabled
        client.updated_at = now
        await record(
            session,
            actor=actor,
            action="client.proveedores_plus",
            subject_type="client",
            subject_id=client_id,
            at=now,
            before={"proveedores_plus": before},
            after={"proveedores_plus": enabled},
        )
    return await _view(session, client)


async def list_clients(session: AsyncSession, *, query: str = "", limit: int = 50) -> list[ClientView]:
    stmt = select(Client).order_by(Client.name, Client.id).limit(limit)
    if query.strip():
        like = f"%{query.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Client.name).like(like), func.lower(func.coalesce(Client.rfc, "")).like(like)))
    return [await _view(session, c) for c in await session.scalars(stmt)]


async def identify_sender(session: AsyncSession, address: str) -> int | None:
    """The client whose registered address, or else domain, matches ``address``."""
    address = address.strip().lower()
    if "@" not in address:
        return None
    exact = await session.scalar(
        select(ClientContact.client_id).where(ClientContact.value == address, ClientContact.kind == "email")
    )
    if exact is not None:
        return int(exact)
    domain = address.rsplit("@", 1)[1]
    # also match parent domains: mx.empresa.com.mx -> empresa.com.mx
    parts = domain.split(".")
    candidates = [".".join(parts[i:]) for i in range(len(parts) - 1)]
    rows = (
        await session.execute(
            select(ClientContact.value, ClientContact.client_id).where(
                ClientContact.kind == "domain", ClientContact.value.in_(candidates)
            )
        )
    ).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: len(r[0]))
    return int(best[1])


async def identify_by_rfc(session: AsyncSession, rfcs: list[str]) -> int | None:
    for rfc in rfcs:
        found = await session.scalar(select(Client.id).where(Client.rfc == rfc.upper()))
        if found is not None:
            return int(found)
    return None
