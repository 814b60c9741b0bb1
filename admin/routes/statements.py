"""Estado de cuenta API: statement, REP list, streamed exports, summary preferences, staff portfolio."""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from admin.api import QueryParam, container_of, endpoint, int_param, json_response, principal_of, query_int
from admin.deps import require_vendor_scope
from admin.errors import ApiError
from core.statements import exports, queries, summaries
from core.statements.queries import RepFilter

log = logging.getLogger("timbrado.api")

CHUNK = 256 * 1024
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PlanOut(BaseModel):
    plan_id: int
    plan_name: str
    stamps_total: int
    stamps_used: int
    stamps_reserved: int = Field(description="Apartados por complementos en proceso de timbrado")
    stamps_available: int
    valid_from: datetime
    valid_until: datetime = Field(description="Vigencia")
    purchased_at: datetime = Field(description="Fecha de compra")
    price_paid_mxn: Decimal = Field(description="Total pagado (MXN, IVA incluido)")
    expired: bool
    days_to_expiry: int


class StatementOut(BaseModel):
    vendor_id: int
    rfc: str
    razon_social: str
    time_zone: str
    stamps_available: int
    stamps_used: int
    stamps_reserved: int
    total_paid_mxn: Decimal
    next_expiry: datetime | None
    days_to_expiry: int | None
    plans: list[PlanOut]


class RepOut(BaseModel):
    id: int
    issued_at: datetime = Field(description="Fecha de emisión (UTC)")
    fecha_local: str = Field(description="Fecha de emisión en la zona del proveedor, dd/mm/aaaa HH:MM")
    payment_id: int = Field(description="No. pago")
    serie: str
    folio: int
    serie_folio: str
    receiver_rfc: str
    receiver_name: str
    uuid: str | None
    amount: Decimal = Field(description="Monto del pago")
    currency: str
    status: str
    status_label: str


class RepPageOut(BaseModel):
    items: list[RepOut]
    next_cursor: str | None = Field(description="Pase este valor como ?cursor= para la página siguiente")


class PreferencesIn(BaseModel):
    frequency: Literal["weekly", "monthly", "off"] | None = None
    attach_xlsx: bool | None = None
    low_balance_threshold: int | None = Field(default=None, ge=0, le=10_000_000)


class PreferencesOut(BaseModel):
    vendor_id: int
    frequency: str = Field(description="weekly, monthly u off")
    attach_xlsx: bool
    low_balance_threshold: int


class VendorBalanceOut(BaseModel):
    vendor_id: int
    rfc: str
    razon_social: str
    stamps_available: int
    active_plans: int
    next_expiry: datetime | None


class ExpiringPlanOut(BaseModel):
    plan_id: int
    vendor_id: int
    rfc: str
    razon_social: str
    plan_name: str
    stamps_available: int
    valid_until: datetime
    days_to_expiry: int


class OrderInReviewOut(BaseModel):
    order_id: int
    vendor_id: int
    rfc: str
    razon_social: str
    package_name: str
    amount_mxn: Decimal
    proof_received_at: datetime | None
    sla_due_at: datetime | None
    overdue: bool


class PortfolioOut(BaseModel):
    vendors: list[VendorBalanceOut] = Field(description="Proveedores por saldo, del menor al mayor")
    expiring: list[ExpiringPlanOut] = Field(description="Planes que vencen pronto")
    orders_in_review: list[OrderInReviewOut] = Field(description="Órdenes esperando revisión del comprobante")


FILTER_PARAMS = (
    QueryParam("from", "Fecha inicial (AAAA-MM-DD o dd/mm/aaaa), en la zona horaria del proveedor"),
    QueryParam("to", "Fecha final, inclusive"),
    QueryParam("receptor", "RFC exacto o parte del nombre del receptor"),
    QueryParam("status", "stamped, cancelled, cancel_requested, cancel_pending, cancel_rejected, sealed o rejected"),
    QueryParam("currency", "Moneda (c_Moneda), p. ej. MXN o USD"),
)


def _filters(request: web.Request) -> RepFilter:
    q = request.query
    return RepFilter(
        date_from=exports.parse_day(q.get("from"), "from"),
        date_to=exports.parse_day(q.get("to"), "to"),
        receptor=q.get("receptor") or None,
        status=q.get("status") or None,
        currency=(q.get("currency") or "").upper() or None,
    )


