"""Log lines carry the request id of the HTTP request or the id of the job they were written for,
and the JSON format is chosen by TIMBRADO_LOG_FORMAT."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from admin.app import create_app
from admin.container import Container
from core.jobs import queue
from core.jobs.worker import JobContext, Worker
from core.logctx import JsonFormatter

EXE = str(Path(sys.executable).parent / "timbrado")
log = logging.getLogger("timbrado.tests")


class JsonLines:
    """Log lines formatted as the service writes them, at the moment they are emitted."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]

    def with_message(self, fragment: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if fragment in line["msg"]]


@pytest.fixture
def json_lines() -> Iterator[JsonLines]:
    lines = JsonLines()
    handler = logging.StreamHandler(lines.stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_lines_logged_while_handling_a_request_carry_its_request_id(
    container: Container, json_lines: JsonLines
) -> None:
    async def noisy(request: web.Request) -> web.Response:
        log.info("handling the noisy route")
        raise RuntimeError("algo se rompió")

    app = create_app(container)
    app.router.add_get("/api/v1/test-noisy", noisy)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/v1/test-noisy", headers={"X-Request-ID": "req-ruidosa-1"})
        assert r.status == 500
        assert (await r.json())["error"]["details"]["request_id"] == "req-ruidosa-1"
        r = await client.get("/api/v1/test-noisy")
        generated = r.headers["X-Request-ID"]
        await client.get("/healthz")

    own = json_lines.with_message("handling the noisy route")
    unhandled = json_lines.with_message("unhandled error on GET /api/v1/test-noisy")
    assert [line["request_id"] for line in own] == ["req-ruidosa-1", generated]
    assert [line["request_id"] for line in unhandled] == ["req-ruidosa-1", generated]
    assert "RuntimeError: algo se rompió" in unhandled[0]["exc"]
    assert generated != "req-ruidosa-1"


async def test_lines_logged_while_running_a_job_carry_its_job_id(container: Container, json_lines: JsonLines) -> None:
    async def chatty(ctx: JobContext) -> None:
        log.info("working on the chatty job")
        if ctx.payload.get("fail"):
            raise RuntimeError("falla de prueba")

    async with container.db.transaction() as s:
        await queue.enqueue(s, kind="chatty", payload={}, key="ok", now=container.clock.now())
        await queue.enqueue(s, kind="chatty", payload={"fail": True}, key="ko", now=container.clock.now())
    await Worker(container.db, {"chatty": chatty}, clock=container.clock).run_until_empty()

    own = json_lines.with_message("working on the chatty job")
    assert sorted(line["job_id"] for line in own) == [1, 2]
    assert {line["job_kind"] for line in own} == {"chatty"}
    assert all(line["request_id"] for line in own)
    assert len({line["request_id"] for line in own}) == 2
    (failed,) = json_lines.with_message("job failed: RuntimeError: falla de prueba")
    assert failed["job_id"] == 2
    assert failed["level"] == "warning"


@pytest.mark.parametrize(("setting", "is_json"), [("json", True), ("text", False), (None, False)])
async def test_json_logging_is_chosen_by_the_log_format_setting(
    tmp_path: Path, setting: str | None, is_json: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | {"TIMBRADO_DATA_DIR": str(tmp_path)}
    if setting is not None:
        env["TIMBRADO_LOG_FORMAT"] = setting
    # On a fresh data dir the command first migrates the embedded database, and logs it.
    proc = await asyncio.create_subprocess_exec(
        EXE, *("tokens", "create", "--role", "staff"), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    plain = out.decode().strip()
    lines = [line for line in err.decode().splitlines() if "applying database migrations" in line]
    assert len(lines) == 1, err.decode()
    if is_json:
        record = json.loads(lines[0])
        assert record["level"] == "info"
        assert record["logger"] == "timbrado"
        assert record["msg"] == "applying database migrations (embedded SQLite)"
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(lines[0])
        assert " INFO    timbrado: applying database migrations (embedded SQLite)" in lines[0]
    assert plain not in err.decode()
