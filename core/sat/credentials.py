"""A SAT credential: a certificate plus its decrypted private key (CSD or e.firma).

Typical use, in a service handling an upload::

    credential = open_credential(
        cer_bytes, key_bytes, password,
        expected_use=CredentialUse.CSD, rfc=vendor_rfc, at=clock.now(), trust=trust,
    )

:func:`open_credential` raises the first problem as a :class:`~core.sat.errors.CredentialError`
(Spanish ``message``, stable ``code``). Certificate-only problems (not a CSD / not an e.firma,
not from SAT, vencido / aún no vigente, RFC distinto) are checked before the key is decrypted, so a
refused certificate costs no key derivation and the vendor hears about the wrong file first; then
the password (``wrong_password``) and the key/certificate pair (``key_mismatch``).

Secrets: a :class:`Credential` never shows its key in ``repr``/``str``; passwords are used once and
not kept; error messages never contain either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from core.sat.certificate import CertificateKind, SatCertificate
from core.sat.errors import CredentialError, CredentialErrorCode
from core.sat.private_key import load_private_key
from core.sat.rfc import Rfc
from core.sat.trust import SatTrust, issuer_problem


class CredentialUse(StrEnum):
    """What the service needs the credential for."""

    CSD = "csd"  # sealing CFDIs (REPs)
    FIEL = "fiel"  # signing the service contract (e.firma)


def _key_mismatch() -> CredentialError:
    return CredentialError(CredentialErrorCode.KEY_MISMATCH, "La llave privada no corresponde al certificado.")


def _same_key(certificate: SatCertificate, key: rsa.RSAPrivateKey) -> bool:
    return certificate.public_key.public_numbers() == key.public_key().public_numbers()


def kind_problem(certificate: SatCertificate, expected_use: CredentialUse) -> CredentialError | None:
    """A CSD offered as e.firma, an e.firma offered as CSD, or a certificate that is neither."""
    if expected_use is CredentialUse.CSD and certificate.kind is CertificateKind.FIEL:
        return CredentialError(
            CredentialErrorCode.FIEL_NOT_CSD,
            "El certificado es una e.firma (FIEL) y se requiere un certificado de sello digital (CSD).",
        )
    if expected_use is CredentialUse.FIEL and certificate.kind is CertificateKind.CSD:
        return CredentialError(
            CredentialErrorCode.CSD_NOT_FIEL,
            "El certificado es un certificado de sello digital (CSD) y se requiere una e.firma (FIEL).",
        )
    if certificate.kind is CertificateKind.UNKNOWN:
        wanted = "un CSD" if expected_use is CredentialUse.CSD else "una e.firma (FIEL)"
        return CredentialError(
            CredentialErrorCode.UNKNOWN_CERTIFICATE_TYPE,
            f"El certificado no es un CSD ni una e.firma del SAT; se requiere {wanted}.",
        )
    return None


def certificate_problem(
    certificate: SatCertificate,
    *,
    expected_use: CredentialUse,
    rfc: Rfc | None,
    at: datetime,
    trust: SatTrust,
) -> CredentialError | None:
    """The first problem with the certificate alone, in the order: kind, issuer, validity, RFC."""
    problem = kind_problem(certificate, expected_use)
    if problem is None:
        problem = issuer_problem(certificate, trust, at)
    if problem is None:
        problem = certificate.validity_problem(at)
    if problem is None and rfc is not None and certificate.rfc != rfc:
        problem = CredentialError(
            CredentialErrorCode.RFC_MISMATCH,
            f"El RFC del certificado ({certificate.rfc}) no coincide con el del proveedor ({rfc}).",
        )
    return problem


@dataclass(frozen=True, slots=True)
class Credential:
    """A certificate and the private key that belongs to it (checked on construction)."""

    certificate: SatCertificate
    private_key: rsa.RSAPrivateKey = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _same_key(self.certificate, self.private_key):
            raise _key_mismatch()

    @classmethod
    def load(cls, certificate: bytes, private_key: bytes, password: str | bytes) -> Credential:
        """Parse the .cer, decrypt the .key with ``password`` and check they belong together."""
        return cls(SatCertificate.load(certificate), load_private_key(private_key, password))

    @classmethod
    def from_stored(cls, certificate_der: bytes, private_key_der: bytes) -> Credential:
        """Rebuild from storage: the certificate and the *unencrypted* PKCS#8 DER from
        :meth:`private_key_der` (after the caller decrypted it from its at-rest encryption)."""
        try:
            key = serialization.load_der_private_key(private_key_der, password=None)
        except (ValueError, TypeError):
            raise CredentialError(
                CredentialErrorCode.INVALID_PRIVATE_KEY, "La llave privada almacenada no es válida."
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CredentialError(CredentialErrorCode.UNSUPPORTED_KEY_TYPE, "La llave privada almacenada no es RSA.")
        return cls(SatCertificate.load(certificate_der), key)

    def is_csd(self) -> bool:
        return self.certificate.is_csd()

    def is_fiel(self) -> bool:
        return self.certificate.is_fiel()

    @property
    def rfc(self) -> Rfc:
        return self.certificate.rfc

    @property
    def certificate_number(self) -> str:
        return self.certificate.certificate_number

    def sign(self, data: bytes) -> bytes:
        """RSA PKCS#1 v1.5 signature with SHA-256 (the CFDI 4.0 ``Sello``, before base64)."""
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def verify(self, data: bytes, signature: bytes) -> bool:
        return self.certificate.verify(data, signature)

    def private_key_der(self) -> bytes:
        """SECRET: the key as unencrypted PKCS#8 DER, only to encrypt it at rest (AES-GCM)."""
        return self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def validate_for(
        self,
        expected_use: CredentialUse,
        *,
        rfc: Rfc | None,
        at: datetime,
        trust: SatTrust,
    ) -> CredentialError | None:
        """The first problem using this credential for ``expected_use`` at ``at``, or None."""
        return certificate_problem(self.certificate, expected_use=expected_use, rfc=rfc, at=at, trust=trust)

    def __repr__(self) -> str:
        cert = self.certificate
        return (
            f"Credential(kind={cert.kind.value!r}, rfc={cert.rfc.value!r}, "
            f"certificate_number={cert.certificate_number!r}, private_key=<oculta>)"
        )

    __str__ = __repr__


def open_credential(
    certificate: bytes,
    private_key: bytes,
    password: str | bytes,
    *,
    expected_use: CredentialUse,
    rfc: Rfc | None,
    at: datetime,
    trust: SatTrust,
) -> Credential:
    """Load and validate a credential offered by a person; raise its first problem."""
    cert = SatCertificate.load(certificate)
    problem = certificate_problem(cert, expected_use=expected_use, rfc=rfc, at=at, trust=trust)
    if problem is not None:
        raise problem
    return Credential(cert, load_private_key(private_key, password))
