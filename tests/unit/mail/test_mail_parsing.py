"""Behaviour of parse_message and its helpers on hand-made and hostile input."""

from __future__ import annotations

import importlib.util
import tracemalloc
from datetime import UTC
from pathlib import Path
from types import ModuleType

import pytest

import mail.parsing
from mail.parse_charset import decode_bytes
from mail.parse_headers import decode_rfc2047, normalize_message_id, parse_date
from mail.parse_html import html_to_text
from mail.parsing import parse_message

EML_DIR = Path(__file__).resolve().parents[2] / "data" / "eml"


def _mail(headers: str, body: str = "Hola.", *, crlf: bool = True) -> bytes:
    text = headers.strip("\n") + "\n\n" + body
    return (text.replace("\n", "\r\n") if crlf else text).encode("utf-8")


def _load_make_large() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_large", EML_DIR / "make_large.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 1000,
        b"\r\n\r\n\r\n",
        b"\xff\xfe\xfd" * 100,
        b"Subject: " + b"A" * 1_000_000,
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n--\r\n',
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--x\r\n" * 5000,
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"--xy" * 100_000,
        b"Content-Type: multipart/mixed; boundary=" + b"b" * 500 + b"\r\n\r\n--b\r\n",
        b"Content-Type: text/plain; charset=rot13\r\n\r\nhola",
        b"Content-Type: text/plain; charset=base64\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b'From: <<<@@@>>>, "\\"\\", =?utf-8?b?=?=\r\nTo: ,,,,;;;;\r\n\r\n',
        b"Date: Mon, 1 Jan 99999 00:00:00 +9999\r\nMessage-ID: <>\r\nReferences: <<<>>>\r\n\r\n",
        b"Subject: =?utf-8?q?" + b"=FF" * 10_000 + b"?=\r\n\r\n",
        b"Content-Type: text/html\r\n\r\n<![if !supportLists]><!DOCTYPE x [<!ENTITY a 'b'>]><a <b c=\"",
        b"From \r\nFrom: x@y\r\n\r\nbody",
    ],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    message = parse_message(raw)
    assert message.raw_size == len(raw)
    assert message.dedup_key.startswith(("mid:", "sha256:"))
    assert "\x00" not in message.body_text + message.subject


def test_non_bytes_input_is_accepted_without_raising() -> None:
    raw = _mail("Subject: hola\nMessage-ID: <a@b>")
    assert parse_message(bytearray(raw)).subject == "hola"  # type: ignore[arg-type]
    assert parse_message(memoryview(raw)).subject == "hola"  # type: ignore[arg-type]
    assert parse_message(None).raw_size == 0  # type: ignore[arg-type]


def test_an_internal_failure_gives_an_unacknowledgeable_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(raw: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(mail.parsing, "walk", explode)
    message = parse_message(_mail("Subject: hola"))
    assert message.defects == ("parse_failed",)
    assert message.no_ack_reason == "parse_failed"


def test_25_mb_message_is_parsed_without_materialising_the_attachment() -> None:
    raw, payload_size = _load_make_large().build_large_message()
    assert len(raw) >= 25 * 1024 * 1024 - 1024
    tracemalloc.start()
    try:
        message = parse_message(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert [(a.filename, a.size) for a in message.attachments] == [("expediente-escaneado.pdf", payload_size)]
    assert "configuración del módulo" in message.body_text
    assert message.message_id == "large-25mb.20240508091500@gibajio.com.mx"


def test_long_bodies_are_truncated_and_say_so() -> None:
    raw = _mail("Subject: largo", "x" * 5000)
    message = parse_message(raw, max_body_chars=1000)
    assert len(message.body_text) == 1000
    assert message.body_truncated and "body_truncated" in message.defects
    assert not parse_message(raw).body_truncated


def test_boundary_that_prefixes_another_line_is_not_a_delimiter() -> None:
    raw = _mail(
        'Subject: x\nContent-Type: multipart/mixed; boundary="BB"',
        "--BB\nContent-Type: text/plain\n\nuno\n--BBX no es delimitador\n--BB--\n",
    )
    assert parse_message(raw).body_text == "uno\n--BBX no es delimitador"


def test_nested_parts_with_transport_padding_after_delimiters() -> None:
    raw = _mail(
        'Subject: x\nContent-Type: multipart/mixed; boundary="out"',
        "--out  \n"
        'Content-Type: multipart/alternative; boundary="in"\n\n'
        "--in\nContent-Type: text/html\n\n<p>html</p>\n--in\nContent-Type: text/plain\n\ntexto\n--in--\n"
        "--out\nContent-Type: text/plain\nContent-Disposition: attachment; filename=nota.txt\n\nadjunto\n"
        "--out--\n",
    )
    message = parse_message(raw)
    assert message.body_text == "texto"
    assert [(a.filename, a.content_type, a.size) for a in message.attachments] == [
        ("nota.txt", "text/plain", len("adjunto"))
    ]


def test_html_is_used_only_when_there_is_no_plain_text() -> None:
    raw = _mail(
        'Subject: x\nContent-Type: multipart/alternative; boundary="a"',
        "--a\nContent-Type: text/html; charset=utf-8\n\n<p>Buen d&iacute;a</p><p>RFC&nbsp;EKU9003173C9</p>\n--a--\n",
    )
    message = parse_message(raw)
    assert message.body_source == "html"
    assert message.body_text == "Buen día\n\nRFC EKU9003173C9"


def test_message_without_message_id_hashes_the_same_over_crlf_and_lf() -> None:
    crlf = parse_message(_mail("Subject: sin id", crlf=True))
    lf = parse_message(_mail("Subject: sin id", crlf=False))
    assert crlf.message_id is None
    assert crlf.dedup_key == lf.dedup_key


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<ABC.123@Mail.Example.COM>", "ABC.123@mail.example.com"),
        ("  < abc@x.mx >  (comentario)", "abc@x.mx"),
        ("<abc\r\n @x.mx>", "abc@x.mx"),
        ("abc@x.mx", "abc@x.mx"),
        ("<TCP-000123.ack.1@Portal.example.mx>", "TCP-000123.ack.1@portal.example.mx"),
        ("<>", None),
        ("", None),
        (None, None),
        ("sin arroba", None),
        ("<" + "a" * 300 + "@x.mx>", None),
    ],
)
def test_message_ids_are_normalised(value: str | None, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?Configuraci=C3=B3n?= del =?iso-8859-1?B?TfNkdWxv?=", "Configuración del Módulo"),
        ("=?utf-8?q?uno?=   =?utf-8?q?_dos?=", "uno dos"),
        ("=?utf-8?q?uno?=\r\n =?utf-8?q?dos?=", "unodos"),
        ("=?x-desconocido?q?Configuraci=F3n?=", "Configuración"),
        ("=?utf-8?B?broken!!?= fin", "=?utf-8?B?broken!!?= fin"),
        ("=?utf-8?B?Q29uZmlndXJhY2nDs24?=", "Configuración"),
        ("=?UTF-8*es-mx?Q?hola?=", "hola"),
        ("texto   con\tespacios", "texto con espacios"),
        ("=?utf-8?q?nul=00byte?=", "nulbyte"),
    ],
)
def test_rfc2047_decoding_is_tolerant(value: str, expected: str) -> None:
    assert decode_rfc2047(value) == expected


