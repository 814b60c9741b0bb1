"""Credentials built with the project's own CA (tests/support/certs.py): dates, issuers, RFCs, formats."""

from __future__ import annotations

import base64
import os
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.sat import (
    CertificateKind,
    Credential,
    CredentialError,
    CredentialErrorCode,
    CredentialUse,
    Rfc,
    SatCertificate,
    SatTrust,
    load_ca_certificates,
    load_ca_files,
    load_private_key,
    open_credential,
)
from tests.support.certs import PASSWORD, TestCa, key_usage_for, pooled_key, sat_subject

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CSD, FIEL = CredentialUse.CSD, CredentialUse.FIEL
Code = CredentialErrorCode


@pytest.fixture(scope="module")
def ca() -> TestCa:
    return TestCa.create()


@pytest.fixture(scope="module")
def trust(ca: TestCa) -> SatTrust:
    return SatTrust(production_cas=(ca.certificate,))


def window(**overrides: datetime) -> dict[str, datetime]:
    return {"not_before": AT - timedelta(days=365), "not_after": AT + timedelta(days=365), **overrides}


def problem(
    cer: bytes,
    key: bytes,
    *,
    use: CredentialUse = CSD,
    rfc: str | None = "EKU9003173C9",
    trust: SatTrust,
    password: str = PASSWORD,
    at: datetime = AT,
) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        open_credential(cer, key, password, expected_use=use, rfc=Rfc(rfc) if rfc else None, at=at, trust=trust)
    return caught.value


# --- classification and acceptance ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "use"), [("csd", CSD), ("fiel", FIEL)])
def test_generated_csd_and_efirma_are_accepted_for_their_use(
    ca: TestCa, trust: SatTrust, kind: str, use: CredentialUse
) -> None:
    issued = ca.issue(kind=kind, **window())  # type: ignore[arg-type]
    credential = open_credential(
        issued.cer_der(), issued.key_der(), PASSWORD, expected_use=use, rfc=Rfc("EKU9003173C9"), at=AT, trust=trust
    )
    assert credential.certificate.kind is CertificateKind(kind)
    assert credential.verify(b"datos", credential.sign(b"datos"))


@pytest.mark.parametrize(
    ("kind", "use", "code", "message"),
    [
        (
            "fiel",
            CSD,
            Code.FIEL_NOT_CSD,
            "El certificado es una e.firma (FIEL) y se requiere un certificado de sello digital (CSD).",
        ),
        (
            "csd",
            FIEL,
            Code.CSD_NOT_FIEL,
            "El certificado es un certificado de sello digital (CSD) y se requiere una e.firma (FIEL).",
        ),
    ],
)
def test_kind_offered_for_the_other_use_is_refused_saying_what_it_is_and_what_is_needed(
    ca: TestCa, trust: SatTrust, kind: str, use: CredentialUse, code: Code, message: str
) -> None:
    issued = ca.issue(kind=kind, **window())  # type: ignore[arg-type]
    error = problem(issued.cer_der(), issued.key_der(), use=use, trust=trust)
    assert (error.code, error.message) == (code, message)


def test_certificate_problems_are_reported_before_the_password_is_tried(ca: TestCa, trust: SatTrust) -> None:
    issued = ca.issue(kind="fiel", **window())
    error = problem(issued.cer_der(), issued.key_der(), use=CSD, trust=trust, password="otra-contraseña")
    assert error.code == Code.FIEL_NOT_CSD


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"branch": None}, "CSD key usage without OU"),
        ({"key_usage": None}, "no key usage at all"),
        ({"extended_key_usage": (ExtendedKeyUsageOID.CLIENT_AUTH,)}, "CSD key usage with an EKU"),
        ({"key_usage": key_usage_for("fiel")}, "encipherment without EKU"),
    ],
)
def test_contradictory_key_usage_and_ou_make_the_type_unknown(
    ca: TestCa, trust: SatTrust, overrides: dict[str, object], reason: str
) -> None:
    issued = ca.issue(kind="csd", **window(), **overrides)  # type: ignore[arg-type]
    assert SatCertificate.load(issued.cer_der()).kind is CertificateKind.UNKNOWN, reason
    assert problem(issued.cer_der(), issued.key_der(), trust=trust).code == Code.UNKNOWN_CERTIFICATE_TYPE


