"""Operator decisions taken through the API leave an audit trail; job outcomes reach /metrics."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from admin.container import Container
from core.audit.models import AuditEvent
from core.auth.tokens import authenticate
from core.jobs import builtin, queue
from core.jobs.models import JobStatus
from core.jobs.worker import JobContext, Worker
from tests.support.app import Tokens


async def audit_rows(container: Container) -> list[AuditEvent]:
    async with container.db.session() as s:
        return list((await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


def everything_in(event: AuditEvent) -> str:
    """Every column of an audit row as one string, to look for leaked secrets."""
    values: dict[str, Any] = {c.name: getattr(event, c.key) for c in AuditEvent.__table__.columns}
    return json.dumps(values, default=str, ensure_ascii=False)


async def staff_token_id(container: Container, tokens: Tokens) -> int:
    async with container.db.session() as s:
        principal = await authenticate(s, tokens.staff)
    assert principal is not None
    return principal.token_id


async def test_issuing_and_revoking_a_token_through_the_api_is_audited_without_the_secret(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    staff_id = await staff_token_id(container, tokens)
    h = tokens.auth("staff") | {"X-Request-ID": "alta-token-1"}
    r = await client.post("/api/v1/tokens", json={"name": "portal norte", "role": "vendor:7"}, headers=h)
    assert r.status == 201
    created = await r.json()
    plain = created["token"]
    r = await client.delete(f"/api/v1/tokens/{created['id']}", headers=tokens.auth("staff"))
    assert r.status == 200
    revoke_request_id = r.headers["X-Request-ID"]

    issued, revoked = await audit_rows(container)
    now = container.clock.now()
    assert issued.action == "token.created"
    assert issued.actor_kind == "token"
    assert issued.actor_id == f"token:{staff_id}"
    assert issued.driver == "api"
    assert (issued.subject_type, issued.subject_id) == ("api_token", str(created["id"]))
    assert issued.before is None
    assert issued.after == {"name": "portal norte", "role": "vendor:7", "hint": plain[:8], "revoked_at": None}
    assert issued.occurred_at == now
    assert issued.request_id == "alta-token-1"

    assert revoked.action == "token.revoked"
    assert (revoked.actor_kind, revoked.actor_id, revoked.driver) == ("token", f"token:{staff_id}", "api")
    assert (revoked.subject_type, revoked.subject_id) == ("api_token", str(created["id"]))
    assert revoked.before == {"name": "portal norte", "role": "vendor:7", "hint": plain[:8], "revoked_at": None}
    assert revoked.after == {
        "name": "portal norte",
        "role": "vendor:7",
        "hint": plain[:8],
        "revoked_at": now.isoformat(),
    }
    assert revoked.occurred_at == now
    assert revoked.request_id == revoke_request_id

    for event in (issued, revoked):
        dumped = everything_in(event)
        assert plain not in dumped
        assert plain[8:] not in dumped
        assert tokens.staff not in dumped


async def test_refused_token_decisions_leave_no_audit_event(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    r = await client.post("/api/v1/tokens", json={"name": "x", "role": "staff"}, headers=tokens.auth("vendor"))
    assert r.status == 403
    r = await client.post("/api/v1/tokens", json={"name": "x", "role": "root"}, headers=tokens.auth("staff"))
    assert r.status == 422
    r = await client.delete("/api/v1/tokens/999", headers=tokens.auth("staff"))
    assert r.status == 404
    assert await audit_rows(container) == []


async def test_retrying_a_dead_job_through_the_api_is_audited(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    async def boom(ctx: JobContext) -> None:
        raise RuntimeError("el servidor SMTP no respondió")

    async with container.db.transaction() as s:
        await queue.enqueue(s, kind="boom", payload={}, key="boom-1", now=container.clock.now(), max_attempts=1)
    await Worker(container.db, {"boom": boom}, clock=container.clock).run_until_empty()
    async with container.db.session() as s:
        dead = await queue.list_jobs(s, status=JobStatus.DEAD.value)
    assert [j.attempts for j in dead] == [1]
    assert await audit_rows(container) == []

    staff_id = await staff_token_id(container, tokens)
    r = await client.post(f"/api/v1/jobs/{dead[0].id}/retry", headers=tokens.auth("staff"))
    assert await r.json() == {"requeued": 1}
    (event,) = await audit_rows(container)
    assert event.action == "job.retried"
    assert (event.actor_kind, event.actor_id, event.driver) == ("token", f"token:{staff_id}", "api")
    assert (event.subject_type, event.subject_id) == ("job", str(dead[0].id))
    assert event.before == {"status": "dead", "kind": "boom", "attempts": 1}
    assert event.after == {"status": "queued", "kind": "boom", "attempts": 0}
    assert event.occurred_at == container.clock.now()
    assert event.request_id == r.headers["X-Request-ID"]

    r = await client.post(f"/api/v1/jobs/{dead[0].id}/retry", headers=tokens.auth("staff"))
    assert r.status == 409
    assert len(await audit_rows(container)) == 1


async def test_job_outcomes_counter_grows_as_the_container_worker_runs_jobs(
    client: TestClient, container: Container
) -> None:
    async with container.db.transaction() as s:
        await builtin.enqueue_pings(s, 3, now=container.clock.now())
        await queue.enqueue(s, kind="nobody.handles.this", payload={}, key="orphan", now=container.clock.now())

    def counter(text: str, kind: str, outcome: str) -> float:
        prefix = f'timbrado_job_outcomes_total{{kind="{kind}",outcome="{outcome}"}} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    before = await (await client.get("/metrics")).text()
    assert counter(before, builtin.PING, "succeeded") == 0.0
    await container.make_worker().run_until_empty()
    after = await (await client.get("/metrics")).text()
    assert counter(after, builtin.PING, "succeeded") == 3.0
    assert counter(after, "nobody.handles.this", "dead") == 1.0

    async with container.db.transaction() as s:
        await builtin.enqueue_pings(s, 2, now=container.clock.now())
    await container.make_worker().run_until_empty()
    again = await (await client.get("/metrics")).text()
    assert counter(again, builtin.PING, "succeeded") == 5.0
