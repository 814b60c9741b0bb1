"""Module enablement use cases.

Every function runs inside the caller's transaction (``Database.transaction()``) and writes the
jobs its decision causes (e-mails, Slack card updates) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.clients import service as clients
from core.clients.models import Client
from core.enablement.models import OPEN_STATUSES, ConfigRequest, RequestSource, RequestStatus
from core.errors import Conflict, Invalid, NotFound
from core.inbox.models import InboundMail, MailboxState, MailFailure
from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition
from core.jobs.queue import enqueue
from core.notifications.models import OutboundEmail
from core.notifications.outbox import EmailSpec, queue_email

CONFIG_SUBJECT = "Configuración del Módulo de Timbrado de complementos de pago"
SLACK_SYNC_REQUEST = "slack.sync_request"
SLACK_REQUEST_NOTE = "slack.request_note"
MAX_REASON = 2000
MAX_EXCERPT = 2000

STATUS_LABELS = {
    RequestStatus.RECEIVED.value: "Recibida",
    RequestStatus.VERIFIED.value: "Verificada",
    RequestStatus.ENABLED.value: "Habilitada",
    RequestStatus.REJECTED.value: "Rechazada",
}


def ticket_for(request_id: int) -> str:
    return f"TCP-{request_id:06d}"


@dataclass(frozen=True, slots=True)
class EnablementConfig:
    """What the use cases need to know about the deployment."""

    mail_from: str
    mail_domain: str
    slack_enabled: bool


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    ticket: str
    source: str
    status: str
    status_label: str
    client_id: int | None
    client_name: str | None
    client_rfc: str | None
    client_proveedores_plus: bool | None
    client_timbrado_enabled: bool | None
    unidentified: bool
    requester_email: str
    requester_name: str
    subject: str
    excerpt: str
    external_ticket_id: str | None
    pp_checked_at: datetime | None
    pp_checked_by: str | None
    pp_result: bool | None
    decided_at: datetime | None
    decided_by: str | None
    decided_via: str | None
    decision_reason: str | None
    slack_channel: str | None
    slack_ts: str | None
    created_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class InboundFacts:
    """What the mail driver extracted from one raw message (the core never parses MIME)."""

    dedup_key: str
    message_id: str | None
    from_address: str
    from_name: str
    subject: str
    body_excerpt: str
    thread_ids: tuple[str, ...]  # In-Reply-To and References, normalised
    ticket: str | None
    subject_matches: bool
    automatic_reason: str | None
    rfcs: tuple[str, ...]
    size: int
    raw_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """``approved`` is False when the client lacks Proveedores Plus (the failed check is recorded)."""

    request: RequestView
    approved: bool
    message: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    request: RequestView
    has_proveedores_plus: bool


class AlreadyResolved(Conflict):
    code = "already_resolved"


class ClientNotIdentified(Conflict):
    code = "client_not_identified"


# ---------------------------------------------------------------------------- reading
async def _load(session: AsyncSession, request_id: int, *, lock: bool = False) -> ConfigRequest:
    req = await session.get(ConfigRequest, request_id, with_for_update=lock, populate_existing=lock)
    if req is None:
        raise NotFound("No se encontró la solicitud.")
    return req


async def _view(session: AsyncSession, req: ConfigRequest) -> RequestView:
    client = await session.get(Client, req.client_id) if req.client_id else None
    return RequestView(
        id=req.id,
        ticket=req.ticket or ticket_for(req.id),
        source=req.source,
        status=req.status,
        status_label=STATUS_LABELS.get(req.status, req.status),
        client_id=req.client_id,
        client_name=client.name if client else None,
        client_rfc=client.rfc if client else None,
        client_proveedores_plus=client.proveedores_plus if client else None,
        client_timbrado_enabled=client.timbrado_enabled if client else None,
        unidentified=req.unidentified,
        requester_email=req.requester_email,
        requester_name=req.requester_name,
        subject=req.subject,
        excerpt=req.excerpt,
        external_ticket_id=req.external_ticket_id,
        pp_checked_at=req.pp_checked_at,
        pp_checked_by=req.pp_checked_by,
        pp_result=req.pp_result,
        decided_at=req.decided_at,
        decided_by=req.decided_by,
        decided_via=req.decided_via,
        decision_reason=req.decision_reason,
        slack_channel=req.slack_channel,
        slack_ts=req.slack_ts,
        created_at=req.created_at,
    )


async def get_request(session: AsyncSession, request_id: int) -> RequestView:
    return await _view(session, await _load(session, request_id))


async def find_by_ticket(session: AsyncSession, ticket: str) -> RequestView | None:
    req = await session.scalar(select(ConfigRequest).where(ConfigRequest.ticket == ticket.strip().upper()))
    return await _view(session, req) if req else None


async def list_requests(
    session: AsyncSession,
    *,
    status: str | None = None,
    open_only: bool = False,
    query: str = "",
    client_id: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[RequestView]:
    """Newest first; keyset pagination with ``before_id``."""
    stmt = select(ConfigRequest).order_by(ConfigRequest.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(ConfigRequest.status == status)
    if open_only:
        stmt = stmt.where(ConfigRequest.status.in_(OPEN_STATUSES))
    if client_id is not None:
        stmt = stmt.where(ConfigRequest.client_id == client_id)
    if before_id is not None:
        stmt = stmt.where(ConfigRequest.id < before_id)
    q = query.strip()
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.outerjoin(Client, Client.id == ConfigRequest.client_id).where(
            or_(
                func.lower(ConfigRequest.ticket).like(like),
                func.lower(ConfigRequest.requester_email).like(like),
                func.lower(func.coalesce(Client.name, "")).like(like),
                func.lower(func.coalesce(Client.rfc, "")).like(like),
            )
        )
    return [await _view(session, r) for r in await session.scalars(stmt)]


async def count_open(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).where(ConfigRequest.status.in_(OPEN_STATUSES))) or 0)


# ---------------------------------------------------------------------------- notifications
def _thread(req: ConfigRequest) -> tuple[str | None, list[str]]:
    refs = (req.thread_references or "").split()
    return req.origin_message_id, refs


def _reply_subject(req: ConfigRequest) -> str:
    base = req.subject if req.source == RequestSource.EMAIL.value and req.subject else CONFIG_SUBJECT
    if base.lower().startswith(("re:", "re :")):
        base = base.split(":", 1)[1].strip()
    ticket = req.ticket or ticket_for(req.id)
    if ticket not in base:
        base = f"{base} [{ticket}]"
    return f"Re: {base}"


async def _email(
    session: AsyncSession,
    req: ConfigRequest,
    template: str,
    cfg: EnablementConfig,
    now: datetime,
    *,
    key: str,
    auto_reply: bool,
    context: dict[str, Any],
) -> OutboundEmail | None:
    in_reply_to, refs = _thread(req)
    email = await queue_email(
        session,
        EmailSpec(
            template=template,
            to=[req.requester_email],
            subject=_reply_subject(req),
            context={"ticket": req.ticket, "requester_name": req.requester_name, **context},
            key=key,
            in_reply_to=in_reply_to,
            references=refs,
            auto_reply=auto_reply,
            tag=req.ticket or "",
            related_type="config_request",
            related_id=req.id,
        ),
        mail_from=cfg.mail_from,
        domain=cfg.mail_domain,
        now=now,
    )
    if email is not None:
        # Later messages of the thread reference this one too.
        refs = [*refs, email.message_id] if email.message_id not in refs else refs
        req.thread_references = " ".join(refs[-20:])
    return email


async def _sync_slack(
    session: AsyncSession, req: ConfigRequest, cfg: EnablementConfig, now: datetime, reason: str
) -> None:
    if not cfg.slack_enabled:
        return
    await enqueue(
        session,
        kind=SLACK_SYNC_REQUEST,
        payload={"request_id": req.id},
        key=f"slack:request:{req.id}:{reason}:{now.timestamp()}",
        now=now,
    )


async def _slack_note(
    session: AsyncSession, req: ConfigRequest, cfg: EnablementConfig, now: datetime, text: str, key: str
) -> None:
    if not cfg.slack_enabled:
        return
    await enqueue(
        session,
        kind=SLACK_REQUEST_NOTE,
        payload={"request_id": req.id, "text": text[:2900]},
        key=f"slack:note:{req.id}:{key}",
        now=now,
    )


# ---------------------------------------------------------------------------- opening
async def _open(
    session: AsyncSession,
    *,
    source: RequestSource,
    requester_email: str,
    requester_name: str,
    subject: str,
    excerpt: str,
    client_id: int | None,
    external_ticket_id: str | None,
    origin_message_id: str | None,
    thread_references: list[str],
    actor: Actor,
    cfg: EnablementConfig,
    now: datetime,
    acknowledge: bool,
) -> ConfigRequest:
    req = ConfigRequest(
        source=source.value,
        status=RequestStatus.RECEIVED.value,
        client_id=client_id,
        unidentified=client_id is None,
        requester_email=requester_email.strip().lower()[:320],
        requester_name=" ".join(requester_name.split())[:300],
        subject=" ".join(subject.split())[:998] or CONFIG_SUBJECT,
        excerpt=excerpt[:MAX_EXCERPT],
        external_ticket_id=external_ticket_id,
        origin_message_id=origin_message_id,
        thread_references=" ".join([*thread_references, origin_message_id] if origin_message_id else thread_references)
        or None,
        created_at=now,
        updated_at=now,
    )
    session.add(req)
    await session.flush()
    req.ticket = ticket_for(req.id)
    await record(
        session,
        actor=actor,
        action="request.received",
        subject_type="config_request",
        subject_id=req.id,
        at=now,
        after={"status": req.status, "source": req.source, "client_id": client_id, "ticket": req.ticket},
    )
    if acknowledge:
        await _email(
            session,
            req,
            "request_received",
            cfg,
            now,
            key=f"request:{req.id}:ack",
            auto_reply=source == RequestSource.EMAIL,
            context={"unidentified": client_id is None},
        )
    await _sync_slack(session, req, cfg, now, "opened")
    return req


async def open_request(
    session: AsyncSession,
    *,
    source: RequestSource,
    requester_email: str,
    requester_name: str = "",
    subject: str = CONFIG_SUBJECT,
    body: str = "",
    client_id: int | None = None,
    external_ticket_id: str | None = None,
    actor: Actor,
    cfg: EnablementConfig,
    now: datetime,
) -> tuple[RequestView, bool]:
    """Open a request from the support desk, the API or the CLI.  Returns (request, created).

    A support-desk ticket already received (same ``external_ticket_id``) returns the existing
    request: webhook retries never open two.
    """
    email = requester_email.strip().lower()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise Invalid("El correo del solicitante no es válido.", code="invalid_email")
    if external_ticket_id:
        existing = await session.scalar(
            select(ConfigRequest).where(ConfigRequest.external_ticket_id == external_ticket_id)
        )
        if existing is not None:
            return await _view(session, existing), False
    if client_id is not None:
        if await session.get(Client, client_id) is None:
            raise NotFound("No se encontró el cliente.")
    else:
        client_id = await clients.identify_sender(session, email)
    req = await _open(
        session,
        source=source,
        requester_email=email,
        requester_name=requester_name,
        subject=subject,
        excerpt=body.strip(),
        client_id=client_id,
        external_ticket_id=external_ticket_id,
        origin_message_id=None,
        thread_references=[],
        actor=actor,
        cfg=cfg,
        now=now,
        acknowledge=True,
    )
    return await _view(session, req), True


# ---------------------------------------------------------------------------- inbound mail
async def last_uid(session: AsyncSession, mailbox: str, uidvalidity: int) -> int:
    value = await session.scalar(
        select(MailboxState.last_uid).where(MailboxState.mailbox == mailbox, MailboxState.uidvalidity == uidvalidity)
    )
    return int(value or 0)


async def _advance(session: AsyncSession, mailbox: str, uidvalidity: int, uid: int, now: datetime) -> None:
    """Raise the recorded position to ``uid`` (never lower it): one upsert on both dialects."""
    if uid <= 0:
        return
    insert_fn = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert_fn(MailboxState).values(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=uid, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["mailbox", "uidvalidity"],
        set_={"last_uid": stmt.excluded.last_uid, "updated_at": stmt.excluded.updated_at},
        where=MailboxState.last_uid < stmt.excluded.last_uid,
    )
    await session.execute(stmt)


async def _find_thread_request(session: AsyncSession, facts: InboundFacts) -> ConfigRequest | None:
    if facts.ticket:
        req = await session.scalar(select(ConfigRequest).where(ConfigRequest.ticket == facts.ticket.upper()))
        if req is not None:
            return req
    ids = [i for i in facts.thread_ids if i][:50]
    if not ids:
        return None
    req = await session.scalar(
        select(ConfigRequest).where(ConfigRequest.origin_message_id.in_(ids)).order_by(ConfigRequest.id).limit(1)
    )
    if req is not None:
        return req
    related = await session.scalar(
        select(OutboundEmail.related_id)
        .where(OutboundEmail.message_id.in_(ids), OutboundEmail.related_type == "config_request")
        .limit(1)
    )
    if related is not None and str(related).isdigit():
        return await session.get(ConfigRequest, int(related))
    return None


class MailNotRecorded(Exception):
    """``ingest_mail`` could not record the message (its effects were rolled back)."""


async def _recorded_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    unique = list(dict.fromkeys(keys))
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        found.update(await session.scalars(select(InboundMail.dedup_key).where(InboundMail.dedup_key.in_(chunk))))
    return found


async def ingest_mails(
    session: AsyncSession,
    items: Sequence[tuple[InboundFacts, MailboxPosition]],
    *,
    cfg: EnablementConfig,
    now: datetime,
) -> list[IngestResult]:
    """Record a batch of inbound messages, their effects and the mailbox position in the caller's
    transaction.

    Each message runs in its own SAVEPOINT.  When one raises, it alone is rolled back, it gets a
    ``FAILED`` result and processing stops: later messages get no result and the position written
    covers only the messages before it (see :meth:`core.inbox.ports.MailSink.ingest_batch`).
    Duplicates (already recorded, or repeated inside the batch) are answered without writing.
    """
    results: list[IngestResult] = []
    seen = await _recorded_keys(session, [facts.dedup_key for facts, _ in items])
    high: dict[tuple[str, int], int] = {}
    for facts, position in items:
        if facts.dedup_key in seen:
            result = IngestResult(IngestOutcome.DUPLICATE, detail="mensaje ya registrado")
        else:
            try:
                async with session.begin_nested():
                    result = await _ingest_one(session, facts, position, cfg=cfg, now=now)
            except Exception as exc:  # the message alone is rolled back; stop here
                results.append(IngestResult(IngestOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:500]))
                break
            seen.add(facts.dedup_key)
        results.append(result)
        box = (position.mailbox, position.uidvalidity)
        high[box] = max(high.get(box, 0), position.uid)
    for (mailbox, uidvalidity), uid in high.items():
        await _advance(session, mailbox, uidvalidity, uid, now)
    return results


async def ingest_mail(
    session: AsyncSession,
    facts: InboundFacts,
    position: MailboxPosition,
    *,
    cfg: EnablementConfig,
    now: datetime,
) -> IngestResult:
    """Record one inbound message and its effect, and advance the mailbox position, atomically.

    Raises :class:`MailNotRecorded` when the message could not be recorded.
    """
    (result,) = await ingest_mails(session, [(facts, position)], cfg=cfg, now=now)
    if result.outcome is IngestOutcome.FAILED:
        raise MailNotRecorded(result.detail)
    return result


async def _ingest_one(
    session: AsyncSession,
    facts: InboundFacts,
    position: MailboxPosition,
    *,
    cfg: EnablementConfig,
    now: datetime,
) -> IngestResult:

    def recorded(outcome: IngestOutcome, request_id: int | None, detail: str) -> InboundMail:
        row = InboundMail(
            dedup_key=facts.dedup_key,
            message_id=facts.message_id,
            mailbox=position.mailbox,
            uidvalidity=position.uidvalidity,
            uid=position.uid,
            from_address=facts.from_address[:320],
            subject=facts.subject[:998],
            outcome=outcome.value,
            detail=detail,
            request_id=request_id,
            size=facts.size,
            raw_sha256=facts.raw_sha256,
            received_at=now,
        )
        session.add(row)
        return row

    thread = await _find_thread_request(session, facts)
    if facts.automatic_reason:
        recorded(IngestOutcome.AUTOMATIC, thread.id if thread else None, facts.automatic_reason)
        return IngestResult(
            IngestOutcome.AUTOMATIC,
            request_id=thread.id if thread else None,
            ticket=thread.ticket if thread else None,
            detail=facts.automatic_reason,
        )
    if thread is not None:
        recorded(IngestOutcome.REPLY, thread.id, "respuesta a una solicitud")
        thread.updated_at = now
        note = f"📧 {facts.from_address} respondió en el hilo de {thread.ticket}:\n> {facts.body_excerpt[:500]}"
        await _slack_note(session, thread, cfg, now, note, facts.dedup_key[:80])
        await record(
            session,
            actor=Actor.system(),
            action="request.reply_received",
            subject_type="config_request",
            subject_id=thread.id,
            at=now,
            after={"from": facts.from_address, "message_id": facts.message_id},
        )
        return IngestResult(IngestOutcome.REPLY, request_id=thread.id, ticket=thread.ticket)
    if not facts.subject_matches:
        recorded(IngestOutcome.IGNORED, None, "el asunto no corresponde a una solicitud de configuración")
        return IngestResult(IngestOutcome.IGNORED, detail="asunto no reconocido")

    client_id = await clients.identify_sender(session, facts.from_address)
    if client_id is None and facts.rfcs:
        client_id = await clients.identify_by_rfc(session, list(facts.rfcs))
    req = await _open(
        session,
        source=RequestSource.EMAIL,
        requester_email=facts.from_address,
        requester_name=facts.from_name,
        subject=facts.subject,
        excerpt=facts.body_excerpt,
        client_id=client_id,
        external_ticket_id=None,
        origin_message_id=facts.message_id,
        thread_references=[i for i in facts.thread_ids if i != facts.message_id][-10:],
        actor=Actor.system(),
        cfg=cfg,
        now=now,
        acknowledge=True,
    )
    row = recorded(IngestOutcome.NEW_REQUEST, req.id, "")
    row.request_id = req.id
    return IngestResult(IngestOutcome.NEW_REQUEST, request_id=req.id, ticket=req.ticket)


async def record_mail_failure(
    session: AsyncSession, key: str, position: MailboxPosition, error: str, now: datetime
) -> int:
    row = await session.scalar(select(MailFailure).where(MailFailure.key == key).with_for_update())
    if row is None:
        row = MailFailure(key=key, mailbox=position.mailbox, uid=position.uid, attempts=0, updated_at=now)
        session.add(row)
    row.attempts += 1
    row.last_error = error[:2000]
    row.updated_at = now
    await session.flush()
    return row.attempts


# ---------------------------------------------------------------------------- decisions
def _resolved_message(req: ConfigRequest) -> str:
    when = req.decided_at.strftime("%d/%m/%Y %H:%M UTC") if req.decided_at else ""
    verb = "aprobada" if req.status == RequestStatus.ENABLED.value else "rechazada"
    return f"La solicitud {req.ticket} ya fue resuelta por {req.decided_by or 'otra persona'} ({verb}, {when})."


async def verify(
    session: AsyncSession, request_id: int, *, actor: Actor, cfg: EnablementConfig, now: datetime
) -> VerifyResult:
    """Check (again) whether the request's client has Proveedores Plus, and record the check."""
    req = await _load(session, request_id, lock=True)
    if req.status not in OPEN_STATUSES:
        raise AlreadyResolved(_resolved_message(req))
    if req.client_id is None:
        raise ClientNotIdentified(
            f"La solicitud {req.ticket} no tiene un cliente identificado: vincúlela a un cliente antes de verificar."
        )
    client = await session.get(Client, req.client_id)
    assert client is not None
    has_pp = client.proveedores_plus
    before = req.status
    req.pp_checked_at = now
    req.pp_checked_by = actor.label
    req.pp_result = has_pp
    if has_pp:
        req.status = RequestStatus.VERIFIED.value
    req.updated_at = now
    await record(
        session,
        actor=actor,
        action="request.verified",
        subject_type="config_request",
        subject_id=req.id,
        at=now,
        before={"status": before},
        after={"status": req.status, "proveedores_plus": has_pp},
    )
    await _sync_slack(session, req, cfg, now, "verified")
    return VerifyResult(await _view(session, req), has_pp)


