"""Vendor onboarding through the API: four contract steps, CSD, Datos del CFDI, readiness, no leaks."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import select, text

from admin.container import Container
from core.db import models as _all_models  # noqa: F401  (every table in the metadata)
from core.db.base import Base
from core.stamps import service as stamps
from tests.support.app import Tokens
from tests.support.certs import TestCa
from tests.support.onboarding_gaps import API_RFC, register_api_vendor
from tests.support.onboarding_gaps import credential_form as form
from tests.support.samples import make_image

RFC = API_RFC
FIEL_PASSWORD = "eFirma-Clave-7Q2x9Lp"
CSD_PASSWORD = "Csd-Clave-4Hk8Zw3"


def secret_forms(name: str, secret: bytes) -> list[tuple[str, bytes]]:
    """``secret`` as raw bytes, base64 (standard, URL-safe, one PEM line) and hex, whole and a middle slice."""
    middle = secret[len(secret) // 2 : len(secret) // 2 + 32]
    b64 = base64.b64encode(secret)
    return [
        (f"{name} (bytes)", secret),
        (f"{name} (middle bytes)", middle),
        (f"{name} (base64)", b64),
        (f"{name} (base64, one PEM line)", b64[64:128]),
        (f"{name} (base64 url)", base64.urlsafe_b64encode(secret)),
        (f"{name} (hex)", secret.hex().encode()),
        (f"{name} (HEX)", secret.hex().upper().encode()),
        (f"{name} (middle hex)", middle.hex().encode()),
    ]


def record_response_bodies(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """Every response body the test client receives from now on, with its method and path."""
    bodies: list[tuple[str, bytes]] = []
    request = client._request

    async def recording(method: str, path: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await request(method, path, **kwargs)
        bodies.append((f"{method} {path}", await response.read()))
        return response

    monkeypatch.setattr(client, "_request", recording)
    return bodies


async def dump_every_table(container: Container) -> list[tuple[str, bytes]]:
    """Every row of every table in the metadata: bytes columns raw, everything else as text."""
    dumps = []
    async with container.db.session() as s:
        for table in Base.metadata.sorted_tables:
            dump = bytearray()
            for row in (await s.execute(select(table))).all():
                for value in row:
                    dump += value if isinstance(value, bytes) else repr(value).encode("utf-8")
                    dump += b"\x00"
            dumps.append((f"table {table.name}", bytes(dump)))
    return dumps


async def test_a_vendor_completes_onboarding_and_becomes_ready(
    client: TestClient,
    container: Container,
    tokens: Tokens,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = record_response_bodies(client, monkeypatch)
    await register_api_vendor(client, tokens)
    now = container.clock.now()
    ca = TestCa.sat_like()
    fiel = ca.issue(
        kind="fiel",
        rfc=RFC,
        legal_name="PAPELERA DEL BAJIO SA DE CV",
        not_before=now - timedelta(days=30),
        not_after=now + timedelta(days=1000),
    )
    csd = ca.issue(
        kind="csd",
        rfc=RFC,
        legal_name="PAPELERA DEL BAJIO SA DE CV",
        not_before=now - timedelta(days=30),
        not_after=now + timedelta(days=1000),
    )
    fiel_key, csd_key = fiel.key_der(FIEL_PASSWORD), csd.key_der(CSD_PASSWORD)  # the files as uploaded
    v = tokens.auth("vendor")
    base = "/api/v1/vendors/1"

    ready = await (await client.get(f"{base}/readiness", headers=v)).json()
    assert ready["missing"] == ["plan", "contract", "csd", "cfdi_settings"]

    # Steps out of order are refused, naming the missing step.
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel_key, FIEL_PASSWORD), headers=v)
    assert r.status == 409
    assert (await r.json())["error"]["details"]["missing_step"] == "manifiesto"
    r = await client.get(f"{base}/contract/download/contrato", headers=v)
    assert r.status == 409
    r = await client.post(f"{base}/csds", data=form(csd.cer_der(), csd_key, CSD_PASSWORD), headers=v)
    assert r.status == 422
    assert (await r.json())["error"]["code"] == "contract_not_signed"

    manifest = await (await client.get(f"{base}/contract/manifest", headers=v)).json()
    assert manifest == {
        "empresa": "Papelera del Bajío SA de CV",
        "rfc": RFC,
        "direccion": "Av. Constituyentes 100, Querétaro",
        "correo": "facturas@papelerabajio.mx",
    }
    state = await (await client.post(f"{base}/contract/manifest/confirm", headers=v)).json()
    assert state["next_step"] == "contrato"
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel_key, FIEL_PASSWORD), headers=v)
    assert (await r.json())["error"]["details"]["missing_step"] == "contrato"
    documents = await (await client.get(f"{base}/contract/documents", headers=v)).json()
    assert "Papelera del Bajío SA de CV" in documents["contrato"]["text"]
    r = await client.post(
        f"{base}/contract/accept",
        json={"contract_version": "contrato-1999", "privacy_version": documents["aviso"]["version"]},
        headers=v,
    )
    assert r.status == 422
    state = await (
        await client.post(
            f"{base}/contract/accept",
            json={
                "contract_version": documents["contrato"]["version"],
                "privacy_version": documents["aviso"]["version"],
            },
            headers=v,
        )
    ).json()
    assert state["next_step"] == "firma"

    # A CSD offered as e.firma is refused; a wrong password too.
    r = await client.post(f"{base}/contract/sign", data=form(csd.cer_der(), csd_key, CSD_PASSWORD), headers=v)
    assert (await r.json())["error"]["code"] == "csd_not_fiel"
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel_key, "otra-cosa"), headers=v)
    assert (await r.json())["error"]["code"] == "wrong_password"
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel_key, FIEL_PASSWORD), headers=v)
    assert r.status == 200, await r.text()
    signed = await r.json()
    assert signed["next_step"] is None
    assert signed["signer_rfc"] == RFC

    r = await client.get(f"{base}/contract/download/contrato", headers=v)
    assert r.headers["Content-Type"] == "application/pdf"
    pdf = await r.read()
    assert pdf.startswith(b"%PDF-")
    async with container.db.session() as s:
        signature, cert_der = (await s.execute(text("SELECT signature, efirma_certificate FROM contracts"))).one()
    x509.load_der_x509_certificate(cert_der).public_key().verify(  # type: ignore[union-attr]
        signature, pdf, padding.PKCS1v15(), hashes.SHA256()
    )
    assert (await client.get(f"{base}/contract/download/aviso", headers=v)).status == 200
    r = await client.post(f"{base}/contract/manifest/confirm", headers=v)
    assert (await r.json())["error"]["code"] == "contract_already_signed"

    # An e.firma offered as CSD is refused; the CSD is accepted.
    r = await client.post(f"{base}/csds", data=form(fiel.cer_der(), fiel_key, FIEL_PASSWORD), headers=v)
    assert (await r.json())["error"]["code"] == "fiel_not_csd"
    r = await client.post(f"{base}/csds", data=form(csd.cer_der(), csd_key, CSD_PASSWORD), headers=v)
    assert r.status == 201, await r.text()
    listed = await (await client.get(f"{base}/csds", headers=v)).json()
    assert set(listed[0]) == {"id", "certificate_number", "rfc", "valid_from", "valid_until", "active", "status"}

    r = await client.put(
        f"{base}/cfdi-settings", json={"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": 1}, headers=v
    )
    assert r.status == 200
    r = await client.put(f"{base}/cfdi-settings/logo", data=make_image("PNG"), headers=v)
    assert (await r.json())["has_logo"] is True
    assert (await client.get(f"{base}/cfdi-settings/logo", headers=v)).status == 200

    async with container.db.transaction() as s:
        await stamps.provision(
            s,
            vendor_id=1,
            order_id=None,
            plan_name="P",
            stamps=10,
            validity_days=30,
            price_paid_mxn=Decimal("100"),
            purchased_at=now,
            now=now,
        )
    ready = await (await client.get(f"{base}/readiness", headers=v)).json()
    assert ready == {"ready": True, "missing": [], "messages": [], "stamps_available": 10}

    # The crown jewels never leak: not in any table, the SQLite file, the data dir, a response or the logs.
    secrets = [
        *secret_forms("e.firma key, plain DER", fiel.key_unencrypted_der()),
        *secret_forms("e.firma .key file", fiel_key),
        *secret_forms("CSD .key file", csd_key),
        *secret_forms("CSD key, plain DER", csd.key_unencrypted_der()),
        (
            "e.firma private exponent (hex)",
            format(fiel.private_key.private_numbers().d, "x").encode(),  # type: ignore[attr-defined]
        ),
        ("e.firma password", FIEL_PASSWORD.encode()),
        ("CSD password", CSD_PASSWORD.encode()),
    ]
    haystacks = await dump_every_table(container)
    assert {name for name, _ in haystacks} >= {
        "table contracts",
        "table csds",
        "table audit_events",
        "table jobs",
        "table outbound_emails",
    }
    sqlite_file = container.settings.sqlite_path
    if sqlite_file is not None:  # the database file itself, with its WAL and shared memory
        haystacks += [
            (f"file {p.name}", p.read_bytes()) for p in sqlite_file.parent.glob(sqlite_file.name + "*") if p.is_file()
        ]
        assert any(name == f"file {sqlite_file.name}" for name, _ in haystacks)
    haystacks += [(f"file {p}", p.read_bytes()) for p in container.settings.data_dir.rglob("*") if p.is_file()]
    haystacks += [(f"response to {what}", body) for what, body in bodies]
    assert len(bodies) >= 20
    haystacks.append(("logs", caplog.text.encode("utf-8")))
    haystacks.append(("log records", repr([(r.msg, r.args) for r in caplog.records]).encode("utf-8")))
    for secret_name, secret in secrets:
        for where, haystack in haystacks:
            assert secret not in haystack, f"{secret_name} leaked into {where}"


async def test_another_vendor_cannot_touch_this_vendors_onboarding(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    await register_api_vendor(client, tokens)
    from core.auth.tokens import create_token

    async with container.db.transaction() as s:
        _, other = await create_token(s, name="otro", role="vendor:2", at=container.clock.now())
    h = {"Authorization": f"Bearer {other}"}
    for path in ("/api/v1/vendors/1/readiness", "/api/v1/vendors/1/contract", "/api/v1/vendors/1/csds"):
        assert (await client.get(path, headers=h)).status == 404
