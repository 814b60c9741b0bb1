"""A worker process for fault tests: ``python -m tests.support.worker_proc URL NAME LEASE``.

It runs the real :class:`core.jobs.worker.Worker` with one extra job kind, ``test.slow``, which
records its start and end in a ``test_runs`` table so tests can count runs across processes.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sqlalchemy import text

from core.clock import SystemClock
from core.db.engine import Database, create_engine
from core.jobs.worker import JobContext, Worker, WorkerConfig

CREATE_RUNS = "CREATE TABLE IF NOT EXISTS test_runs (job_id INTEGER, worker VARCHAR(50), phase VARCHAR(10))"


async def main(url: str, name: str, lease: float) -> None:
    db = Database(create_engine(url))
    async with db.transaction() as s:
        await s.execute(text(CREATE_RUNS))

    async def slow(ctx: JobContext) -> None:
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO test_runs VALUES (:j, :w, 'start')"), {"j": ctx.id, "w": name})
        await asyncio.sleep(float(ctx.payload.get("seconds", 1)))
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO test_runs VALUES (:j, :w, 'end')"), {"j": ctx.id, "w": name})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(
        db,
        {"test.slow": slow},
        clock=SystemClock(),
        name=name,
        config=WorkerConfig(lease_seconds=lease, poll_interval=0.1),
    )
    print("ready", flush=True)
    await worker.run(stop, grace=30)
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
