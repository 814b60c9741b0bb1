"""Support-desk webhook: a ticket becomes a configuration request (same flow as an e-mail).

The desk signs each delivery: ``X-Timbrado-Timestamp: <unix seconds>`` and
``X-Timbrado-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``.  Deliveries older
than five minutes (or from the future) are refused, so a captured request cannot be replayed later;
a retried delivery of the same ticket id returns the request already opened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from aiohttp import web
from pydantic import BaseModel, Field

from admin.api import container_of, endpoint, json_response, parse_model
from admin.deps import enablement_config
from admin.errors import ApiError
from admin.routes.requests import RequestOut, out
from core.audit.service import Actor, ActorKind, Driver
from core.enablement import service
from core.enablement.models import RequestSource
from mail.subject import match_config_subject

MAX_SKEW_SECONDS = 300


class TicketIn(BaseModel):
    id: str = Field(min_length=1, max_length=100, description="Id del ticket en la mesa de ayuda")
    subject: str = Field(min_length=1, max_length=998)
    requester_email: str = Field(min_length=3, max_length=320)
    requester_name: str = Field(default="", max_length=300)
    body: str = Field(default="", max_length=20000)


class TicketResult(BaseModel):
    status: str = Field(description="created, existing o ignored")
    request: RequestOut | None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    timestamp = headers.get("X-Timbrado-Timestamp", "")
    signature = headers.get("X-Timbrado-Signature", "")
    if not timestamp or not signature:
        raise ApiError(401, "missing_signature", "Faltan los encabezados X-Timbrado-Timestamp y X-Timbrado-Signature.")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        raise ApiError(401, "stale_request", "La marca de tiempo está fuera de la ventana de 5 minutos.")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise ApiError(401, "bad_signature", "La firma del webhook no es válida.")


@endpoint(
    summary="Webhook de la mesa de ayuda: un ticket abre una solicitud",
    tags=["Solicitudes"],
    auth=None,
    body=None,
    response=TicketResult,
    errors=[400, 401, 413, 422, 503],
    description="Firmado con HMAC-SHA256 del cuerpo y una marca de tiempo (ver encabezados X-Timbrado-*).",
)
async def ticket_webhook(request: web.Request) -> web.Response:
    container = container_of(request)
    secret = container.settings.ticket_webhook_secret
    if not secret:
        raise ApiError(
            503, "webhook_disabled", "El webhook de tickets no está configurado (TIMBRADO_TICKET_WEBHOOK_SECRET)."
        )
    raw = await request.read()
    verify_signature(secret, request.headers, raw, time.time())
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "invalid_json", "El cuerpo no es JSON válido.") from None
    ticket = parse_model(data, TicketIn)
    if not match_config_subject(ticket.subject).matched:
        return json_response(TicketResult(status="ignored", request=None))
    actor = Actor(ActorKind.SYSTEM, f"ticket:{ticket.id}", Driver.API, "mesa de ayuda")
    async with container.db.transaction() as session:
        view, created = await service.open_request(
            session,
            source=RequestSource.TICKET,
            requester_email=ticket.requester_email,
            requester_name=ticket.requester_name,
            subject=ticket.subject,
            body=ticket.body,
            external_ticket_id=ticket.id,
            actor=actor,
            cfg=enablement_config(container),
            now=container.clock.now(),
        )
    return json_response(
        TicketResult(status="created" if created else "existing", request=out(view)), 201 if created else 200
    )


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/tickets/webhook", ticket_webhook)
