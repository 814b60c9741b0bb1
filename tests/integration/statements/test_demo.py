"""``timbrado demo`` runs on embedded defaults in a fresh directory, exits 0 and leaves its outputs there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openpyxl

EXE = str(Path(sys.executable).parent / "timbrado")


def test_demo_runs_end_to_end_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")}
    env["TIMBRADO_DATABASE_URL"] = "postgresql+asyncpg://nobody@127.0.0.1:1/unused"  # the demo ignores it
    env["TIMBRADO_DATA_DIR"] = str(tmp_path / "configured")
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [EXE, "demo", "--data-dir", str(data_dir)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "✗" not in out and "Traceback" not in result.stderr
    assert "Paquete 100 timbres" in out and "Timbres disponibles: 100" in out
    [xlsx] = list((data_dir / "exports").glob("estado-de-cuenta_EKU9003173C9_*.xlsx"))
    assert openpyxl.load_workbook(xlsx).active is not None
    emails = list((data_dir / "spool").rglob("*.eml"))
    assert len(emails) >= 5 and all(str(p) in out for p in emails)
    assert (data_dir / "timbrado.db").exists() and not list((tmp_path / "configured").iterdir())
