"""Key material for :class:`~core.secrets.box.SecretBox`: parsing, generating and the key file.

Two sources, both chosen by the caller (this module never reads ``os.environ``):

- a settings value such as ``"k2:<base64 32 bytes>,k1:<base64 32 bytes>"``: the first key is the
  active one (encrypts), the others only decrypt (older keys kept for rotation);
- :func:`load_or_create_keyfile`: a file ``secret-keys`` in the data dir, same format, created with
  mode 0600 on first run (the result says so, and the caller logs the warning).

A :class:`SecretKey` never shows its material in ``repr``/``str``; errors never quote it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from core.secrets.errors import SecretError, SecretErrorCode

KEY_BYTES = 32  # AES-256
KEYFILE_NAME = "secret-keys"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def _invalid(detail: str) -> SecretError:
    return SecretError(SecretErrorCode.INVALID_SECRET_KEYS, f"Las llaves de cifrado no son válidas: {detail}")


@dataclass(frozen=True, slots=True)
class SecretKey:
    """One AES-256 key and its id (the id is written in every ciphertext it produces)."""

    key_id: str
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.fullmatch(self.key_id):
            raise _invalid(
                "el identificador de una llave debe tener de 1 a 32 caracteres A-Z, a-z, 0-9, '_', '-' o '.'."
            )
        if len(self.material) != KEY_BYTES:
            raise _invalid(f"la llave {self.key_id!r} debe medir {KEY_BYTES} bytes (256 bits).")

    @classmethod
    def generate(cls, key_id: str | None = None) -> SecretKey:
        """A new random key; the default id is ``k`` + 8 random hex digits."""
        return cls(key_id or f"k{secrets.token_hex(4)}", secrets.token_bytes(KEY_BYTES))

    def encoded(self) -> str:
        """SECRET: ``<key_id>:<base64 material>``, only to write a key file or a settings value."""
        return f"{self.key_id}:{base64.b64encode(self.material).decode('ascii')}"

    def __repr__(self) -> str:
        return f"SecretKey(key_id={self.key_id!r}, material=<oculta>)"

    __str__ = __repr__


def _decode_material(key_id: str, text: str) -> bytes:
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _invalid(f"la llave {key_id!r} no está en base64.") from None


@dataclass(frozen=True, slots=True)
class Keyring:
    """The active key (first) and older keys kept to decrypt what they encrypted."""

    keys: tuple[SecretKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise _invalid("se requiere al menos una llave.")
        ids = [key.key_id for key in self.keys]
        if len(set(ids)) != len(ids):
            raise _invalid("hay identificadores de llave repetidos.")

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """Parse ``"k2:<base64>,k1:<base64>"`` (commas or new lines between keys; first = active)."""
        entries = [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]
        keys: list[SecretKey] = []
        for entry in entries:
            key_id, sep, material = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id:
                raise _invalid("cada llave debe escribirse como <id>:<base64>.")
            keys.append(SecretKey(key_id, _decode_material(key_id, material)))
        return cls(tuple(keys))

    @classmethod
    def generate(cls, key_id: str | None = None) -> Keyring:
        return cls((SecretKey.generate(key_id),))

    @property
    def active(self) -> SecretKey:
        return self.keys[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.keys)

    def get(self, key_id: str) -> SecretKey | None:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        return None

    def with_new_active(self, key: SecretKey | None = None) -> Keyring:
        """A keyring whose active key is ``key`` (default: a new random one); the old keys stay for
        decryption until every ciphertext has been rotated."""
        return Keyring((key or SecretKey.generate(), *self.keys))

    def without(self, key_id: str) -> Keyring:
        """Drop a retired key (after rotation); the active key cannot be dropped."""
        if key_id == self.active.key_id:
            raise _invalid("no se puede retirar la llave activa.")
        return Keyring(tuple(key for key in self.keys if key.key_id != key_id))

    def encoded(self) -> str:
        """SECRET: the keyring in the settings/key file format."""
        return ",".join(key.encoded() for key in self.keys)

    def __repr__(self) -> str:
        return f"Keyring(active={self.active.key_id!r}, key_ids={self.key_ids!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class KeyfileResult:
    keyring: Keyring
    path: Path
    generated: bool  # True on first run: the caller should log a warning (back up this file)


def _check_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretError(
            SecretErrorCode.INSECURE_KEYFILE,
            f"El archivo de llaves {path} tiene permisos {mode:04o}; debe ser legible solo por su dueño (chmod 600).",
        )


def _read_keyfile(path: Path) -> Keyring:
    _check_permissions(path)
    return Keyring.parse(path.read_text(encoding="ascii", errors="strict"))


def write_keyfile(path: Path, keyring: Keyring) -> None:
    """Atomically write ``keyring`` to ``path`` with mode 0600 (replacing it; used after adding or
    retiring a key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(keyring.encoded() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def load_or_create_keyfile(data_dir: Path) -> KeyfileResult:
    """Read ``<data_dir>/secret-keys``, or create it (0600) with a new random key on first run.

    Safe when several processes start at once: the file appears complete or not at all (written to a
    temporary file and hard-linked into place), and the loser of the race reads the winner's key.
    """
    path = data_dir / KEYFILE_NAME
    if path.exists():
        return KeyfileResult(_read_keyfile(path), path, generated=False)
    data_dir.mkdir(parents=True, exist_ok=True)
    keyring = Keyring.generate()
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(keyring.encoded() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return KeyfileResult(_read_keyfile(path), path, generated=False)
    finally:
        temp.unlink(missing_ok=True)
    return KeyfileResult(keyring, path, generated=True)
