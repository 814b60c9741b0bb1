"""Credentials against SAT's public test files in ../shared/sat-test-credentials (skipped when absent)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.sat import (
    CertificateKind,
    Credential,
    CredentialError,
    CredentialErrorCode,
    CredentialUse,
    Rfc,
    SatCertificate,
    SatTrust,
    open_credential,
)

SAT_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sat-test-credentials"
pytestmark = pytest.mark.skipif(not SAT_DIR.is_dir(), reason=f"SAT test credentials not found at {SAT_DIR}")

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SANDBOX = SatTrust(sandbox=True)
PRODUCTION = SatTrust(sandbox=False)
EKU = Rfc("EKU9003173C9")


def files(folder: str) -> tuple[bytes, bytes, str]:
    base = SAT_DIR / folder
    return (
        (base / "certificate.cer").read_bytes(),
        (base / "private.key").read_bytes(),
        (base / "password.txt").read_text(encoding="utf-8"),
    )


def refusal(folder: str, use: CredentialUse, *, rfc: Rfc | None = EKU, trust: SatTrust = SANDBOX) -> str:
    cer, key, password = files(folder)
    with pytest.raises(CredentialError) as caught:
        open_credential(cer, key, password, expected_use=use, rfc=rfc, at=AT, trust=trust)
    return caught.value.code


@pytest.mark.parametrize(
    ("folder", "number", "kind", "rfc"),
    [
        ("valid-2027/EKU9003173C9-csd", "30001000000500003416", CertificateKind.CSD, "EKU9003173C9"),
        ("valid-2027/EKU9003173C9-efirma", "30001000000500003415", CertificateKind.FIEL, "EKU9003173C9"),
        ("valid-2027/FUNK671228PH6-csd", "30001000000500003446", CertificateKind.CSD, "FUNK671228PH6"),
        ("expired-2023/EKU9003173C9-csd", "30001000000400002434", CertificateKind.CSD, "EKU9003173C9"),
        ("expired-2023/EKU9003173C9-efirma", "30001000000400002417", CertificateKind.FIEL, "EKU9003173C9"),
        ("expired-2023/CACX7605101P8-csd", "30001000000400002451", CertificateKind.CSD, "CACX7605101P8"),
        ("expired-2023/CACX7605101P8-efirma", "30001000000400002300", CertificateKind.FIEL, "CACX7605101P8"),
    ],
)
def test_sat_certificates_are_read_and_classified(folder: str, number: str, kind: CertificateKind, rfc: str) -> None:
    cer, _, _ = files(folder)
    cert = SatCertificate.load(cer)
    assert cert.certificate_number == number
    assert cert.kind is kind
    assert cert.rfc == Rfc(rfc)
    assert cert.issuer_common_name == "AC UAT"


def test_valid_csd_is_accepted_in_sandbox_mode() -> None:
    cer, key, password = files("valid-2027/EKU9003173C9-csd")
    credential = open_credential(cer, key, password, expected_use=CredentialUse.CSD, rfc=EKU, at=AT, trust=SANDBOX)
    assert credential.is_csd() and not credential.is_fiel()
    assert credential.certificate_number == "30001000000500003416"
    assert credential.rfc == EKU
    assert credential.certificate.rfc_representative == Rfc("VADA800927DJ3")
    assert credential.certificate.legal_name == "ESCUELA KEMPER URGATE SA DE CV"
    assert credential.certificate.branch_name == "Sucursal 1"
    assert credential.certificate.valid_until == datetime(2027, 5, 18, 11, 43, 51, tzinfo=UTC)


def test_valid_efirma_is_accepted_in_sandbox_mode() -> None:
    cer, key, password = files("valid-2027/EKU9003173C9-efirma")
    credential = open_credential(cer, key, password, expected_use=CredentialUse.FIEL, rfc=EKU, at=AT, trust=SANDBOX)
    assert credential.is_fiel()
    assert credential.certificate.branch_name is None


@pytest.mark.parametrize(
    ("folder", "use"),
    [("valid-2027/EKU9003173C9-csd", CredentialUse.CSD), ("valid-2027/EKU9003173C9-efirma", CredentialUse.FIEL)],
)
def test_sat_test_ca_is_refused_outside_sandbox_mode(folder: str, use: CredentialUse) -> None:
    assert refusal(folder, use, trust=PRODUCTION) == CredentialErrorCode.UNTRUSTED_ISSUER


def test_efirma_is_refused_as_csd() -> None:
    assert refusal("valid-2027/EKU9003173C9-efirma", CredentialUse.CSD) == CredentialErrorCode.FIEL_NOT_CSD


def test_csd_is_refused_as_efirma() -> None:
    assert refusal("valid-2027/EKU9003173C9-csd", CredentialUse.FIEL) == CredentialErrorCode.CSD_NOT_FIEL


@pytest.mark.parametrize(
    ("folder", "use", "rfc"),
    [
        ("expired-2023/EKU9003173C9-csd", CredentialUse.CSD, "EKU9003173C9"),
        ("expired-2023/EKU9003173C9-efirma", CredentialUse.FIEL, "EKU9003173C9"),
        ("expired-2023/CACX7605101P8-csd", CredentialUse.CSD, "CACX7605101P8"),
        ("expired-2023/CACX7605101P8-efirma", CredentialUse.FIEL, "CACX7605101P8"),
    ],
)
def test_expired_2023_set_is_refused_as_expired(folder: str, use: CredentialUse, rfc: str) -> None:
    assert refusal(folder, use, rfc=Rfc(rfc)) == CredentialErrorCode.CERTIFICATE_EXPIRED


def test_other_vendors_csd_is_refused_for_rfc_mismatch() -> None:
    cer, key, password = files("valid-2027/FUNK671228PH6-csd")
    with pytest.raises(CredentialError) as caught:
        open_credential(cer, key, password, expected_use=CredentialUse.CSD, rfc=EKU, at=AT, trust=SANDBOX)
    assert caught.value.code == CredentialErrorCode.RFC_MISMATCH
    assert "FUNK671228PH6" in caught.value.message and "EKU9003173C9" in caught.value.message


def test_key_from_another_folder_is_refused_as_not_matching() -> None:
    cer, _, password = files("valid-2027/EKU9003173C9-csd")
    _, other_key, _ = files("valid-2027/FUNK671228PH6-csd")
    with pytest.raises(CredentialError) as caught:
        open_credential(cer, other_key, password, expected_use=CredentialUse.CSD, rfc=EKU, at=AT, trust=SANDBOX)
    assert caught.value.code == CredentialErrorCode.KEY_MISMATCH
    assert caught.value.message == "La llave privada no corresponde al certificado."


def test_wrong_password_is_refused() -> None:
    cer, key, _ = files("valid-2027/EKU9003173C9-csd")
    with pytest.raises(CredentialError) as caught:
        open_credential(cer, key, "12345678b", expected_use=CredentialUse.CSD, rfc=EKU, at=AT, trust=SANDBOX)
    assert caught.value.code == CredentialErrorCode.WRONG_PASSWORD
    assert "contraseña" in caught.value.message


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_signature_matches_satcfdi_independent_implementation() -> None:
    satcfdi_models = pytest.importorskip("satcfdi.models")
    cer, key, password = files("valid-2027/EKU9003173C9-csd")
    credential = Credential.load(cer, key, password)
    data = b"||4.0|REP|1|2025-06-01T12:00:00||"
    theirs = satcfdi_models.Signer.load(certificate=cer, key=key, password=password).sign_sha256(data)
    assert base64.b64encode(credential.sign(data)).decode() == theirs
    assert credential.verify(data, credential.sign(data))
    assert not credential.verify(data + b"x", credential.sign(data))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_certificate_number_agrees_with_satcfdi() -> None:
    satcfdi_models = pytest.importorskip("satcfdi.models")
    cer, key, password = files("valid-2027/FUNK671228PH6-csd")
    theirs = satcfdi_models.Signer.load(certificate=cer, key=key, password=password)
    ours = SatCertificate.load(cer)
    assert ours.certificate_number == theirs.certificate_number
    assert ours.rfc.value == theirs.rfc