def test_raw_8bit_headers_are_decoded_as_utf8_or_windows_1252() -> None:
    utf8 = parse_message(b'Subject: Configuraci\xc3\xb3n\r\nFrom: "P\xc3\xa9rez" <A@B.MX>\r\n\r\n')
    latin = parse_message(b'Subject: Configuraci\xf3n\r\nFrom: "P\xe9rez" <A@B.MX>\r\n\r\n')
    for message in (utf8, latin):
        assert message.subject == "Configuración"
        assert (message.from_name, message.from_address) == ("Pérez", "a@b.mx")


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("añó".encode(), "us-ascii", "añó"),
        ("añó".encode(), "iso-8859-1", "añó"),
        ("“añó”".encode("cp1252"), "iso-8859-1", "“añó”"),
        ("“añó”".encode("cp1252"), None, "“añó”"),
        ("añó".encode("cp1252"), "utf-8", "añó"),
        ("añó".encode("cp1252"), "rot13", "añó"),
        ("añó".encode("cp1252"), "unicode_escape", "añó"),
        (b"\\u0041", "raw-unicode-escape", "\\u0041"),
        ("日本".encode("shift_jis"), "Shift_JIS", "日本"),
        ("añó".encode(), '"UTF-8"', "añó"),
    ],
)
def test_body_charsets_are_decoded_with_fallbacks(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


def test_dates_are_aware_or_none() -> None:
    parsed = parse_date("Tue, 7 May 2024 10:11:12 -0600")
    assert parsed is not None and parsed.utcoffset() is not None
    naive = parse_date("Tue, 7 May 2024 10:11:12 -0000")
    assert naive is not None and naive.tzinfo == UTC
    assert parse_date("Lunes 32 de Mayo") is None
    assert parse_date(None) is None


@pytest.mark.parametrize(
    ("header", "auto"),
    [
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: No (escrito por una persona)", False),
        ("Auto-Submitted: auto-replied; owner-email=x@y", True),
        ("Auto-Submitted: AUTO-GENERATED", True),
        ("Precedence: junk", True),
        ("Precedence: first-class", False),
        ("X-Autoreply: no", False),
        ("Return-Path: < >", True),
        ("Return-Path: <rebotes@x.mx>", False),
    ],
)
def test_auto_reply_headers(header: str, auto: bool) -> None:
    message = parse_message(_mail(f"Subject: hola\n{header}"))
    assert message.is_auto_reply is auto


def test_postmaster_sender_is_a_bounce_whatever_the_case() -> None:
    assert parse_message(_mail("From: PostMaster@X.MX\nSubject: aviso")).is_bounce


def test_html_to_text_survives_unclosed_head_and_bad_markup() -> None:
    assert html_to_text("<html><head><style>p{}</style><body><p>visible</p>") == "visible"
    assert html_to_text("<![if !supportLists]>uno<![endif]> <p>dos") in ("uno\ndos", "uno dos", "uno\n\ndos")
    assert html_to_text("") == ""
