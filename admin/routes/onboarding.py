"""Vendor onboarding: contract (four steps), CSD, Datos del CFDI, logo and readiness.

Credential files arrive as ``multipart/form-data`` (fields ``cer``, ``key``, ``password``).  The
password and the key are used in memory for the request only: never logged, stored or returned.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, Field

from admin.api import container_of, endpoint, int_param, json_response, principal_of
from admin.deps import api_actor, file_store, require_vendor_scope
from admin.errors import ApiError
from core.vendors import onboarding

MAX_CREDENTIAL_PART = 256 * 1024
MAX_LOGO_BYTES = 512 * 1024


class CsdOut(BaseModel):
    id: int
    certificate_number: str
    rfc: str
    valid_from: datetime
    valid_until: datetime
    active: bool
    status: str = Field(description="activo, inactivo o vencido")


class CfdiSettingsIn(BaseModel):
    lugar_expedicion: str | int | None = Field(default=None, description="Código postal (c_CodigoPostal)")
    serie: str | None = Field(default=None, description="Serie REP, 1 a 25 caracteres sin |")
    folio_inicial: str | int | None = Field(default=None, description="Folio inicial REP (entero positivo)")


class CfdiSettingsOut(BaseModel):
    lugar_expedicion: str
    time_zone: str
    serie: str
    next_folio: int
    has_logo: bool


class ReadinessOut(BaseModel):
    ready: bool
    missing: list[str] = Field(description="plan, contract, csd, cfdi_settings (en el orden de los pasos)")
    messages: list[str]
    stamps_available: int


async def read_credential_form(request: web.Request) -> tuple[bytes, bytes, str]:
    """Read ``cer``, ``key`` and ``password`` from a multipart form, each bounded in size."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "Envíe .cer, .key y contraseña como multipart/form-data.")
    fields: dict[str, bytes] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name not in ("cer", "key", "password"):
            raise ApiError(400, "unexpected_field", "Solo se aceptan los campos cer, key y password.")
        data = bytearray()
        while chunk := await part.read_chunk(16384):
            data.extend(chunk)
            if len(data) > MAX_CREDENTIAL_PART:
                raise ApiError(413, "file_too_large", f"El campo {part.name} excede {MAX_CREDENTIAL_PART // 1024} KB.")
        fields[part.name] = bytes(data)
    missing = [f for f in ("cer", "key", "password") if not fields.get(f)]
    if missing:
        labels = {"cer": "el certificado (.cer)", "key": "la llave privada (.key)", "password": "la contraseña"}
        raise ApiError(
            422, "missing_fields", "Falta " + ", ".join(labels[m] for m in missing) + ".", {"missing": missing}
        )
    try:
        password = fields["password"].decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid_password_encoding", "La contraseña debe enviarse como texto UTF-8.") from None
    return fields["cer"], fields["key"], password


def _vendor_id(request: web.Request) -> int:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    return vendor_id


