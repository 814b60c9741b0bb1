"""Estado de cuenta benchmark: a vendor with 200,000 REPs.

    .venv/bin/python bench/statement.py [ROWS] [DATABASE_URL]     (or: -m bench.statement)

Seeds ROWS REPs (default 200,000) into a fresh SQLite file (or the given PostgreSQL database,
which must be empty and is migrated here), then measures in the same run:

- the first page and page 1,000 (50 rows a page, keyset cursor) of the REP list: median of 20 calls;
- a raw SELECT of the same rows, rows only counted, twice: through SQLAlchemy (``rep_query`` streamed
  in batches, rows processed by the column types) and at driver level (the same SQL text on plain
  ``sqlite3`` / ``asyncpg``, fetched in batches of the export's size: no SQLAlchemy at all);
- the CSV and XLSX exports to a file;

each SELECT/export in a child process of its own, so its peak RSS is its own (``wait4``).
Targets (issue 7): page < 50 ms at any depth, CSV <= 3x raw SELECT, XLSX <= 10x, peak RSS < 200 MB;
the ratios are printed against both baselines.
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy.engine import Dialect  # noqa: E402

from core.db import migrate  # noqa: E402
from core.db.engine import Database, create_engine  # noqa: E402
from core.statements import exports, queries  # noqa: E402
from core.statements.queries import RepFilter  # noqa: E402
from tests.integration.statements.seed import bulk_insert_reps, rep_rows, seed_payment, seed_vendor  # noqa: E402

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
        # COPY on PostgreSQL, executemany on SQLite
        await bulk_insert_reps(db, rep_rows(client_id, vid, payment_id, rows, newest=NOW, step=dt.timedelta(minutes=2)))
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


def driver_sql(dialect: Dialect, vendor_id: int, time_zone: str) -> str:
    """The export's SELECT (same columns, filter and order) as plain SQL text for the bare driver."""
    stmt = queries.rep_query(vendor_id, RepFilter(), time_zone)
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def driver_select(url: str, vendor_id: int) -> int:
    """Count the export's rows with the bare driver, in batches of the export's size."""
    db = Database(create_engine(url))
    try:
        async with db.session() as s:
            vendor = await queries.vendor_ref(s, vendor_id)
        sql = driver_sql(db.engine.dialect, vendor_id, vendor.time_zone)
    finally:
        await db.dispose()
    count = 0
    if url.startswith("postgresql"):
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            async with conn.transaction():  # a server-side cursor, as the export streams it
                cursor = await conn.cursor(sql)
                while rows := await cursor.fetch(exports.BATCH):
                    count += len(rows)
        finally:
            await conn.close()
        return count
    import sqlite3

    lite = sqlite3.connect(url.split(":///", 1)[1])
    try:
        cur = lite.execute(sql)
        while rows := cur.fetchmany(exports.BATCH):
            count += len(rows)
    finally:
        lite.close()
    return count


async def phase(kind: str, url: str, vendor_id: int, out: Path) -> int:
    if kind == "driver":
        return await driver_select(url, vendor_id)
    db = Database(create_engine(url))
    try:
        async with db.session() as s:
            vendor = await queries.vendor_ref(s, vendor_id)
            if kind == "select":  # what the exports read through before they went to the bare driver
                count = 0
                stmt = queries.rep_query(vendor.id, RepFilter(), vendor.time_zone)
                result = await s.stream(stmt.execution_options(yield_per=exports.BATCH))
                async for rows in result.partitions(exports.BATCH):
                    count += len(rows)
                await result.close()
                return count
            if kind == "csv":
                return await exports.write_csv(s, vendor, RepFilter(), out)
            return await exports.write_xlsx(s, vendor, RepFilter(), out)
    finally:
        await db.dispose()


def run_phase(kind: str, url: str, vendor_id: int, out: Path) -> tuple[float, float, int]:
    """Seconds (measured in the child, imports excluded), peak RSS (MB) and result (rows or bytes) of one
    phase in a child process.

    The parent stays small (it never holds the seed rows): Linux keeps a process's RSS high-water
    mark across fork+exec, so a big parent would inflate every child's figure.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.statement", "_phase", kind, url, str(vendor_id), str(out)],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phase {kind} failed")
    result, seconds = output.decode().split()[-2:]
    return float(seconds), usage.ru_maxrss / 1024, int(result)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_phase":
        kind, url, vendor_id, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
        start = time.perf_counter()
        if kind == "seed":
            print(asyncio.run(seed(url, vendor_id)), end=" ")
        else:
            print(asyncio.run(phase(kind, url, vendor_id, out)), end=" ")
        print(f"{time.perf_counter() - start:.4f}")
        return
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    work = Path(tempfile.mkdtemp(prefix="bench-statement-"))
    url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite+aiosqlite:///{work / 'bench.db'}"
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    started = time.perf_counter()
    seeded = subprocess.run(
        [sys.executable, "-m", "bench.statement", "_phase", "seed", url, str(rows), "-"],
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    vendor_id = int(seeded.stdout.split()[0])
    print(f"{backend}: seeded 2 vendors x {rows:,} REPs in {time.perf_counter() - started:.1f} s")
    first, deep = asyncio.run(page_latencies(url, vendor_id))
    print(f"page 1 (50 rows):      {first:7.2f} ms median of 20")
    print(f"page 1,000 (50 rows):  {deep:7.2f} ms median of 20")
    select_s, select_mb, select_rows = run_phase("select", url, vendor_id, work / "none")
    driver_s, driver_mb, driver_rows = run_phase("driver", url, vendor_id, work / "none")
    assert select_rows == driver_rows == rows, f"both SELECTs must read {rows} rows: {select_rows}, {driver_rows}"
    csv_s, csv_mb, _ = run_phase("csv", url, vendor_id, work / "x.csv")
    xlsx_s, xlsx_mb, xlsx_rows = run_phase("xlsx", url, vendor_id, work / "x.xlsx")
    assert xlsx_rows == rows
    driver = "asyncpg" if backend == "PostgreSQL" else "sqlite3"
    print("(each in its own process; time excludes interpreter start-up)")
    width = 44
    sqlalchemy_label = "raw SELECT, SQLAlchemy (streamed rep_query):"
    driver_label = f"raw SELECT, driver ({driver}, same SQL):"
    print(f"{sqlalchemy_label:{width}} {select_s:7.2f} s   peak RSS {select_mb:6.1f} MB")
    print(f"{driver_label:{width}} {driver_s:7.2f} s   peak RSS {driver_mb:6.1f} MB")
    for label, seconds, mb, path in (
        ("CSV export:", csv_s, csv_mb, "x.csv"),
        ("XLSX export:", xlsx_s, xlsx_mb, "x.xlsx"),
    ):
        print(
            f"{label:{width}} {seconds:7.2f} s   peak RSS {mb:6.1f} MB   "
            f"{seconds / select_s:4.1f}x SQLAlchemy SELECT   {seconds / driver_s:4.1f}x driver SELECT   "
            f"{(work / path).stat().st_size / 1e6:.1f} MB"
        )
    for baseline, base_s in (("SQLAlchemy SELECT", select_s), ("driver SELECT", driver_s)):
        verdict = {
            "page < 50 ms": max(first, deep) < 50,
            "CSV <= 3x": csv_s <= 3 * base_s,
            "XLSX <= 10x": xlsx_s <= 10 * base_s,
            "RSS < 200 MB": max(csv_mb, xlsx_mb) < 200,
        }
        print(f"targets vs {baseline}: " + ", ".join(f"{k}: {'ok' if v else 'MISSED'}" for k, v in verdict.items()))


if __name__ == "__main__":
    main()
