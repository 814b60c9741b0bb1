"""Batch ingestion (``MailSink.ingest_batch``): one transaction, a savepoint per message, stop at the
first failure, deduplication inside the batch and across re-fetches (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.engine import Database
from core.enablement import service
from core.enablement.models import ConfigRequest
from core.inbox.models import InboundMail
from core.inbox.ports import IngestOutcome, MailboxPosition
from core.jobs.models import Job
from core.notifications.models import OutboundEmail
from mail.sink import CoreMailSink

SUBJECT = "Configuración del Módulo de Timbrado de complementos de pago"


def mail(n: int, *, sender: str = "ana@cliente.example.mx", subject: str = SUBJECT, **headers: str) -> bytes:
    msg = EmailMessage()
    if sender:
        msg["From"] = f"Ana <{sender}>"
    msg["To"] = "soporte@timbrado.test"
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("message_id", f"<m{n}@cliente.example.mx>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(f"Mensaje {n}")
    return msg.as_bytes()


def batch(*raws: bytes, validity: int = 5, first_uid: int = 1) -> list[tuple[bytes, MailboxPosition]]:
    return [(raw, MailboxPosition("INBOX", validity, first_uid + i)) for i, raw in enumerate(raws)]


async def count(database: Database, model: Any) -> int:
    async with database.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


def outcomes(results: Sequence[Any]) -> list[IngestOutcome]:
    return [r.outcome for r in results]


async def test_a_message_failing_while_planned_stops_the_batch_and_the_position_covers_only_those_before(
    database: Database, sink: CoreMailSink
) -> None:
    # a configuration request without any sender address cannot be acknowledged: it raises
    results = await sink.ingest_batch(batch(mail(1), mail(2, sender=""), mail(3)))
    assert outcomes(results) == [IngestOutcome.NEW_REQUEST, IngestOutcome.FAILED]
    assert results[1].detail
    assert await count(database, ConfigRequest) == 1
    assert await count(database, InboundMail) == 1
    assert await sink.last_uid("INBOX", 5) == 1
    # the rest is handed again later and recorded exactly once
    again = await sink.ingest_batch(batch(mail(3), first_uid=3))
    assert outcomes(again) == [IngestOutcome.NEW_REQUEST]
    assert await count(database, ConfigRequest) == 2


async def test_a_message_refused_by_the_database_is_rolled_back_alone_and_stops_the_batch(
    database: Database, sink: CoreMailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = service._write

    async def write(session: Any, plans: Sequence[Any], now: Any) -> None:
        await real_write(session, plans, now)  # the rows are sent first, then the failure
        if any(p.inbound["dedup_key"].endswith("m2@cliente.example.mx") for p in plans):
            raise RuntimeError("fallo simulado de la base de datos")

    monkeypatch.setattr(service, "_write", write)
    results = await sink.ingest_batch(batch(mail(1), mail(2), mail(3)))
    assert outcomes(results) == [IngestOutcome.NEW_REQUEST, IngestOutcome.FAILED]
    assert "fallo simulado" in results[1].detail
    assert await count(database, ConfigRequest) == 1
    assert await count(database, OutboundEmail) == 1
    assert await count(database, Job) == 2  # acknowledgement + Slack card of message 1 only
    assert await count(database, InboundMail) == 1
    assert await sink.last_uid("INBOX", 5) == 1


async def test_the_same_message_id_twice_in_one_batch_opens_one_request_and_one_acknowledgement(
    database: Database, sink: CoreMailSink
) -> None:
    results = await sink.ingest_batch(batch(mail(1), mail(1, subject=f"RE: {SUBJECT}")))
    assert outcomes(results) == [IngestOutcome.NEW_REQUEST, IngestOutcome.DUPLICATE]
    assert await count(database, ConfigRequest) == 1
    assert await count(database, OutboundEmail) == 1
    assert await sink.last_uid("INBOX", 5) == 2


async def test_a_refetch_after_a_crash_following_the_commit_records_nothing_twice(
    database: Database, sink: CoreMailSink
) -> None:
    mails = [mail(i) for i in range(1, 5)]
    first = await sink.ingest_batch(batch(*mails))
    assert outcomes(first) == [IngestOutcome.NEW_REQUEST] * 4
    # crash before the messages were moved: the same batch comes again, then under a new UIDVALIDITY
    again = await sink.ingest_batch(batch(*mails))
    rescan = await sink.ingest_batch(batch(*mails, validity=6))
    assert outcomes(again) == outcomes(rescan) == [IngestOutcome.DUPLICATE] * 4
    assert await count(database, ConfigRequest) == 4
    assert await count(database, OutboundEmail) == 4
    assert await count(database, InboundMail) == 4
    assert await sink.last_uid("INBOX", 5) == 4
    assert await sink.last_uid("INBOX", 6) == 4


async def test_the_position_never_moves_back(database: Database, sink: CoreMailSink) -> None:
    await sink.ingest_batch(batch(mail(1), mail(2), first_uid=10))
    await sink.ingest_batch(batch(mail(3), first_uid=4))
    assert await sink.last_uid("INBOX", 5) == 11


async def test_a_reply_in_the_same_batch_as_its_request_is_attached_to_it(
    database: Database, sink: CoreMailSink
) -> None:
    reply = mail(
        2, subject=f"RE: {SUBJECT}", In_Reply_To="<m1@cliente.example.mx>", References="<m1@cliente.example.mx>"
    )
    results = await sink.ingest_batch(batch(mail(1), reply))
    assert outcomes(results) == [IngestOutcome.NEW_REQUEST, IngestOutcome.REPLY]
    assert results[1].request_id == results[0].request_id
    assert results[0].ticket == service.ticket_for(results[0].request_id or 0)
    assert await count(database, ConfigRequest) == 1


async def test_a_ticket_is_unique_and_matches_the_request_id_across_batches(
    database: Database, sink: CoreMailSink
) -> None:
    await sink.ingest_batch(batch(mail(1), mail(2)))
    await sink.ingest_batch(batch(mail(3), first_uid=3))
    async with database.session() as s:
        rows = (await s.execute(select(ConfigRequest.id, ConfigRequest.ticket))).all()
    assert sorted(t for _, t in rows) == sorted(service.ticket_for(i) for i, _ in rows)
    assert len(rows) == 3


async def test_an_unparseable_message_in_a_batch_does_not_stop_the_others(sink: CoreMailSink) -> None:
    results = await sink.ingest_batch(batch(mail(1), b"\x00" * 10, mail(3)))
    assert len(results) == 3
    assert results[0].outcome is IngestOutcome.NEW_REQUEST
    assert results[2].outcome is IngestOutcome.NEW_REQUEST
