"""Configuration requests: list, show, open, verify, approve, reject, link to a client."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from admin.api import QueryParam, container_of, endpoint, int_param, json_response, principal_of, query_int
from admin.deps import api_actor, enablement_config
from admin.errors import ApiError
from core.enablement import service
from core.enablement.models import RequestSource, RequestStatus


class RequestOut(BaseModel):
    id: int
    ticket: str
    source: str
    status: str
    status_label: str
    client_id: int | None
    client_name: str | None
    client_rfc: str | None
    client_proveedores_plus: bool | None
    client_timbrado_enabled: bool | None
    unidentified: bool
    requester_email: str
    requester_name: str
    subject: str
    excerpt: str
    external_ticket_id: str | None
    pp_checked_at: datetime | None
    pp_checked_by: str | None
    pp_result: bool | None
    decided_at: datetime | None
    decided_by: str | None
    decided_via: str | None
    decision_reason: str | None
    created_at: datetime


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_before_id: int | None = Field(description="Pase este valor como before_id para la siguiente página")


class RequestCreate(BaseModel):
    requester_email: str = Field(min_length=3, max_length=320)
    requester_name: str = Field(default="", max_length=300)
    client_id: int | None = Field(default=None, ge=1)
    body: str = Field(default="", max_length=20000)


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=service.MAX_REASON)


class LinkBody(BaseModel):
    client_id: int = Field(ge=1)


class VerifyOut(BaseModel):
    request: RequestOut
    has_proveedores_plus: bool


def out(view: service.RequestView) -> RequestOut:
    return RequestOut.model_validate(view, from_attributes=True)


@endpoint(
    summary="Listar solicitudes de configuración (más recientes primero)",
    tags=["Solicitudes"],
    response=RequestPage,
    query=[
        QueryParam("status", "received, verified, enabled o rejected"),
        QueryParam("open", "true para solo pendientes"),
        QueryParam("q", "Buscar por ticket, cliente, RFC o correo"),
        QueryParam("limit", "Máximo de filas (1-200)", {"type": "integer"}),
        QueryParam("before_id", "Paginación: id a partir del cual continuar", {"type": "integer"}),
    ],
    errors=[400],
)
async def list_requests(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status and status not in {s.value for s in RequestStatus}:
        raise ApiError(400, "invalid_query", "status debe ser received, verified, enabled o rejected.")
    limit = query_int(request, "limit", 50, maximum=200)
    before = query_int(request, "before_id", 0, minimum=0, maximum=2**62) or None
    async with container_of(request).db.session() as session:
        views = await service.list_requests(
            session,
            status=status,
            open_only=request.query.get("open", "").lower() in ("1", "true", "si", "sí"),
            query=request.query.get("q", "")[:100],
            limit=limit,
            before_id=before,
        )
    next_before = views[-1].id if len(views) == limit else None
    return json_response(RequestPage(items=[out(v) for v in views], next_before_id=next_before))


@endpoint(summary="Detalle de una solicitud", tags=["Solicitudes"], response=RequestOut, errors=[404])
async def show_request(request: web.Request) -> web.Response:
    async with container_of(request).db.session() as session:
        return json_response(out(await service.get_request(session, int_param(request, "request_id"))))


@endpoint(
    summary="Abrir una solicitud en nombre de un cliente",
    tags=["Solicitudes"],
    body=RequestCreate,
    response=RequestOut,
    status=201,
    errors=[404],
)
async def create_request(request: web.Request, body: RequestCreate) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view, _created = await service.open_request(
            session,
            source=RequestSource.API,
            requester_email=body.requester_email,
            requester_name=body.requester_name,
            body=body.body,
            client_id=body.client_id,
            actor=api_actor(principal_of(request)),
            cfg=enablement_config(container),
            now=container.clock.now(),
        )
    return json_response(out(view), 201)


@endpoint(summary="Verificar Proveedores Plus del cliente", tags=["Solicitudes"], response=VerifyOut, errors=[404, 409])
async def verify(request: web.Request) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        result = await service.verify(
            session,
            int_param(request, "request_id"),
            actor=api_actor(principal_of(request)),
            cfg=enablement_config(container),
            now=container.clock.now(),
        )
    return json_response(VerifyOut(request=out(result.request), has_proveedores_plus=result.has_proveedores_plus))


@endpoint(
    summary="Aprobar: habilita el módulo para el cliente",
    tags=["Solicitudes"],
    response=RequestOut,
    errors=[404, 409],
    description="Vuelve a comprobar Proveedores Plus en el momento de decidir. Si otra persona ya resolvió la "
    "solicitud responde 409 already_resolved con quién y cuándo.",
)
async def approve(request: web.Request) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        result = await service.approve(
            session,
            int_param(request, "request_id"),
            actor=api_actor(principal_of(request)),
            cfg=enablement_config(container),
            now=container.clock.now(),
        )
    if not result.approved:
        raise ApiError(
            409, "proveedores_plus_missing", result.message, {"request": out(result.request).model_dump(mode="json")}
        )
    return json_response(out(result.request))


@endpoint(
    summary="Rechazar con un motivo (se envía al solicitante)",
    tags=["Solicitudes"],
    body=RejectBody,
    response=RequestOut,
    errors=[404, 409],
)
async def reject(request: web.Request, body: RejectBody) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.reject(
            session,
            int_param(request, "request_id"),
            reason=body.reason,
            actor=api_actor(principal_of(request)),
            cfg=enablement_config(container),
            now=container.clock.now(),
        )
    return json_response(out(view))


@endpoint(
    summary="Vincular la solicitud a un cliente",
    tags=["Solicitudes"],
    body=LinkBody,
    response=RequestOut,
    errors=[404, 409],
)
async def link(request: web.Request, body: LinkBody) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.link_client(
            session,
            int_param(request, "request_id"),
            body.client_id,
            actor=api_actor(principal_of(request)),
            cfg=enablement_config(container),
            now=container.clock.now(),
        )
    return json_response(out(view))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/requests", list_requests)
    app.router.add_post("/api/v1/requests", create_request)
    app.router.add_get("/api/v1/requests/{request_id}", show_request)
    app.router.add_post("/api/v1/requests/{request_id}/verify", verify)
    app.router.add_post("/api/v1/requests/{request_id}/approve", approve)
    app.router.add_post("/api/v1/requests/{request_id}/reject", reject)
    app.router.add_post("/api/v1/requests/{request_id}/client", link)
