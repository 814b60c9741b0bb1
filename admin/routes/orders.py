"""Stamp packages and their purchase: catalog, vendors, orders, proof upload and review."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, Field

from admin.api import QueryParam, container_of, endpoint, int_param, json_response, principal_of, query_int
from admin.deps import api_actor, file_store, orders_config, require_vendor_scope
from admin.errors import ApiError
from core.errors import NotFound
from core.orders import service
from core.orders.models import OrderStatus
from core.uploads.errors import UploadError
from core.uploads.names import safe_display_name
from core.uploads.store import StoredFile, format_megabytes
from core.vendors import service as vendors

UPLOAD_CHUNK = 64 * 1024


class PackageOut(BaseModel):
    id: int
    name: str
    stamps: int
    price_mxn: Decimal = Field(description="Precio en MXN con IVA incluido")
    validity_days: int
    active: bool


class PackageCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    stamps: int = Field(ge=1, le=10_000_000)
    price_mxn: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    validity_days: int = Field(ge=1, le=3660)


class PackageUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    stamps: int | None = Field(default=None, ge=1, le=10_000_000)
    price_mxn: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)
    validity_days: int | None = Field(default=None, ge=1, le=3660)
    active: bool | None = None


class VendorCreate(BaseModel):
    client_id: int = Field(ge=1)
    rfc: str = Field(min_length=12, max_length=13)
    razon_social: str = Field(min_length=1, max_length=300)
    correo: str = Field(min_length=3, max_length=320)
    direccion: str = Field(default="", max_length=500)
    regimen_fiscal: str = Field(default="601", min_length=3, max_length=3)
    codigo_postal: str = Field(default="", max_length=5)


class VendorOut(BaseModel):
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


class Contact(BaseModel):
    empresa: str = Field(default="", max_length=2000, description="Razón social")
    nombre: str = Field(default="", max_length=2000)
    telefono: str = Field(default="", max_length=100)
    correo: str = Field(default="", max_length=1000)


class OrderCreate(BaseModel):
    package_id: int = Field(ge=1)
    contact: Contact


class BankOut(BaseModel):
    beneficiary: str
    bank: str
    clabe: str


class OrderOut(BaseModel):
    id: int
    vendor_id: int
    vendor_rfc: str
    vendor_razon_social: str
    package_id: int
    package_name: str
    package_stamps: int
    package_price_mxn: Decimal
    package_validity_days: int
    contact_empresa: str
    contact_nombre: str
    contact_telefono: str
    contact_correo: str
    payment_reference: str
    status: str
    status_label: str
    proof_sha256: str | None
    proof_content_type: str | None
    proof_received_at: datetime | None
    sla_due_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    rejection_reason: str | None
    review_round: int
    created_at: datetime


class OrderSummary(OrderOut):
    bank: BankOut
    amount_mxn: Decimal


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=service.MAX_REASON)


class PlanOut(BaseModel):
    id: int
    plan_name: str
    stamps_total: int
    stamps_available: int
    valid_from: datetime
    valid_until: datetime


class ApprovalOut(BaseModel):
    order: OrderOut
    plan: PlanOut


def order_out(view: service.OrderView) -> OrderOut:
    return OrderOut.model_validate(view, from_attributes=True)


def summary(view: service.OrderView, bank: service.BankData) -> OrderSummary:
    return OrderSummary(
        **order_out(view).model_dump(),
        bank=BankOut(beneficiary=bank.beneficiary, bank=bank.bank, clabe=bank.clabe),
        amount_mxn=view.package_price_mxn,
    )


# ------------------------------------------------------------------ packages
@endpoint(
    summary="Paquetes de timbrado disponibles",
    tags=["Paquetes"],
    auth=("staff", "vendor"),
    response=list[PackageOut],
    query=[QueryParam("all", "true para incluir inactivos (solo personal)")],
)
async def list_packages(request: web.Request) -> web.Response:
    include_all = request.query.get("all", "").lower() == "true" and principal_of(request).is_staff
    async with container_of(request).db.session() as session:
        views = await service.list_packages(session, active_only=not include_all)
    return json_response([PackageOut.model_validate(v, from_attributes=True) for v in views])


@endpoint(
    summary="Resumen de un paquete", tags=["Paquetes"], auth=("staff", "vendor"), response=PackageOut, errors=[404]
)
async def show_package(request: web.Request) -> web.Response:
    async with container_of(request).db.session() as session:
        view = await service.get_package(session, int_param(request, "package_id"))
    if not view.active and not principal_of(request).is_staff:
        raise NotFound("No se encontró el paquete.")
    return json_response(PackageOut.model_validate(view, from_attributes=True))


@endpoint(summary="Crear un paquete", tags=["Paquetes"], body=PackageCreate, response=PackageOut, status=201)
async def create_package(request: web.Request, body: PackageCreate) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.create_package(
            session,
            name=body.name,
            stamps=body.stamps,
            price_mxn=body.price_mxn,
            validity_days=body.validity_days,
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    return json_response(PackageOut.model_validate(view, from_attributes=True), 201)


@endpoint(
    summary="Modificar o desactivar un paquete",
    tags=["Paquetes"],
    body=PackageUpdate,
    response=PackageOut,
    errors=[404],
)
async def update_package(request: web.Request, body: PackageUpdate) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.update_package(
            session,
            int_param(request, "package_id"),
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
            **body.model_dump(exclude_none=True),
        )
    return json_response(PackageOut.model_validate(view, from_attributes=True))


@endpoint(
    summary="Datos bancarios para la transferencia", tags=["Paquetes"], auth=("staff", "vendor"), response=BankOut
)
async def bank_data(request: web.Request) -> web.Response:
    bank = orders_config(container_of(request)).bank
    return json_response(BankOut(beneficiary=bank.beneficiary, bank=bank.bank, clabe=bank.clabe))


# ------------------------------------------------------------------ vendors
@endpoint(
    summary="Registrar un proveedor (datos del Expediente digital)",
    tags=["Proveedores"],
    body=VendorCreate,
    response=VendorOut,
    status=201,
    errors=[404, 409],
)
async def create_vendor(request: web.Request, body: VendorCreate) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await vendors.register_vendor(
            session, actor=api_actor(principal_of(request)), now=container.clock.now(), **body.model_dump()
        )
    return json_response(VendorOut.model_validate(view, from_attributes=True), 201)


@endpoint(
    summary="Datos de un proveedor", tags=["Proveedores"], auth=("staff", "vendor"), response=VendorOut, errors=[404]
)
async def show_vendor(request: web.Request) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    async with container_of(request).db.session() as session:
        view = await vendors.get_vendor(session, vendor_id)
    return json_response(VendorOut.model_validate(view, from_attributes=True))


# ------------------------------------------------------------------ orders (vendor)
@endpoint(
    summary="Crear una orden: paquete y datos de contacto; responde con los datos bancarios y la referencia",
    tags=["Órdenes"],
    auth=("staff", "vendor"),
    body=OrderCreate,
    response=OrderSummary,
    status=201,
    errors=[404, 409],
)
async def create_order(request: web.Request, body: OrderCreate) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    container = container_of(request)
    cfg = orders_config(container)
    async with container.db.transaction() as session:
        view = await service.create_order(
            session,
            vendor_id=vendor_id,
            package_id=body.package_id,
            contact=body.contact.model_dump(),
            actor=api_actor(principal_of(request)),
            cfg=cfg,
            now=container.clock.now(),
        )
    return json_response(summary(view, cfg.bank), 201)


@endpoint(
    summary="Órdenes del proveedor", tags=["Órdenes"], auth=("staff", "vendor"), response=list[OrderOut], errors=[404]
)
async def vendor_orders(request: web.Request) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    async with container_of(request).db.session() as session:
        views = await service.list_orders(session, vendor_id=vendor_id)
    return json_response([order_out(v) for v in views])


@endpoint(
    summary="Estado y resumen de una orden (plan, contacto, datos bancarios)",
    tags=["Órdenes"],
    auth=("staff", "vendor"),
    response=OrderSummary,
    errors=[404],
)
async def vendor_order(request: web.Request) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    container = container_of(request)
    async with container.db.session() as session:
        view = await service.get_order(session, int_param(request, "order_id"), vendor_id=vendor_id)
    return json_response(summary(view, orders_config(container).bank))


async def _stream_upload(request: web.Request, max_bytes: int) -> tuple[StoredFile, str]:
    """Stream the proof to the content store: a raw body or the first file part of a multipart form."""
    store = file_store(container_of(request))
    declared = request.content_length
    name = request.headers.get("X-Filename", "")
    try:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and not (isinstance(part, BodyPartReader) and part.filename):
                part = await reader.next()
            if part is None or not isinstance(part, BodyPartReader):
                raise ApiError(400, "missing_file", "Adjunte el comprobante en un campo de archivo.")
            name = part.filename or name
            with store.open_upload(max_bytes=max_bytes) as upload:
                while chunk := await part.read_chunk(UPLOAD_CHUNK):
                    upload.write(chunk)
                stored = await upload.afinalize()
        else:
            with store.open_upload(max_bytes=max_bytes, declared_size=declared) as upload:
                await upload.write_from(request.content.iter_chunked(UPLOAD_CHUNK))
                stored = await upload.afinalize()
    except UploadError as exc:
        status = {"too_large": 413, "length_mismatch": 400, "empty_file": 400}.get(exc.code, 415)
        details = {"max_bytes": max_bytes, "max_mb": format_megabytes(max_bytes)} if exc.code == "too_large" else None
        raise ApiError(status, exc.code, exc.message, details) from None
    return stored, safe_display_name(name) if name else ""


@endpoint(
    summary="Subir el comprobante de pago (PDF, PNG o JPEG; máximo 10 MB)",
    tags=["Órdenes"],
    auth=("staff", "vendor"),
    response=OrderSummary,
    errors=[400, 404, 409, 413, 415],
    description="Envíe el archivo como cuerpo (Content-Type del archivo, X-Filename opcional) o como "
    "multipart/form-data. El tipo se decide por el contenido, no por el nombre.",
)
async def upload_proof(request: web.Request) -> web.Response:
    vendor_id = int_param(request, "vendor_id")
    order_id = int_param(request, "order_id")
    require_vendor_scope(principal_of(request), vendor_id)
    container = container_of(request)
    cfg = orders_config(container)
    async with container.db.session() as session:
        await service.check_order(session, order_id, vendor_id=vendor_id)  # 404 before reading the body
    stored, name = await _stream_upload(request, container.settings.proof_max_bytes)
    async with container.db.transaction() as session:
        view = await service.attach_proof(
            session,
            order_id,
            vendor_id=vendor_id,
            stored=stored,
            display_name=name,
            actor=api_actor(principal_of(request)),
            cfg=cfg,
            now=container.clock.now(),
        )
    return json_response(summary(view, cfg.bank))


# ------------------------------------------------------------------ orders (staff)
@endpoint(
    summary="Órdenes por estado (en revisión: ordenadas por vencimiento)",
    tags=["Órdenes"],
    response=list[OrderOut],
    query=[
        QueryParam("status", "awaiting_payment, in_review, approved o rejected"),
        QueryParam("limit", "1-500", {"type": "integer"}),
    ],
    errors=[400],
)
async def list_orders(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status and status not in {s.value for s in OrderStatus}:
        raise ApiError(400, "invalid_query", "status no válido.")
    async with container_of(request).db.session() as session:
        views = await service.list_orders(
            session,
            status=status,
            limit=query_int(request, "limit", 100, maximum=500),
            by_sla=status == OrderStatus.IN_REVIEW.value,
        )
    return json_response([order_out(v) for v in views])


@endpoint(
    summary="Aprobar el comprobante: asigna el plan de timbres",
    tags=["Órdenes"],
    response=ApprovalOut,
    errors=[404, 409],
)
async def approve(request: web.Request) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view, plan = await service.approve_order(
            session,
            int_param(request, "order_id"),
            actor=api_actor(principal_of(request)),
            cfg=orders_config(container),
            now=container.clock.now(),
        )
    return json_response(ApprovalOut(order=order_out(view), plan=PlanOut.model_validate(plan, from_attributes=True)))


@endpoint(
    summary="Rechazar el comprobante con un motivo",
    tags=["Órdenes"],
    body=RejectBody,
    response=OrderOut,
    errors=[404, 409],
)
async def reject(request: web.Request, body: RejectBody) -> web.Response:
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await service.reject_order(
            session,
            int_param(request, "order_id"),
            reason=body.reason,
            actor=api_actor(principal_of(request)),
            cfg=orders_config(container),
            now=container.clock.now(),
        )
    return json_response(order_out(view))


@endpoint(
    summary="Descargar el comprobante vigente",
    tags=["Órdenes"],
    response=None,
    errors=[404],
    content_type="application/octet-stream",
)
async def download_proof(request: web.Request) -> web.StreamResponse:
    container = container_of(request)
    async with container.db.session() as session:
        view = await service.get_order(session, int_param(request, "order_id"))
    if not view.proof_sha256:
        raise NotFound("La orden no tiene comprobante.")
    path = file_store(container).path_for(view.proof_sha256)
    ext = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(view.proof_content_type or "", "bin")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": view.proof_content_type or "application/octet-stream",
            "Content-Disposition": f'attachment; filename="comprobante-orden-{view.id}.{ext}"',
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/packages", list_packages)
    app.router.add_post("/api/v1/packages", create_package)
    app.router.add_get("/api/v1/packages/{package_id}", show_package)
    app.router.add_patch("/api/v1/packages/{package_id}", update_package)
    app.router.add_get("/api/v1/bank-data", bank_data)
    app.router.add_post("/api/v1/vendors", create_vendor)
    app.router.add_get("/api/v1/vendors/{vendor_id}", show_vendor)
    app.router.add_post("/api/v1/vendors/{vendor_id}/orders", create_order)
    app.router.add_get("/api/v1/vendors/{vendor_id}/orders", vendor_orders)
    app.router.add_get("/api/v1/vendors/{vendor_id}/orders/{order_id}", vendor_order)
    app.router.add_put("/api/v1/vendors/{vendor_id}/orders/{order_id}/proof", upload_proof)
    app.router.add_get("/api/v1/orders", list_orders)
    app.router.add_post("/api/v1/orders/{order_id}/approve", approve)
    app.router.add_post("/api/v1/orders/{order_id}/reject", reject)
    app.router.add_get("/api/v1/orders/{order_id}/proof", download_proof)