def test_efirma_with_a_branch_ou_is_unknown(ca: TestCa) -> None:
    issued = ca.issue(kind="fiel", branch="Sucursal 1", **window())
    assert SatCertificate.load(issued.cer_der()).kind is CertificateKind.UNKNOWN


def test_a_ca_certificate_is_neither_csd_nor_efirma() -> None:
    assert SatCertificate.from_x509(_with_sat_subject_ca()).kind is CertificateKind.UNKNOWN


def _with_sat_subject_ca() -> x509.Certificate:
    key = pooled_key(3)
    name = sat_subject(rfc="EKU9003173C9", legal_name="ESCUELA KEMPER URGATE SA DE CV", branch="Matriz")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(b"30001000000500009999", "big"))
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(key_usage_for("csd"), critical=False)
        .sign(key, hashes.SHA256())
    )


# --- validity --------------------------------------------------------------------------------------


def test_not_yet_valid_certificate_is_refused(ca: TestCa, trust: SatTrust) -> None:
    issued = ca.issue(**window(not_before=AT + timedelta(days=1)))
    error = problem(issued.cer_der(), issued.key_der(), trust=trust)
    assert error.code == Code.CERTIFICATE_NOT_YET_VALID
    assert "aún no es vigente" in error.message and "02/06/2025" in error.message


def test_certificate_expired_yesterday_is_refused(ca: TestCa, trust: SatTrust) -> None:
    issued = ca.issue(**window(not_after=AT - timedelta(days=1)))
    error = problem(issued.cer_der(), issued.key_der(), trust=trust)
    assert error.code == Code.CERTIFICATE_EXPIRED
    assert "vencido" in error.message and "31/05/2025" in error.message


def test_validity_window_bounds_are_inclusive(ca: TestCa) -> None:
    cert = SatCertificate.load(ca.issue(**window(not_before=AT, not_after=AT + timedelta(seconds=1))).cer_der())
    assert cert.is_valid_at(AT)
    assert cert.is_valid_at(AT + timedelta(seconds=1))
    assert not cert.is_valid_at(AT + timedelta(seconds=2))
    assert not cert.is_valid_at(AT - timedelta(seconds=1))


def test_validity_is_compared_in_absolute_time_across_time_zones(ca: TestCa) -> None:
    cert = SatCertificate.load(ca.issue(**window(not_after=AT)).cer_der())
    mexico = datetime(2025, 6, 1, 6, 0, tzinfo=UTC).astimezone(ZoneInfo("America/Mexico_City"))
    assert cert.is_valid_at(mexico)
    assert not cert.is_valid_at((AT + timedelta(minutes=1)).astimezone(mexico.tzinfo))


def test_naive_datetime_is_a_programming_error(ca: TestCa) -> None:
    cert = SatCertificate.load(ca.issue(**window()).cer_der())
    with pytest.raises(TypeError):
        cert.is_valid_at(datetime(2025, 6, 1, 12, 0))


# --- issuer ----------------------------------------------------------------------------------------


def test_unknown_issuer_is_refused_in_every_mode(ca: TestCa) -> None:
    stranger = TestCa.create(common_name="AC CUALQUIERA", organization="OTRA EMPRESA", key=pooled_key(4))
    issued = stranger.issue(**window())
    for trust in (SatTrust(production_cas=(ca.certificate,)), SatTrust(sandbox=True)):
        error = problem(issued.cer_der(), issued.key_der(), trust=trust)
        assert error.code == Code.UNTRUSTED_ISSUER
        assert error.message.startswith("El certificado no fue emitido por el SAT.")


def test_sandbox_cas_are_trusted_only_in_sandbox_mode(ca: TestCa) -> None:
    issued = ca.issue(**window())
    sandbox = SatTrust(sandbox=True, sandbox_cas=(ca.certificate,))
    production = SatTrust(sandbox=False, sandbox_cas=(ca.certificate,))
    assert open_credential(
        issued.cer_der(), issued.key_der(), PASSWORD, expected_use=CSD, rfc=None, at=AT, trust=sandbox
    ).is_csd()
    assert problem(issued.cer_der(), issued.key_der(), trust=production).code == Code.UNTRUSTED_ISSUER


