"""50 concurrent 10 MB proof uploads through the real API vs a plain aiohttp handler, in one run.

What runs, all on 127.0.0.1, each server in its own process started by this script:

* **api**: the real server (``admin.cli.main(["serve", "--role", "api"])``, the code behind
  ``timbrado serve``) with a fresh migrated SQLite database (``--pg URL`` for PostgreSQL). Each
  upload is ``PUT /api/v1/vendors/1/orders/{id}/proof`` with a vendor token and a distinct ~10 MB
  PDF (10,000,000 bytes, so no upload is deduplicated): the token check, the order lookup, the
  streamed write with SHA-256 and the size limit, the content sniff (the PDF must parse), the
  content-addressed rename, and ``attach_proof`` (order update, audit, e-mail and job rows).
  Measured twice: with ``ContentStore(fsync=True)`` (the current ``admin/deps.file_store``) and
  with ``fsync=False`` (the only change: ``file_store`` patched in the server process).
* **plain**: a minimal aiohttp app whose handler streams the same request bodies to a file in
  64 KB chunks (no hashing, no checks, no fsync, no database).

For each variant: warm up with one upload, then send the 50 uploads at once from one client
session and time from the first request to the last response.  Throughput = bytes sent / wall
time.  The server's RSS growth = its peak RSS (``VmHWM`` from /proc) after the burst minus its RSS
after the warm-up.  Rounds alternate plain / api fsync / api no-fsync (``--rounds``; the summary
gives medians), each round in fresh server processes; ``sync`` runs before every burst so no run
pays for the write-back of the previous one's dirty pages, and 4 GiB of memory are touched once
before the rounds (``warm_memory``: on this VM fresh guest pages cost several times more).

``--experiment threads|piped`` adds API variants with another write path patched in (see
``EXPERIMENTS``); ``BENCH_PROFILE_DIR=dir`` samples every server during its burst with py-spy
(``BENCH_PROFILE_CMD`` replaces the py-spy command, e.g. with strace).

Targets: api throughput >= 70 % of plain; server peak RSS growth < 100 MB.

Usage: .venv/bin/python bench/uploads.py [--uploads 50] [--size 10000000] [--rounds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHUNK = 64 * 1024
MB = 1_000_000


# ---------------------------------------------------------------------------- server processes
def threaded_batches() -> None:
    """Experiment (the design before 2026-12-04): gather 256 KB batches and hash and write each in a
    worker thread (``asyncio.to_thread``) instead of every chunk on the event loop."""
    from core.uploads.store import StreamingUpload

    async def write_from(self: StreamingUpload, chunks: AsyncIterable[bytes]) -> None:
        pending = bytearray()
        try:
            async for chunk in chunks:
                pending += chunk
                if len(pending) >= 256 * 1024:
                    batch, pending = bytes(pending), bytearray()
                    await asyncio.to_thread(self.write, batch)
            if pending:
                await asyncio.to_thread(self.write, bytes(pending))
        except BaseException:
            self.abort()
            raise

    StreamingUpload.write_from = write_from  # type: ignore[method-assign]


def piped_writes() -> None:
    """Experiment: one long-lived writer thread hashes and writes every upload's chunks, fed by a
    queue; the handler waits only once per MB (double buffering), not per chunk."""
    import queue
    import threading

    from core.uploads.store import StreamingUpload

    jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def worker() -> None:
        while True:
            upload, chunk, fut, loop = jobs.get()
            if fut is not None:
                loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))
                continue
            try:
                upload._hash.update(chunk)
                upload._file.write(chunk)
            except Exception as exc:
                upload._pipe_error = exc

    threading.Thread(target=worker, daemon=True, name="upload-writer").start()

    async def write_from(self: StreamingUpload, chunks: AsyncIterable[bytes], *, batch_bytes: int = 1 << 20) -> None:
        loop = asyncio.get_running_loop()
        previous: asyncio.Future[None] | None = None
        since = 0
        self._pipe_error = None  # type: ignore[attr-defined]
        try:
            async for chunk in chunks:
                self._size += len(chunk)
                jobs.put((self, chunk, None, None))
                since += len(chunk)
                if since >= batch_bytes:
                    since = 0
                    marker = loop.create_future()
                    jobs.put((None, None, marker, loop))
                    if previous is not None:
                        await previous
                    previous = marker
            marker = loop.create_future()
            jobs.put((None, None, marker, loop))
            await marker
            if self._pipe_error is not None:  # type: ignore[attr-defined]
                raise self._pipe_error  # type: ignore[attr-defined]
        except BaseException:
            self.abort()
            raise

    StreamingUpload.write_from = write_from  # type: ignore[method-assign]


EXPERIMENTS = {"threads": threaded_batches, "piped": piped_writes}


def serve_api(no_fsync: bool, experiments: list[str]) -> int:
    """Run the real server (api role).  With ``no_fsync`` the proof store skips fsync."""
    for name in experiments:
        EXPERIMENTS[name]()
    if no_fsync:
        import admin.deps
        import admin.routes.orders
        from core.uploads.store import ContentStore

        def file_store(container: object) -> ContentStore:
            return ContentStore(container.settings.data_dir / "files", fsync=False)  # type: ignore[attr-defined]

        admin.deps.file_store = file_store  # type: ignore[assignment]
        admin.routes.orders.file_store = file_store  # type: ignore[assignment]
    from admin.cli import main

    return main(["serve", "--role", "api"])


def serve_plain(port: int, directory: str) -> int:
    """The baseline: stream the request body to disk, nothing else."""
    counter = iter(range(1_000_000))

    async def upload(request: web.Request) -> web.Response:
        path = Path(directory) / f"upload-{next(counter)}"
        size = 0
        with path.open("wb") as out:
            async for chunk in request.content.iter_chunked(CHUNK):
                out.write(chunk)
                size += len(chunk)
        return web.json_response({"size": size})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_put("/upload", upload)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    return 0


# ---------------------------------------------------------------------------- client side
def warm_memory(gib: float) -> float:
    """Touch ``gib`` GiB of fresh memory in a child process and give it back.

    On a virtual machine whose memory the host backs lazily, the first touch of a guest page costs
    several times a normal page fault; whichever variant first needs new page-cache pages pays it
    (seen here: the same 500 MB of 64 KB writes took 1.3 s on fresh memory and 0.1 s after).  Touching
    the memory once before the rounds keeps that cost out of every variant.  Returns the seconds spent.
    """
    code = (
        "import mmap,sys\n"
        "n=int(float(sys.argv[1])*(1<<30)); m=mmap.mmap(-1,n)\n"
        "for off in range(0,n,1<<20): m[off:off+(1<<20):4096]=b'y'*256\n"
        "m.close()"
    )
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(gib)], check=True)
    return time.perf_counter() - began


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_pdf(size: int, seed: int) -> bytes:
    """A structurally valid PDF of exactly ``size`` bytes with one random stream (distinct per seed)."""
    head = b"%PDF-1.7\n%" + seed.to_bytes(8, "big").hex().encode() + b"\n1 0 obj\n<< /Length "
    tail_fixed = b"xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 >>\nstartxref\n"
    # Solve for the payload length (the Length and startxref numbers change the total size).
    for payload_len in range(size - 300, size - 100):
        body = head + str(payload_len).encode() + b" >>\nstream\n"
        body_len = len(body) + payload_len + len(b"\nendstream\nendobj\n")
        total = body_len + len(tail_fixed) + len(str(body_len).encode()) + len(b"\n%%EOF\n")
        if total == size:
            payload = os.urandom(payload_len)
            data = body + payload + b"\nendstream\nendobj\n"
            return data + tail_fixed + str(len(data)).encode() + b"\n%%EOF\n"
    raise ValueError(f"cannot build a PDF of {size} bytes")


def relabel(pdf: bytes, seed: int) -> bytes:
    """The same PDF with a different seed comment (same size, different SHA-256)."""
    return pdf[:10] + seed.to_bytes(8, "big").hex().encode() + pdf[26:]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found for {pid}")


@dataclass
class Result:
    variant: str
    uploads: int
    ok: int
    statuses: list[int]
    seconds: float
    bytes_sent: int
    rss_growth_mb: float
    rss_base_mb: float
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    done_at: tuple[float, float, float] = (0.0, 0.0, 0.0)  # first, median, last response (s from start)

    @property
    def mb_s(self) -> float:
        return self.bytes_sent / MB / self.seconds


@contextlib.asynccontextmanager
async def process(argv: list[str], env: dict[str, str], base: str) -> AsyncIterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(base + "/healthz") as r:
                        if r.status == 200:
                            break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {argv}")
                await asyncio.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def server_env(url: str, data_dir: str, port: int) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TIMBRADO_", "SLACK_"))} | {
        "TIMBRADO_DATABASE_URL": url,
        "TIMBRADO_DATA_DIR": data_dir,
        "TIMBRADO_ROLES": "api",
        "TIMBRADO_HTTP_HOST": "127.0.0.1",
        "TIMBRADO_HTTP_PORT": str(port),
        "TIMBRADO_LOG_LEVEL": "WARNING",
    }


async def seed(url: str, orders: int) -> str:
    """A migrated database with an enabled client, vendor 1, a package and ``orders`` orders;
    returns a vendor:1 token."""
    from core.audit.service import Actor
    from core.auth.tokens import create_token
    from core.calendar import BusinessCalendar
    from core.clients import service as clients
    from core.clients.models import Client
    from core.db import migrate
    from core.db.engine import Database, create_engine
    from core.orders import service
    from core.vendors.service import register_vendor

    db = Database(create_engine(url))
    cfg = service.OrdersConfig(
        mail_from="t@bench.example",
        mail_domain="bench.example",
        slack_enabled=False,
        bank=service.BankData("Beneficiario", "Banco", "012180001234567899"),
        calendar=BusinessCalendar(),
    )
    contact = {"empresa": "Papelera", "nombre": "Rosa", "telefono": "4421234567", "correo": "r@p.mx"}
    try:
        await migrate.upgrade(db.engine)
        now, actor = datetime.now(UTC), Actor.system()
        async with db.transaction() as s:
            client = await clients.create_client(
                s, name="ACME", rfc=None, proveedores_plus=True, contacts=[], actor=actor, now=now
            )
            row = await s.get(Client, client.id)
            assert row is not None
            row.timbrado_enabled = True
            vendor = await register_vendor(
                s, client_id=client.id, rfc="PBA010101AB1", razon_social="Papelera", correo="f@p.mx", actor=actor,
                now=now,
            )  # fmt: skip
            assert vendor.id == 1
            pkg = await service.create_package(
                s, name="P", stamps=100, price_mxn="580.00", validity_days=365, actor=actor, now=now
            )
            for _ in range(orders):
                await service.create_order(
                    s, vendor_id=1, package_id=pkg.id, contact=contact, actor=actor, cfg=cfg, now=now
                )
            _, token = await create_token(s, name="bench", role="vendor:1", at=now)
        return token
    finally:
        await db.dispose()


PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR", "")


def start_profiler(variant: str, pid: int) -> subprocess.Popen[bytes] | None:
    """With ``BENCH_PROFILE_DIR`` set (and py-spy installed), sample the server during the burst into
    ``<dir>/<variant>.txt`` (py-spy's collapsed stacks, threads included; idle frames left out)."""
    if not PROFILE_DIR:
        return None
    out = Path(PROFILE_DIR) / f"{variant.replace(' ', '-')}.txt"
    spy_bin = Path(sys.executable).with_name("py-spy")
    argv = [str(spy_bin), "record", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "250", "--threads"]
    if custom := os.environ.get("BENCH_PROFILE_CMD"):  # e.g. "strace -f -T -e trace=write -o {out} -p {pid}"
        argv = custom.format(out=out, pid=pid).split()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # py-spy attaches
    return proc


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


async def burst(
    variant: str, pid: int, urls: list[str], bodies: list[bytes], headers: dict[str, str], warm: tuple[str, bytes]
) -> Result:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        finished: list[float] = []

        async def put(url: str, body: bytes) -> int:
            async with http.put(url, data=body, headers=headers) as resp:
                await resp.read()
                finished.append(time.perf_counter())
                return resp.status

        assert await put(*warm) == 200, f"{variant}: warm-up upload failed"
        finished.clear()
        # Start from clean page cache state: the previous run's dirty pages (the plain handler never
        # fsyncs) would otherwise be written back during this run and slow it down.
        await asyncio.to_thread(os.sync)
        base_kb = rss_kb(pid, "VmRSS")
        cpu_before, client_before = cpu_seconds(pid), time.process_time()
        spy = start_profiler(variant, pid)
        started = time.perf_counter()
        statuses = await asyncio.gather(*(put(u, b) for u, b in zip(urls, bodies, strict=True)))
        seconds = time.perf_counter() - started
        stop_profiler(spy)
        server_cpu, client_cpu = cpu_seconds(pid) - cpu_before, time.process_time() - client_before
        peak_kb = rss_kb(pid, "VmHWM")
    return Result(
        variant=variant,
        uploads=len(urls),
        ok=sum(1 for s in statuses if s == 200),
        statuses=sorted(set(statuses)),
        seconds=seconds,
        bytes_sent=sum(len(b) for b in bodies),
        rss_growth_mb=max(0, peak_kb - base_kb) / 1024,
        rss_base_mb=base_kb / 1024,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        done_at=(finished[0] - started, statistics.median(finished) - started, finished[-1] - started),
    )


async def run_api(
    variant: str, url: str, work: Path, token: str, first_order: int, bodies: list[bytes], warm_body: bytes
) -> Result:
    port = free_port()
    data_dir = work / variant
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, __file__, "--serve-api"] + (["--no-fsync"] if "no-fsync" in variant else [])
    argv += [f"--experiment={name}" for name in variant.split()[2:]]  # "api fsync threads" -> threads
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/pdf", "X-Filename": "pago.pdf"}
    urls = [f"{base}/api/v1/vendors/1/orders/{first_order + 1 + i}/proof" for i in range(len(bodies))]
    warm = (f"{base}/api/v1/vendors/1/orders/{first_order}/proof", warm_body)
    async with process(argv, server_env(url, str(data_dir), port), base) as proc:
        result = await burst(variant, proc.pid, urls, bodies, headers, warm)
    stored = sum(1 for p in (data_dir / "files").rglob("*") if p.is_file() and p.parent.name != "tmp")
    if stored != len(bodies) + 1:
        print(f"  ! {variant}: {stored} files in the store, expected {len(bodies) + 1}")
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


