"""Cancellation through the sandbox PAC: motivos, substitution, receiver acceptance, SAT states."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from core.clock import FrozenClock
from core.pac.base import CancelStatus, PacRejected
from core.pac.cancellation import (
    CancelRequest,
    build_signed_cancellation,
    read_cancellation,
    verify_signed_cancellation,
)
from core.pac.sandbox import AcceptancePolicy, SandboxPac

from .helpers import ISSUED_AT, NOW, credential_of, issued, sandbox, sealed_rep

RFC = "EKU9003173C9"


async def stamped(pac: SandboxPac, minutes: int = 0) -> str:
    xml = sealed_rep(issued_at=ISSUED_AT + dt.timedelta(minutes=minutes))
    return (await pac.stamp(xml, idempotency_key=f"p{minutes}")).uuid


async def refused(pac: SandboxPac, *args: object, credential: object = None) -> PacRejected:
    with pytest.raises(PacRejected) as excinfo:
        await pac.cancel(*args, credential=credential or credential_of(issued()))  # type: ignore[arg-type]
    return excinfo.value


async def test_a_rep_is_cancelled_without_acceptance_under_sat_rules() -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    result = await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued()))
    assert result.status is CancelStatus.CANCELLED and result.raw == "201"
    assert result.acuse is not None and uuid.encode() in result.acuse
    status = await pac.cancel_status(uuid, rfc_emisor=RFC, rfc_receptor="URE180429TM6", total="0")
    assert status.status is CancelStatus.CANCELLED


@pytest.mark.parametrize(("accept", "final"), [(True, CancelStatus.CANCELLED), (False, CancelStatus.REJECTED)])
async def test_receiver_answer_decides_a_pending_cancellation(accept: bool, final: CancelStatus) -> None:
    pac = sandbox(acceptance=AcceptancePolicy.ALWAYS)
    uuid = await stamped(pac)
    first = await pac.cancel(uuid, RFC, "03", None, credential=credential_of(issued()))
    assert first.status is CancelStatus.PENDING_ACCEPTANCE
    pending = await pac.cancel_status(uuid, rfc_emisor=RFC, rfc_receptor="URE180429TM6", total="0")
    assert pending.status is CancelStatus.PENDING_ACCEPTANCE
    answered = await pac.receiver_answer(uuid, accept=accept)
    assert answered.status is final
    assert (await pac.cancel_status(uuid, rfc_emisor=RFC, rfc_receptor="", total="0")).status is final


async def test_pending_cancellation_without_answer_for_72_hours_is_cancelled() -> None:
    clock = FrozenClock(NOW)
    pac = sandbox(clock, acceptance=AcceptancePolicy.ALWAYS)
    uuid = await stamped(pac)
    await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued()))
    clock.advance(dt.timedelta(hours=71))
    assert (await pac.cancel_status(uuid, rfc_emisor=RFC, rfc_receptor="", total="0")).status is (
        CancelStatus.PENDING_ACCEPTANCE
    )
    clock.advance(dt.timedelta(hours=1))
    assert (await pac.cancel_status(uuid, rfc_emisor=RFC, rfc_receptor="", total="0")).status is CancelStatus.CANCELLED


async def test_a_rejected_cancellation_can_be_requested_again() -> None:
    pac = sandbox(acceptance=AcceptancePolicy.ALWAYS)
    uuid = await stamped(pac)
    await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued()))
    await pac.receiver_answer(uuid, accept=False)
    again = await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued()))
    assert again.status is CancelStatus.PENDING_ACCEPTANCE and again.raw == "201"


async def test_asking_twice_answers_202_with_the_current_state() -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued()))
    again = await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued()))
    assert (again.status, again.raw) == (CancelStatus.CANCELLED, "202")


async def test_motivo_01_requires_a_substitute_stamped_for_the_same_emitter() -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    assert (await refused(pac, uuid, RFC, "01", None)).code == "folio_sustitucion_requerido"
    unknown = "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8"
    assert (await refused(pac, uuid, RFC, "01", unknown)).code == "folio_sustitucion_no_encontrado"
    assert (await refused(pac, uuid, RFC, "01", uuid)).code == "folio_sustitucion_invalido"
    substitute = await stamped(pac, minutes=1)
    result = await pac.cancel(uuid, RFC, "01", substitute, credential=credential_of(issued()))
    assert result.status is CancelStatus.CANCELLED


@pytest.mark.parametrize(
    ("motivo", "folio", "code"),
    [
        ("05", None, "motivo_invalido"),
        ("", None, "motivo_invalido"),
        ("02", "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8", "folio_sustitucion_no_aplica"),
    ],
)
async def test_malformed_requests_are_refused_before_anything_else(motivo: str, folio: str | None, code: str) -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    assert (await refused(pac, uuid, RFC, motivo, folio)).code == code


async def test_unknown_uuid_wrong_emitter_and_foreign_credential_are_refused() -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    assert (await refused(pac, "00000000-0000-4000-8000-000000000000", RFC, "02", None)).code == "205"
    assert (await refused(pac, uuid, "URE180429TM6", "02", None)).code == "203"
    other = credential_of(issued(rfc="URE180429TM6"))
    assert (await refused(pac, uuid, RFC, "02", None, credential=other)).code == "203"
    untrusted = credential_of(issued(own_ca=True))
    assert (await refused(pac, uuid, RFC, "02", None, credential=untrusted)).code == "cancelacion_certificado"


async def test_an_efirma_can_sign_the_cancellation() -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    result = await pac.cancel(uuid, RFC, "02", None, credential=credential_of(issued(kind="fiel")))
    assert result.status is CancelStatus.CANCELLED


async def test_receiver_answer_without_a_pending_request_is_refused() -> None:
    pac = sandbox()
    uuid = await stamped(pac)
    with pytest.raises(PacRejected):
        await pac.receiver_answer(uuid, accept=True)


def test_signed_cancellation_verifies_and_any_change_breaks_it() -> None:
    credential = credential_of(issued())
    xml = build_signed_cancellation(
        CancelRequest("6f1a2b3c-4d5e-4f60-8172-839405a6b7c8", RFC, "02", None, NOW), credential
    )
    assert verify_signed_cancellation(xml)
    rfc, uuid, motivo, folio, cert = read_cancellation(xml)
    assert (rfc, uuid, motivo, folio) == (RFC, "6F1A2B3C-4D5E-4F60-8172-839405A6B7C8", "02", None)
    assert cert == credential.certificate.base64()
    assert not verify_signed_cancellation(xml.replace(b'Motivo="02"', b'Motivo="03"'))
    root = etree.fromstring(xml)
    assert root.get("Fecha") == "2025-03-10T12:32:00"  # local time of Mexico City
    assert b"PRIVATE" not in xml


def test_signed_cancellation_matches_satcfdi_digest_and_signature() -> None:
    """Our XMLDSig agrees with satcfdi's (used in production against Finkok and SW)."""
    from satcfdi.create.cancela import cancelacion
    from satcfdi.models import Signer as SatcfdiSigner

    cred = issued()
    signer = SatcfdiSigner.load(cred.cer_der(), cred.key_unencrypted_der())
    naive = dt.datetime(2025, 3, 10, 12, 32)
    theirs = cancelacion.Cancelacion(signer, cancelacion.Folio("6F1A2B3C-4D5E-4F60-8172-839405A6B7C8", "02"), naive)
    theirs_xml = etree.tostring(theirs.to_xml())
    ours_xml = build_signed_cancellation(
        CancelRequest("6F1A2B3C-4D5E-4F60-8172-839405A6B7C8", RFC, "02", None, NOW), credential_of(cred)
    )
    d = "{http://www.w3.org/2000/09/xmldsig#}"
    theirs_root, ours_root = etree.fromstring(theirs_xml), etree.fromstring(ours_xml)
    for path in (f"{d}Signature/{d}SignedInfo/{d}Reference/{d}DigestValue", f"{d}Signature/{d}SignatureValue"):
        assert theirs_root.findtext(path) == ours_root.findtext(path)
    assert verify_signed_cancellation(theirs_xml)
