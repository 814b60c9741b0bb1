"""The sandbox PAC validates like a PAC and certifies with its own TFD 1.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_private_key
from lxml import etree

from core.cfdi.builder import build_rep
from core.cfdi.cadena import TFD_NS
from core.cfdi.signing import RsaSigner
from core.cfdi.tfd import verify_tfd
from core.cfdi.xsd import validate_xsd
from core.clock import FrozenClock
from core.pac.base import PacAlreadyStamped, PacRateLimited, PacRejected, PacUnavailable
from core.pac.sandbox import SandboxIdentity, SandboxPac
from core.sat.trust import SatTrust
from tests.unit.cfdi.factories import simple_rep

from .helpers import ISSUED_AT, NOW, identity, issued, sandbox, sealed_rep

T = "{" + TFD_NS + "}"
CREDENTIALS = Path(__file__).resolve().parents[4] / "shared" / "sat-test-credentials"


async def rejection(pac: SandboxPac, xml: bytes) -> PacRejected:
    with pytest.raises(PacRejected) as excinfo:
        await pac.stamp(xml, idempotency_key="")
    return excinfo.value


async def test_stamped_rep_has_a_tfd_signed_by_the_sandbox_certificate_and_passes_full_xsd() -> None:
    pac = sandbox()
    result = await pac.stamp(sealed_rep(), idempotency_key="payment:1")
    root = etree.fromstring(result.xml)
    tfd = root.find(f".//{T}TimbreFiscalDigital")
    assert tfd is not None and tfd.get("UUID") == result.uuid
    assert verify_tfd(tfd, pac.certificate_der)
    assert validate_xsd(root, variant="full") == []
    assert result.no_certificado_sat == "99001000000500000001" == tfd.get("NoCertificadoSAT")
    assert result.fecha_timbrado == "2025-03-10T12:32:00"
    assert (result.pac_name, result.recovered) == ("sandbox", False)


async def test_the_same_document_sent_again_gets_the_same_uuid_marked_recovered() -> None:
    pac = sandbox()
    xml = sealed_rep()
    first = await pac.stamp(xml, idempotency_key="a")
    again = await pac.stamp(xml, idempotency_key="b")
    assert again.uuid == first.uuid and again.xml == first.xml
    assert again.recovered and not first.recovered


async def test_concurrent_sends_of_one_document_produce_one_uuid() -> None:
    pac = sandbox()
    xml = sealed_rep()
    results = await asyncio.gather(*(pac.stamp(xml, idempotency_key="payment:7") for _ in range(10)))
    assert len({r.uuid for r in results}) == 1
    assert sum(not r.recovered for r in results) == 1


async def test_a_rebuilt_document_with_the_same_idempotency_key_returns_the_first_stamp() -> None:
    pac = sandbox()
    first = await pac.stamp(sealed_rep(), idempotency_key="payment:9")
    rebuilt = sealed_rep(issued_at=ISSUED_AT + dt.timedelta(minutes=1))
    again = await pac.stamp(rebuilt, idempotency_key="payment:9")
    assert again.uuid == first.uuid and again.recovered
    other = await pac.stamp(rebuilt, idempotency_key="payment:10")
    assert other.uuid != first.uuid


async def test_recover_finds_a_stamp_by_uuid_or_by_the_sealed_document() -> None:
    pac = sandbox()
    xml = sealed_rep()
    first = await pac.stamp(xml, idempotency_key="k")
    by_uuid = await pac.recover(first.uuid.lower())
    by_xml = await pac.recover(xml)
    assert by_uuid is not None and by_uuid.uuid == first.uuid and by_uuid.recovered
    assert by_xml is not None and by_xml.uuid == first.uuid
    assert await pac.recover("00000000-0000-4000-8000-000000000000") is None
    assert await pac.recover(sealed_rep(issued_at=ISSUED_AT + dt.timedelta(seconds=5))) is None


async def test_a_document_stamped_elsewhere_is_refused_with_307_and_our_own_is_recovered() -> None:
    other = SandboxPac(SandboxIdentity.generate(now=ISSUED_AT).signer(), clock=FrozenClock(NOW))
    stamped_elsewhere = (await other.stamp(sealed_rep(), idempotency_key="")).xml
    assert (await rejection(sandbox(), stamped_elsewhere)).code == "307"
    pac = sandbox()
    ours = await pac.stamp(sealed_rep(), idempotency_key="")
    again = await pac.stamp(ours.xml, idempotency_key="")
    assert again.uuid == ours.uuid and again.recovered


async def test_tampered_sello_is_refused_with_cfdi40102() -> None:
    xml = sealed_rep().replace(b'NumOperacion="SPEI-123"', b'NumOperacion="SPEI-124"')
    error = await rejection(sandbox(), xml)
    assert error.code == "CFDI40102"
    assert "sello" in error.message.lower() or "digestión" in error.message


async def test_rep_sealed_with_an_efirma_is_refused_with_306() -> None:
    assert (await rejection(sandbox(), sealed_rep(cred=issued(kind="fiel")))).code == "306"


async def test_certificate_not_issued_by_sat_is_refused_with_308() -> None:
    assert (await rejection(sandbox(), sealed_rep(cred=issued(own_ca=True)))).code == "308"


async def test_sat_test_ca_is_refused_outside_sandbox_mode() -> None:
    pac = sandbox(trust=SatTrust(sandbox=False))
    assert (await rejection(pac, sealed_rep())).code == "308"


async def test_certificate_of_another_rfc_is_refused_with_303() -> None:
    assert (await rejection(sandbox(), sealed_rep(cred=issued(rfc="URE180429TM6")))).code == "303"


async def test_certificate_expired_at_stamping_time_is_refused_with_304() -> None:
    cred = issued(not_after=NOW - dt.timedelta(minutes=1))
    assert (await rejection(sandbox(), sealed_rep(cred=cred))).code == "304"


async def test_fecha_before_the_certificate_validity_is_refused_with_305() -> None:
    cred = issued(not_before=ISSUED_AT + dt.timedelta(minutes=1))
    assert (await rejection(sandbox(), sealed_rep(cred=cred))).code == "305"


@pytest.mark.parametrize("offset", [dt.timedelta(hours=72, minutes=1), dt.timedelta(minutes=-10)])
async def test_fecha_outside_the_72_hour_window_is_refused_with_401(offset: dt.timedelta) -> None:
    pac = sandbox(FrozenClock(ISSUED_AT + offset))
    assert (await rejection(pac, sealed_rep())).code == "401"


async def test_fecha_just_inside_the_window_is_stamped() -> None:
    pac = sandbox(FrozenClock(ISSUED_AT + dt.timedelta(hours=71, minutes=59)))
    assert (await pac.stamp(sealed_rep(), idempotency_key="")).uuid


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"<not-xml",
        b"<Invoice/>",
        b"",
    ],
)
async def test_hostile_or_foreign_xml_is_refused_with_301(xml: bytes) -> None:
    assert (await rejection(sandbox(), xml)).code == "301"


async def test_schema_violation_is_refused_with_301_before_the_sello() -> None:
    xml = sealed_rep().replace(b'Exportacion="01"', b'Exportacion="99"')
    error = await rejection(sandbox(), xml)
    assert error.code == "301" and "esquema" in error.message


async def test_latency_is_spent_awaiting_not_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    pac = sandbox(latency=0.15)
    await pac.stamp(sealed_rep(), idempotency_key="")
    await pac.recover("00000000-0000-4000-8000-000000000000")
    assert slept == [0.15, 0.15]


def test_identity_round_trips_through_pem_and_hides_its_key() -> None:
    ident = identity()
    again = SandboxIdentity(ident.certificate_pem, ident.private_key_pem)
    assert again.signer().certificate_number == "99001000000500000001"
    assert "PRIVATE" not in repr(ident) and "oculta" in repr(ident)
    assert "PRIVATE" not in repr(sandbox())


def test_pac_errors_pickle_with_code_and_message() -> None:
    for error in (
        PacRejected("301", "XML mal formado"),
        PacUnavailable(),
        PacRateLimited(2.5),
        PacAlreadyStamped("ABC"),
    ):
        clone = pickle.loads(pickle.dumps(error))
        assert (type(clone), clone.code, clone.message) == (type(error), error.code, error.message)
    assert pickle.loads(pickle.dumps(PacRateLimited(2.5))).retry_after == 2.5


async def test_rep_for_eku9003173c9_with_its_2027_csd_is_stamped_by_the_sandbox() -> None:
    folder = CREDENTIALS / "valid-2027" / "EKU9003173C9-csd"
    if not folder.is_dir():
        pytest.skip("SAT test credentials not available")
    password = (folder / "password.txt").read_bytes()
    key = load_der_private_key((folder / "private.key").read_bytes(), password)
    cert = x509.load_der_x509_certificate((folder / "certificate.cer").read_bytes())
    xml = build_rep(simple_rep(), RsaSigner(key, cert)).xml  # type: ignore[arg-type]
    pac = sandbox()
    result = await pac.stamp(xml, idempotency_key="")
    from satcfdi.cfdi import CFDI

    assert CFDI.from_string(result.xml)["Complemento"]["TimbreFiscalDigital"]["UUID"] == result.uuid
    with pytest.raises(PacRejected) as excinfo:
        await sandbox(trust=SatTrust(sandbox=False)).stamp(xml, idempotency_key="")
    assert excinfo.value.code == "308"
