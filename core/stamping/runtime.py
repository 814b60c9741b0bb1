"""Builds the stamping objects from Settings (called by the composition root, tests, benchmarks).

Nothing here runs at import time.  The sandbox PAC's identity (certificate + key) is generated on
first use into ``<data_dir>/sandbox-pac/`` (key file 0600) so its UUIDs and SelloSAT stay
verifiable across restarts, and its stamps and cancellations live in the database
(:class:`~core.pac.sandbox_db.DatabaseSandboxStore`), so a re-sent document still gets its first
UUID after a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.clock import Clock
from core.db.engine import Database
from core.pac.base import Pac
from core.pac.factory import build_pac
from core.pac.sandbox import SandboxIdentity
from core.pac.sandbox_db import DatabaseSandboxStore
from core.sat.trust import SatTrust
from core.secrets.box import SecretBox
from core.settings import Settings
from core.stamping.cancellation import Canceller, CancelStampPolicy
from core.stamping.stamping import PdfRenderer, Stamper, StampingConfig

log = logging.getLogger("timbrado.stamping")


def load_or_create_sandbox_identity(data_dir: Path, now: datetime) -> SandboxIdentity:
    folder = data_dir / "sandbox-pac"
    cert, key = folder / "certificate.pem", folder / "private-key.pem"
    if cert.is_file() and key.is_file():
        return SandboxIdentity(certificate_pem=cert.read_bytes(), private_key_pem=key.read_bytes())
    identity = SandboxIdentity.generate(now=now)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(identity.private_key_pem)
    cert.write_bytes(identity.certificate_pem)
    log.warning("generated the sandbox PAC identity in %s (REPs it stamps have no fiscal value)", folder)
    return identity


def default_pdf_renderer() -> PdfRenderer | None:
    """``core.documents.rep_pdf.render_rep_pdf`` when present (the REP's printed representation)."""
    try:
        from core.documents.rep_pdf import render_rep_pdf
    except ImportError:  # pragma: no cover - the PDF module ships separately
        return None

    def render(xml: bytes, logo: bytes | None) -> bytes:
        return render_rep_pdf(xml, logo=logo)

    return render


def file_logo_loader(files_dir: Path) -> Callable[[str], bytes | None]:
    def load(sha256: str) -> bytes | None:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            return None
        for candidate in (files_dir / sha256[:2] / sha256, files_dir / sha256):
            if candidate.is_file():
                return candidate.read_bytes()
        return None

    return load


@dataclass
class StampingRuntime:
    pac: Pac
    stamper: Stamper
    canceller: Canceller


def build_pac_from_settings(settings: Settings, clock: Clock, trust: SatTrust, db: Database | None = None) -> Pac:
    """The configured PAC; the sandbox keeps its stamps and cancellations in ``db`` when given
    (so its duplicate answers and ``recover`` survive a restart), else in memory."""
    options: dict[str, str] = {}
    if settings.pac == "finkok":
        options = {"username": settings.pac_user, "password": settings.pac_password}
    elif settings.pac == "sw":
        options = {"user": settings.pac_user, "password": settings.pac_password, "token": settings.pac_token}
        options = {k: v for k, v in options.items() if v}
    if settings.pac_url:
        options["base_url"] = settings.pac_url
    signer = (
        load_or_create_sandbox_identity(settings.data_dir, clock.now()).signer() if settings.pac == "sandbox" else None
    )
    return build_pac(
        settings.pac,  # type: ignore[arg-type]
        clock=clock,
        options=options,
        sandbox_signer=signer,
        sandbox_store=DatabaseSandboxStore(db) if db is not None and settings.pac == "sandbox" else None,
        trust=trust,
        latency=settings.pac_latency_ms / 1000.0,
        test_environment=settings.pac_test_environment,
        timeout=settings.pac_timeout_seconds,
    )


def build_stamping(
    settings: Settings,
    db: Database,
    clock: Clock,
    box: SecretBox,
    trust: SatTrust,
    *,
    files_dir: Path | None = None,
    pac: Pac | None = None,
) -> StampingRuntime:
    the_pac = pac or build_pac_from_settings(settings, clock, trust, db)
    address = settings.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
    config = StampingConfig(
        mail_from=settings.mail_from,
        mail_domain=address.rsplit("@", 1)[-1] if "@" in address else "localhost",
        data_dir=settings.data_dir,
    )
    stamper = Stamper(
        db,
        the_pac,
        box,
        clock,
        config,
        pdf_renderer=default_pdf_renderer(),
        logo_loader=file_logo_loader(files_dir or settings.data_dir / "files"),
    )
    canceller = Canceller(db, the_pac, box, clock, CancelStampPolicy(settings.cancel_stamp_policy))
    return StampingRuntime(the_pac, stamper, canceller)
