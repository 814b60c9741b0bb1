"""Module enablement use cases.

Every function runs inside the caller's transaction (``Database.transaction()``) and writes the
jobs its decision causes (e-mails, Slack card updates) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.models import AuditEvent
from core.audit.service import Actor, record
from core.clients import service as clients
from core.clients.models import Client, ClientContact
from core.enablement.models import OPEN_STATUSES, ConfigRequest, RequestSource, RequestStatus
from core.errors import Conflict, Invalid, NotFound
from core.inbox.models import InboundMail, MailboxState, MailFailure
from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition
from core.jobs.queue import enqueue, enqueue_many, job_values
from core.logctx import current_request_id
from core.notifications.models import OutboundEmail
from core.notifications.outbox import EmailSpec, email_values, queue_email, send_job_values

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


@dataclass(frozen=True, slots=True)
class _Known:
    """A request a message may belong to (already stored, or opened earlier in the same batch)."""

    id: int
    ticket: str


@dataclass(slots=True)
class _BatchIndex:
    """What one batch of messages needs to know, read with a few statements for the whole batch."""

    seen: set[str]
    by_ticket: dict[str, _Known] = field(default_factory=dict)
    by_origin: dict[str, _Known] = field(default_factory=dict)  # lowest request id per origin Message-ID
    by_outbound: dict[str, _Known] = field(default_factory=dict)  # our e-mails' Message-IDs
    senders: dict[str, int | None] = field(default_factory=dict)
    rfcs: dict[str, int] = field(default_factory=dict)
    request_ids: list[int] = field(default_factory=list)  # pre-allocated, consumed in order
    email_ids: list[int] = field(default_factory=list)

    def thread_of(self, facts: InboundFacts) -> _Known | None:
        """Same rule as ever: the ticket token first, then In-Reply-To/References (lowest request
        id among requests they started), then our own e-mails they answer."""
        if facts.ticket and (known := self.by_ticket.get(facts.ticket.upper())) is not None:
            return known
        ids = [i for i in facts.thread_ids if i][:50]
        origins = [self.by_origin[i] for i in ids if i in self.by_origin]
        if origins:
            return min(origins, key=lambda k: k.id)
        for i in ids:
            if i in self.by_outbound:
                return self.by_outbound[i]
        return None

    def opened(self, known: _Known, origin_message_id: str | None, ack_message_id: str | None) -> None:
        self.by_ticket[known.ticket] = known
        if origin_message_id and origin_message_id not in self.by_origin:
            self.by_origin[origin_message_id] = known
        if ack_message_id:
            self.by_outbound[ack_message_id] = known


async def _recorded_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    unique = list(dict.fromkeys(keys))
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        found.update(await session.scalars(select(InboundMail.dedup_key).where(InboundMail.dedup_key.in_(chunk))))
    return found


def _domains(address: str) -> list[str]:
    """``a@mx.empresa.com.mx`` -> ``["mx.empresa.com.mx", "empresa.com.mx", "com.mx"]`` (parent domains too)."""
    parts = address.rsplit("@", 1)[1].split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


async def _identify_senders(session: AsyncSession, addresses: Sequence[str]) -> dict[str, int | None]:
    """:func:`core.clients.service.identify_sender` for many addresses in one statement."""
    wanted = sorted({a.strip().lower() for a in addresses if "@" in a})
    out: dict[str, int | None] = {a: None for a in addresses}
    if not wanted:
        return out
    domains = sorted({d for a in wanted for d in _domains(a)})
    rows = (
        await session.execute(
            select(ClientContact.kind, ClientContact.value, ClientContact.client_id).where(
                or_(
                    (ClientContact.kind == "email") & ClientContact.value.in_(wanted),
                    (ClientContact.kind == "domain") & ClientContact.value.in_(domains),
                )
            )
        )
    ).all()
    emails = {str(v): int(c) for k, v, c in rows if k == "email"}
    by_domain = {str(v): int(c) for k, v, c in rows if k == "domain"}
    for address in addresses:
        a = address.strip().lower()
        if "@" not in a:
            continue
        if a in emails:
            out[address] = emails[a]
            continue
        matches = [d for d in _domains(a) if d in by_domain]
        out[address] = by_domain[max(matches, key=len)] if matches else None
    return out


async def _allocate_ids(session: AsyncSession, table: str, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table`` (rows are then inserted with them, in one statement).

    PostgreSQL draws them from the table's sequence.  SQLite continues after the highest id: safe
    because every SQLite write transaction holds the database write lock (``BEGIN IMMEDIATE``).
    """
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table, "n": count},
        )
        return [int(r) for r in rows]
    top = int(await session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0)  # noqa: S608
    return list(range(top + 1, top + count + 1))