def test_sat_test_ca_name_is_trusted_in_sandbox_only(ca: TestCa) -> None:
    uat = TestCa.sat_like(common_name="AC UAT")
    issued = uat.issue(**window())
    assert open_credential(
        issued.cer_der(), issued.key_der(), PASSWORD, expected_use=CSD, rfc=None, at=AT, trust=SatTrust(sandbox=True)
    ).is_csd()
    error = problem(issued.cer_der(), issued.key_der(), trust=SatTrust(sandbox=False))
    assert error.code == Code.UNTRUSTED_ISSUER
    assert "pruebas" in error.message


def test_names_alone_are_not_trusted_when_trust_sat_names_is_off() -> None:
    issued = TestCa.sat_like(common_name="AC UAT").issue(**window())
    strict = SatTrust(sandbox=True, trust_sat_names=False)
    assert problem(issued.cer_der(), issued.key_der(), trust=strict).code == Code.UNTRUSTED_ISSUER


@pytest.mark.parametrize(
    "common_name",
    ["AC DEL SERVICIO DE ADMINISTRACION TRIBUTARIA", "A.C. del Servicio de Administración Tributaria"],
)
def test_production_sat_name_is_trusted_by_name_when_no_ca_is_configured(common_name: str) -> None:
    """The documented limitation: without SAT's CA certificates, a SAT issuer name is accepted."""
    issued = TestCa.sat_like(common_name=common_name).issue(**window())
    for sandbox in (False, True):
        credential = open_credential(
            issued.cer_der(),
            issued.key_der(),
            PASSWORD,
            expected_use=CSD,
            rfc=None,
            at=AT,
            trust=SatTrust(sandbox=sandbox),
        )
        assert credential.is_csd()


def test_forged_signature_is_refused_when_the_named_ca_is_configured() -> None:
    real = TestCa.sat_like(common_name="AC DEL SERVICIO DE ADMINISTRACION TRIBUTARIA")
    forged = real.issue(**window(), signing_key=pooled_key(5))
    error = problem(forged.cer_der(), forged.key_der(), trust=SatTrust(production_cas=(real.certificate,)))
    assert error.code == Code.UNTRUSTED_ISSUER
    genuine = real.issue(**window())
    assert open_credential(
        genuine.cer_der(),
        genuine.key_der(),
        PASSWORD,
        expected_use=CSD,
        rfc=None,
        at=AT,
        trust=SatTrust(production_cas=(real.certificate,)),
    ).is_csd()


def test_ca_outside_its_own_validity_does_not_vouch(ca: TestCa) -> None:
    old_ca = TestCa.create(
        common_name="AC VENCIDA",
        key=pooled_key(6),
        not_before=AT - timedelta(days=900),
        not_after=AT - timedelta(days=1),
    )
    issued = old_ca.issue(**window())
    error = problem(issued.cer_der(), issued.key_der(), trust=SatTrust(production_cas=(old_ca.certificate,)))
    assert error.code == Code.UNTRUSTED_ISSUER


def test_ca_certificates_load_from_pem_bundles_der_files_and_directories(ca: TestCa, tmp_path: Path) -> None:
    other = TestCa.create(common_name="AC DOS", key=pooled_key(7))
    from cryptography.hazmat.primitives.serialization import Encoding

    bundle = ca.certificate.public_bytes(Encoding.PEM) + other.certificate.public_bytes(Encoding.PEM)
    assert load_ca_certificates(bundle) == (ca.certificate, other.certificate)
    (tmp_path / "a.pem").write_bytes(bundle)
    (tmp_path / "b.cer").write_bytes(other.certificate.public_bytes(Encoding.DER))
    (tmp_path / "notes.txt").write_text("no soy un certificado")
    assert load_ca_files([tmp_path]) == (ca.certificate, other.certificate, other.certificate)


