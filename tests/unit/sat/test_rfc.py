"""Rfc value object: SAT's shapes for personas morales, físicas and the generic RFCs."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.sat.errors import RfcError
from core.sat.rfc import Rfc, RfcKind

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZÑ&"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("EKU9003173C9", RfcKind.PERSONA_MORAL),
        ("FUNK671228PH6", RfcKind.PERSONA_FISICA),
        ("&ÑA010101AB1", RfcKind.PERSONA_MORAL),
        ("MUÑO800101AB1", RfcKind.PERSONA_FISICA),
        ("XAXX010101000", RfcKind.PERSONA_FISICA),
        ("XEXX010101000", RfcKind.PERSONA_FISICA),
    ],
)
def test_well_formed_rfcs_are_accepted_with_their_kind(raw: str, kind: RfcKind) -> None:
    rfc = Rfc.parse(raw)
    assert rfc.value == raw
    assert rfc.kind is kind
    assert str(rfc) == raw


def test_parse_trims_upper_cases_and_composes_n_tilde() -> None:
    decomposed = unicodedata.normalize("NFD", "  muño800101ab1\n")
    assert "Ñ" not in decomposed.upper()
    assert Rfc.parse(decomposed) == Rfc("MUÑO800101AB1")


def test_generic_rfcs_are_recognised() -> None:
    assert Rfc.parse("xaxx010101000").is_generic_national
    assert Rfc.parse("XEXX010101000").is_generic_foreign
    assert not Rfc.parse("EKU9003173C9").is_generic


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "EKU9003173C",  # 11 characters
        "EKUU90031733C9X",  # 15 characters
        "EK19003173C9",  # digit among the letters
        "EKU9013173C9",  # month 13
        "EKU9002303C9",  # 30 February
        "FUNK670229PH6",  # 29 February of a year that is not leap in either century
        "EKU9003173CB",  # check character must be a digit or A
        "EKU-900317-3C9",
        "EKU9003173C9\x00",
        "EKU 9003173C9",
        "ÉKU9003173C9",
        "EKU９００３１７３C9",  # full-width digits
    ],
)
def test_malformed_rfcs_are_refused_in_spanish(raw: str) -> None:
    with pytest.raises(RfcError) as caught:
        Rfc.parse(raw)
    assert caught.value.code == "invalid_rfc"
    assert "RFC" in caught.value.message


def test_leap_day_of_year_00_is_accepted() -> None:
    assert Rfc.parse("AAA000229AB1").value == "AAA000229AB1"


def test_error_message_does_not_echo_control_characters_or_long_input() -> None:
    with pytest.raises(RfcError) as caught:
        Rfc.parse("ABC\x1b[31m" + "X" * 40)
    assert "\x1b" not in caught.value.message
    assert len(caught.value.message) < 200


def test_oversized_input_is_refused_without_echoing_it() -> None:
    with pytest.raises(RfcError) as caught:
        Rfc.parse("A" * 10_000)
    assert "A" * 30 not in caught.value.message


@pytest.mark.parametrize("value", [None, 12345, b"EKU9003173C9"])
def test_non_text_is_refused(value: object) -> None:
    with pytest.raises(RfcError):
        Rfc.parse(value)  # type: ignore[arg-type]


def test_check_digit_is_computed_but_not_enforced() -> None:
    assert Rfc.parse("EKU9003173C9").has_valid_check_digit
    assert Rfc.parse("FUNK671228PH6").has_valid_check_digit
    altered = Rfc.parse("EKU9003173C8")
    assert not altered.has_valid_check_digit


def test_rfcs_are_equal_by_value_and_hashable() -> None:
    assert Rfc.parse("eku9003173c9") == Rfc("EKU9003173C9")
    assert len({Rfc("EKU9003173C9"), Rfc.parse("EKU9003173C9 ")}) == 1


_rfcs = st.builds(
    lambda letters, yy, mm, dd, h1, h2, h3: f"{letters}{yy:02d}{mm:02d}{dd:02d}{h1}{h2}{h3}",
    st.text(alphabet=LETTERS, min_size=3, max_size=4),
    st.integers(0, 99),
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    st.sampled_from("0123456789A"),
)


@given(_rfcs)
def test_every_well_formed_rfc_round_trips(raw: str) -> None:
    rfc = Rfc.parse(raw.lower())
    assert rfc.value == raw
    assert Rfc.parse(rfc.value) == rfc
    assert rfc.kind is (RfcKind.PERSONA_MORAL if len(raw) == 12 else RfcKind.PERSONA_FISICA)


@given(st.text(max_size=30))
def test_arbitrary_text_is_either_refused_with_rfc_error_or_well_formed(raw: str) -> None:
    try:
        rfc = Rfc.parse(raw)
    except RfcError:
        return
    assert re.fullmatch(r"[A-ZÑ&]{3,4}[0-9]{6}[A-Z0-9]{2}[0-9A]", rfc.value)
