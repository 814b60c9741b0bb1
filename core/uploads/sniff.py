"""Content detection by magic bytes plus a structural parse check (names are never trusted).

Accepted kinds and what "parses" means for each:

* **PDF**: ``%PDF-1.x``/``%PDF-2.x`` at offset 0, ``%%EOF`` within the last 1024 bytes, a ``startxref``
  before it whose offset lies inside the file and points at an ``xref`` table or an ``N G obj`` (an xref
  stream), or at one within 512 bytes of it (line-ending rewrites shift offsets; readers cope). A
  truncated PDF loses its trailer and is refused. This is a light check (no dependency on a
  PDF library); it does not render the document.
* **PNG**: signature, ``IHDR`` as first chunk (dimensions read from it *before* anything is decoded, so a
  decompression bomb is refused from its header), ``IEND`` as last chunk, then Pillow's ``verify()``
  which walks every chunk and checks its CRC without decompressing the pixels.
* **JPEG**: ``SOI``, well-formed marker segments up to the first ``SOS`` with a ``SOF`` giving the
  dimensions, ``EOI`` at the end (trailing zero padding tolerated), then Pillow's header parser.
  Proofs are not fully decoded (memory stays flat under concurrent uploads); logos are (see ``logo``).

Everything reads only the head, the tail and the header segments of the file, never the whole file.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from core.uploads.errors import ImageTooLargeError, UploadError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ContentType",
    "Sniffed",
    "describe_allowed",
    "detect_foreign_kind",
    "detect_magic",
    "sniff_bytes",
    "sniff_path",
    "sniff_stream",
]

# Below Pillow's own DecompressionBombWarning threshold (~89 Mpx), so Pillow never warns or raises.
DEFAULT_MAX_PIXELS = 60_000_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
_PDF_XREF_TARGET = re.compile(rb"\s*(?:xref|\d+\s+\d+\s+obj)")
_PDF_XREF_NEARBY = re.compile(rb"(?:^|[\r\n])(?:xref|\d+\s+\d+\s+obj)")
_PDF_OFFSET_SLACK = 512  # producers that rewrite line endings leave startxref a few bytes off
_PDF_STARTXREF = re.compile(rb"startxref\s+(\d{1,15})\s+%%EOF")
_TAIL = 1024
_TRAILING_PADDING = b"\x00\r\n\t\f "
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_MAX_HEADER_SEGMENTS = 512


class ContentType(StrEnum):
    """The content types the service accepts, as MIME types."""

    PDF = "application/pdf"
    PNG = "image/png"
    JPEG = "image/jpeg"

    @property
    def label(self) -> str:
        return {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG"}[self.value]

    @property
    def extension(self) -> str:
        return {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}[self.value]


@dataclass(frozen=True)
class Sniffed:
    """What the content is; image dimensions when it is an image."""

    content_type: ContentType
    width: int | None = None
    height: int | None = None


def describe_allowed(allowed: frozenset[ContentType] | set[ContentType]) -> str:
    """Spanish enumeration such as ``PDF, PNG o JPEG``."""
    labels = [ct.label for ct in ContentType if ct in allowed]
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " o " + labels[-1]


def detect_magic(head: bytes) -> ContentType | None:
    """The accepted type announced by the first bytes, without any structural check."""
    if head.startswith(_PNG_SIGNATURE):
        return ContentType.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return ContentType.JPEG
    if _PDF_HEADER.match(head):
        return ContentType.PDF
    return None


def detect_foreign_kind(head: bytes) -> str | None:
    """A human label for common refused kinds, used to make the refusal message concrete."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    kinds: list[tuple[bool, str]] = [
        (head.startswith((b"GIF87a", b"GIF89a")), "GIF"),
        (head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")), "ZIP"),
        (head.startswith(b"RIFF") and head[8:12] == b"WEBP", "WebP"),
        (head.startswith(b"BM"), "BMP"),
        (head.startswith((b"II*\x00", b"MM\x00*")), "TIFF"),
        (head.startswith(b"\x1f\x8b"), "GZIP"),
        (head.startswith(b"Rar!"), "RAR"),
        (head.startswith(b"7z\xbc\xaf\x27\x1c"), "7-Zip"),
        (head.startswith(b"\xd0\xcf\x11\xe0"), "Office (OLE)"),
        (head.startswith(b"MZ") or head.startswith(b"\x7fELF"), "ejecutable"),
        (head[4:8] == b"ftyp", "HEIC/MP4"),
        (b"<svg" in stripped[:512], "SVG"),
        (stripped.startswith((b"<!doctype html", b"<html")) or b"<html" in stripped[:512], "HTML"),
        (stripped.startswith(b"<?xml"), "XML"),
    ]
    for matched, label in kinds:
        if matched:
            return label
    return None


def _corrupt(content_type: ContentType) -> UploadError:
    return UploadError(
        "corrupt_file",
        f"El archivo parece {content_type.label} pero está dañado o incompleto; vuelva a generarlo y súbalo de nuevo.",
    )


