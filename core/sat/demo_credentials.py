"""Demo credentials: a CA named like SAT's test CA and SAT-shaped CSD / e.firma for any RFC.

For ``timbrado demo`` and the tests. Everything is generated with ``cryptography`` (the key file
envelope is written with ``asn1crypto``); nothing is read from SAT's files. The CA *names* itself
"AC UAT" / "SERVICIO DE ADMINISTRACION TRIBUTARIA", which :mod:`core.sat.trust` accepts only in
sandbox mode (the embedded default), so these credentials have no fiscal value and are refused in
production mode.

Typical use::

    ca = DemoCa.sat_test(now=now)
    csd = ca.issue(kind="csd", rfc="EKU9003173C9", legal_name="ESCUELA KEMPER URGATE", now=now)
    csd.cer_der(); csd.key_der("12345678a")   # .cer and .key bytes like SAT's

Key files follow SAT's format: PKCS#8 ``EncryptedPrivateKeyInfo`` in DER, PBES2 with
PBKDF2-HMAC-SHA1 (2,048 rounds) and 3DES-CBC.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from asn1crypto import algos, keys
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Kind = Literal["csd", "fiel"]

SAT_ORGANIZATION = "SERVICIO DE ADMINISTRACION TRIBUTARIA"
SAT_TEST_CA_NAME = "AC UAT"
DEMO_PASSWORD = "12345678a"
SAT_KEY_ITERATIONS = 2048
NAME_OID = x509.ObjectIdentifier("2.5.4.41")  # "name", as in SAT subjects


def generate_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key (SAT issues RSA-2048)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate_number_serial(number: str) -> int:
    """The X.509 serial whose bytes read as SAT's 20-digit certificate number (ASCII digits)."""
    return int.from_bytes(number.encode("ascii"), "big")


def random_certificate_number() -> str:
    """A 20-digit certificate number in SAT's test range (``30001000000...``)."""
    return "30001000000" + "".join(secrets.choice("0123456789") for _ in range(9))


def sat_subject(
    *,
    rfc: str,
    legal_name: str,
    rfc_representative: str | None = None,
    curp: str | None = None,
    curp_representative: str | None = None,
    branch: str | None = None,
) -> x509.Name:
    """A subject shaped like SAT's: CN, name, O, x500UniqueIdentifier, serialNumber[, OU]."""
    unique = f"{rfc} / {rfc_representative}" if rfc_representative else rfc
    serial = f"{curp or ''} / {curp_representative}" if curp_representative else (curp or "")
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, legal_name),
        x509.NameAttribute(NAME_OID, legal_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, legal_name),
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, unique),
    ]
    if serial:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    if branch:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, branch))
    return x509.Name(attributes)


def key_usage_for(kind: Kind) -> x509.KeyUsage:
    """SAT's key usage: digitalSignature + nonRepudiation; an e.firma adds data encipherment and key agreement."""
    fiel = kind == "fiel"
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=fiel,
        key_agreement=fiel,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def extended_key_usage_for(kind: Kind) -> tuple[x509.ObjectIdentifier, ...]:
    """An e.firma carries emailProtection + clientAuth; a CSD has no EKU."""
    if kind == "fiel":
        return (ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH)
    return ()


