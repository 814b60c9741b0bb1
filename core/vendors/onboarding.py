"""Vendor onboarding after purchase: CSD (encrypted at rest), Datos del CFDI, logo, readiness.

The contract steps live in :mod:`core.vendors.contract`.  Passwords are used once, to open the
private key, and dropped; the CSD key is stored only encrypted with the service's secret box
(AES-GCM, key id, associated data binding it to the vendor and certificate number).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.errors import FieldProblem, Invalid, NotFound
from core.notifications.outbox import EmailSpec, queue_email
from core.orders.contact import FieldError, ValidationErrors
from core.sat.credentials import Credential, CredentialUse, open_credential
from core.sat.errors import SatError
from core.sat.rfc import Rfc
from core.sat.trust import SatTrust
from core.secrets.box import SecretBox
from core.stamping.models import PaymentComplement
from core.stamps import service as stamps
from core.uploads.errors import UploadError
from core.uploads.logo import check_logo
from core.uploads.sniff import ContentType
from core.uploads.store import ContentStore
from core.vendors.cfdi_settings_rules import validate_cfdi_settings, validate_serie
from core.vendors.models import CfdiSettings, Contract, Csd, Vendor

CSD_EXPIRY_WARNING = timedelta(days=30)


class CredentialRefused(Invalid):
    code = "credential_refused"


def csd_aad(vendor_id: int, certificate_number: str) -> str:
    return f"csd:{vendor_id}:{certificate_number}"


@dataclass(frozen=True, slots=True)
class CsdView:
    id: int
    certificate_number: str
    rfc: str
    valid_from: datetime
    valid_until: datetime
    active: bool
    status: str  # activo | inactivo | vencido


def _csd_view(row: Csd, now: datetime) -> CsdView:
    status = "vencido" if row.valid_until <= now else ("activo" if row.active else "inactivo")
    return CsdView(row.id, row.certificate_number, row.rfc, row.valid_from, row.valid_until, row.active, status)


async def _vendor(session: AsyncSession, vendor_id: int) -> Vendor:
    vendor = await session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No se encontró el proveedor.")
    return vendor


def _refused(exc: SatError) -> CredentialRefused:
    return CredentialRefused(exc.message, code=str(exc.code))


def open_vendor_credential(
    vendor: Vendor, cer: bytes, key: bytes, password: str, *, use: CredentialUse, trust: SatTrust, now: datetime
) -> Credential:
    """Open and validate a credential offered by the vendor; errors name the problem in Spanish."""
    try:
        return open_credential(cer, key, password, expected_use=use, rfc=Rfc(vendor.rfc), at=now, trust=trust)
    except SatError as exc:
        raise _refused(exc) from None


# ---------------------------------------------------------------------------- CSD
async def add_csd(
    session: AsyncSession,
    vendor_id: int,
    *,
    cer: bytes,
    key: bytes,
    password: str,
    box: SecretBox,
    trust: SatTrust,
    actor: Actor,
    now: datetime,
    require_contract: bool = True,
) -> CsdView:
    """Validate and store a CSD; it becomes the active one."""
    vendor = await _vendor(session, vendor_id)
    if require_contract:
        contract = await session.scalar(select(Contract).where(Contract.vendor_id == vendor_id))
        if contract is None or contract.signed_at is None:
            raise Invalid(
                "Primero firma el contrato de servicio (paso 3: Firma) y después agrega tu CSD.",
                code="contract_not_signed",
            )
    credential = open_vendor_credential(vendor, cer, key, password, use=CredentialUse.CSD, trust=trust, now=now)
    cert = credential.certificate
    number = cert.certificate_number
    existing = await session.scalar(select(Csd).where(Csd.vendor_id == vendor_id, Csd.certificate_number == number))
    encrypted = box.encrypt(credential.private_key_der(), csd_aad(vendor_id, number))
    await session.execute(update(Csd).where(Csd.vendor_id == vendor_id).values(active=False))
    if existing is not None:
        row = existing
        row.encrypted_key, row.key_id, row.active = encrypted, box.active_key_id, True
    else:
        row = Csd(
            vendor_id=vendor_id,
            certificate_number=number,
            rfc=cert.rfc.value,
            certificate=cert.der,
            encrypted_key=encrypted,
            key_id=box.active_key_id,
            valid_from=cert.valid_from,
            valid_until=cert.valid_until,
            active=True,
            created_at=now,
        )
        session.add(row)
    await session.flush()
    await record(
        session,
        actor=actor,
        action="csd.added",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        after={"certificate_number": number, "valid_until": cert.valid_until.isoformat()},
    )
    return _csd_view(row, now)


async def list_csds(session: AsyncSession, vendor_id: int, now: datetime) -> list[CsdView]:
    await _vendor(session, vendor_id)
    rows = await session.scalars(select(Csd).where(Csd.vendor_id == vendor_id).order_by(Csd.id))
    return [_csd_view(r, now) for r in rows]


async def activate_csd(session: AsyncSession, vendor_id: int, csd_id: int, *, actor: Actor, now: datetime) -> CsdView:
    row = await session.get(Csd, csd_id)
    if row is None or row.vendor_id != vendor_id:
        raise NotFound("No se encontró el certificado.")
    if row.valid_until <= now:
        raise Invalid("El certificado está vencido; agrega uno vigente.", code="certificate_expired")
    await session.execute(update(Csd).where(Csd.vendor_id == vendor_id).values(active=False))
    row.active = True
    await record(
        session,
        actor=actor,
        action="csd.activated",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        after={"certificate_number": row.certificate_number},
    )
    return _csd_view(row, now)


async def active_csd_credential(
    session: AsyncSession, vendor_id: int, box: SecretBox, now: datetime
) -> Credential | None:
    """The vendor's active, valid CSD decrypted for signing (in memory only), or None."""
    row = await session.scalar(select(Csd).where(Csd.vendor_id == vendor_id, Csd.active.is_(True)))
    if row is None or not (row.valid_from <= now < row.valid_until):
        return None
    key_der = box.decrypt(row.encrypted_key, csd_aad(vendor_id, row.certificate_number))
    return Credential.from_stored(row.certificate, key_der)


