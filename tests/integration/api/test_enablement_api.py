"""Module enablement through the admin API and the support-desk webhook."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from aiohttp.test_utils import TestClient

from admin.container import Container
from admin.routes.tickets import sign
from tests.support.app import Tokens

SUBJECT = "Configuración del Módulo de Timbrado de complementos de pago"


async def make_client(client: TestClient, tokens: Tokens, *, pp: bool) -> dict:
    r = await client.post(
        "/api/v1/clients",
        json={"name": "Grupo ACME", "rfc": "gac-010101-ab1", "proveedores_plus": pp, "contacts": ["@grupoacme.com.mx"]},
        headers=tokens.auth("staff"),
    )
    assert r.status == 201, await r.text()
    return await r.json()


async def test_staff_open_verify_and_approve_a_request(client: TestClient, tokens: Tokens) -> None:
    h = tokens.auth("staff")
    acme = await make_client(client, tokens, pp=True)
    assert acme["rfc"] == "GAC010101AB1"
    r = await client.post("/api/v1/requests", json={"requester_email": "Ops@GrupoACME.com.mx"}, headers=h)
    assert r.status == 201
    req = await r.json()
    assert req["ticket"] == "TCP-000001"
    assert req["client_id"] == acme["id"]
    r = await client.post(f"/api/v1/requests/{req['id']}/verify", headers=h)
    assert (await r.json())["has_proveedores_plus"] is True
    r = await client.post(f"/api/v1/requests/{req['id']}/approve", headers=h)
    assert r.status == 200
    body = await r.json()
    assert body["status"] == "enabled"
    assert body["decided_via"] == "api"
    r = await client.post(f"/api/v1/requests/{req['id']}/approve", headers=h)
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "already_resolved"
    shown = await (await client.get(f"/api/v1/clients/{acme['id']}", headers=h)).json()
    assert shown["timbrado_enabled"] is True
    page = await (await client.get("/api/v1/requests?status=enabled", headers=h)).json()
    assert [i["ticket"] for i in page["items"]] == ["TCP-000001"]


async def test_approval_without_proveedores_plus_is_a_409_naming_the_prerequisite(
    client: TestClient, tokens: Tokens
) -> None:
    h = tokens.auth("staff")
    await make_client(client, tokens, pp=False)
    req = await (
        await client.post("/api/v1/requests", json={"requester_email": "a@grupoacme.com.mx"}, headers=h)
    ).json()
    r = await client.post(f"/api/v1/requests/{req['id']}/approve", headers=h)
    assert r.status == 409
    err = (await r.json())["error"]
    assert err["code"] == "proveedores_plus_missing"
    assert "Proveedores Plus" in err["message"]
    shown = await (await client.get(f"/api/v1/requests/{req['id']}", headers=h)).json()
    assert shown["pp_result"] is False
    assert shown["status"] == "received"


async def test_reject_requires_a_reason_and_link_and_pagination_work(client: TestClient, tokens: Tokens) -> None:
    h = tokens.auth("staff")
    ids = []
    for i in range(3):
        r = await client.post("/api/v1/requests", json={"requester_email": f"x{i}@desconocido.mx"}, headers=h)
        ids.append((await r.json())["id"])
    r = await client.post(f"/api/v1/requests/{ids[0]}/reject", json={"reason": ""}, headers=h)
    assert r.status == 422
    r = await client.post(f"/api/v1/requests/{ids[0]}/reject", json={"reason": "   "}, headers=h)
    assert r.status == 422
    assert (await r.json())["error"]["code"] == "reason_required"
    r = await client.post(f"/api/v1/requests/{ids[0]}/reject", json={"reason": "No es cliente."}, headers=h)
    assert (await r.json())["status"] == "rejected"
    acme = await make_client(client, tokens, pp=True)
    r = await client.post(f"/api/v1/requests/{ids[1]}/client", json={"client_id": acme["id"]}, headers=h)
    assert (await r.json())["client_name"] == "Grupo ACME"
    first = await (await client.get("/api/v1/requests?limit=2", headers=h)).json()
    assert [i["id"] for i in first["items"]] == [ids[2], ids[1]]
    rest = await (await client.get(f"/api/v1/requests?limit=2&before_id={first['next_before_id']}", headers=h)).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]]
    assert rest["next_before_id"] is None
    found = await (await client.get("/api/v1/requests?q=acme", headers=h)).json()
    assert [i["id"] for i in found["items"]] == [ids[1]]


async def test_vendor_and_client_tokens_cannot_decide(client: TestClient, tokens: Tokens) -> None:
    for who in ("vendor", "client"):
        r = await client.post("/api/v1/requests/1/approve", headers=tokens.auth(who))
        assert r.status == 403


async def test_client_input_errors_are_clear(client: TestClient, tokens: Tokens) -> None:
    h = tokens.auth("staff")
    r = await client.post("/api/v1/clients", json={"name": "X", "rfc": "NOPE"}, headers=h)
    assert r.status == 422
    assert (await r.json())["error"]["code"] == "invalid_rfc"
    r = await client.post("/api/v1/clients", json={"name": "X", "contacts": ["@gmail.com"]}, headers=h)
    assert (await r.json())["error"]["code"] == "public_domain"
    await make_client(client, tokens, pp=False)
    r = await client.post("/api/v1/clients", json={"name": "Otra", "contacts": ["@grupoacme.com.mx"]}, headers=h)
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "duplicate_contact"


def signed(secret: str, payload: dict, *, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    return body, {
        "X-Timbrado-Timestamp": stamp,
        "X-Timbrado-Signature": sign(secret, stamp, body),
        "Content-Type": "application/json",
    }


async def test_ticket_webhook_verifies_signatures_and_is_idempotent(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    ticket = {"id": "ZD-77", "subject": f"RE: {SUBJECT}", "requester_email": "ops@grupoacme.com.mx", "body": "Hola"}
    r = await client.post("/api/v1/tickets/webhook", json=ticket)
    assert r.status == 503
    container.settings = replace(container.settings, ticket_webhook_secret="s3cret")
    body, headers = signed("s3cret", ticket)
    r = await client.post("/api/v1/tickets/webhook", data=body, headers=headers)
    assert r.status == 201, await r.text()
    created = await r.json()
    assert created["status"] == "created"
    assert created["request"]["source"] == "ticket"
    r = await client.post("/api/v1/tickets/webhook", data=body, headers=headers)
    assert r.status == 200
    assert (await r.json())["request"]["id"] == created["request"]["id"]

    _, wrong = signed("other-secret", ticket)
    r = await client.post("/api/v1/tickets/webhook", data=body, headers=wrong)
    assert r.status == 401
    assert (await r.json())["error"]["code"] == "bad_signature"
    stale_body, stale = signed("s3cret", ticket, ts=int(time.time()) - 301)
    r = await client.post("/api/v1/tickets/webhook", data=stale_body, headers=stale)
    assert (await r.json())["error"]["code"] == "stale_request"
    tampered = body.replace(b"Hola", b"Adios")
    r = await client.post("/api/v1/tickets/webhook", data=tampered, headers=headers)
    assert r.status == 401
    r = await client.post("/api/v1/tickets/webhook", data=body, headers={"Content-Type": "application/json"})
    assert (await r.json())["error"]["code"] == "missing_signature"
    other = {**ticket, "id": "ZD-78", "subject": "Factura duplicada"}
    body, headers = signed("s3cret", other)
    r = await client.post("/api/v1/tickets/webhook", data=body, headers=headers)
    assert (await r.json())["status"] == "ignored"
    body, headers = signed("s3cret", {"id": "ZD-79"})
    r = await client.post("/api/v1/tickets/webhook", data=body, headers=headers)
    assert r.status == 422
