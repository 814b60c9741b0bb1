"""Secrets at rest: AES-256-GCM with key ids (:class:`SecretBox`) and key material loading."""

from core.secrets.box import SecretBox, split_blob
from core.secrets.errors import SecretError, SecretErrorCode
from core.secrets.keys import (
    KEY_BYTES,
    KEYFILE_NAME,
    KeyfileResult,
    Keyring,
    SecretKey,
    load_or_create_keyfile,
    write_keyfile,
)

__all__ = [
    "KEYFILE_NAME",
    "KEY_BYTES",
    "KeyfileResult",
    "Keyring",
    "SecretBox",
    "SecretError",
    "SecretErrorCode",
    "SecretKey",
    "load_or_create_keyfile",
    "split_blob",
    "write_keyfile",
]
