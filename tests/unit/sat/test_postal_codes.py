"""SAT c_CodigoPostal lookups: estado, municipio and the IANA zone for REP dates."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from core.sat.postal_codes import (
    TIME_ZONE_RULES,
    PostalCode,
    PostalCodeError,
    lookup_postal_code,
    time_zone_for,
)


def test_mexico_city_postal_code() -> None:
    info = lookup_postal_code("06600")
    assert info == PostalCode(
        code="06600",
        estado="CMX",
        estado_nombre="Ciudad de México",
        municipio="015",
        municipio_nombre="Cuauhtémoc",
        localidad="06",
        localidad_nombre="Ciudad de México",
        time_zone="America/Mexico_City",
        huso_horario="Tiempo del Centro",
        estimulo_franja_fronteriza=False,
    )


@pytest.mark.parametrize(
    ("code", "estado", "zone"),
    [
        ("22000", "BCN", "America/Tijuana"),  # Tijuana
        ("77500", "ROO", "America/Cancun"),  # Cancún
        ("83000", "SON", "America/Hermosillo"),  # Hermosillo
        ("82000", "SIN", "America/Mazatlan"),  # Mazatlán
        ("23000", "BCS", "America/Mazatlan"),  # La Paz
        ("31000", "CHH", "America/Chihuahua"),  # Chihuahua city
        ("32000", "CHH", "America/Ciudad_Juarez"),  # SAT says "Centro en Frontera"; the city keeps Mountain time
        ("87300", "TAM", "America/Matamoros"),  # Matamoros
        ("88000", "TAM", "America/Matamoros"),  # Nuevo Laredo
        ("63726", "NAY", "America/Bahia_Banderas"),  # Bahía de Banderas
        ("64000", "NLE", "America/Mexico_City"),  # Monterrey
        ("97000", "YUC", "America/Mexico_City"),  # Mérida
    ],
)
def test_time_zone_follows_the_catalog(code: str, estado: str, zone: str) -> None:
    info = lookup_postal_code(code)
    assert info is not None
    assert (info.estado, info.time_zone) == (estado, zone)
    ZoneInfo(info.time_zone)  # a real IANA zone


def test_border_postal_code_carries_the_incentive_flag() -> None:
    info = lookup_postal_code("22000")
    assert info is not None
    assert info.estimulo_franja_fronteriza


def test_code_without_municipio_in_the_catalog() -> None:
    info = lookup_postal_code("01001")
    assert info is not None
    assert (info.estado, info.municipio, info.municipio_nombre) == ("CMX", None, None)


def test_placeholder_00000_is_not_a_postal_code() -> None:
    assert lookup_postal_code("00000") is None


@pytest.mark.parametrize("code", ["00001", "95669"])
def test_codes_missing_from_the_catalog_return_none(code: str) -> None:
    assert lookup_postal_code(code) is None


def test_surrounding_whitespace_is_ignored() -> None:
    info = lookup_postal_code(" 06600\n")
    assert info is not None
    assert info.code == "06600"


@pytest.mark.parametrize(
    "code",
    ["ABCDE", "0660", "066000", "06 600", "06600a", "", "０６６００", "-6600", "6600.", None, 6600, "06600;--"],
)
def test_malformed_codes_are_a_format_error(code: object) -> None:
    with pytest.raises(PostalCodeError) as info:
        lookup_postal_code(code)  # type: ignore[arg-type]
    assert info.value.code == "postal_code_format"
    assert "5 dígitos" in info.value.message


def test_unknown_time_zone_description_is_reported() -> None:
    with pytest.raises(PostalCodeError) as info:
        time_zone_for("Tiempo de Marte", "CMX")
    assert info.value.code == "unknown_time_zone"


def test_every_zone_in_the_rules_exists() -> None:
    for *_, zone in TIME_ZONE_RULES:
        ZoneInfo(zone)


def test_every_catalog_entry_maps_to_a_time_zone() -> None:
    """Guards the mapping against a satcfdi catalog update that adds a new huso horario."""
    from satcfdi import catalogs

    pairs = {(row[4], row[0]) for row in catalogs.select_all("C756_c_CodigoPostal").values()}
    assert len(pairs) > 30
    for huso, estado in pairs:
        ZoneInfo(time_zone_for(huso, estado))


def test_the_rep_builder_and_the_vendor_settings_use_the_same_time_zone_for_every_postal_code() -> None:
    """One mapping for the whole service: a vendor's settings must show the zone its REPs are dated in."""
    from satcfdi.catalogs import select_all

    from core.cfdi.catalogs import postal_code_time_zone

    codes = [str(key) for key in select_all("C756_c_CodigoPostal") if str(key) != "00000"]
    assert len(codes) > 90_000
    differing = []
    for code in [*codes[::7], "32000", "32100", "63726", "83000"]:
        info = lookup_postal_code(code)
        assert info is not None
        if postal_code_time_zone(code) != info.time_zone:
            differing.append(code)
    assert differing == []
