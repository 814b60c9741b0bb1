"""Test factory: the project's own CA, CSD and e.firma certificates, and SAT-style key files.

Built on the product's generator (:mod:`core.sat.demo_credentials`, also used by ``timbrado demo``),
adding what only tests need: cached keys, hostile certificates (forged issuer, missing extensions,
hand-made subjects) and hostile key files. Typical use::

    from tests.support.certs import TestCa, pooled_key

    ca = TestCa.create()                      # a CA of the project (issuer unknown to SAT rules)
    sat_like = TestCa.sat_like()              # a CA that *names* itself "AC UAT" / SAT
    csd = ca.issue(kind="csd", rfc="EKU9003173C9", not_after=at - timedelta(days=1))
    csd.cer_der(); csd.key_der("12345678a")   # .cer and .key bytes like SAT's
    trust = SatTrust(production_cas=(ca.certificate,))

Keys: generating RSA keys is slow, so :func:`pooled_key` hands out cached 2048-bit keys by slot;
pass ``key=`` to :meth:`TestCa.issue` to choose one, or ``key=fresh_key()`` for a new one.

Key files: :meth:`IssuedCredential.key_der` writes PKCS#8 PBES2 / PBKDF2-HMAC-SHA1 (2048 rounds) /
3DES-CBC, exactly SAT's format (the product's writer); ``key_pem`` is the same in PEM;
``key_legacy_pem`` is the traditional OpenSSL encrypted PEM; ``key_unsupported_cipher_der`` uses
Camellia-256-CBC (a real encryption that ``core`` refuses); ``key_huge_iterations_der`` asks for 10⁹
PBKDF2 rounds.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import Camellia, TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from core.sat.demo_credentials import (
    DEMO_PASSWORD,
    SAT_ORGANIZATION,
    DemoCredential,
    Kind,
    certificate_number_serial,
    extended_key_usage_for,
    generate_key,
    issue_certificate,
    key_usage_for,
    random_certificate_number,
    self_signed_ca,
)
from core.sat.demo_credentials import sat_subject as core_sat_subject

PASSWORD = DEMO_PASSWORD
_DEFAULT = object()

# OIDs used to write PKCS#8 envelopes.
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_DES_EDE3_CBC = "1.2.840.113549.3.7"
_CAMELLIA_256_CBC = "1.2.392.200011.61.1.1.1.4"


# --- keys -------------------------------------------------------------------------------------


def fresh_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A newly generated RSA key (slow: tens of milliseconds)."""
    return generate_key(bits)


@functools.cache
def pooled_key(slot: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A cached RSA key: the same ``slot`` gives the same key for the whole test session."""
    return fresh_key(bits)


# --- tiny DER writer (tests only) ----------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _pbes2_envelope(
    plain_pkcs8: bytes, password: bytes, *, cipher_oid: str, iterations: int, encrypt: bool = True
) -> bytes:
    salt = os.urandom(8)
    if cipher_oid == _DES_EDE3_CBC:
        key_len, iv, block = 24, os.urandom(8), 64
    else:
        key_len, iv, block = 32, os.urandom(16), 128
    if encrypt:
        derived = PBKDF2HMAC(hashes.SHA1(), key_len, salt, iterations).derive(password)
        algorithm = TripleDES(derived) if cipher_oid == _DES_EDE3_CBC else Camellia(derived)
        padder = padding.PKCS7(block).padder()
        padded = padder.update(plain_pkcs8) + padder.finalize()
        encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
    else:
        ciphertext = os.urandom(len(plain_pkcs8) + 8 - len(plain_pkcs8) % 8)
    kdf = _seq(_oid(_PBKDF2), _seq(_octets(salt), _int(iterations)))  # PRF: hmacWithSHA1 (DEFAULT)
    scheme = _seq(_oid(cipher_oid), _octets(iv))
    return _seq(_seq(_oid(_PBES2), _seq(kdf, scheme)), _octets(ciphertext))


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        b"-----BEGIN "
        + label.encode()
        + b"-----\n"
        + b"\n".join(lines)
        + (b"\n-----END " + label.encode() + b"-----\n")
    )


# --- issued credentials --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential(DemoCredential):
    """A certificate issued by a :class:`TestCa` and its private key, with SAT-like and hostile file writers.

    ``cer_der``, ``key_der`` (SAT's .key format) and ``write`` come from the product's
    :class:`~core.sat.demo_credentials.DemoCredential`.
    """

    def cer_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_unencrypted_der(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def key_pem(self, password: str = PASSWORD) -> bytes:
        return _pem("ENCRYPTED PRIVATE KEY", self.key_der(password))

    def key_legacy_pem(self, password: str = PASSWORD) -> bytes:
        """Traditional OpenSSL encrypted PEM ("RSA PRIVATE KEY" with Proc-Type/DEK-Info)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(password.encode()),
        )

    def key_unsupported_cipher_der(self, password: str = PASSWORD) -> bytes:
        """PKCS#8 PBES2 with Camellia-256-CBC: a genuine encryption the service does not accept."""
        return _pbes2_envelope(
            self.key_unencrypted_der(), password.encode(), cipher_oid=_CAMELLIA_256_CBC, iterations=2048
        )

    def key_huge_iterations_der(self, iterations: int = 1_000_000_000) -> bytes:
        """A SAT-shaped envelope asking for ``iterations`` PBKDF2 rounds (not decryptable)."""
        return _pbes2_envelope(
            self.key_unencrypted_der(), b"", cipher_oid=_DES_EDE3_CBC, iterations=iterations, encrypt=False
        )


def sat_subject(
    *,
    rfc: str,
    legal_name: str,
    rfc_representative: str | None = None,
    curp: str | None = None,
    curp_representative: str | None = None,
    branch: str | None = None,
    unique_identifier_as_bitstring: bool = False,
) -> x509.Name:
    """A subject shaped like SAT's (the product's), optionally with x500UniqueIdentifier as a BIT STRING."""
    name = core_sat_subject(
        rfc=rfc,
        legal_name=legal_name,
        rfc_representative=rfc_representative,
        curp=curp,
        curp_representative=curp_representative,
        branch=branch,
    )
    if not unique_identifier_as_bitstring:
        return name
    return x509.Name(
        [
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, str(a.value).encode("utf-8"), _type=_ASN1Type.BitString)
            if a.oid == NameOID.X500_UNIQUE_IDENTIFIER
            else a
            for a in name
        ]
    )


