"""Is a certificate issued by SAT? Trust anchors and the issuer check.

Limitation, written down on purpose: no package on PyPI that this project can use ships SAT's CA
certificates (satcfdi 26 ships none; SAT publishes them only as downloads from its portal), so none
are bundled. The check therefore works in two layers:

1. **Signature chain**, when CA certificates are configured (``production_cas`` always,
   ``sandbox_cas`` only in sandbox mode): a configured CA whose subject equals the certificate's
   issuer must have signed it (RSA/ECDSA signature verified with ``cryptography``) and must itself
   be valid at the time of use. If a configured CA has that subject but the signature does not
   verify, the certificate is refused: there is no fallback to names.
2. **Issuer name** (``trust_sat_names``, on by default): when no configured CA has the issuer's
   subject, an issuer whose organization is "SERVICIO DE ADMINISTRACION TRIBUTARIA" and whose common
   name is SAT's production CA ("AC DEL SERVICIO DE ADMINISTRACION TRIBUTARIA", accents, dots and
   case ignored) is accepted; SAT's test CA ("AC UAT", or a name with "PRUEBAS") only in sandbox
   mode. A name is not a signature: anybody can mint a certificate with that issuer name. A
   deployment that has SAT's CA certificates should configure them as ``production_cas`` and turn
   ``trust_sat_names`` off.

Only the direct issuer is checked (SAT issues CSDs and e.firmas directly from its ACs, which are
configured as trust anchors); revocation (OCSP) is not checked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import NameOID

from core.sat.certificate import SatCertificate
from core.sat.errors import CredentialError, CredentialErrorCode

SAT_ORGANIZATION = "SERVICIO DE ADMINISTRACION TRIBUTARIA"
_PRODUCTION_CN = re.compile(r"A ?C( ?\d+)? DEL SERVICIO DE ADMINISTRACION TRIBUTARIA")
_MAX_CA_FILE = 1024 * 1024


class IssuerKind(StrEnum):
    SAT_PRODUCTION = "sat_production"
    SAT_TEST = "sat_test"
    OTHER = "other"


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.upper().replace(".", " ").split()).replace("A C ", "AC ", 1)


def _name_part(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attributes = name.get_attributes_for_oid(oid)
    value = attributes[0].value if attributes else ""
    return _normalise(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)


def classify_issuer_name(name: x509.Name) -> IssuerKind:
    """What an issuer name claims to be (names only; see the module docstring)."""
    if _name_part(name, NameOID.ORGANIZATION_NAME) != SAT_ORGANIZATION:
        return IssuerKind.OTHER
    common_name = _name_part(name, NameOID.COMMON_NAME)
    words = common_name.split()
    if "UAT" in words or any(word.startswith("PRUEBA") for word in words):
        return IssuerKind.SAT_TEST
    if _PRODUCTION_CN.fullmatch(common_name):
        return IssuerKind.SAT_PRODUCTION
    return IssuerKind.OTHER


@dataclass(frozen=True, slots=True)
class SatTrust:
    """Which issuers the service trusts. Build one from settings in the composition root."""

    sandbox: bool = False
    production_cas: tuple[x509.Certificate, ...] = ()
    sandbox_cas: tuple[x509.Certificate, ...] = ()
    trust_sat_names: bool = True

    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self.production_cas + self.sandbox_cas if self.sandbox else self.production_cas


def _signed_by(cert: x509.Certificate, ca: x509.Certificate, at: datetime) -> bool:
    if not ca.not_valid_before_utc <= at <= ca.not_valid_after_utc:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _untrusted(detail: str = "") -> CredentialError:
    message = "El certificado no fue emitido por el SAT."
    return CredentialError(CredentialErrorCode.UNTRUSTED_ISSUER, message + (f" {detail}" if detail else ""))


def issuer_problem(certificate: SatCertificate, trust: SatTrust, at: datetime) -> CredentialError | None:
    """``untrusted_issuer`` when the certificate is not from a trusted SAT CA, else None."""
    cert = certificate.x509_cert
    matching = [ca for ca in trust.anchors() if ca.subject == cert.issuer]
    if any(_signed_by(cert, ca, at) for ca in matching):
        return None
    if matching:
        return _untrusted("Su firma no corresponde a la autoridad certificadora que dice haberlo emitido.")
    kind = classify_issuer_name(cert.issuer)
    if kind is IssuerKind.SAT_TEST and not trust.sandbox:
        return _untrusted("Fue emitido por la autoridad de pruebas del SAT, que solo se acepta en el modo de pruebas.")
    if trust.trust_sat_names and kind in (IssuerKind.SAT_PRODUCTION, IssuerKind.SAT_TEST):
        return None
    return _untrusted()


def load_ca_certificates(data: bytes) -> tuple[x509.Certificate, ...]:
    """CA certificates from one file: DER, or PEM with one or more certificates."""
    if len(data) > _MAX_CA_FILE:
        raise ValueError("CA certificate file too large")
    if b"-----BEGIN CERTIFICATE-----" in data:
        return tuple(x509.load_pem_x509_certificates(data))
    return (x509.load_der_x509_certificate(data),)


def load_ca_files(paths: Iterable[Path]) -> tuple[x509.Certificate, ...]:
    """CA certificates from files or directories (``*.cer``, ``*.crt``, ``*.pem``), sorted by name."""
    found: list[x509.Certificate] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix.lower() in {".cer", ".crt", ".pem"})
            if path.is_dir()
            else [path]
        )
        for file in files:
            found.extend(load_ca_certificates(file.read_bytes()))
    return tuple(found)