# --- RFC -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rfc", ["&ÑA010101AB1", "MUÑO800101AB1", "Ñ&&A800101AB1"])
def test_rfc_with_n_tilde_and_ampersand_is_read_and_matched(ca: TestCa, trust: SatTrust, rfc: str) -> None:
    issued = ca.issue(rfc=rfc, **window())
    credential = open_credential(
        issued.cer_der(), issued.key_der(), PASSWORD, expected_use=CSD, rfc=Rfc.parse(rfc.lower()), at=AT, trust=trust
    )
    assert credential.rfc.value == rfc


def test_rfc_written_with_a_decomposed_n_tilde_is_normalised(ca: TestCa) -> None:
    issued = ca.issue(rfc=unicodedata.normalize("NFD", "MUÑO800101AB1"), **window())
    assert SatCertificate.load(issued.cer_der()).rfc == Rfc("MUÑO800101AB1")


def test_rfc_and_representative_are_split_for_personas_morales(ca: TestCa) -> None:
    cert = SatCertificate.load(
        ca.issue(rfc_representative="VADA800927DJ3", curp_representative="VADA800927HSRSRL05", **window()).cer_der()
    )
    assert (cert.rfc, cert.rfc_representative) == (Rfc("EKU9003173C9"), Rfc("VADA800927DJ3"))
    assert (cert.curp, cert.curp_representative) == (None, "VADA800927HSRSRL05")


def test_rfc_encoded_as_bit_string_is_still_read(ca: TestCa) -> None:
    cert = SatCertificate.load(ca.issue(unique_identifier_as_bitstring=True, **window()).cer_der())
    assert cert.rfc == Rfc("EKU9003173C9")


def test_rfc_mismatch_names_both_rfcs(ca: TestCa, trust: SatTrust) -> None:
    issued = ca.issue(rfc="FUNK671228PH6", legal_name="KARLA FUENTE NOLASCO", **window())
    error = problem(issued.cer_der(), issued.key_der(), trust=trust)
    assert error.code == Code.RFC_MISMATCH
    assert error.message == ("El RFC del certificado (FUNK671228PH6) no coincide con el del proveedor (EKU9003173C9).")


# --- malformed certificates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ([x509.NameAttribute(NameOID.COMMON_NAME, "SIN RFC")], "no x500UniqueIdentifier"),
        (
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME"),
                x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, "NO-ES-UN-RFC"),
            ],
            "unique identifier that is not an RFC",
        ),
        (
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME"),
                x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, " / VADA800927DJ3"),
            ],
            "empty holder RFC",
        ),
        (
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME"),
                x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, "EKU9003173C9"),
                x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, "FUNK671228PH6"),
            ],
            "two RFCs",
        ),
        ([x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, "EKU9003173C9")], "no name at all"),
    ],
)
def test_certificate_with_malformed_subject_is_refused(
    ca: TestCa, attributes: list[x509.NameAttribute], reason: str
) -> None:
    issued = ca.issue(subject=x509.Name(attributes), **window())
    with pytest.raises(CredentialError) as caught:
        SatCertificate.load(issued.cer_der())
    assert caught.value.code == Code.INVALID_CERTIFICATE_SUBJECT, reason
    assert caught.value.message.startswith("El certificado no tiene los datos de un certificado del SAT")


@pytest.mark.parametrize(
    "serial", [12345, int.from_bytes(b"3000100000050000341X", "big"), int.from_bytes(b"300010", "big")]
)
def test_serial_that_is_not_twenty_ascii_digits_is_refused(ca: TestCa, serial: int) -> None:
    with pytest.raises(CredentialError) as caught:
        SatCertificate.load(ca.issue(serial_number=serial, **window()).cer_der())
    assert caught.value.code == Code.INVALID_CERTIFICATE_NUMBER


def test_certificate_with_a_non_rsa_key_is_refused(ca: TestCa) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(sat_subject(rfc="EKU9003173C9", legal_name="ACME", branch="Matriz"))
        .issuer_name(ca.certificate.subject)
        .public_key(ec_key.public_key())
        .serial_number(int.from_bytes(b"30001000000500000001", "big"))
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=1))
        .sign(ca.private_key, hashes.SHA256())
    )
    with pytest.raises(CredentialError) as caught:
        SatCertificate.from_x509(cert)
    assert caught.value.code == Code.INVALID_CERTIFICATE


