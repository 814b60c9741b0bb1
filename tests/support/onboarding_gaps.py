"""Helpers for the onboarding gap tests: REPs that take real folios, and the contract steps over the API.

``issue_reps`` takes folios the way the stamping pipeline does (``queries.allocate_folio`` and the REP
row in one transaction), so ``cfdi_settings.next_folio`` and ``payment_complements`` agree;
``insert_reps`` writes REP rows only (as imported or seeded data would), leaving the settings alone.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from core.audit.service import Actor
from core.clock import FrozenClock
from core.db.engine import Database
from core.sat.trust import SatTrust
from core.secrets.box import SecretBox
from core.stamping import queries
from core.stamping.models import Payment, PaymentComplement, PaymentStatus, RepStatus
from core.vendors import onboarding
from core.vendors.models import Vendor
from tests.support.app import Tokens
from tests.support.certs import PASSWORD, IssuedCredential, TestCa, pooled_key

API_RFC = "PBA010101AB1"
API_LEGAL_NAME = "PAPELERA DEL BAJIO SA DE CV"


async def _payment(db: Database, vendor_id: int, now: datetime) -> tuple[int, int]:
    async with db.transaction() as s:
        vendor = await s.get(Vendor, vendor_id)
        assert vendor is not None
        payment = Payment(
            vendor_id=vendor_id,
            client_id=vendor.client_id,
            paid_at=now,
            payment_form="03",
            currency="MXN",
            amount=Decimal("100.00"),
            status=PaymentStatus.STAMPED.value,
            errors=[],
            created_at=now,
            updated_at=now,
        )
        s.add(payment)
        await s.flush()
        return payment.id, vendor.client_id


def _rep_row(
    vendor_id: int, client_id: int, payment_id: int, serie: str, folio: int, now: datetime
) -> dict[str, object]:
    return {
        "payment_id": payment_id,
        "vendor_id": vendor_id,
        "client_id": client_id,
        "serie": serie,
        "folio": folio,
        "fecha": now.strftime("%Y-%m-%dT%H:%M:%S"),
        "issued_at": now,
        "status": RepStatus.SEALED.value,
        "idempotency_key": f"gap:{vendor_id}:{serie}:{folio}",
        "sealed_xml": b"<x/>",
        "amount": Decimal("100.00"),
        "currency": "MXN",
        "receiver_rfc": "XAXX010101000",
        "receiver_name": "PUBLICO EN GENERAL",
        "stamp_state": "reserved",
        "late": False,
        "errors": [],
        "created_at": now,
        "updated_at": now,
    }


async def issue_reps(db: Database, vendor_id: int, count: int, now: datetime) -> list[tuple[str, int]]:
    """Issue ``count`` REPs taking folios like the stamping pipeline; returns their (serie, folio)."""
    payment_id, client_id = await _payment(db, vendor_id, now)
    issued: list[tuple[str, int]] = []
    async with db.transaction() as s:
        for _ in range(count):
            folio, settings = await queries.allocate_folio(s, vendor_id)
            await s.execute(
                insert(PaymentComplement.__table__),
                [_rep_row(vendor_id, client_id, payment_id, settings.serie, folio, now)],
            )
            issued.append((settings.serie, folio))
    return issued


async def insert_reps(db: Database, vendor_id: int, serie: str, folios: list[int], now: datetime) -> None:
    """REP rows only (imported or seeded data): ``cfdi_settings`` is not touched."""
    payment_id, client_id = await _payment(db, vendor_id, now)
    async with db.transaction() as s:
        await s.execute(
            insert(PaymentComplement.__table__),
            [_rep_row(vendor_id, client_id, payment_id, serie, f, now) for f in folios],
        )


# ------------------------------------------------------------------------------------------- API
def credential_form(cer: bytes, key: bytes, password: str = PASSWORD) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("cer", io.BytesIO(cer), filename="certificado.cer", content_type="application/octet-stream")
    f.add_field("key", io.BytesIO(key), filename="llave.key", content_type="application/octet-stream")
    f.add_field("password", password)
    return f


async def register_api_vendor(client: TestClient, tokens: Tokens) -> str:
    """Client ACME and vendor 1 (RFC ``API_RFC``) through the API; returns the vendor's base path."""
    h = tokens.auth("staff")
    acme = await (
        await client.post("/api/v1/clients", json={"name": "ACME", "proveedores_plus": True}, headers=h)
    ).json()
    r = await client.post(
        "/api/v1/vendors",
        json={
            "client_id": acme["id"],
            "rfc": API_RFC,
            "razon_social": "Papelera del Bajío SA de CV",
            "correo": "facturas@papelerabajio.mx",
            "direccion": "Av. Constituyentes 100, Querétaro",
        },
        headers=h,
    )
    assert r.status == 201, await r.text()
    return f"/api/v1/vendors/{(await r.json())['id']}"


async def sign_contract_api(
    client: TestClient, base: str, headers: dict[str, str], fiel: IssuedCredential
) -> list[tuple[str, bytes]]:
    """The three contract steps through the API; returns every (path, response body) of the flow."""
    bodies: list[tuple[str, bytes]] = []

    async def call(method: str, path: str, **kw: object) -> bytes:
        r = await client.request(method, f"{base}{path}", headers=headers, **kw)  # type: ignore[arg-type]
        body = await r.read()
        assert r.status < 300, body
        bodies.append((path, body))
        return body

    await call("POST", "/contract/manifest/confirm")
    documents = await (await client.get(f"{base}/contract/documents", headers=headers)).json()
    versions = {"contract_version": documents["contrato"]["version"], "privacy_version": documents["aviso"]["version"]}
    await call("POST", "/contract/accept", json=versions)
    await call("POST", "/contract/sign", data=credential_form(fiel.cer_der(), fiel.key_der()))
    return bodies


# ------------------------------------------------------------------------------------------- CSDs
def issue_csd(clock: FrozenClock, slot: int, *, days: int = 700, rfc: str = API_RFC) -> IssuedCredential:
    """A CSD for ``rfc`` from a SAT-like test CA, valid from 30 days ago for ``days`` days."""
    return TestCa.sat_like().issue(
        rfc=rfc,
        legal_name=API_LEGAL_NAME,
        key=pooled_key(slot),
        not_before=clock.now() - timedelta(days=30),
        not_after=clock.now() + timedelta(days=days),
    )


async def add_csd(database: Database, clock: FrozenClock, vid: int, cred: IssuedCredential, box: SecretBox) -> int:
    """Add ``cred`` as a CSD of vendor ``vid`` (sandbox trust, no contract needed); returns its id."""
    async with database.transaction() as s:
        view = await onboarding.add_csd(
            s,
            vid,
            cer=cred.cer_der(),
            key=cred.key_der(),
            password=PASSWORD,
            box=box,
            trust=SatTrust(sandbox=True),
            actor=Actor.system(),
            now=clock.now(),
            require_contract=False,
        )
    return view.id
