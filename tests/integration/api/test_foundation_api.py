"""The admin API's foundation: health, readiness, metrics, OpenAPI, auth and error bodies."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from admin.app import create_app
from admin.container import Container
from core.auth.tokens import TOKEN_PREFIX
from core.clock import FrozenClock
from core.jobs import queue
from tests.support.app import Tokens, container_for, settings_for


def assert_error(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_health_and_readiness_answer(client: TestClient) -> None:
    r = await client.get("/healthz")
    assert r.status == 200
    assert await r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status == 200
    body = await r.json()
    assert body["status"] == "ready"
    assert body["checks"]["migrations"]["ok"] is True
    assert r.headers["X-Request-ID"]


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path: Path, clock: FrozenClock) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    container = container_for(settings_for(url, tmp_path), clock)
    async with TestClient(TestServer(create_app(container))) as c:
        r = await c.get("/readyz")
        assert r.status == 503
        body = await r.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["database"]["ok"] is False
        assert (await c.get("/healthz")).status == 200
        assert (await c.get("/metrics")).status == 200
    await container.aclose()


async def test_api_requests_get_503_with_retry_after_while_the_database_is_unreachable(
    tmp_path: Path, clock: FrozenClock
) -> None:
    container = container_for(settings_for("postgresql+asyncpg://nobody@127.0.0.1:1/none", tmp_path), clock)
    async with TestClient(TestServer(create_app(container))) as c:
        token = TOKEN_PREFIX + "x" * 43  # well formed, so it is looked up
        r = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 503
        assert r.headers["Retry-After"] == "30"
        error = (await r.json())["error"]
        assert error["code"] == "service_unavailable"
        assert "base de datos" in error["message"]
    await container.aclose()


async def test_readiness_fails_when_migrations_are_behind(tmp_path: Path, clock: FrozenClock) -> None:
    container = container_for(settings_for(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path), clock)
    async with TestClient(TestServer(create_app(container))) as c:
        r = await c.get("/readyz")
        assert r.status == 503
        assert "timbrado db upgrade" in (await r.json())["checks"]["migrations"]["detail"]
    await container.aclose()


async def test_metrics_report_queue_depth_and_request_latency(client: TestClient, container: Container) -> None:
    async with container.db.transaction() as s:
        await queue.enqueue(s, kind="k", payload={}, key="a", now=container.clock.now())
    await client.get("/healthz")
    r = await client.get("/metrics")
    text = await r.text()
    assert r.headers["Content-Type"].startswith("text/plain")
    assert 'timbrado_job_queue_depth{status="queued"} 1.0' in text
    assert 'timbrado_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1.0' in text


async def test_openapi_is_generated_from_the_routes(client: TestClient) -> None:
    r = await client.get("/api/v1/openapi.json")
    doc = await r.json()
    assert doc["openapi"].startswith("3.")
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in client.server.app.router.routes()
        if getattr(route.handler, "__endpoint__", None) and route.method != "HEAD"
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == registered
    jobs = doc["paths"]["/api/v1/jobs/{job_id}/retry"]["post"]
    assert jobs["security"] == [{"bearer": []}]
    assert {"401", "403", "404", "409"} <= set(jobs["responses"])
    assert "Error" in doc["components"]["schemas"]
    page = await client.get("/api/v1/docs")
    assert page.status == 200
    html = await page.text()
    assert "/api/v1/jobs/{job_id}/retry" in html
    assert "Reintentar un trabajo muerto" in html


async def test_requests_without_a_valid_token_get_401(client: TestClient, tokens: Tokens) -> None:
    r = await client.get("/api/v1/jobs")
    assert r.status == 401
    assert_error(await r.json(), "missing_token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = await client.get("/api/v1/jobs", headers={"Authorization": "Bearer tcp_not-a-real-token-at-all-0000"})
    assert r.status == 401
    assert_error(await r.json(), "invalid_token")
    r = await client.get("/api/v1/jobs", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status == 401
    assert_error(await r.json(), "invalid_token")


async def test_tokens_of_another_role_get_403(client: TestClient, tokens: Tokens) -> None:
    for who in ("vendor", "client"):
        r = await client.get("/api/v1/jobs", headers=tokens.auth(who))
        assert r.status == 403
        assert_error(await r.json(), "forbidden")
    r = await client.get("/api/v1/jobs", headers=tokens.auth("staff"))
    assert r.status == 200
    r = await client.get("/api/v1/me", headers=tokens.auth("vendor"))
    assert (await r.json())["role"] == "vendor:1"


async def test_revoked_token_is_refused(client: TestClient, container: Container, tokens: Tokens) -> None:
    from core.auth.tokens import authenticate, revoke_token

    async with container.db.transaction() as s:
        principal = await authenticate(s, tokens.staff)
        assert principal is not None
        assert await revoke_token(s, principal.token_id, container.clock.now())
    r = await client.get("/api/v1/jobs", headers=tokens.auth("staff"))
    assert r.status == 401


async def test_unknown_route_and_method_get_json_errors(client: TestClient, tokens: Tokens) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status == 404
    assert_error(await r.json(), "not_found")
    r = await client.delete("/healthz")
    assert r.status == 405
    assert_error(await r.json(), "method_not_allowed")
    r = await client.get("/api/v1/jobs/abc", headers=tokens.auth("staff"))
    assert r.status == 404
    r = await client.get("/api/v1/jobs?limit=zero", headers=tokens.auth("staff"))
    assert r.status == 400
    assert_error(await r.json(), "invalid_query")


async def test_oversized_body_gets_413_and_malformed_json_gets_400(client: TestClient, tokens: Tokens) -> None:
    headers = tokens.auth("staff") | {"Content-Type": "application/json"}
    r = await client.post("/api/v1/tokens", data=b"{" + b" " * (70 * 1024) + b"}", headers=headers)
    assert r.status == 413
    body = await r.json()
    assert_error(body, "payload_too_large")
    assert body["error"]["details"]["max_bytes"] == 64 * 1024
    for bad in (b"{", b"\xff\xfe", b"[1, 2", b"", b"nul"):
        r = await client.post("/api/v1/tokens", data=bad, headers=headers)
        assert r.status == 400, bad
        assert (await r.json())["error"]["code"] in ("invalid_json", "empty_body")
    r = await client.post("/api/v1/tokens", data=b"[1, 2]", headers=headers)
    assert r.status == 400
    r = await client.post("/api/v1/tokens", json={"name": "", "role": "admin"}, headers=tokens.auth("staff"))
    assert r.status == 422
    body = await r.json()
    assert_error(body, "validation_error")
    fields = {d["field"]: d["message"] for d in body["error"]["details"]}
    assert set(fields) == {"name", "role"}
    assert "rol inválido" in fields["role"]
    r = await client.post(
        "/api/v1/tokens",
        data=b'{"name": "x", "role": "staff"}',
        headers=tokens.auth("staff") | {"Content-Type": "application/xml"},
    )
    assert r.status == 415


async def test_token_endpoints_issue_once_and_never_show_the_secret_again(client: TestClient, tokens: Tokens) -> None:
    h = tokens.auth("staff")
    r = await client.post("/api/v1/tokens", json={"name": "portal", "role": "vendor:7"}, headers=h)
    assert r.status == 201
    created = await r.json()
    assert created["token"].startswith("tcp_")
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {created['token']}"})
    assert (await r.json())["role"] == "vendor:7"
    listed = await (await client.get("/api/v1/tokens", headers=h)).text()
    assert created["token"] not in listed
    assert created["token"][8:] not in listed
    r = await client.delete(f"/api/v1/tokens/{created['id']}", headers=h)
    assert (await r.json())["revoked_at"] is not None
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {created['token']}"})
    assert r.status == 401
    r = await client.post("/api/v1/tokens", json={"name": "x", "role": "staff"}, headers=tokens.auth("vendor"))
    assert r.status == 403


async def test_job_endpoints_list_show_and_retry(client: TestClient, container: Container, tokens: Tokens) -> None:
    from core.jobs.worker import Worker

    async def boom(ctx: object) -> None:
        raise RuntimeError("falla")

    async with container.db.transaction() as s:
        await queue.enqueue(s, kind="boom", payload={}, key="b", now=container.clock.now(), max_attempts=1)
    await Worker(container.db, {"boom": boom}, clock=container.clock).run_until_empty()
    h = tokens.auth("staff")
    listed = await (await client.get("/api/v1/jobs?status=dead", headers=h)).json()
    assert [j["kind"] for j in listed] == ["boom"]
    detail = await (await client.get(f"/api/v1/jobs/{listed[0]['id']}", headers=h)).json()
    assert detail["history"][0]["outcome"] == "dead"
    assert "falla" in detail["history"][0]["error"]
    r = await client.post(f"/api/v1/jobs/{listed[0]['id']}/retry", headers=h)
    assert (await r.json()) == {"requeued": 1}
    r = await client.post(f"/api/v1/jobs/{listed[0]['id']}/retry", headers=h)
    assert r.status == 409
    r = await client.post("/api/v1/jobs/999/retry", headers=h)
    assert r.status == 404


async def test_docs_api_md_lists_every_route(client: TestClient) -> None:
    from pathlib import Path

    doc = await (await client.get("/api/v1/openapi.json")).json()
    listed = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops if f"`{m.upper()} {p}`" not in listed]
    assert missing == [], "regenerate the endpoint table in docs/api.md"
