"""``timbrado statement show|export|portfolio|send`` through the real executable."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import openpyxl

from core.db.engine import Database, create_engine
from core.stamps import service as stamps
from tests.integration.statements.seed import insert_reps, rep_rows, seed_payment, seed_vendor

EXE = str(Path(sys.executable).parent / "timbrado")
NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | env
    return subprocess.run([EXE, *args], env=full, capture_output=True, text=True, timeout=120, cwd=cwd)


async def _seed(url: str, count: int) -> int:
    db = Database(create_engine(url))
    try:
        client_id, vendor_id = await seed_vendor(db, NOW, razon_social="Compañía Ñandú", time_zone="America/Cancun")
        async with db.transaction() as s:
            await stamps.provision(
                s, vendor_id=vendor_id, order_id=None, plan_name="Paquete 500", stamps=500, validity_days=365,
                price_paid_mxn=Decimal("4640.00"), purchased_at=NOW, now=NOW,
            )  # fmt: skip
        payment_id = await seed_payment(db, client_id, vendor_id, NOW)
        await insert_reps(db, rep_rows(client_id, vendor_id, payment_id, count, newest=NOW))
        return vendor_id
    finally:
        await db.dispose()


def test_show_prints_plans_and_reps_as_tables(database_url: str, tmp_path: Path) -> None:
    vendor_id = asyncio.run(_seed(database_url, 30))
    env = {"TIMBRADO_DATA_DIR": str(tmp_path), "TIMBRADO_DATABASE_URL": database_url}
    result = run(["statement", "show", "--vendor", str(vendor_id), "--limit", "5"], env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Compañía Ñandú (EKU9003173C9)" in out and "Paquete 500" in out and "$4,640.00" in out
    assert "No. pago" in out and "P-30" in out and "P-25" not in out and "--cursor" in out
    missing = run(["statement", "show", "--vendor", "999"], env)
    assert missing.returncode == 1 and "No se encontró el proveedor." in missing.stderr


def test_export_writes_the_file_with_progress_on_stderr(database_url: str, tmp_path: Path) -> None:
    vendor_id = asyncio.run(_seed(database_url, 12_000))
    env = {"TIMBRADO_DATA_DIR": str(tmp_path), "TIMBRADO_DATABASE_URL": database_url}
    target = tmp_path / "out" / "estado.xlsx"
    result = run(["statement", "export", "--vendor", str(vendor_id), "--format", "xlsx", "--output", str(target)], env)
    assert result.returncode == 0, result.stderr
    assert "10,000 filas escritas" in result.stderr and "12,000 filas escritas" in result.stderr
    sheet = openpyxl.load_workbook(target, read_only=True).active
    assert sheet is not None and sheet.max_row == 12_001
    csv_run = run(
        ["statement", "export", "--vendor", str(vendor_id), "--format", "csv", "--from", "01/12/2026"],
        env,
        cwd=tmp_path,
    )
    assert csv_run.returncode == 0, csv_run.stderr
    written = tmp_path / csv_run.stdout.strip()
    assert written.name == "estado-de-cuenta_EKU9003173C9_20261201_hoy.csv"
    with written.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "Fecha de emisión" and len(rows) > 1
    bad = run(["statement", "export", "--vendor", str(vendor_id), "--to", "31/02/2026"], env)
    assert bad.returncode == 1 and "fecha inválida" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "un-archivo").write_text("no es una carpeta")
    blocked = run(
        ["statement", "export", "--vendor", str(vendor_id), "--output", str(tmp_path / "un-archivo" / "e.csv")], env
    )
    assert blocked.returncode == 1 and "Traceback" not in blocked.stderr
    assert "un-archivo" in blocked.stderr and "base de datos" not in blocked.stderr


def test_portfolio_and_send(database_url: str, tmp_path: Path) -> None:
    asyncio.run(_seed(database_url, 1))
    env = {"TIMBRADO_DATA_DIR": str(tmp_path), "TIMBRADO_DATABASE_URL": database_url}
    result = run(["statement", "portfolio"], env)
    assert result.returncode == 0 and "EKU9003173C9" in result.stdout
    sent = run(["statement", "send"], env)
    assert sent.returncode == 0 and "Resúmenes en cola" in sent.stdout
