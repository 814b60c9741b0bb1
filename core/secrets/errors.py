"""Errors of the secrets box. Messages are Spanish, for staff; they never contain key material."""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError


class SecretErrorCode(StrEnum):
    INVALID_SECRET_KEYS = "invalid_secret_keys"
    UNKNOWN_SECRET_KEY = "unknown_secret_key"
    MALFORMED_SECRET = "malformed_secret"
    SECRET_DECRYPTION_FAILED = "secret_decryption_failed"
    INSECURE_KEYFILE = "insecure_keyfile"


class SecretError(DomainError):
    """A secret could not be loaded, encrypted or decrypted. A server-side problem (HTTP 500)."""

    code = "secret_error"
    status = 500

    def __init__(self, code: SecretErrorCode, message: str) -> None:
        super().__init__(message, code=code.value)

    def __repr__(self) -> str:
        return f"SecretError(code={self.code!r}, message={self.message!r})"
