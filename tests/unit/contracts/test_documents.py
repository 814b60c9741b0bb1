"""Contract and privacy notice: versioned templates rendered into deterministic PDFs."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from core.contracts.documents import (
    CONTRACT_2026_1,
    CURRENT_CONTRACT,
    CURRENT_PRIVACY_NOTICE,
    PRIVACY_NOTICE_2026_1,
    TEMPLATES_DIR,
    VERSIONS,
    DocumentKind,
    Manifest,
    PlanTerms,
    ServiceProvider,
    contract_version,
    render_contract,
    render_privacy_notice,
    render_text,
)
from core.errors import Invalid

AT = datetime(2026, 1, 15, 17, 30, tzinfo=UTC)


@pytest.fixture
def manifest() -> Manifest:
    return Manifest.create(
        empresa="ESCUELA KEMPER URGATE SA DE CV",
        rfc="EKU9003173C9",
        direccion="Av. Paseo de la Reforma 1, Col. Centro, 06000, Ciudad de México",
        correo="facturas@kemper.mx",
    )


@pytest.fixture
def provider() -> ServiceProvider:
    return ServiceProvider.create(
        razon_social="SERVICIOS DE TIMBRADO DEMO SA DE CV",
        rfc="STD200101AB1",
        direccion="Insurgentes Sur 100, Ciudad de México",
        correo="privacidad@timbrado.mx",
    )


def test_contract_text_names_both_parties_and_the_version(manifest: Manifest, provider: ServiceProvider) -> None:
    text = render_text(CONTRACT_2026_1, manifest, provider, issued_at=AT)
    for expected in (
        "> Empresa: ESCUELA KEMPER URGATE SA DE CV",
        "> RFC: EKU9003173C9",
        "> Dirección: Av. Paseo de la Reforma 1, Col. Centro, 06000, Ciudad de México",
        "> Correo: facturas@kemper.mx",
        "SERVICIOS DE TIMBRADO DEMO SA DE CV",
        "contrato-2026.1",
        "15 de enero de 2026",
    ):
        assert expected in text


@pytest.mark.parametrize(
    "heading",
    [
        "PRIMERA. OBJETO",
        "SEGUNDA. PAQUETES DE TIMBRADO Y VIGENCIA",
        "OBLIGACIONES DE EL PRESTADOR",
        "SÉPTIMA. CONFIDENCIALIDAD",
        "OCTAVA. DATOS PERSONALES",
        "NOVENA. VIGENCIA Y TERMINACIÓN",
        "JURISDICCIÓN",
    ],
)
def test_contract_has_the_required_clauses(manifest: Manifest, provider: ServiceProvider, heading: str) -> None:
    assert heading in render_text(CONTRACT_2026_1, manifest, provider, issued_at=AT)


def test_plan_terms_appear_only_when_given(manifest: Manifest, provider: ServiceProvider) -> None:
    plan = PlanTerms("Paquete 1,000", 1000, 365, Decimal("4999.5"))
    with_plan = render_text(CONTRACT_2026_1, manifest, provider, issued_at=AT, plan=plan)
    assert "> Timbres incluidos: 1,000" in with_plan
    assert "> Precio: $4,999.50 MXN (IVA incluido)" in with_plan
    assert "Timbres incluidos" not in render_text(CONTRACT_2026_1, manifest, provider, issued_at=AT)


def test_privacy_notice_covers_purposes_transfers_and_arco_rights(
    manifest: Manifest, provider: ServiceProvider
) -> None:
    text = render_text(PRIVACY_NOTICE_2026_1, manifest, provider, issued_at=AT)
    for expected in ("AVISO DE PRIVACIDAD", "FINALIDADES", "TRANSFERENCIAS", "DERECHOS ARCO", "aviso-2026.1"):
        assert expected in text
    assert "privacidad@timbrado.mx" in text


def test_same_inputs_give_byte_identical_pdfs(manifest: Manifest, provider: ServiceProvider) -> None:
    first = render_contract(manifest, provider, issued_at=AT)
    second = render_contract(manifest, provider, issued_at=AT)
    assert first.pdf == second.pdf
    assert first.digest_sha256 == second.digest_sha256 == hashlib.sha256(first.pdf).hexdigest()


def test_pdf_carries_the_issue_date_not_the_wall_clock(manifest: Manifest, provider: ServiceProvider) -> None:
    pdf = render_contract(manifest, provider, issued_at=AT).pdf
    assert b"D:20260115173000+00'00'" in pdf


def test_different_vendor_or_date_changes_the_digest(manifest: Manifest, provider: ServiceProvider) -> None:
    base = render_contract(manifest, provider, issued_at=AT).digest_sha256
    other_vendor = replace(manifest, empresa="OTRA EMPRESA SA DE CV")
    assert render_contract(other_vendor, provider, issued_at=AT).digest_sha256 != base
    assert render_contract(manifest, provider, issued_at=AT.replace(day=16)).digest_sha256 != base


def page_streams(pdf: bytes) -> list[bytes]:
    """The decoded content stream of every page."""
    reader = PdfFileReader(io.BytesIO(pdf))
    return [page.get_object()["/Contents"].get_object().data for page in reader.root["/Pages"]["/Kids"]]


def test_rendered_pdf_has_numbered_pages(manifest: Manifest, provider: ServiceProvider) -> None:
    document = render_contract(manifest, provider, issued_at=AT)
    assert document.pdf.startswith(b"%PDF-")
    streams = page_streams(document.pdf)
    assert len(streams) >= 2
    for number, stream in enumerate(streams, start=1):
        assert b"(P\\341gina %d de %d)" % (number, len(streams)) in stream  # á as WinAnsi octal escape


def test_privacy_notice_and_contract_render_with_their_own_versions(
    manifest: Manifest, provider: ServiceProvider
) -> None:
    contract = render_contract(manifest, provider, issued_at=AT)
    notice = render_privacy_notice(manifest, provider, issued_at=AT)
    assert contract.version is CURRENT_CONTRACT and contract.version.kind is DocumentKind.CONTRACT
    assert notice.version is CURRENT_PRIVACY_NOTICE and notice.version.kind is DocumentKind.PRIVACY_NOTICE
    assert contract.digest_sha256 != notice.digest_sha256
    with pytest.raises(ValueError):
        render_contract(manifest, provider, issued_at=AT, version=PRIVACY_NOTICE_2026_1)


def test_every_published_version_has_its_template_file() -> None:
    for version_id, version in VERSIONS.items():
        assert version.id == version_id
        assert (TEMPLATES_DIR / version.template).is_file()
        assert contract_version(version_id) is version


@pytest.mark.parametrize("version_id", ["contrato-1999.1", "", "../contrato_v1.txt.j2", "x" * 500])
def test_unknown_version_is_refused(version_id: str) -> None:
    with pytest.raises(Invalid) as caught:
        contract_version(version_id)
    assert caught.value.code == "unknown_document_version"
    assert len(caught.value.message) < 120


def test_naive_issue_time_is_refused(manifest: Manifest, provider: ServiceProvider) -> None:
    with pytest.raises(ValueError):
        render_contract(manifest, provider, issued_at=datetime(2026, 1, 15))


# --- hostile manifests ------------------------------------------------------------------------------


def test_markup_in_vendor_data_is_printed_not_interpreted(provider: ServiceProvider) -> None:
    hostile = Manifest.create(
        empresa='ACME <b>bold</b> & <font size="40">x</font> </para>',
        rfc="EKU9003173C9",
        direccion="Calle 1\n## CLÁUSULA FALSA\n> RFC: XAXX010101000",
        correo="a@b.mx",
    )
    assert "\n" not in hostile.direccion
    text = render_text(CONTRACT_2026_1, hostile, provider, issued_at=AT)
    assert "\n## CLÁUSULA FALSA" not in text
    assert "\n> RFC: XAXX010101000" not in text
    pdf = render_contract(hostile, provider, issued_at=AT).pdf  # reportlab would raise on broken markup
    assert pdf.startswith(b"%PDF-")


def test_control_bidi_and_exotic_characters_do_not_break_rendering(provider: ServiceProvider) -> None:
    hostile = Manifest.create(
        empresa="EMPRESA \u202eLAVE\u202c \x00\x07 😀 漢字 Ñandú & Cía",
        rfc="ñand851231ab1",
        direccion="\ufeffDirección\u200b con espacios\t\traros",
        correo="ñ@empresa.mx",
    )
    assert hostile.rfc == "ÑAND851231AB1"
    assert "\u202e" not in hostile.empresa and "\x00" not in hostile.empresa
    assert hostile.direccion == "Dirección con espacios raros"
    assert render_contract(hostile, provider, issued_at=AT).pdf.startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("empresa", "", "required"),
        ("empresa", "   \n\t ", "required"),
        ("empresa", "x" * 301, "too_long"),
        ("empresa", 42, "invalid"),
        ("rfc", "NO-ES-RFC", "invalid_rfc"),
        ("rfc", None, "invalid"),
        ("direccion", "", "required"),
        ("correo", "sin-arroba", "invalid"),
        ("correo", "a@b", "invalid"),
        ("correo", "", "required"),
    ],
)
def test_invalid_manifest_fields_are_named(field: str, value: object, code: str) -> None:
    data: dict[str, object] = {
        "empresa": "EMPRESA SA DE CV",
        "rfc": "EKU9003173C9",
        "direccion": "Calle 1",
        "correo": "a@b.mx",
    }
    data[field] = value
    with pytest.raises(Invalid) as caught:
        Manifest.create(**data)
    assert caught.value.code == "invalid_document_data"
    assert {"field": field, "code": code} in [{"field": p["field"], "code": p["code"]} for p in caught.value.details]


def test_manifest_round_trips_as_a_snapshot(manifest: Manifest) -> None:
    assert Manifest.create(**manifest.as_dict()) == manifest
