"""Signer protocol (CSD or PAC certificate) and RSA-SHA256 PKCS#1 v1.5 helpers.

The engine never loads keys itself: callers hand it an object satisfying :class:`Signer`.
:class:`RsaSigner` is a small implementation over ``cryptography`` objects; its repr hides the key.
"""

from __future__ import annotations

import base64
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class Signer(Protocol):
    """What the builder (CSD) and the sandbox PAC (PAC certificate) need to seal."""

    @property
    def certificate_number(self) -> str: ...

    @property
    def certificate_der(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes:
        """RSA-SHA256 PKCS#1 v1.5 signature of ``data``."""
        ...


def certificate_number_of(certificate: x509.Certificate) -> str:
    """NoCertificado: the serial number read as ASCII digits (SAT certificates) or, for others,
    its decimal digits left-padded to 20."""
    raw = certificate.serial_number.to_bytes((certificate.serial_number.bit_length() + 7) // 8, "big")
    if raw and all(0x30 <= b <= 0x39 for b in raw):
        return raw.decode("ascii")
    return str(certificate.serial_number).rjust(20, "0")[-20:]


class RsaSigner:
    """A :class:`Signer` over an RSA private key and its certificate."""

    __slots__ = ("_certificate_der", "_certificate_number", "_key")

    def __init__(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        self._key = private_key
        self._certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        self._certificate_number = certificate_number_of(certificate)

    def __repr__(self) -> str:
        return f"RsaSigner(certificate_number={self._certificate_number!r})"

    @property
    def certificate_number(self) -> str:
        return self._certificate_number

    @property
    def certificate_der(self) -> bytes:
        return self._certificate_der

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def seal(cadena: str, signer: Signer) -> str:
    """Sello: base64 of RSA-SHA256 over the UTF-8 cadena original."""
    return base64.b64encode(signer.sign(cadena.encode("utf-8"))).decode("ascii")


def verify_seal(cadena: str, sello_b64: str, certificate: x509.Certificate) -> bool:
    """Whether ``sello_b64`` is a valid RSA-SHA256 signature of ``cadena`` by ``certificate``."""
    try:
        signature = base64.b64decode(sello_b64, validate=True)
    except ValueError:
        return False
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(signature, cadena.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def load_certificate_b64(text: str) -> x509.Certificate | None:
    """Certificate from the Certificado attribute (base64 DER), or None when unreadable."""
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True))
    except ValueError:
        return None
