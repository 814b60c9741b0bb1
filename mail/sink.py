"""The core-backed :class:`core.inbox.ports.MailSink`: parse, keep the raw message, record its effect.

Parsing happens here, in the mail driver (the core never parses MIME); the core receives the
facts it needs (:class:`core.enablement.service.InboundFacts`) and records the message, its effect
and the mailbox position in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence

from core.clock import Clock
from core.db.engine import Database
from core.enablement import service
from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition
from mail.parsing import InboundMessage, find_rfcs, find_ticket_token, parse_message
from mail.raw_store import RawMailStore
from mail.subject import match_config_subject

__all__ = ["CoreMailSink", "RawMailStore", "facts_from", "parse_facts"]

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


def parse_facts(raw: bytes) -> service.InboundFacts | None:
    """The facts of one raw message (None when it cannot be interpreted).  Pure CPU, no I/O."""
    message = parse_message(raw, recipients=False)
    if "parse_failed" in message.defects:
        return None
    return facts_from(message, len(raw), hashlib.sha256(raw).hexdigest())


def parse_all(raws: list[bytes]) -> list[service.InboundFacts | None]:
    return [parse_facts(raw) for raw in raws]


class CoreMailSink:
    """Parses a batch in a thread while another thread keeps the raw messages, then records the
    batch in one transaction."""

    def __init__(self, db: Database, clock: Clock, cfg: service.EnablementConfig, store: RawMailStore) -> None:
        self.db = db
        self.clock = clock
        self.cfg = cfg
        self.store = store

    async def last_uid(self, mailbox: str, uidvalidity: int) -> int:
        async with self.db.session() as session:
            return await service.last_uid(session, mailbox, uidvalidity)

    async def ingest(self, raw: bytes, position: MailboxPosition) -> IngestResult:
        (result,) = await self.ingest_batch([(raw, position)])
        return result

    async def ingest_batch(self, items: Sequence[tuple[bytes, MailboxPosition]]) -> list[IngestResult]:
        """Parse (and store) the whole batch off the event loop, then record it in one transaction."""
        if not items:
            return []
        raws = [raw for raw, _ in items]
        # Keep the raw messages (file I/O, in a thread) while the batch is parsed (another thread).
        kept = asyncio.ensure_future(asyncio.to_thread(self.store.put_many, raws))
        try:
            parsed = await self._parse_batch(raws)
        except BaseException:
            await asyncio.gather(kept, return_exceptions=True)
            raise
        results: list[IngestResult | None] = [None] * len(items)
        wanted: list[tuple[service.InboundFacts, MailboxPosition]] = []
        where: list[int] = []
        for i, (facts, (_, position)) in enumerate(zip(parsed, items, strict=True)):
            if facts is None:
                results[i] = IngestResult(IngestOutcome.UNPROCESSABLE, detail="no se pudo interpretar el mensaje")
            else:
                wanted.append((facts, position))
                where.append(i)
        # Every raw message is stored before the transaction starts (a recorded message always has
        # its raw copy), and the SQLite write lock is not held while files are written.
        await kept
        recorded: list[IngestResult] = []
        if wanted:
            async with self.db.transaction() as session:
                recorded = await service.ingest_mails(session, wanted, cfg=self.cfg, now=self.clock.now())
        for i, recorded_result in zip(where, recorded, strict=False):
            results[i] = recorded_result
        # Stop at the first message that was not recorded: nothing after it counts as handled.
        out: list[IngestResult] = []
        for result, (_, position) in zip(results, items, strict=True):
            if result is None:
                break
            out.append(result)
            log.info(
                "inbound mail %s",
                result.outcome.value,
                extra={"mailbox": position.mailbox, "uid": position.uid, "ticket": result.ticket},
            )
            if result.outcome is IngestOutcome.FAILED:
                break
        return out

    async def _parse_batch(self, raws: list[bytes]) -> list[service.InboundFacts | None]:
        # About a millisecond of CPU per message: off the event loop.  (A worker process was
        # measured too -- bench/inbox.py, docs/benchmarks.md -- and was slower on 2 cores.)
        return await asyncio.to_thread(parse_all, raws)

    async def record_failure(self, raw: bytes | None, position: MailboxPosition, error: str) -> int:
        key = (
            (await asyncio.to_thread(parse_message, raw)).dedup_key
            if raw is not None
            else f"pos:{position.mailbox}:{position.uidvalidity}:{position.uid}"
        )
        async with self.db.transaction() as session:
            return await service.record_mail_failure(session, key, position, error, self.clock.now())
