"""Logo checks (Datos del CFDI) and display names for user-supplied filenames."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.uploads import ContentType, UploadError, check_logo, safe_display_name
from tests.support.samples import (
    SVG,
    make_image,
    make_jpeg_with_header,
    make_pdf,
    make_png_with_header,
)


def refused(source: Path | bytes) -> UploadError:
    with pytest.raises(UploadError) as info:
        check_logo(source)
    return info.value


def test_png_logo_is_accepted_with_its_dimensions() -> None:
    info = check_logo(make_image("PNG", (400, 120)))
    assert (info.content_type, info.width, info.height) == (ContentType.PNG, 400, 120)
    assert len(info.sha256) == 64


def test_jpeg_with_a_png_name_is_accepted_because_the_name_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    path.write_bytes(make_image("JPEG", (200, 200)))
    assert check_logo(path).content_type is ContentType.JPEG


def test_logo_at_the_maximum_size_is_accepted() -> None:
    assert check_logo(make_image("PNG", (2000, 2000))).width == 2000


def test_svg_logo_is_refused() -> None:
    error = refused(SVG)
    assert error.code == "unsupported_type"
    assert "PNG o JPEG" in error.message
    assert "SVG" in error.message


def test_gif_logo_is_refused() -> None:
    error = refused(make_image("GIF"))
    assert error.code == "unsupported_type"
    assert "GIF" in error.message


def test_pdf_logo_is_refused() -> None:
    assert refused(make_pdf()).code == "unsupported_type"


def test_three_megabyte_png_is_refused_for_size() -> None:
    data = make_image("PNG", (1024, 1024), noise=True)
    assert len(data) > 3 * 1024 * 1024
    error = refused(data)
    assert error.code == "logo_too_large"
    assert "512 KB" in error.message


def test_oversized_logo_path_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    with path.open("wb") as f:  # sparse 3 MB file: stat says too big before any read
        f.truncate(3 * 1024 * 1024)
    assert refused(path).code == "logo_too_large"


def test_png_of_5000_by_5000_pixels_is_refused() -> None:
    data = make_image("PNG", (5000, 5000))
    assert len(data) <= 512 * 1024  # small in bytes: only the dimension rule catches it
    error = refused(data)
    assert error.code == "logo_dimensions"
    assert "5000×5000" in error.message
    assert "2000×2000" in error.message


@pytest.mark.parametrize("size", [(2001, 10), (10, 2001)])
def test_one_side_over_the_limit_is_refused(size: tuple[int, int]) -> None:
    assert refused(make_image("PNG", size)).code == "logo_dimensions"


def test_decompression_bombs_are_refused_from_the_header() -> None:
    assert refused(make_png_with_header(60_000, 60_000)).code == "logo_dimensions"
    assert refused(make_jpeg_with_header(60_000, 60_000)).code == "logo_dimensions"


def test_truncated_logo_is_refused() -> None:
    assert refused(make_image("PNG", (300, 300), noise=True)[:-100]).code == "corrupt_file"


def test_jpeg_logo_with_corrupt_scan_data_is_refused() -> None:
    data = bytearray(make_image("JPEG", (256, 256), noise=True))
    sos = data.find(b"\xff\xda")
    for i in range(sos + 20, len(data) - 2, 7):
        data[i] = 0xFF  # scatter invalid markers through the entropy-coded data
    assert refused(bytes(data)).code == "corrupt_file"


def test_empty_logo_is_refused() -> None:
    assert refused(b"").code == "empty_file"


def test_missing_logo_path_is_a_storage_error(tmp_path: Path) -> None:
    assert refused(tmp_path / "nope.png").code == "storage_error"


# -- display names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("comprobante.pdf", "comprobante.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..", "archivo"),
        ("C:\\Users\\ana\\pago marzo.pdf", "pago marzo.pdf"),
        ("/absolute/path/pago.png", "pago.png"),
        ("pago\x00.pdf", "pago.pdf"),
        ("pago\r\nBcc: x@y.z.pdf", "pago Bcc: x@y.z.pdf"),
        ("\u202etxt.exe", "txt.exe"),  # right-to-left override used to disguise extensions
        ("fact\u200bura.pdf", "factura.pdf"),  # zero-width space
        ("  spaced   out .pdf  ", "spaced out .pdf"),
        ("Recibo Ñandú.pdf", "Recibo Ñandú.pdf"),
        ("", "archivo"),
        ("   ", "archivo"),
        ("dir/", "archivo"),
    ],
)
def test_safe_display_name(raw: str, shown: str) -> None:
    assert safe_display_name(raw) == shown


def test_safe_display_name_refuses_non_strings() -> None:
    assert safe_display_name(None) == "archivo"
    assert safe_display_name(b"x.pdf") == "archivo"


def test_long_names_are_shortened_keeping_the_extension() -> None:
    shown = safe_display_name("a" * 500 + ".pdf")
    assert len(shown) == 120
    assert shown.endswith("….pdf")
    assert len(safe_display_name("b" * 500)) == 120
