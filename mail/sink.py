"""The core-backed :class:`core.inbox.ports.MailSink`: parse, keep the raw message, record its effect.

Parsing happens here, in the mail driver (the core never parses MIME); the core receives the
facts it needs (:class:`core.enablement.service.InboundFacts`) and records the message, its effect
and the mailbox position in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from core.clock import Clock
from core.db.engine import Database
from core.enablement import service
from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition
from mail.parsing import InboundMessage, find_rfcs, find_ticket_token, parse_message
from mail.subject import match_config_subject

log = logging.getLogger("timbrado.mail")
EXCERPT_CHARS = 2000


def _bracketed(message_id: str | None) -> str | None:
    """Header form (``<local@domain>``) of a normalised Message-ID, as stored for outgoing mail."""
    return f"<{message_id}>" if message_id else None


def facts_from(message: InboundMessage, raw_size: int, raw_sha256: str | None) -> service.InboundFacts:
    match = match_config_subject(message.subject)
    return service.InboundFacts(
        dedup_key=message.dedup_key,
        message_id=_bracketed(message.message_id),
        from_address=(message.from_address or "").lower(),
        from_name=message.from_name,
        subject=message.subject,
        body_excerpt=message.body_text[:EXCERPT_CHARS].strip(),
        thread_ids=tuple(f"<{i}>" for i in message.thread_ids),
        ticket=find_ticket_token(message),
        subject_matches=match.matched,
        automatic_reason=message.no_ack_reason,
        rfcs=tuple(find_rfcs(message.body_text[:20000])),
        size=raw_size,
        raw_sha256=raw_sha256,
    )


class RawMailStore:
    """Raw messages kept by content hash under ``<data_dir>/mail`` (written once, atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, raw: bytes) -> str:
        sha = hashlib.sha256(raw).hexdigest()
        target = self.root / sha[:2] / f"{sha}.eml"
        if target.exists():
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def path_for(self, sha: str) -> Path:
        return self.root / sha[:2] / f"{sha}.eml"


class CoreMailSink:
    def __init__(self, db: Database, clock: Clock, cfg: service.EnablementConfig, store: RawMailStore) -> None:
        self.db = db
        self.clock = clock
        self.cfg = cfg
        self.store = store

    async def last_uid(self, mailbox: str, uidvalidity: int) -> int:
        async with self.db.session() as session:
            return await service.last_uid(session, mailbox, uidvalidity)

    async def ingest(self, raw: bytes, position: MailboxPosition) -> IngestResult:
        # Parsing a large message takes milliseconds of CPU: keep the event loop free.
        message, sha = await asyncio.to_thread(self._parse_and_store, raw)
        if "parse_failed" in message.defects:
            return IngestResult(IngestOutcome.UNPROCESSABLE, detail="no se pudo interpretar el mensaje")
        facts = facts_from(message, len(raw), sha)
        async with self.db.transaction() as session:
            result = await service.ingest_mail(session, facts, position, cfg=self.cfg, now=self.clock.now())
        log.info(
            "inbound mail %s",
            result.outcome.value,
            extra={"mailbox": position.mailbox, "uid": position.uid, "ticket": result.ticket},
        )
        return result

    def _parse_and_store(self, raw: bytes) -> tuple[InboundMessage, str]:
        return parse_message(raw), self.store.put(raw)

    async def record_failure(self, raw: bytes | None, position: MailboxPosition, error: str) -> int:
        key = (
            parse_message(raw).dedup_key
            if raw is not None
            else f"pos:{position.mailbox}:{position.uidvalidity}:{position.uid}"
        )
        async with self.db.transaction() as session:
            return await service.record_mail_failure(session, key, position, error, self.clock.now())
