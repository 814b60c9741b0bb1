"""SwPac against a local fake that speaks SW Sapien's REST protocol (backed by the sandbox PAC)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from core.pac.base import CancelStatus, PacAlreadyStamped, PacRateLimited, PacRejected, PacUnavailable
from core.pac.sandbox import SandboxPac
from core.pac.sandbox_store import MemorySandboxStore
from core.pac.sat_status import printed_expression
from core.pac.sw import SwPac, custom_id, split_message
from tests.support.fake_pacs import FakeSw

from .helpers import credential_of, issued, sandbox, sealed_rep

RFC = "EKU9003173C9"


@dataclass
class Rig:
    fake: FakeSw
    pac: SwPac
    sandbox: SandboxPac
    store: MemorySandboxStore


def make_pac(fake: FakeSw, *, password: str = "123456789") -> SwPac:
    return SwPac(
        user="demo",
        password=password,
        base_url=fake.url,
        api_url=fake.url,
        sat_status_url=f"{fake.url}/ConsultaCFDIService.svc",
        timeout=0.5,
    )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    store = MemorySandboxStore()
    box = sandbox(store=store)
    fake = FakeSw(box)
    await fake.start()
    pac = make_pac(fake)
    yield Rig(fake, pac, box, store)
    await pac.close()
    await fake.stop()


async def test_stamp_authenticates_once_and_forwards_the_idempotency_key(rig: Rig) -> None:
    first = await rig.pac.stamp(sealed_rep(), idempotency_key="payment:1")
    assert first.pac_name == "sw" and not first.recovered
    await rig.pac.stamp(sealed_rep(amount=Decimal("100.00")), idempotency_key="payment:2")
    assert rig.fake.authentications == 1
    assert rig.fake.custom_ids == ["payment:1", "payment:2"]


async def test_expired_token_is_renewed_once(rig: Rig) -> None:
    await rig.pac.stamp(sealed_rep(), idempotency_key="a")
    rig.fake.expire_tokens()
    again = await rig.pac.stamp(sealed_rep(), idempotency_key="a")
    assert again.recovered and rig.fake.authentications == 2


async def test_wrong_credentials_are_a_configuration_problem_without_the_password(rig: Rig) -> None:
    pac = make_pac(rig.fake, password="not-the-password-123")
    try:
        with pytest.raises(PacUnavailable) as excinfo:
            await pac.stamp(sealed_rep(), idempotency_key="")
        assert excinfo.value.code == "pac_credenciales"
        assert "not-the-password-123" not in str(excinfo.value) + repr(pac)
    finally:
        await pac.close()


async def test_307_with_the_previous_stamp_is_a_recovery(rig: Rig) -> None:
    xml = sealed_rep()
    first = await rig.pac.stamp(xml, idempotency_key="k1")
    again = await rig.pac.stamp(xml, idempotency_key="k2")
    assert again.uuid == first.uuid and again.recovered and len(rig.store) == 1


async def test_307_without_data_raises_already_stamped_and_recover_by_uuid_finds_it(rig: Rig) -> None:
    rig.fake.duplicate_returns_xml = False
    xml = sealed_rep()
    first = await rig.pac.stamp(xml, idempotency_key="k")
    with pytest.raises(PacAlreadyStamped):
        await rig.pac.stamp(xml, idempotency_key="k")
    found = await rig.pac.recover(first.uuid)
    assert found is not None and found.uuid == first.uuid and found.recovered
    assert await rig.pac.recover("00000000-0000-4000-8000-000000000000") is None


async def test_timeout_after_the_pac_stamped_then_retry_gives_one_uuid(rig: Rig) -> None:
    rig.fake.faults = ["lose"]
    xml = sealed_rep()
    with pytest.raises(PacUnavailable):
        await rig.pac.stamp(xml, idempotency_key="payment:1")
    retry = await rig.pac.stamp(xml, idempotency_key="payment:1")
    assert retry.recovered and len(rig.store) == 1


@pytest.mark.parametrize(("fault", "code"), [("503", "pac_error_servidor"), ("timeout", "pac_tiempo_agotado")])
async def test_transport_faults_are_retryable(rig: Rig, fault: str, code: str) -> None:
    rig.fake.faults = [fault]
    with pytest.raises(PacUnavailable) as excinfo:
        await rig.pac.stamp(sealed_rep(), idempotency_key="")
    assert excinfo.value.code == code and len(rig.store) == 0


async def test_rate_limit_carries_retry_after(rig: Rig) -> None:
    rig.fake.faults = ["429"]
    with pytest.raises(PacRateLimited) as excinfo:
        await rig.pac.stamp(sealed_rep(), idempotency_key="")
    assert excinfo.value.retry_after == 7


async def test_invalid_document_is_rejected_with_the_code_from_the_message(rig: Rig) -> None:
    with pytest.raises(PacRejected) as excinfo:
        await rig.pac.stamp(sealed_rep(cred=issued(kind="fiel")), idempotency_key="")
    assert excinfo.value.code == "306" and "CSD" in excinfo.value.message


async def test_cancel_by_signed_xml_then_status_from_sat(rig: Rig) -> None:
    stamped = await rig.pac.stamp(sealed_rep(), idempotency_key="")
    result = await rig.pac.cancel(stamped.uuid, RFC, "02", None, credential=credential_of(issued()))
    assert result.status is CancelStatus.REQUESTED and result.raw == "201"
    assert "BEGIN" not in rig.fake.requests[-1][1]
    status = await rig.pac.cancel_status(stamped.uuid, rfc_emisor=RFC, rfc_receptor="URE180429TM6", total="0")
    assert status.status is CancelStatus.CANCELLED


async def test_cancel_refused_by_sat_is_rejected(rig: Rig) -> None:
    with pytest.raises(PacRejected) as excinfo:
        await rig.pac.cancel(
            "00000000-0000-4000-8000-000000000000", RFC, "03", None, credential=credential_of(issued())
        )
    assert excinfo.value.code == "205"


def test_sw_messages_split_into_code_and_text() -> None:
    assert split_message("307. El comprobante contiene un timbre previo.") == (
        "307",
        "El comprobante contiene un timbre previo.",
    )
    assert split_message("CFDI40102 - El resultado de la digestión...")[0] == "CFDI40102"
    assert split_message("algo raro")[0] == "sw_error"
    assert split_message("")[0] == "sw_error"


def test_long_idempotency_keys_are_hashed_to_fit_customid() -> None:
    assert custom_id("payment:1") == "payment:1"
    long_key = "x" * 300
    assert len(custom_id(long_key)) == 64 and custom_id(long_key) == custom_id(long_key)


def test_printed_expression_follows_sat_format() -> None:
    assert printed_expression("abc", "EKU9003173C9", "URE180429TM6", "0") == (
        "?re=EKU9003173C9&rr=URE180429TM6&tt=0.000000&id=ABC"
    )
    assert printed_expression("a", "A&B", "X", "oops").endswith("tt=0.000000&id=A")
