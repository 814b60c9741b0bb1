"""FinkokPac against a local fake that speaks Finkok's SOAP protocol (backed by the sandbox PAC)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from core.pac.base import CancelStatus, PacAlreadyStamped, PacRateLimited, PacRejected, PacUnavailable
from core.pac.finkok import FinkokPac
from core.pac.sandbox import AcceptancePolicy, SandboxPac
from core.pac.sandbox_store import MemorySandboxStore
from tests.support.fake_pacs import FakeFinkok

from .helpers import credential_of, issued, sandbox, sealed_rep

RFC = "EKU9003173C9"


@dataclass
class Rig:
    fake: FakeFinkok
    pac: FinkokPac
    sandbox: SandboxPac
    store: MemorySandboxStore


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    store = MemorySandboxStore()
    box = sandbox(acceptance=AcceptancePolicy.ALWAYS, store=store)
    fake = FakeFinkok(box)
    await fake.start()
    pac = FinkokPac("user@example.com", "s3cr3t", base_url=fake.url, timeout=0.5)
    yield Rig(fake, pac, box, store)
    await pac.close()
    await fake.stop()


async def test_stamp_sends_the_sealed_xml_in_base64_and_returns_the_tfd(rig: Rig) -> None:
    xml = sealed_rep()
    result = await rig.pac.stamp(xml, idempotency_key="payment:1")
    assert result.pac_name == "finkok" and not result.recovered
    assert result.no_certificado_sat == "99001000000500000001" and result.rfc_prov_certif
    operation, body = rig.fake.requests[0]
    assert operation == "stamp" and base64.b64encode(xml).decode() in body


async def test_resend_answered_with_307_and_the_xml_is_a_recovery(rig: Rig) -> None:
    xml = sealed_rep()
    first = await rig.pac.stamp(xml, idempotency_key="k")
    again = await rig.pac.stamp(xml, idempotency_key="k")
    assert again.uuid == first.uuid and again.recovered and len(rig.store) == 1


async def test_307_without_xml_is_recovered_through_stamped(rig: Rig) -> None:
    rig.fake.duplicate_returns_xml = False
    xml = sealed_rep()
    first = await rig.pac.stamp(xml, idempotency_key="k")
    again = await rig.pac.stamp(xml, idempotency_key="k")
    assert again.uuid == first.uuid and again.recovered
    assert [op for op, _ in rig.fake.requests] == ["stamp", "stamp", "stamped"]


async def test_timeout_after_the_pac_stamped_then_retry_gives_one_uuid(rig: Rig) -> None:
    rig.fake.faults = ["lose"]
    xml = sealed_rep()
    with pytest.raises(PacUnavailable) as excinfo:
        await rig.pac.stamp(xml, idempotency_key="payment:1")
    assert excinfo.value.code == "pac_tiempo_agotado"
    assert len(rig.store) == 1  # the PAC did stamp it
    retry = await rig.pac.stamp(xml, idempotency_key="payment:1")
    assert retry.recovered and len(rig.store) == 1


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        ("timeout", PacUnavailable, "pac_tiempo_agotado"),
        ("503", PacUnavailable, "pac_error_servidor"),
        ("429", PacRateLimited, "pac_limite_de_solicitudes"),
    ],
)
async def test_transport_faults_are_retryable_errors(rig: Rig, fault: str, error: type[Exception], code: str) -> None:
    rig.fake.faults = [fault]
    with pytest.raises(error) as excinfo:
        await rig.pac.stamp(sealed_rep(), idempotency_key="")
    assert getattr(excinfo.value, "code", None) == code
    if isinstance(excinfo.value, PacRateLimited):
        assert excinfo.value.retry_after == 7
    assert len(rig.store) == 0
    assert (await rig.pac.stamp(sealed_rep(), idempotency_key="")).uuid


async def test_invalid_document_is_rejected_with_the_pac_code(rig: Rig) -> None:
    xml = sealed_rep().replace(b'NumOperacion="SPEI-123"', b'NumOperacion="SPEI-999"')
    with pytest.raises(PacRejected) as excinfo:
        await rig.pac.stamp(xml, idempotency_key="")
    assert excinfo.value.code == "CFDI40102"


async def test_wrong_password_is_a_configuration_problem_and_never_shows_the_password(rig: Rig) -> None:
    pac = FinkokPac("user@example.com", "wrong-secret-value", base_url=rig.fake.url, timeout=0.5)
    try:
        with pytest.raises(PacUnavailable) as excinfo:
            await pac.stamp(sealed_rep(), idempotency_key="")
        assert excinfo.value.code == "pac_configuracion"
        assert "wrong-secret-value" not in str(excinfo.value) and "wrong-secret-value" not in repr(pac)
    finally:
        await pac.close()


async def test_unreachable_finkok_is_unavailable() -> None:
    pac = FinkokPac("u", "p", base_url="http://127.0.0.1:9", timeout=0.5)
    try:
        with pytest.raises(PacUnavailable) as excinfo:
            await pac.stamp(sealed_rep(), idempotency_key="")
        assert excinfo.value.code in ("pac_sin_conexion", "pac_tiempo_agotado")
    finally:
        await pac.close()


async def test_recover_by_uuid_uses_query_pending(rig: Rig) -> None:
    first = await rig.pac.stamp(sealed_rep(), idempotency_key="")
    found = await rig.pac.recover(first.uuid)
    assert found is not None and found.uuid == first.uuid and found.recovered
    assert await rig.pac.recover("00000000-0000-4000-8000-000000000000") is None


async def test_already_stamped_without_any_way_to_recover_raises_already_stamped(rig: Rig) -> None:
    rig.fake.duplicate_returns_xml = False
    xml = sealed_rep()
    await rig.pac.stamp(xml, idempotency_key="")

    async def nothing(_: bytes | str) -> None:
        return None

    rig.pac.recover = nothing  # type: ignore[method-assign,assignment]
    with pytest.raises(PacAlreadyStamped):
        await rig.pac.stamp(xml, idempotency_key="")


async def test_cancellation_is_signed_locally_and_follows_the_receiver(rig: Rig) -> None:
    stamped = await rig.pac.stamp(sealed_rep(), idempotency_key="")
    credential = credential_of(issued())
    result = await rig.pac.cancel(stamped.uuid, RFC, "02", None, credential=credential)
    assert result.status is CancelStatus.PENDING_ACCEPTANCE and result.acuse
    operation, body = rig.fake.requests[-1]
    assert operation == "cancel_signature"
    assert "PRIVATE KEY" not in body and "12345678a" not in body
    status = await rig.pac.cancel_status(stamped.uuid, rfc_emisor=RFC, rfc_receptor="URE180429TM6", total="0")
    assert status.status is CancelStatus.PENDING_ACCEPTANCE
    await rig.sandbox.receiver_answer(stamped.uuid, accept=True)
    status = await rig.pac.cancel_status(stamped.uuid, rfc_emisor=RFC, rfc_receptor="URE180429TM6", total="0")
    assert status.status is CancelStatus.CANCELLED


async def test_cancellation_of_an_unknown_uuid_is_rejected(rig: Rig) -> None:
    with pytest.raises(PacRejected) as excinfo:
        await rig.pac.cancel(
            "00000000-0000-4000-8000-000000000000", RFC, "02", None, credential=credential_of(issued())
        )
    assert excinfo.value.code == "205"
