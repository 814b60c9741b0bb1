"""Fixtures for the upload tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.uploads import ContentStore
from tests.support.samples import make_image, make_pdf


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "data" / "files", fsync=False)


@pytest.fixture
def pdf_bytes() -> bytes:
    return make_pdf()


@pytest.fixture
def png_bytes() -> bytes:
    return make_image("PNG")


@pytest.fixture
def jpeg_bytes() -> bytes:
    return make_image("JPEG")
