"""The built-in sandbox PAC: real validation and real signatures, no fiscal value.

It does what a PAC does before certifying a CFDI 4.0 and answers with the PAC codes of Anexo 20
(and SAT's CFDI40 codes where they exist):

=========  ==================================================================================
301        XML mal formado o que no cumple con el esquema (light XSD of ``core.cfdi.xsd``)
CFDI40102  the sello does not verify over the cadena original with the embedded certificate
CFDI40106  the certificate cannot be read or NoCertificado does not match it
303        the sello's certificate does not belong to the Emisor RFC
304        the certificate has expired (or is not yet valid) at stamping time
305        Fecha is outside the certificate's validity
306        the certificate is not a CSD (an e.firma, for example)
307        the document already carries a TimbreFiscalDigital that this PAC did not issue
308        the certificate was not issued by SAT (SAT's test CA accepted in sandbox mode)
401        Fecha more than 72 hours before, or after, the PAC's clock
=========  ==================================================================================

Then it adds a TimbreFiscalDigital 1.1 signed with its own certificate (``core.cfdi.tfd.stamp``,
UUID derived from the sealed document, so the same document always gets the same UUID) and
remembers the stamp in a :class:`~core.pac.sandbox_store.SandboxStore`.

Cancellation follows SAT's flow: ``requested`` (not used by the sandbox, which answers at once),
``pending_acceptance`` while the receiver decides (:meth:`SandboxPac.receiver_answer`, or 72 hours
without an answer count as acceptance), then ``cancelled`` or ``rejected``. Whether acceptance is
needed is an :class:`AcceptancePolicy`; SAT's rule (no acceptance for a total up to $1,000, for
tipo P/E/T/N, or within 24 hours of the stamp) makes every REP cancel without acceptance.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from core.cfdi.cadena import CFDI_NS, TFD_NS
from core.cfdi.catalogs import postal_code_time_zone
from core.cfdi.errors import SealError, UnsafeXml
from core.cfdi.parsing import parse_untrusted
from core.cfdi.signing import RsaSigner, Signer
from core.cfdi.tfd import document_uuid, stamp, verify_cfdi
from core.cfdi.xsd import validate_xsd
from core.clock import Clock
from core.pac.base import (
    CancelResult,
    CancelStatus,
    PacRejected,
    StampResult,
    check_cancel_request,
)
from core.pac.cancellation import (
    CancelRequest,
    build_signed_cancellation,
    read_cancellation,
    verify_signed_cancellation,
)
from core.pac.sandbox_store import CancellationRecord, MemorySandboxStore, SandboxStore, StampRecord
from core.sat.certificate import SatCertificate
from core.sat.credentials import Credential, CredentialUse, kind_problem
from core.sat.errors import CredentialErrorCode
from core.sat.trust import SatTrust, issuer_problem

SANDBOX_RFC_PROV_CERTIF = "SPR190613I52"  # the RFC SAT's own test PAC uses in its examples
_C = "{" + CFDI_NS + "}"
_T = "{" + TFD_NS + "}"
_WINDOW = timedelta(hours=72)
_FUTURE_TOLERANCE = timedelta(minutes=5)
_ANSWER_DEADLINE = timedelta(hours=72)
_NO_ACCEPTANCE_TYPES = frozenset({"P", "E", "T", "N"})


class AcceptancePolicy(StrEnum):
    SAT_RULES = "sat_rules"
    ALWAYS = "always"  # every cancellation waits for the receiver (tests of that flow)
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class SandboxIdentity:
    """The sandbox PAC's certificate and key, in PEM, for the service to persist in its data dir."""

    certificate_pem: bytes
    private_key_pem: bytes

    def __repr__(self) -> str:
        return "SandboxIdentity(private_key_pem=<oculta>)"

    def signer(self) -> RsaSigner:
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the sandbox PAC key must be RSA")
        return RsaSigner(key, x509.load_pem_x509_certificate(self.certificate_pem))

    @classmethod
    def generate(cls, *, now: datetime, years: int = 10, certificate_number: str | None = None) -> Self:
        """A new RSA-2048 key and a self-signed certificate whose serial reads as 20 digits."""
        number = certificate_number or "99001000000" + "".join(secrets.choice("0123456789") for _ in range(9))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "PAC SANDBOX TIMBRADO (SIN VALIDEZ FISCAL)"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TIMBRADO SANDBOX"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "MX"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(number.encode("ascii"), "big"))
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365 * years))
            .sign(key, hashes.SHA256())
        )
        return cls(
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
            private_key_pem=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


def _reject(code: str, message: str) -> PacRejected:
    return PacRejected(code, message)


def _emission_time(root: etree._Element) -> datetime:
    text = root.get("Fecha", "")
    try:
        naive = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _reject("301", "El atributo Fecha no tiene el formato AAAA-MM-DDThh:mm:ss.") from None
    zone = postal_code_time_zone(root.get("LugarExpedicion", "")) or "America/Mexico_City"
    return naive.replace(tzinfo=ZoneInfo(zone))


class SandboxPac:
    """A :class:`~core.pac.base.Pac` that validates and certifies locally."""

    name = "sandbox"

    def __init__(
        self,
        signer: Signer,
        *,
        clock: Clock,
        trust: SatTrust | None = None,
        latency: float = 0.0,
        rfc_prov_certif: str = SANDBOX_RFC_PROV_CERTIF,
        store: SandboxStore | None = None,
        acceptance: AcceptancePolicy = AcceptancePolicy.SAT_RULES,
        xsd: bool = True,
    ) -> None:
        self._signer = signer
        self._clock = clock
        self._trust = trust if trust is not None else SatTrust(sandbox=True)
        self._latency = latency
        self._rfc = rfc_prov_certif
        self._store: SandboxStore = store if store is not None else MemorySandboxStore()
        self._acceptance = acceptance
        self._xsd = xsd
        self._lock = asyncio.Lock()

    @classmethod
    def from_identity(cls, identity: SandboxIdentity, **kwargs: object) -> SandboxPac:
        return cls(identity.signer(), **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"SandboxPac(no_certificado_sat={self._signer.certificate_number!r}, latency={self._latency!r})"

    @property
    def certificate_der(self) -> bytes:
        """The certificate that verifies SelloSAT (to check stamps independently)."""
        return self._signer.certificate_der

    async def _network(self) -> None:
        if self._latency > 0:
            await asyncio.sleep(self._latency)

    # --- stamping ---------------------------------------------------------------------------------

    def _result(self, record: StampRecord, *, recovered: bool) -> StampResult:
        return StampResult(
            uuid=record.uuid,
            xml=record.xml,
            fecha_timbrado=record.fecha_timbrado,
            no_certificado_sat=record.no_certificado_sat,
            rfc_prov_certif=record.rfc_prov_certif,
            pac_name=self.name,
            recovered=recovered,
        )

    async def stamp(self, xml: bytes, *, idempotency_key: str) -> StampResult:
        await self._network()
        async with self._lock:
            if idempotency_key:
                known = await self._store.get_by_key(idempotency_key)
                if known is not None:
                    return self._result(known, recovered=True)
            try:
                root = parse_untrusted(bytes(xml))
            except UnsafeXml as exc:
                raise _reject("301", f"XML mal formado: {exc.message}") from None
            previous = root.find(f"{_C}Complemento/{_T}TimbreFiscalDigital")
            if previous is not None:
                known = await self._store.get(previous.get("UUID", ""))
                if known is not None:
                    return self._result(known, recovered=True)
                raise _reject("307", "El CFDI contiene un timbre previo.")
            record = await self._certify(root)
            known = await self._store.get(record.uuid)
            if known is not None:
                await self._store.put(known, idempotency_key)
                return self._result(known, recovered=True)
            await self._store.put(record, idempotency_key)
            return self._result(record, recovered=False)

    async def _certify(self, root: etree._Element) -> StampRecord:
        if root.tag != _C + "Comprobante" or root.get("Version") != "4.0":
            raise _reject("301", "El documento no es un CFDI versión 4.0.")
        if self._xsd:
            errors = validate_xsd(root)
            if errors:
                raise _reject("301", f"El XML no cumple con el esquema del SAT (línea {errors[0].line}).")
        try:
            verified = verify_cfdi(root)
        except SealError as exc:
            code = "301" if exc.code == "no_es_cfdi40" else exc.code
            raise _reject(code, exc.message) from None
        now = self._clock.now()
        self._check_certificate(verified.certificate, root, now)
        emitted = _emission_time(root)
        if emitted < now - _WINDOW or emitted > now + _FUTURE_TOLERANCE:
            raise _reject(
                "401",
                "Fecha y hora de generación fuera de rango: debe estar dentro de las 72 horas previas al timbrado.",
            )
        # The UUID is deterministic: an earlier stamp of the same document wins (checked by caller).
        uuid = document_uuid(verified.cadena_original, root.get("Sello", ""))
        known = await self._store.get(uuid)
        if known is not None:
            return known
        stamped = stamp(verified, self._signer, rfc_prov_certif=self._rfc, stamped_at=now)
        emisor = root.find(_C + "Emisor")
        receptor = root.find(_C + "Receptor")
        return StampRecord(
            uuid=stamped.uuid,
            xml=stamped.xml,
            fecha_timbrado=stamped.fecha_timbrado,
            no_certificado_sat=stamped.no_certificado_sat,
            rfc_prov_certif=stamped.rfc_prov_certif,
            rfc_emisor="" if emisor is None else emisor.get("Rfc", ""),
            rfc_receptor="" if receptor is None else receptor.get("Rfc", ""),
            total=root.get("Total", "0"),
            tipo=root.get("TipoDeComprobante", ""),
            stamped_at=now,
        )

    def _check_certificate(self, certificate: x509.Certificate, root: etree._Element, now: datetime) -> None:
        try:
            sat_cert = SatCertificate.from_x509(certificate)
        except ValueError:
            raise _reject("CFDI40106", "El certificado del CFDI no es un certificado del SAT.") from None
        if kind_problem(sat_cert, CredentialUse.CSD) is not None:
            raise _reject("306", "El certificado no es de tipo CSD (certificado de sello digital).")
        if issuer_problem(sat_cert, self._trust, now) is not None:
            raise _reject("308", "Certificado no expedido por el SAT.")
        emisor = root.find(_C + "Emisor")
        if emisor is None or emisor.get("Rfc", "") != sat_cert.rfc.value:
            raise _reject("303", "Sello no corresponde a emisor: el RFC del certificado no es el del emisor.")
        if not sat_cert.is_valid_at(now):
            raise _reject("304", "Certificado revocado o caduco.")
        if not sat_cert.is_valid_at(_emission_time(root)):
            raise _reject("305", "La fecha de emisión no está dentro de la vigencia del CSD del emisor.")

    async def recover(self, xml_or_uuid: bytes | str) -> StampResult | None:
        await self._network()
        if isinstance(xml_or_uuid, str):
            record = await self._store.get(xml_or_uuid)
            return None if record is None else self._result(record, recovered=True)
        try:
            verified = verify_cfdi(bytes(xml_or_uuid))
        except (SealError, UnsafeXml):
            return None
        record = await self._store.get(document_uuid(verified.cadena_original, verified.root.get("Sello", "")))
        return None if record is None else self._result(record, recovered=True)

    # --- cancellation -----------------------------------------------------------------------------

    def _needs_acceptance(self, record: StampRecord, now: datetime) -> bool:
        if self._acceptance is AcceptancePolicy.ALWAYS:
            return True
        if self._acceptance is AcceptancePolicy.NEVER:
            return False
        if record.tipo in _NO_ACCEPTANCE_TYPES:
            return False
        total = Decimal(record.total) if record.total else Decimal(0)
        return total > 1000 and now - record.stamped_at > timedelta(hours=24)

    async def cancel(
        self,
        uuid: str,
        rfc_emisor: str,
        motivo: str,
        folio_sustitucion: str | None,
        *,
        credential: Credential,
    ) -> CancelResult:
        check_cancel_request(uuid, motivo, folio_sustitucion)
        signed = build_signed_cancellation(
            CancelRequest(uuid, rfc_emisor, motivo, folio_sustitucion, self._clock.now()), credential
        )
        return await self.receive_cancellation(signed)

    async def receive_cancellation(self, signed_xml: bytes) -> CancelResult:
        """What SAT does with a signed ``Cancelacion`` (also used by the fake Finkok and SW servers)."""
        await self._network()
        try:
            valid = verify_signed_cancellation(signed_xml)
        except UnsafeXml:
            valid = False
        if not valid:
            raise _reject("cancelacion_firma_invalida", "La firma de la solicitud de cancelación no es válida.")
        rfc_emisor, uuid, motivo, folio_sustitucion, certificate_b64 = read_cancellation(signed_xml)
        check_cancel_request(uuid, motivo, folio_sustitucion)
        now = self._clock.now()
        record = await self._store.get(uuid)
        if record is None:
            raise _reject("205", "UUID no encontrado: este PAC no timbró el comprobante.")
        if record.rfc_emisor != rfc_emisor:
            raise _reject("203", "El UUID no corresponde al RFC del emisor.")
        self._check_cancel_certificate(certificate_b64, rfc_emisor, now)
        if folio_sustitucion is not None:
            substitute = await self._store.get(folio_sustitucion)
            if substitute is None or substitute.rfc_emisor != rfc_emisor:
                raise _reject(
                    "folio_sustitucion_no_encontrado",
                    "El folio de sustitución no corresponde a un comprobante timbrado del mismo emisor.",
                )
        existing = await self._store.get_cancellation(uuid)
        if existing is not None and existing.status is not CancelStatus.REJECTED:
            refreshed = await self._refresh(existing, now)
            return self._cancel_result(refreshed, raw="202", message="El comprobante ya tenía una solicitud.")
        status = CancelStatus.PENDING_ACCEPTANCE if self._needs_acceptance(record, now) else CancelStatus.CANCELLED
        cancellation = CancellationRecord(
            uuid=record.uuid,
            status=status,
            motivo=motivo,
            folio_sustitucion=folio_sustitucion,
            requested_at=now,
            acuse=self._acuse(record.uuid, rfc_emisor, now, "201"),
        )
        await self._store.put_cancellation(cancellation)
        return self._cancel_result(cancellation, raw="201", message="Solicitud de cancelación recibida.")

    def _check_cancel_certificate(self, certificate_b64: str, rfc_emisor: str, now: datetime) -> None:
        try:
            certificate = SatCertificate.load(certificate_b64.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise _reject(
                "cancelacion_certificado", "El certificado de la solicitud de cancelación no es válido."
            ) from None
        if certificate.rfc.value != rfc_emisor:
            raise _reject("203", "El certificado no corresponde al RFC del emisor.")
        problem = issuer_problem(certificate, self._trust, now) or certificate.validity_problem(now)
        if problem is None and kind_problem(certificate, CredentialUse.CSD) is not None:
            problem = kind_problem(certificate, CredentialUse.FIEL)  # SAT accepts a CSD or an e.firma
        if problem is not None:
            code = "304" if problem.code in (CredentialErrorCode.CERTIFICATE_EXPIRED,) else "cancelacion_certificado"
            raise _reject(code, f"No se puede firmar la cancelación: {problem.message}")

    async def _refresh(self, record: CancellationRecord, now: datetime) -> CancellationRecord:
        if record.status is CancelStatus.PENDING_ACCEPTANCE and now - record.requested_at >= _ANSWER_DEADLINE:
            record = record.with_status(CancelStatus.CANCELLED)  # plazo vencido: aceptación ficta
            await self._store.put_cancellation(record)
        return record

    async def cancel_status(self, uuid: str, *, rfc_emisor: str, rfc_receptor: str, total: str) -> CancelResult:
        await self._network()
        record = await self._store.get_cancellation(uuid)
        if record is None:
            raise _reject("cancelacion_no_encontrada", "No hay una solicitud de cancelación para ese UUID.")
        record = await self._refresh(record, self._clock.now())
        return self._cancel_result(record, raw=record.status.value)

    async def receiver_answer(self, uuid: str, *, accept: bool) -> CancelResult:
        """The receiver accepts or rejects a pending cancellation (sandbox only)."""
        record = await self._store.get_cancellation(uuid)
        if record is None or record.status is not CancelStatus.PENDING_ACCEPTANCE:
            raise _reject(
                "cancelacion_sin_pendiente", "El comprobante no tiene una cancelación pendiente de aceptación."
            )
        record = record.with_status(CancelStatus.CANCELLED if accept else CancelStatus.REJECTED)
        await self._store.put_cancellation(record)
        return self._cancel_result(record, raw="aceptacion" if accept else "rechazo")

    def _cancel_result(self, record: CancellationRecord, *, raw: str, message: str = "") -> CancelResult:
        return CancelResult(status=record.status, uuid=record.uuid, acuse=record.acuse, raw=raw, message=message)

    def _acuse(self, uuid: str, rfc_emisor: str, now: datetime, code: str) -> bytes:
        ns = "{http://cancelacfd.sat.gob.mx}"
        root = etree.Element(ns + "Acuse", nsmap={None: ns[1:-1]})
        root.set("Fecha", now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        root.set("RfcEmisor", rfc_emisor)
        folios = etree.SubElement(root, ns + "Folios")
        etree.SubElement(folios, ns + "UUID").text = uuid
        etree.SubElement(folios, ns + "EstatusUUID").text = code
        data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        return data