# --- input formats and hostile files ---------------------------------------------------------------


def test_pem_and_der_and_base64_certificates_are_the_same(ca: TestCa) -> None:
    issued = ca.issue(**window())
    der = SatCertificate.load(issued.cer_der())
    assert SatCertificate.load(issued.cer_pem()) == der
    assert SatCertificate.load(b"\r\n" + issued.cer_pem().replace(b"\n", b"\r\n")) == der
    assert SatCertificate.load(base64.b64encode(issued.cer_der())) == der
    assert SatCertificate.load(der.pem().encode()) == der
    assert SatCertificate.load(der.base64().encode()) == der


@pytest.mark.parametrize("form", ["key_der", "key_pem", "key_legacy_pem"])
def test_keys_load_from_pkcs8_der_pkcs8_pem_and_legacy_pem(ca: TestCa, trust: SatTrust, form: str) -> None:
    issued = ca.issue(**window())
    key_bytes = getattr(issued, form)(PASSWORD)
    credential = open_credential(issued.cer_pem(), key_bytes, PASSWORD, expected_use=CSD, rfc=None, at=AT, trust=trust)
    assert credential.private_key.private_numbers() == issued.private_key.private_numbers()


@pytest.mark.parametrize("form", ["key_der", "key_pem", "key_legacy_pem"])
def test_wrong_password_is_refused_in_every_key_form(ca: TestCa, form: str) -> None:
    key_bytes = getattr(ca.issue(**window()), form)(PASSWORD)
    with pytest.raises(CredentialError) as caught:
        load_private_key(key_bytes, "12345678b")
    assert caught.value.code == Code.WRONG_PASSWORD
    assert caught.value.message == "La contraseña de la llave privada es incorrecta."


def test_empty_password_is_refused_without_trying(ca: TestCa) -> None:
    with pytest.raises(CredentialError) as caught:
        load_private_key(ca.issue(**window()).key_der(), "")
    assert caught.value.code == Code.WRONG_PASSWORD


def test_non_ascii_password_is_used_as_utf8(ca: TestCa) -> None:
    issued = ca.issue(**window())
    key = load_private_key(issued.key_der("contraseña-Ñandú"), "contraseña-Ñandú")
    assert key.private_numbers() == issued.private_key.private_numbers()


def test_five_megabyte_random_cer_is_refused_as_too_large(tmp_path: Path) -> None:
    path = tmp_path / "certificado.cer"
    path.write_bytes(os.urandom(5 * 1024 * 1024))
    with pytest.raises(CredentialError) as caught:
        SatCertificate.load(path.read_bytes())
    assert caught.value.code == Code.FILE_TOO_LARGE
    with pytest.raises(CredentialError) as caught:
        load_private_key(path.read_bytes(), PASSWORD)
    assert caught.value.code == Code.FILE_TOO_LARGE


def test_empty_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "vacío.cer"
    empty.write_bytes(b"")
    with pytest.raises(CredentialError) as caught:
        SatCertificate.load(empty.read_bytes())
    assert caught.value.code == Code.EMPTY_FILE
    with pytest.raises(CredentialError) as caught:
        load_private_key(b"", PASSWORD)
    assert caught.value.code == Code.EMPTY_FILE


@pytest.mark.parametrize(
    "data",
    [
        b"hola",
        b"0",
        b"\x30\x82\xff\xff",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"%PDF-1.7\n...",
        b"\x89PNG\r\n\x1a\n" + bytes(100),
    ],
)
def test_garbage_is_refused_as_an_invalid_certificate(data: bytes) -> None:
    with pytest.raises(CredentialError) as caught:
        SatCertificate.load(data)
    assert caught.value.code == Code.INVALID_CERTIFICATE


def test_a_key_given_as_certificate_and_a_certificate_given_as_key_are_refused(ca: TestCa) -> None:
    issued = ca.issue(**window())
    with pytest.raises(CredentialError) as caught:
        SatCertificate.load(issued.key_der())
    assert caught.value.code == Code.INVALID_CERTIFICATE
    with pytest.raises(CredentialError) as caught:
        load_private_key(issued.cer_der(), PASSWORD)
    assert caught.value.code == Code.INVALID_PRIVATE_KEY


