"""The job queue on both databases: enqueue in the caller's transaction, run, retry, die, retry by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.clock import FrozenClock
from core.db.engine import Database
from core.jobs import queue
from core.jobs.models import Job, JobStatus
from core.jobs.worker import JobContext, PermanentJobError, RetryLater, Worker, WorkerConfig


async def test_enqueue_is_idempotent_by_key(database: Database, clock: FrozenClock) -> None:
    async with database.transaction() as s:
        assert await queue.enqueue(s, kind="k", payload={"a": 1}, key="same", now=clock.now())
        assert not await queue.enqueue(s, kind="k", payload={"a": 2}, key="same", now=clock.now())
    async with database.session() as s:
        jobs = (await s.scalars(select(Job))).all()
    assert len(jobs) == 1
    assert jobs[0].payload == {"a": 1}


async def test_enqueue_rolls_back_with_the_state_change(database: Database, clock: FrozenClock) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as s:
            await queue.enqueue(s, kind="k", payload={}, key="x", now=clock.now())
            raise RuntimeError("the decision failed")
    async with database.session() as s:
        assert (await s.scalars(select(Job))).all() == []


async def test_worker_runs_each_job_once_and_records_the_attempt(database: Database, clock: FrozenClock) -> None:
    seen: list[int] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(ctx.payload["n"])

    async with database.transaction() as s:
        for n in range(150):
            await queue.enqueue(s, kind="count", payload={"n": n}, key=f"count-{n}", now=clock.now())
    worker = Worker(database, {"count": handler}, clock=clock, config=WorkerConfig(batch_size=40))
    await worker.run_until_empty()
    await worker.run_until_empty()
    assert sorted(seen) == list(range(150))
    async with database.session() as s:
        depth = await queue.queue_depth(s)
        attempts = await queue.attempts_of(s, 1)
    assert depth["succeeded"] == 150
    assert depth["queued"] == depth["running"] == 0
    assert [a.outcome for a in attempts] == ["succeeded"]


async def test_failing_job_backs_off_then_dies_and_can_be_retried(database: Database, clock: FrozenClock) -> None:
    calls = 0

    async def flaky(ctx: JobContext) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("PAC no disponible")

    async with database.transaction() as s:
        await queue.enqueue(s, kind="flaky", payload={}, key="f", now=clock.now(), max_attempts=3)
    worker = Worker(database, {"flaky": flaky}, clock=clock, config=WorkerConfig(backoff_base=10, backoff_max=100))
    await worker.run_until_empty()
    assert calls == 1
    async with database.session() as s:
        job = await queue.get_job(s, 1)
    assert job is not None
    assert job.status == JobStatus.QUEUED
    assert job.last_error == "ValueError: PAC no disponible"
    # Backoff with jitter: between half and the whole of base * 2^0.
    assert clock.now() + timedelta(seconds=5) <= job.run_at <= clock.now() + timedelta(seconds=10)

    await worker.run_until_empty()
    assert calls == 1  # not due yet
    for _ in range(2):
        clock.advance(timedelta(hours=1))
        await worker.run_until_empty()
    assert calls == 3
    async with database.session() as s:
        job = await queue.get_job(s, 1)
        attempts = await queue.attempts_of(s, 1)
    assert job is not None and job.status == JobStatus.DEAD
    assert [a.outcome for a in attempts] == ["failed", "failed", "dead"]

    async with database.transaction() as s:
        assert await queue.retry_dead(s, now=clock.now(), job_id=1) == 1
    await worker.run_until_empty()
    assert calls == 4


async def test_permanent_error_goes_dead_at_once_and_retry_later_uses_its_delay(
    database: Database, clock: FrozenClock
) -> None:
    async def permanent(ctx: JobContext) -> None:
        raise PermanentJobError("la solicitud no existe")

    async def later(ctx: JobContext) -> None:
        raise RetryLater("Slack pidió esperar", delay=42)

    async with database.transaction() as s:
        await queue.enqueue(s, kind="permanent", payload={}, key="p", now=clock.now())
        await queue.enqueue(s, kind="later", payload={}, key="l", now=clock.now())
        await queue.enqueue(s, kind="unknown-kind", payload={}, key="u", now=clock.now())
    worker = Worker(database, {"permanent": permanent, "later": later}, clock=clock)
    await worker.run_until_empty()
    async with database.session() as s:
        jobs = {j.idempotency_key: j for j in await queue.list_jobs(s)}
    assert jobs["p"].status == JobStatus.DEAD
    assert jobs["u"].status == JobStatus.DEAD
    assert "no hay un manejador" in (jobs["u"].last_error or "")
    assert jobs["l"].status == JobStatus.QUEUED
    assert jobs["l"].run_at == clock.now() + timedelta(seconds=42)


async def test_expired_lease_is_reclaimed_and_a_stale_worker_cannot_complete_it(
    database: Database, clock: FrozenClock
) -> None:
    runs: list[str] = []

    async def handler(ctx: JobContext) -> None:
        runs.append(ctx.kind)

    async with database.transaction() as s:
        await queue.enqueue(s, kind="k", payload={}, key="lease", now=clock.now())
    dead_worker = Worker(database, {"k": handler}, clock=clock, name="dies", config=WorkerConfig(lease_seconds=30))
    claimed = await dead_worker.claim(10)
    assert [j.id for j in claimed] == [1]
    other = Worker(database, {"k": handler}, clock=clock, name="survives")
    assert await other.claim(10) == []  # lease still valid
    clock.advance(timedelta(seconds=31))
    await other.run_until_empty()
    assert runs == ["k"]
    async with database.session() as s:
        job = (await s.scalars(select(Job))).one()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 2
