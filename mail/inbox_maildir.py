"""The embedded inbox: a local Maildir (``maildir:<path>``), watched by polling.

Every file in ``new/`` and ``cur/`` is read and handed to the sink; afterwards it is renamed into
the Maildir++ subfolder ``.Procesados`` (or ``.Fallidos`` for unprocessable mail, oversized mail and
mail that failed ``max_attempts`` times).  Nothing is deleted.  A crash between recording and the
rename makes the next pass hand the same file again; the sink deduplicates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition, MailSink
from core.settings import Settings
from mail.watcher import InboxConfigError, WatcherStats, backoff

log = logging.getLogger("timbrado.mail.maildir")

SUBDIRS = ("new", "cur", "tmp")


def ensure_maildir(path: Path) -> None:
    for sub in SUBDIRS:
        (path / sub).mkdir(parents=True, exist_ok=True)


def ensure_subfolder(root: Path, name: str) -> Path:
    """Create the Maildir++ folder ``.<name>`` under ``root`` and return its path."""
    folder = root / f".{name}"
    ensure_maildir(folder)
    marker = folder / "maildirfolder"
    if not marker.exists():
        marker.touch()
    return folder


def _read_all(entries: list[MaildirEntry]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for entry in entries:
        try:
            out.append(entry.path.read_bytes())
        except FileNotFoundError:
            out.append(None)  # moved away by someone else meanwhile
    return out


def _base_name(filename: str) -> str:
    return filename.split(":2,", 1)[0]


@dataclass(frozen=True, slots=True)
class MaildirEntry:
    path: Path
    size: int


class MaildirSource:
    def __init__(
        self,
        root: Path,
        sink: MailSink,
        *,
        max_message_bytes: int = 30 * 1024 * 1024,
        max_attempts: int = 3,
        processed_folder: str = "Procesados",
        failed_folder: str = "Fallidos",
        poll_seconds: float = 1.0,
        batch_messages: int = 25,
        batch_bytes: int = 4 * 1024 * 1024,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        progress_seconds: float = 60.0,
        stats: WatcherStats | None = None,
    ) -> None:
        self.root = root
        self.sink = sink
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.processed_folder = processed_folder
        self.failed_folder = failed_folder
        self.poll_seconds = poll_seconds
        self.batch_messages = max(1, batch_messages)
        self.batch_bytes = batch_bytes
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.progress_seconds = progress_seconds
        self.stats = stats or WatcherStats()
        self.mailbox = f"maildir:{root}"
        self._errors = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, sink: MailSink, *, stats: WatcherStats | None = None, **options: Any
    ) -> MaildirSource:
        raw = settings.inbox.split(":", 1)[1]
        if raw.startswith("//"):
            raw = raw[2:]
        if not raw:
            raise InboxConfigError("inbox_maildir_path", "Falta la ruta del Maildir.")
        params: dict[str, Any] = {
            "max_message_bytes": settings.inbox_max_message_bytes,
            "max_attempts": settings.inbox_max_attempts,
            "processed_folder": settings.inbox_processed_folder,
            "failed_folder": settings.inbox_failed_folder,
            "poll_seconds": min(1.0, settings.inbox_poll_seconds),
        }
        params.update(options)
        return cls(Path(raw).expanduser(), sink, stats=stats, **params)

    # ------------------------------------------------------------------ filesystem (runs in a thread)
    def _scan(self) -> list[MaildirEntry]:
        ensure_maildir(self.root)
        entries: list[tuple[float, str, MaildirEntry]] = []
        for sub in ("new", "cur"):
            with os.scandir(self.root / sub) as it:
                for item in it:
                    if item.name.startswith(".") or not item.is_file(follow_symlinks=False):
                        continue
                    try:
                        st = item.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    entries.append((st.st_mtime, item.name, MaildirEntry(Path(item.path), st.st_size)))
        entries.sort(key=lambda e: (e[0], e[1]))
        return [e[2] for e in entries]

    def _move(self, path: Path, folder: str) -> None:
        target = ensure_subfolder(self.root, folder)
        name = _base_name(path.name) + ":2,S"
        os.rename(path, target / "cur" / name)

    # ------------------------------------------------------------------ processing
    async def run_once(self) -> int:
        """One pass over ``new/`` and ``cur/``; returns how many messages were handled."""
        entries = await asyncio.to_thread(self._scan)
        handled = 0
        position = MailboxPosition(mailbox=self.mailbox, uidvalidity=0, uid=0)
        batch: list[MaildirEntry] = []
        total = 0
        for entry in entries:
            if entry.size > self.max_message_bytes:
                await self.sink.record_failure(
                    None, position, f"mensaje de {entry.size} bytes excede el máximo de {self.max_message_bytes}"
                )
                await self._quarantine(entry.path, "message_too_large")
                self.stats.oversized += 1
                handled += 1
                continue
            if batch and (len(batch) >= self.batch_messages or total + entry.size > self.batch_bytes):
                handled += await self._handle(batch, position)
                batch, total = [], 0
            batch.append(entry)
            total += entry.size
        if batch:
            handled += await self._handle(batch, position)
        self.stats.passes += 1
        return handled

    async def _handle(self, entries: list[MaildirEntry], position: MailboxPosition) -> int:
        """Read a batch of files and hand them to the sink in one call; move what was recorded."""
        raws = await asyncio.to_thread(_read_all, entries)
        pending = [(entry, raw) for entry, raw in zip(entries, raws, strict=True) if raw is not None]
        handled = 0
        while pending:
            try:
                results = await self.sink.ingest_batch([(raw, position) for _, raw in pending])
            except Exception as exc:  # nothing of the batch was recorded
                log.exception("Maildir: no se pudo registrar el lote que empieza en %s", pending[0][0].path.name)
                results = [IngestResult(IngestOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:500])]
            moved: list[Path] = []
            stop = len(results)
            for index, ((entry, raw), result) in enumerate(zip(pending, results, strict=False)):
                if result.outcome is IngestOutcome.FAILED:
                    stop = index
                    break
                self.stats.record(result, len(raw))
                handled += 1
                if result.outcome is IngestOutcome.UNPROCESSABLE:
                    await self._quarantine(entry.path, "unprocessable")
                else:
                    moved.append(entry.path)
            if moved:
                await asyncio.to_thread(self._move_all, moved, self.processed_folder)
                self.stats.moved_processed += len(moved)
            if stop >= len(pending):
                break
            if stop == len(results):  # the sink stopped early without saying why: next pass
                break
            entry, raw = pending[stop]
            self.stats.failures += 1
            error = results[stop].detail or "error al registrar el mensaje"
            log.error("Maildir: no se pudo registrar %s: %s", entry.path.name, error)
            attempts = await self.sink.record_failure(raw, position, error)
            if attempts >= self.max_attempts:
                await self._quarantine(entry.path, "max_attempts")
                handled += 1
            # no position to protect in a Maildir: skip it this pass, go on with the rest
            pending = pending[stop + 1 :]
        return handled

    def _move_all(self, paths: list[Path], folder: str) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                self._move(path, folder)

    async def _quarantine(self, path: Path, reason: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._move, path, self.failed_folder)
            self.stats.quarantined += 1
            log.warning("Maildir: %s enviado a %s (%s)", path.name, self.failed_folder, reason)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_seconds`` until ``stop`` is set; errors back off and retry."""
        await asyncio.to_thread(ensure_maildir, self.root)
        while not stop.is_set():
            delay = self.poll_seconds
            try:
                await self.run_once()
                self._errors = 0
            except Exception:
                self._errors += 1
                delay = backoff(self._errors, self.backoff_base, self.backoff_max)
                log.exception("Maildir: error al revisar el buzón; reintento en %.1f s", delay)
            self.stats.maybe_log(self.mailbox, self.progress_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
