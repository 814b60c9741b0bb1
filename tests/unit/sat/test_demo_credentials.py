"""The demo credential generator (core.sat.demo_credentials): SAT-shaped, accepted only in sandbox mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import pytest
from asn1crypto import keys

from core.sat.credentials import CredentialUse, open_credential
from core.sat.demo_credentials import (
    DEMO_PASSWORD,
    DemoVendorCredentials,
    demo_vendor_credentials,
    sat_key_der,
)
from core.sat.errors import CredentialError
from core.sat.rfc import Rfc
from core.sat.trust import IssuerKind, SatTrust, classify_issuer_name

NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
SAT_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sat-test-credentials"


@lru_cache(maxsize=1)
def creds() -> DemoVendorCredentials:
    return demo_vendor_credentials(rfc="EKU9003173C9", legal_name="ESCUELA KEMPER URGATE", now=NOW)


def _open(which: str, *, sandbox: bool, use: CredentialUse, password: str = DEMO_PASSWORD) -> object:
    cred = getattr(creds(), which)
    return open_credential(
        cred.cer_der(), cred.key_der(DEMO_PASSWORD), password, expected_use=use, rfc=Rfc.parse("EKU9003173C9"),
        at=NOW, trust=SatTrust(sandbox=sandbox),
    )  # fmt: skip


def test_demo_csd_and_efirma_open_as_such_in_sandbox_mode() -> None:
    csd = _open("csd", sandbox=True, use=CredentialUse.CSD)
    fiel = _open("fiel", sandbox=True, use=CredentialUse.FIEL)
    assert "kind='csd'" in repr(csd) and "kind='fiel'" in repr(fiel)


@pytest.mark.parametrize(("which", "use"), [("csd", CredentialUse.CSD), ("fiel", CredentialUse.FIEL)])
def test_demo_credentials_are_refused_in_production_mode(which: str, use: CredentialUse) -> None:
    with pytest.raises(CredentialError) as caught:
        _open(which, sandbox=False, use=use)
    assert caught.value.code == "untrusted_issuer"


def test_demo_csd_is_not_an_efirma_and_the_efirma_is_not_a_csd() -> None:
    with pytest.raises(CredentialError):
        _open("csd", sandbox=True, use=CredentialUse.FIEL)
    with pytest.raises(CredentialError):
        _open("fiel", sandbox=True, use=CredentialUse.CSD)


def test_the_ca_is_named_like_sats_test_ca() -> None:
    assert classify_issuer_name(creds().csd.certificate.issuer) is IssuerKind.SAT_TEST
    assert creds().csd.certificate.issuer == creds().ca.certificate.subject


def test_the_certificate_number_reads_as_twenty_ascii_digits() -> None:
    serial = creds().csd.certificate.serial_number
    digits = serial.to_bytes((serial.bit_length() + 7) // 8, "big").decode("ascii")
    assert len(digits) == 20 and digits.isdigit()


def test_the_certificates_are_valid_around_now() -> None:
    cert = creds().fiel.certificate
    assert cert.not_valid_before_utc <= NOW < NOW + timedelta(days=365) <= cert.not_valid_after_utc


def test_repr_never_shows_private_keys_or_the_password() -> None:
    text = repr(creds())
    assert "private_key" not in text and DEMO_PASSWORD not in text and "RSAPrivateKey" not in text


def test_key_file_is_pkcs8_pbes2_pbkdf2_sha1_3des_with_2048_rounds() -> None:
    info = keys.EncryptedPrivateKeyInfo.load(creds().csd.key_der())
    algorithm = info["encryption_algorithm"]
    assert algorithm["algorithm"].native == "pbes2"
    kdf = algorithm["parameters"]["key_derivation_func"]
    assert kdf["algorithm"].native == "pbkdf2"
    assert kdf["parameters"]["iteration_count"].native == 2048
    assert kdf["parameters"]["prf"].native["algorithm"] == "sha1"
    assert algorithm["parameters"]["encryption_scheme"]["algorithm"].native == "tripledes_3key"


@pytest.mark.skipif(not SAT_DIR.is_dir(), reason=f"SAT test credentials not found at {SAT_DIR}")
def test_key_file_envelope_matches_sats_own_key_file() -> None:
    sat = keys.EncryptedPrivateKeyInfo.load((SAT_DIR / "valid-2027" / "EKU9003173C9-csd" / "private.key").read_bytes())
    ours = keys.EncryptedPrivateKeyInfo.load(creds().csd.key_der())

    def shape(info: keys.EncryptedPrivateKeyInfo) -> tuple[object, ...]:
        params = info["encryption_algorithm"]["parameters"]
        kdf = params["key_derivation_func"]
        return (
            info["encryption_algorithm"]["algorithm"].native,
            kdf["algorithm"].native,
            kdf["parameters"]["iteration_count"].native,
            kdf["parameters"]["prf"].native["algorithm"],
            params["encryption_scheme"]["algorithm"].native,
        )

    assert shape(ours) == shape(sat)


def test_two_key_files_of_the_same_key_differ_in_salt() -> None:
    key = creds().csd.private_key
    assert sat_key_der(key, DEMO_PASSWORD) != sat_key_der(key, DEMO_PASSWORD)


def test_written_key_file_is_private(tmp_path: Path) -> None:
    cer, key = creds().csd.write(tmp_path / "demo", stem="csd")
    assert cer.read_bytes() == creds().csd.cer_der()
    assert key.stat().st_mode & 0o077 == 0
