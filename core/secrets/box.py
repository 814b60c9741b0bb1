"""AES-256-GCM encryption of secrets at rest (CSD private keys), with key ids for rotation.

Ciphertext format (ASCII bytes, safe in a text or binary column)::

    v1:<key_id>:<base64(nonce 12 bytes || ciphertext || tag 16 bytes)>

The associated data is ``b"timbrado/v1\\0" + key_id + b"\\0" + aad``: the caller's ``aad`` binds the
ciphertext to its purpose (for example ``"csd:<vendor_id>:<certificate_number>"``), so a ciphertext
copied to another row or another purpose does not decrypt. Nonces are random (96 bits); with one
key, stay well under 2^32 encryptions (rotate keys long before that).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.secrets.errors import SecretError, SecretErrorCode
from core.secrets.keys import Keyring, SecretKey

VERSION = b"v1"
NONCE_BYTES = 12
TAG_BYTES = 16
_AAD_PREFIX = b"timbrado/v1\x00"


def _aad_bytes(aad: str | bytes) -> bytes:
    return aad.encode("utf-8") if isinstance(aad, str) else aad


def _malformed() -> SecretError:
    return SecretError(SecretErrorCode.MALFORMED_SECRET, "El secreto almacenado no tiene un formato válido.")


def split_blob(blob: bytes) -> tuple[str, bytes]:
    """``(key_id, nonce || ciphertext || tag)`` of a blob, or :class:`SecretError` if malformed."""
    parts = bytes(blob).split(b":")
    if len(parts) != 3 or parts[0] != VERSION:
        raise _malformed()
    try:
        key_id = parts[1].decode("ascii")
        payload = base64.b64decode(parts[2], validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise _malformed() from None
    if not key_id or len(payload) < NONCE_BYTES + TAG_BYTES:
        raise _malformed()
    return key_id, payload


class SecretBox:
    """Encrypts with the keyring's active key; decrypts with whichever key the blob names."""

    __slots__ = ("_keyring",)

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    @property
    def active_key_id(self) -> str:
        return self._keyring.active.key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return self._keyring.key_ids

    def encrypt(self, plaintext: bytes, aad: str | bytes) -> bytes:
        key = self._keyring.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key.material).encrypt(nonce, bytes(plaintext), self._full_aad(key, aad))
        return b":".join((VERSION, key.key_id.encode("ascii"), base64.b64encode(nonce + sealed)))

    def decrypt(self, blob: bytes, aad: str | bytes) -> bytes:
        key_id, payload = split_blob(blob)
        key = self._keyring.get(key_id)
        if key is None:
            raise SecretError(
                SecretErrorCode.UNKNOWN_SECRET_KEY,
                f"El secreto fue cifrado con la llave {key_id!r}, que no está configurada.",
            )
        nonce, sealed = payload[:NONCE_BYTES], payload[NONCE_BYTES:]
        try:
            return AESGCM(key.material).decrypt(nonce, sealed, self._full_aad(key, aad))
        except InvalidTag:
            raise SecretError(
                SecretErrorCode.SECRET_DECRYPTION_FAILED,
                "No fue posible descifrar el secreto: fue alterado o no corresponde a este registro.",
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        return split_blob(blob)[0]

    def needs_rotation(self, blob: bytes) -> bool:
        """True when ``blob`` was not encrypted with the active key."""
        return self.key_id_of(blob) != self.active_key_id

    def rotate(self, blob: bytes, aad: str | bytes) -> bytes:
        """Re-encrypt ``blob`` with the active key (the same blob back when already current).
        Decrypts first, so a tampered blob or a wrong ``aad`` raises instead of being re-sealed."""
        if not self.needs_rotation(blob):
            self.decrypt(blob, aad)  # still authenticate: rotation must not bless a bad blob
            return blob
        return self.encrypt(self.decrypt(blob, aad), aad)

    @staticmethod
    def _full_aad(key: SecretKey, aad: str | bytes) -> bytes:
        return _AAD_PREFIX + key.key_id.encode("ascii") + b"\x00" + _aad_bytes(aad)

    def __repr__(self) -> str:
        return f"SecretBox(active={self.active_key_id!r}, key_ids={self.key_ids!r})"

    __str__ = __repr__
