"""First start in embedded mode: a real ``timbrado serve`` prints a staff token once, with the URLs a
newcomer needs, and that token works against the running API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

EXE = str(Path(sys.executable).parent / "timbrado")
BANNER = "Primer arranque"
TOKEN_RE = re.compile(r"\btcp_[A-Za-z0-9_\-]{20,}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    base: str
    stderr_path: Path
    stdout: str = ""

    async def read_banner(self, timeout: float = 90) -> str:
        """Stdout up to the banner's last line (the curl example)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while "Ejemplo:" not in self.stdout:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no banner; stdout so far: {self.stdout!r}; stderr: {self.stderr()}"
            line = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            assert line, f"stdout closed; stderr: {self.stderr()}"
            self.stdout += line.decode()
        return self.stdout

    async def wait_ready(self, http: aiohttp.ClientSession, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.returncode is None, f"the server exited: {self.stderr()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{self.base}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the server never became ready: {self.stderr()}")

    async def stop(self) -> int:
        """SIGTERM; returns the exit code and collects the rest of stdout."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), 60)
        self.stdout += rest.decode()
        return await asyncio.wait_for(self.proc.wait(), 60)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@contextlib.asynccontextmanager
async def serve_api(data_dir: Path, log_name: str) -> AsyncIterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | {
        "TIMBRADO_DATA_DIR": str(data_dir),
        "TIMBRADO_HTTP_HOST": "127.0.0.1",
        "TIMBRADO_HTTP_PORT": str(port),
    }
    stderr_path = data_dir.parent / log_name
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            EXE, "serve", "--role", "api", env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    served = Served(proc, f"http://127.0.0.1:{port}", stderr_path)
    try:
        yield served
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.slow
async def test_first_start_prints_a_working_staff_token_once_with_the_docs_and_health_urls(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    async with aiohttp.ClientSession() as http:
        async with serve_api(data_dir, "first.log") as first:
            banner = await first.read_banner()
            await first.wait_ready(http)
            base = first.base
            assert banner.count(BANNER) == 1
            tokens = TOKEN_RE.findall(banner)
            assert tokens, banner
            token = tokens[0]
            assert set(tokens) == {token}
            assert f"{base}/api/v1/docs" in banner
            assert f"{base}/healthz" in banner
            assert f"{base}/readyz" in banner
            assert f"{base}/metrics" in banner

            for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/api/v1/docs"):
                async with http.get(base + path) as r:
                    assert r.status == 200, path
            auth = {"Authorization": f"Bearer {token}"}
            async with http.get(f"{base}/api/v1/me", headers=auth) as r:
                assert r.status == 200
                assert (await r.json())["role"] == "staff"
            async with http.get(f"{base}/api/v1/jobs", headers=auth) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/v1/jobs") as r:
                assert r.status == 401

            assert await first.stop() == 0
            assert first.stdout.count(BANNER) == 1
            assert token not in first.stderr()  # logs never show it

        async with serve_api(data_dir, "second.log") as second:
            await second.wait_ready(http)
            async with http.get(f"{second.base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200  # the first token still works
            assert await second.stop() == 0
            assert BANNER not in second.stdout
            assert not TOKEN_RE.search(second.stdout)
            assert token not in second.stderr()

    # The bootstrap token is a decision like any other: the system issued it, on record.
    with sqlite3.connect(data_dir / "timbrado.db") as db:
        rows = db.execute(
            "SELECT actor_kind, driver, action, subject_type, after FROM audit_events WHERE action = 'token.created'"
        ).fetchall()
    assert [r[:4] for r in rows] == [("system", "system", "token.created", "api_token")]
    assert token not in rows[0][4] and '"role": "staff"' in rows[0][4]
