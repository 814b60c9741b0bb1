"""Loading SAT private keys (.key): encrypted PKCS#8 (DER or PEM) and the legacy encrypted PEM form.

SAT delivers keys as PKCS#8 ``EncryptedPrivateKeyInfo`` in DER, PBES2 with PBKDF2 (2,048 iterations)
and 3DES-CBC. Also accepted: the same in PEM, AES-CBC instead of 3DES, PKCS#12-style 3DES PBE, and
the traditional OpenSSL PEM with ``Proc-Type: 4,ENCRYPTED`` (what phpcfdi calls "PKCS#5").

Before decrypting, the envelope is read (:mod:`core.sat._der`) so that unsupported ciphers and
absurd key-derivation parameters (a hostile file asking for a billion PBKDF2 rounds) are refused
without spending CPU, and so that any later decryption failure can be reported as a wrong password.

Unencrypted keys are refused: SAT never issues one and the service always asks for the password.
Only RSA keys are accepted (SAT issues RSA only).
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.sat import _der
from core.sat.errors import CredentialError, CredentialErrorCode

MAX_PRIVATE_KEY_SIZE = 64 * 1024
MAX_PASSWORD_LENGTH = 1024
MAX_KDF_ITERATIONS = 1_000_000

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_PKCS12_PBE_3DES = "1.2.840.113549.1.12.1.3"
_SUPPORTED_PBES2_CIPHERS = {
    "1.2.840.113549.3.7": "3DES-CBC",
    "2.16.840.1.101.3.4.1.2": "AES-128-CBC",
    "2.16.840.1.101.3.4.1.22": "AES-192-CBC",
    "2.16.840.1.101.3.4.1.42": "AES-256-CBC",
}
_KNOWN_UNSUPPORTED = {
    "1.3.14.3.2.7": "DES-CBC",
    "1.2.840.113549.3.2": "RC2-CBC",
    "1.2.392.200011.61.1.1.1.2": "Camellia-128-CBC",
    "1.2.392.200011.61.1.1.1.3": "Camellia-192-CBC",
    "1.2.392.200011.61.1.1.1.4": "Camellia-256-CBC",
    "1.2.410.200046.1.1.2": "ARIA-128-CBC",
    "1.2.410.200046.1.1.12": "ARIA-256-CBC",
    "1.2.410.200004.1.4": "SEED-CBC",
    "1.2.156.10197.1.104.2": "SM4-CBC",
    "1.3.6.1.4.1.11591.4.11": "scrypt",
    "1.2.840.113549.1.5.3": "PBE-MD5-DES",
    "1.2.840.113549.1.5.10": "PBE-SHA1-DES",
    "1.2.840.113549.1.12.1.1": "PBE-SHA1-RC4-128",
    "1.2.840.113549.1.12.1.2": "PBE-SHA1-RC4-40",
    "1.2.840.113549.1.12.1.5": "PBE-SHA1-RC2-128",
    "1.2.840.113549.1.12.1.6": "PBE-SHA1-RC2-40",
}
_SUPPORTED_PEM_DEK = {"DES-EDE3-CBC", "AES-128-CBC", "AES-192-CBC", "AES-256-CBC"}
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n(.*?)\r?\n?-----END \1-----",
    re.DOTALL,
)

_INVALID = "El archivo no es una llave privada válida del SAT (.key)."


def _error(code: CredentialErrorCode, message: str) -> CredentialError:
    return CredentialError(code, message)


def _invalid() -> CredentialError:
    return _error(CredentialErrorCode.INVALID_PRIVATE_KEY, _INVALID)


def _unencrypted() -> CredentialError:
    return _error(
        CredentialErrorCode.UNENCRYPTED_PRIVATE_KEY,
        "La llave privada no está protegida con contraseña; use el archivo .key que entrega el SAT.",
    )


def _unsupported(algorithm: str) -> CredentialError:
    return _error(
        CredentialErrorCode.UNSUPPORTED_KEY_ENCRYPTION,
        f"La llave privada está cifrada con un algoritmo no soportado ({algorithm}); "
        "use el archivo .key que entrega el SAT.",
    )


def _wrong_password() -> CredentialError:
    return _error(CredentialErrorCode.WRONG_PASSWORD, "La contraseña de la llave privada es incorrecta.")


def _name_of(oid: str) -> str:
    return _KNOWN_UNSUPPORTED.get(oid, f"OID {oid}")


def _check_iterations(count: int) -> None:
    if not 1 <= count <= MAX_KDF_ITERATIONS:
        raise _error(
            CredentialErrorCode.UNSUPPORTED_KEY_ENCRYPTION,
            "La llave privada usa parámetros de cifrado fuera de rango; use el archivo .key que entrega el SAT.",
        )


def _check_pbes2(params: _der.Tlv) -> None:
    kdf, cipher = _der.children(params)
    kdf_parts = _der.children(kdf)
    kdf_oid = _der.decode_oid(kdf_parts[0])
    if kdf_oid != _PBKDF2:
        raise _unsupported(_name_of(kdf_oid))
    pbkdf2_params = _der.children(kdf_parts[1])
    _check_iterations(_der.decode_integer(pbkdf2_params[1]))
    cipher_oid = _der.decode_oid(_der.children(cipher)[0])
    if cipher_oid not in _SUPPORTED_PBES2_CIPHERS:
        raise _unsupported(_name_of(cipher_oid))


def inspect_encrypted_pkcs8(der: bytes) -> None:
    """Refuse, without decrypting, anything that is not a supported encrypted PKCS#8 RSA key."""
    try:
        outer = _der.read_single(der, _der.SEQUENCE)
        parts = _der.children(outer)
        if parts and parts[0].tag == _der.INTEGER:
            raise _unencrypted()  # PrivateKeyInfo or RSAPrivateKey in clear
        if len(parts) != 2 or parts[0].tag != _der.SEQUENCE or parts[1].tag != _der.OCTET_STRING:
            raise _invalid()
        algorithm = _der.children(parts[0])
        oid = _der.decode_oid(algorithm[0])
        if oid == _PBES2:
            _check_pbes2(algorithm[1])
        elif oid == _PKCS12_PBE_3DES:
            _check_iterations(_der.decode_integer(_der.children(algorithm[1])[1]))
        else:
            raise _unsupported(_name_of(oid))
    except (_der.DerError, IndexError, ValueError) as exc:
        if isinstance(exc, CredentialError):
            raise
        raise _invalid() from None


