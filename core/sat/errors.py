"""Errors raised by the SAT value objects (RFC, certificates, private keys, credentials).

Every error carries a stable machine ``code`` and a ``message`` in Spanish (Mexico) that can be
shown to a vendor as is. Messages never contain passwords or key material.
"""

from __future__ import annotations

from enum import StrEnum


class CredentialErrorCode(StrEnum):
    """Stable machine codes for problems with a certificate, a private key or a credential."""

    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    INVALID_CERTIFICATE = "invalid_certificate"
    INVALID_CERTIFICATE_SUBJECT = "invalid_certificate_subject"
    INVALID_CERTIFICATE_NUMBER = "invalid_certificate_number"
    INVALID_PRIVATE_KEY = "invalid_private_key"
    UNENCRYPTED_PRIVATE_KEY = "unencrypted_private_key"
    UNSUPPORTED_KEY_ENCRYPTION = "unsupported_key_encryption"
    UNSUPPORTED_KEY_TYPE = "unsupported_key_type"
    WRONG_PASSWORD = "wrong_password"
    KEY_MISMATCH = "key_mismatch"
    FIEL_NOT_CSD = "fiel_not_csd"
    CSD_NOT_FIEL = "csd_not_fiel"
    UNKNOWN_CERTIFICATE_TYPE = "unknown_certificate_type"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    RFC_MISMATCH = "rfc_mismatch"
    UNTRUSTED_ISSUER = "untrusted_issuer"


class SatError(ValueError):
    """Base class: a problem with data given by a person, with a Spanish message and a stable code."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self)._restore, (self.code, self.message))

    @classmethod
    def _restore(cls, code: str, message: str) -> SatError:
        error = cls.__new__(cls)
        SatError.__init__(error, code, message)
        return error

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class RfcError(SatError):
    """An RFC that does not have the shape SAT gives to RFCs."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_rfc", message)


class CredentialError(SatError):
    """A certificate, private key or credential that cannot be used; ``code`` tells which problem."""

    def __init__(self, code: CredentialErrorCode, message: str) -> None:
        super().__init__(code.value, message)

    @property
    def error_code(self) -> CredentialErrorCode:
        return CredentialErrorCode(self.code)
