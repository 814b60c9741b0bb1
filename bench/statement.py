"""Estado de cuenta benchmark: a vendor with 200,000 REPs.

    .venv/bin/python -m bench.statement [ROWS] [DATABASE_URL]

Seeds ROWS REPs (default 200,000) into a fresh SQLite file (or the given PostgreSQL database,
which must be empty and is migrated here), then measures in the same run:

- the first page and page 1,000 (50 rows a page, keyset cursor) of the REP list: median of 20 calls;
- a raw SELECT of the same rows (the export's query, streamed, rows only counted);
- the CSV and XLSX exports to a file;

each SELECT/export in a child process of its own, so its peak RSS is its own (``wait4``).
Targets (issue 7): page < 50 ms at any depth, CSV <= 3x raw SELECT, XLSX <= 10x, peak RSS < 200 MB.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.db import migrate
from core.db.engine import Database, create_engine
from core.statements import exports, queries
from core.statements.queries import RepFilter
from tests.integration.statements.seed import insert_reps, rep_rows, seed_payment, seed_vendor

NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
PAGE = 50


async def seed(url: str, rows: int) -> int:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    db = Database(engine)
    client_id, vendor_id = await seed_vendor(db, NOW, time_zone="America/Mexico_City")
    # a second vendor with the same volume, so the vendor filter has work to do
    _, other = await seed_vendor(db, NOW, rfc="IIA040805DZ4", client_id=client_id)
    for vid in (vendor_id, other):
        payment_id = await seed_payment(db, client_id, vid, NOW)
        await insert_reps(db, rep_rows(client_id, vid, payment_id, rows, newest=NOW, step=dt.timedelta(minutes=2)))
    if url.startswith("postgresql"):
        async with engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE payment_complements")
    await db.dispose()
    return vendor_id


async def page_latencies(url: str, vendor_id: int) -> tuple[float, float]:
    db = Database(create_engine(url))
    try:
        async with db.session() as s:
            vendor = await queries.vendor_ref(s, vendor_id)
            # walk to page 1,000 to get its cursor (not timed)
            cursor = None
            for _ in range(999):
                page = await queries.list_reps(s, vendor, RepFilter(), cursor=cursor, limit=PAGE)
                cursor = page.next_cursor
            assert cursor is not None, "fewer than 1,000 pages"

            async def timed(c: str | None) -> float:
                samples = []
                for _ in range(20):
                    start = time.perf_counter()
                    page = await queries.list_reps(s, vendor, RepFilter(), cursor=c, limit=PAGE)
                    samples.append(time.perf_counter() - start)
                    assert len(page.items) == PAGE
                return statistics.median(samples) * 1000

            return await timed(None), await timed(cursor)
    finally:
        await db.dispose()


async def phase(kind: str, url: str, vendor_id: int, out: Path) -> int:
    db = Database(create_engine(url))
    try:
        async with db.session() as s:
            vendor = await queries.vendor_ref(s, vendor_id)
            if kind == "select":
                count = 0
                async for rows in exports.iter_rows(s, vendor, RepFilter()):
                    count += len(rows)
                return count
            if kind == "csv":
                return await exports.write_csv(s, vendor, RepFilter(), out)
            return await exports.write_xlsx(s, vendor, RepFilter(), out)
    finally:
        await db.dispose()


def run_phase(kind: str, url: str, vendor_id: int, out: Path) -> tuple[float, float]:
    """Seconds (measured in the child, imports excluded) and peak RSS (MB) of one phase in a child process.

    The parent stays small (it never holds the seed rows): Linux keeps a process's RSS high-water
    mark across fork+exec, so a big parent would inflate every child's figure.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.statement", "_phase", kind, url, str(vendor_id), str(out)],
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase {kind} failed")
    return float(output.decode().split()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_phase":
        kind, url, vendor_id, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
        start = time.perf_counter()
        if kind == "seed":
            print(asyncio.run(seed(url, vendor_id)), end=" ")
        else:
            asyncio.run(phase(kind, url, vendor_id, out))
        print(f"{time.perf_counter() - start:.4f}")
        return
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    work = Path(tempfile.mkdtemp(prefix="bench-statement-"))
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite+aiosqlite:///{work / 'bench.db'}"
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    started = time.perf_counter()
    seeded = subprocess.run(
        [sys.executable, "-m", "bench.statement", "_phase", "seed", url, str(rows), "-"],
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        check=True,
    )
    vendor_id = int(seeded.stdout.split()[0])
    print(f"{backend}: seeded 2 vendors x {rows:,} REPs in {time.perf_counter() - started:.1f} s")
    first, deep = asyncio.run(page_latencies(url, vendor_id))
    print(f"page 1 (50 rows):      {first:7.2f} ms median of 20")
    print(f"page 1,000 (50 rows):  {deep:7.2f} ms median of 20")
    select_s, select_mb = run_phase("select", url, vendor_id, work / "none")
    csv_s, csv_mb = run_phase("csv", url, vendor_id, work / "x.csv")
    xlsx_s, xlsx_mb = run_phase("xlsx", url, vendor_id, work / "x.xlsx")
    print("(each in its own process; time excludes interpreter start-up)")
    print(f"raw SELECT (streamed): {select_s:7.2f} s   peak RSS {select_mb:6.1f} MB")
    print(
        f"CSV export:            {csv_s:7.2f} s   peak RSS {csv_mb:6.1f} MB   "
        f"{csv_s / select_s:4.1f}x SELECT   {(work / 'x.csv').stat().st_size / 1e6:.1f} MB"
    )
    print(
        f"XLSX export:           {xlsx_s:7.2f} s   peak RSS {xlsx_mb:6.1f} MB   "
        f"{xlsx_s / select_s:4.1f}x SELECT   {(work / 'x.xlsx').stat().st_size / 1e6:.1f} MB"
    )
    verdict = {
        "page < 50 ms": max(first, deep) < 50,
        "CSV <= 3x": csv_s <= 3 * select_s,
        "XLSX <= 10x": xlsx_s <= 10 * select_s,
        "RSS < 200 MB": max(csv_mb, xlsx_mb) < 200,
    }
    print("targets: " + ", ".join(f"{k}: {'ok' if v else 'MISSED'}" for k, v in verdict.items()))


if __name__ == "__main__":
    main()