async def rotate_secrets(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every stored CSD key with the active secret key.  Returns how many changed."""
    changed = 0
    for row in await session.scalars(select(Csd).with_for_update()):
        if box.needs_rotation(row.encrypted_key):
            row.encrypted_key = box.rotate(row.encrypted_key, csd_aad(row.vendor_id, row.certificate_number))
            row.key_id = box.active_key_id
            changed += 1
    return changed


async def csd_expiry_sweep(session: AsyncSession, *, mail_from: str, mail_domain: str, now: datetime) -> int:
    """E-mail vendors whose active CSD expires within 30 days (once per certificate)."""
    rows = await session.scalars(
        select(Csd)
        .where(
            Csd.active.is_(True),
            Csd.expiry_warned_at.is_(None),
            Csd.valid_until > now,
            Csd.valid_until <= now + CSD_EXPIRY_WARNING,
        )
        .with_for_update(skip_locked=True)
    )
    count = 0
    for row in rows:
        vendor = await session.get(Vendor, row.vendor_id)
        assert vendor is not None
        row.expiry_warned_at = now
        await queue_email(
            session,
            EmailSpec(
                template="csd_expiring",
                to=[vendor.correo],
                subject=f"Tu certificado de sello digital {row.certificate_number} vence pronto",
                context={
                    "razon_social": vendor.razon_social,
                    "certificate_number": row.certificate_number,
                    "valid_until": row.valid_until.strftime("%d/%m/%Y"),
                    "days": (row.valid_until - now).days,
                },
                key=f"csd:{row.id}:expiring",
                related_type="vendor",
                related_id=vendor.id,
            ),
            mail_from=mail_from,
            domain=mail_domain,
            now=now,
        )
        count += 1
    return count


# ---------------------------------------------------------------------------- Datos del CFDI
@dataclass(frozen=True, slots=True)
class CfdiSettingsView:
    lugar_expedicion: str
    time_zone: str
    serie: str
    next_folio: int
    has_logo: bool
    logo_sha256: str | None
    logo_content_type: str | None


def _settings_view(row: CfdiSettings) -> CfdiSettingsView:
    return CfdiSettingsView(
        row.lugar_expedicion,
        row.time_zone,
        row.serie,
        row.next_folio,
        row.logo_sha256 is not None,
        row.logo_sha256,
        row.logo_content_type,
    )


@dataclass(frozen=True, slots=True)
class _FolioFloor:
    """The lowest folio inicial a serie accepts once it has REPs, and the highest folio it has issued."""

    minimum: int
    highest_issued: int


async def _folio_floor(
    session: AsyncSession, vendor_id: int, serie: str | None, row: CfdiSettings | None
) -> _FolioFloor | None:
    """Where the folio of ``serie`` may restart, decided from the REPs themselves; None: no REP uses it.

    Folios are unique per vendor and serie, so the next folio must stay above the highest one issued
    in that serie; when the serie is the current one it also never moves below the current next
    folio (folios only move forward).  ``row`` is locked, so no REP takes a folio meanwhile.
    """
    if serie is None:
        return None
    highest = await session.scalar(
        select(func.max(PaymentComplement.folio)).where(
            PaymentComplement.vendor_id == vendor_id, PaymentComplement.serie == serie
        )
    )
    if highest is None:
        return None
    minimum = int(highest) + 1
    if row is not None and row.serie == serie:
        minimum = max(minimum, row.next_folio)
    return _FolioFloor(minimum, int(highest))


def _explain_folio(error: FieldError, serie: str | None, floor: _FolioFloor | None) -> FieldError:
    """Name the serie, the last folio issued and the lowest folio accepted in a backwards-folio error."""
    if error.code != "folio_backwards" or floor is None:
        return error
    return FieldError(
        error.field,
        error.code,
        f"El folio inicial debe ser {floor.minimum} o mayor: la serie «{serie}» ya tiene complementos de pago "
        f"emitidos hasta el folio {floor.highest_issued} y sus folios solo pueden avanzar.",
    )


def _field_problem(error: FieldError) -> dict[str, str]:
    return FieldProblem(error.field, error.code, error.message).as_dict()


async def set_cfdi_settings(
    session: AsyncSession,
    vendor_id: int,
    data: dict[str, object],
    *,
    actor: Actor,
    now: datetime,
) -> CfdiSettingsView:
    """Save Datos del CFDI.  Once a serie has REPs its folio stays above them and only moves forward.

    Whether REPs exist is read from the REPs of the vendor in the requested serie, never inferred
    from the settings row (a forward move followed by a backwards one must not slip through).
    """
    await _vendor(session, vendor_id)
    row = await session.get(CfdiSettings, vendor_id, with_for_update=True)
    try:
        serie: str | None = validate_serie(data.get("serie"))
    except ValidationErrors:
        serie = None  # reported below with every other field
    floor = await _folio_floor(session, vendor_id, serie, row)
    try:
        valid = validate_cfdi_settings(
            data,
            current_next_folio=floor.minimum if floor else None,
            reps_exist=floor is not None,
        )
    except ValidationErrors as exc:
        raise Invalid(
            "Revisa los Datos del CFDI.",
            code="invalid_cfdi_settings",
            details=[_field_problem(_explain_folio(e, serie, floor)) for e in exc.errors],
        ) from None
    before = None
    if row is None:
        row = CfdiSettings(
            vendor_id=vendor_id,
            lugar_expedicion=valid.lugar_expedicion,
            time_zone=valid.time_zone,
            serie=valid.serie,
            next_folio=valid.folio_inicial,
            folio_start=valid.folio_inicial,
            updated_at=now,
        )
        session.add(row)
    else:
        before = {"lugar_expedicion": row.lugar_expedicion, "serie": row.serie, "next_folio": row.next_folio}
        row.lugar_expedicion, row.time_zone, row.serie = valid.lugar_expedicion, valid.time_zone, valid.serie
        row.next_folio = row.folio_start = valid.folio_inicial
        row.updated_at = now
    await session.flush()
    await record(
        session,
        actor=actor,
        action="cfdi_settings.updated",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        before=before,
        after={"lugar_expedicion": row.lugar_expedicion, "serie": row.serie, "next_folio": row.next_folio},
    )
    return _settings_view(row)


async def get_cfdi_settings(session: AsyncSession, vendor_id: int) -> CfdiSettingsView | None:
    await _vendor(session, vendor_id)
    row = await session.get(CfdiSettings, vendor_id)
    return _settings_view(row) if row else None


async def set_logo(
    session: AsyncSession, vendor_id: int, data: bytes, *, store: ContentStore, actor: Actor, now: datetime
) -> CfdiSettingsView:
    row = await session.get(CfdiSettings, vendor_id, with_for_update=True)
    if row is None:
        await _vendor(session, vendor_id)
        raise Invalid(
            "Captura primero lugar de expedición, serie y folio; después sube tu logotipo.",
            code="cfdi_settings_missing",
        )
    try:
        info = check_logo(data)
        stored = store.store_bytes(
            data, max_bytes=len(data) + 1, allowed=frozenset({ContentType.PNG, ContentType.JPEG})
        )
    except UploadError as exc:
        raise Invalid(exc.message, code=exc.code) from None
    row.logo_sha256, row.logo_content_type, row.updated_at = stored.sha256, info.content_type.value, now
    await record(
        session,
        actor=actor,
        action="cfdi_settings.logo",
        subject_type="vendor",
        subject_id=vendor_id,
        at=now,
        after={"sha256": stored.sha256, "width": info.width, "height": info.height},
    )
    return _settings_view(row)


# ---------------------------------------------------------------------------- readiness
class Missing(enum.StrEnum):
    PLAN = "plan"
    CONTRACT = "contract"
    CSD = "csd"
    CFDI_SETTINGS = "cfdi_settings"


MISSING_MESSAGES = {
    Missing.PLAN: "Sin plan de timbrado vigente con saldo: compra un paquete.",
    Missing.CONTRACT: "Falta firmar el contrato de servicio con tu e.firma.",
    Missing.CSD: "Falta un certificado de sello digital (CSD) vigente.",
    Missing.CFDI_SETTINGS: "Faltan los Datos del CFDI (lugar de expedición, serie y folio).",
}


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    missing: tuple[Missing, ...]
    messages: tuple[str, ...]
    stamps_available: int


async def readiness(session: AsyncSession, vendor_id: int, now: datetime) -> Readiness:
    """Whether the vendor can stamp and, if not, what is missing, in the order of the steps."""
    await _vendor(session, vendor_id)
    missing: list[Missing] = []
    bal = await stamps.balance(session, vendor_id, now)
    if bal.available <= 0:
        missing.append(Missing.PLAN)
    contract = await session.scalar(select(Contract).where(Contract.vendor_id == vendor_id))
    if contract is None or contract.signed_at is None:
        missing.append(Missing.CONTRACT)
    csd = await session.scalar(select(Csd).where(Csd.vendor_id == vendor_id, Csd.active.is_(True)))
    if csd is None or not (csd.valid_from <= now < csd.valid_until):
        missing.append(Missing.CSD)
    if await session.get(CfdiSettings, vendor_id) is None:
        missing.append(Missing.CFDI_SETTINGS)
    return Readiness(not missing, tuple(missing), tuple(MISSING_MESSAGES[m] for m in missing), bal.available)
