"""Signing the contract with the e.firma (PAdES + detached RSA-SHA256) and verifying it on download."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from core.contracts.documents import Manifest, ServiceProvider, render_contract
from core.contracts.signing import (
    SignedContract,
    _CredentialSigner,
    async_sign_contract,
    sign_contract,
    verification_problem,
    verify_signed_contract,
)
from core.errors import Invalid
from core.sat.credentials import Credential
from core.sat.errors import CredentialError
from tests.support.certs import TestCa, pooled_key

AT = datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
SIGNED_AT = AT + timedelta(minutes=7)
PASSWORD = "Contraseña-Muy-Secreta-7731"
SAT_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sat-test-credentials"


@pytest.fixture(scope="module")
def ca() -> TestCa:
    return TestCa.create()


@pytest.fixture(scope="module")
def efirma_files(ca: TestCa) -> tuple[bytes, bytes]:
    issued = ca.issue(
        kind="fiel",
        rfc="EKU9003173C9",
        not_before=AT - timedelta(days=30),
        not_after=AT + timedelta(days=365),
        key=pooled_key(7),
    )
    return issued.cer_der(), issued.key_der(PASSWORD)


@pytest.fixture(scope="module")
def efirma(efirma_files: tuple[bytes, bytes]) -> Credential:
    return Credential.load(efirma_files[0], efirma_files[1], PASSWORD)


@pytest.fixture(scope="module")
def contract_pdf() -> bytes:
    manifest = Manifest.create(
        empresa="ESCUELA KEMPER URGATE SA DE CV", rfc="EKU9003173C9", direccion="Calle 1, CDMX", correo="a@kemper.mx"
    )
    provider = ServiceProvider.create(
        razon_social="SERVICIOS DE TIMBRADO DEMO SA DE CV",
        rfc="STD200101AB1",
        direccion="Insurgentes Sur 100",
        correo="p@timbrado.mx",
    )
    return render_contract(manifest, provider, issued_at=AT).pdf


@pytest.fixture(scope="module")
def signed(contract_pdf: bytes, efirma: Credential) -> SignedContract:
    return sign_contract(contract_pdf, efirma, signed_at=SIGNED_AT, signer_name="Juan Pérez López")


def verify(signed: SignedContract, **changes: object) -> str | None:
    kwargs: dict[str, object] = {
        "signature": signed.signature,
        "certificate_der": signed.certificate_der,
        "digest_sha256": signed.digest_sha256,
    }
    pdf = changes.pop("pdf", signed.pdf_signed)
    kwargs.update(changes)
    return verification_problem(pdf, **kwargs)  # type: ignore[arg-type]


def last_page_text(pdf: bytes) -> bytes:
    reader = PdfFileReader(io.BytesIO(pdf))
    kids = reader.root["/Pages"]["/Kids"]
    page = kids[len(kids) - 1].get_object()
    return bytes(page["/Resources"]["/XObject"]["/Constancia"].get_object().data)


# --- the happy path ---------------------------------------------------------------------------------


def test_signed_contract_verifies(signed: SignedContract) -> None:
    assert verify(signed) is None
    assert verify_signed_contract(signed.pdf_signed, signature=signed.signature, certificate_der=signed.certificate_der)


def test_signed_contract_records_certificate_and_digests(
    signed: SignedContract, efirma: Credential, contract_pdf: bytes
) -> None:
    assert signed.rfc == "EKU9003173C9"
    assert signed.certificate_number == efirma.certificate_number
    assert signed.certificate_der == efirma.certificate.der
    assert signed.digest_sha256 == hashlib.sha256(signed.pdf_signed).hexdigest()
    assert signed.contract_digest_sha256 == hashlib.sha256(contract_pdf).hexdigest()
    assert efirma.verify(signed.pdf_signed, signed.signature)  # RSA-SHA256 over the exact bytes
    assert signed.signed_at == SIGNED_AT


def test_original_contract_bytes_stay_a_prefix_of_the_signed_file(signed: SignedContract, contract_pdf: bytes) -> None:
    assert signed.pdf_signed.startswith(contract_pdf)


def test_evidence_page_is_added_and_names_signer_certificate_time_and_digest(
    signed: SignedContract, contract_pdf: bytes
) -> None:
    before = int(PdfFileReader(io.BytesIO(contract_pdf)).root["/Pages"]["/Count"])
    after = int(PdfFileReader(io.BytesIO(signed.pdf_signed)).root["/Pages"]["/Count"])
    assert after == before + 1
    text = last_page_text(signed.pdf_signed)
    for expected in (
        b"CONSTANCIA DE FIRMA ELECTR",
        b"Juan P\\351rez L\\363pez",
        b"EKU9003173C9",
        signed.certificate_number.encode(),
        b"2026-01-15T17:37:00Z \\(UTC\\)",
        b"11:37:00 hora del centro de M\\351xico",
        signed.contract_digest_sha256.encode(),
    ):
        assert expected in text


def test_pdf_signature_is_pades_with_the_signing_time(signed: SignedContract) -> None:
    reader = PdfFileReader(io.BytesIO(signed.pdf_signed))
    (embedded,) = reader.embedded_signatures
    assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert embedded.self_reported_timestamp == SIGNED_AT
    assert embedded.signer_cert.dump() == signed.certificate_der


async def test_async_signing_works_inside_a_running_event_loop(contract_pdf: bytes, efirma: Credential) -> None:
    result = await async_sign_contract(contract_pdf, efirma, signed_at=SIGNED_AT, signer_name="Ana")
    assert verify(result) is None


# --- tampering and mismatches -----------------------------------------------------------------------


@pytest.mark.parametrize("offset", [200, 2000, -500, -40])
def test_any_changed_byte_fails_verification(signed: SignedContract, offset: int) -> None:
    tampered = bytearray(signed.pdf_signed)
    tampered[offset] ^= 0x20
    assert verify(signed, pdf=bytes(tampered)) is not None
    assert verify(signed, pdf=bytes(tampered), digest_sha256=None) is not None


def test_an_update_appended_after_signing_fails_even_with_a_fresh_detached_signature(
    signed: SignedContract, efirma: Credential
) -> None:
    appended = signed.pdf_signed + b"\n1000 0 obj\n(cambio posterior)\nendobj\n"
    # even if someone with the key re-signed the detached signature, the embedded one no longer covers it
    problem = verify(signed, pdf=appended, signature=efirma.sign(appended), digest_sha256=None)
    assert problem is not None
    assert "no cubre todo el archivo" in problem or "dañado" in problem


def test_digest_mismatch_is_reported(signed: SignedContract) -> None:
    assert verify(signed, digest_sha256="0" * 64) == "La huella SHA-256 del PDF no coincide con la registrada."


def test_wrong_detached_signature_is_reported(signed: SignedContract) -> None:
    bad = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    assert verify(signed, signature=bad) == "La firma RSA-SHA256 registrada no corresponde al PDF."
    assert verify(signed, signature=b"") is not None


def test_other_certificate_is_refused(signed: SignedContract, ca: TestCa) -> None:
    other = ca.issue(kind="fiel", key=pooled_key(8)).cer_der()
    assert verify(signed, certificate_der=other) is not None
    assert verify(signed, certificate_der=b"no es un certificado") == "El certificado registrado no es válido."


def test_a_contract_signed_by_someone_else_does_not_match_the_stored_certificate(
    contract_pdf: bytes, ca: TestCa, signed: SignedContract
) -> None:
    issued = ca.issue(kind="fiel", not_before=AT - timedelta(days=1), key=pooled_key(8))
    intruder = Credential.load(issued.cer_der(), issued.key_der("x"), "x")
    forged = sign_contract(contract_pdf, intruder, signed_at=SIGNED_AT, signer_name="Intruso")
    problem = verification_problem(
        forged.pdf_signed, signature=forged.signature, certificate_der=signed.certificate_der
    )
    assert problem is not None


@pytest.mark.parametrize("pdf", [b"", b"%PDF-1.4\n%%EOF", b"no es pdf", bytes(1000), b"%PDF-1.7\n" + b"A" * 5000])
def test_garbage_never_verifies_and_never_raises(signed: SignedContract, pdf: bytes) -> None:
    assert verify(signed, pdf=pdf, digest_sha256=None, signature=b"x" * 256) is not None


def test_an_unsigned_contract_does_not_verify(contract_pdf: bytes, efirma: Credential) -> None:
    problem = verification_problem(
        contract_pdf, signature=efirma.sign(contract_pdf), certificate_der=efirma.certificate.der
    )
    assert problem == "El PDF no contiene exactamente una firma."


# --- refusals when signing --------------------------------------------------------------------------


def test_a_csd_cannot_sign_the_contract(contract_pdf: bytes, ca: TestCa) -> None:
    issued = ca.issue(kind="csd", not_before=AT - timedelta(days=1))
    csd = Credential.load(issued.cer_der(), issued.key_der(), "12345678a")
    with pytest.raises(CredentialError) as caught:
        sign_contract(contract_pdf, csd, signed_at=SIGNED_AT, signer_name="Juan")
    assert caught.value.code == "csd_not_fiel"


@pytest.mark.parametrize(
    ("not_before", "not_after", "code"),
    [
        (AT - timedelta(days=800), SIGNED_AT - timedelta(days=1), "certificate_expired"),
        (SIGNED_AT + timedelta(days=1), SIGNED_AT + timedelta(days=700), "certificate_not_yet_valid"),
    ],
)
def test_an_efirma_outside_its_validity_cannot_sign(
    contract_pdf: bytes, ca: TestCa, not_before: datetime, not_after: datetime, code: str
) -> None:
    issued = ca.issue(kind="fiel", not_before=not_before, not_after=not_after)
    credential = Credential.load(issued.cer_der(), issued.key_der(), "12345678a")
    with pytest.raises(CredentialError) as caught:
        sign_contract(contract_pdf, credential, signed_at=SIGNED_AT, signer_name="Juan")
    assert caught.value.code == code


@pytest.mark.parametrize("pdf", [b"", b"hola", b"%PDF-1.4\nbasura", bytes(64)])
def test_signing_something_that_is_not_a_pdf_is_refused(efirma: Credential, pdf: bytes) -> None:
    with pytest.raises(Invalid) as caught:
        sign_contract(pdf, efirma, signed_at=SIGNED_AT, signer_name="Juan")
    assert caught.value.code == "invalid_contract_pdf"


@pytest.mark.parametrize("name", ["", "   ", "\x00\u200b"])
def test_signer_name_is_required(contract_pdf: bytes, efirma: Credential, name: str) -> None:
    with pytest.raises(Invalid) as caught:
        sign_contract(contract_pdf, efirma, signed_at=SIGNED_AT, signer_name=name)
    assert caught.value.code == "signer_name_required"


def test_naive_signing_time_is_refused(contract_pdf: bytes, efirma: Credential) -> None:
    with pytest.raises(ValueError):
        sign_contract(contract_pdf, efirma, signed_at=datetime(2026, 1, 15), signer_name="Juan")


# --- secrets never leak -----------------------------------------------------------------------------


def secret_forms(credential: Credential, key_file: bytes, password: str) -> list[bytes]:
    numbers = credential.private_key.private_numbers()
    der = credential.private_key_der()
    forms = [der, key_file, base64.b64encode(der), base64.b64encode(key_file), der.hex().encode()]
    for value in (numbers.d, numbers.p, numbers.q):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        forms += [raw[:32], raw[-32:], raw.hex()[:64].encode(), str(value)[:60].encode()]
    forms += [password.encode("utf-8"), password.encode("latin-1"), password.encode("utf-16-le")]
    return forms


def test_key_material_and_password_never_appear_in_outputs_reprs_or_errors(
    contract_pdf: bytes, efirma: Credential, efirma_files: tuple[bytes, bytes], signed: SignedContract
) -> None:
    texts: list[str] = [repr(signed), str(signed), repr(efirma), repr(_CredentialSigner(efirma))]
    for attempt in (
        lambda: Credential.load(efirma_files[0], efirma_files[1], PASSWORD + "x"),
        lambda: sign_contract(b"no es pdf", efirma, signed_at=SIGNED_AT, signer_name="Juan"),
        lambda: sign_contract(contract_pdf, efirma, signed_at=SIGNED_AT + timedelta(days=900), signer_name="J"),
    ):
        with pytest.raises(Exception) as caught:
            attempt()
        texts += [str(caught.value), repr(caught.value), str(caught.getrepr())]
    blobs = [signed.pdf_signed, signed.signature, signed.certificate_der, *(t.encode() for t in texts)]
    for secret in secret_forms(efirma, efirma_files[1], PASSWORD):
        for blob in blobs:
            assert secret not in blob
    for text in texts:
        assert PASSWORD not in text


# --- SAT's public e.firma ----------------------------------------------------------------------------


def sat_files(folder: str) -> tuple[bytes, bytes, str]:
    base = SAT_DIR / folder
    if not base.is_dir():
        pytest.skip(f"SAT test credentials not found at {base}")
    return (
        (base / "certificate.cer").read_bytes(),
        (base / "private.key").read_bytes(),
        (base / "password.txt").read_text(encoding="utf-8"),
    )


def test_sat_efirma_signs_a_contract_that_verifies(contract_pdf: bytes) -> None:
    cer, key, password = sat_files("valid-2027/EKU9003173C9-efirma")
    credential = Credential.load(cer, key, password)
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    result = sign_contract(contract_pdf, credential, signed_at=at, signer_name="Representante legal")
    assert result.certificate_number == "30001000000500003415"
    assert result.rfc == "EKU9003173C9"
    assert verify(result) is None
    for secret in secret_forms(credential, key, password):
        assert secret not in result.pdf_signed


def test_sat_csd_cannot_sign_the_contract(contract_pdf: bytes) -> None:
    cer, key, password = sat_files("valid-2027/EKU9003173C9-csd")
    credential = Credential.load(cer, key, password)
    with pytest.raises(CredentialError) as caught:
        sign_contract(contract_pdf, credential, signed_at=datetime(2026, 3, 1, tzinfo=UTC), signer_name="X")
    assert caught.value.code == "csd_not_fiel"


def test_expired_sat_efirma_cannot_sign_the_contract(contract_pdf: bytes) -> None:
    cer, key, password = sat_files("expired-2023/EKU9003173C9-efirma")
    credential = Credential.load(cer, key, password)
    with pytest.raises(CredentialError) as caught:
        sign_contract(contract_pdf, credential, signed_at=datetime(2026, 3, 1, tzinfo=UTC), signer_name="X")
    assert caught.value.code == "certificate_expired"
