"""Writing and managing jobs.  ``enqueue`` runs inside the caller's transaction (outbox)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.jobs.models import Job, JobAttempt, JobStatus


def job_values(
    *,
    kind: str,
    payload: Mapping[str, Any],
    key: str,
    now: datetime,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> dict[str, Any]:
    """The ``jobs`` row of a new job (for :func:`enqueue` and :func:`enqueue_many`)."""
    if not kind or not key:
        raise ValueError("a job needs a kind and an idempotency key")
    return {
        "kind": kind,
        "payload": dict(payload),
        "idempotency_key": key,
        "status": JobStatus.QUEUED.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": run_at or now,
        "created_at": now,
        "updated_at": now,
    }


@lru_cache(maxsize=4)
def _insert_job(dialect: str) -> Any:
    """``INSERT INTO jobs ... ON CONFLICT (idempotency_key) DO NOTHING``, built once per dialect: the
    values go in as parameters, so SQLAlchemy compiles it once instead of coercing every value into a
    new statement on each call (that showed in the stamping and upload profiles)."""
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_fn(Job).on_conflict_do_nothing(index_elements=["idempotency_key"])


async def enqueue_many(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue several jobs (rows from :func:`job_values`) in one statement; known keys are skipped."""
    if not rows:
        return
    await session.execute(_insert_job(session.get_bind().dialect.name), [dict(r) for r in rows])


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: Mapping[str, Any],
    key: str,
    now: datetime,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> bool:
    """Queue a job in the current transaction.  Returns False when ``key`` was already queued.

    The idempotency key is unique: the same logical job (for example "acknowledge request 12")
    is never queued twice, whatever retries happen upstream.
    """
    values = job_values(kind=kind, payload=payload, key=key, now=now, run_at=run_at, max_attempts=max_attempts)
    # Core, on the session's connection (same transaction): the ORM's bulk-insert path does not report
    # how many rows the ON CONFLICT clause let through.
    connection = await session.connection()
    result = await connection.execute(_insert_job(connection.dialect.name), values)
    return bool(result.rowcount)


@dataclass(frozen=True, slots=True)
class JobView:
    id: int
    kind: str
    status: str
    attempts: int
    max_attempts: int | None
    run_at: datetime
    last_error: str | None
    idempotency_key: str
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            run_at=job.run_at,
            last_error=job.last_error,
            idempotency_key=job.idempotency_key,
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


async def list_jobs(
    session: AsyncSession, *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[JobView]:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Job.status == status)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return [JobView.of(j) for j in await session.scalars(stmt)]


async def get_job(session: AsyncSession, job_id: int) -> JobView | None:
    job = await session.get(Job, job_id)
    return JobView.of(job) if job else None


async def attempts_of(session: AsyncSession, job_id: int) -> list[JobAttempt]:
    rows = await session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.id))
    return list(rows)


async def retry_dead(session: AsyncSession, *, now: datetime, job_id: int | None = None) -> int:
    """Put dead jobs back in the queue (one, or all of them).  Returns how many."""
    stmt = (
        update(Job)
        .where(Job.status == JobStatus.DEAD.value)
        .values(status=JobStatus.QUEUED.value, attempts=0, run_at=now, updated_at=now, finished_at=None)
    )
    if job_id is not None:
        stmt = stmt.where(Job.id == job_id)
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0))


async def queue_depth(session: AsyncSession) -> dict[str, int]:
    """Number of jobs per status (every status present, zero when empty)."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    depth = {s.value: 0 for s in JobStatus}
    for status, count in rows.all():
        depth[str(status)] = int(count)
    return depth


async def purge_finished(session: AsyncSession, *, before: datetime) -> int:
    """Delete succeeded jobs (and their attempts) finished before ``before``; dead jobs are kept."""
    from sqlalchemy import delete

    ids = select(Job.id).where(Job.status == JobStatus.SUCCEEDED.value, Job.finished_at < before)
    await session.execute(delete(JobAttempt).where(JobAttempt.job_id.in_(ids)))
    result = await session.execute(delete(Job).where(Job.status == JobStatus.SUCCEEDED.value, Job.finished_at < before))
    return int(getattr(result, "rowcount", 0))


async def retry_dead_as(session: AsyncSession, *, actor: audit.Actor, now: datetime, job_id: int | None = None) -> int:
    """Put one dead job (or every dead job) back in the queue, recording each decision in the audit log
    in the caller's transaction.  Returns how many jobs were requeued.  The API and the CLI both use this."""
    stmt = select(Job.id, Job.kind, Job.attempts).where(Job.status == JobStatus.DEAD.value).order_by(Job.id)
    if job_id is not None:
        stmt = stmt.where(Job.id == job_id)
    requeued = 0
    for dead_id, kind, attempts in (await session.execute(stmt)).all():
        if not await retry_dead(session, now=now, job_id=dead_id):
            continue
        requeued += 1
        await audit.record(
            session,
            actor=actor,
            action="job.retried",
            subject_type="job",
            subject_id=dead_id,
            at=now,
            before={"status": JobStatus.DEAD.value, "kind": kind, "attempts": attempts},
            after={"status": JobStatus.QUEUED.value, "kind": kind, "attempts": 0},
        )
    return requeued