def _vendor_id(request: web.Request) -> int:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    return vendor_id


def rep_out(line: queries.RepLine) -> RepOut:
    return RepOut(
        id=line.id,
        issued_at=line.issued_at,
        fecha_local=f"{line.issued_local:%d/%m/%Y %H:%M}",
        payment_id=line.payment_id,
        serie=line.serie,
        folio=line.folio,
        serie_folio=line.serie_folio,
        receiver_rfc=line.receiver_rfc,
        receiver_name=line.receiver_name,
        uuid=line.uuid,
        amount=line.amount.quantize(Decimal("0.01")),
        currency=line.currency,
        status=line.status,
        status_label=line.status_label,
    )


def statement_out(summary: queries.StatementSummary) -> StatementOut:
    v = summary.vendor
    return StatementOut(
        vendor_id=v.id,
        rfc=v.rfc,
        razon_social=v.razon_social,
        time_zone=v.time_zone,
        stamps_available=summary.stamps_available,
        stamps_used=summary.stamps_used,
        stamps_reserved=summary.stamps_reserved,
        total_paid_mxn=summary.total_paid_mxn,
        next_expiry=summary.next_expiry,
        days_to_expiry=summary.days_to_expiry,
        plans=[PlanOut.model_validate(p, from_attributes=True) for p in summary.plans],
    )


@endpoint(
    summary="Estado de cuenta: planes, timbres usados y disponibles, vigencia, fecha de compra y total pagado",
    tags=["Estado de cuenta"],
    auth=("staff", "vendor"),
    response=StatementOut,
    errors=[404],
)
async def show_statement(request: web.Request) -> web.Response:
    container = container_of(request)
    vendor_id = _vendor_id(request)
    async with container.db.session() as session:
        summary = await queries.statement_summary(session, vendor_id, container.clock.now())
    return json_response(statement_out(summary))


@endpoint(
    summary="Complementos de pago generados (más recientes primero, paginación por cursor)",
    tags=["Estado de cuenta"],
    auth=("staff", "vendor"),
    response=RepPageOut,
    query=[
        *FILTER_PARAMS,
        QueryParam("cursor", "Cursor de la página siguiente (next_cursor)"),
        QueryParam("limit", "Tamaño de página (1 a 500, 50 por omisión)", {"type": "integer"}),
    ],
    errors=[404, 422],
)
async def list_reps(request: web.Request) -> web.Response:
    container = container_of(request)
    vendor_id = _vendor_id(request)
    filters = _filters(request)
    limit = query_int(request, "limit", 50, maximum=queries.MAX_PAGE)
    async with container.db.session() as session:
        vendor = await queries.vendor_ref(session, vendor_id)
        page = await queries.list_reps(session, vendor, filters, cursor=request.query.get("cursor"), limit=limit)
    return json_response(RepPageOut(items=[rep_out(x) for x in page.items], next_cursor=page.next_cursor))


@endpoint(
    summary="Exportar los complementos de pago (CSV UTF-8 con BOM o Excel XLSX), en flujo",
    tags=["Estado de cuenta"],
    auth=("staff", "vendor"),
    response=None,
    description=(
        f"Con format=csv (por omisión) responde {CSV_TYPE} (UTF-8 con BOM), en flujo; con format=xlsx responde "
        f"{XLSX_TYPE}. El archivo se llama estado-de-cuenta_<RFC>_<desde>_<hasta>.<csv|xlsx> "
        "(Content-Disposition)."
    ),
    query=[QueryParam("format", "csv o xlsx", {"type": "string", "enum": ["csv", "xlsx"]}), *FILTER_PARAMS],
    errors=[400, 404, 422],
    content_type="text/csv",  # the default format; the description names the XLSX type
)
async def export_reps(request: web.Request) -> web.StreamResponse:
    container = container_of(request)
    vendor_id = _vendor_id(request)
    fmt = request.query.get("format", "csv").lower()
    if fmt not in ("csv", "xlsx"):
        raise ApiError(400, "formato_invalido", "El formato debe ser csv o xlsx.")
    filters = _filters(request)
    async with container.db.session() as session:
        vendor = await queries.vendor_ref(session, vendor_id)
        name = exports.export_filename(vendor, filters, fmt)
        response = web.StreamResponse(
            headers={
                "Content-Type": CSV_TYPE if fmt == "csv" else XLSX_TYPE,
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            }
        )
        if fmt == "csv":
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                async for chunk in exports.stream_csv(session, vendor, filters):
                    await response.write(chunk)
            except ConnectionResetError:
                raise  # the client went away: nobody to tell
            except Exception as exc:
                _abort_stream(request, exc)
                return response
            await response.write_eof()
            return response
        tmp_dir = container.settings.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
            path = Path(work) / name
            await exports.write_xlsx(session, vendor, filters, path)
            response.content_length = path.stat().st_size
            await response.prepare(request)
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    await response.write(chunk)
    await response.write_eof()
    return response