async def run_plain(work: Path, bodies: list[bytes], warm_body: bytes) -> Result:
    port = free_port()
    directory = work / "plain"
    directory.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, __file__, "--serve-plain", str(port), str(directory)]
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    headers = {"Content-Type": "application/pdf"}
    async with process(argv, env, base) as proc:
        result = await burst(
            "plain", proc.pid, [f"{base}/upload"] * len(bodies), bodies, headers, (f"{base}/upload", warm_body)
        )
    shutil.rmtree(directory, ignore_errors=True)
    return result


def line(r: Result, plain: Result | None) -> str:
    ratio = f"{r.mb_s / plain.mb_s:6.1%}" if plain else "   —  "
    return (
        f"  {r.variant:<22} {r.ok}/{r.uploads} ok http={r.statuses} {r.seconds:6.2f} s {r.mb_s:7.1f} MB/s "
        f"ratio {ratio}  RSS base {r.rss_base_mb:5.0f} MB, peak growth {r.rss_growth_mb:5.1f} MB  "
        f"CPU server {r.server_cpu:4.2f} s, client {r.client_cpu:4.2f} s; "
        f"responses at {r.done_at[0]:.2f} / {r.done_at[1]:.2f} / {r.done_at[2]:.2f} s (first / median / last)"
    )


