"""The four contract steps: Manifiesto, Contrato (accept), Firma (e.firma), Revisión de documentos.

The e.firma and its password live only in memory for the signing request.  The signed contract is a
PAdES PDF with an evidence page; its signature is verified again on every download.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.contracts import documents as docs
from core.contracts.signing import async_sign_contract, verification_problem
from core.contracts.steps import ContractProgress, ContractStep, require_step
from core.errors import Conflict, Invalid, NotFound
from core.sat.credentials import CredentialUse
from core.sat.trust import SatTrust
from core.uploads.sniff import ContentType
from core.uploads.store import ContentStore
from core.vendors.models import Contract, Vendor
from core.vendors.onboarding import open_vendor_credential


@dataclass(frozen=True, slots=True)
class ContractState:
    manifest: dict[str, str] | None
    manifest_confirmed_at: datetime | None
    contract_version: str | None
    privacy_version: str | None
    accepted_at: datetime | None
    signed_at: datetime | None
    certificate_number: str | None
    signer_rfc: str | None
    digest_sha256: str | None
    next_step: str | None  # manifiesto | contrato | firma | None when signed


def _progress(row: Contract | None) -> ContractProgress:
    return ContractProgress(
        manifest_confirmed=row is not None and row.manifest_confirmed_at is not None,
        documents_accepted=row is not None and row.accepted_at is not None,
        signed=row is not None and row.signed_at is not None,
    )


def _state(row: Contract | None) -> ContractState:
    p = _progress(row)
    next_step = (
        None
        if p.signed
        else ("firma" if p.documents_accepted else ("contrato" if p.manifest_confirmed else "manifiesto"))
    )
    if row is None:
        return ContractState(None, None, None, None, None, None, None, None, None, next_step)
    return ContractState(
        row.manifest,
        row.manifest_confirmed_at,
        row.contract_version,
        row.privacy_version,
        row.accepted_at,
        row.signed_at,
        row.efirma_certificate_number,
        row.efirma_rfc,
        row.digest_sha256,
        next_step,
    )


async def _vendor(session: AsyncSession, vendor_id: int) -> Vendor:
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No se encontró el proveedor.")
    return vendor


async def _row(
    session: AsyncSession, vendor_id: int, *, create: bool = False, now: datetime | None = None, lock: bool = False
) -> Contract | None:
    stmt = select(Contract).where(Contract.vendor_id == vendor_id)
    if lock:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None and create:
        assert now is not None
        row = Contract(vendor_id=vendor_id, updated_at=now)
        session.add(row)
        await session.flush()
    return row


def manifest_of(vendor: Vendor) -> docs.Manifest:
    """Step 1 shows the Expediente digital's data (wrong data is fixed there, not here)."""
    return docs.Manifest.create(
        empresa=vendor.razon_social, rfc=vendor.rfc, direccion=vendor.direccion or "—", correo=vendor.correo
    )


async def state(session: AsyncSession, vendor_id: int) -> ContractState:
    await _vendor(session, vendor_id)
    return _state(await _row(session, vendor_id))


async def preview_manifest(session: AsyncSession, vendor_id: int) -> docs.Manifest:
    return manifest_of(await _vendor(session, vendor_id))


async def confirm_manifest(session: AsyncSession, vendor_id: int, *, actor: Actor, now: datetime) -> ContractState:
    vendor = await _vendor(session, vendor_id)
    manifest = manifest_of(vendor)
    row = await _row(session, vendor_id, create=True, now=now, lock=True)
    assert row is not None
    require_step(_progress(row), ContractStep.MANIFEST)
    row.manifest = manifest.as_dict()
    row.manifest_confirmed_at = now
    # Confirming again (the Expediente changed) restarts the later steps.
    row.accepted_at = row.contract_version = row.privacy_version = None
    row.updated_at = now
    await record(
        session,
        actor=actor,
        action="contract.manifest_confirmed",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        after=row.manifest,
    )
    return _state(row)


def _documents(row: Contract, provider: docs.ServiceProvider) -> tuple[docs.RenderedDocument, docs.RenderedDocument]:
    assert row.manifest is not None and row.manifest_confirmed_at is not None
    manifest = docs.Manifest.create(**row.manifest)
    issued = row.manifest_confirmed_at
    contract = docs.render_contract(
        manifest,
        provider,
        issued_at=issued,
        version=docs.contract_version(row.contract_version or docs.CURRENT_CONTRACT.id),
    )
    notice = docs.render_privacy_notice(
        manifest,
        provider,
        issued_at=issued,
        version=docs.contract_version(row.privacy_version or docs.CURRENT_PRIVACY_NOTICE.id),
    )
    return contract, notice


