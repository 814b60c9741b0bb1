"""Datos del CFDI: lugar de expedición, Serie REP, Folio inicial REP."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.orders.contact import ValidationErrors
from core.sat.postal_codes import PostalCode
from core.vendors.cfdi_settings_rules import (
    FOLIO_MAX,
    CfdiSettingsInput,
    check_folio_change,
    validate_cfdi_settings,
    validate_folio_inicial,
    validate_lugar_expedicion,
    validate_serie,
)


def only_error(call: object, *args: object, **kwargs: object) -> tuple[str, str, str]:
    with pytest.raises(ValidationErrors) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    (error,) = info.value.errors
    return error.field, error.code, error.message


# -- lugar de expedición ----------------------------------------------------------------------


def test_existing_postal_code_is_accepted_with_its_time_zone() -> None:
    place = validate_lugar_expedicion("22000")
    assert (place.code, place.time_zone) == ("22000", "America/Tijuana")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("00000", "postal_code_not_found"),
        ("00001", "postal_code_not_found"),
        ("ABCDE", "postal_code_format"),
        ("1234", "postal_code_format"),
        (6600, "postal_code_format"),
        ("", "required"),
        (None, "required"),
    ],
)
def test_bad_lugar_de_expedicion_is_refused(value: object, code: str) -> None:
    field, got, message = only_error(validate_lugar_expedicion, value)
    assert (field, got) == ("lugar_expedicion", code)
    assert "lugar de expedición" in message


def test_not_found_message_names_the_code() -> None:
    _, _, message = only_error(validate_lugar_expedicion, "00001")
    assert message == "El código postal 00001 del lugar de expedición no existe en el catálogo del SAT."


def test_lookup_is_injectable() -> None:
    fake = PostalCode("99999", "ZAC", "Zacatecas", None, None, None, None, "America/Mexico_City", "x", False)
    assert validate_lugar_expedicion("99999", lookup=lambda code: fake) is fake


# -- serie ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("REP", "REP"), ("  rep-2025 ", "rep-2025"), ("A  B", "A B"), ("Ñ_1.", "Ñ_1."), ("X" * 25, "X" * 25)],
)
def test_valid_serie_is_trimmed_and_collapsed(raw: str, clean: str) -> None:
    assert validate_serie(raw) == clean


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("RE|P", "invalid_characters"),
        ("|", "invalid_characters"),
        ("REP\x00", "invalid_characters"),
        ("RE\u200bP", "invalid_characters"),
        ("X" * 26, "too_long"),
        ("", "required"),
        ("    ", "required"),
        (None, "required"),
        (12, "invalid_type"),
    ],
)
def test_bad_serie_is_refused(raw: object, code: str) -> None:
    field, got, message = only_error(validate_serie, raw)
    assert (field, got) == ("serie", code)
    assert "serie" in message


def test_serie_pipe_message_names_the_character() -> None:
    assert only_error(validate_serie, "A|B")[2] == "La serie no puede contener el carácter «|»."


@given(st.text(max_size=40))
def test_property_accepted_series_satisfy_the_xsd_pattern(raw: str) -> None:
    try:
        serie = validate_serie(raw)
    except ValidationErrors:
        return
    assert 1 <= len(serie) <= 25
    assert "|" not in serie
    assert serie == " ".join(serie.split())


# -- folio ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "folio"), [(1, 1), ("1", 1), (" 42 ", 42), ("007", 7), (FOLIO_MAX, FOLIO_MAX)])
def test_valid_folio_inicial(raw: object, folio: int) -> None:
    assert validate_folio_inicial(raw) == folio


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (0, "not_positive"),
        (-1, "not_positive"),
        ("0", "not_positive"),
        ("-1", "not_positive"),
        ("abc", "not_an_integer"),
        ("1.5", "not_an_integer"),
        ("1e3", "not_an_integer"),
        ("+5", "not_an_integer"),
        ("١٢", "not_an_integer"),  # Arabic-Indic digits
        ("9" * 400, "not_an_integer"),
        (1.0, "not_an_integer"),
        (True, "not_an_integer"),
        (FOLIO_MAX + 1, "too_large"),
        ("", "required"),
        (None, "required"),
    ],
)
def test_bad_folio_inicial_is_refused(raw: object, code: str) -> None:
    field, got, message = only_error(validate_folio_inicial, raw)
    assert (field, got) == ("folio_inicial", code)
    assert "folio inicial" in message


def test_folio_may_move_anywhere_before_the_first_rep() -> None:
    check_folio_change(current_next=500, new_start=1, reps_exist=False)


def test_folio_may_move_forward_or_stay_after_reps_exist() -> None:
    check_folio_change(current_next=500, new_start=500, reps_exist=True)
    check_folio_change(current_next=500, new_start=1000, reps_exist=True)


def test_folio_moving_backwards_after_reps_exist_is_refused() -> None:
    field, code, message = only_error(check_folio_change, current_next=500, new_start=499, reps_exist=True)
    assert (field, code) == ("folio_inicial", "folio_backwards")
    assert "500" in message


def test_folio_change_still_validates_the_new_folio() -> None:
    assert only_error(check_folio_change, 1, 0, False)[1] == "not_positive"


# -- all together -----------------------------------------------------------------------------


def test_whole_settings_are_validated() -> None:
    result = validate_cfdi_settings({"lugar_expedicion": "77500", "serie": " REP ", "folio_inicial": "10"})
    assert result == CfdiSettingsInput(
        lugar_expedicion="77500", time_zone="America/Cancun", serie="REP", folio_inicial=10
    )


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationErrors) as info:
        validate_cfdi_settings({"lugar_expedicion": "ABCDE", "serie": "A|B", "folio_inicial": "abc"})
    assert [(e.field, e.code) for e in info.value.errors] == [
        ("lugar_expedicion", "postal_code_format"),
        ("serie", "invalid_characters"),
        ("folio_inicial", "not_an_integer"),
    ]


def test_backwards_folio_is_refused_in_the_whole_settings() -> None:
    with pytest.raises(ValidationErrors) as info:
        validate_cfdi_settings(
            {"lugar_expedicion": "06600", "serie": "REP", "folio_inicial": 3},
            current_next_folio=10,
            reps_exist=True,
        )
    assert [(e.field, e.code) for e in info.value.errors] == [("folio_inicial", "folio_backwards")]
