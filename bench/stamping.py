"""Stamping service benchmark (issue 6): 2,000 payments of one invoice each.

(a) a plain loop with satcfdi that builds and seals a comparable REP (no PAC, no database);
(b) this service end to end: register payment, readiness, reserve, folio, build, seal, local
    validation (light XSD + rules + history), sandbox PAC (XSD, sello, certificate, TFD signature),
    debit, persist; sandbox latency 0 ms;
(c) the same with 150 ms of PAC latency (requests overlap: the pipeline is async);
(d) the raw RSA-2048 PKCS#1 v1.5 signing rate of ``cryptography`` (each REP needs two signatures
    with the sandbox PAC: the CSD's sello and the PAC's SelloSAT).
Peak RSS is printed after 500 and after 2,000 payments of (b).  (b) and (c) run on SQLite (temp dir)
and on PostgreSQL (a private database created and dropped on ``TIMBRADO_TEST_POSTGRES_URL``, default
postgres@127.0.0.1:5432/test); one process.  (b) also reports CPU per REP (all threads) and, apart,
the ``rep.deliver`` job (PDF + e-mail queued) that follows every stamp.

    .venv/bin/python -m bench.stamping [N] [CONCURRENCY] [sqlite,postgresql]
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import select

from bench.rep_engine import satcfdi_rep
from core.audit.service import Actor
from core.clock import FrozenClock
from core.db import migrate
from core.db.engine import Database, create_engine
from core.pac.sandbox import SandboxPac
from core.stamping import invoices, payments
from core.stamping.models import Invoice, PaymentComplement
from core.stamping.runtime import default_pdf_renderer
from core.stamping.stamping import Outcome
from tests.integration.stamping.conftest import World, make_world, sandbox_identity
from tests.support.invoices import amake_invoice, csd

NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
PG_ADMIN = os.environ.get("TIMBRADO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_satcfdi(n: int) -> float:
    from satcfdi.models import Signer as SatSigner

    cred = csd()
    key = cred.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    run = satcfdi_rep(SatSigner.load(certificate=cred.cer_der(), key=key, check=False))
    start = time.perf_counter()
    for _ in range(n):
        run()
    return n / (time.perf_counter() - start)


def bench_rsa(n: int) -> float:
    key = csd().private_key
    start = time.perf_counter()
    for i in range(n):
        key.sign(i.to_bytes(8, "big") * 64, padding.PKCS1v15(), hashes.SHA256())
    return n / (time.perf_counter() - start)


async def seed_invoices(world: World, n: int) -> list[int]:
    """One real signed and stamped invoice, cloned ``n`` times under fresh UUIDs (setup, not timed)."""
    xml = await amake_invoice()
    async with world.db.transaction() as s:
        first = await invoices.register_invoice(s, world.vendor_id, xml, actor=Actor.system(), now=world.clock.now())
        template = await s.get(Invoice, first.id)
        assert template is not None
        columns = {c.key: getattr(template, c.key) for c in Invoice.__table__.columns if c.key != "id"}
        rows = [Invoice(**(columns | {"uuid": str(uuid.uuid4()).upper()})) for _ in range(n - 1)]
        s.add_all(rows)
        await s.flush()
        return [first.id, *(r.id for r in rows)]


@contextlib.asynccontextmanager
async def database(kind: str, folder: Path, pool: int) -> AsyncIterator[Database]:
    """A fresh migrated database: SQLite in ``folder`` or a private PostgreSQL database (dropped after)."""
    if kind == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}", pool_size=pool)
        await migrate.upgrade(engine)
        try:
            yield Database(engine)
        finally:
            await engine.dispose()
        return
    import asyncpg

    name = f"timbrado_bench_stamping_{os.getpid()}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        engine = create_engine(url, pool_size=pool)
        await migrate.upgrade(engine)
        try:
            yield Database(engine)
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


@dataclass(frozen=True, slots=True)
class ServiceRun:
    rate: float  # REP/s (wall)
    cpu_ms: float  # process CPU (all threads) per REP
    deliver_rate: float | None = None  # rep.deliver jobs per second (PDF + e-mail queued)


async def run_service(
    kind: str,
    folder: Path,
    n: int,
    concurrency: int,
    latency: float,
    checkpoints: tuple[int, ...] = (),
    *,
    deliveries: int = 0,
) -> ServiceRun:
    """``n`` payments registered and stamped, ``concurrency`` at a time (register + ``stamp_payment``).

    The ``rep.deliver`` jobs are queued as in production (part of the measured transaction);
    with ``deliveries`` > 0 that many of them are then run (PDF rendered, e-mail queued) and timed
    apart: delivery is its own job, after the REP is stamped and stored.
    """
    async with database(kind, folder, max(4, min(concurrency, 20))) as db:
        clock = FrozenClock(NOW)
        pac = SandboxPac(sandbox_identity().signer(), clock=clock, latency=latency)
        world = await make_world(db, clock, folder, stamps_count=n + 10, pac=pac)
        world.stamper.pdf_renderer = default_pdf_renderer()
        ids = await seed_invoices(world, n)
        gate = asyncio.Semaphore(concurrency)
        done = 0
        stamped = 0

        async def one(invoice_id: int) -> None:
            nonlocal done, stamped
            async with gate:
                async with db.transaction() as s:
                    req = world.request(invoice_id, "580.00")
                    view = await payments.register_payment(s, req, actor=Actor.system(), now=clock.now())
                outcome = await world.stamper.stamp_payment(view.id)
                stamped += outcome is Outcome.STAMPED
                done += 1
                if done in checkpoints:
                    print(f"      after {done:>5} payments: peak RSS {rss_mb():7.1f} MB", flush=True)

        cpu = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in ids))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        assert stamped == n, f"only {stamped} of {n} stamped"
        deliver_rate = None
        if deliveries:
            async with db.session() as s:
                rep_ids = list(await s.scalars(select(PaymentComplement.id).order_by(PaymentComplement.id)))
            start = time.perf_counter()
            for rep_id in rep_ids[:deliveries]:
                await world.stamper.deliver_rep(rep_id)
            deliver_rate = min(deliveries, len(rep_ids)) / (time.perf_counter() - start)
        return ServiceRun(n / elapsed, cpu / n * 1000, deliver_rate)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    kinds = sys.argv[3].split(",") if len(sys.argv) > 3 else ["sqlite", "postgresql"]
    print(f"Stamping benchmark: {n} payments of one invoice each, concurrency {concurrency}, one process\n")
    a = bench_satcfdi(n)
    print(f"(a) satcfdi build + seal loop (no PAC, no DB)        {a:9.1f} REP/s  ({1000 / a:6.2f} ms/REP)")
    d = bench_rsa(max(n, 1000))
    print(f"(d) raw RSA-2048 sign (cryptography)                 {d:9.1f} sig/s  -> limit {d / 2:.0f} REP/s")
    for kind in kinds:
        print(f"\n-- {kind}")
        with tempfile.TemporaryDirectory() as tmp:
            b = asyncio.run(run_service(kind, Path(tmp), n, concurrency, 0.0, (500, n), deliveries=min(n, 200)))
        print(
            f"(b) service end to end, sandbox PAC 0 ms             {b.rate:9.1f} REP/s  ({1000 / b.rate:6.2f} ms/REP,"
            f" CPU {b.cpu_ms:5.2f} ms/REP)  (b)/(a) = {b.rate / a:.2f}x"
        )
        assert b.deliver_rate is not None
        print(f"    delivery job (PDF + e-mail queued), one at a time {b.deliver_rate:8.1f} REP/s")
        with tempfile.TemporaryDirectory() as tmp:
            c = asyncio.run(run_service(kind, Path(tmp), n, concurrency * 8, 0.150))
        print(f"(c) service end to end, sandbox PAC 150 ms           {c.rate:9.1f} REP/s  (target >= 100)")
    print(f"\npeak RSS at the end: {rss_mb():.1f} MB")


if __name__ == "__main__":
    main()