async def main(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-uploads-", dir=args.dir))
    try:
        url = args.pg or f"sqlite+aiosqlite:///{work / 'bench.db'}"
        api_variants = ["api fsync", "api no-fsync"] + (
            [f"api fsync {e}" for e in args.experiment] + [f"api no-fsync {e}" for e in args.experiment]
        )
        per_round = args.uploads + 1
        token = await seed(url, per_round * len(api_variants) * args.rounds)
        print(f"building {args.uploads} distinct PDFs of {args.size:,} bytes …", flush=True)
        bodies = [make_pdf(args.size, i) for i in range(args.uploads)]
        warm_body = make_pdf(256 * 1024, 10_000)
        print(f"database: {'PostgreSQL' if args.pg else 'SQLite'}; files under {work} ({os.cpu_count()} CPUs)")
        if args.warm_gib > 0:
            spent = warm_memory(args.warm_gib)
            print(f"touched {args.warm_gib:g} GiB of memory first ({spent:.1f} s; see warm_memory)", flush=True)
        results: dict[str, list[Result]] = {"plain": [], **{v: [] for v in api_variants}}
        next_order = 1
        for n in range(args.rounds):
            print(f"round {n + 1}/{args.rounds}", flush=True)
            plain = await run_plain(work, bodies, warm_body)
            results["plain"].append(plain)
            print(line(plain, None), flush=True)
            for variant in api_variants:
                # Content never seen by this database (file rows are shared by SHA-256): new seeds.
                fresh = [relabel(b, next_order + i) for i, b in enumerate(bodies)]
                r = await run_api(variant, url, work, token, next_order, fresh, relabel(warm_body, next_order + 9999))
                next_order += per_round
                results[variant].append(r)
                print(line(r, plain), flush=True)
        plains = results["plain"]
        print(
            f"\nsummary over {args.rounds} rounds: median MB/s, median of the per-round ratios (each API run "
            "against the plain run of its round), worst peak RSS growth"
        )
        print(f"  {'plain':<22} {statistics.median(r.mb_s for r in plains):7.1f} MB/s")
        verdicts = []
        for variant in api_variants:
            runs = results[variant]
            ratio = statistics.median(r.mb_s / p.mb_s for r, p in zip(runs, plains, strict=True))
            peak = max(r.rss_growth_mb for r in runs)
            ok = all(r.ok == r.uploads for r in runs) and ratio >= 0.7 and peak < 100
            verdicts.append(ok)
            print(
                f"  {variant:<22} {statistics.median(r.mb_s for r in runs):7.1f} MB/s  ratio {ratio:6.1%}  "
                f"RSS growth {peak:5.1f} MB -> {'OK' if ok else 'MISSED'} (targets: ratio >= 70 %, RSS < 100 MB)"
            )
        return 0 if all(verdicts) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--size", type=int, default=10 * MB, help="bytes per upload (default 10,000,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default="", help="PostgreSQL URL (postgresql+asyncpg://…) instead of SQLite")
    parser.add_argument("--dir", default=None, help="where to put the temporary data (a disk, not tmpfs)")
    parser.add_argument("--warm-gib", type=float, default=4.0, help="memory touched once before the rounds (0 = none)")
    parser.add_argument("--serve-api", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-fsync", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        help="also measure the API with an experimental change: threads or piped (see EXPERIMENTS)",
    )
    parser.add_argument("--serve-plain", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve_api:
        sys.exit(serve_api(ns.no_fsync, ns.experiment))
    if ns.serve_plain:
        sys.exit(serve_plain(int(ns.serve_plain[0]), ns.serve_plain[1]))
    sys.exit(asyncio.run(main(ns)))
