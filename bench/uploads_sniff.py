"""Micro-benchmark: StreamingUpload (hash + limit + sniff + content-addressed rename) vs a plain write.

Run: ``.venv/bin/python bench/uploads_sniff.py [--files 50] [--size-mb 10] [--fsync]``

Prints MB/s for a plain chunked write to disk and for ``ContentStore.open_upload`` on the same bytes, the
ratio, the sniff cost per file, and the process's peak RSS growth. Not a timed test: figures only.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from core.uploads import ContentStore
from core.uploads.sniff import sniff_path

CHUNK = 64 * 1024


def make_big_pdf(size: int) -> bytes:
    """A structurally valid PDF of about ``size`` bytes (one big random stream)."""
    payload = os.urandom(max(0, size - 400))
    body = b"%PDF-1.7\n1 0 obj\n<< /Length " + str(len(payload)).encode() + b" >>\nstream\n"
    body += payload + b"\nendstream\nendobj\n"
    xref = len(body)
    return (
        body
        + b"xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 >>\n"
        + (b"startxref\n" + str(xref).encode() + b"\n%%EOF\n")
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_write(directory: Path, files: list[bytes]) -> float:
    start = time.perf_counter()
    for index, data in enumerate(files):
        with (directory / f"plain-{index}").open("wb") as f:
            for offset in range(0, len(data), CHUNK):
                f.write(data[offset : offset + CHUNK])
    return time.perf_counter() - start


def store_write(store: ContentStore, files: list[bytes]) -> float:
    start = time.perf_counter()
    for data in files:
        with store.open_upload(declared_size=len(data)) as upload:
            for offset in range(0, len(data), CHUNK):
                upload.write(data[offset : offset + CHUNK])
            upload.finalize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--fsync", action="store_true", help="fsync files and directories in the store")
    args = parser.parse_args()

    size = int(args.size_mb * 1024 * 1024) - 1024  # stay under the 10 MB default limit
    files = [make_big_pdf(size) for _ in range(args.files)]
    total_mb = sum(map(len, files)) / (1024 * 1024)
    rss_before = peak_rss_mb()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "plain").mkdir()
        plain = plain_write(root / "plain", files)
        store = ContentStore(root / "store", fsync=args.fsync)
        streamed = store_write(store, files)
        sample = next((root / "store").glob("??/*"))
        start = time.perf_counter()
        for _ in range(20):
            sniff_path(sample)
        sniff_ms = (time.perf_counter() - start) / 20 * 1000

    print(f"files: {args.files} x {args.size_mb:g} MB (fsync={'on' if args.fsync else 'off'})")
    print(f"plain chunked write : {total_mb / plain:8.1f} MB/s")
    print(f"StreamingUpload     : {total_mb / streamed:8.1f} MB/s  ({plain / streamed:.0%} of plain)")
    print(f"sniff per file      : {sniff_ms:8.3f} ms")
    print(f"peak RSS growth     : {peak_rss_mb() - rss_before:8.1f} MB (inputs held in memory excluded)")


if __name__ == "__main__":
    main()
