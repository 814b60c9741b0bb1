"""Recording audit events inside the caller's transaction."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.models import AuditEvent
from core.db.base import table_of
from core.logctx import current_request_id


class ActorKind(enum.StrEnum):
    STAFF = "staff"
    TOKEN = "token"
    SYSTEM = "system"
    CLIENT = "client"
    VENDOR = "vendor"


class Driver(enum.StrEnum):
    EMAIL = "email"
    SLACK = "slack"
    API = "api"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a staff user (Slack id, e-mail), an API token, or the system itself."""

    kind: ActorKind
    id: str
    driver: Driver
    display: str = ""

    @property
    def label(self) -> str:
        return self.display or self.id

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorKind.SYSTEM, "system", Driver.SYSTEM, "sistema")


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str | int,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the decision it explains."""
    event = AuditEvent(**event_values(actor, action, subject_type, subject_id, at, before, after, reason))
    session.add(event)
    return event


async def insert_event(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str | int,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """:func:`record` as one INSERT (no ORM object): for hot paths written in Core statements."""
    values = event_values(actor, action, subject_type, subject_id, at, before, after, reason)
    await session.execute(_INSERT_EVENT, values)


_INSERT_EVENT = insert(table_of(AuditEvent))


def event_values(
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str | int,
    at: datetime,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None,
) -> dict[str, Any]:
    """The ``audit_events`` row of a decision (the request id comes from the logging context)."""
    return {
        "occurred_at": at,
        "actor_kind": actor.kind.value,
        "actor_id": actor.id,
        "driver": actor.driver.value,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "before": before,
        "after": after,
        "reason": reason,
        "request_id": current_request_id(),
    }


async def events_for(session: AsyncSession, subject_type: str, subject_id: str | int) -> list[AuditEvent]:
    rows = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == str(subject_id))
        .order_by(AuditEvent.id)
    )
    return list(rows)
