"""Structured logs carry the request/job context and never show secrets."""

from __future__ import annotations

import json
import logging

from core.logctx import JsonFormatter, TextFormatter, log_context, redact, redact_text


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelno": 20, "levelname": "INFO", "msg": msg})
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_json_lines_carry_the_bound_context() -> None:
    with log_context(request_id="abc123", job_id=7):
        line = JsonFormatter().format(_record("hola", vendor_id=3))
    data = json.loads(line)
    assert data["msg"] == "hola"
    assert data["request_id"] == "abc123"
    assert data["job_id"] == 7
    assert data["vendor_id"] == 3


def test_secrets_are_redacted_by_key_and_by_pattern() -> None:
    pem = (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n"
        "-----END ENCRYPTED PRIVATE KEY-----"
    )
    text = f"password=12345678a token: tcp_abcdefghijklmnopqrstuvwxyz Authorization: Bearer xyz.abc {pem}"
    out = redact_text(text)
    for secret in ("12345678a", "tcp_abcdefghijklmnop", "xyz.abc", "MIIFHDBOBgkqhkiG9w0BBQ0"):
        assert secret not in out
    nested = redact(
        {"contraseña": "12345678a", "data": {"private_key": "x", "rfc": "EKU9003173C9"}, "blob": b"\x00" * 5}
    )
    assert nested == {
        "contraseña": "[REDACTED]",
        "data": {"private_key": "[REDACTED]", "rfc": "EKU9003173C9"},
        "blob": "<5 bytes>",
    }


def test_text_lines_are_readable_and_redacted() -> None:
    line = TextFormatter().format(_record("login with password=hunter2", password="hunter2"))
    assert "hunter2" not in line
    assert "INFO" in line
