"""Onboarding gaps through the API: folios after REPs, a tampered stored contract, several CSDs."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from admin.container import Container
from core.clock import FrozenClock
from core.sat import SatCertificate
from core.stamps import service as stamps
from core.vendors import onboarding
from core.vendors.models import Contract
from tests.support.app import Tokens
from tests.support.certs import IssuedCredential, TestCa, pooled_key
from tests.support.onboarding_gaps import (
    API_LEGAL_NAME,
    API_RFC,
    credential_form,
    issue_reps,
    register_api_vendor,
    sign_contract_api,
)


def credential(clock: FrozenClock, kind: str, slot: int, *, days: int = 1000) -> IssuedCredential:
    return TestCa.sat_like().issue(
        kind=kind,  # type: ignore[arg-type]
        rfc=API_RFC,
        legal_name=API_LEGAL_NAME,
        key=pooled_key(slot),
        not_before=clock.now() - timedelta(days=30),
        not_after=clock.now() + timedelta(days=days),
    )


async def provision_plan(container: Container, vendor_id: int) -> None:
    now = container.clock.now()
    async with container.db.transaction() as s:
        await stamps.provision(
            s,
            vendor_id=vendor_id,
            order_id=None,
            plan_name="P",
            stamps=10,
            validity_days=365,
            price_paid_mxn=Decimal("100"),
            purchased_at=now,
            now=now,
        )


# ------------------------------------------------------------------------------------------ folios
async def test_the_api_refuses_moving_the_folio_back_after_a_forward_move_once_reps_exist(
    client: TestClient, container: Container, tokens: Tokens
) -> None:
    base = await register_api_vendor(client, tokens)
    v = tokens.auth("vendor")

    async def put(folio: object) -> tuple[int, dict]:
        r = await client.put(
            f"{base}/cfdi-settings",
            json={"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": folio},
            headers=v,
        )
        return r.status, await r.json()

    assert (await put(50))[0] == 200
    assert await issue_reps(container.db, 1, 3, container.clock.now()) == [("REP", 50), ("REP", 51), ("REP", 52)]
    status, body = await put(60)
    assert (status, body["next_folio"]) == (200, 60)
    for folio in (1, 52, 53):
        status, body = await put(folio)
        assert status == 422, body
        assert body["error"]["code"] == "invalid_cfdi_settings"
        assert body["error"]["message"] == "Revisa los Datos del CFDI."
        assert body["error"]["details"] == [
            {
                "field": "folio_inicial",
                "code": "folio_backwards",
                "message": "El folio inicial debe ser 60 o mayor: la serie «REP» ya tiene complementos de pago "
                "emitidos hasta el folio 52 y sus folios solo pueden avanzar.",
            }
        ]
    current = await (await client.get(f"{base}/cfdi-settings", headers=v)).json()
    assert current["next_folio"] == 60
    assert (await put(61))[0] == 200


# --------------------------------------------------------------------- verify on download
TAMPERINGS = {
    "pdf_bytes": "La huella SHA-256 del PDF no coincide con la registrada.",
    "pdf_bytes_and_digest": "La firma RSA-SHA256 registrada no corresponde al PDF.",
    "stored_signature": "La firma RSA-SHA256 registrada no corresponde al PDF.",
}


def flip_middle_byte(data: bytes) -> bytes:
    n = len(data) // 2
    return data[:n] + bytes([data[n] ^ 0x01]) + data[n + 1 :]


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
async def test_a_tampered_stored_contract_is_refused_on_download(
    client: TestClient, container: Container, tokens: Tokens, clock: FrozenClock, tampering: str
) -> None:
    base = await register_api_vendor(client, tokens)
    v = tokens.auth("vendor")
    await sign_contract_api(client, base, v, credential(clock, "fiel", 31))
    r = await client.get(f"{base}/contract/download/contrato", headers=v)
    assert r.status == 200
    original = await r.read()

    async with container.db.transaction() as s:
        row = (await s.scalars(select(Contract))).one()
        assert row.signature is not None and row.signed_pdf_sha256 is not None
        path = container.settings.data_dir / "files" / row.signed_pdf_sha256[:2] / row.signed_pdf_sha256
        assert path.read_bytes() == original
        if tampering.startswith("pdf_bytes"):
            forged = flip_middle_byte(original)
            path.chmod(0o600)
            path.write_bytes(forged)
            if tampering == "pdf_bytes_and_digest":
                row.digest_sha256 = hashlib.sha256(forged).hexdigest()
        else:
            await s.execute(update(Contract).values(signature=flip_middle_byte(row.signature)))

    r = await client.get(f"{base}/contract/download/contrato", headers=v)
    assert r.status == 409
    error = (await r.json())["error"]
    assert error["code"] == "signature_invalid"
    assert error["message"] == f"La firma del contrato almacenado no es válida: {TAMPERINGS[tampering]}"
    assert (await client.get(f"{base}/contract/download/aviso", headers=v)).status == 200


# --------------------------------------------------------------------------------- several CSDs
async def test_several_csds_through_the_api_one_active_and_switching_moves_stamping(
    client: TestClient, container: Container, tokens: Tokens, clock: FrozenClock
) -> None:
    base = await register_api_vendor(client, tokens)
    v = tokens.auth("vendor")
    await sign_contract_api(client, base, v, credential(clock, "fiel", 31))
    await provision_plan(container, 1)
    r = await client.put(
        f"{base}/cfdi-settings", json={"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": 1}, headers=v
    )
    assert r.status == 200
    lasting, soon = credential(clock, "csd", 32), credential(clock, "csd", 33, days=10)
    numbers = {
        "lasting": SatCertificate.load(lasting.cer_der()).certificate_number,
        "soon": SatCertificate.load(soon.cer_der()).certificate_number,
    }
    ids = {}
    for name, cred in (("lasting", lasting), ("soon", soon)):
        r = await client.post(f"{base}/csds", data=credential_form(cred.cer_der(), cred.key_der()), headers=v)
        assert r.status == 201, await r.text()
        body = await r.json()
        assert (body["certificate_number"], body["active"], body["status"]) == (numbers[name], True, "activo")
        ids[name] = body["id"]

    async def listed() -> list[tuple[int, bool, str]]:
        rows = await (await client.get(f"{base}/csds", headers=v)).json()
        assert sum(row["active"] for row in rows) == 1
        return [(row["id"], row["active"], row["status"]) for row in rows]

    async def readiness() -> dict:
        return await (await client.get(f"{base}/readiness", headers=v)).json()

    async def signing_number() -> str | None:
        async with container.db.session() as s:
            cred = await onboarding.active_csd_credential(s, 1, container.secret_box(), container.clock.now())
        return cred.certificate.certificate_number if cred else None

    assert await listed() == [(ids["lasting"], False, "inactivo"), (ids["soon"], True, "activo")]
    assert (await readiness())["ready"] is True
    assert await signing_number() == numbers["soon"]

    r = await client.post(f"{base}/csds/{ids['lasting']}/activate", headers=v)
    assert r.status == 200
    body = await r.json()
    assert (body["id"], body["active"], body["status"]) == (ids["lasting"], True, "activo")
    assert await listed() == [(ids["lasting"], True, "activo"), (ids["soon"], False, "inactivo")]
    assert (await readiness())["ready"] is True
    assert await signing_number() == numbers["lasting"]

    assert (await client.post(f"{base}/csds/{ids['soon']}/activate", headers=v)).status == 200
    clock.advance(timedelta(days=11))  # the active CSD expires: no longer ready to stamp
    ready = await readiness()
    assert (ready["ready"], ready["missing"]) == (False, ["csd"])
    assert ready["messages"] == ["Falta un certificado de sello digital (CSD) vigente."]
    assert await signing_number() is None
    r = await client.post(f"{base}/csds/{ids['soon']}/activate", headers=v)
    assert r.status == 422
    error = (await r.json())["error"]
    assert (error["code"], error["message"]) == (
        "certificate_expired",
        "El certificado está vencido; agrega uno vigente.",
    )
    assert (await client.post(f"{base}/csds/{ids['lasting']}/activate", headers=v)).status == 200
    assert await listed() == [(ids["lasting"], True, "activo"), (ids["soon"], False, "vencido")]
    assert (await readiness())["ready"] is True
    assert await signing_number() == numbers["lasting"]
    assert (await client.post(f"{base}/csds/999/activate", headers=v)).status == 404