async def _index_batch(session: AsyncSession, batch: Sequence[InboundFacts]) -> _BatchIndex:
    index = _BatchIndex(seen=await _recorded_keys(session, [f.dedup_key for f in batch]))
    fresh = [f for f in batch if f.dedup_key not in index.seen]
    tickets = sorted({f.ticket.upper() for f in fresh if f.ticket})
    thread_ids = sorted({i for f in fresh for i in f.thread_ids[:50] if i})
    if tickets or thread_ids:
        conds = []
        if tickets:
            conds.append(ConfigRequest.ticket.in_(tickets))
        if thread_ids:
            conds.append(ConfigRequest.origin_message_id.in_(thread_ids))
        rows = await session.execute(
            select(ConfigRequest.id, ConfigRequest.ticket, ConfigRequest.origin_message_id)
            .where(or_(*conds))
            .order_by(ConfigRequest.id)
        )
        for rid, ticket, origin in rows.all():
            known = _Known(int(rid), ticket or ticket_for(int(rid)))
            if ticket in tickets:
                index.by_ticket.setdefault(str(ticket), known)
            if origin in thread_ids:
                index.by_origin.setdefault(str(origin), known)
    if thread_ids:
        ours = await session.execute(
            select(OutboundEmail.message_id, ConfigRequest.id, ConfigRequest.ticket)
            .join(ConfigRequest, OutboundEmail.related_id == cast(ConfigRequest.id, String))
            .where(OutboundEmail.message_id.in_(thread_ids), OutboundEmail.related_type == "config_request")
        )
        for mid, rid, ticket in ours.all():
            index.by_outbound.setdefault(str(mid), _Known(int(rid), ticket or ticket_for(int(rid))))
    opening = [f for f in fresh if f.subject_matches and not f.automatic_reason and index.thread_of(f) is None]
    if opening:
        index.senders = await _identify_senders(session, [f.from_address for f in opening])
        rfcs = sorted({r.upper() for f in opening if index.senders.get(f.from_address) is None for r in f.rfcs})
        if rfcs:
            found = await session.execute(select(Client.rfc, Client.id).where(Client.rfc.in_(rfcs)))
            index.rfcs = {str(rfc): int(cid) for rfc, cid in found.all()}
        index.request_ids = await _allocate_ids(session, ConfigRequest.__tablename__, len(opening))
        index.email_ids = await _allocate_ids(session, OutboundEmail.__tablename__, len(opening))
    return index


@dataclass(slots=True)
class _Plan:
    """The rows one inbound message writes: built in Python, written with the rest of its batch."""

    result: IngestResult
    inbound: dict[str, Any]
    request: dict[str, Any] | None = None
    email: dict[str, Any] | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    touch: int | None = None  # a stored request answered by this message (its updated_at moves)


def _audit_values(
    action: str, subject_id: int, at: datetime, after: dict[str, Any], actor: Actor | None = None
) -> dict[str, Any]:
    actor = actor or Actor.system()
    return {
        "occurred_at": at,
        "actor_kind": actor.kind.value,
        "actor_id": actor.id,
        "driver": actor.driver.value,
        "action": action,
        "subject_type": "config_request",
        "subject_id": str(subject_id),
        "before": None,
        "after": after,
        "reason": None,
        "request_id": current_request_id(),
    }


