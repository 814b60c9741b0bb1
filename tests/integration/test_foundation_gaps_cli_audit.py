"""Operator decisions taken with the ``timbrado`` command leave an audit trail naming the operator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.audit.models import AuditEvent
from core.clock import SystemClock
from core.db.engine import Database
from core.jobs import queue
from core.jobs.models import JobStatus
from core.jobs.worker import JobContext, Worker

EXE = str(Path(sys.executable).parent / "timbrado")
OPERATOR = "marta.operaciones"


async def timbrado(database_url: str, data_dir: Path, *args: str) -> tuple[int, str, str]:
    """Run the real command (asynchronously: the test's own engine stays usable meanwhile)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | {
        "TIMBRADO_DATABASE_URL": database_url,
        "TIMBRADO_DATA_DIR": str(data_dir),
        "LOGNAME": OPERATOR,
        "USER": OPERATOR,
    }
    proc = await asyncio.create_subprocess_exec(
        EXE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def audit_rows(db: Database) -> list[AuditEvent]:
    async with db.session() as s:
        return list((await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


def everything_in(event: AuditEvent) -> str:
    values: dict[str, Any] = {c.name: getattr(event, c.key) for c in AuditEvent.__table__.columns}
    return json.dumps(values, default=str, ensure_ascii=False)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def dead_jobs(db: Database, *keys: str) -> list[int]:
    """Real dead jobs: queued, then failed by a real worker until it gave up."""

    async def boom(ctx: JobContext) -> None:
        raise RuntimeError("el destinatario rechazó el correo")

    async with db.transaction() as s:
        for key in keys:
            await queue.enqueue(s, kind="boom", payload={}, key=key, now=SystemClock().now(), max_attempts=1)
    await Worker(db, {"boom": boom}, clock=SystemClock()).run_until_empty()
    async with db.session() as s:
        jobs = await queue.list_jobs(s, status=JobStatus.DEAD.value)
    assert len(jobs) == len(keys)
    return sorted(j.id for j in jobs)


async def test_tokens_created_and_revoked_from_the_cli_are_audited_as_the_operator(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    started = utc_now()
    code, out, err = await timbrado(database_url, tmp_path, "tokens", "create", "--role", "client:4", "--name", "ERP")
    assert code == 0, err
    plain = out.strip()
    assert plain.startswith("tcp_")
    code, _out, err = await timbrado(database_url, tmp_path, "tokens", "revoke", "1")
    assert code == 0, err
    finished = utc_now()

    issued, revoked = await audit_rows(database)
    for event in (issued, revoked):
        assert event.actor_kind == "staff"
        assert event.actor_id == f"cli:{OPERATOR}"
        assert event.driver == "cli"
        assert (event.subject_type, event.subject_id) == ("api_token", "1")
        assert started <= event.occurred_at <= finished
        assert event.request_id is None
        assert plain not in everything_in(event)
        assert plain[8:] not in everything_in(event)
    assert issued.action == "token.created"
    assert issued.before is None
    assert issued.after == {"name": "ERP", "role": "client:4", "hint": plain[:8], "revoked_at": None}
    assert revoked.action == "token.revoked"
    assert revoked.before == issued.after
    assert revoked.after is not None
    assert started <= datetime.fromisoformat(revoked.after["revoked_at"]) <= finished
    assert {k: v for k, v in revoked.after.items() if k != "revoked_at"} == {
        "name": "ERP",
        "role": "client:4",
        "hint": plain[:8],
    }

    code, _out, err = await timbrado(database_url, tmp_path, "tokens", "revoke", "1")
    assert code == 1
    assert "No existe un token activo" in err
    assert len(await audit_rows(database)) == 2


async def test_jobs_retry_puts_a_real_dead_job_back_in_the_queue_and_audits_it(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    first, second, third = await dead_jobs(database, "uno", "dos", "tres")
    started = utc_now()
    code, out, err = await timbrado(database_url, tmp_path, "jobs", "retry", str(second))
    assert code == 0, err
    assert "1 trabajo(s) devuelto(s) a la cola." in out
    finished = utc_now()

    async with database.session() as s:
        retried = await queue.get_job(s, second)
        still_dead = await queue.list_jobs(s, status=JobStatus.DEAD.value)
    assert retried is not None
    assert (retried.status, retried.attempts) == (JobStatus.QUEUED.value, 0)
    assert sorted(j.id for j in still_dead) == [first, third]

    (event,) = await audit_rows(database)
    assert event.action == "job.retried"
    assert (event.actor_kind, event.actor_id, event.driver) == ("staff", f"cli:{OPERATOR}", "cli")
    assert (event.subject_type, event.subject_id) == ("job", str(second))
    assert event.before == {"status": "dead", "kind": "boom", "attempts": 1}
    assert event.after == {"status": "queued", "kind": "boom", "attempts": 0}
    assert started <= event.occurred_at <= finished

    # Not dead any more: nothing to do, nothing audited.
    code, out, _err = await timbrado(database_url, tmp_path, "jobs", "retry", str(second))
    assert code == 1
    assert "0 trabajo(s)" in out
    assert len(await audit_rows(database)) == 1

    code, out, err = await timbrado(database_url, tmp_path, "jobs", "retry", "--all-dead")
    assert code == 0, err
    assert "2 trabajo(s) devuelto(s) a la cola." in out
    events = await audit_rows(database)
    assert [(e.action, e.subject_id) for e in events[1:]] == [("job.retried", str(first)), ("job.retried", str(third))]
    async with database.session() as s:
        assert (await queue.queue_depth(s))["dead"] == 0
