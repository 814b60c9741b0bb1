"""Where raw inbound messages are kept: one uncompressed ZIP archive per batch.

Creating a file costs far more than writing it (about a millisecond of kernel time per file on
the reference machine, against microseconds to append the same bytes to an open file), so the raw
messages of a batch are written together: ``<root>/<hh>/<batch sha256>.zip``, members
``<message sha256>.eml`` (stored, not compressed), written to a temporary file and renamed, so an
archive is there whole or not at all.  Any ZIP tool opens them (``unzip -l``).  The archive's name
is the SHA-256 of its members' digests, so storing the same batch again is a no-op.

Messages stored one file each by earlier versions (``<root>/<hh>/<sha256>.eml``) are still found
by :meth:`RawMailStore.get`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["RawMailStore"]

# A fixed timestamp keeps an archive's bytes a function of its content only.
_EPOCH = (1980, 1, 1, 0, 0, 0)


class RawMailStore:
    """Raw messages kept by content hash under ``<data_dir>/mail`` (written once, atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, raw: bytes) -> str:
        """Keep one message; returns its SHA-256 (hex)."""
        return self.put_many([raw])[0]

    def put_many(self, raws: Sequence[bytes]) -> list[str]:
        """Keep the messages of a batch in one archive; returns their SHA-256s (hex), in order."""
        shas = [hashlib.sha256(raw).hexdigest() for raw in raws]
        if not raws:
            return shas
        unique = dict(zip(shas, raws, strict=True))
        name = hashlib.sha256("".join(unique).encode("ascii")).hexdigest()
        target = self.root / name[:2] / f"{name}.zip"
        if target.exists():
            return shas
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as archive:
                for sha, raw in unique.items():
                    archive.writestr(zipfile.ZipInfo(f"{sha}.eml", date_time=_EPOCH), raw)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return shas

    def get(self, sha: str) -> bytes | None:
        """The raw message with this SHA-256, or None.  Scans the archives: for people, not hot paths."""
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            return None
        legacy = self.root / sha[:2] / f"{sha}.eml"
        if legacy.is_file():
            return legacy.read_bytes()
        member = f"{sha}.eml"
        for path in self._archives():
            try:
                with zipfile.ZipFile(path) as archive:
                    return archive.read(member)
            except KeyError:
                continue
            except (OSError, zipfile.BadZipFile):
                continue
        return None

    def _archives(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir():
                yield from sorted(folder.glob("*.zip"))
