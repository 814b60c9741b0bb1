"""Job queue throughput: 10,000 no-op jobs through the real queue.

Runs, in one go on this machine:
  1. SQLite, one worker (in-process ``Worker``, embedded defaults);
  2. PostgreSQL, one ``timbrado serve --role worker`` process;
  3. PostgreSQL, two ``timbrado serve --role worker`` processes.

Throughput is measured from the database's own records: the first attempt's start to the last
attempt's end.  It also counts duplicates (jobs with more than one recorded run) and losses (jobs not
succeeded) and prints them.  Targets: >= 1,000 jobs/s for a single worker on either database;
two workers on PostgreSQL >= 1.5x one worker; duplicates = 0; losses = 0.

Usage: .venv/bin/python bench/jobs.py [--jobs 10000] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import func, select

from core.clock import SystemClock
from core.db import migrate
from core.db.engine import Database, create_engine
from core.jobs import builtin
from core.jobs.models import Job, JobAttempt, JobStatus
from core.jobs.worker import Worker, WorkerConfig

EXE = str(Path(sys.executable).parent / "timbrado")


async def enqueue(db: Database, n: int, delay: float) -> None:
    now = SystemClock().now()
    run_at = now + timedelta(seconds=delay)
    rows = [
        {
            "kind": builtin.PING,
            "payload": {"label": "bench"},
            "idempotency_key": f"bench:{uuid.uuid4().hex}",
            "status": JobStatus.QUEUED.value,
            "attempts": 0,
            "run_at": run_at,
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(n)
    ]
    async with db.transaction() as s:
        for i in range(0, n, 2000):
            await s.execute(Job.__table__.insert(), rows[i : i + 2000])


async def measure(db: Database, n: int) -> dict[str, float]:
    async with db.session() as s:
        first = await s.scalar(select(func.min(JobAttempt.started_at)))
        last = await s.scalar(select(func.max(JobAttempt.finished_at)))
        runs_per_job = (await s.execute(select(JobAttempt.job_id, func.count()).group_by(JobAttempt.job_id))).all()
        succeeded = await s.scalar(select(func.count()).where(Job.status == JobStatus.SUCCEEDED.value))
        workers = await s.scalar(select(func.count(func.distinct(JobAttempt.worker))))
    assert first is not None and last is not None
    elapsed = (last - first).total_seconds()
    duplicates = sum(c - 1 for _j, c in runs_per_job if c > 1)
    return {
        "jobs": n,
        "seconds": elapsed,
        "rate": n / elapsed if elapsed > 0 else float("inf"),
        "duplicates": duplicates,
        "losses": n - int(succeeded or 0),
        "workers": int(workers or 0),
    }


async def bench_sqlite(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(create_engine(f"sqlite+aiosqlite:///{tmp}/bench.db"))
        await migrate.upgrade(db.engine)
        await enqueue(db, n, delay=0)
        worker = Worker(db, {builtin.PING: builtin.ping}, clock=SystemClock(), config=WorkerConfig())
        await worker.run_until_empty()
        result = await measure(db, n)
        await db.dispose()
        return result


async def bench_postgres(admin_dsn: str, n: int, processes: int) -> dict[str, float]:
    name = f"timbrado_bench_{os.getpid()}_{processes}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    db = Database(create_engine(url))
    try:
        await migrate.upgrade(db.engine)
        delay = 4.0
        await enqueue(db, n, delay=delay)
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | {
                "TIMBRADO_DATABASE_URL": url,
                "TIMBRADO_DATA_DIR": tmp,
                "TIMBRADO_ROLES": "worker",
                "TIMBRADO_LOG_LEVEL": "WARNING",
            }
            procs = [subprocess.Popen([EXE, "serve"], env=env, stdout=subprocess.DEVNULL) for _ in range(processes)]
            try:
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    async with db.session() as s:
                        left = await s.scalar(select(func.count()).where(Job.status != JobStatus.SUCCEEDED.value))
                    if left == 0:
                        break
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    p.wait(60)
        return await measure(db, n)
    finally:
        await db.dispose()
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def line(label: str, r: dict[str, float]) -> str:
    return (
        f"{label:<34} {r['rate']:>9,.0f} jobs/s  ({int(r['jobs']):,} jobs in {r['seconds']:.2f} s, "
        f"workers={int(r['workers'])}, duplicates={int(r['duplicates'])}, losses={int(r['losses'])})"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--pg", default=os.environ.get("TIMBRADO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    print(f"Job queue benchmark: {args.jobs:,} no-op jobs, default worker settings {WorkerConfig()}")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    sqlite = await bench_sqlite(args.jobs)
    print(line("SQLite, 1 worker (in-process)", sqlite))
    pg1 = await bench_postgres(args.pg, args.jobs, 1)
    print(line("PostgreSQL, 1 worker process", pg1))
    pg2 = await bench_postgres(args.pg, args.jobs, 2)
    print(line("PostgreSQL, 2 worker processes", pg2))
    scale = pg2["rate"] / pg1["rate"]
    print(f"scale-out 2 vs 1 workers on PostgreSQL: {scale:.2f}x")
    checks = {
        "SQLite single worker >= 1,000 jobs/s": sqlite["rate"] >= 1000,
        "PostgreSQL single worker >= 1,000 jobs/s": pg1["rate"] >= 1000,
        "PostgreSQL 2 workers >= 1.5x one": scale >= 1.5,
        "duplicates = 0": sqlite["duplicates"] == pg1["duplicates"] == pg2["duplicates"] == 0,
        "losses = 0": sqlite["losses"] == pg1["losses"] == pg2["losses"] == 0,
    }
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISSED'}] {name}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