def _too_many_pixels(width: int, height: int) -> UploadError:
    return ImageTooLargeError(width, height)


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def _check_pdf(f: BinaryIO, size: int) -> Sniffed:
    tail = _read_at(f, max(0, size - _TAIL), _TAIL).rstrip(_TRAILING_PADDING)
    if not tail.endswith(b"%%EOF"):
        raise _corrupt(ContentType.PDF)
    matches = list(_PDF_STARTXREF.finditer(tail))
    if not matches:
        raise _corrupt(ContentType.PDF)
    offset = int(matches[-1].group(1))
    if not 8 <= offset < size:
        raise _corrupt(ContentType.PDF)
    if not _PDF_XREF_TARGET.match(_read_at(f, offset, 64)):
        # Readers tolerate a slightly wrong offset; so do we, as long as an xref is really near it.
        start = max(0, offset - _PDF_OFFSET_SLACK)
        if not _PDF_XREF_NEARBY.search(_read_at(f, start, 2 * _PDF_OFFSET_SLACK)):
            raise _corrupt(ContentType.PDF)
    return Sniffed(ContentType.PDF)


def _open_with_pillow(f: BinaryIO, content_type: ContentType) -> Image.Image:
    f.seek(0)
    return Image.open(f, formats=[content_type.name])


def _check_png(f: BinaryIO, size: int, head: bytes, max_pixels: int) -> Sniffed:
    if size < 8 + 25 + 12 or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise _corrupt(ContentType.PNG)
    width, height = struct.unpack(">II", head[16:24])
    if width == 0 or height == 0:
        raise _corrupt(ContentType.PNG)
    if width * height > max_pixels:
        raise _too_many_pixels(width, height)
    if _read_at(f, size - 12, 12) != _PNG_IEND:
        raise _corrupt(ContentType.PNG)
    try:
        with _open_with_pillow(f, ContentType.PNG) as image:
            image.verify()
    except Exception as exc:
        raise _corrupt(ContentType.PNG) from exc
    return Sniffed(ContentType.PNG, width, height)


def _jpeg_dimensions(f: BinaryIO) -> tuple[int, int]:
    """Walk the marker segments from SOI to the first SOS; return (width, height) from the SOF."""
    f.seek(2)
    dimensions: tuple[int, int] | None = None
    for _ in range(_JPEG_MAX_HEADER_SEGMENTS):
        byte = f.read(1)
        if byte != b"\xff":
            raise _corrupt(ContentType.JPEG)
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            raise _corrupt(ContentType.JPEG)
        code = marker[0]
        if code in _JPEG_STANDALONE:
            continue
        if code in (0xD8, 0xD9, 0x00):
            raise _corrupt(ContentType.JPEG)
        raw_length = f.read(2)
        if len(raw_length) != 2:
            raise _corrupt(ContentType.JPEG)
        (length,) = struct.unpack(">H", raw_length)
        if length < 2:
            raise _corrupt(ContentType.JPEG)
        payload = f.read(length - 2)
        if len(payload) != length - 2:
            raise _corrupt(ContentType.JPEG)
        if code in _JPEG_SOF:
            if len(payload) < 6:
                raise _corrupt(ContentType.JPEG)
            height, width = struct.unpack(">HH", payload[1:5])
            dimensions = (width, height)
        if code == 0xDA:  # start of scan: entropy-coded data follows
            if dimensions is None or dimensions[0] == 0 or dimensions[1] == 0:
                raise _corrupt(ContentType.JPEG)
            return dimensions
    raise _corrupt(ContentType.JPEG)


def _check_jpeg(f: BinaryIO, size: int, max_pixels: int) -> Sniffed:
    width, height = _jpeg_dimensions(f)
    if width * height > max_pixels:
        raise _too_many_pixels(width, height)
    tail = _read_at(f, max(0, size - _TAIL), _TAIL).rstrip(b"\x00")
    if not tail.endswith(b"\xff\xd9"):
        raise _corrupt(ContentType.JPEG)
    try:
        with _open_with_pillow(f, ContentType.JPEG) as image:
            if image.size != (width, height):
                raise _corrupt(ContentType.JPEG)
    except UploadError:
        raise
    except Exception as exc:
        raise _corrupt(ContentType.JPEG) from exc
    return Sniffed(ContentType.JPEG, width, height)


def sniff_stream(f: BinaryIO, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Sniffed:
    """Decide the content type of a seekable binary stream of ``size`` bytes and check it parses.

    Raises ``UploadError`` with code ``empty_file``, ``unsupported_type``, ``corrupt_file`` or
    ``image_too_large``.
    """
    if size <= 0:
        raise UploadError("empty_file", "El archivo está vacío.")
    head = _read_at(f, 0, _TAIL)
    content_type = detect_magic(head)
    if content_type is None:
        foreign = detect_foreign_kind(head)
        detected = f" (se detectó {foreign})" if foreign else ""
        raise UploadError(
            "unsupported_type",
            f"Tipo de archivo no admitido{detected}. Se aceptan archivos PDF, PNG o JPEG.",
        )
    if content_type is ContentType.PDF:
        return _check_pdf(f, size)
    if content_type is ContentType.PNG:
        return _check_png(f, size, head, max_pixels)
    return _check_jpeg(f, size, max_pixels)


def sniff_path(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Sniffed:
    """``sniff_stream`` over a file on disk."""
    with path.open("rb") as f:
        size = f.seek(0, io.SEEK_END)
        return sniff_stream(f, size, max_pixels=max_pixels)


def sniff_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Sniffed:
    """``sniff_stream`` over bytes already in memory (small inputs such as logos)."""
    return sniff_stream(io.BytesIO(data), len(data), max_pixels=max_pixels)