def _plan(
    facts: InboundFacts, position: MailboxPosition, index: _BatchIndex, *, cfg: EnablementConfig, now: datetime
) -> _Plan:
    """Decide what one message does (no I/O); raises for a message that cannot be recorded."""

    def inbound(outcome: IngestOutcome, request_id: int | None, detail: str) -> dict[str, Any]:
        return {
            "dedup_key": facts.dedup_key,
            "message_id": facts.message_id,
            "mailbox": position.mailbox,
            "uidvalidity": position.uidvalidity,
            "uid": position.uid,
            "from_address": facts.from_address[:320],
            "subject": facts.subject[:998],
            "outcome": outcome.value,
            "detail": detail,
            "request_id": request_id,
            "size": facts.size,
            "raw_sha256": facts.raw_sha256,
            "received_at": now,
        }

    thread = index.thread_of(facts)
    if facts.automatic_reason:
        return _Plan(
            IngestResult(
                IngestOutcome.AUTOMATIC,
                request_id=thread.id if thread else None,
                ticket=thread.ticket if thread else None,
                detail=facts.automatic_reason,
            ),
            inbound(IngestOutcome.AUTOMATIC, thread.id if thread else None, facts.automatic_reason),
        )
    if thread is not None:
        plan = _Plan(
            IngestResult(IngestOutcome.REPLY, request_id=thread.id, ticket=thread.ticket),
            inbound(IngestOutcome.REPLY, thread.id, "respuesta a una solicitud"),
            touch=thread.id,
        )
        if cfg.slack_enabled:
            note = f"📧 {facts.from_address} respondió en el hilo de {thread.ticket}:\n> {facts.body_excerpt[:500]}"
            plan.jobs.append(
                job_values(
                    kind=SLACK_REQUEST_NOTE,
                    payload={"request_id": thread.id, "text": note[:2900]},
                    key=f"slack:note:{thread.id}:{facts.dedup_key[:80]}",
                    now=now,
                )
            )
        plan.audits.append(
            _audit_values(
                "request.reply_received", thread.id, now, {"from": facts.from_address, "message_id": facts.message_id}
            )
        )
        return plan
    if not facts.subject_matches:
        return _Plan(
            IngestResult(IngestOutcome.IGNORED, detail="asunto no reconocido"),
            inbound(IngestOutcome.IGNORED, None, "el asunto no corresponde a una solicitud de configuración"),
        )

    client_id = index.senders.get(facts.from_address)
    if client_id is None:
        client_id = next((index.rfcs[r.upper()] for r in facts.rfcs if r.upper() in index.rfcs), None)
    request_id = index.request_ids.pop(0)
    email_id = index.email_ids.pop(0)
    ticket = ticket_for(request_id)
    references = [i for i in facts.thread_ids if i != facts.message_id][-10:]
    thread_refs = [*references, facts.message_id] if facts.message_id else references
    req = ConfigRequest(  # transient: only to reuse the subject and threading rules
        id=request_id,
        ticket=ticket,
        source=RequestSource.EMAIL.value,
        status=RequestStatus.RECEIVED.value,
        client_id=client_id,
        unidentified=client_id is None,
        requester_email=facts.from_address.strip().lower()[:320],
        requester_name=" ".join(facts.from_name.split())[:300],
        subject=" ".join(facts.subject.split())[:998] or CONFIG_SUBJECT,
        excerpt=facts.body_excerpt[:MAX_EXCERPT],
        external_ticket_id=None,
        origin_message_id=facts.message_id,
        thread_references=" ".join(thread_refs) or None,
    )
    in_reply_to, refs = _thread(req)
    email = email_values(
        EmailSpec(
            template="request_received",
            to=[req.requester_email],
            subject=_reply_subject(req),
            context={"ticket": ticket, "requester_name": req.requester_name, "unidentified": client_id is None},
            key=f"request:{request_id}:ack",
            in_reply_to=in_reply_to,
            references=refs,
            auto_reply=True,
            tag=ticket,
            related_type="config_request",
            related_id=request_id,
        ),
        mail_from=cfg.mail_from,
        domain=cfg.mail_domain,
        now=now,
    )
    email["id"] = email_id
    refs = [*refs, email["message_id"]] if email["message_id"] not in refs else refs
    request = {
        "id": request_id,
        "ticket": ticket,
        "source": req.source,
        "status": req.status,
        "client_id": client_id,
        "unidentified": req.unidentified,
        "requester_email": req.requester_email,
        "requester_name": req.requester_name,
        "subject": req.subject,
        "excerpt": req.excerpt,
        "external_ticket_id": None,
        "origin_message_id": facts.message_id,
        "thread_references": " ".join(refs[-20:]) or None,
        "created_at": now,
        "updated_at": now,
    }
    plan = _Plan(
        IngestResult(IngestOutcome.NEW_REQUEST, request_id=request_id, ticket=ticket),
        inbound(IngestOutcome.NEW_REQUEST, request_id, ""),
        request=request,
        email=email,
    )
    plan.audits.append(
        _audit_values(
            "request.received",
            request_id,
            now,
            {"status": req.status, "source": req.source, "client_id": client_id, "ticket": ticket},
        )
    )
    plan.jobs.append(send_job_values(email_id, f"request:{request_id}:ack", now))
    if cfg.slack_enabled:
        plan.jobs.append(
            job_values(
                kind=SLACK_SYNC_REQUEST,
                payload={"request_id": request_id},
                key=f"slack:request:{request_id}:opened:{now.timestamp()}",
                now=now,
            )
        )
    index.opened(_Known(request_id, ticket), facts.message_id, str(email["message_id"]))
    return plan


