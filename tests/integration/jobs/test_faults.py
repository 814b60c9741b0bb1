"""Worker faults with real processes: SIGKILL mid-job, SIGTERM drain, scale-out, takeover, outage."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text

from core.clock import SystemClock
from core.db.engine import Database, create_engine
from core.jobs import builtin, queue
from core.jobs.models import Job, JobAttempt, JobStatus
from core.jobs.worker import Worker, WorkerConfig
from tests.support.tcpproxy import TcpProxy

REPO = Path(__file__).resolve().parents[3]
EXE = str(Path(sys.executable).parent / "timbrado")


def spawn_worker(url: str, name: str, lease: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_proc", url, name, str(lease)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


async def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached in time")


async def runs(db: Database) -> list[tuple[int, str, str]]:
    async with db.session() as s:
        rows = await s.execute(text("SELECT job_id, worker, phase FROM test_runs ORDER BY job_id, phase"))
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def slow_job(db: Database, seconds: float) -> None:
    async with db.transaction() as s:
        await s.execute(text("DROP TABLE IF EXISTS test_runs"))
        await s.execute(text("CREATE TABLE test_runs (job_id INTEGER, worker VARCHAR(50), phase VARCHAR(10))"))
        await queue.enqueue(s, kind="test.slow", payload={"seconds": seconds}, key="slow-1", now=SystemClock().now())


async def job_status(db: Database) -> str:
    async with db.session() as s:
        return str((await s.scalars(select(Job.status))).one())


@pytest.mark.slow
async def test_sigkill_mid_job_runs_it_again_exactly_once(database: Database, database_url: str) -> None:
    await slow_job(database, seconds=1.0)
    victim = spawn_worker(database_url, "victim", lease=2)
    try:

        async def started() -> bool:
            return any(r[2] == "start" for r in await runs(database))

        await wait_for(started)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        victim.kill()
    survivor = spawn_worker(database_url, "survivor", lease=2)
    try:

        async def done() -> bool:
            return await job_status(database) == JobStatus.SUCCEEDED

        await wait_for(done)
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(30)
    assert sorted(await runs(database)) == [(1, "survivor", "end"), (1, "survivor", "start"), (1, "victim", "start")]
    async with database.session() as s:
        job = (await s.scalars(select(Job))).one()
        attempts = (await s.scalars(select(JobAttempt))).all()
    assert job.attempts == 2
    assert [(a.worker, a.outcome) for a in attempts] == [("survivor", "succeeded")]


@pytest.mark.slow
async def test_sigterm_lets_the_running_job_finish(database: Database, database_url: str) -> None:
    await slow_job(database, seconds=1.5)
    proc = spawn_worker(database_url, "graceful", lease=30)

    async def started() -> bool:
        return bool(await runs(database))

    try:
        await wait_for(started)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    assert sorted(await runs(database)) == [(1, "graceful", "end"), (1, "graceful", "start")]
    assert await job_status(database) == JobStatus.SUCCEEDED


def serve_env(database_url: str, data_dir: Path, roles: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")}
    return env | {
        "TIMBRADO_DATABASE_URL": database_url,
        "TIMBRADO_DATA_DIR": str(data_dir),
        "TIMBRADO_ROLES": roles,
        "TIMBRADO_LOG_LEVEL": "INFO",
    }


@pytest.mark.slow
async def test_several_serve_worker_processes_share_the_queue_without_running_a_job_twice(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    if not database.is_postgres:
        pytest.skip("scale-out across processes is a PostgreSQL deployment")
    total = 3000
    async with database.transaction() as s:
        await builtin.enqueue_pings(s, total, now=SystemClock().now())
    logs = [tmp_path / f"worker-{i}.log" for i in range(3)]
    sinks = [path.open("wb") for path in logs]
    procs = [
        subprocess.Popen(
            [EXE, "serve"], env=serve_env(database_url, tmp_path, "worker"), stdout=subprocess.DEVNULL, stderr=sink
        )
        for sink in sinks
    ]
    try:

        async def all_done() -> bool:
            async with database.session() as s:
                return (await queue.queue_depth(s))["succeeded"] == total

        async def all_started() -> bool:
            # A supervisor stops started services: a SIGTERM that lands while Python is still importing
            # (before the handler exists) ends the process with -15, which is not what this test is about.
            return all(b" started" in path.read_bytes() for path in logs)

        await wait_for(all_done, timeout=120)
        await wait_for(all_started, timeout=60)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p in procs]
        for sink in sinks:
            sink.close()
        assert codes == [0, 0, 0]
    async with database.session() as s:
        per_job = (await s.execute(select(JobAttempt.job_id, func.count()).group_by(JobAttempt.job_id))).all()
        workers = (await s.scalars(select(func.count(func.distinct(JobAttempt.worker))))).one()
    assert len(per_job) == total
    assert {count for _job, count in per_job} == {1}
    # Shared: on a loaded machine a process that starts late may find the queue already drained by the
    # other two (3,000 pings take about a second), so "every process took some" would be a timing bet.
    assert workers >= 2


@pytest.mark.slow
async def test_scheduler_duty_moves_to_another_instance_when_the_holder_dies(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [EXE, "serve"],
            env=serve_env(database_url, tmp_path, "scheduler"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> bool:
        import selectors

        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = proc.stdout.readline()
                if needle in line:
                    return True
                if not line:
                    return False
        return False

    first = start()
    second = None
    try:
        assert read_until(first, "now runs scheduler", 30)
        second = start()
        assert not read_until(second, "now runs scheduler", 7)  # the first one holds the duty
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert read_until(second, "now runs scheduler", 30)
    finally:
        for p in (first, second):
            if p is not None:
                p.kill()
                p.wait(10)


@pytest.mark.slow
async def test_database_outage_mid_run_pauses_the_worker_and_loses_nothing(
    database: Database, database_url: str
) -> None:
    if not database.is_postgres:
        pytest.skip("a network outage needs a database server")
    parts = urlsplit(database_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = database_url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    worker_db = Database(create_engine(proxied, pool_size=4))
    seen: list[int] = []

    async def record(ctx) -> None:  # type: ignore[no-untyped-def]
        seen.append(ctx.id)

    worker = Worker(
        worker_db,
        {"rec": record},
        clock=SystemClock(),
        config=WorkerConfig(poll_interval=0.05, db_retry_max=0.5, lease_seconds=30),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, grace=5))
    try:
        async with database.transaction() as s:
            for i in range(100):
                await queue.enqueue(s, kind="rec", payload={}, key=f"a{i}", now=SystemClock().now())
        await proxy.cut()
        async with database.transaction() as s:
            for i in range(100):
                await queue.enqueue(s, kind="rec", payload={}, key=f"b{i}", now=SystemClock().now())
        await asyncio.sleep(2)
        await proxy.restore()

        async def all_done() -> bool:
            async with database.session() as s:
                return (await queue.queue_depth(s))["succeeded"] == 200

        await wait_for(all_done, timeout=60)
    finally:
        stop.set()
        await task
        await worker_db.dispose()
        await proxy.close()
    assert worker.stats.db_errors > 0
    async with database.session() as s:
        depth = await queue.queue_depth(s)
    assert depth["succeeded"] == 200
    assert depth["dead"] == 0
    # A job may run again only if its completion could not be written before the cut.
    assert set(seen) == set(range(1, 201))


@pytest.mark.slow
async def test_worker_started_while_the_database_is_down_backs_off_then_resumes_and_loses_nothing(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    if not database.is_postgres:
        pytest.skip("a network outage needs a database server")
    total = 300
    async with database.transaction() as s:
        await builtin.enqueue_pings(s, total, now=SystemClock().now())
    parts = urlsplit(database_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    await proxy.cut()  # the port is known, and nothing listens on it: the database is "down"
    proxied = database_url.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        # Asynchronous: the proxy lives on this event loop and must keep forwarding while we wait.
        proc = await asyncio.create_subprocess_exec(
            EXE, "serve", env=serve_env(proxied, tmp_path, "worker"), stdout=log_file, stderr=log_file
        )

    def retries() -> list[float]:
        found = re.findall(r"database unavailable, retrying in ([0-9.]+)s", log_path.read_text(errors="replace"))
        return [float(d) for d in found]

    try:

        async def backing_off() -> bool:
            return len(retries()) >= 3

        await wait_for(backing_off, timeout=30)
        async with database.session() as s:
            assert (await queue.queue_depth(s))["queued"] == total  # nothing ran, nothing was claimed
        await proxy.restore()

        async def all_done() -> bool:
            async with database.session() as s:
                return (await queue.queue_depth(s))["succeeded"] == total

        await wait_for(all_done, timeout=90)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
        await proxy.close()
    assert code == 0, log_path.read_text(errors="replace")
    delays = retries()
    assert delays[:3] == [0.5, 1.0, 2.0]  # exponential, not a hot loop
    async with database.session() as s:
        depth = await queue.queue_depth(s)
        per_job = (await s.execute(select(JobAttempt.job_id, func.count()).group_by(JobAttempt.job_id))).all()
    assert depth["succeeded"] == total
    assert depth["dead"] == depth["queued"] == depth["running"] == 0
    assert len(per_job) == total
    assert {count for _job, count in per_job} == {1}  # each ran exactly once
