"""Sample files for the upload tests, generated at run time (nothing binary is committed)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image
from reportlab.pdfgen import canvas


def make_pdf(text: str = "Comprobante de pago") -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_image(fmt: str, size: tuple[int, int] = (64, 48), color: str = "navy", noise: bool = False) -> bytes:
    if noise:
        import os

        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png_with_header(width: int, height: int) -> bytes:
    """A syntactically valid PNG whose IHDR announces huge dimensions but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def make_jpeg_with_header(width: int, height: int) -> bytes:
    """Replace the SOF dimensions of a tiny JPEG with huge ones."""
    data = bytearray(make_image("JPEG", (16, 16)))
    index = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, index + 5, height, width)
    return bytes(data)


def make_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("comprobante.pdf", make_pdf())
    return buffer.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
