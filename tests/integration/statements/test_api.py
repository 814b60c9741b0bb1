"""Statement API: every field, filters, streamed exports, preferences, portfolio; a vendor never sees another's."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin.app import create_app
from admin.container import Container
from core.auth.tokens import create_token
from core.clock import FrozenClock
from core.stamps import service as stamps
from tests.integration.statements.seed import insert_reps, rep_rows, seed_payment, seed_vendor
from tests.support.app import container_for, settings_for

NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
async def container(database_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    c = container_for(settings_for(database_url, tmp_path), FrozenClock(NOW))
    yield c
    await c.aclose()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(create_app(container))) as c:
        yield c


@pytest.fixture
async def world(container: Container) -> dict[str, object]:
    db = container.db
    client_id, vendor_a = await seed_vendor(db, NOW, time_zone="America/Cancun")
    _, vendor_b = await seed_vendor(db, NOW, rfc="IIA040805DZ4", razon_social="OTRO", client_id=client_id)
    for vid in (vendor_a, vendor_b):
        async with db.transaction() as s:
            await stamps.provision(
                s, vendor_id=vid, order_id=None, plan_name="Paquete 100", stamps=100, validity_days=365,
                price_paid_mxn=Decimal("1160.00"), purchased_at=NOW, now=NOW,
            )  # fmt: skip
        payment_id = await seed_payment(db, client_id, vid, NOW)
        await insert_reps(db, rep_rows(client_id, vid, payment_id, 7, newest=NOW))
    headers = {}
    async with db.transaction() as s:
        for name, role in (("staff", "staff"), ("a", f"vendor:{vendor_a}"), ("b", f"vendor:{vendor_b}")):
            _, token = await create_token(s, name=name, role=role, at=NOW)
            headers[name] = {"Authorization": f"Bearer {token}"}
    return {"a": vendor_a, "b": vendor_b, "headers": headers}


def h(world: dict[str, object], who: str) -> dict[str, str]:
    return world["headers"][who]  # type: ignore[index,no-any-return]


async def test_vendor_sees_its_statement_with_every_field(client: TestClient, world: dict[str, object]) -> None:  # type: ignore[type-arg]
    resp = await client.get(f"/api/v1/vendors/{world['a']}/statement", headers=h(world, "a"))
    assert resp.status == 200
    body = await resp.json()
    [plan] = body["plans"]
    assert plan["plan_name"] == "Paquete 100" and plan["stamps_available"] == 100 and plan["stamps_used"] == 0
    assert plan["price_paid_mxn"] == "1160.00" and plan["purchased_at"].startswith("2026-12-01")
    assert plan["valid_until"].startswith("2027-12-01") and body["time_zone"] == "America/Cancun"
    resp = await client.get(f"/api/v1/vendors/{world['a']}/statement/reps?limit=5", headers=h(world, "a"))
    page = await resp.json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    first = page["items"][0]
    for key in (
        "fecha_local",
        "payment_id",
        "serie_folio",
        "receiver_rfc",
        "receiver_name",
        "uuid",
        "amount",
        "currency",
    ):
        assert first[key] not in (None, "")
    assert first["fecha_local"] == "01/12/2026 11:00" and first["amount"].endswith(".50")
    resp = await client.get(
        f"/api/v1/vendors/{world['a']}/statement/reps", params={"cursor": page["next_cursor"]}, headers=h(world, "a")
    )
    rest = await resp.json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None


@pytest.mark.parametrize(
    "path",
    [
        "statement",
        "statement/reps",
        "statement/export?format=csv",
        "statement/export?format=xlsx",
        "statement/preferences",
    ],
)
async def test_a_vendor_never_reads_another_vendors_statement(
    client: TestClient,
    world: dict[str, object],
    path: str,  # type: ignore[type-arg]
) -> None:
    resp = await client.get(f"/api/v1/vendors/{world['a']}/{path}", headers=h(world, "b"))
    assert resp.status == 404
    body = await resp.json()
    assert "OTRO" not in str(body) and "ESCUELA" not in str(body)
    resp = await client.put(f"/api/v1/vendors/{world['a']}/statement/preferences", json={}, headers=h(world, "b"))
    assert resp.status == 404


async def test_staff_reads_any_statement_and_the_portfolio_but_vendors_do_not(
    client: TestClient,
    world: dict[str, object],  # type: ignore[type-arg]
) -> None:
    resp = await client.get(f"/api/v1/vendors/{world['b']}/statement", headers=h(world, "staff"))
    assert resp.status == 200 and (await resp.json())["razon_social"] == "OTRO"
    resp = await client.get("/api/v1/statements/portfolio", headers=h(world, "staff"))
    assert resp.status == 200 and len((await resp.json())["vendors"]) == 2
    assert (await client.get("/api/v1/statements/portfolio", headers=h(world, "a"))).status == 403
    assert (await client.get("/api/v1/statements/portfolio")).status == 401


async def test_csv_export_streams_with_bom_and_file_name(client: TestClient, world: dict[str, object]) -> None:  # type: ignore[type-arg]
    resp = await client.get(
        f"/api/v1/vendors/{world['a']}/statement/export",
        params={"format": "csv", "from": "2026-11-01", "to": "30/12/2026", "currency": "usd"},
        headers=h(world, "a"),
    )
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "estado-de-cuenta_EKU9003173C9_20261101_20261230.csv" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert raw.startswith(b"\xef\xbb\xbf") and rows[0][0] == "Fecha de emisión"
    assert len(rows) > 1 and {r[7] for r in rows[1:]} == {"USD"}


async def test_xlsx_export_opens_in_a_spreadsheet(client: TestClient, world: dict[str, object]) -> None:  # type: ignore[type-arg]
    resp = await client.get(f"/api/v1/vendors/{world['a']}/statement/export?format=xlsx", headers=h(world, "a"))
    assert resp.status == 200 and "spreadsheetml" in resp.headers["Content-Type"]
    sheet = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    assert sheet is not None and sheet.max_row == 8


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("format=pdf", "formato_invalido"),
        ("from=ayer", "fecha_invalida"),
        ("status=robado", "estado_invalido"),
        ("from=2026-12-02&to=2026-12-01", "rango_invalido"),
    ],
)
async def test_bad_export_requests_are_refused_in_spanish(
    client: TestClient,
    world: dict[str, object],
    query: str,
    code: str,  # type: ignore[type-arg]
) -> None:
    resp = await client.get(f"/api/v1/vendors/{world['a']}/statement/export?{query}", headers=h(world, "a"))
    assert resp.status in (400, 422)
    assert code in await resp.text()


async def test_vendor_sets_its_summary_preferences(client: TestClient, world: dict[str, object]) -> None:  # type: ignore[type-arg]
    url = f"/api/v1/vendors/{world['a']}/statement/preferences"
    body = await (await client.get(url, headers=h(world, "a"))).json()
    assert body == {"vendor_id": world["a"], "frequency": "weekly", "attach_xlsx": False, "low_balance_threshold": 10}
    resp = await client.put(url, json={"frequency": "monthly", "attach_xlsx": True}, headers=h(world, "a"))
    assert resp.status == 200 and (await resp.json())["frequency"] == "monthly"
    resp = await client.put(url, json={"frequency": "daily"}, headers=h(world, "a"))
    assert resp.status == 422


async def test_statement_endpoints_are_in_openapi(client: TestClient) -> None:  # type: ignore[type-arg]
    doc = await (await client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/vendors/{vendor_id}/statement", "/api/v1/vendors/{vendor_id}/statement/export",
                 "/api/v1/statements/portfolio"):  # fmt: skip
        assert path in doc["paths"]


async def test_openapi_declares_the_content_types_the_export_returns(
    client: TestClient,  # type: ignore[type-arg]
    world: dict[str, object],
) -> None:
    from admin.routes.statements import XLSX_TYPE

    doc = await (await client.get("/api/v1/openapi.json")).json()
    op = doc["paths"]["/api/v1/vendors/{vendor_id}/statement/export"]["get"]
    declared = op["responses"]["200"]["content"]
    assert "application/octet-stream" not in declared
    url = f"/api/v1/vendors/{world['a']}/statement/export"
    for fmt in ("csv", "xlsx"):
        resp = await client.get(f"{url}?format={fmt}", headers=h(world, "a"))
        assert resp.status == 200
        await resp.read()
        # each type the endpoint answers is declared: as a response media type, or named in the description
        assert resp.content_type in declared or resp.content_type in op["description"], resp.content_type
    assert "text/csv" in declared
    assert XLSX_TYPE in declared or XLSX_TYPE in op["description"]


async def test_a_csv_export_that_fails_midway_is_not_delivered_as_a_complete_file(
    client: TestClient,  # type: ignore[type-arg]
    world: dict[str, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once the first rows are sent the status cannot change: the stream must end in an error the
    client sees (no terminating chunk), never as a shorter file that looks whole."""
    import aiohttp

    from core.statements import exports

    real = exports.stream_csv

    async def failing(*args: object, **kwargs: object) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in real(*args, **kwargs):  # type: ignore[arg-type]
            yield chunk
            sent += 1
            if sent == 2:
                raise OSError("la base de datos se desconectó")

    monkeypatch.setattr(exports, "stream_csv", failing)
    resp = await client.get(f"/api/v1/vendors/{world['a']}/statement/export?format=csv", headers=h(world, "a"))
    assert resp.status == 200  # already on its way when it failed
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
