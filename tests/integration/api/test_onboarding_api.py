"""Vendor onboarding through the API: four contract steps, CSD, Datos del CFDI, readiness, no leaks."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from decimal import Decimal

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import text

from admin.container import Container
from core.stamps import service as stamps
from tests.support.app import Tokens
from tests.support.certs import PASSWORD, TestCa
from tests.support.samples import make_image

RFC = "PBA010101AB1"


def form(cer: bytes, key: bytes, password: str) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("cer", io.BytesIO(cer), filename="certificado.cer", content_type="application/octet-stream")
    f.add_field("key", io.BytesIO(key), filename="llave.key", content_type="application/octet-stream")
    f.add_field("password", password)
    return f


async def vendor(client: TestClient, tokens: Tokens) -> None:
    h = tokens.auth("staff")
    acme = await (
        await client.post("/api/v1/clients", json={"name": "ACME", "proveedores_plus": True}, headers=h)
    ).json()
    r = await client.post(
        "/api/v1/vendors",
        json={
            "client_id": acme["id"],
            "rfc": RFC,
            "razon_social": "Papelera del Bajío SA de CV",
            "correo": "facturas@papelerabajio.mx",
            "direccion": "Av. Constituyentes 100, Querétaro",
        },
        headers=h,
    )
    assert r.status == 201


async def test_a_vendor_completes_onboarding_and_becomes_ready(
    client: TestClient, container: Container, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await vendor(client, tokens)
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
    v = tokens.auth("vendor")
    base = "/api/v1/vendors/1"

    ready = await (await client.get(f"{base}/readiness", headers=v)).json()
    assert ready["missing"] == ["plan", "contract", "csd", "cfdi_settings"]

    # Steps out of order are refused, naming the missing step.
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel.key_der(), PASSWORD), headers=v)
    assert r.status == 409
    assert (await r.json())["error"]["details"]["missing_step"] == "manifiesto"
    r = await client.get(f"{base}/contract/download/contrato", headers=v)
    assert r.status == 409
    r = await client.post(f"{base}/csds", data=form(csd.cer_der(), csd.key_der(), PASSWORD), headers=v)
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
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel.key_der(), PASSWORD), headers=v)
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
    r = await client.post(f"{base}/contract/sign", data=form(csd.cer_der(), csd.key_der(), PASSWORD), headers=v)
    assert (await r.json())["error"]["code"] == "csd_not_fiel"
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel.key_der(), "otra-cosa"), headers=v)
    assert (await r.json())["error"]["code"] == "wrong_password"
    r = await client.post(f"{base}/contract/sign", data=form(fiel.cer_der(), fiel.key_der(), PASSWORD), headers=v)
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
    r = await client.post(f"{base}/csds", data=form(fiel.cer_der(), fiel.key_der(), PASSWORD), headers=v)
    assert (await r.json())["error"]["code"] == "fiel_not_csd"
    r = await client.post(f"{base}/csds", data=form(csd.cer_der(), csd.key_der(), PASSWORD), headers=v)
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

    # The crown jewels never leak: not in the database, the data dir or the logs.
    secrets = [
        PASSWORD.encode(),
        fiel.key_unencrypted_der()[-64:],
        csd.key_unencrypted_der()[-64:],
        fiel.key_der()[-48:],
        csd.key_der()[-48:],
    ]
    async with container.db.session() as s:
        dump = b""
        for table in ("contracts", "csds", "audit_events", "jobs", "outbound_emails"):
            for row in (await s.execute(text(f"SELECT * FROM {table}"))).all():
                dump += repr(tuple(row)).encode()
    files = b"".join(
        p.read_bytes()
        for p in container.settings.data_dir.rglob("*")
        if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm")
    )
    for secret in secrets:
        assert secret not in dump
        assert secret not in files
        assert secret.hex() not in dump.decode("latin-1")
    assert PASSWORD not in caplog.text


async def test_another_vendor_cannot_touch_this_vendors_onboarding(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    await vendor(client, tokens)
    from core.auth.tokens import create_token

    async with container.db.transaction() as s:
        _, other = await create_token(s, name="otro", role="vendor:2", at=container.clock.now())
    h = {"Authorization": f"Bearer {other}"}
    for path in ("/api/v1/vendors/1/readiness", "/api/v1/vendors/1/contract", "/api/v1/vendors/1/csds"):
        assert (await client.get(path, headers=h)).status == 404
