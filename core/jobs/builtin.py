"""Built-in job kinds."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs.queue import enqueue
from core.jobs.worker import JobContext

PING = "system.ping"
log = logging.getLogger("timbrado.jobs")


async def ping(ctx: JobContext) -> None:
    """A diagnostic job: proves a worker is alive and claiming.  Its attempt row is the evidence."""
    log.debug("ping %s", ctx.payload.get("label", ""))


async def enqueue_pings(session: AsyncSession, count: int, *, now: datetime, label: str = "") -> str:
    """Queue ``count`` ping jobs; returns the batch id (part of every idempotency key)."""
    batch = uuid.uuid4().hex[:12]
    for i in range(count):
        await enqueue(session, kind=PING, payload={"label": label, "batch": batch}, key=f"{PING}:{batch}:{i}", now=now)
    return batch
