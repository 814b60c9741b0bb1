"""Contact data of a package order: every bad field is named at once, in Spanish, with a code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.orders.contact import (
    ContactData,
    FieldError,
    ValidationErrors,
    normalize_email,
    normalize_phone,
    validate_contact,
)

GOOD = {
    "empresa": "Escuela Kemper Urgate, S.A. de C.V.",
    "nombre": "Ana López",
    "telefono": "55 1234 5678",
    "correo": "ana.lopez@kemper.com.mx",
}


def errors_of(data: dict[str, object]) -> list[FieldError]:
    with pytest.raises(ValidationErrors) as info:
        validate_contact(data)
    return list(info.value.errors)


def codes(data: dict[str, object]) -> dict[str, str]:
    return {e.field: e.code for e in errors_of(data)}


def test_valid_contact_is_normalised() -> None:
    contact = validate_contact(
        {
            "empresa": "  Escuela   Kemper\tUrgate, S.A.  de C.V. ",
            "nombre": " Ana  López ",
            "telefono": "+52 (55) 1234-5678",
            "correo": "  Ana.Lopez@KEMPER.com.MX ",
            "extra": "ignored",
        }
    )
    assert contact == ContactData(
        empresa="Escuela Kemper Urgate, S.A. de C.V.",
        nombre="Ana López",
        telefono="5512345678",
        correo="Ana.Lopez@kemper.com.mx",
    )


def test_all_missing_fields_are_reported_together() -> None:
    errors = errors_of({})
    assert [(e.field, e.code) for e in errors] == [
        ("empresa", "required"),
        ("nombre", "required"),
        ("telefono", "required"),
        ("correo", "required"),
    ]
    assert errors[0].message == "La razón social (Empresa) es obligatoria."
    assert errors[1].message == "El nombre de contacto es obligatorio."


def test_blank_strings_count_as_missing() -> None:
    assert codes({**GOOD, "empresa": "   ", "correo": "\t"}) == {"empresa": "required", "correo": "required"}


def test_each_error_names_its_field_in_spanish() -> None:
    data = {"empresa": "x" * 1000, "nombre": "Ana", "telefono": "55-ABCD-5678", "correo": "ana@"}
    errors = errors_of(data)
    by_field = {e.field: e for e in errors}
    assert set(by_field) == {"empresa", "telefono", "correo"}
    assert "razón social" in by_field["empresa"].message
    assert "300" in by_field["empresa"].message
    assert by_field["empresa"].code == "too_long"
    assert "teléfono" in by_field["telefono"].message
    assert "correo" in by_field["correo"].message


def test_razon_social_of_exactly_300_characters_is_accepted() -> None:
    assert len(validate_contact({**GOOD, "empresa": "E" * 300}).empresa) == 300


def test_nombre_is_limited_to_200_characters() -> None:
    assert codes({**GOOD, "nombre": "N" * 201}) == {"nombre": "too_long"}


def test_non_text_values_are_refused() -> None:
    assert codes({**GOOD, "empresa": 123, "nombre": ["Ana"], "correo": 5}) == {
        "empresa": "invalid_type",
        "nombre": "invalid_type",
        "correo": "invalid_type",
    }


def test_control_characters_in_names_are_refused() -> None:
    assert codes({**GOOD, "empresa": "ACME\u202e SA", "nombre": "Ana\x00"}) == {
        "empresa": "invalid_characters",
        "nombre": "invalid_characters",
    }


# -- phone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "5512345678",
        "55 1234 5678",
        "55-1234-5678",
        "(55) 1234.5678",
        "+52 55 1234 5678",
        "+525512345678",
        "52 55 1234 5678",
        "525512345678",
        " +52 (55) 12-34-56-78 ",
        5512345678,
    ],
)
def test_phone_formats_people_type_are_accepted(raw: object) -> None:
    assert normalize_phone(raw) == "5512345678"


def test_ten_digit_number_starting_with_52_is_kept() -> None:
    assert normalize_phone("5212345678") == "5212345678"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("55 1234 567", "invalid_length"),  # 9 digits
        ("55 1234 56789", "invalid_length"),  # 11 digits
        ("+52 1 55 1234 5678", "invalid_length"),  # old mobile prefix: 11 digits after +52
        ("55-ABCD-5678", "invalid_characters"),
        ("55 1234 5678 ext 12", "invalid_characters"),
        ("５５１２３４５６７８", "invalid_characters"),  # full-width digits
        ("+1 555 123 4567", "invalid_country_code"),
        ("5512345678+", "invalid_characters"),
        ("", "required"),
        (None, "required"),
        (True, "invalid_type"),
        (55.5, "invalid_type"),
    ],
)
def test_bad_phones_are_refused(raw: object, code: str) -> None:
    with pytest.raises(ValidationErrors) as info:
        normalize_phone(raw)
    (error,) = info.value.errors
    assert (error.field, error.code) == ("telefono", code)


def test_phone_length_message_counts_the_digits() -> None:
    with pytest.raises(ValidationErrors) as info:
        normalize_phone("55 1234 567")
    assert info.value.errors[0].message == "El teléfono debe tener 10 dígitos (se recibieron 9)."


@given(st.text(alphabet="0123456789", min_size=10, max_size=10), st.sampled_from(["", "+52", "52", "+52 "]))
def test_property_any_ten_digits_with_optional_prefix_normalise_to_themselves(digits: str, prefix: str) -> None:
    assert normalize_phone(prefix + digits) == digits


@given(st.text(max_size=40))
def test_property_phone_never_crashes(raw: str) -> None:
    try:
        result = normalize_phone(raw)
    except ValidationErrors:
        return
    assert len(result) == 10
    assert result.isascii()
    assert result.isdigit()


# -- email ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("ana@kemper.mx", "ana@kemper.mx"),
        ("Ana.Lopez+rep@Kemper.COM.MX", "Ana.Lopez+rep@kemper.com.mx"),
        ("o'brien@example.com", "o'brien@example.com"),
        ("contacto@compañía.mx", "contacto@compañía.mx"),
        ("x@xn--compaa-zwa.mx", "x@xn--compaa-zwa.mx"),
    ],
)
def test_valid_emails(raw: str, normalised: str) -> None:
    assert normalize_email(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "ana",
        "ana@",
        "@kemper.mx",
        "ana@kemper",  # no TLD
        "ana@kemper.",
        "ana@.mx",
        "ana@kemper..mx",
        "ana@-kemper.mx",
        "ana@kemper.m",
        "ana@kemper.123",
        "ana lopez@kemper.mx",
        "ana@kem per.mx",
        "ana@@kemper.mx",
        "a@b@kemper.mx",
        ".ana@kemper.mx",
        "ana.@kemper.mx",
        "an..a@kemper.mx",
        "ana@kemper.mx\r\nBcc: victim@example.com",
        "ana\x00@kemper.mx",
        '"ana"@kemper.mx',
        "josé@kemper.mx",
        "a" * 65 + "@kemper.mx",
        "ana@" + "a" * 64 + ".mx",
    ],
)
def test_invalid_emails_are_refused(raw: str) -> None:
    with pytest.raises(ValidationErrors) as info:
        normalize_email(raw)
    (error,) = info.value.errors
    assert error.field == "correo"
    assert error.code == "invalid_email"


def test_email_over_254_characters_is_refused() -> None:
    raw = "a" * 64 + "@" + ".".join(["b" * 62] * 3) + ".mx"
    assert len(raw) > 254
    with pytest.raises(ValidationErrors) as info:
        normalize_email(raw)
    assert info.value.errors[0].code == "too_long"


def test_email_without_domain_has_a_helpful_message() -> None:
    with pytest.raises(ValidationErrors) as info:
        normalize_email("ana@")
    assert "dominio" in info.value.errors[0].message


def test_validation_errors_serialise_for_the_api() -> None:
    with pytest.raises(ValidationErrors) as info:
        validate_contact({**GOOD, "telefono": "123"})
    assert info.value.code == "validation_error"
    assert info.value.as_dicts() == [
        {
            "field": "telefono",
            "code": "invalid_length",
            "message": "El teléfono debe tener 10 dígitos (se recibieron 3).",
        }
    ]
    assert list(info.value.by_field()) == ["telefono"]


def test_non_mapping_input_is_refused() -> None:
    with pytest.raises(ValidationErrors):
        validate_contact(["empresa"])  # type: ignore[arg-type]