async def _write(session: AsyncSession, plans: Sequence[_Plan], now: datetime) -> None:
    """Insert the rows of ``plans``: one statement per table (children after their parents)."""
    requests = [p.request for p in plans if p.request is not None]
    if requests:
        await session.execute(insert(ConfigRequest), requests)
    emails = [p.email for p in plans if p.email is not None]
    if emails:
        await session.execute(insert(OutboundEmail), emails)
    await enqueue_many(session, [j for p in plans for j in p.jobs])
    audits = [a for p in plans for a in p.audits]
    if audits:
        await session.execute(insert(AuditEvent), audits)
    touched = sorted({p.touch for p in plans if p.touch is not None})
    if touched:
        await session.execute(update(ConfigRequest).where(ConfigRequest.id.in_(touched)).values(updated_at=now))
    await session.execute(insert(InboundMail), [p.inbound for p in plans])


class MailNotRecorded(Exception):
    """``ingest_mail`` could not record the message (its effects were rolled back)."""


def _failed(exc: Exception) -> IngestResult:
    return IngestResult(IngestOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:500])


async def ingest_mails(
    session: AsyncSession,
    items: Sequence[tuple[InboundFacts, MailboxPosition]],
    *,
    cfg: EnablementConfig,
    now: datetime,
) -> list[IngestResult]:
    """Record a batch of inbound messages, their effects and the mailbox position in the caller's
    transaction.

    Each message is decided in Python first (duplicates, threads, senders and ids are read for the
    whole batch with a few statements), then the rows of all messages are written in one SAVEPOINT
    with one statement per table.  If that fails, it is rolled back and the messages are written
    again one SAVEPOINT each, to find the culprit.  A message that raises (while being decided or
    written) is rolled back alone, gets a ``FAILED`` result and processing stops there: later
    messages get no result and the position written covers only the messages before it (see
    :meth:`core.inbox.ports.MailSink.ingest_batch`).  Duplicates (already recorded, or repeated
    inside the batch) are answered without writing anything but the position.
    """
    if not items:
        return []
    index = await _index_batch(session, [facts for facts, _ in items])
    results: list[IngestResult] = []
    plans: list[_Plan] = []
    failure: IngestResult | None = None
    for facts, position in items:
        if facts.dedup_key in index.seen:
            results.append(IngestResult(IngestOutcome.DUPLICATE, detail="mensaje ya registrado"))
            continue
        try:
            plan = _plan(facts, position, index, cfg=cfg, now=now)
        except Exception as exc:
            failure = _failed(exc)
            break
        index.seen.add(facts.dedup_key)
        plans.append(plan)
        results.append(plan.result)
    if plans:
        try:
            async with session.begin_nested():
                await _write(session, plans, now)
        except Exception:
            # One of them (or the database) refused: write them one by one to isolate the culprit.
            written = 0
            for plan in plans:
                try:
                    async with session.begin_nested():
                        await _write(session, [plan], now)
                except Exception as exc:
                    failure = _failed(exc)
                    break
                written += 1
            if written < len(plans):
                cut = results.index(plans[written].result)
                del results[cut:]
    if failure is not None:
        results.append(failure)
    high: dict[tuple[str, int], int] = {}
    for (_, position), result in zip(items, results, strict=False):
        if result.outcome is IngestOutcome.FAILED:
            break
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
