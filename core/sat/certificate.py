"""SAT certificates (.cer): CSD (certificado de sello digital) and e.firma (FIEL).

A :class:`SatCertificate` is parsed once, from DER, PEM or bare base64 (the ``Certificado``
attribute of a CFDI), and keeps every fact the service needs:

- the RFC: first part of the subject's ``x500UniqueIdentifier`` ("RFC / RFC-del-representante"
  for personas morales), with Ñ and & kept;
- razón social (subject O, else CN), branch (OU), CURP (subject serialNumber);
- the certificate number (NoCertificado): the serial number read as 20 ASCII digits;
- validity window and issuer;
- its kind, CSD or FIEL, decided by key usage + extended key usage and cross-checked with the OU:

  ============  =============================================  =========  ==========
  kind          key usage                                      EKU        subject OU
  ============  =============================================  =========  ==========
  CSD           digitalSignature + nonRepudiation only         none       present
  FIEL          + dataEncipherment and/or keyAgreement         emailProtection / clientAuth  absent
  ============  =============================================  =========  ==========

  When key usage and OU disagree, or the certificate is a CA, the kind is ``UNKNOWN``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.sat.errors import CredentialError, CredentialErrorCode, RfcError
from core.sat.rfc import Rfc

MAX_CERTIFICATE_SIZE = 64 * 1024
_UNIQUE_ID = NameOID.X500_UNIQUE_IDENTIFIER
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")


class CertificateKind(StrEnum):
    CSD = "csd"
    FIEL = "fiel"
    UNKNOWN = "unknown"


def _invalid_certificate(detail: str = "") -> CredentialError:
    message = "El archivo no es un certificado válido del SAT (.cer en formato DER o PEM)."
    return CredentialError(CredentialErrorCode.INVALID_CERTIFICATE, message + (f" {detail}" if detail else ""))


def _invalid_subject(detail: str) -> CredentialError:
    return CredentialError(
        CredentialErrorCode.INVALID_CERTIFICATE_SUBJECT,
        f"El certificado no tiene los datos de un certificado del SAT: {detail}",
    )


def _attribute_text(value: str | bytes) -> str:
    if isinstance(value, bytes):  # x500UniqueIdentifier encoded as a BIT STRING
        return value.decode("utf-8", errors="replace")
    return value


def _single(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attributes = name.get_attributes_for_oid(oid)
    if not attributes:
        return None
    text = _attribute_text(attributes[0].value).strip()
    return text or None


def _split_pair(text: str | None) -> tuple[str | None, str | None]:
    """Split "A / B" into ("A", "B"); empty parts become None."""
    if text is None:
        return None, None
    first, _, second = text.partition("/")
    return first.strip() or None, second.strip() or None


def _read_rfcs(subject: x509.Name) -> tuple[Rfc, Rfc | None]:
    attributes = subject.get_attributes_for_oid(_UNIQUE_ID)
    if len(attributes) != 1:
        raise _invalid_subject("debe contener exactamente un RFC (x500UniqueIdentifier).")
    holder, representative = _split_pair(_attribute_text(attributes[0].value))
    if holder is None:
        raise _invalid_subject("no contiene el RFC del titular.")
    try:
        rfc = Rfc.parse(holder)
    except RfcError as exc:
        raise _invalid_subject(exc.message) from None
    try:
        rep = Rfc.parse(representative) if representative else None
    except RfcError:
        rep = None
    return rfc, rep


def _certificate_number(serial: int) -> str:
    raw = serial.to_bytes((serial.bit_length() + 7) // 8, "big") if serial > 0 else b""
    if len(raw) != 20 or not raw.isdigit():
        raise CredentialError(
            CredentialErrorCode.INVALID_CERTIFICATE_NUMBER,
            "El número de serie del certificado no es un número de certificado del SAT (20 dígitos).",
        )
    return raw.decode("ascii")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _classify(cert: x509.Certificate, has_ou: bool) -> CertificateKind:
    constraints = _extension(cert, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        return CertificateKind.UNKNOWN
    usage = _extension(cert, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not (usage.digital_signature and usage.content_commitment):
        return CertificateKind.UNKNOWN
    if usage.key_cert_sign or usage.crl_sign:
        return CertificateKind.UNKNOWN
    eku = _extension(cert, x509.ExtendedKeyUsage)
    purposes = set(eku) if isinstance(eku, x509.ExtendedKeyUsage) else set()
    encipher = usage.data_encipherment or usage.key_agreement or usage.key_encipherment
    fiel_purposes = {ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH}
    if not encipher and not purposes:
        by_usage = CertificateKind.CSD
    elif encipher and purposes & fiel_purposes:
        by_usage = CertificateKind.FIEL
    else:
        return CertificateKind.UNKNOWN
    ou_says = CertificateKind.CSD if has_ou else CertificateKind.FIEL
    return by_usage if by_usage is ou_says else CertificateKind.UNKNOWN


def _to_x509(data: bytes) -> x509.Certificate:
    if not data:
        raise CredentialError(CredentialErrorCode.EMPTY_FILE, "El archivo del certificado (.cer) está vacío.")
    if len(data) > MAX_CERTIFICATE_SIZE:
        raise CredentialError(
            CredentialErrorCode.FILE_TOO_LARGE,
            f"El archivo del certificado es demasiado grande (máximo {MAX_CERTIFICATE_SIZE // 1024} KB).",
        )
    try:
        stripped = data.lstrip()
        if stripped.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(stripped)
        if data[0] == 0x30:
            return x509.load_der_x509_certificate(data)
        if _BASE64.fullmatch(data):
            return x509.load_der_x509_certificate(base64.b64decode(b"".join(data.split()), validate=True))
    except Exception:  # untrusted bytes: every parsing failure (InvalidVersion, ...) is "invalid"
        raise _invalid_certificate() from None
    raise _invalid_certificate()


@dataclass(frozen=True, slots=True)
class SatCertificate:
    """A parsed SAT certificate. Build it with :meth:`load` or :meth:`from_x509`."""

    certificate_number: str
    rfc: Rfc
    rfc_representative: Rfc | None
    legal_name: str
    common_name: str | None
    branch_name: str | None
    curp: str | None
    curp_representative: str | None
    kind: CertificateKind
    valid_from: datetime
    valid_until: datetime
    issuer_name: str
    issuer_common_name: str | None
    issuer_organization: str | None
    x509_cert: x509.Certificate = field(repr=False, compare=False)
    der: bytes = field(repr=False)

    @classmethod
    def load(cls, data: bytes) -> SatCertificate:
        """Parse a certificate from DER, PEM or bare base64; size-limited."""
        return cls.from_x509(_to_x509(data))

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> SatCertificate:
        try:
            public_key = cert.public_key()
            subject = cert.subject
            issuer = cert.issuer
            serial = cert.serial_number
            valid_from = cert.not_valid_before_utc
            valid_until = cert.not_valid_after_utc
            der = cert.public_bytes(serialization.Encoding.DER)
        except Exception:  # untrusted certificate: any failure to read it means it is invalid
            raise _invalid_certificate() from None
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _invalid_certificate("Su llave pública no es RSA.")
        try:
            rfc, representative = _read_rfcs(subject)
            branch = _single(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
            curp, curp_rep = _split_pair(_single(subject, NameOID.SERIAL_NUMBER))
            common_name = _single(subject, NameOID.COMMON_NAME)
            legal_name = _single(subject, NameOID.ORGANIZATION_NAME) or common_name
            kind = _classify(cert, branch is not None)
            issuer_cn = _single(issuer, NameOID.COMMON_NAME)
            issuer_org = _single(issuer, NameOID.ORGANIZATION_NAME)
            issuer_text = issuer.rfc4514_string()
        except CredentialError:
            raise
        except Exception:  # malformed names or extensions in an untrusted certificate
            raise _invalid_subject("sus datos no se pueden leer.") from None
        if legal_name is None:
            raise _invalid_subject("no contiene el nombre o razón social del titular.")
        return cls(
            certificate_number=_certificate_number(serial),
            rfc=rfc,
            rfc_representative=representative,
            legal_name=legal_name,
            common_name=common_name,
            branch_name=branch,
            curp=curp,
            curp_representative=curp_rep,
            kind=kind,
            valid_from=valid_from,
            valid_until=valid_until,
            issuer_name=issuer_text,
            issuer_common_name=issuer_cn,
            issuer_organization=issuer_org,
            x509_cert=cert,
            der=der,
        )

    def is_csd(self) -> bool:
        return self.kind is CertificateKind.CSD

    def is_fiel(self) -> bool:
        return self.kind is CertificateKind.FIEL

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = self.x509_cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)  # checked in from_x509
        return key

    def is_valid_at(self, at: datetime) -> bool:
        return self.validity_problem(at) is None

    def validity_problem(self, at: datetime) -> CredentialError | None:
        """``certificate_expired`` / ``certificate_not_yet_valid`` at ``at`` (an aware datetime), or None."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise TypeError("'at' must be an aware datetime")
        if at < self.valid_from:
            return CredentialError(
                CredentialErrorCode.CERTIFICATE_NOT_YET_VALID,
                f"El certificado aún no es vigente: lo será a partir del {self.valid_from:%d/%m/%Y}.",
            )
        if at > self.valid_until:
            return CredentialError(
                CredentialErrorCode.CERTIFICATE_EXPIRED,
                f"El certificado está vencido: venció el {self.valid_until:%d/%m/%Y}.",
            )
        return None

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this certificate's RSA PKCS#1 v1.5 SHA-256 signature of ``data``."""
        try:
            self.public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def pem(self) -> str:
        return self.x509_cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def base64(self) -> str:
        """DER in base64, as in the CFDI ``Certificado`` attribute."""
        return base64.b64encode(self.der).decode("ascii")

    def fingerprint_sha256(self) -> str:
        return self.x509_cert.fingerprint(hashes.SHA256()).hex()
