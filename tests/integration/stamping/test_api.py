"""The stamping API through the real app and the job worker (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin.app import create_app
from admin.container import Container
from core.clock import FrozenClock
from core.jobs.worker import Worker, WorkerConfig
from tests.integration.stamping.conftest import World, make_world
from tests.support.app import Tokens, container_for, make_tokens, settings_for
from tests.support.invoices import InvoiceSpec, amake_invoice


@pytest.fixture
async def container(database_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Container]:
    c = container_for(settings_for(database_url, tmp_path, max_request_bytes=4 * 1024 * 1024), clock)
    yield c
    await c.aclose()


@pytest.fixture
async def world(container: Container, clock: FrozenClock, tmp_path: Path) -> World:
    return await make_world(container.db, clock, tmp_path, box=container.secret_box())


@pytest.fixture
async def api(container: Container) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(container))) as c:
        yield c


@pytest.fixture
async def tokens(container: Container, world: World) -> Tokens:
    assert (world.vendor_id, world.client_id) == (1, 1)
    return await make_tokens(container)


async def run_worker(container: Container, *kinds: str) -> None:
    worker = Worker(
        container.db, container.handlers, clock=container.clock, config=WorkerConfig(backoff_base=0, backoff_max=0),
        kinds=frozenset(kinds or ("rep.stamp", "rep.deliver", "rep.cancel")),
    )  # fmt: skip
    await worker.run_until_empty()


def payment_body(invoice_id: int, amount: str = "580.00", **kw: Any) -> dict[str, Any]:
    body = {
        "vendor_id": 1, "paid_at": "2026-12-01T09:30:00-06:00", "payment_form": "03", "currency": "MXN",
        "amount": amount, "operation_number": "SPEI-778",
        "documents": [{"invoice_id": invoice_id, "amount_paid": amount}],
    }  # fmt: skip
    body.update(kw)
    return body


async def upload(api: TestClient[Any, Any], tokens: Tokens, xml: bytes) -> Any:
    headers = tokens.auth("vendor") | {"Content-Type": "application/xml"}
    return await api.post("/api/v1/vendors/1/invoices", data=xml, headers=headers)


async def test_invoice_to_stamped_rep_through_the_api_and_the_worker(
    api: TestClient[Any, Any], tokens: Tokens, container: Container
) -> None:
    resp = await upload(api, tokens, await amake_invoice())
    assert resp.status == 201, await resp.text()
    invoice = await resp.json()
    resp = await api.post("/api/v1/payments", json=payment_body(invoice["id"]), headers=tokens.auth("client"))
    assert resp.status == 201, await resp.text()
    payment = await resp.json()
    assert payment["status_label"] == "Pendiente de complemento"
    await run_worker(container)
    resp = await api.get(f"/api/v1/payments/{payment['id']}", headers=tokens.auth("client"))
    shown = await resp.json()
    assert shown["status"] == "stamped" and shown["lines"][0]["installment"] == 1
    reps = await (await api.get("/api/v1/reps", headers=tokens.auth("vendor"))).json()
    assert [r["status"] for r in reps] == ["stamped"] and reps[0]["has_pdf"]
    resp = await api.get(f"/api/v1/reps/{reps[0]['id']}/xml", headers=tokens.auth("client"))
    assert resp.status == 200 and reps[0]["uuid"].encode() in await resp.read()
    resp = await api.get(f"/api/v1/reps/{reps[0]['id']}/pdf", headers=tokens.auth("vendor"))
    assert resp.status == 200 and (await resp.read()).startswith(b"%PDF")

    resp = await api.post(f"/api/v1/reps/{reps[0]['id']}/cancel", json={"motivo": "02"}, headers=tokens.auth("vendor"))
    assert resp.status == 202, await resp.text()
    await run_worker(container, "rep.cancel")
    rep = await (await api.get(f"/api/v1/reps/{reps[0]['id']}", headers=tokens.auth("vendor"))).json()
    assert rep["status"] == "cancelled"
    shown = await (await api.get(f"/api/v1/payments/{payment['id']}", headers=tokens.auth("staff"))).json()
    assert shown["status"] == "pending" and shown["waiting_code"] == "rep_cancelado"


async def test_substitution_through_the_api_issues_a_related_rep_and_cancels_the_original(
    api: TestClient[Any, Any], tokens: Tokens, container: Container
) -> None:
    invoice = await (await upload(api, tokens, await amake_invoice())).json()
    resp = await api.post("/api/v1/payments", json=payment_body(invoice["id"]), headers=tokens.auth("client"))
    assert resp.status == 201
    await run_worker(container)
    [original] = await (await api.get("/api/v1/reps", headers=tokens.auth("vendor"))).json()
    resp = await api.post(f"/api/v1/reps/{original['id']}/substitute", headers=tokens.auth("vendor"))
    assert resp.status == 202, await resp.text()
    substitute = await resp.json()
    assert substitute["status"] == "stamped" and substitute["uuid"] != original["uuid"]
    xml = await (await api.get(f"/api/v1/reps/{substitute['id']}/xml", headers=tokens.auth("vendor"))).read()
    assert b'TipoRelacion="04"' in xml and original["uuid"].encode() in xml
    await run_worker(container, "rep.cancel")
    shown = await (await api.get(f"/api/v1/reps/{original['id']}", headers=tokens.auth("vendor"))).json()
    assert shown["status"] == "cancelled"
    again = await api.post(f"/api/v1/reps/{original['id']}/substitute", headers=tokens.auth("vendor"))
    assert again.status in (202, 409)
    reps = await (await api.get("/api/v1/reps", headers=tokens.auth("vendor"))).json()
    assert len([r for r in reps if r["status"] == "stamped"]) == 1


async def test_refused_upload_and_payment_carry_codes(api: TestClient[Any, Any], tokens: Tokens) -> None:
    resp = await upload(api, tokens, await amake_invoice(InvoiceSpec(metodo_pago="PUE")))
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "metodo_pago_no_ppd"
    resp = await upload(api, tokens, b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    assert (await resp.json())["error"]["code"] == "xml_con_doctype"
    invoice = await (await upload(api, tokens, await amake_invoice())).json()
    body = payment_body(invoice["id"], "100.00", payment_form="99")
    resp = await api.post("/api/v1/payments", json=body, headers=tokens.auth("client"))
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "CRP20212"


async def test_batch_registers_each_payment_on_its_own(api: TestClient[Any, Any], tokens: Tokens) -> None:
    invoice = await (await upload(api, tokens, await amake_invoice())).json()
    batch = {"payments": [payment_body(invoice["id"], "100.00"), payment_body(invoice["id"], "5000.00"),
                          payment_body(invoice["id"], "200.00")]}  # fmt: skip
    resp = await api.post("/api/v1/payments/batch", json=batch, headers=tokens.auth("client"))
    out = await resp.json()
    assert (out["accepted"], out["refused"]) == (2, 1)
    assert out["results"][1]["error"]["code"] == "CRP20244"
    assert [r["payment"]["lines"][0]["installment"] for r in out["results"] if r["ok"]] == [1, 2]


async def test_validate_endpoint_explains_a_broken_rep_by_sat_code(
    api: TestClient[Any, Any], tokens: Tokens, world: World
) -> None:
    payment_id = await world.pay(await world.add_invoice(), "580.00")
    await world.stamper.stamp_payment(payment_id)
    [rep] = await world.reps(payment_id)
    broken = rep.sealed_xml.replace(b'FormaDePagoP="03"', b'FormaDePagoP="99"')
    resp = await api.post("/api/v1/reps/validate", data=broken, headers=tokens.auth("client"))
    out = await resp.json()
    codes = {f["code"] for f in out["findings"]}
    assert not out["valid"] and {"CRP20212", "CFDI40102"} <= codes


async def test_other_scopes_see_nothing(api: TestClient[Any, Any], tokens: Tokens, container: Container) -> None:
    from core.auth.tokens import create_token

    async with container.db.transaction() as s:
        _, other_client = await create_token(s, name="otro", role="client:2", at=container.clock.now())
        _, other_vendor = await create_token(s, name="otro", role="vendor:2", at=container.clock.now())
    invoice = await (await upload(api, tokens, await amake_invoice())).json()
    resp = await api.post("/api/v1/payments", json=payment_body(invoice["id"]),
                          headers={"Authorization": f"Bearer {other_client}"})  # fmt: skip
    assert resp.status == 404
    resp = await api.get("/api/v1/vendors/1/invoices", headers={"Authorization": f"Bearer {other_vendor}"})
    assert resp.status == 404
