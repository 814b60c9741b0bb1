"""Invoices, payments and REPs (payment complements): upload, register, list, show, download,
retry, cancel, a batch of payments, and the standalone REP validator."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from admin.api import QueryParam, container_of, endpoint, int_param, json_response, principal_of, query_int
from admin.container import Container
from admin.deps import api_actor, require_vendor_scope
from admin.errors import ApiError
from core.auth.tokens import Principal
from core.cfdi.validator import validate_rep
from core.errors import DomainError, NotFound
from core.stamping import cancellation, invoices, payments
from core.stamping.models import PaymentComplement

_MONEY = Field(max_digits=24, decimal_places=10)


class AppliedIn(BaseModel):
    invoice_id: int | None = Field(default=None, ge=1)
    uuid: str | None = Field(default=None, min_length=36, max_length=36)
    amount_paid: Decimal = _MONEY
    equivalence: Decimal | None = Field(default=None, max_digits=24, decimal_places=10)


class PaymentIn(BaseModel):
    vendor_id: int = Field(ge=1)
    paid_at: datetime = Field(description="FechaPago, ISO 8601 con zona horaria")
    payment_form: str = Field(min_length=2, max_length=2, description="c_FormaPago (no 99)")
    currency: str = Field(min_length=3, max_length=3)
    exchange_rate: Decimal | None = Field(default=None, max_digits=18, decimal_places=6)
    amount: Decimal = _MONEY
    operation_number: str | None = Field(default=None, max_length=100)
    payer_bank_rfc: str | None = Field(default=None, max_length=13)
    payer_bank_name: str | None = Field(default=None, max_length=300)
    payer_account: str | None = Field(default=None, max_length=50)
    payee_bank_rfc: str | None = Field(default=None, max_length=13)
    payee_account: str | None = Field(default=None, max_length=50)
    notify_email: str | None = Field(default=None, max_length=320)
    documents: list[AppliedIn] = Field(min_length=1, max_length=payments.MAX_DOCUMENTS)

    def to_request(self) -> payments.PaymentRequest:
        data = self.model_dump(exclude={"documents"})
        docs = tuple(payments.AppliedInvoice(**d.model_dump()) for d in self.documents)
        return payments.PaymentRequest(documents=docs, **data)


class PaymentBatchIn(BaseModel):
    payments: list[PaymentIn] = Field(min_length=1, max_length=1000)


class CancelIn(BaseModel):
    motivo: Literal["01", "02", "03", "04"]
    folio_sustitucion: str | None = Field(default=None, min_length=36, max_length=36)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _client_scope(principal: Principal) -> int | None:
    return None if principal.is_staff or principal.vendor_id is not None else principal.client_id


def _check_payment_scope(principal: Principal, vendor_id: int, client_id: int) -> None:
    if principal.is_staff:
        return
    if principal.vendor_id is not None and principal.vendor_id == vendor_id:
        return
    if principal.client_id is not None and principal.client_id == client_id:
        return
    raise NotFound("No se encontró el recurso.")


def _rep_out(rep: PaymentComplement) -> dict[str, Any]:
    return {
        "id": rep.id, "payment_id": rep.payment_id, "vendor_id": rep.vendor_id, "client_id": rep.client_id,
        "serie": rep.serie, "folio": rep.folio, "fecha": rep.fecha, "uuid": rep.uuid, "status": rep.status,
        "fecha_timbrado": rep.fecha_timbrado, "pac": rep.pac_name, "amount": str(rep.amount),
        "currency": rep.currency, "receiver_rfc": rep.receiver_rfc, "receiver_name": rep.receiver_name,
        "late": rep.late, "has_pdf": rep.pdf_path is not None, "errors": rep.errors or [],
        "cancel_motivo": rep.cancel_motivo,
        "cancelled_at": rep.cancelled_at.isoformat() if rep.cancelled_at else None,
    }  # fmt: skip


async def _read_xml(request: web.Request) -> bytes:
    data = await request.read()  # bounded by client_max_size (413 beyond it)
    if not data.strip():
        raise ApiError(400, "empty_body", "Envíe el XML en el cuerpo de la solicitud.")
    return data


# ------------------------------------------------------------------ invoices
@endpoint(summary="Registrar una factura PPD (XML timbrado)", tags=["timbrado"], auth=("vendor",), status=201,
          content_type="application/xml", errors=(404, 409, 413, 422))  # fmt: skip
async def upload_invoice(request: web.Request) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    principal = principal_of(request)
    require_vendor_scope(principal, vendor_id)
    c = container_of(request)
    data = await _read_xml(request)
    async with c.db.transaction() as s:
        view = await invoices.register_invoice(
            s, vendor_id, data, actor=api_actor(principal), now=c.clock.now(), max_bytes=c.settings.invoice_max_bytes
        )
    return json_response(_plain(view), 201)


_LIMIT = QueryParam("limit", "máximo", {"type": "integer"})
_VENDOR = QueryParam("vendor_id", "proveedor", {"type": "integer"})


@endpoint(summary="Facturas de un proveedor", tags=["timbrado"], auth=("vendor",),
          query=(QueryParam("status", "open | paid | cancelled"), _LIMIT))  # fmt: skip
async def list_invoices(request: web.Request) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    c = container_of(request)
    async with c.db.session() as s:
        views = await invoices.list_invoices(
            s, vendor_id=vendor_id, status=request.query.get("status") or None, limit=query_int(request, "limit", 100)
        )
    return json_response(_plain(views))


@endpoint(summary="Marcar una factura como cancelada", tags=["timbrado"], auth=("vendor",), errors=(404,))
async def cancel_invoice(request: web.Request) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    async with c.db.transaction() as s:
        row = await invoices.get_invoice(s, int_param(request, "invoice_id"))
        require_vendor_scope(principal, row.vendor_id)
        view = await invoices.mark_cancelled(s, row.id, actor=api_actor(principal), now=c.clock.now())
    return json_response(_plain(view))


# ------------------------------------------------------------------ payments
@endpoint(summary="Registrar un pago de facturas PPD", tags=["timbrado"], auth=("client",), body=PaymentIn,
          status=201, errors=(404, 422),
          description="Valida el pago, asigna NumParcialidad por factura y encola el timbrado del REP.")  # fmt: skip
async def create_payment(request: web.Request, body: PaymentIn) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    async with c.db.transaction() as s:
        view = await payments.register_payment(
            s, body.to_request(), actor=api_actor(principal), now=c.clock.now(), client_id=_client_scope(principal)
        )
    return json_response(_plain(view), 201)


@endpoint(summary="Registrar varios pagos a la vez", tags=["timbrado"], auth=("client",), body=PaymentBatchIn,
          description="Cada pago se registra o se rechaza por separado, en el orden recibido.")  # fmt: skip
async def create_payments_batch(request: web.Request, body: PaymentBatchIn) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    results: list[dict[str, Any]] = []
    for index, item in enumerate(body.payments):
        try:
            async with c.db.transaction() as s:
                view = await payments.register_payment(
                    s, item.to_request(), actor=api_actor(principal), now=c.clock.now(),
                    client_id=_client_scope(principal),
                )  # fmt: skip
            results.append({"index": index, "ok": True, "payment": _plain(view)})
        except DomainError as exc:
            results.append({"index": index, "ok": False, "error": {"code": exc.code, "message": exc.message}})
    accepted = sum(1 for r in results if r["ok"])
    return json_response({"accepted": accepted, "refused": len(results) - accepted, "results": results})


@endpoint(summary="Pagos", tags=["timbrado"], auth=("vendor", "client"),
          query=(_VENDOR, QueryParam("status", "estado"), _LIMIT))  # fmt: skip
async def list_payments(request: web.Request) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    vendor_id = principal.vendor_id or (query_int(request, "vendor_id", 0, minimum=0, maximum=10**18) or None)
    async with c.db.session() as s:
        views = await payments.list_payments(
            s, vendor_id=vendor_id, client_id=_client_scope(principal), status=request.query.get("status") or None,
            limit=query_int(request, "limit", 100),
        )  # fmt: skip
    return json_response(_plain(views))


@endpoint(summary="Detalle de un pago", tags=["timbrado"], auth=("vendor", "client"), errors=(404,))
async def show_payment(request: web.Request) -> web.Response:
    c = container_of(request)
    async with c.db.session() as s:
        row = await payments.get_payment(s, int_param(request, "payment_id"))
        _check_payment_scope(principal_of(request), row.vendor_id, row.client_id)
        view = await payments.payment_view(s, row)
    return json_response(_plain(view))


@endpoint(summary="Reintentar el complemento de un pago", tags=["timbrado"], auth=("vendor",), errors=(404, 422))
async def retry_payment(request: web.Request) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    async with c.db.transaction() as s:
        row = await payments.get_payment(s, int_param(request, "payment_id"))
        require_vendor_scope(principal, row.vendor_id)
        view = await payments.retry_payment(s, row.id, actor=api_actor(principal), now=c.clock.now())
    return json_response(_plain(view))


# ------------------------------------------------------------------ REPs
async def _rep(request: web.Request) -> PaymentComplement:
    c = container_of(request)
    async with c.db.session() as s:
        rep = await s.get(PaymentComplement, int_param(request, "rep_id"))
    if rep is None:
        raise NotFound("No se encontró el complemento de pago.")
    _check_payment_scope(principal_of(request), rep.vendor_id, rep.client_id)
    return rep


@endpoint(summary="Complementos de pago (REP)", tags=["timbrado"], auth=("vendor", "client"),
          query=(_VENDOR, QueryParam("status", "estado"), _LIMIT))  # fmt: skip
async def list_reps(request: web.Request) -> web.Response:
    from sqlalchemy import select

    c = container_of(request)
    principal = principal_of(request)
    stmt = select(PaymentComplement).order_by(PaymentComplement.id.desc()).limit(query_int(request, "limit", 100))
    vendor_id = principal.vendor_id or (query_int(request, "vendor_id", 0, minimum=0, maximum=10**18) or None)
    if vendor_id:
        stmt = stmt.where(PaymentComplement.vendor_id == vendor_id)
    client_id = _client_scope(principal)
    if client_id is not None:
        stmt = stmt.where(PaymentComplement.client_id == client_id)
    if request.query.get("status"):
        stmt = stmt.where(PaymentComplement.status == request.query["status"])
    async with c.db.session() as s:
        rows = list(await s.scalars(stmt))
    return json_response([_rep_out(r) for r in rows])


@endpoint(summary="Detalle de un REP", tags=["timbrado"], auth=("vendor", "client"), errors=(404,))
async def show_rep(request: web.Request) -> web.Response:
    return json_response(_rep_out(await _rep(request)))


@endpoint(summary="Descargar el XML timbrado de un REP", tags=["timbrado"], auth=("vendor", "client"),
          errors=(404,), content_type="application/xml")  # fmt: skip
async def rep_xml(request: web.Request) -> web.Response:
    rep = await _rep(request)
    if rep.stamped_xml is None:
        raise NotFound("El complemento todavía no está timbrado.")
    headers = {"Content-Disposition": f'attachment; filename="REP_{rep.serie}{rep.folio}_{rep.uuid}.xml"'}
    return web.Response(body=rep.stamped_xml, content_type="application/xml", headers=headers)


def _pdf_bytes(container: Container, rep: PaymentComplement) -> bytes | None:
    if rep.pdf_path and Path(rep.pdf_path).is_file():
        return Path(rep.pdf_path).read_bytes()
    renderer = container.stamping().stamper.pdf_renderer
    return renderer(rep.stamped_xml, None) if renderer and rep.stamped_xml else None


@endpoint(summary="Descargar el PDF de un REP", tags=["timbrado"], auth=("vendor", "client"), errors=(404,),
          content_type="application/pdf")  # fmt: skip
async def rep_pdf(request: web.Request) -> web.Response:
    rep = await _rep(request)
    if rep.stamped_xml is None:
        raise NotFound("El complemento todavía no está timbrado.")
    data = await asyncio.to_thread(_pdf_bytes, container_of(request), rep)
    if data is None:
        raise NotFound("La representación impresa no está disponible.")
    headers = {"Content-Disposition": f'attachment; filename="REP_{rep.serie}{rep.folio}_{rep.uuid}.pdf"'}
    return web.Response(body=data, content_type="application/pdf", headers=headers)


@endpoint(summary="Cancelar un REP", tags=["timbrado"], auth=("vendor",), body=CancelIn, status=202,
          errors=(404, 409, 422),
          description="Motivo 01 requiere el UUID del REP que lo sustituye (folio_sustitucion).")  # fmt: skip
async def cancel_rep(request: web.Request, body: CancelIn) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    async with c.db.transaction() as s:
        rep = await cancellation.request_cancellation(
            s, int_param(request, "rep_id"), motivo=body.motivo, substitute_uuid=body.folio_sustitucion,
            actor=api_actor(principal), now=c.clock.now(), vendor_id=principal.vendor_id,
        )  # fmt: skip
        out = _rep_out(rep)
    return json_response(out, 202)


@endpoint(summary="Sustituir un REP (motivo 01): emite el sustituto y cancela el original",
          tags=["timbrado"], auth=("vendor",), status=202, errors=(404, 409, 422),
          description="Emite un REP nuevo para el mismo pago, relacionado con TipoRelacion 04, y después "
          "solicita la cancelación del original con el UUID del sustituto. Reintentar es seguro: nunca "
          "emite dos sustitutos.")  # fmt: skip
async def substitute_rep(request: web.Request) -> web.Response:
    c = container_of(request)
    principal = principal_of(request)
    substitute = await cancellation.substitute_and_cancel(
        c.stamping().stamper, int_param(request, "rep_id"), actor=api_actor(principal), vendor_id=principal.vendor_id
    )
    return json_response(_rep_out(substitute), 202)


@endpoint(summary="Validar un REP contra las reglas del SAT", tags=["timbrado"], auth=("vendor", "client"),
          content_type="application/xml",
          description="REP de otro sistema: códigos CRP/CFDI40 del SAT, mensajes en español.")  # fmt: skip
async def validate(request: web.Request) -> web.Response:
    c = container_of(request)
    findings = validate_rep(await _read_xml(request), now=c.clock.now(), xsd_variant="full")
    return json_response({"valid": not findings, "findings": [dataclasses.asdict(f) for f in findings]})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/vendors/{vendor_id}/invoices", upload_invoice)
    r.add_get("/api/v1/vendors/{vendor_id}/invoices", list_invoices)
    r.add_post("/api/v1/invoices/{invoice_id}/cancel", cancel_invoice)
    r.add_post("/api/v1/payments", create_payment)
    r.add_post("/api/v1/payments/batch", create_payments_batch)
    r.add_get("/api/v1/payments", list_payments)
    r.add_get("/api/v1/payments/{payment_id}", show_payment)
    r.add_post("/api/v1/payments/{payment_id}/retry", retry_payment)
    r.add_get("/api/v1/reps", list_reps)
    r.add_post("/api/v1/reps/validate", validate)
    r.add_get("/api/v1/reps/{rep_id}", show_rep)
    r.add_get("/api/v1/reps/{rep_id}/xml", rep_xml)
    r.add_get("/api/v1/reps/{rep_id}/pdf", rep_pdf)
    r.add_post("/api/v1/reps/{rep_id}/cancel", cancel_rep)
    r.add_post("/api/v1/reps/{rep_id}/substitute", substitute_rep)
