"""The contract's four steps for a vendor: Manifiesto, Contrato, Firma, Revisión de documentos."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from admin.api import container_of, endpoint, int_param, json_response, principal_of
from admin.deps import api_actor, file_store, require_vendor_scope, service_provider
from admin.routes.onboarding import read_credential_form
from core.vendors import contract


class ContractStateOut(BaseModel):
    manifest: dict[str, str] | None
    manifest_confirmed_at: datetime | None
    contract_version: str | None
    privacy_version: str | None
    accepted_at: datetime | None
    signed_at: datetime | None
    certificate_number: str | None
    signer_rfc: str | None
    digest_sha256: str | None
    next_step: str | None = Field(description="manifiesto, contrato, firma, o null si ya está firmado")


class ManifestOut(BaseModel):
    empresa: str
    rfc: str
    direccion: str
    correo: str


class DocumentOut(BaseModel):
    version: str
    title: str
    text: str
    digest_sha256: str


class DocumentsOut(BaseModel):
    contrato: DocumentOut
    aviso: DocumentOut


class AcceptBody(BaseModel):
    contract_version: str = Field(max_length=40)
    privacy_version: str = Field(max_length=40)


def _vendor_id(request: web.Request) -> int:
    vendor_id = int_param(request, "vendor_id")
    require_vendor_scope(principal_of(request), vendor_id)
    return vendor_id


def state_out(s: contract.ContractState) -> ContractStateOut:
    return ContractStateOut.model_validate(s, from_attributes=True)


@endpoint(
    summary="Estado del contrato y siguiente paso",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    response=ContractStateOut,
    errors=[404],
)
async def get_state(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    async with container_of(request).db.session() as session:
        return json_response(state_out(await contract.state(session, vendor_id)))


@endpoint(
    summary="Paso 1: Manifiesto (datos del Expediente digital)",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    response=ManifestOut,
    errors=[404, 422],
)
async def get_manifest(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    async with container_of(request).db.session() as session:
        m = await contract.preview_manifest(session, vendor_id)
    return json_response(ManifestOut(**m.as_dict()))


@endpoint(
    summary="Paso 1: confirmar el Manifiesto",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    response=ContractStateOut,
    errors=[404, 409],
)
async def confirm_manifest(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.transaction() as session:
        s = await contract.confirm_manifest(
            session, vendor_id, actor=api_actor(principal_of(request)), now=container.clock.now()
        )
    return json_response(state_out(s))


@endpoint(
    summary="Paso 2: leer el Contrato y el Aviso de privacidad",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    response=DocumentsOut,
    errors=[404, 409],
)
async def get_documents(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.session() as session:
        c, n = await contract.documents(session, vendor_id, service_provider(container))
    return json_response(
        DocumentsOut(
            contrato=DocumentOut(
                version=c.version.id, title=c.version.title, text=c.text, digest_sha256=c.digest_sha256
            ),
            aviso=DocumentOut(version=n.version.id, title=n.version.title, text=n.text, digest_sha256=n.digest_sha256),
        )
    )


@endpoint(
    summary="Paso 2: aceptar Contrato y Aviso de privacidad",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    body=AcceptBody,
    response=ContractStateOut,
    errors=[404, 409],
)
async def accept(request: web.Request, body: AcceptBody) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.transaction() as session:
        s = await contract.accept_documents(
            session,
            vendor_id,
            contract_version=body.contract_version,
            privacy_version=body.privacy_version,
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    return json_response(state_out(s))


@endpoint(
    summary="Paso 3: firmar con la e.firma (multipart: cer, key, password)",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    response=ContractStateOut,
    errors=[404, 409, 413, 415, 422],
    description="La e.firma y su contraseña se usan en memoria durante esta solicitud y nunca se guardan.",
)
async def sign(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.session() as session:
        await contract.state(session, vendor_id)  # 404 before reading credentials
    cer, key, password = await read_credential_form(request)
    async with container.db.transaction() as session:
        s = await contract.sign(
            session,
            vendor_id,
            cer=cer,
            key=key,
            password=password,
            provider=service_provider(container),
            trust=container.sat_trust(),
            store=file_store(container),
            actor=api_actor(principal_of(request)),
            now=container.clock.now(),
        )
    del key, password
    return json_response(state_out(s))


@endpoint(
    summary="Paso 4: descargar el contrato firmado o el aviso de privacidad",
    tags=["Contrato"],
    auth=("staff", "vendor"),
    response=None,
    errors=[404, 409],
    content_type="application/pdf",
)
async def download(request: web.Request) -> web.Response:
    vendor_id = _vendor_id(request)
    container = container_of(request)
    async with container.db.session() as session:
        d = await contract.download(session, vendor_id, request.match_info["document"], store=file_store(container))
    return web.Response(
        body=d.content,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{d.filename}"'},
    )


def setup(app: web.Application) -> None:
    base = "/api/v1/vendors/{vendor_id}/contract"
    app.router.add_get(base, get_state)
    app.router.add_get(f"{base}/manifest", get_manifest)
    app.router.add_post(f"{base}/manifest/confirm", confirm_manifest)
    app.router.add_get(f"{base}/documents", get_documents)
    app.router.add_post(f"{base}/accept", accept)
    app.router.add_post(f"{base}/sign", sign)
    app.router.add_get(f"{base}/download/{{document}}", download)
