"""Finding RFCs in message bodies."""

from __future__ import annotations

import pytest

from mail.parse_rfc import find_rfcs, is_plausible_rfc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nuestro RFC es EKU9003173C9.", ["EKU9003173C9"]),
        ("RFC: GODE561231GR8 (persona física)", ["GODE561231GR8"]),
        ("rfc gode561231gr8", ["GODE561231GR8"]),
        ("RFC AAA-010101-AA1", ["AAA010101AA1"]),
        ("RFC AAA 010101 AA1", ["AAA010101AA1"]),
        ("Constructora: CM&-990909-K12", ["CM&990909K12"]),
        ("Razón social Peña: PEÑ030303AB1", ["PEÑ030303AB1"]),
        ("descompuesto: PEN\u0303030303AB1", ["PEÑ030303AB1"]),
        ("bisiesto MAGJ800229H55", ["MAGJ800229H55"]),
        ("dos: EKU9003173C9 y EKU9003173C9 y XIA190128J61", ["EKU9003173C9", "XIA190128J61"]),
        ("<td>EKU9003173C9</td>", ["EKU9003173C9"]),
    ],
)
def test_rfcs_are_found_in_canonical_form(text: str, expected: list[str]) -> None:
    assert find_rfcs(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "XAXX010101000 público en general",
        "XEXX010101000 extranjero",
        "AAA011301AA1 mes 13",
        "AAA010230AA1 30 de febrero",
        "AAA010100AA1 día cero",
        "AAA010101AAB homoclave que no termina en dígito ni A",
        "XAAA010101AA1B pegado a otras letras",
        "AB010101AA1 solo dos letras",
        "AAA-010101AA1 un solo guion",
        "folio 1234567890123",
        "EKU9003173C91 con un dígito de más",
    ],
)
def test_implausible_rfcs_are_ignored(text: str) -> None:
    assert find_rfcs(text) == []


def test_plausibility_requires_canonical_form() -> None:
    assert is_plausible_rfc("EKU9003173C9")
    assert not is_plausible_rfc("eku9003173c9")
    assert not is_plausible_rfc("EKU-900317-3C9")
