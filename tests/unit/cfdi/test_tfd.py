"""Sandbox PAC crypto core: verifies the sello, adds a TFD 1.1 whose SelloSAT verifies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_private_key
from lxml import etree

from core.cfdi.builder import build_rep
from core.cfdi.cadena import TFD_NS, cadena_original_xslt, tfd_cadena_original_native, tfd_cadena_original_xslt
from core.cfdi.errors import SealError
from core.cfdi.signing import RsaSigner, load_certificate_b64, verify_seal
from core.cfdi.tfd import stamp, verify_cfdi, verify_tfd
from core.cfdi.validator import validate_rep
from core.cfdi.xsd import validate_xsd

from .factories import UTC, make_signer, simple_rep

PAC = make_signer(rfc="SPR190613I52", serial_digits="30001000000500003456")
STAMPED_AT = dt.datetime(2025, 3, 10, 18, 31, tzinfo=UTC)
T = "{" + TFD_NS + "}"
CREDENTIALS = Path(__file__).resolve().parents[4] / "shared" / "sat-test-credentials"


def stamp_xml(xml: bytes) -> tuple[bytes, str]:
    result = stamp(verify_cfdi(xml), PAC, rfc_prov_certif="SPR190613I52", stamped_at=STAMPED_AT)
    return result.xml, result.uuid


def test_stamped_rep_carries_a_valid_tfd_and_still_passes_xsd_and_validator() -> None:
    xml = build_rep(simple_rep(), make_signer()).xml
    stamped, uuid = stamp_xml(xml)
    root = etree.fromstring(stamped)
    assert validate_xsd(root, variant="full") == []
    assert validate_rep(stamped, now=STAMPED_AT) == []
    tfd = root.find(f".//{T}TimbreFiscalDigital")
    assert tfd is not None and tfd.get("UUID") == uuid
    assert tfd.get("SelloCFD") == root.get("Sello")
    assert tfd.get("FechaTimbrado") == "2025-03-10T12:31:00"
    assert tfd_cadena_original_native(tfd) == tfd_cadena_original_xslt(tfd)
    assert verify_tfd(tfd, PAC.certificate_der)
    cert = load_certificate_b64(root.get("Certificado", ""))
    assert cert is not None and verify_seal(cadena_original_xslt(root), root.get("Sello", ""), cert)


def test_same_document_gets_the_same_uuid_and_another_document_another() -> None:
    xml = build_rep(simple_rep(), make_signer()).xml
    assert stamp_xml(xml)[1] == stamp_xml(xml)[1]
    other = build_rep(simple_rep(issued_at=STAMPED_AT), make_signer()).xml
    assert stamp_xml(other)[1] != stamp_xml(xml)[1]


def test_tampered_document_is_refused_with_cfdi40102() -> None:
    xml = build_rep(simple_rep(), make_signer()).xml.replace(b'Folio="1001"', b'Folio="1002"')
    with pytest.raises(SealError) as excinfo:
        verify_cfdi(xml)
    assert excinfo.value.code == "CFDI40102"


def test_already_stamped_document_is_refused_with_307() -> None:
    stamped, _ = stamp_xml(build_rep(simple_rep(), make_signer()).xml)
    with pytest.raises(SealError) as excinfo:
        verify_cfdi(stamped)
    assert excinfo.value.code == "307"


def test_certificate_number_that_does_not_match_the_certificate_is_refused() -> None:
    xml = build_rep(simple_rep(), make_signer()).xml.replace(b"30001000000500003416", b"30001000000500003417")
    with pytest.raises(SealError) as excinfo:
        verify_cfdi(xml)
    assert excinfo.value.code == "CFDI40106"


def test_rep_for_eku9003173c9_sealed_with_its_2027_csd_is_valid_and_stamped() -> None:
    folder = CREDENTIALS / "valid-2027" / "EKU9003173C9-csd"
    if not folder.is_dir():
        pytest.skip(f"SAT test credentials not found at {CREDENTIALS}")
    password = (folder / "password.txt").read_bytes()
    key = load_der_private_key((folder / "private.key").read_bytes(), password)
    cert = x509.load_der_x509_certificate((folder / "certificate.cer").read_bytes())
    signer = RsaSigner(key, cert)  # type: ignore[arg-type]
    assert signer.certificate_number == "30001000000500003416"
    built = build_rep(simple_rep(), signer)
    root = etree.fromstring(built.xml)
    assert validate_xsd(root, variant="full") == []
    assert verify_seal(cadena_original_xslt(root), root.get("Sello", ""), cert)
    assert validate_rep(built.xml, now=dt.datetime(2025, 3, 10, 19, 0, tzinfo=UTC)) == []
    stamped, uuid = stamp_xml(built.xml)
    from satcfdi.cfdi import CFDI

    parsed = CFDI.from_string(stamped)
    assert parsed["Complemento"]["TimbreFiscalDigital"]["UUID"] == uuid
    assert "12345678a" not in repr(signer)