def _abort_stream(request: web.Request, exc: BaseException) -> None:
    """A streamed export failed after its 200 and first rows were sent: the status can no longer say
    so, and a clean end would pass a partial file for a whole one.  Drop the connection before the
    terminating chunk, so the client sees an incomplete transfer (curl: "transfer closed with
    outstanding read data remaining"; browsers: a failed download)."""
    log.error("export stopped midway (%s: %s); the connection is dropped", type(exc).__name__, exc)
    if request.transport is not None:
        request.transport.abort()


def _preferences_out(prefs: summaries.Preferences, cfg: summaries.SummaryConfig) -> PreferencesOut:
    return PreferencesOut(
        vendor_id=prefs.vendor_id,
        frequency=prefs.frequency or cfg.frequency,
        attach_xlsx=prefs.attach_xlsx,
        low_balance_threshold=cfg.low_balance_threshold
        if prefs.low_balance_threshold is None
        else prefs.low_balance_threshold,
    )


@endpoint(
    summary="Preferencias del resumen por correo y de los avisos",
    tags=["Estado de cuenta"],
    auth=("staff", "vendor"),
    response=PreferencesOut,
    errors=[404],
)
async def show_preferences(request: web.Request) -> web.Response:
    container = container_of(request)
    vendor_id = _vendor_id(request)
    async with container.db.session() as session:
        await queries.vendor_ref(session, vendor_id)
        prefs = await summaries.preferences_of(session, vendor_id)
    return json_response(_preferences_out(prefs, summaries.SummaryConfig.from_settings(container.settings)))


@endpoint(
    summary="Cambiar la frecuencia del resumen, el Excel adjunto o el umbral de saldo bajo",
    tags=["Estado de cuenta"],
    auth=("staff", "vendor"),
    body=PreferencesIn,
    response=PreferencesOut,
    errors=[404, 422],
)
async def update_preferences(request: web.Request, body: PreferencesIn) -> web.Response:
    container = container_of(request)
    vendor_id = _vendor_id(request)
    changes = body.model_dump(exclude_unset=True)
    async with container.db.transaction() as session:
        prefs = await summaries.set_preferences(session, vendor_id, now=container.clock.now(), **changes)
    return json_response(_preferences_out(prefs, summaries.SummaryConfig.from_settings(container.settings)))


@endpoint(
    summary="Cartera: proveedores por saldo, planes por vencer y órdenes en revisión (solo personal)",
    tags=["Estado de cuenta"],
    response=PortfolioOut,
    query=[QueryParam("days", "Horizonte de vencimiento en días (30 por omisión)", {"type": "integer"})],
)
async def show_portfolio(request: web.Request) -> web.Response:
    container = container_of(request)
    days = query_int(request, "days", 30, minimum=1, maximum=366)
    async with container.db.session() as session:
        view = await queries.portfolio(session, container.clock.now(), expiring_days=days)
    return json_response(
        PortfolioOut(
            vendors=[VendorBalanceOut.model_validate(v, from_attributes=True) for v in view.vendors],
            expiring=[ExpiringPlanOut.model_validate(p, from_attributes=True) for p in view.expiring],
            orders_in_review=[OrderInReviewOut.model_validate(o, from_attributes=True) for o in view.orders_in_review],
        )
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/vendors/{vendor_id}/statement", show_statement)
    app.router.add_get("/api/v1/vendors/{vendor_id}/statement/reps", list_reps)
    app.router.add_get("/api/v1/vendors/{vendor_id}/statement/export", export_reps)
    app.router.add_get("/api/v1/vendors/{vendor_id}/statement/preferences", show_preferences)
    app.router.add_put("/api/v1/vendors/{vendor_id}/statement/preferences", update_preferences)
    app.router.add_get("/api/v1/statements/portfolio", show_portfolio)