async def _decide(
    session: AsyncSession, req_id: int, new_status: RequestStatus, actor: Actor, now: datetime, reason: str | None
) -> ConfigRequest:
    """Move an open request to a final state.  Exactly one concurrent decision wins."""
    result = await session.execute(
        update(ConfigRequest)
        .where(ConfigRequest.id == req_id, ConfigRequest.status.in_(OPEN_STATUSES))
        .values(
            status=new_status.value,
            decided_at=now,
            decided_by=actor.label,
            decided_via=actor.driver.value,
            decision_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    req = await _load(session, req_id, lock=False)
    await session.refresh(req)
    if getattr(result, "rowcount", 0) != 1:
        raise AlreadyResolved(_resolved_message(req))
    return req


async def approve(
    session: AsyncSession, request_id: int, *, actor: Actor, cfg: EnablementConfig, now: datetime
) -> ApprovalResult:
    """Enable the module for the request's client.  Proveedores Plus is re-checked now.

    When the client lacks it, nothing is decided: the failed check is recorded (and the Slack card
    refreshed) and the result says why, so the caller can tell the person who clicked.
    """
    req = await _load(session, request_id, lock=True)
    if req.status not in OPEN_STATUSES:
        raise AlreadyResolved(_resolved_message(req))
    if req.client_id is None:
        raise ClientNotIdentified(
            f"La solicitud {req.ticket} no tiene un cliente identificado: vincúlela a un cliente antes de aprobar."
        )
    client = await session.get(Client, req.client_id, with_for_update=True, populate_existing=True)
    assert client is not None
    if not client.proveedores_plus:
        req.pp_checked_at, req.pp_checked_by, req.pp_result = now, actor.label, False
        req.updated_at = now
        await record(
            session,
            actor=actor,
            action="request.approval_refused",
            subject_type="config_request",
            subject_id=req.id,
            at=now,
            after={"proveedores_plus": False},
        )
        await _sync_slack(session, req, cfg, now, "pp-missing")
        message = f"No se puede aprobar {req.ticket}: el cliente {client.name} no tiene el módulo Proveedores Plus."
        return ApprovalResult(await _view(session, req), False, message)
    before = req.status
    req = await _decide(session, request_id, RequestStatus.ENABLED, actor, now, None)
    req.pp_checked_at, req.pp_checked_by, req.pp_result = now, actor.label, True
    client_before = {"timbrado_enabled": client.timbrado_enabled}
    if not client.timbrado_enabled:
        client.timbrado_enabled = True
        client.timbrado_enabled_at = now
        client.updated_at = now
    await record(
        session,
        actor=actor,
        action="request.approved",
        subject_type="config_request",
        subject_id=req.id,
        at=now,
        before={"status": before},
        after={"status": req.status},
    )
    await record(
        session,
        actor=actor,
        action="client.timbrado_enabled",
        subject_type="client",
        subject_id=client.id,
        at=now,
        before=client_before,
        after={"timbrado_enabled": True},
        reason=f"solicitud {req.ticket}",
    )
    await _email(
        session,
        req,
        "request_approved",
        cfg,
        now,
        key=f"request:{req.id}:approved",
        auto_reply=False,
        context={"client_name": client.name},
    )
    await _sync_slack(session, req, cfg, now, "approved")
    return ApprovalResult(
        await _view(session, req), True, f"Solicitud {req.ticket} aprobada: módulo habilitado para {client.name}."
    )


async def reject(
    session: AsyncSession, request_id: int, *, reason: str, actor: Actor, cfg: EnablementConfig, now: datetime
) -> RequestView:
    reason = reason.strip()
    if not reason:
        raise Invalid("Escriba el motivo del rechazo; se enviará al solicitante.", code="reason_required")
    if len(reason) > MAX_REASON:
        raise Invalid(f"El motivo no puede exceder {MAX_REASON} caracteres.", code="reason_too_long")
    req = await _load(session, request_id, lock=True)
    if req.status not in OPEN_STATUSES:
        raise AlreadyResolved(_resolved_message(req))
    before = req.status
    req = await _decide(session, request_id, RequestStatus.REJECTED, actor, now, reason)
    await record(
        session,
        actor=actor,
        action="request.rejected",
        subject_type="config_request",
        subject_id=req.id,
        at=now,
        before={"status": before},
        after={"status": req.status},
        reason=reason,
    )
    await _email(
        session,
        req,
        "request_rejected",
        cfg,
        now,
        key=f"request:{req.id}:rejected",
        auto_reply=False,
        context={"reason": reason},
    )
    await _sync_slack(session, req, cfg, now, "rejected")
    return await _view(session, req)


async def link_client(
    session: AsyncSession, request_id: int, client_id: int, *, actor: Actor, cfg: EnablementConfig, now: datetime
) -> RequestView:
    req = await _load(session, request_id, lock=True)
    if req.status not in OPEN_STATUSES:
        raise AlreadyResolved(_resolved_message(req))
    if await session.get(Client, client_id) is None:
        raise NotFound("No se encontró el cliente.")
    before = {"client_id": req.client_id}
    req.client_id = client_id
    req.unidentified = False
    req.pp_result = None
    req.updated_at = now
    await record(
        session,
        actor=actor,
        action="request.client_linked",
        subject_type="config_request",
        subject_id=req.id,
        at=now,
        before=before,
        after={"client_id": client_id},
    )
    await _sync_slack(session, req, cfg, now, f"linked-{client_id}")
    return await _view(session, req)


async def set_slack_message(session: AsyncSession, request_id: int, channel: str, ts: str) -> None:
    req = await _load(session, request_id, lock=True)
    req.slack_channel = channel
    req.slack_ts = ts
