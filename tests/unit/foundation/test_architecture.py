"""The core never imports its drivers (checked by import-linter over the real import graph)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_core_sources_do_not_mention_driver_packages() -> None:
    offenders = []
    for path in (REPO / "core").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and stripped.split()[1].split(".")[0] in {
                "mail",
                "bot",
                "admin",
            }:
                offenders.append(f"{path.relative_to(REPO)}: {stripped}")
    assert offenders == []


def _reads_environment(source: str) -> bool:
    """True when the code (not its comments or docstrings) touches ``os.environ`` or ``getenv``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in ("environ", "getenv", "environb") for alias in node.names)
        ):
            return True
    return False


def test_reads_environment_detects_real_access_only() -> None:
    assert _reads_environment("import os\nx = os.environ.get('A')")
    assert _reads_environment("from os import getenv")
    assert not _reads_environment('"""this module never reads os.environ"""')


def test_nothing_but_settings_reads_the_environment() -> None:
    readers = [
        str(p.relative_to(REPO))
        for pkg in ("core", "mail", "bot", "admin")
        for p in sorted((REPO / pkg).rglob("*.py"))
        if _reads_environment(p.read_text(encoding="utf-8"))
    ]
    assert readers == ["core/settings.py"]