# --- the CA --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCa:
    """A certificate authority for tests. ``issue`` builds CSD / e.firma certificates, hostile ones too."""

    __test__ = False  # not a pytest test class

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def create(
        cls,
        *,
        common_name: str = "AC DE PRUEBAS DEL PROYECTO TIMBRADO",
        organization: str = "PROYECTO TIMBRADO (PRUEBAS)",
        key: rsa.RSAPrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> TestCa:
        """A self-signed CA; names that are not SAT's unless you pass them."""
        now = datetime.now(UTC)
        ca_key = key or pooled_key(1000)
        cert = self_signed_ca(
            ca_key,
            common_name=common_name,
            organization=organization,
            not_before=not_before or now - timedelta(days=3650),
            not_after=not_after or now + timedelta(days=3650),
        )
        return cls(cert, ca_key)

    @classmethod
    def sat_like(cls, *, common_name: str = "AC UAT", key: rsa.RSAPrivateKey | None = None) -> TestCa:
        """A CA whose *name* is SAT's (organization "SERVICIO DE ADMINISTRACION TRIBUTARIA")."""
        return cls.create(common_name=common_name, organization=SAT_ORGANIZATION, key=key or pooled_key(1001))

    def issue(
        self,
        *,
        kind: Kind = "csd",
        rfc: str = "EKU9003173C9",
        legal_name: str = "ESCUELA KEMPER URGATE SA DE CV",
        rfc_representative: str | None = None,
        curp: str | None = None,
        curp_representative: str | None = None,
        branch: str | object | None = _DEFAULT,
        certificate_number: str | None = None,
        serial_number: int | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key: rsa.RSAPrivateKey | None = None,
        key_usage: x509.KeyUsage | object | None = _DEFAULT,
        extended_key_usage: Sequence[x509.ObjectIdentifier] | object | None = _DEFAULT,
        subject: x509.Name | None = None,
        unique_identifier_as_bitstring: bool = False,
        signing_key: rsa.RSAPrivateKey | None = None,
    ) -> IssuedCredential:
        """Issue a SAT-shaped certificate.

        Defaults follow SAT: a CSD has an OU (``branch``, default "Sucursal 1") and key usage
        digitalSignature + nonRepudiation; an e.firma has no OU, adds dataEncipherment + keyAgreement
        and carries EKU emailProtection + clientAuth. Pass ``key_usage=None`` /
        ``extended_key_usage=None`` to omit an extension, ``subject=`` for a hand-made subject, and
        ``signing_key=`` to sign with a key that is not the CA's (a forged issuer).
        """
        now = datetime.now(UTC)
        holder_key = key or pooled_key(0)
        chosen_branch = ("Sucursal 1" if kind == "csd" else None) if branch is _DEFAULT else branch
        assert chosen_branch is None or isinstance(chosen_branch, str)
        name = subject or sat_subject(
            rfc=rfc,
            legal_name=legal_name,
            rfc_representative=rfc_representative,
            curp=curp,
            curp_representative=curp_representative,
            branch=chosen_branch,
            unique_identifier_as_bitstring=unique_identifier_as_bitstring,
        )
        usage = key_usage_for(kind) if key_usage is _DEFAULT else key_usage
        assert usage is None or isinstance(usage, x509.KeyUsage)
        eku = extended_key_usage_for(kind) if extended_key_usage is _DEFAULT else extended_key_usage
        assert eku is None or isinstance(eku, Sequence)
        cert = issue_certificate(
            issuer=self.certificate.subject,
            signing_key=signing_key or self.private_key,
            subject=name,
            public_key=holder_key.public_key(),
            serial_number=serial_number or certificate_number_serial(certificate_number or random_certificate_number()),
            not_before=not_before or now - timedelta(days=1),
            not_after=not_after or now + timedelta(days=4 * 365),
            key_usage=usage,
            extended_key_usage=tuple(eku or ()),
        )
        return IssuedCredential(cert, holder_key)
