"""The ``timbrado`` command: configuration errors exit 2 with one line, and the admin commands work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).parent / "timbrado")


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | env
    return subprocess.run([EXE, *args], env=full, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("env", "args", "variable"),
    [
        ({"TIMBRADO_DATABASE_URL": "oracle://x/y"}, ["db", "upgrade"], "TIMBRADO_DATABASE_URL"),
        ({"TIMBRADO_ROLES": "api,nope"}, ["serve"], "TIMBRADO_ROLES"),
        ({}, ["serve", "--role", "api,nope"], "--role"),
        ({"TIMBRADO_DATA_DIR": "/proc/timbrado"}, ["serve"], "TIMBRADO_DATA_DIR"),
        ({"TIMBRADO_HTTP_PORT": "-1"}, ["serve"], "TIMBRADO_HTTP_PORT"),
    ],
)
def test_bad_configuration_exits_2_with_one_line_naming_the_variable(
    tmp_path: Path, env: dict[str, str], args: list[str], variable: str
) -> None:
    env = {"TIMBRADO_DATA_DIR": str(tmp_path)} | env
    result = run(args, env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_db_upgrade_tokens_and_jobs_commands(tmp_path: Path) -> None:
    env = {"TIMBRADO_DATA_DIR": str(tmp_path)}
    assert run(["db", "current"], env).returncode == 1
    up = run(["db", "upgrade"], env)
    assert up.returncode == 0, up.stderr
    assert run(["db", "current"], env).returncode == 0
    created = run(["tokens", "create", "--role", "vendor:12", "--name", "Proveedor 12"], env)
    assert created.returncode == 0
    token = created.stdout.strip()
    assert token.startswith("tcp_")
    listed = run(["tokens", "list"], env)
    assert "vendor:12" in listed.stdout
    assert token not in listed.stdout
    bad = run(["tokens", "create", "--role", "root"], env)
    assert bad.returncode == 2
    assert "rol inválido" in bad.stderr
    ping = run(["jobs", "ping", "3"], env)
    assert ping.returncode == 0, ping.stderr
    ran = run(["jobs", "run"], env)
    assert "exitosos: 3" in ran.stdout
    listed = run(["jobs", "list", "--status", "succeeded"], env)
    assert listed.stdout.count("system.ping") == 3
    assert run(["jobs", "retry"], env).returncode == 2