@endpoint(
    summary="Agregar un certificado de sello digital (CSD)",
    tags=["Onboarding"],
    auth=("staff", "vendor"),
    response=CsdOut,
    status=201,
    errors=[404, 413, 415, 422],
    description="multipart/form-data con cer, key y password. Se valida que sea un CSD (no e.firma), vigente, "
    "emitido por el SAT, del RFC del proveedor, y que la llave corresponda y la contraseña la abra.",
)
async def add_csd(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    cer, key, password = await read_credential_form(request)
    async with container.db.transaction() as session:
        view = await onboarding.add_csd(
            session,
            vendor_id,
            cer=cer,
            key=key,
            password=password,
            box=container.secret_box(),
            trust=container.sat_trust(),
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    del password, key
    return json_response(CsdOut.model_validate(view, from_attributes=True), 201)


@endpoint(
    summary="Certificados del proveedor (sin llaves)",
    tags=["Onboarding"],
    auth=("staff", "vendor"),
    response=list[CsdOut],
    errors=[404],
)
async def list_csds(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.session() as session:
        views = await onboarding.list_csds(session, vendor_id, container.clock.now())
    return json_response([CsdOut.model_validate(v, from_attributes=True) for v in views])


@endpoint(
    summary="Activar un certificado", tags=["Onboarding"], auth=("staff", "vendor"), response=CsdOut, errors=[404, 422]
)
async def activate_csd(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await onboarding.activate_csd(
            session,
            vendor_id,
            int_param(request, "csd_id"),
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    return json_response(CsdOut.model_validate(view, from_attributes=True))


@endpoint(
    summary="Guardar Datos del CFDI (lugar de expedición, serie, folio inicial)",
    tags=["Onboarding"],
    auth=("staff", "vendor"),
    body=CfdiSettingsIn,
    response=CfdiSettingsOut,
    errors=[404],
)
async def put_cfdi_settings(request: web.Request, body: CfdiSettingsIn) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.transaction() as session:
        view = await onboarding.set_cfdi_settings(
            session, vendor_id, body.model_dump(), actor=api_actor(principal_of(request)), now=container.clock.now()
        )
    return json_response(CfdiSettingsOut.model_validate(view, from_attributes=True))


@endpoint(
    summary="Datos del CFDI", tags=["Onboarding"], auth=("staff", "vendor"), response=CfdiSettingsOut, errors=[404]
)
async def get_cfdi_settings(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    async with container_of(request).db.session() as session:
        view = await onboarding.get_cfdi_settings(session, vendor_id)
    if view is None:
        raise ApiError(404, "not_found", "Aún no hay Datos del CFDI.")
    return json_response(CfdiSettingsOut.model_validate(view, from_attributes=True))


@endpoint(
    summary="Subir el logotipo (PNG o JPEG, máximo 512 KB y 2000×2000 px)",
    tags=["Onboarding"],
    auth=("staff", "vendor"),
    response=CfdiSettingsOut,
    errors=[404, 413, 422],
)
async def put_logo(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    data = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        data.extend(chunk)
        if len(data) > MAX_LOGO_BYTES:
            raise ApiError(413, "logo_too_large", "El logotipo excede el máximo de 512 KB.")
    async with container.db.transaction() as session:
        view = await onboarding.set_logo(
            session,
            vendor_id,
            bytes(data),
            store=file_store(container),
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    return json_response(CfdiSettingsOut.model_validate(view, from_attributes=True))


@endpoint(
    summary="Descargar el logotipo",
    tags=["Onboarding"],
    auth=("staff", "vendor"),
    response=None,
    errors=[404],
    content_type="image/png",
)
async def get_logo(request: web.Request) -> web.StreamResponse:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.session() as session:
        view = await onboarding.get_cfdi_settings(session, vendor_id)
    if view is None or view.logo_sha256 is None:
        raise ApiError(404, "not_found", "No hay logotipo.")
    return web.FileResponse(
        file_store(container).path_for(view.logo_sha256),
        headers={"Content-Type": view.logo_content_type or "application/octet-stream"},
    )


@endpoint(
    summary="¿Puede timbrar? Qué falta, en el orden de los pasos",
    tags=["Onboarding"],
    auth=("staff", "vendor"),
    response=ReadinessOut,
    errors=[404],
)
async def readiness(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.session() as session:
        r = await onboarding.readiness(session, vendor_id, container.clock.now())
    return json_response(
        ReadinessOut(
            ready=r.ready,
            missing=[m.value for m in r.missing],
            messages=list(r.messages),
            stamps_available=r.stamps_available,
        )
    )


def setup(app: web.Application) -> None:
    base = "/api/v1/vendors/{vendor_id}"
    app.router.add_post(f"{base}/csds", add_csd)
    app.router.add_get(f"{base}/csds", list_csds)
    app.router.add_post(f"{base}/csds/{{csd_id}}/activate", activate_csd)
    app.router.add_put(f"{base}/cfdi-settings", put_cfdi_settings)
    app.router.add_get(f"{base}/cfdi-settings", get_cfdi_settings)
    app.router.add_put(f"{base}/cfdi-settings/logo", put_logo)
    app.router.add_get(f"{base}/cfdi-settings/logo", get_logo)
    app.router.add_get(f"{base}/readiness", readiness)
