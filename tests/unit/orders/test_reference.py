"""Payment references: TCP + padded order id + Luhn check digit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.orders.reference import (
    PaymentReferenceError,
    find_payment_reference,
    luhn_check_digit,
    make_payment_reference,
    parse_payment_reference,
)

ids = st.integers(min_value=1, max_value=10**12)


def luhn_valid(number: str) -> bool:
    """Independent Luhn validator (the textbook form) to check the generator against."""
    digits = [int(c) for c in number]
    odd = digits[-1::-2]
    even = [sum(divmod(2 * d, 10)) for d in digits[-2::-2]]
    return (sum(odd) + sum(even)) % 10 == 0


def test_reference_shape() -> None:
    assert make_payment_reference(1234) == "TCP000012344"
    assert make_payment_reference(1) == "TCP000000018"


def test_known_luhn_values() -> None:
    assert luhn_check_digit("7992739871") == 3  # the classic Wikipedia example
    assert luhn_check_digit("0") == 0


@given(ids)
def test_reference_round_trips(order_id: int) -> None:
    reference = make_payment_reference(order_id)
    assert reference.startswith("TCP")
    assert luhn_valid(reference[3:])
    assert parse_payment_reference(reference) == order_id


@given(ids)
def test_parsing_tolerates_lowercase_spaces_and_dashes(order_id: int) -> None:
    reference = make_payment_reference(order_id)
    spaced = " ".join(reference[i : i + 4] for i in range(0, len(reference), 4)).lower()
    assert parse_payment_reference(f"  {spaced} ") == order_id
    assert parse_payment_reference(reference[:3] + "-" + reference[3:]) == order_id


@given(ids, st.data())
def test_any_single_digit_typo_is_detected(order_id: int, data: st.DataObject) -> None:
    reference = make_payment_reference(order_id)
    position = data.draw(st.integers(min_value=3, max_value=len(reference) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != reference[position]]))
    typo = reference[:position] + wrong + reference[position + 1 :]
    with pytest.raises(PaymentReferenceError) as info:
        parse_payment_reference(typo)
    assert info.value.code == "invalid_check_digit"


@given(ids, st.data())
def test_adjacent_transpositions_are_detected_except_09(order_id: int, data: st.DataObject) -> None:
    reference = make_payment_reference(order_id)
    i = data.draw(st.integers(min_value=3, max_value=len(reference) - 2))
    a, b = reference[i], reference[i + 1]
    if a == b or {a, b} == {"0", "9"}:
        return
    swapped = reference[:i] + b + a + reference[i + 2 :]
    with pytest.raises(PaymentReferenceError):
        parse_payment_reference(swapped)


@pytest.mark.parametrize(
    "text",
    ["", "TCP", "TCP12", "ABC000012344", "TCP00001234X", "TCP０００１２３４４", "TCP000000000", 12344, None],
)
def test_malformed_references_are_refused(text: object) -> None:
    with pytest.raises(PaymentReferenceError) as info:
        parse_payment_reference(text)  # type: ignore[arg-type]
    assert info.value.code == "invalid_reference"
    assert info.value.message.startswith("La referencia de pago")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "12"])
def test_order_id_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError):
        make_payment_reference(bad)  # type: ignore[arg-type]


def test_large_ids_widen_the_reference_instead_of_truncating() -> None:
    reference = make_payment_reference(123_456_789_012)
    assert reference == "TCP123456789012" + str(luhn_check_digit("123456789012"))
    assert parse_payment_reference(reference) == 123_456_789_012


@pytest.mark.parametrize(
    ("concept", "expected"),
    [
        ("PAGO TIMBRADO TCP000012344", 1234),
        ("pago tcp 0000 1234 4 gracias", 1234),
        ("TCP000012344 20240115", 1234),  # a date glued after the reference
        ("TCP000012345", None),  # wrong check digit
        ("transferencia sin referencia", None),
    ],
)
def test_find_reference_in_a_transfer_concept(concept: str, expected: int | None) -> None:
    assert find_payment_reference(concept) == expected
