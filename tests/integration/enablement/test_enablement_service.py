"""Module enablement end to end in the core: mail in, request, decisions, e-mails and jobs out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.audit.models import AuditEvent
from core.audit.service import Actor, ActorKind, Driver
from core.clients import service as clients
from core.clients.models import Client
from core.clock import FrozenClock
from core.db.engine import Database
from core.enablement import service
from core.enablement.models import RequestSource
from core.errors import Conflict, Invalid
from core.inbox.models import InboundMail, MailboxState
from core.inbox.ports import IngestOutcome, MailboxPosition
from core.jobs.models import Job
from core.notifications.models import OutboundEmail
from mail.sink import CoreMailSink
from tests.integration.enablement.conftest import eml

POS = MailboxPosition("INBOX", 7, 1)


async def make_client(
    database: Database,
    clock: FrozenClock,
    *,
    pp: bool = True,
    rfc: str | None = "GAC010101AB1",
    contacts: tuple[str, ...] = ("@grupoacme.com.mx",),
) -> int:
    async with database.transaction() as s:
        view = await clients.create_client(
            s,
            name="Grupo ACME SA de CV",
            rfc=rfc,
            proveedores_plus=pp,
            contacts=list(contacts),
            actor=Actor.system(),
            now=clock.now(),
        )
    return view.id


async def emails(database: Database) -> list[OutboundEmail]:
    async with database.session() as s:
        return list((await s.scalars(select(OutboundEmail).order_by(OutboundEmail.id))).all())


async def job_kinds(database: Database) -> list[str]:
    async with database.session() as s:
        return list((await s.scalars(select(Job.kind).order_by(Job.id))).all())


async def test_config_email_opens_a_request_acknowledged_in_the_same_thread(
    database: Database, sink: CoreMailSink, clock: FrozenClock
) -> None:
    client_id = await make_client(database, clock)
    result = await sink.ingest(eml("config_request_client_domain_sender.eml"), POS)
    assert result.outcome is IngestOutcome.NEW_REQUEST
    assert result.ticket == "TCP-000001"
    async with database.session() as s:
        view = await service.get_request(s, result.request_id or 0)
        state = (await s.scalars(select(MailboxState))).one()
    assert view.client_id == client_id
    assert not view.unidentified
    assert view.requester_email == "lrios@grupoacme.com.mx"
    assert (state.mailbox, state.uidvalidity, state.last_uid) == ("INBOX", 7, 1)
    [ack] = await emails(database)
    assert ack.to_addrs == ["lrios@grupoacme.com.mx"]
    assert "[TCP-000001]" in ack.subject
    assert ack.subject.startswith("Re: ")
    assert ack.in_reply_to == "<client-domain-0001@grupoacme.com.mx>"
    assert "<client-domain-0001@grupoacme.com.mx>" in (ack.references or "")
    assert ack.headers["Auto-Submitted"] == "auto-replied"
    assert ack.message_id.startswith("<TCP-000001.")
    assert "Recibimos tu solicitud [TCP-000001]" in ack.text_body
    assert ack.html_body and "TCP-000001" in ack.html_body
    assert await job_kinds(database) == ["email.send", "slack.sync_request"]


async def test_the_same_mail_fetched_twice_is_recorded_once(database: Database, sink: CoreMailSink) -> None:
    first = await sink.ingest(eml("duplicate_message_id_first.eml"), MailboxPosition("INBOX", 7, 1))
    second = await sink.ingest(eml("duplicate_message_id_second.eml"), MailboxPosition("INBOX", 7, 2))
    again = await sink.ingest(eml("duplicate_message_id_first.eml"), MailboxPosition("INBOX", 8, 1))
    assert first.outcome is IngestOutcome.NEW_REQUEST
    assert second.outcome is again.outcome is IngestOutcome.DUPLICATE
    assert len(await emails(database)) == 1
    assert await sink.last_uid("INBOX", 7) == 2
    assert await sink.last_uid("INBOX", 8) == 1


async def test_unknown_sender_still_gets_a_request_flagged_and_an_rfc_in_the_body_identifies_the_client(
    database: Database, sink: CoreMailSink, clock: FrozenClock
) -> None:
    unknown = await sink.ingest(eml("config_request_no_message_id.eml"), POS)
    async with database.session() as s:
        view = await service.get_request(s, unknown.request_id or 0)
    assert view.unidentified
    assert view.client_id is None
    assert "No pudimos identificar a tu empresa" in (await emails(database))[0].text_body

    client_id = await make_client(database, clock, rfc="CM&990909K12", contacts=())
    by_rfc = await sink.ingest(eml("config_request_unknown_sender_rfc_in_body.eml"), POS)
    async with database.session() as s:
        view = await service.get_request(s, by_rfc.request_id or 0)
    assert view.client_id == client_id


async def test_replies_attach_to_their_request_by_ticket_or_thread_and_automatic_mail_is_never_acknowledged(
    database: Database, sink: CoreMailSink, clock: FrozenClock
) -> None:
    opened = await sink.ingest(eml("config_request_client_domain_sender.eml"), POS)
    ack = (await emails(database))[0]
    reply = (
        f"From: Laura Rios <lrios@grupoacme.com.mx>\r\nTo: soporte@timbrado.test\r\n"
        f"Subject: RE: Recibimos tu solicitud\r\nMessage-ID: <reply-1@grupoacme.com.mx>\r\n"
        f"In-Reply-To: {ack.message_id}\r\nReferences: {ack.message_id}\r\n\r\nAdjunto el RFC: GAC010101AB1\r\n"
    ).encode()
    by_thread = await sink.ingest(reply, POS)
    assert by_thread.outcome is IngestOutcome.REPLY
    assert by_thread.request_id == opened.request_id
    by_ticket = await sink.ingest(
        b"From: x@grupoacme.com.mx\r\nSubject: RE: Configuracion del modulo de timbrado de complementos de pago"
        b" [TCP-000001]\r\nMessage-ID: <r2@x>\r\n\r\nhola\r\n",
        POS,
    )
    assert by_ticket.outcome is IngestOutcome.REPLY
    auto = await sink.ingest(eml("ooo_exchange_respuesta_automatica.eml"), POS)
    assert auto.outcome is IngestOutcome.AUTOMATIC
    bounce = await sink.ingest(eml("bounce_postfix_dsn.eml"), POS)
    assert bounce.outcome is IngestOutcome.AUTOMATIC
    ignored = await sink.ingest(eml("unrelated_invoice_question.eml"), POS)
    assert ignored.outcome is IngestOutcome.IGNORED
    assert len(await emails(database)) == 1  # only the first acknowledgement
    async with database.session() as s:
        outcomes = (await s.scalars(select(InboundMail.outcome).order_by(InboundMail.id))).all()
    assert outcomes == ["new_request", "reply", "reply", "automatic", "automatic", "ignored"]
    assert (await job_kinds(database)).count("slack.request_note") == 2


async def test_approval_enables_the_module_and_sends_one_confirmation_in_the_thread(
    database: Database, sink: CoreMailSink, clock: FrozenClock, cfg: service.EnablementConfig, staff: Actor
) -> None:
    client_id = await make_client(database, clock)
    opened = await sink.ingest(eml("config_request_client_domain_sender.eml"), POS)
    rid = opened.request_id or 0
    async with database.transaction() as s:
        verified = await service.verify(s, rid, actor=staff, cfg=cfg, now=clock.now())
    assert verified.has_proveedores_plus
    assert verified.request.status == "verified"
    clock.advance(timedelta(minutes=5))
    async with database.transaction() as s:
        result = await service.approve(s, rid, actor=staff, cfg=cfg, now=clock.now())
    assert result.approved
    assert result.request.status == "enabled"
    assert result.request.decided_by == "Ana Soporte"
    assert result.request.decided_via == "slack"
    async with database.session() as s:
        client = await s.get(Client, client_id)
        actions = (await s.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert client is not None and client.timbrado_enabled
    assert client.timbrado_enabled_at == clock.now()
    assert actions[-3:] == ["request.verified", "request.approved", "client.timbrado_enabled"]
    ack, confirmation = await emails(database)
    assert confirmation.template == "request_approved"
    assert confirmation.in_reply_to == "<client-domain-0001@grupoacme.com.mx>"
    assert ack.message_id in (confirmation.references or "")
    assert "Grupo ACME SA de CV" in confirmation.text_body
    assert "Auto-Submitted" not in confirmation.headers
    with pytest.raises(service.AlreadyResolved) as info:
        async with database.transaction() as s:
            await service.approve(s, rid, actor=staff, cfg=cfg, now=clock.now())
    assert "ya fue resuelta por Ana Soporte" in info.value.message
    assert len(await emails(database)) == 2


async def test_approval_is_refused_without_proveedores_plus_and_the_check_is_recorded(
    database: Database, sink: CoreMailSink, clock: FrozenClock, cfg: service.EnablementConfig, staff: Actor
) -> None:
    client_id = await make_client(database, clock, pp=False)
    rid = (await sink.ingest(eml("config_request_client_domain_sender.eml"), POS)).request_id or 0
    async with database.transaction() as s:
        result = await service.approve(s, rid, actor=staff, cfg=cfg, now=clock.now())
    assert not result.approved
    assert "no tiene el módulo Proveedores Plus" in result.message
    async with database.session() as s:
        view = await service.get_request(s, rid)
        client = await s.get(Client, client_id)
    assert view.status == "received"
    assert view.pp_result is False
    assert client is not None and not client.timbrado_enabled
    # The prerequisite is re-checked at decision time: enabling it afterwards lets the approval through.
    async with database.transaction() as s:
        await clients.set_proveedores_plus(s, client_id, True, staff, clock.now())
        assert (await service.approve(s, rid, actor=staff, cfg=cfg, now=clock.now())).approved


async def test_rejection_needs_a_reason_and_emails_it(
    database: Database, sink: CoreMailSink, clock: FrozenClock, cfg: service.EnablementConfig, staff: Actor
) -> None:
    rid = (await sink.ingest(eml("config_request_client_domain_sender.eml"), POS)).request_id or 0
    for bad in ("", "   ", "x" * 2001):
        with pytest.raises(Invalid):
            async with database.transaction() as s:
                await service.reject(s, rid, reason=bad, actor=staff, cfg=cfg, now=clock.now())
    async with database.transaction() as s:
        view = await service.reject(
            s, rid, reason="El RFC no corresponde a un cliente activo.", actor=staff, cfg=cfg, now=clock.now()
        )
    assert view.status == "rejected"
    rejection = (await emails(database))[-1]
    assert rejection.template == "request_rejected"
    assert "El RFC no corresponde a un cliente activo." in rejection.text_body
    with pytest.raises(Conflict):
        async with database.transaction() as s:
            await service.approve(s, rid, actor=staff, cfg=cfg, now=clock.now())


async def test_two_concurrent_approvals_have_exactly_one_winner(
    database: Database, sink: CoreMailSink, clock: FrozenClock, cfg: service.EnablementConfig
) -> None:
    await make_client(database, clock)
    rid = (await sink.ingest(eml("config_request_client_domain_sender.eml"), POS)).request_id or 0
    people = [Actor(ActorKind.STAFF, f"slack:U{i}", Driver.SLACK, f"Persona {i}") for i in range(2)]

    async def decide(actor: Actor) -> str:
        try:
            async with database.transaction() as s:
                result = await service.approve(s, rid, actor=actor, cfg=cfg, now=clock.now())
                await asyncio.sleep(0.05)
            return "won" if result.approved else "refused"
        except service.AlreadyResolved as exc:
            return exc.message

    outcomes = await asyncio.gather(*(decide(p) for p in people))
    assert outcomes.count("won") == 1
    loser = next(o for o in outcomes if o != "won")
    assert "ya fue resuelta por Persona" in loser
    async with database.session() as s:
        approvals = await s.scalar(select(func.count()).where(AuditEvent.action == "request.approved"))
        confirmations = await s.scalar(select(func.count()).where(OutboundEmail.template == "request_approved"))
    assert approvals == confirmations == 1


async def test_requests_opened_by_api_or_ticket_are_idempotent_per_external_ticket(
    database: Database, clock: FrozenClock, cfg: service.EnablementConfig, staff: Actor
) -> None:
    client_id = await make_client(database, clock)
    async with database.transaction() as s:
        first, created = await service.open_request(
            s,
            source=RequestSource.TICKET,
            requester_email="ops@grupoacme.com.mx",
            external_ticket_id="ZD-1",
            actor=staff,
            cfg=cfg,
            now=clock.now(),
        )
        again, created_again = await service.open_request(
            s,
            source=RequestSource.TICKET,
            requester_email="ops@grupoacme.com.mx",
            external_ticket_id="ZD-1",
            actor=staff,
            cfg=cfg,
            now=clock.now(),
        )
    assert created and not created_again
    assert first.id == again.id
    assert first.client_id == client_id
    with pytest.raises(Invalid):
        async with database.transaction() as s:
            await service.open_request(
                s, source=RequestSource.API, requester_email="not an email", actor=staff, cfg=cfg, now=clock.now()
            )


async def test_linking_an_unidentified_request_to_a_client(
    database: Database, sink: CoreMailSink, clock: FrozenClock, cfg: service.EnablementConfig, staff: Actor
) -> None:
    rid = (await sink.ingest(eml("config_request_no_message_id.eml"), POS)).request_id or 0
    with pytest.raises(service.ClientNotIdentified):
        async with database.transaction() as s:
            await service.verify(s, rid, actor=staff, cfg=cfg, now=clock.now())
    client_id = await make_client(database, clock, contacts=())
    async with database.transaction() as s:
        view = await service.link_client(s, rid, client_id, actor=staff, cfg=cfg, now=clock.now())
        assert view.client_id == client_id and not view.unidentified
        assert (await service.approve(s, rid, actor=staff, cfg=cfg, now=clock.now())).approved