def _pem_to_der_or_legacy(data: bytes) -> tuple[bytes | None, bytes | None]:
    """Split PEM input: (PKCS#8 DER, None) or (None, legacy PEM block)."""
    match = _PEM_BLOCK.search(data)
    if match is None:
        raise _invalid()
    label, body = match.group(1), match.group(2)
    if label == b"ENCRYPTED PRIVATE KEY":
        try:
            return base64.b64decode(b"".join(body.split()), validate=True), None
        except (binascii.Error, ValueError):
            raise _invalid() from None
    if label in (b"RSA PRIVATE KEY", b"PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"):
        headers = body.split(b"\n\n", 1)[0] if b"Proc-Type:" in body else b""
        if b"4,ENCRYPTED" not in headers:
            raise _unencrypted()
        dek = re.search(rb"DEK-Info:\s*([A-Za-z0-9-]{1,40})\s*,", headers)
        if dek is None:
            raise _invalid()
        cipher = dek.group(1).decode("ascii").upper()
        if cipher not in _SUPPORTED_PEM_DEK:
            raise _unsupported(cipher)
        return None, match.group(0)
    raise _invalid()


def _password_bytes(password: str | bytes) -> bytes:
    try:
        raw = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    except (UnicodeEncodeError, TypeError):  # lone surrogates from JSON, or not text at all
        raise _wrong_password() from None
    if not raw:
        raise _error(CredentialErrorCode.WRONG_PASSWORD, "Escriba la contraseña de la llave privada.")
    if len(raw) > MAX_PASSWORD_LENGTH:
        raise _wrong_password()
    return raw


def _strict_der_envelope(der: bytes) -> bool:
    """True when the encrypted PKCS#8 envelope is canonical DER (what cryptography accepts)."""
    from asn1crypto.keys import EncryptedPrivateKeyInfo

    try:
        parsed = EncryptedPrivateKeyInfo.load(der, strict=True)
        return bool(parsed.dump(force=True) == der)
    except Exception:  # any parsing problem means "not strict DER"
        return False


def load_private_key(data: bytes, password: str | bytes) -> rsa.RSAPrivateKey:
    """Decrypt a SAT private key (DER or PEM). Raises :class:`CredentialError` with a Spanish message."""
    if not data:
        raise _error(CredentialErrorCode.EMPTY_FILE, "El archivo de la llave privada (.key) está vacío.")
    if len(data) > MAX_PRIVATE_KEY_SIZE:
        raise _error(
            CredentialErrorCode.FILE_TOO_LARGE,
            f"El archivo de la llave privada es demasiado grande (máximo {MAX_PRIVATE_KEY_SIZE // 1024} KB).",
        )
    secret = _password_bytes(password)
    der: bytes | None
    legacy_pem: bytes | None
    if data.lstrip()[:11] == b"-----BEGIN ":
        der, legacy_pem = _pem_to_der_or_legacy(data)
    else:
        der, legacy_pem = data, None
    if der is not None:
        inspect_encrypted_pkcs8(der)
    try:
        if der is not None:
            key = serialization.load_der_private_key(der, secret)
        else:
            assert legacy_pem is not None
            key = serialization.load_pem_private_key(legacy_pem, secret)
    except UnsupportedAlgorithm:
        raise _unsupported("desconocido") from None
    except (ValueError, TypeError):
        # The envelope was checked above.  If it is strict DER, a failure here comes from what the
        # password decrypted: a wrong password (which now and then even passes the padding check and
        # yields garbage that fails to parse).  A non-strict envelope is refused before decrypting.
        if der is not None and not _strict_der_envelope(der):
            raise _invalid() from None
        raise _wrong_password() from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _error(
            CredentialErrorCode.UNSUPPORTED_KEY_TYPE,
            "La llave privada no es RSA; el SAT solo emite llaves RSA.",
        )
    return key
