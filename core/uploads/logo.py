"""Logo checks for "Datos del CFDI": PNG or JPEG by content, small in bytes and in pixels.

Order matters for safety: the byte size is checked before reading (a path is ``stat``-ed first), the
dimensions are read from the image header before anything is decoded (a 5000×5000 or a crafted
65535×65535 header is refused without allocating pixels), and only then is the image fully decoded to
prove it renders (it will be drawn into REP PDFs).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from core.uploads.errors import ImageTooLargeError, UploadError
from core.uploads.sniff import ContentType, detect_foreign_kind, detect_magic, sniff_bytes
from core.uploads.store import format_megabytes

__all__ = ["LOGO_MAX_BYTES", "LOGO_MAX_SIDE", "LOGO_TYPES", "LogoInfo", "check_logo"]

LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_SIDE = 2000
LOGO_TYPES = frozenset({ContentType.PNG, ContentType.JPEG})


@dataclass(frozen=True)
class LogoInfo:
    """An accepted logo."""

    content_type: ContentType
    width: int
    height: int
    size: int
    sha256: str


def _size_error(limit: int) -> UploadError:
    limit_kb = limit // 1024
    return UploadError(
        "logo_too_large",
        f"El logotipo excede el tamaño máximo permitido de {limit_kb} KB ({format_megabytes(limit)} MB).",
    )


def _dimensions_error(width: int, height: int, max_side: int) -> UploadError:
    return UploadError(
        "logo_dimensions",
        f"El logotipo es demasiado grande: {width}×{height} píxeles; el máximo es {max_side}×{max_side} píxeles.",
    )


def _type_error(head: bytes) -> UploadError:
    foreign = detect_foreign_kind(head)
    detected = f" (se detectó {foreign})" if foreign else ""
    if detect_magic(head) is ContentType.PDF:
        detected = " (se detectó PDF)"
    return UploadError(
        "unsupported_type",
        f"El logotipo debe ser una imagen PNG o JPEG{detected}.",
    )


def check_logo(
    source: Path | bytes,
    *,
    max_bytes: int = LOGO_MAX_BYTES,
    max_side: int = LOGO_MAX_SIDE,
) -> LogoInfo:
    """Validate a logo given as a path or as bytes; the file name is ignored, only content counts.

    Raises ``UploadError`` with code ``empty_file``, ``logo_too_large``, ``unsupported_type``,
    ``logo_dimensions`` or ``corrupt_file``.
    """
    if isinstance(source, Path):
        try:
            if source.stat().st_size > max_bytes:
                raise _size_error(max_bytes)
            data = source.read_bytes()
        except OSError as exc:
            raise UploadError("storage_error", "No se pudo leer el logotipo.") from exc
    elif isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        raise TypeError("source must be a Path or bytes")
    if not data:
        raise UploadError("empty_file", "El logotipo está vacío.")
    if len(data) > max_bytes:
        raise _size_error(max_bytes)
    if detect_magic(data[:16]) not in LOGO_TYPES:
        raise _type_error(data[:1024])
    # Header-only dimension check first: max_pixels makes sniff refuse oversized headers early.
    try:
        sniffed = sniff_bytes(data, max_pixels=max_side * max_side)
    except ImageTooLargeError as exc:
        raise _dimensions_error(exc.width, exc.height, max_side) from exc
    width, height = sniffed.width or 0, sniffed.height or 0
    if width > max_side or height > max_side:
        raise _dimensions_error(width, height, max_side)
    try:
        with Image.open(io.BytesIO(data), formats=[sniffed.content_type.name]) as image:
            image.load()
    except Exception as exc:
        raise UploadError(
            "corrupt_file", "El logotipo está dañado o incompleto; vuelva a generarlo y súbalo de nuevo."
        ) from exc
    return LogoInfo(
        content_type=sniffed.content_type,
        width=width,
        height=height,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