def test_key_encrypted_with_unsupported_cipher_is_refused(ca: TestCa) -> None:
    with pytest.raises(CredentialError) as caught:
        load_private_key(ca.issue(**window()).key_unsupported_cipher_der(), PASSWORD)
    assert caught.value.code == Code.UNSUPPORTED_KEY_ENCRYPTION
    assert "Camellia-256-CBC" in caught.value.message


def test_legacy_pem_with_unsupported_cipher_is_refused(ca: TestCa) -> None:
    pem = ca.issue(**window()).key_legacy_pem().replace(b"DEK-Info: AES-256-CBC", b"DEK-Info: CAMELLIA-256-CBC")
    assert b"CAMELLIA" in pem
    with pytest.raises(CredentialError) as caught:
        load_private_key(pem, PASSWORD)
    assert caught.value.code == Code.UNSUPPORTED_KEY_ENCRYPTION


def test_key_asking_for_a_billion_kdf_rounds_is_refused_before_deriving(ca: TestCa) -> None:
    with pytest.raises(CredentialError) as caught:
        load_private_key(ca.issue(**window()).key_huge_iterations_der(), PASSWORD)
    assert caught.value.code == Code.UNSUPPORTED_KEY_ENCRYPTION


def test_unencrypted_keys_are_refused(ca: TestCa) -> None:
    issued = ca.issue(**window())
    from cryptography.hazmat.primitives import serialization as s

    pem = issued.private_key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption())
    for data in (issued.key_unencrypted_der(), pem):
        with pytest.raises(CredentialError) as caught:
            load_private_key(data, PASSWORD)
        assert caught.value.code == Code.UNENCRYPTED_PRIVATE_KEY


@pytest.mark.parametrize("cut", [1, 10, 100, -1])
def test_truncated_key_is_refused_cleanly(ca: TestCa, cut: int) -> None:
    data = ca.issue(**window()).key_der()
    with pytest.raises(CredentialError) as caught:
        load_private_key(data[:cut], PASSWORD)
    assert caught.value.code in {Code.INVALID_PRIVATE_KEY, Code.WRONG_PASSWORD}


# --- credential objects ------------------------------------------------------------------------------


def test_credential_refuses_a_key_that_is_not_the_certificates(ca: TestCa) -> None:
    cert = SatCertificate.load(ca.issue(key=pooled_key(0), **window()).cer_der())
    with pytest.raises(CredentialError) as caught:
        Credential(cert, pooled_key(8))
    assert caught.value.code == Code.KEY_MISMATCH


def test_credential_round_trips_through_storage_form(ca: TestCa) -> None:
    issued = ca.issue(**window())
    original = Credential.load(issued.cer_der(), issued.key_der(), PASSWORD)
    restored = Credential.from_stored(original.certificate.der, original.private_key_der())
    assert restored == original
    assert restored.sign(b"x") == original.sign(b"x")


def test_stored_key_that_is_not_a_key_is_refused(ca: TestCa) -> None:
    issued = ca.issue(**window())
    with pytest.raises(CredentialError) as caught:
        Credential.from_stored(issued.cer_der(), b"basura")
    assert caught.value.code == Code.INVALID_PRIVATE_KEY


def test_validate_for_returns_the_first_problem_or_none(ca: TestCa, trust: SatTrust) -> None:
    issued = ca.issue(**window(not_after=AT - timedelta(days=1)))
    credential = Credential.load(issued.cer_der(), issued.key_der(), PASSWORD)
    expired = credential.validate_for(CSD, rfc=Rfc("FUNK671228PH6"), at=AT, trust=trust)
    assert expired is not None and expired.code == Code.CERTIFICATE_EXPIRED
    earlier = AT - timedelta(days=30)
    mismatch = credential.validate_for(CSD, rfc=Rfc("FUNK671228PH6"), at=earlier, trust=trust)
    assert mismatch is not None and mismatch.code == Code.RFC_MISMATCH
    assert credential.validate_for(CSD, rfc=Rfc("EKU9003173C9"), at=earlier, trust=trust) is None
