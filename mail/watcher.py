"""The inbox watcher: picks the source from settings (``maildir:`` or ``imap(s)://``) and runs it.

Both sources hand every raw message to a :class:`core.inbox.ports.MailSink` and move it to the
processed folder (``Procesados``) or the quarantine (``Fallidos``) afterwards; they never delete.
This module holds what they share: counters, progress logging, the reconnect backoff, and the
errors the watcher stops on.

    stop = asyncio.Event()
    stats = await run_watcher(settings, sink, stop)   # returns when ``stop`` is set
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.inbox.ports import IngestResult, MailSink
from core.settings import Settings

if TYPE_CHECKING:
    from mail.oauth2 import OAuth2TokenProvider

log = logging.getLogger("timbrado.mail.watcher")


class InboxError(Exception):
    """A watcher failure with a stable ``code`` and a Spanish ``message`` for operators."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InboxAuthError(InboxError):
    """Authentication failed repeatedly: the watcher stops instead of hammering the server."""


class InboxConfigError(InboxError):
    """The inbox URL or credentials are unusable as configured."""


@dataclass
class WatcherStats:
    """Counters of one watcher run (also read by the benchmark and the metrics endpoint)."""

    fetched: int = 0
    bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    quarantined: int = 0
    oversized: int = 0
    moved_processed: int = 0
    reconnects: int = 0
    auth_failures: int = 0
    passes: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_log: float = field(default_factory=time.monotonic)
    _last_logged_count: int = 0

    @property
    def ingested(self) -> int:
        return sum(self.outcomes.values())

    def record(self, result: IngestResult, size: int) -> None:
        self.fetched += 1
        self.bytes += size
        self.outcomes[result.outcome.value] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "bytes": self.bytes,
            "outcomes": dict(self.outcomes),
            "failures": self.failures,
            "quarantined": self.quarantined,
            "oversized": self.oversized,
            "moved_processed": self.moved_processed,
            "reconnects": self.reconnects,
            "auth_failures": self.auth_failures,
            "passes": self.passes,
        }

    def maybe_log(self, source: str, every: float = 60.0, *, force: bool = False) -> None:
        """Log progress at most every ``every`` seconds, and only when something happened."""
        now = time.monotonic()
        count = self.ingested + self.quarantined
        if count == self._last_logged_count or (not force and now - self._last_log < every):
            return
        elapsed = max(1e-9, now - self._last_log)
        rate = (count - self._last_logged_count) / elapsed
        log.info(
            "Buzón %s: %d correos registrados (%.1f/s), %d en cuarentena, %d fallas, %d reconexiones",
            source,
            self.ingested,
            rate,
            self.quarantined,
            self.failures,
            self.reconnects,
            extra={"inbox": self.snapshot()},
        )
        self._last_log = now
        self._last_logged_count = count


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with "equal jitter" (half fixed, half random)."""
    rng = rng or random.Random()
    delay = min(cap, base * (2 ** min(max(0, attempt - 1), 62)))
    return float(delay / 2 + rng.uniform(0, delay / 2))


class InboxSource(Protocol):
    stats: WatcherStats

    async def run_once(self) -> int:
        """Process what is in the mailbox now; returns how many messages were handled."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Process and watch until ``stop`` is set (raises :class:`InboxAuthError` to give up)."""
        ...


def build_source(
    settings: Settings,
    sink: MailSink,
    *,
    oauth: OAuth2TokenProvider | None = None,
    stats: WatcherStats | None = None,
    **options: Any,
) -> InboxSource:
    """The source for ``settings.inbox``; ``options`` override source tunables (tests, benchmark)."""
    url = settings.inbox
    scheme = url.split(":", 1)[0].lower()
    if scheme == "maildir":
        from mail.inbox_maildir import MaildirSource

        return MaildirSource.from_settings(settings, sink, stats=stats, **options)
    if scheme in ("imap", "imaps"):
        from mail.inbox_imap import ImapSource

        return ImapSource.from_settings(settings, sink, oauth=oauth, stats=stats, **options)
    raise InboxConfigError(
        "inbox_scheme", f"Esquema de buzón no soportado: {scheme!r} (use maildir:, imap:// o imaps://)."
    )


async def run_watcher(
    settings: Settings,
    sink: MailSink,
    stop: asyncio.Event,
    *,
    oauth: OAuth2TokenProvider | None = None,
    **options: Any,
) -> WatcherStats:
    """Run the configured source until ``stop``; an authentication give-up is logged as critical."""
    source = build_source(settings, sink, oauth=oauth, **options)
    try:
        await source.run(stop)
    except InboxAuthError as exc:
        log.critical("ALERTA: el buzón dejó de leerse: %s [%s]", exc.message, exc.code)
        raise
    finally:
        source.stats.maybe_log(_describe(settings.inbox), force=True)
    return source.stats


def _describe(url: str) -> str:
    """The inbox URL without its userinfo (no passwords in logs)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