async def documents(
    session: AsyncSession, vendor_id: int, provider: docs.ServiceProvider
) -> tuple[docs.RenderedDocument, docs.RenderedDocument]:
    """Step 2: the contract and the privacy notice generated for this vendor (current versions)."""
    await _vendor(session, vendor_id)
    row = await _row(session, vendor_id)
    require_step(_progress(row), ContractStep.ACCEPTANCE)
    assert row is not None
    return _documents(row, provider)


async def accept_documents(
    session: AsyncSession, vendor_id: int, *, contract_version: str, privacy_version: str, actor: Actor, now: datetime
) -> ContractState:
    await _vendor(session, vendor_id)
    row = await _row(session, vendor_id, lock=True)
    require_step(_progress(row), ContractStep.ACCEPTANCE)
    assert row is not None
    if contract_version != docs.CURRENT_CONTRACT.id or privacy_version != docs.CURRENT_PRIVACY_NOTICE.id:
        raise Invalid(
            f"Acepte las versiones vigentes: {docs.CURRENT_CONTRACT.id} y {docs.CURRENT_PRIVACY_NOTICE.id}.",
            code="outdated_document_version",
            details={"contract_version": docs.CURRENT_CONTRACT.id, "privacy_version": docs.CURRENT_PRIVACY_NOTICE.id},
        )
    row.contract_version, row.privacy_version, row.accepted_at, row.updated_at = (
        contract_version,
        privacy_version,
        now,
        now,
    )
    await record(
        session,
        actor=actor,
        action="contract.documents_accepted",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        after={"contract": contract_version, "privacy": privacy_version},
    )
    return _state(row)


async def sign(
    session: AsyncSession,
    vendor_id: int,
    *,
    cer: bytes,
    key: bytes,
    password: str,
    provider: docs.ServiceProvider,
    trust: SatTrust,
    store: ContentStore,
    actor: Actor,
    now: datetime,
) -> ContractState:
    """Step 3: check the e.firma and sign the contract with it (the key never leaves memory)."""
    vendor = await _vendor(session, vendor_id)
    row = await _row(session, vendor_id, lock=True)
    require_step(_progress(row), ContractStep.SIGNATURE)
    assert row is not None
    credential = open_vendor_credential(vendor, cer, key, password, use=CredentialUse.FIEL, trust=trust, now=now)
    contract, notice = _documents(row, provider)
    signed = await async_sign_contract(contract.pdf, credential, signed_at=now, signer_name=vendor.razon_social)
    del credential
    allowed = frozenset({ContentType.PDF})
    signed_file = store.store_bytes(signed.pdf_signed, max_bytes=len(signed.pdf_signed) + 1, allowed=allowed)
    notice_file = store.store_bytes(notice.pdf, max_bytes=len(notice.pdf) + 1, allowed=allowed)
    row.efirma_certificate = signed.certificate_der
    row.efirma_certificate_number = signed.certificate_number
    row.efirma_rfc = signed.rfc
    row.signature = signed.signature
    row.digest_sha256 = signed.digest_sha256
    row.signed_at = now
    row.signed_pdf_sha256 = signed_file.sha256
    row.privacy_pdf_sha256 = notice_file.sha256
    row.updated_at = now
    await record(
        session,
        actor=actor,
        action="contract.signed",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        after={
            "certificate_number": signed.certificate_number,
            "digest_sha256": signed.digest_sha256,
            "contract_version": row.contract_version,
        },
    )
    return _state(row)


@dataclass(frozen=True, slots=True)
class Download:
    filename: str
    content: bytes


async def download(session: AsyncSession, vendor_id: int, which: str, *, store: ContentStore) -> Download:
    """Step 4: the signed contract (its signature verified now) or the privacy notice."""
    vendor = await _vendor(session, vendor_id)
    row = await _row(session, vendor_id)
    require_step(_progress(row), ContractStep.REVIEW)
    assert row is not None and row.signed_pdf_sha256 and row.privacy_pdf_sha256
    if which == "aviso":
        return Download(f"aviso-de-privacidad-{vendor.rfc}.pdf", store.path_for(row.privacy_pdf_sha256).read_bytes())
    if which != "contrato":
        raise NotFound("Documento desconocido: use contrato o aviso.")
    pdf = store.path_for(row.signed_pdf_sha256).read_bytes()
    assert row.signature is not None and row.efirma_certificate is not None
    problem = verification_problem(
        pdf, signature=row.signature, certificate_der=row.efirma_certificate, digest_sha256=row.digest_sha256
    )
    if problem is not None:
        raise Conflict(f"La firma del contrato almacenado no es válida: {problem}", code="signature_invalid")
    return Download(f"contrato-timbrado-{vendor.rfc}.pdf", pdf)
