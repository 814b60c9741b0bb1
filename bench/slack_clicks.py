"""200 concurrent signed "Aprobar" clicks on 200 different requests, against the real server.

For each database (SQLite, and PostgreSQL when reachable) this:
  1. creates a fresh, migrated database with 200 clients (with Proveedores Plus) and 200 open
     configuration requests;
  2. starts ``timbrado serve --role api`` in its own process, with Slack over HTTP and its Web API
     client pointed at a local fake Slack (the fake runs in this process);
  3. warms up with one click (Bolt's first request calls auth.test), then sends 200 signed
     ``block_actions`` requests at once, one per request, and times each until its HTTP response;
  4. checks, from the database, that every request was approved exactly once (one
     ``request.approved`` audit event each) and that every clicker was told (200 ephemerals).

Target: p99 < 300 ms.  Usage:
  .venv/bin/python bench/slack_clicks.py [--clicks 200] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
from sqlalchemy import func, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.audit.models import AuditEvent  # noqa: E402
from core.audit.service import Actor  # noqa: E402
from core.clients import service as clients  # noqa: E402
from core.db import migrate  # noqa: E402
from core.db.engine import Database, create_engine  # noqa: E402
from core.enablement import service  # noqa: E402
from core.enablement.models import ConfigRequest, RequestSource  # noqa: E402
from tests.support import fake_slack  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402

EXE = str(Path(sys.executable).parent / "timbrado")
SECRET = "bench-signing-secret-0123456789abcdef"
STAFF = "UBENCHSTAFF"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(url: str, n: int) -> list[int]:
    db = Database(create_engine(url))
    try:
        await migrate.upgrade(db.engine)
        now = datetime.now(UTC)
        cfg = service.EnablementConfig(
            mail_from="soporte@bench.example", mail_domain="bench.example", slack_enabled=False
        )
        ids = []
        async with db.transaction() as s:
            for i in range(n + 1):  # one extra for the warm-up click
                client = await clients.create_client(
                    s,
                    name=f"Cliente {i:04d} SA de CV",
                    rfc=None,
                    proveedores_plus=True,
                    contacts=[f"compras@cliente{i}.example"],
                    actor=Actor.system(),
                    now=now,
                )
                req, _ = await service.open_request(
                    s,
                    source=RequestSource.API,
                    requester_email=f"compras@cliente{i}.example",
                    client_id=client.id,
                    actor=Actor.system(),
                    cfg=cfg,
                    now=now,
                )
                ids.append(req.id)
        return ids
    finally:
        await db.dispose()


async def check(url: str, ids: list[int]) -> tuple[int, int, int]:
    """(approved requests, requests with exactly one approval event, total approval events)."""
    db = Database(create_engine(url))
    try:
        async with db.transaction() as s:
            approved = await s.scalar(
                select(func.count()).where(ConfigRequest.id.in_(ids), ConfigRequest.status == "enabled")
            )
            rows = (
                await s.execute(
                    select(AuditEvent.subject_id, func.count())
                    .where(AuditEvent.action == "request.approved", AuditEvent.subject_id.in_([str(i) for i in ids]))
                    .group_by(AuditEvent.subject_id)
                )
            ).all()
        return int(approved or 0), sum(1 for _, c in rows if c == 1), sum(int(c) for _, c in rows)
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def server(url: str, fake: FakeSlack, data_dir: str) -> AsyncIterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMBRADO_", "SLACK_"))} | {
        "TIMBRADO_DATABASE_URL": url,
        "TIMBRADO_DATA_DIR": data_dir,
        "TIMBRADO_ROLES": "api",
        "TIMBRADO_HTTP_HOST": "127.0.0.1",
        "TIMBRADO_HTTP_PORT": str(port),
        "TIMBRADO_LOG_LEVEL": "WARNING",
        "TIMBRADO_SLACK_BOT_TOKEN": "xoxb-bench",
        "TIMBRADO_SLACK_SIGNING_SECRET": SECRET,
        "TIMBRADO_SLACK_CHANNEL": "CBENCH",
        "TIMBRADO_SLACK_ALLOWED_USERS": STAFF,
        "TIMBRADO_SLACK_API_URL": fake.api_url,
    }
    proc = subprocess.Popen([EXE, "serve"], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(base + "/healthz") as r:
                        if r.status == 200:
                            break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                await asyncio.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


async def ping(http: aiohttp.ClientSession, base: str) -> None:
    async with http.get(base + "/healthz") as resp:
        await resp.read()


async def click(http: aiohttp.ClientSession, base: str, request_id: int) -> tuple[float, int]:
    req = fake_slack.interaction(
        fake_slack.block_action("request.approve", str(request_id), user_id=STAFF, name="bench"), SECRET
    )
    started = time.perf_counter()
    async with http.post(base + "/slack/events", data=req.body.encode(), headers=req.headers) as resp:
        await resp.read()
        return time.perf_counter() - started, resp.status


async def run(label: str, url: str, n: int) -> None:
    ids = await seed(url, n)
    fake = await FakeSlack().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with server(url, fake, tmp) as base:
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector) as http:
                    # Slack keeps connections alive: open them first, like a warmed-up pool.
                    await asyncio.gather(*(ping(http, base) for _ in range(n)))
                    warm, status = await click(http, base, ids[-1])
                    assert status == 200, status
                    await fake.wait_for("chat.postEphemeral", 1, timeout=10)
                    targets = ids[:n]
                    started = time.perf_counter()
                    results = await asyncio.gather(*(click(http, base, rid) for rid in targets))
                    wall = time.perf_counter() - started
                    await fake.wait_for("chat.postEphemeral", n + 1, timeout=60)
        approved, exactly_once, events = await check(url, ids[:n])
    finally:
        await fake.stop()
    times = sorted(t * 1000 for t, _ in results)
    statuses = {s for _, s in results}
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, round(0.99 * len(times)) - 1)]
    told = sum(1 for c in fake.calls_to("chat.postEphemeral") if "aprobada" in c.args.get("text", "")) - 1
    verdict = "OK" if p99 < 300 and approved == n and exactly_once == n and events == n else "MISSED"
    print(
        f"{label:<11} clicks={n} http={sorted(statuses)} p50={p50:6.1f} ms p99={p99:6.1f} ms max={times[-1]:6.1f} ms "
        f"wall={wall * 1000:6.0f} ms (warm-up {warm * 1000:.0f} ms) | approved={approved} exactly-once={exactly_once} "
        f"approval events={events} ephemerals={told} -> {verdict}"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument(
        "--pg", default=os.environ.get("TIMBRADO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    print(f"Slack clicks benchmark: {args.clicks} concurrent signed 'Aprobar' clicks, one per request")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}; target p99 < 300 ms")
    with tempfile.TemporaryDirectory() as tmp:
        await run("SQLite", f"sqlite+aiosqlite:///{tmp}/bench.db", args.clicks)
    admin = args.pg.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncio.wait_for(asyncpg.connect(admin), 5)
    except Exception as exc:
        print(f"PostgreSQL  skipped: not reachable at {admin} ({type(exc).__name__})")
        return 0
    name = f"timbrado_bench_slack_{os.getpid()}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
        await run("PostgreSQL", url, args.clicks)
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
