"""Streaming uploads into content-addressed storage."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.uploads import ContentStore, ContentType, StoredFile, UploadError
from tests.support.samples import HTML, make_image, make_pdf, make_zip

MB = 1024 * 1024


def chunks(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def upload(store: ContentStore, data: bytes, **kwargs: object) -> StoredFile:
    with store.open_upload(**kwargs) as up:  # type: ignore[arg-type]
        for chunk in chunks(data):
            up.write(chunk)
        return up.finalize()


def leftovers(store: ContentStore) -> list[Path]:
    return list(store.tmp_dir.iterdir()) if store.tmp_dir.exists() else []


def stored_files(store: ContentStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file() and p.parent != store.tmp_dir]


def test_upload_is_hashed_counted_and_stored_by_content(store: ContentStore, pdf_bytes: bytes) -> None:
    stored = upload(store, pdf_bytes)
    digest = hashlib.sha256(pdf_bytes).hexdigest()
    assert stored.sha256 == digest
    assert stored.size == len(pdf_bytes)
    assert stored.content_type is ContentType.PDF
    assert stored.path == store.root / digest[:2] / digest
    assert stored.path.read_bytes() == pdf_bytes
    assert not stored.deduplicated
    assert leftovers(store) == []


def test_image_upload_reports_dimensions(store: ContentStore) -> None:
    stored = upload(store, make_image("PNG", (300, 200)))
    assert (stored.content_type, stored.width, stored.height) == (ContentType.PNG, 300, 200)


def test_pdf_renamed_png_and_png_named_pdf_are_judged_by_content(store: ContentStore) -> None:
    # The store never receives a file name at all: content decides.
    assert upload(store, make_pdf()).content_type is ContentType.PDF
    assert upload(store, make_image("PNG")).content_type is ContentType.PNG


def test_same_content_uploaded_twice_is_stored_once(store: ContentStore, pdf_bytes: bytes) -> None:
    first = upload(store, pdf_bytes)
    second = upload(store, pdf_bytes)
    assert first.path == second.path
    assert second.deduplicated
    assert len(stored_files(store)) == 1
    assert leftovers(store) == []


def test_two_different_proofs_are_two_files(store: ContentStore) -> None:
    a = upload(store, make_pdf("pago 1"))
    b = upload(store, make_pdf("pago 2"))
    assert a.sha256 != b.sha256
    assert len(stored_files(store)) == 2


def test_oversized_upload_is_refused_while_streaming_and_cleaned_up(store: ContentStore) -> None:
    payload = make_pdf() + os.urandom(11 * MB)
    written = 0
    with pytest.raises(UploadError) as info, store.open_upload() as up:
        for chunk in chunks(payload):
            up.write(chunk)
            written += len(chunk)
    assert info.value.code == "too_large"
    assert info.value.message == "El archivo excede el tamaño máximo permitido de 10 MB."
    assert written <= 10 * MB  # refused at the chunk that crossed the limit, not at the end
    assert leftovers(store) == []
    assert stored_files(store) == []


def test_declared_content_length_over_the_limit_is_refused_before_reading(store: ContentStore) -> None:
    with pytest.raises(UploadError) as info:
        store.open_upload(declared_size=11 * MB)
    assert info.value.code == "too_large"
    assert leftovers(store) == []


def test_custom_limit_is_named_in_the_message(store: ContentStore, pdf_bytes: bytes) -> None:
    with pytest.raises(UploadError, match=r"máximo permitido de 0\.5 MB"):
        upload(store, pdf_bytes + b"\0" * MB, max_bytes=MB // 2)


@pytest.mark.parametrize("delta", [-1, +1, -1000])
def test_wrong_content_length_is_refused(store: ContentStore, pdf_bytes: bytes, delta: int) -> None:
    with pytest.raises(UploadError) as info:
        upload(store, pdf_bytes, declared_size=len(pdf_bytes) + delta)
    assert info.value.code == "length_mismatch"
    assert str(len(pdf_bytes) + delta) in info.value.message
    assert leftovers(store) == []
    assert stored_files(store) == []


@pytest.mark.parametrize("declared", [-5, True, "100"])
def test_nonsense_content_length_is_refused(store: ContentStore, declared: object) -> None:
    with pytest.raises(UploadError) as info:
        store.open_upload(declared_size=declared)  # type: ignore[arg-type]
    assert info.value.code == "length_mismatch"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (HTML, "unsupported_type"),
        (make_zip(), "unsupported_type"),
        (b"", "empty_file"),
        (make_pdf()[:-200], "corrupt_file"),
    ],
)
def test_refused_content_leaves_nothing_behind(store: ContentStore, data: bytes, code: str) -> None:
    with pytest.raises(UploadError) as info:
        upload(store, data)
    assert info.value.code == code
    assert leftovers(store) == []
    assert stored_files(store) == []


def test_type_outside_the_allowed_set_is_refused(store: ContentStore, pdf_bytes: bytes) -> None:
    allowed = frozenset({ContentType.PNG, ContentType.JPEG})
    with pytest.raises(UploadError) as info:
        upload(store, pdf_bytes, allowed=allowed)
    assert info.value.code == "type_not_allowed"
    assert "Se aceptan archivos PNG o JPEG" in info.value.message
    assert leftovers(store) == []


def test_writing_after_finalize_is_refused(store: ContentStore, pdf_bytes: bytes) -> None:
    with store.open_upload() as up:
        up.write(pdf_bytes)
        up.finalize()
        with pytest.raises(UploadError) as info:
            up.write(b"more")
        assert info.value.code == "upload_closed"
        with pytest.raises(UploadError):
            up.finalize()


def test_an_interrupted_upload_removes_its_temporary_file(store: ContentStore, pdf_bytes: bytes) -> None:
    with pytest.raises(ConnectionResetError), store.open_upload() as up:
        up.write(pdf_bytes[:1000])
        assert len(leftovers(store)) == 1
        raise ConnectionResetError("client went away")
    assert leftovers(store) == []


async def test_async_stream_and_finalize_in_a_thread(store: ContentStore, pdf_bytes: bytes) -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks(pdf_bytes, 1000):
            yield chunk

    with store.open_upload(declared_size=len(pdf_bytes)) as up:
        await up.write_from(body())
        stored = await up.afinalize()
    assert stored.sha256 == hashlib.sha256(pdf_bytes).hexdigest()


async def test_async_stream_that_fails_midway_cleans_up(store: ContentStore) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n"
        raise ConnectionResetError("client went away")

    up = store.open_upload()
    with pytest.raises(ConnectionResetError):
        await up.write_from(body())
    assert up.closed
    assert leftovers(store) == []


@pytest.mark.parametrize(
    "digest",
    ["../../etc/passwd", "A" * 64, "0" * 63, "/" + "0" * 63, "0" * 64 + "/..", "", None],
)
def test_path_for_refuses_anything_but_a_sha256(store: ContentStore, digest: object) -> None:
    with pytest.raises(UploadError) as info:
        store.path_for(digest)  # type: ignore[arg-type]
    assert info.value.code == "invalid_digest"


def test_store_bytes_and_exists(store: ContentStore, png_bytes: bytes) -> None:
    stored = store.store_bytes(png_bytes)
    assert store.exists(stored.sha256)
    assert not store.exists("0" * 64)


def test_stale_temporaries_are_swept(store: ContentStore) -> None:
    up = store.open_upload()
    up.write(b"%PDF-")
    stale = leftovers(store)[0]
    os.utime(stale, (0, 0))
    assert store.remove_stale_temporaries(older_than_seconds=60) == 1
    assert leftovers(store) == []
    up.abort()  # already gone: abort stays quiet


def test_fsync_enabled_store_works(tmp_path: Path, jpeg_bytes: bytes) -> None:
    store = ContentStore(tmp_path / "files", fsync=True)
    assert upload(store, jpeg_bytes).content_type is ContentType.JPEG
