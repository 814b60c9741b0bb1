from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from mail.raw_store import RawMailStore


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def archives(root: Path) -> list[Path]:
    return sorted(root.rglob("*.zip"))


def test_a_batch_is_kept_in_one_archive_and_every_message_is_found_by_its_hash(tmp_path: Path) -> None:
    store = RawMailStore(tmp_path / "mail")
    raws = [b"Subject: uno\r\n\r\nhola\r\n", b"Subject: dos\n\n\x00\xff binario", b""]
    assert store.put_many(raws) == [sha(r) for r in raws]
    (archive,) = archives(tmp_path / "mail")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(f"{sha(r)}.eml" for r in raws)
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
    for raw in raws:
        assert store.get(sha(raw)) == raw  # byte for byte
    assert not list((tmp_path / "mail").rglob(".tmp-*"))


def test_storing_the_same_batch_again_writes_nothing_new(tmp_path: Path) -> None:
    store = RawMailStore(tmp_path / "mail")
    raws = [b"a", b"b", b"a"]  # a repeat inside the batch is kept once
    store.put_many(raws)
    (archive,) = archives(tmp_path / "mail")
    before = archive.stat().st_mtime_ns
    store.put_many(raws)
    assert archives(tmp_path / "mail") == [archive] and archive.stat().st_mtime_ns == before
    with zipfile.ZipFile(archive) as z:
        assert len(z.namelist()) == 2


def test_messages_of_several_batches_and_of_the_former_one_file_layout_are_found(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    store = RawMailStore(root)
    store.put(b"first")
    store.put_many([b"second", b"third"])
    legacy = b"kept by an earlier version"
    (root / sha(legacy)[:2]).mkdir(parents=True, exist_ok=True)
    (root / sha(legacy)[:2] / f"{sha(legacy)}.eml").write_bytes(legacy)
    for raw in (b"first", b"second", b"third", legacy):
        assert store.get(sha(raw)) == raw
    assert store.get(sha(b"never stored")) is None


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "A" * 64, "0" * 63])
def test_get_refuses_anything_but_a_sha256(tmp_path: Path, key: str) -> None:
    assert RawMailStore(tmp_path).get(key) is None


def test_a_failed_write_leaves_no_archive_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RawMailStore(tmp_path / "mail")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("mail.raw_store.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        store.put_many([b"x", b"y"])
    assert not [p for p in (tmp_path / "mail").rglob("*") if p.is_file()]