def self_signed_ca(
    key: rsa.RSAPrivateKey,
    *,
    common_name: str,
    organization: str,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A self-signed CA certificate (basicConstraints CA, keyCertSign + cRLSign)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MX"),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )


def issue_certificate(
    *,
    issuer: x509.Name,
    signing_key: rsa.RSAPrivateKey,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    serial_number: int,
    not_before: datetime,
    not_after: datetime,
    key_usage: x509.KeyUsage | None,
    extended_key_usage: Sequence[x509.ObjectIdentifier] = (),
) -> x509.Certificate:
    """An end-entity certificate; ``key_usage=None`` omits that extension, an empty EKU omits EKU."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=False)
    if extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def sat_key_der(key: rsa.RSAPrivateKey, password: str, *, iterations: int = SAT_KEY_ITERATIONS) -> bytes:
    """``key`` as SAT writes a .key: PKCS#8 EncryptedPrivateKeyInfo, PBES2 / PBKDF2-HMAC-SHA1 / 3DES-CBC."""
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = os.urandom(8), os.urandom(8)
    kdf = PBKDF2HMAC(hashes.SHA1(), 24, salt, iterations)  # noqa: S303 - SHA-1 is SAT's .key format
    derived = kdf.derive(password.encode("utf-8"))
    padder = padding.PKCS7(64).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(TripleDES(derived), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    algorithm = algos.EncryptionAlgorithm(
        {
            "algorithm": "pbes2",
            "parameters": {
                "key_derivation_func": {
                    "algorithm": "pbkdf2",
                    "parameters": {
                        "salt": algos.Pbkdf2Salt("specified", salt),
                        "iteration_count": iterations,
                    },  # PRF: hmacWithSHA1 (DEFAULT)
                },
                "encryption_scheme": {"algorithm": "tripledes_3key", "parameters": iv},
            },
        }
    )
    info = keys.EncryptedPrivateKeyInfo({"encryption_algorithm": algorithm, "encrypted_data": ciphertext})
    der: bytes = info.dump()
    return der


@dataclass(frozen=True)
class DemoCredential:
    """A certificate and its private key, with writers for SAT-like ``.cer`` / ``.key`` files."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def cer_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def key_der(self, password: str = DEMO_PASSWORD, *, iterations: int = SAT_KEY_ITERATIONS) -> bytes:
        """The private key in SAT's .key format, encrypted with ``password``."""
        return sat_key_der(self.private_key, password, iterations=iterations)

    def write(self, directory: Path, password: str = DEMO_PASSWORD, *, stem: str = "credential") -> tuple[Path, Path]:
        """Write ``<stem>.cer`` (DER) and ``<stem>.key`` (SAT format, mode 0600) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cer, key = directory / f"{stem}.cer", directory / f"{stem}.key"
        cer.write_bytes(self.cer_der())
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.key_der(password))
        return cer, key


@dataclass(frozen=True)
class DemoCa:
    """A certificate authority that issues SAT-shaped CSD and e.firma certificates."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        common_name: str,
        organization: str,
        key: rsa.RSAPrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> DemoCa:
        ca_key = key or generate_key()
        cert = self_signed_ca(
            ca_key,
            common_name=common_name,
            organization=organization,
            not_before=not_before or now - timedelta(days=3650),
            not_after=not_after or now + timedelta(days=3650),
        )
        return cls(cert, ca_key)

    @classmethod
    def sat_test(cls, *, now: datetime, key: rsa.RSAPrivateKey | None = None) -> DemoCa:
        """A CA named like SAT's test CA ("AC UAT"): trusted by name in sandbox mode only."""
        return cls.create(now=now, common_name=SAT_TEST_CA_NAME, organization=SAT_ORGANIZATION, key=key)

    def issue(
        self,
        *,
        now: datetime,
        kind: Kind = "csd",
        rfc: str,
        legal_name: str,
        branch: str | None = None,
        certificate_number: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> DemoCredential:
        """A SAT-shaped CSD (OU ``branch``, default "Sucursal 1") or e.firma (no OU, EKU) for ``rfc``."""
        holder_key = key or generate_key()
        chosen_branch = branch if branch is not None else ("Sucursal 1" if kind == "csd" else None)
        cert = issue_certificate(
            issuer=self.certificate.subject,
            signing_key=self.private_key,
            subject=sat_subject(rfc=rfc, legal_name=legal_name, branch=chosen_branch),
            public_key=holder_key.public_key(),
            serial_number=certificate_number_serial(certificate_number or random_certificate_number()),
            not_before=not_before or now - timedelta(days=1),
            not_after=not_after or now + timedelta(days=4 * 365),
            key_usage=key_usage_for(kind),
            extended_key_usage=extended_key_usage_for(kind),
        )
        return DemoCredential(cert, holder_key)


@dataclass(frozen=True)
class DemoVendorCredentials:
    """What a demo vendor needs: its CSD (to seal REPs) and its e.firma (to sign the contract)."""

    ca: DemoCa
    csd: DemoCredential
    fiel: DemoCredential
    password: str = field(default=DEMO_PASSWORD, repr=False)


def demo_vendor_credentials(*, rfc: str, legal_name: str, now: datetime) -> DemoVendorCredentials:
    """A SAT-test-named CA, and a CSD and an e.firma issued by it for ``rfc`` (three fresh RSA keys)."""
    ca = DemoCa.sat_test(now=now)
    csd = ca.issue(now=now, kind="csd", rfc=rfc, legal_name=legal_name)
    fiel = ca.issue(now=now, kind="fiel", rfc=rfc, legal_name=legal_name)
    return DemoVendorCredentials(ca, csd, fiel)
