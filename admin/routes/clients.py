"""Clients: register, list, show, contacts, Proveedores Plus flag."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from admin.api import QueryParam, container_of, endpoint, int_param, json_response, principal_of, query_int
from admin.deps import api_actor
from core.clients import service


class ClientOut(BaseModel):
    id: int
    name: str
    rfc: str | None
    proveedores_plus: bool
    timbrado_enabled: bool
    timbrado_enabled_at: datetime | None
    contacts: list[str]


class ClientCreate(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    rfc: str | None = Field(default=None, max_length=20)
    proveedores_plus: bool = False
    contacts: list[str] = Field(default_factory=list, max_length=100, description="Correos o dominios (@empresa.mx)")


class ContactsAdd(BaseModel):
    contacts: list[str] = Field(min_length=1, max_length=100)


class ProveedoresPlus(BaseModel):
    enabled: bool


def out(view: service.ClientView) -> ClientOut:
    return ClientOut(
        id=view.id,
        name=view.name,
        rfc=view.rfc,
        proveedores_plus=view.proveedores_plus,
        timbrado_enabled=view.timbrado_enabled,
        timbrado_enabled_at=view.timbrado_enabled_at,
        contacts=list(view.contacts),
    )


@endpoint(
    summary="Registrar un cliente", tags=["Clientes"], body=ClientCreate, response=ClientOut, status=201, errors=[409]
)
async def create(request: web.Request, body: ClientCreate) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.create_client(
            session,
            name=body.name,
            rfc=body.rfc,
            proveedores_plus=body.proveedores_plus,
            contacts=body.contacts,
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    return json_response(out(view), 201)


@endpoint(
    summary="Listar clientes",
    tags=["Clientes"],
    response=list[ClientOut],
    query=[QueryParam("q", "Buscar por nombre o RFC"), QueryParam("limit", "1-200", {"type": "integer"})],
)
async def list_clients(request: web.Request) -> web.Response:
    async with container_of(request).db.session() as session:
        views = await service.list_clients(
            session, query=request.query.get("q", "")[:100], limit=query_int(request, "limit", 50, maximum=200)
        )
    return json_response([out(v) for v in views])


@endpoint(summary="Detalle de un cliente", tags=["Clientes"], response=ClientOut, errors=[404])
async def show(request: web.Request) -> web.Response:
    async with container_of(request).db.session() as session:
        return json_response(out(await service.get_client(session, int_param(request, "client_id"))))


@endpoint(
    summary="Agregar correos o dominios de contacto",
    tags=["Clientes"],
    body=ContactsAdd,
    response=ClientOut,
    errors=[404, 409],
)
async def add_contacts(request: web.Request, body: ContactsAdd) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.add_contacts(
            session,
            int_param(request, "client_id"),
            body.contacts,
            api_actor(principal_of(request)),
            container.clock.now(),
        )
    return json_response(out(view))


@endpoint(
    summary="Activar o desactivar Proveedores Plus",
    tags=["Clientes"],
    body=ProveedoresPlus,
    response=ClientOut,
    errors=[404],
)
async def set_pp(request: web.Request, body: ProveedoresPlus) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.set_proveedores_plus(
            session,
            int_param(request, "client_id"),
            body.enabled,
            api_actor(principal_of(request)),
            container.clock.now(),
        )
    return json_response(out(view))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/clients", create)
    app.router.add_get("/api/v1/clients", list_clients)
    app.router.add_get("/api/v1/clients/{client_id}", show)
    app.router.add_post("/api/v1/clients/{client_id}/contacts", add_contacts)
    app.router.add_put("/api/v1/clients/{client_id}/proveedores-plus", set_pp)
