"""Queue an e-mail: render it, store it with its Message-ID, and write the send job — all in the
caller's transaction.  The ``email.send`` job (``mail/`` driver) delivers it; a retry re-sends the
same stored message with the same Message-ID.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr, parseaddr
from functools import lru_cache
from typing import Any

import jinja2
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import table_of
from core.jobs.queue import enqueue, job_values
from core.notifications.models import OutboundEmail

SEND_EMAIL = "email.send"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("core.notifications", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    html: str | None


def render(template: str, context: Mapping[str, Any]) -> Rendered:
    """Render ``<template>.txt`` (required) and ``<template>.html`` (optional)."""
    env = _env()
    text = env.get_template(f"{template}.txt").render(**context)
    try:
        html: str | None = env.get_template(f"{template}.html").render(**context)
    except jinja2.TemplateNotFound:
        html = None
    return Rendered(text=text, html=html)


def make_message_id(domain: str, tag: str = "") -> str:
    """A globally unique Message-ID; ``tag`` (e.g. a ticket) helps thread replies back to us."""
    tag = "".join(c for c in tag if c.isalnum() or c in "-_.")[:40]
    token = secrets.token_hex(8)
    left = f"{tag}.{token}" if tag else token
    return f"<{left}@{domain.lower()}>"


def clean_header(value: str) -> str:
    """Header values never carry line breaks (no header injection)."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


@dataclass(frozen=True, slots=True)
class EmailSpec:
    template: str
    to: Sequence[str]
    subject: str
    context: Mapping[str, Any]
    key: str
    cc: Sequence[str] = ()
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    auto_reply: bool = False
    tag: str = ""
    related_type: str | None = None
    related_id: str | int | None = None
    attachments: Sequence[Mapping[str, Any]] = ()


def email_values(
    spec: EmailSpec, *, mail_from: str, domain: str, now: datetime, message_id: str | None = None
) -> dict[str, Any]:
    """The ``outbound_emails`` row of ``spec``, rendered (no I/O).  Raises ValueError without a recipient."""
    to = [a for a in (parseaddr(clean_header(x))[1] for x in spec.to) if "@" in a]
    if not to:
        raise ValueError("an e-mail needs at least one valid recipient")
    rendered = render(spec.template, spec.context)
    headers: dict[str, str] = {}
    if spec.auto_reply:
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "All"
    refs = [clean_header(r) for r in spec.references if r]
    if spec.in_reply_to and clean_header(spec.in_reply_to) not in refs:
        refs.append(clean_header(spec.in_reply_to))
    name, addr = parseaddr(mail_from)
    return {
        "message_id": message_id or make_message_id(domain, spec.tag),
        "template": spec.template,
        "from_addr": formataddr((name, addr)) if name else addr,
        "to_addrs": to,
        "cc_addrs": [a for a in (parseaddr(clean_header(x))[1] for x in spec.cc) if "@" in a],
        "subject": clean_header(spec.subject)[:900],
        "text_body": rendered.text,
        "html_body": rendered.html,
        "in_reply_to": clean_header(spec.in_reply_to) if spec.in_reply_to else None,
        "references": " ".join(refs[-20:]) or None,
        "headers": headers,
        "attachments": [dict(a) for a in spec.attachments],
        "related_type": spec.related_type,
        "related_id": str(spec.related_id) if spec.related_id is not None else None,
        "status": "queued",
        "attempts": 0,
        "last_error": None,
        "created_at": now,
        "sent_at": None,
    }


def send_job_values(email_id: int, key: str, now: datetime) -> dict[str, Any]:
    """The ``jobs`` row that delivers stored e-mail ``email_id`` (see :func:`core.jobs.queue.job_values`)."""
    return job_values(kind=SEND_EMAIL, payload={"email_id": email_id}, key=f"email:{key}", now=now)


async def queue_email(
    session: AsyncSession, spec: EmailSpec, *, mail_from: str, domain: str, now: datetime
) -> OutboundEmail | None:
    """Store the rendered e-mail and queue its delivery.  Returns None when ``spec.key`` was queued before."""
    email = OutboundEmail(**email_values(spec, mail_from=mail_from, domain=domain, now=now))
    session.add(email)
    await session.flush()
    inserted = await enqueue(session, kind=SEND_EMAIL, payload={"email_id": email.id}, key=f"email:{spec.key}", now=now)
    if not inserted:
        await session.delete(email)
        await session.flush()
        return None
    return email


async def queue_email_row(
    session: AsyncSession, spec: EmailSpec, *, mail_from: str, domain: str, now: datetime
) -> int | None:
    """:func:`queue_email` in two Core statements (no ORM object): returns the stored e-mail's id, or
    None when ``spec.key`` was queued before (nothing is stored then)."""
    values = email_values(spec, mail_from=mail_from, domain=domain, now=now)
    email_id = int((await session.execute(_INSERT_EMAIL, values)).scalar_one())
    if not await enqueue(session, kind=SEND_EMAIL, payload={"email_id": email_id}, key=f"email:{spec.key}", now=now):
        await session.execute(delete(OutboundEmail).where(OutboundEmail.id == email_id))
        return None
    return email_id


_INSERT_EMAIL = insert(table_of(OutboundEmail)).returning(table_of(OutboundEmail).c.id)
