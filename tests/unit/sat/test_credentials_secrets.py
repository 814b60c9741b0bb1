"""Secrets never leak: passwords and key bytes stay out of repr/str, error messages and tracebacks.
Hostile bytes never escape as anything but a CredentialError."""

from __future__ import annotations

import base64
import contextlib
import traceback
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.sat import (
    Credential,
    CredentialError,
    CredentialUse,
    Rfc,
    SatCertificate,
    SatTrust,
    load_private_key,
    open_credential,
)
from tests.support.certs import IssuedCredential, TestCa

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SECRET_PASSWORD = "Sup3r-Secreta-Ñandú-9731"


@pytest.fixture(scope="module")
def issued() -> IssuedCredential:
    return TestCa.create().issue(not_before=AT - timedelta(days=1), not_after=AT + timedelta(days=1))


def secret_renderings(issued: IssuedCredential) -> list[str]:
    """Text forms in which the key or the password could show up."""
    der = issued.key_unencrypted_der()
    numbers = issued.private_key.private_numbers()
    return [
        SECRET_PASSWORD,
        SECRET_PASSWORD.encode().hex(),
        der.hex(),
        der.hex()[200:260],
        base64.b64encode(der).decode()[100:160],
        str(numbers.d)[:40],
        hex(numbers.d)[2:42],
        str(numbers.p)[:40],
    ]


def assert_clean(text: str, issued: IssuedCredential) -> None:
    for secret in secret_renderings(issued):
        assert secret not in text


def test_credential_repr_and_str_hide_the_key(issued: IssuedCredential) -> None:
    credential = Credential.load(issued.cer_der(), issued.key_der(SECRET_PASSWORD), SECRET_PASSWORD)
    for text in (repr(credential), str(credential), f"{credential}", repr([credential])):
        assert_clean(text, issued)
        assert "oculta" in text
    assert "RSAPrivateKey" not in repr(credential)


def test_certificate_repr_carries_no_key_material(issued: IssuedCredential) -> None:
    assert_clean(repr(SatCertificate.load(issued.cer_der())), issued)


def _failures(issued: IssuedCredential) -> list[CredentialError]:
    trust = SatTrust(sandbox=True)
    key = issued.key_der(SECRET_PASSWORD)
    attempts = [
        lambda: load_private_key(key, SECRET_PASSWORD + "x"),
        lambda: load_private_key(key[:-7], SECRET_PASSWORD),
        lambda: load_private_key(issued.key_unencrypted_der(), SECRET_PASSWORD),
        lambda: load_private_key(issued.key_legacy_pem(SECRET_PASSWORD), "otra"),
        lambda: load_private_key(issued.key_unsupported_cipher_der(SECRET_PASSWORD), SECRET_PASSWORD),
        lambda: Credential.from_stored(issued.cer_der(), issued.key_unencrypted_der()[:-3]),
        lambda: open_credential(
            issued.cer_der(),
            key,
            SECRET_PASSWORD,
            expected_use=CredentialUse.CSD,
            rfc=Rfc("FUNK671228PH6"),
            at=AT,
            trust=trust,
        ),
        lambda: open_credential(
            issued.cer_der(), key, SECRET_PASSWORD, expected_use=CredentialUse.CSD, rfc=None, at=AT, trust=trust
        ),
    ]
    errors = []
    for attempt in attempts:
        with pytest.raises(CredentialError) as caught:
            attempt()
        errors.append(caught.value)
    return errors


def test_error_messages_and_tracebacks_never_contain_the_password_or_key(issued: IssuedCredential) -> None:
    errors = _failures(issued)
    assert len({error.code for error in errors}) >= 5
    for error in errors:
        rendered = "".join(traceback.format_exception(error))
        for text in (str(error), repr(error), error.message, str(error.args), rendered):
            assert_clean(text, issued)
        assert (error.__cause__ is None and error.__suppress_context__) or error.__context__ is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_random_bytes_as_certificate_raise_only_credential_errors(data: bytes) -> None:
    with contextlib.suppress(CredentialError):
        SatCertificate.load(data)


@settings(max_examples=300)
@given(st.binary(max_size=4096))
def test_random_bytes_as_key_raise_only_credential_errors(data: bytes) -> None:
    with contextlib.suppress(CredentialError):
        load_private_key(data, "12345678a")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_flipped_bytes_in_a_real_key_raise_only_credential_errors(
    issued: IssuedCredential, data: st.DataObject
) -> None:
    key = bytearray(issued.key_der())
    position = data.draw(st.integers(0, len(key) - 1))
    key[position] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(CredentialError):
        load_private_key(bytes(key), "12345678a")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_flipped_bytes_in_a_real_certificate_raise_only_credential_errors(
    issued: IssuedCredential, data: st.DataObject
) -> None:
    cer = bytearray(issued.cer_der())
    position = data.draw(st.integers(0, len(cer) - 1))
    cer[position] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(CredentialError):
        SatCertificate.load(bytes(cer))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=50).filter(lambda text: text != "12345678a"))
def test_any_wrong_password_text_is_refused_as_wrong_password(issued: IssuedCredential, password: str) -> None:
    key = issued.key_der()
    with pytest.raises(CredentialError) as caught:
        load_private_key(key, password)
    assert caught.value.code == "wrong_password"


def test_password_with_a_lone_surrogate_is_a_wrong_password(issued: IssuedCredential) -> None:
    with pytest.raises(CredentialError) as caught:
        load_private_key(issued.key_der(), "abc\ud800")
    assert caught.value.code == "wrong_password"


def test_errors_survive_pickling_with_code_and_message() -> None:
    import pickle

    from core.sat import CredentialErrorCode, RfcError

    error = CredentialError(CredentialErrorCode.KEY_MISMATCH, "La llave privada no corresponde al certificado.")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.message, copy.error_code) == (
        CredentialError,
        "key_mismatch",
        error.message,
        CredentialErrorCode.KEY_MISMATCH,
    )
    rfc_copy = pickle.loads(pickle.dumps(RfcError("El RFC no es válido.")))
    assert (type(rfc_copy), rfc_copy.code, str(rfc_copy)) == (RfcError, "invalid_rfc", "El RFC no es válido.")
