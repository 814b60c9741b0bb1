"""Stamp packages through the API: catalog, order, bank data, proof upload, review, provisioning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from admin.container import Container
from core.auth.tokens import create_token
from core.notifications.models import OutboundEmail
from core.stamps.models import StampLedgerEntry, StampPlan
from tests.support.app import Tokens
from tests.support.samples import HTML, make_image, make_pdf, make_zip

CONTACT = {
    "empresa": "  Papelera   del Bajío SA de CV ",
    "nombre": "Rosa Martínez",
    "telefono": "+52 (442) 123-4567",
    "correo": "Rosa@PapeleraBajio.mx",
}


async def setup_vendor(client: TestClient, tokens: Tokens, *, enabled: bool = True) -> dict:
    h = tokens.auth("staff")
    acme = await (
        await client.post("/api/v1/clients", json={"name": "Grupo ACME", "proveedores_plus": True}, headers=h)
    ).json()
    if enabled:
        req = await (
            await client.post(
                "/api/v1/requests", json={"requester_email": "a@acme.mx", "client_id": acme["id"]}, headers=h
            )
        ).json()
        assert (await client.post(f"/api/v1/requests/{req['id']}/approve", headers=h)).status == 200
    r = await client.post(
        "/api/v1/vendors",
        json={
            "client_id": acme["id"],
            "rfc": "PBA010101AB1",
            "razon_social": "Papelera del Bajío SA de CV",
            "correo": "facturas@papelerabajio.mx",
        },
        headers=h,
    )
    assert r.status == 201, await r.text()
    vendor = await r.json()
    assert vendor["id"] == 1  # the vendor:1 token of the fixtures
    r = await client.post(
        "/api/v1/packages",
        json={"name": "Paquete 100", "stamps": 100, "price_mxn": "580.00", "validity_days": 365},
        headers=h,
    )
    assert r.status == 201
    return {"vendor": vendor, "package": await r.json()}


async def order(client: TestClient, tokens: Tokens, package_id: int) -> dict:
    r = await client.post(
        "/api/v1/vendors/1/orders", json={"package_id": package_id, "contact": CONTACT}, headers=tokens.auth("vendor")
    )
    assert r.status == 201, await r.text()
    return await r.json()


async def upload(
    client: TestClient,
    tokens: Tokens,
    order_id: int,
    data: bytes,
    *,
    name: str = "comprobante.pdf",
    content_type: str = "application/pdf",
    who: str = "vendor",
    vendor_id: int = 1,
):
    return await client.put(
        f"/api/v1/vendors/{vendor_id}/orders/{order_id}/proof",
        data=data,
        headers=tokens.auth(who) | {"Content-Type": content_type, "X-Filename": name},
    )


async def emails(container: Container) -> list[OutboundEmail]:
    async with container.db.session() as s:
        return list(
            (
                await s.scalars(
                    select(OutboundEmail).where(OutboundEmail.related_type == "order").order_by(OutboundEmail.id)
                )
            ).all()
        )


async def test_the_whole_purchase_story(client: TestClient, container: Container, tokens: Tokens) -> None:
    container.clock.set(datetime(2026, 12, 4, 23, 0, tzinfo=UTC))  # Friday 17:00 in Mexico City
    ctx = await setup_vendor(client, tokens)
    packages = await (await client.get("/api/v1/packages", headers=tokens.auth("vendor"))).json()
    assert [(p["name"], p["stamps"], p["price_mxn"], p["validity_days"]) for p in packages] == [
        ("Paquete 100", 100, "580.00", 365)
    ]
    created = await order(client, tokens, ctx["package"]["id"])
    assert created["status"] == "awaiting_payment"
    assert created["payment_reference"] == "TCP000000018"
    assert created["bank"]["clabe"] == "012180001234567899"
    assert created["amount_mxn"] == "580.00"
    assert created["contact_empresa"] == "Papelera del Bajío SA de CV"
    assert created["contact_telefono"] == "4421234567"
    assert created["contact_correo"] == "Rosa@papelerabajio.mx"  # local part kept, domain lower-cased

    r = await upload(client, tokens, created["id"], make_pdf())
    assert r.status == 200, await r.text()
    in_review = await r.json()
    assert in_review["status"] == "in_review"
    assert in_review["proof_content_type"] == "application/pdf"
    # Friday 17:00 + 24 business hours (9 per day) = Wednesday 14:00 local.
    assert in_review["sla_due_at"] == "2026-12-09T20:00:00Z"

    r = await client.post(f"/api/v1/orders/{created['id']}/approve", headers=tokens.auth("staff"))
    assert r.status == 200, await r.text()
    approved = await r.json()
    assert approved["order"]["status"] == "approved"
    assert approved["plan"]["stamps_available"] == 100
    valid_until = datetime.fromisoformat(approved["plan"]["valid_until"].replace("Z", "+00:00"))
    assert valid_until - container.clock.now() == timedelta(days=365)
    r = await client.post(f"/api/v1/orders/{created['id']}/approve", headers=tokens.auth("staff"))
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "already_decided"

    sent = await emails(container)
    assert [e.template for e in sent] == ["order_created", "proof_received", "order_approved"]
    assert "012180001234567899" in sent[0].text_body and "TCP000000018" in sent[0].text_body
    assert "09/12/2026 14:00" in sent[1].text_body
    assert sent[2].subject == "Ya puedes comenzar a usar el Timbrado para complemento de pago"
    assert "e.firma" in sent[2].text_body and "CSD" in sent[2].text_body
    async with container.db.session() as s:
        ledger = (await s.scalars(select(StampLedgerEntry))).all()
    assert [(e.kind, e.delta, e.available_after) for e in ledger] == [("provision", 100, 100)]


async def test_rejected_proof_is_emailed_and_a_new_proof_reopens_the_review(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    assert (await upload(client, tokens, o["id"], make_pdf())).status == 200
    r = await upload(client, tokens, o["id"], make_pdf("otro"))
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "proof_in_review"
    r = await client.post(
        f"/api/v1/orders/{o['id']}/reject", json={"reason": "El monto no coincide."}, headers=tokens.auth("staff")
    )
    assert (await r.json())["status"] == "rejected"
    r = await upload(client, tokens, o["id"], make_image("PNG"), name="foto.png", content_type="image/png")
    assert r.status == 200
    again = await r.json()
    assert again["status"] == "in_review"
    assert again["review_round"] == 2
    assert again["proof_content_type"] == "image/png"
    templates = [e.template for e in await emails(container)]
    assert templates == ["order_created", "proof_received", "order_rejected", "proof_received"]
    assert "El monto no coincide." in (await emails(container))[2].text_body
    r = await client.get(f"/api/v1/orders/{o['id']}/proof", headers=tokens.auth("staff"))
    assert r.headers["Content-Type"] == "image/png"
    assert await r.read() == make_image("PNG")


@pytest.mark.parametrize(
    ("data", "content_type", "name", "status", "code"),
    [
        (make_pdf(), "image/png", "comprobante.png", 200, None),  # a PDF renamed .png: content decides
        (make_image("PNG"), "application/pdf", "comprobante.pdf", 200, None),
        (HTML, "text/html", "pago.html", 415, "unsupported_type"),
        (make_zip(), "application/zip", "pago.zip", 415, "unsupported_type"),
        (b"", "application/pdf", "vacio.pdf", 400, "empty_file"),
        (make_pdf()[:-60], "application/pdf", "truncado.pdf", 415, "corrupt_file"),
        (make_pdf(), "application/pdf", "../../../etc/passwd", 200, None),
    ],
)
async def test_hostile_proofs_are_refused_by_content(
    client: TestClient, tokens: Tokens, data: bytes, content_type: str, name: str, status: int, code: str | None
) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    r = await upload(client, tokens, o["id"], data, name=name, content_type=content_type)
    assert r.status == status, await r.text()
    if code:
        err = (await r.json())["error"]
        assert err["code"] == code
        assert err["message"]
        shown = await (await client.get(f"/api/v1/vendors/1/orders/{o['id']}", headers=tokens.auth("vendor"))).json()
        assert shown["status"] == "awaiting_payment"


async def test_oversized_proof_gets_413_with_the_limit(client: TestClient, tokens: Tokens) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    big = make_pdf() + b"%" * (11 * 1024 * 1024)
    r = await upload(client, tokens, o["id"], big)
    assert r.status == 413
    err = (await r.json())["error"]
    assert err["code"] == "too_large"
    assert "10 MB" in err["message"]

    async def chunks():
        yield make_pdf()
        for _ in range(176):
            yield b"%" * 65536

    r = await client.put(
        f"/api/v1/vendors/1/orders/{o['id']}/proof",
        data=chunks(),
        headers=tokens.auth("vendor") | {"Content-Type": "application/pdf"},
    )
    assert r.status == 413


async def test_multipart_upload_and_the_same_file_stored_once(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    import aiohttp

    ctx = await setup_vendor(client, tokens)
    first = await order(client, tokens, ctx["package"]["id"])
    second = await order(client, tokens, ctx["package"]["id"])
    pdf = make_pdf("mismo")
    for o in (first, second):
        form = aiohttp.FormData()
        form.add_field("comprobante", pdf, filename="pago.pdf", content_type="application/pdf")
        r = await client.put(f"/api/v1/vendors/1/orders/{o['id']}/proof", data=form, headers=tokens.auth("vendor"))
        assert r.status == 200, await r.text()
    root = container.settings.data_dir / "files"
    stored = [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]
    assert len(stored) == 1


@pytest.mark.parametrize(
    ("contact", "fields"),
    [
        ({}, {"empresa", "nombre", "telefono", "correo"}),
        ({**CONTACT, "telefono": "44212345ab"}, {"telefono"}),
        ({**CONTACT, "telefono": "442123456"}, {"telefono"}),
        ({**CONTACT, "telefono": "442123456789"}, {"telefono"}),
        ({**CONTACT, "correo": "rosa@"}, {"correo"}),
        ({**CONTACT, "empresa": "x" * 1000}, {"empresa"}),
    ],
)
async def test_contact_errors_name_each_field(
    client: TestClient, tokens: Tokens, contact: dict, fields: set[str]
) -> None:
    ctx = await setup_vendor(client, tokens)
    r = await client.post(
        "/api/v1/vendors/1/orders",
        json={"package_id": ctx["package"]["id"], "contact": contact},
        headers=tokens.auth("vendor"),
    )
    assert r.status == 422
    err = (await r.json())["error"]
    assert err["code"] == "invalid_contact"
    assert {d["field"] for d in err["details"]} == fields
    assert all(d["message"] and d["code"] for d in err["details"])


async def test_vendors_of_clients_without_the_module_cannot_buy(client: TestClient, tokens: Tokens) -> None:
    ctx = await setup_vendor(client, tokens, enabled=False)
    r = await client.post(
        "/api/v1/vendors/1/orders",
        json={"package_id": ctx["package"]["id"], "contact": CONTACT},
        headers=tokens.auth("vendor"),
    )
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "module_not_enabled"


async def test_another_vendors_order_is_404_not_403(client: TestClient, container: Container, tokens: Tokens) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    async with container.db.transaction() as s:
        _, other = await create_token(s, name="otro", role="vendor:2", at=container.clock.now())
    h = {"Authorization": f"Bearer {other}"}
    for path in (f"/api/v1/vendors/1/orders/{o['id']}", f"/api/v1/vendors/2/orders/{o['id']}", "/api/v1/vendors/1"):
        r = await client.get(path, headers=h)
        assert r.status == 404, path
    r = await client.put(f"/api/v1/vendors/2/orders/{o['id']}/proof", data=make_pdf(), headers=h)
    assert r.status == 404
    r = await client.post(f"/api/v1/orders/{o['id']}/approve", headers=tokens.auth("vendor"))
    assert r.status == 403


async def test_two_staff_approving_at_once_provision_one_plan_and_one_email(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    assert (await upload(client, tokens, o["id"], make_pdf())).status == 200
    results = await asyncio.gather(
        *(client.post(f"/api/v1/orders/{o['id']}/approve", headers=tokens.auth("staff")) for _ in range(2))
    )
    assert sorted(r.status for r in results) == [200, 409]
    async with container.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(StampPlan)) == 1
    assert [e.template for e in await emails(container)].count("order_approved") == 1


async def test_package_admin_and_bad_prices(client: TestClient, tokens: Tokens) -> None:
    h = tokens.auth("staff")
    for bad in ("0", "-5", "12.345", "abc"):
        r = await client.post(
            "/api/v1/packages", json={"name": "X", "stamps": 1, "price_mxn": bad, "validity_days": 1}, headers=h
        )
        assert r.status == 422, bad
    pkg = await (
        await client.post(
            "/api/v1/packages", json={"name": "P", "stamps": 10, "price_mxn": "99.90", "validity_days": 30}, headers=h
        )
    ).json()
    r = await client.patch(f"/api/v1/packages/{pkg['id']}", json={"active": False}, headers=h)
    assert (await r.json())["active"] is False
    assert await (await client.get("/api/v1/packages", headers=tokens.auth("vendor"))).json() == []
    assert Decimal(
        (await (await client.get("/api/v1/packages?all=true", headers=h)).json())[0]["price_mxn"]
    ) == Decimal("99.90")
    r = await client.post("/api/v1/packages", json={"name": "P"}, headers=tokens.auth("vendor"))
    assert r.status == 403


async def _raw_put(
    client: TestClient, path: str, headers: dict[str, str], body: bytes, declared: int, *, hang_up: bool
) -> bytes:
    """Send a request whose Content-Length does not match its body, then half-close the connection."""
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\nContent-Type: application/pdf\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    if hang_up and writer.can_write_eof():
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_wrong_content_length_stores_nothing_and_changes_nothing(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    path = f"/api/v1/vendors/1/orders/{o['id']}/proof"
    pdf = make_pdf()
    # Declared shorter than the body: refused, either by the HTTP parser (extra bytes) or by content.
    answer = await _raw_put(client, path, tokens.auth("vendor"), pdf, declared=len(pdf) - 100, hang_up=False)
    assert int(answer.split(b"\r\n", 1)[0].split()[1]) in (400, 415)
    # Declared longer than the body, then the client hangs up: nothing is stored.
    await _raw_put(client, path, tokens.auth("vendor"), pdf, declared=len(pdf) + 5000, hang_up=True)
    shown = await (await client.get(f"/api/v1/vendors/1/orders/{o['id']}", headers=tokens.auth("vendor"))).json()
    assert shown["status"] == "awaiting_payment"
    root = container.settings.data_dir / "files"
    leftovers = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert leftovers == []
    assert (await client.get("/healthz")).status == 200


async def test_approval_racing_a_second_proof_provisions_one_plan(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    ctx = await setup_vendor(client, tokens)
    o = await order(client, tokens, ctx["package"]["id"])
    assert (await upload(client, tokens, o["id"], make_pdf("primero"))).status == 200
    approve, second = await asyncio.gather(
        client.post(f"/api/v1/orders/{o['id']}/approve", headers=tokens.auth("staff")),
        upload(client, tokens, o["id"], make_pdf("segundo")),
    )
    assert approve.status == 200
    assert second.status == 409
    assert (await second.json())["error"]["code"] in ("proof_in_review", "order_approved")
    async with container.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(StampPlan)) == 1
    shown = await (await client.get(f"/api/v1/vendors/1/orders/{o['id']}", headers=tokens.auth("vendor"))).json()
    assert shown["status"] == "approved"
    assert shown["review_round"] == 1
