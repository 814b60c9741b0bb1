"""The job worker: claims jobs in batches, runs them concurrently, records every attempt.

Guarantees:

* Claims are leases (``locked_until``).  A worker renews the leases of the jobs it is running;
  a worker that dies stops renewing and another worker re-claims the job when the lease expires.
* On PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so several workers never claim the same
  job; on SQLite every write transaction takes the database lock (``BEGIN IMMEDIATE``).
* Completions are written guarded by ``locked_by``: a worker whose lease was lost cannot overwrite
  the state another worker owns.
* Failures are retried with exponential backoff and jitter; after ``max_attempts`` the job is
  ``dead`` (visible, and an operator can retry it).  A database outage pauses the worker, which backs
  off and resumes; completions not yet written are kept in memory and written when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db.engine import Database
from core.jobs.models import Job, JobAttempt, JobStatus
from core.logctx import log_context, new_request_id

log = logging.getLogger("timbrado.jobs")

#: Errors that mean "the database is not reachable right now".
DB_UNAVAILABLE = (OperationalError, DBAPIError, PoolTimeoutError, OSError, ConnectionError)


class PermanentJobError(Exception):
    """The job can never succeed (bad payload, missing row): it goes dead without retries."""


class RetryLater(Exception):
    """Retry after ``delay`` seconds (for example Slack's Retry-After), counting the attempt."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler receives."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    attempt: int
    idempotency_key: str
    max_attempts: int = 0  # 0: unknown (a handler called outside the worker)

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure now makes the job dead (handlers can mark their own rows failed)."""
        return self.max_attempts > 0 and self.attempt >= self.max_attempts


Handler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    concurrency: int = 16
    batch_size: int = 64
    lease_seconds: float = 60.0
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 3600.0
    poll_interval: float = 0.5
    flush_interval: float = 0.02
    db_retry_max: float = 30.0


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    rng = rng or random.Random()
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return float(delay / 2 + rng.uniform(0, delay / 2))


@dataclass(slots=True)
class _Outcome:
    job_id: int
    attempt: int
    started_at: datetime
    finished_at: datetime
    ok: bool
    error: str | None = None
    retry_delay: float | None = None
    permanent: bool = False
    max_attempts: int = 0


@dataclass
class WorkerStats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    db_errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


OutcomeObserver = Callable[[str, str], None]


class Worker:
    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, Handler],
        *,
        clock: Clock,
        config: WorkerConfig | None = None,
        name: str | None = None,
        observer: OutcomeObserver | None = None,
        kinds: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.handlers = dict(handlers)
        self.clock = clock
        self.config = config or WorkerConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.observer = observer
        self.kinds = kinds
        self.stats = WorkerStats()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._kinds_of: dict[int, str] = {}
        self._pending: list[_Outcome] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._rng = random.Random()
        self._next_claim = 0.0

    @property
    def capacity(self) -> int:
        """Jobs held locally: at most ``concurrency`` run, the rest wait (prefetch up to a batch)."""
        return max(self.config.concurrency, self.config.batch_size)

    # ------------------------------------------------------------------ claiming
    async def _claim_in(self, session: AsyncSession, limit: int) -> list[Job]:
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        eligible = or_(
            and_(Job.status == JobStatus.QUEUED.value, Job.run_at <= now),
            and_(Job.status == JobStatus.RUNNING.value, Job.locked_until < now),
        )
        candidates = select(Job.id).where(eligible)
        if self.kinds is not None:
            candidates = candidates.where(Job.kind.in_(sorted(self.kinds)))
        candidates = candidates.order_by(Job.run_at, Job.id).limit(limit)
        if self.db.is_postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(Job)
            .where(Job.id.in_(candidates.scalar_subquery()))
            .values(
                status=JobStatus.RUNNING.value,
                locked_by=self.name,
                locked_until=lease_until,
                attempts=Job.attempts + 1,
                updated_at=now,
            )
            .returning(Job)
            .execution_options(synchronize_session=False)
        )
        return list((await session.scalars(stmt)).all())

    async def claim(self, limit: int) -> list[Job]:
        """Claim up to ``limit`` eligible jobs in a transaction of their own."""
        async with self.db.transaction() as session:
            return await self._claim_in(session, limit)

    async def cycle(self, limit: int) -> list[Job]:
        """Write pending outcomes and claim up to ``limit`` new jobs in one transaction."""
        batch, self._pending = self._pending, []
        if not batch and limit <= 0:
            return []
        try:
            async with self.db.transaction() as session:
                if batch:
                    await self._write_outcomes_in(session, batch)
                jobs = await self._claim_in(session, limit) if limit > 0 else []
        except BaseException:
            self._pending = batch + self._pending
            raise
        self._after_write(batch)
        return jobs

    # ------------------------------------------------------------------ running
    def _max_attempts(self, job: Job) -> int:
        return job.max_attempts or self.config.max_attempts

    async def _run_one(self, job: Job) -> None:
        async with self._slots:
            await self._run_now(job)

    async def _run_now(self, job: Job) -> None:
        started = self.clock.now()
        max_attempts = self._max_attempts(job)
        outcome = _Outcome(job.id, job.attempts, started, started, ok=False, max_attempts=max_attempts)
        handler = self.handlers.get(job.kind)
        with log_context(job_id=job.id, job_kind=job.kind, request_id=new_request_id()):
            try:
                if job.attempts > max_attempts:
                    outcome.error = "se agotaron los intentos (el trabajo se interrumpió repetidamente)"
                    outcome.permanent = True
                elif handler is None:
                    outcome.error = f"no hay un manejador para el tipo de trabajo {job.kind!r}"
                    outcome.permanent = True
                else:
                    await handler(
                        JobContext(job.id, job.kind, job.payload or {}, job.attempts, job.idempotency_key, max_attempts)
                    )
                    outcome.ok = True
            except asyncio.CancelledError:
                outcome.error = "interrumpido al detener el proceso"
                outcome.retry_delay = 0.0
                raise
            except PermanentJobError as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                outcome.permanent = True
            except RetryLater as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                outcome.retry_delay = exc.delay
            except Exception as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "job failed: %s",
                    outcome.error,
                    extra={"attempt": job.attempts, "trace": traceback.format_exc(limit=5)},
                )
            finally:
                outcome.finished_at = self.clock.now()
                self._pending.append(outcome)
                self._wake.set()

    async def flush(self) -> None:
        """Write pending outcomes.  On a database error they stay pending for the next flush."""
        if self._pending:
            await self.cycle(0)

    def _after_write(self, batch: list[_Outcome]) -> None:
        for o in batch:
            kind = self._kinds_of.pop(o.job_id, "?")
            label = "succeeded" if o.ok else ("dead" if self._is_dead(o) else "retry")
            if o.ok:
                self.stats.succeeded += 1
            elif label == "dead":
                self.stats.dead += 1
                log.error("job is dead after %s attempts: %s", o.attempt, o.error, extra={"job_id": o.job_id})
            else:
                self.stats.failed += 1
            if self.observer:
                self.observer(kind, label)

    def _is_dead(self, o: _Outcome) -> bool:
        return o.permanent or (o.attempt >= o.max_attempts and o.retry_delay != 0.0)

    async def _write_outcomes_in(self, session: AsyncSession, batch: list[_Outcome]) -> None:
        now = self.clock.now()
        ok_ids = [o.job_id for o in batch if o.ok]
        if ok_ids:
            await session.execute(
                update(Job)
                .where(Job.id.in_(ok_ids), Job.locked_by == self.name, Job.status == JobStatus.RUNNING.value)
                .values(
                    status=JobStatus.SUCCEEDED.value,
                    locked_by=None,
                    locked_until=None,
                    finished_at=now,
                    updated_at=now,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
        for o in batch:
            if o.ok:
                continue
            values: dict[str, Any] = {
                "locked_by": None,
                "locked_until": None,
                "updated_at": now,
                "last_error": o.error,
            }
            if self._is_dead(o):
                values.update(status=JobStatus.DEAD.value, finished_at=now)
            else:
                delay = (
                    o.retry_delay
                    if o.retry_delay is not None
                    else backoff_delay(o.attempt, self.config.backoff_base, self.config.backoff_max, self._rng)
                )
                values.update(status=JobStatus.QUEUED.value, run_at=now + timedelta(seconds=delay))
            await session.execute(
                update(Job)
                .where(Job.id == o.job_id, Job.locked_by == self.name, Job.status == JobStatus.RUNNING.value)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        await session.execute(
            insert(JobAttempt),
            [
                {
                    "job_id": o.job_id,
                    "attempt": o.attempt,
                    "worker": self.name,
                    "started_at": o.started_at,
                    "finished_at": o.finished_at,
                    "outcome": "succeeded" if o.ok else ("dead" if self._is_dead(o) else "failed"),
                    "error": o.error,
                }
                for o in batch
            ],
        )

    async def renew_leases(self) -> None:
        ids = list(self._in_flight)
        if not ids:
            return
        now = self.clock.now()
        async with self.db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id.in_(ids), Job.locked_by == self.name, Job.status == JobStatus.RUNNING.value)
                .values(locked_until=now + timedelta(seconds=self.config.lease_seconds), updated_at=now)
                .execution_options(synchronize_session=False)
            )

    def _start(self, job: Job) -> None:
        self.stats.claimed += 1
        self.stats.by_kind[job.kind] = self.stats.by_kind.get(job.kind, 0) + 1
        self._kinds_of[job.id] = job.kind
        task = asyncio.create_task(self._run_one(job), name=f"job-{job.id}")
        self._in_flight[job.id] = task
        job_id = job.id

        def _forget(_task: asyncio.Task[None]) -> None:
            self._in_flight.pop(job_id, None)

        task.add_done_callback(_forget)

    # ------------------------------------------------------------------ loop
    async def run_until_empty(self) -> WorkerStats:
        """Process jobs until none is eligible (tests, CLI ``jobs run``, benchmarks)."""
        while True:
            jobs = await self.cycle(self.capacity - len(self._in_flight))
            for job in jobs:
                self._start(job)
            if not jobs and not self._in_flight:
                await self.flush()
                return self.stats
            if self._in_flight:
                await asyncio.wait(list(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED)

    async def run(self, stop: asyncio.Event, *, grace: float = 30.0) -> WorkerStats:
        """Run until ``stop`` is set; then finish running jobs (up to ``grace`` seconds)."""
        lease_task = asyncio.create_task(self._lease_loop(stop))
        db_delay = 0.5
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                want = self.capacity - len(self._in_flight)
                if loop.time() < self._next_claim:
                    want = 0
                try:
                    jobs = await self.cycle(want)
                    db_delay = 0.5
                except DB_UNAVAILABLE as exc:
                    self.stats.db_errors += 1
                    log.warning("database unavailable, retrying in %.1fs: %s", db_delay, type(exc).__name__)
                    await _sleep_or_stop(stop, db_delay)
                    db_delay = min(self.config.db_retry_max, db_delay * 2)
                    continue
                for job in jobs:
                    self._start(job)
                if want > 0 and len(jobs) < want:
                    self._next_claim = loop.time() + self.config.poll_interval  # the queue is drained
                elif jobs:
                    continue  # more may be waiting: claim again right away
                self._wake.clear()
                if self._in_flight:
                    # Let completions accumulate briefly so they are written together.
                    await asyncio.wait(list(self._in_flight.values()), timeout=self.config.flush_interval)
                    if not self._pending:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(_first(self._wake.wait(), stop.wait()), self.config.poll_interval)
                else:
                    timeout = max(0.0, self._next_claim - loop.time())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout)
        finally:
            lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease_task
            await self._drain(grace)
        return self.stats

    async def _drain(self, grace: float) -> None:
        if self._in_flight:
            log.info("waiting for %d running jobs to finish", len(self._in_flight))
            _done, still = await asyncio.wait(list(self._in_flight.values()), timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        for _ in range(5):
            try:
                await self.flush()
                return
            except DB_UNAVAILABLE:
                await asyncio.sleep(1.0)
        if self._pending:
            log.error(
                "could not record %d job outcomes; their leases will expire and they will run again",
                len(self._pending),
            )

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        interval = max(1.0, self.config.lease_seconds / 3)
        while not stop.is_set():
            await _sleep_or_stop(stop, interval)
            try:
                await self.renew_leases()
            except DB_UNAVAILABLE:
                log.warning("could not renew job leases; will retry")


async def _first(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
