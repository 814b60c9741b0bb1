"""Structured logging: context (request id, job id) carried into every line, secrets redacted.

Readable lines by default, one JSON object per line with ``TIMBRADO_LOG_FORMAT=json``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

_context: ContextVar[Mapping[str, Any]] = ContextVar("timbrado_log_context", default={})  # noqa: B039

SECRET_KEYS: Final = re.compile(
    r"(pass(word)?|contrase(n|ñ)a|secret|token|authorization|api[_-]?key|private[_-]?key|llave|key_pem)",
    re.IGNORECASE,
)
_PATTERNS: Final = (
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
        "[REDACTED KEY]",
    ),
    (re.compile(r"\btcp_[A-Za-z0-9_\-]{16,}"), "tcp_[REDACTED]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._\-~+/]+=*"), r"\1 [REDACTED]"),
    (
        re.compile(
            r"(?i)((?:pass(?:word)?|contrase(?:n|ñ)a|secret|token|api[_-]?key)\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]+"), "xox-[REDACTED]"),
)
REDACTED: Final = "[REDACTED]"


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, key: str = "") -> Any:
    """Redact secrets inside nested structures (by key name) and strings (by pattern)."""
    if key and SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def current_context() -> Mapping[str, Any]:
    return _context.get()


def current_request_id() -> str | None:
    value = _context.get().get("request_id")
    return str(value) if value is not None else None


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind values (``request_id=...``, ``job_id=...``) to every log line inside the block."""
    merged = {**_context.get(), **values}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


_STANDARD_ATTRS: Final = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")}
    return {**dict(current_context()), **extras}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for k, v in _extras(record).items():
            data[k] = redact(v, k)
        if record.exc_info:
            data["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{ts} {record.levelname:<7} {record.name}: {redact_text(record.getMessage())}"
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={redact(v, k)}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiohttp.access", "sqlalchemy.engine", "asyncio", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
