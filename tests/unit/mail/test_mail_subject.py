"""Subject matching and ticket tokens."""

from __future__ import annotations

import pytest

from mail.subject import CONFIG_SUBJECT, extract_ticket_token, format_ticket, match_config_subject


@pytest.mark.parametrize(
    "subject",
    [
        CONFIG_SUBJECT,
        CONFIG_SUBJECT.upper(),
        CONFIG_SUBJECT.lower(),
        "Configuracion del Modulo de Timbrado de complementos de pago",
        "  Configuración   del\tMódulo de Timbrado de complementos de pago.  ",
        f"RE: {CONFIG_SUBJECT}",
        f"Re: RE: re: {CONFIG_SUBJECT}",
        f"RV: {CONFIG_SUBJECT}",
        f"FW: Fwd: FWD: {CONFIG_SUBJECT}",
        f"RES: ENC: {CONFIG_SUBJECT}",
        f"AW: WG: TR: SV: {CONFIG_SUBJECT}",
        f"RE[2]: RE [3]: Re(4): {CONFIG_SUBJECT}",
        f"Re : {CONFIG_SUBJECT}",
        f"RE：{CONFIG_SUBJECT}",
        f"[EXTERNO] {CONFIG_SUBJECT}",
        f"[EXTERNAL] RE: [EXTERNO] {CONFIG_SUBJECT}",
        f"*EXTERNO* {CONFIG_SUBJECT}",
        f"EXTERNAL: {CONFIG_SUBJECT}",
        f"{CONFIG_SUBJECT} [TCP-000123]",
        f"RE: [TCP-000123] {CONFIG_SUBJECT}",
        f"RE: {CONFIG_SUBJECT} (TCP-000123)",
        f"RE: {CONFIG_SUBJECT} TCP-000123",
        f"{CONFIG_SUBJECT} [EXTERNO]",
        "Configuración del Módulo de Timbrado de complemento de pagos",
        "Configuración de Módulo de Timbrado de complementos de pago",
        "Ｃｏｎｆｉｇｕｒａｃｉóｎ del Módulo de Timbrado de complementos de pago",
        "Configuraci\u0301on del Mo\u0301dulo de Timbrado de complementos de pago",
        "Configu\u200bración\u00a0del Módulo de\u2060 Timbrado de complementos de pago",
    ],
)
def test_config_subject_variants_match(subject: str) -> None:
    assert match_config_subject(subject).matched


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "Duda sobre factura A-1234",
        "Dudas sobre la configuración del módulo de timbrado de complementos de pago",
        "Configuración del Módulo de Timbrado",
        "Configuración del Módulo de Timbrado de complementos de pago y estado de cuenta",
        "Cancelación del Módulo de Timbrado de complementos de pago",
        "RE: Recibimos tu solicitud [TCP-000123]",
        "Configuración del Módulo de Facturación",
    ],
)
def test_other_subjects_do_not_match(subject: str) -> None:
    assert not match_config_subject(subject).matched


def test_phrase_inside_a_longer_subject_is_reported_as_a_mention() -> None:
    match = match_config_subject("Dudas sobre la configuración del módulo de timbrado de complementos de pago")
    assert match.mentions_phrase and not match.matched


def test_prefixes_set_reply_and_forward_flags_and_tags_are_kept() -> None:
    match = match_config_subject(f"RV: RE: [EXTERNO] {CONFIG_SUBJECT} [TCP-000045]")
    assert (match.is_reply, match.is_forward) == (True, True)
    assert match.tags == ("EXTERNO",)
    assert match.ticket == "TCP-000045"
    assert match.core == "configuracion del modulo de timbrado de complementos de pago"
    plain = match_config_subject(CONFIG_SUBJECT)
    assert (plain.is_reply, plain.is_forward, plain.ticket, plain.tags) == (False, False, None, ())


def test_words_that_start_like_prefixes_are_not_stripped() -> None:
    assert match_config_subject("Revisión: " + CONFIG_SUBJECT).matched is False
    assert match_config_subject("Trámite " + CONFIG_SUBJECT).matched is False


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("RE: Configuración [TCP-000123]", "TCP-000123"),
        ("tcp-000123", "TCP-000123"),
        ("[TCP–000123]", "TCP-000123"),
        ("TCP 000123", "TCP-000123"),
        ("TCP_000123", "TCP-000123"),
        ("TCP#000123", "TCP-000123"),
        ("TCP000123", "TCP-000123"),
        ("TCP-0000123", "TCP-000123"),
        ("TCP-1234567", "TCP-1234567"),
        ("TCP-000123.ack.20240507@portaldeproveedores.example.mx", "TCP-000123"),
        ("<ack.TCP-000042.x@host>", "TCP-000042"),
        ("ＴＣＰ－０００１２３", "TCP-000123"),
        ("primero TCP-000001 luego TCP-000002", "TCP-000001"),
    ],
)
def test_ticket_tokens_are_found_and_normalised(text: str, token: str) -> None:
    assert extract_ticket_token(text) == token


@pytest.mark.parametrize(
    "text",
    ["", "TCP-12345", "XTCP-000123", "ATCP000123", "TCP-", "ticket 000123", "TCP-" + "9" * 13, "TCP-000123456789012"],
)
def test_non_tokens_are_not_tickets(text: str) -> None:
    assert extract_ticket_token(text) is None


def test_format_ticket_pads_to_six_digits_and_round_trips() -> None:
    assert format_ticket(123) == "TCP-000123"
    assert format_ticket(0) == "TCP-000000"
    assert format_ticket(1_234_567) == "TCP-1234567"
    assert extract_ticket_token(f"RE: algo [{format_ticket(98765)}]") == "TCP-098765"


@pytest.mark.parametrize("bad", [-1, True, 1.5, "123"])
def test_format_ticket_refuses_non_integers_and_negatives(bad: object) -> None:
    with pytest.raises(ValueError, match="ticket"):
        format_ticket(bad)  # type: ignore[arg-type]
