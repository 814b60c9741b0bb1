"""Content detection: by magic bytes and a parse check, never by name."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.uploads import ContentType, UploadError, sniff_bytes
from core.uploads.sniff import describe_allowed
from tests.support.samples import (
    HTML,
    SVG,
    make_image,
    make_jpeg_with_header,
    make_pdf,
    make_png_with_header,
    make_zip,
)

PDF = make_pdf()
PNG = make_image("PNG", (64, 48))
JPEG = make_image("JPEG", (64, 48))


def refused(data: bytes) -> UploadError:
    with pytest.raises(UploadError) as info:
        sniff_bytes(data)
    return info.value


def test_pdf_png_and_jpeg_are_recognised_by_content() -> None:
    assert sniff_bytes(PDF).content_type is ContentType.PDF
    png = sniff_bytes(PNG)
    assert (png.content_type, png.width, png.height) == (ContentType.PNG, 64, 48)
    jpeg = sniff_bytes(JPEG)
    assert (jpeg.content_type, jpeg.width, jpeg.height) == (ContentType.JPEG, 64, 48)


def test_pdf_with_incremental_update_and_trailing_newlines_is_accepted() -> None:
    assert sniff_bytes(PDF + b"\r\n\r\n").content_type is ContentType.PDF


def test_pdf_with_xref_stream_is_accepted() -> None:
    body = b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    xref_at = len(body)
    data = body + b"2 0 obj\n<< /Type /XRef >>\nstream\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    assert sniff_bytes(data).content_type is ContentType.PDF


def test_pdf_whose_startxref_is_slightly_off_is_accepted() -> None:
    # A producer converted LF to CRLF after computing offsets: startxref points a few bytes early.
    body = b"%PDF-1.4\r\n1 0 obj\r\n<< /Type /Catalog >>\r\nendobj\r\n"
    data = body + b"xref\r\n0 1\r\ntrailer\r\n<< >>\r\nstartxref\r\n%d\r\n%%%%EOF\r\n" % (len(body) - 4)
    assert sniff_bytes(data).content_type is ContentType.PDF


def test_pdf_whose_startxref_points_far_from_any_xref_is_refused() -> None:
    body = b"%PDF-1.4\n1 0 obj\n<< >>\nendobj\n" + b"%" + b"x" * 4000 + b"\n"
    data = body + b"startxref\n%d\n%%%%EOF\n" % (len(body) - 100)
    assert refused(data).code == "corrupt_file"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (HTML, "HTML"),
        (make_zip(), "ZIP"),
        (make_image("GIF"), "GIF"),
        (SVG, "SVG"),
        (make_image("BMP"), "BMP"),
        (b"MZ\x90\x00" + b"\x00" * 100, "ejecutable"),
        (b"hola, esto es texto plano", None),
    ],
)
def test_foreign_content_is_refused_naming_what_was_detected(data: bytes, kind: str | None) -> None:
    error = refused(data)
    assert error.code == "unsupported_type"
    assert "PDF, PNG o JPEG" in error.message
    if kind:
        assert f"se detectó {kind}" in error.message


def test_empty_file_is_refused() -> None:
    error = refused(b"")
    assert error.code == "empty_file"
    assert error.message == "El archivo está vacío."


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.9, 0.99])
def test_truncated_pdf_is_refused(cut: float) -> None:
    error = refused(PDF[: int(len(PDF) * cut)])
    assert error.code == "corrupt_file"
    assert "PDF" in error.message


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n",
        b"%PDF-1.7\n%%EOF\n",
        b"%PDF-1.7\nstartxref\n999999\n%%EOF\n",  # offset outside the file
        b"%PDF-1.7\nstartxref\n3\n%%EOF\n",  # offset inside the header
        b"%PDF-1.7\nhello world, no objects here\nstartxref\n12\n%%EOF\n",  # points at nothing
        b"%PDF-1.4\n" + HTML + b"\n%%EOF",
    ],
)
def test_pdf_lookalikes_without_a_valid_trailer_are_refused(data: bytes) -> None:
    assert refused(data).code == "corrupt_file"


def test_truncated_png_is_refused() -> None:
    assert refused(PNG[:-12]).code == "corrupt_file"
    assert refused(PNG[:40]).code == "corrupt_file"


def test_png_with_a_corrupted_chunk_is_refused_by_crc() -> None:
    data = bytearray(PNG)
    idat = data.find(b"IDAT")
    data[idat + 6] ^= 0xFF
    assert refused(bytes(data)).code == "corrupt_file"


def test_png_signature_without_ihdr_is_refused() -> None:
    assert refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).code == "corrupt_file"


def test_truncated_jpeg_is_refused() -> None:
    assert refused(JPEG[:-2]).code == "corrupt_file"
    assert refused(JPEG[: len(JPEG) // 2]).code == "corrupt_file"
    assert refused(b"\xff\xd8\xff").code == "corrupt_file"


def test_jpeg_with_broken_segments_is_refused() -> None:
    assert refused(b"\xff\xd8\xff\xe0\x00\x01" + b"\x00" * 50 + b"\xff\xd9").code == "corrupt_file"
    assert refused(b"\xff\xd8\xffhello" + b"\xff\xd9").code == "corrupt_file"


def test_jpeg_with_trailing_zero_padding_is_accepted() -> None:
    assert sniff_bytes(JPEG + b"\x00" * 100).content_type is ContentType.JPEG


def test_decompression_bomb_png_is_refused_from_its_header() -> None:
    error = refused(make_png_with_header(100_000, 100_000))
    assert error.code == "image_too_large"
    assert "100000×100000" in error.message


def test_decompression_bomb_jpeg_is_refused_from_its_header() -> None:
    error = refused(make_jpeg_with_header(65_000, 65_000))
    assert error.code == "image_too_large"


def test_png_with_zero_width_is_refused() -> None:
    data = bytearray(PNG)
    struct.pack_into(">I", data, 16, 0)
    assert refused(bytes(data)).code == "corrupt_file"


def test_describe_allowed_lists_types_in_spanish() -> None:
    assert describe_allowed({ContentType.PDF}) == "PDF"
    assert describe_allowed({ContentType.PNG, ContentType.JPEG}) == "PNG o JPEG"
    assert describe_allowed(set(ContentType)) == "PDF, PNG o JPEG"


# -- fuzzing: never crash with anything but UploadError, never accept a truncated file ---------


@settings(max_examples=300)
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash_the_sniffer(data: bytes) -> None:
    with contextlib.suppress(UploadError):
        sniff_bytes(data)


@settings(max_examples=300)
@given(
    prefix=st.sampled_from([b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]),
    rest=st.binary(max_size=2048),
)
def test_magic_bytes_followed_by_garbage_are_refused(prefix: bytes, rest: bytes) -> None:
    with pytest.raises(UploadError):
        sniff_bytes(prefix + rest)


@settings(max_examples=200)
@given(sample=st.sampled_from([PDF, PNG, JPEG]), data=st.data())
def test_every_truncation_of_a_valid_file_is_refused(sample: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(sample.rstrip(b"\n")) - 1))
    with pytest.raises(UploadError):
        sniff_bytes(sample[:cut])


@settings(max_examples=200)
@given(sample=st.sampled_from([PDF, PNG, JPEG]), data=st.data())
def test_flipping_bytes_never_crashes(sample: bytes, data: st.DataObject) -> None:
    mutated = bytearray(sample)
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        index = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        mutated[index] = data.draw(st.integers(min_value=0, max_value=255))
    with contextlib.suppress(UploadError):
        sniff_bytes(bytes(mutated))
