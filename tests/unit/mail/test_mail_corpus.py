"""Table-driven tests over the .eml corpus in tests/data/eml (see its README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mail.parsing import InboundMessage, find_rfcs, find_ticket_token, parse_message
from mail.subject import match_config_subject

CORPUS = Path(__file__).resolve().parents[2] / "data" / "eml"


@dataclass(frozen=True)
class Expect:
    matched: bool
    ticket: str | None = None
    auto: bool = False
    bounce: bool = False
    listed: bool = False
    has_message_id: bool = True
    attachments: int = 0
    body: str = ""
    rfcs: tuple[str, ...] = ()
    defect: str | None = None
    sender: str | None = "any"


REQUEST = Expect(matched=True)
EXPECTED: dict[str, Expect] = {
    "outlook_config_request_qp_subject.eml": Expect(True, body="“quedo a sus órdenes”"),
    "gmail_config_request_base64_subject.eml": Expect(True, body="Pacífico", rfcs=("CPA120315KJ4",)),
    "config_request_uppercase_no_accents.eml": Expect(True, rfcs=("LNO980101AB3",)),
    "config_request_iso8859_1_body.eml": Expect(True, body="José Ibáñez"),
    "config_request_windows1252_body.eml": Expect(True, body="“Módulo de Timbrado” – precio en € o MXN…"),
    "config_request_latin1_label_cp1252_bytes.eml": Expect(True, body="el “módulo” para Ferretería"),
    "config_request_html_only.eml": Expect(True, body="Farmacias del Valle & filiales", rfcs=("FVA010203XY9",)),
    "config_request_html_only_base64_owa.eml": Expect(True, body="Tesorería — Hoteles Riviera Maya"),
    "config_request_extra_whitespace_lowercase.eml": REQUEST,
    "config_request_externo_tag.eml": Expect(True, rfcs=("CAL8501011A0",)),
    "config_request_unknown_sender_rfc_in_body.eml": Expect(
        True, rfcs=("CM&990909K12", "MAGJ800229H55"), sender="despacho.contable.mtz@gmail.com"
    ),
    "config_request_client_domain_sender.eml": Expect(True, sender="lrios@grupoacme.com.mx"),
    "config_request_with_attachments.eml": Expect(True, attachments=3, rfcs=("ADN0601019Q3",)),
    "config_request_attachment_rfc2231_filename.eml": Expect(True, attachments=1),
    "config_request_attachment_rfc2047_filename.eml": Expect(True, attachments=1),
    "config_request_no_message_id.eml": Expect(True, has_message_id=False),
    "duplicate_message_id_first.eml": REQUEST,
    "duplicate_message_id_second.eml": REQUEST,
    "config_request_unknown_charset.eml": Expect(True, body="Configuración solicitada"),
    "config_request_raw_utf8_subject.eml": REQUEST,
    "config_request_raw_latin1_subject.eml": REQUEST,
    "config_request_split_multibyte_encoded_words.eml": REQUEST,
    "config_request_lf_line_endings_maildir.eml": Expect(True, body="saltos de línea LF"),
    "config_request_null_bytes.eml": Expect(True, body="por el ERP. RFC", rfcs=("MSU110101AA1",)),
    "config_request_iphone_format_flowed.eml": Expect(True, rfcs=("DTM070707MX5",)),
    "auto_submitted_no_is_human.eml": REQUEST,
    "reply_outlook_ticket_in_subject.eml": Expect(True, ticket="TCP-000123", body="número de cliente"),
    "reply_gmail_token_only_in_references.eml": Expect(False, ticket="TCP-000124"),
    "reply_token_only_in_references_header.eml": Expect(False, ticket="TCP-000125"),
    "reply_stacked_prefixes_and_tags.eml": Expect(True, ticket="TCP-000045"),
    "reply_ticket_en_dash_lowercase.eml": Expect(True, ticket="TCP-000777"),
    "forward_gmail_inline.eml": Expect(True, body="Forwarded message", rfcs=("ADN0601019Q3",)),
    "forward_outlook_rv.eml": Expect(True, body="Enviado el:"),
    "forward_as_attachment_rfc822.eml": Expect(True, attachments=1),
    "ooo_exchange_respuesta_automatica.eml": Expect(False, ticket="TCP-000126", auto=True),
    "ooo_gmail_vacation_responder.eml": Expect(False, ticket="TCP-000124", auto=True),
    "ooo_x_autoreply_header.eml": Expect(False, auto=True),
    "ooo_precedence_bulk_matching_subject.eml": Expect(True, auto=True),
    "ooo_x_autorespond_header.eml": Expect(False, ticket="TCP-000130", auto=True),
    "ooo_empty_return_path.eml": Expect(False, ticket="TCP-000131", auto=True),
    "read_receipt_mdn.eml": Expect(False, ticket="TCP-000128", auto=True, attachments=1),
    "bounce_postfix_dsn.eml": Expect(False, auto=True, bounce=True, attachments=2),
    "bounce_exchange_ndr_undeliverable.eml": Expect(False, ticket="TCP-000127", bounce=True, attachments=2),
    "bounce_gmail_mailer_daemon.eml": Expect(False, bounce=True, body="no se encontró la dirección"),
    "mailing_list_google_groups_matching_subject.eml": Expect(True, listed=True),
    "newsletter_list_unsubscribe.eml": Expect(False, listed=True, body="Novedades del SAT."),
    "unrelated_invoice_question.eml": Expect(False),
    "unrelated_mentions_phrase.eml": Expect(False),
    "unrelated_spam_html.eml": Expect(False, body="Haz clic aquí"),
    "malformed_missing_boundary_param.eml": Expect(
        True, attachments=1, body="sin boundary declarado", defect="boundary_guessed"
    ),
    "malformed_boundary_not_in_body.eml": Expect(True, body="Texto plano sin partes", defect="boundary_not_found"),
    "malformed_truncated_no_close_delimiter.eml": Expect(True, attachments=1, defect="missing_close_boundary"),
    "malformed_broken_headers.eml": Expect(True, body="Cuerpo con encabezados rotos", defect="malformed_header_line"),
    "malformed_no_header_body_separator.eml": Expect(True, body="este cuerpo empieza sin linea en blanco"),
    "malformed_bad_base64_and_date.eml": Expect(True, body="base64 dañado y sin relleno"),
    "malformed_deep_nesting.eml": Expect(False, defect="mime_too_deep"),
    "subject_2000_chars.eml": Expect(False),
    "headers_only_no_from_no_body.eml": Expect(False, sender=None),
}


def _load(name: str) -> InboundMessage:
    return parse_message((CORPUS / name).read_bytes())


def test_every_corpus_file_has_an_expectation_and_there_are_at_least_45() -> None:
    on_disk = {path.name for path in CORPUS.glob("*.eml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 45


def test_readme_lists_every_corpus_file() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    missing = [name for name in EXPECTED if f"`{name}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_is_read_as_expected(name: str) -> None:
    expect = EXPECTED[name]
    message = _load(name)
    match = match_config_subject(message.subject)

    assert match.matched is expect.matched
    assert find_ticket_token(message) == expect.ticket
    assert message.is_auto_reply is expect.auto
    assert message.is_bounce is expect.bounce
    assert message.is_list_mail is expect.listed
    assert (message.message_id is not None) is expect.has_message_id
    assert len(message.attachments) == expect.attachments
    assert expect.body in message.body_text
    assert tuple(find_rfcs(message.body_text)) == expect.rfcs
    if expect.defect is not None:
        assert expect.defect in message.defects
    if expect.sender != "any":
        assert message.from_address == expect.sender
    assert "\x00" not in message.body_text + message.subject + message.from_name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_only_clean_human_mail_may_be_acknowledged(name: str) -> None:
    expect = EXPECTED[name]
    message = _load(name)
    assert (message.no_ack_reason is None) is not (expect.auto or expect.bounce or expect.listed)


def test_the_same_message_delivered_twice_has_one_dedup_key() -> None:
    first = _load("duplicate_message_id_first.eml")
    second = _load("duplicate_message_id_second.eml")
    assert first.dedup_key == second.dedup_key == "mid:dup-7f3a9c@papeleraoccidente.com.mx"


def test_mail_without_message_id_is_deduplicated_by_content_hash() -> None:
    raw = (CORPUS / "config_request_no_message_id.eml").read_bytes()
    key = parse_message(raw).dedup_key
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    assert parse_message(raw.replace(b"\r\n", b"\n")).dedup_key == key
    assert parse_message(raw.replace(b"interno", b"externo")).dedup_key != key


def test_every_dedup_key_in_the_corpus_is_unique_except_the_duplicates() -> None:
    keys = [_load(name).dedup_key for name in sorted(EXPECTED)]
    assert len(keys) - len(set(keys)) == 1


def test_outlook_request_headers_are_decoded() -> None:
    message = _load("outlook_config_request_qp_subject.eml")
    assert message.subject == "Configuración del Módulo de Timbrado de complementos de pago"
    assert message.from_address == "mfperez@grupoacme.com.mx"
    assert message.from_name == "María Fernanda Pérez"
    assert message.to[0].address == "soporte@portaldeproveedores.example.mx"
    assert message.date is not None and message.date.tzinfo is not None
    assert message.date.isoformat() == "2024-05-07T16:02:10+00:00"
    assert message.body_source == "plain"


def test_client_domain_sender_exposes_domain_reply_to_and_cc() -> None:
    message = _load("config_request_client_domain_sender.eml")
    assert message.from_domain == "grupoacme.com.mx"
    assert [a.address for a in message.reply_to] == ["cxp@grupoacme.com.mx"]
    assert [(a.address, a.name) for a in message.cc] == [
        ("tesoreria@grupoacme.com.mx", "Tesorería ACME"),
        ("mfperez@grupoacme.com.mx", ""),
    ]


def test_attachments_are_named_typed_and_measured() -> None:
    message = _load("config_request_with_attachments.eml")
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ("Constancia_Situacion_Fiscal.pdf", "application/pdf"),
        ("image001.png", "image/png"),
        ("ejemplo.xml", "text/xml"),
    ]
    assert message.attachments[0].size == 1327
    assert message.attachments[2].size == len(
        b'<?xml version="1.0" encoding="UTF-8"?><cfdi:Comprobante Version="4.0"/>'
    )
    assert "<cfdi:" not in message.body_text


def test_encoded_attachment_filenames_are_decoded() -> None:
    assert _load("config_request_attachment_rfc2231_filename.eml").attachments[0].filename == (
        "Constancia de situación fiscal.pdf"
    )
    assert _load("config_request_attachment_rfc2047_filename.eml").attachments[0].filename == (
        "Acta constitutiva Ñandu.pdf"
    )


def test_reply_threading_headers_are_normalised() -> None:
    message = _load("reply_outlook_ticket_in_subject.eml")
    ack = "TCP-000123.ack.20240507160300.9f8e7d@portaldeproveedores.example.mx"
    assert message.in_reply_to == ack
    assert message.references[-1] == ack
    assert message.thread_ids[0] == ack
    assert match_config_subject(message.subject).is_reply


def test_html_only_mail_is_converted_without_scripts_or_styles() -> None:
    message = _load("config_request_html_only.eml")
    assert message.body_source == "html"
    assert "alert" not in message.body_text and "font-family" not in message.body_text
    assert "<" not in message.body_text
    assert "- Contacto: Ana López" in message.body_text


def test_two_thousand_character_subject_is_decoded_whole() -> None:
    message = _load("subject_2000_chars.eml")
    assert len(message.subject) == 2000
    match = match_config_subject(message.subject)
    assert match.mentions_phrase and not match.matched


def test_bounce_reasons_name_the_evidence() -> None:
    assert _load("bounce_postfix_dsn.eml").bounce_reasons[0] == "delivery_status_report"
    assert "x_failed_recipients" in _load("bounce_gmail_mailer_daemon.eml").bounce_reasons
    assert _load("bounce_exchange_ndr_undeliverable.eml").no_ack_reason == "delivery_status_report"
