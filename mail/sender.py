"""Outgoing mail: build the message from an :class:`OutboundEmail` row and deliver it.

Two transports: SMTP (aiosmtplib; ``smtp://`` with STARTTLS when offered or ``?starttls=required``,
``smtps://`` with implicit TLS; password or XOAUTH2) and the spool (embedded default: one ``.eml``
file per message in ``settings.spool_dir``, written atomically).

:func:`make_send_handler` is the ``email.send`` job handler: it loads the row, does nothing if it
was already sent, sends the stored message (same Message-ID and Date on every attempt, never a new
one), and records the outcome.  5xx answers are permanent (row ``failed``, job dead); 4xx answers,
authentication problems and connection errors are temporary (the job is retried with backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy import update

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.jobs.worker import Handler, JobContext, PermanentJobError
from core.notifications.models import OutboundEmail
from core.settings import Settings
from mail.oauth2 import OAuth2Config, OAuth2Error, OAuth2TokenProvider

log = logging.getLogger("timbrado.mail.sender")

#: Headers the row's ``headers`` mapping may not override (they come from the row's own columns).
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Message-ID",
        "Date",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Sender",
        "Return-Path",
    )
)
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext


class SendError(Exception):
    """Delivery failed.  ``permanent`` decides between retrying and giving up; ``message`` is Spanish."""

    def __init__(self, code: str, message: str, *, permanent: bool, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent
        self.smtp_code = smtp_code


class MessageBuildError(SendError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, permanent=True)


class Transport(Protocol):
    async def send(self, message: EmailMessage, *, email_id: int) -> None: ...


# ---------------------------------------------------------------------------------------- building
def _clean(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def _attachment(spec: Mapping[str, Any], data_dir: Path) -> tuple[bytes, str, str, str]:
    raw_path = spec.get("path")
    if not isinstance(raw_path, str) or not raw_path:
        raise MessageBuildError("attachment_invalid", "Un adjunto no indica su archivo.")
    base = data_dir.resolve()
    path = (base / raw_path).resolve()
    if not path.is_relative_to(base):
        raise MessageBuildError("attachment_outside_data_dir", "Un adjunto apunta fuera del directorio de datos.")
    try:
        data = path.read_bytes()
    except OSError:
        raise MessageBuildError("attachment_missing", f"No se encontró el adjunto {path.name!r}.") from None
    filename = _clean(str(spec.get("filename") or path.name))[:200] or "adjunto"
    ctype = str(spec.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream")
    maintype, _, subtype = ctype.partition("/")
    if not maintype or not subtype or not _HEADER_NAME.match(maintype) or not _HEADER_NAME.match(subtype):
        maintype, subtype = "application", "octet-stream"
    return data, maintype.lower(), subtype.lower(), filename


def build_message(row: OutboundEmail, data_dir: Path) -> EmailMessage:
    """The exact message for ``row``: same Message-ID and Date on every attempt."""
    msg = EmailMessage(policy=policy.SMTP)
    try:
        msg["From"] = _clean(row.from_addr)
        msg["To"] = ", ".join(_clean(a) for a in row.to_addrs)
        if row.cc_addrs:
            msg["Cc"] = ", ".join(_clean(a) for a in row.cc_addrs)
        msg["Subject"] = _clean(row.subject)
        msg["Message-ID"] = _clean(row.message_id)
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        msg["Date"] = format_datetime(created.astimezone(UTC))
        if row.in_reply_to:
            msg["In-Reply-To"] = _clean(row.in_reply_to)
        if row.references:
            msg["References"] = _clean(row.references)
        for name, value in (row.headers or {}).items():
            if not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise MessageBuildError("header_invalid", f"Encabezado no permitido: {name[:40]!r}.")
            msg[name] = _clean(str(value))
        msg.set_content(row.text_body, cte="quoted-printable" if not row.text_body.isascii() else "7bit")
        if row.html_body:
            msg.add_alternative(row.html_body, subtype="html", cte="quoted-printable")
        for spec in row.attachments or []:
            data, maintype, subtype, filename = _attachment(spec, data_dir)
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        _stable_boundaries(msg, row.message_id)
    except MessageBuildError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise MessageBuildError("message_invalid", f"No se pudo armar el correo: {str(exc)[:200]}") from None
    return msg


def _stable_boundaries(msg: EmailMessage, seed: str) -> None:
    """Boundaries derived from the Message-ID, so every attempt sends the very same bytes."""
    digest = hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()[:24]
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_timbrado_{digest}_{i}")


def recipients(message: EmailMessage) -> list[str]:
    out: list[str] = []
    for header in ("To", "Cc"):
        for value in message.get_all(header, []):
            out.extend(a.addr_spec for a in getattr(value, "addresses", ()) if a.addr_spec)
    return out


# ---------------------------------------------------------------------------------------- spool
_SAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def spool_filename(email_id: int, message_id: str) -> str:
    mid = _SAFE.sub("_", message_id.strip().strip("<>")).strip("._")[:150] or "sin-id"
    return f"{email_id}-{mid}.eml"


@dataclass(frozen=True, slots=True)
class SpoolTransport:
    """Writes ``<spool_dir>/<id>-<message id>.eml`` atomically (temporary file, fsync, rename)."""

    spool_dir: Path

    def _write(self, data: bytes, name: str) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        final = self.spool_dir / name
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.spool_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return final

    async def send(self, message: EmailMessage, *, email_id: int) -> None:
        name = spool_filename(email_id, str(message["Message-ID"] or ""))
        try:
            await asyncio.to_thread(self._write, message.as_bytes(), name)
        except OSError as exc:
            raise SendError(
                "spool_write_failed", f"No se pudo escribir en el spool: {exc.strerror}", permanent=False
            ) from None


# ---------------------------------------------------------------------------------------- SMTP
@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool
    start_tls: bool | None  # None: when the server offers it
    user: str
    password: str = field(repr=False)

    @classmethod
    def from_url(cls, url: str, password: str = "") -> SmtpTarget:
        """``smtp[s]://[user[:password]@]host[:port][?starttls=required|auto|no]`` (userinfo percent-encoded)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SendError("smtp_url", "La URL SMTP debe ser smtp://usuario@servidor:587.", permanent=True)
        use_tls = scheme == "smtps"
        mode = (parse_qs(parts.query).get("starttls") or ["auto"])[0].lower()
        start_tls: bool | None = None
        if use_tls or mode in ("no", "off", "0", "false"):
            start_tls = False
        elif mode in ("required", "yes", "on", "1", "true"):
            start_tls = True
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_tls else 587),
            use_tls=use_tls,
            start_tls=start_tls,
            user=unquote(parts.username or ""),
            password=unquote(parts.password) if parts.password else password,
        )


def classify_smtp_error(exc: BaseException) -> SendError:
    """Map an aiosmtplib/OS error to a :class:`SendError` (5xx permanent, everything else temporary)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [e.code for e in exc.recipients]
        permanent = bool(codes) and all(c >= 500 for c in codes)
        detail = "; ".join(f"{e.recipient}: {e.code} {e.message}"[:150] for e in exc.recipients[:5])
        return SendError(
            "smtp_recipients_refused",
            f"El servidor rechazó los destinatarios ({detail}).",
            permanent=permanent,
            smtp_code=codes[0] if codes else None,
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # A wrong credential is fixed by an operator, not by giving up on every queued e-mail.
        return SendError(
            "smtp_auth_failed",
            f"El servidor SMTP rechazó la autenticación ({exc.code}).",
            permanent=False,
            smtp_code=exc.code,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        permanent = exc.code >= 500
        return SendError(
            "smtp_rejected" if permanent else "smtp_temporary",
            f"El servidor SMTP respondió {exc.code}: {str(exc.message)[:200]}",
            permanent=permanent,
            smtp_code=exc.code,
        )
    if isinstance(exc, OAuth2Error):
        return SendError(exc.code, exc.message, permanent=False)
    return SendError(
        "smtp_unavailable", f"No se pudo entregar al servidor SMTP ({type(exc).__name__}).", permanent=False
    )


class SmtpTransport:
    def __init__(
        self,
        target: SmtpTarget,
        *,
        oauth: OAuth2TokenProvider | None = None,
        timeout: float = 60.0,
        tls_context: Any = None,
        local_hostname: str | None = None,
    ) -> None:
        self.target = target
        self.oauth = oauth
        self.timeout = timeout
        self.tls_context = tls_context
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SmtpTransport({self.target.host}:{self.target.port}, user={self.target.user!r})"

    async def send(self, message: EmailMessage, *, email_id: int) -> None:
        t = self.target
        kwargs: dict[str, Any] = {}
        if t.user and self.oauth is not None:
            kwargs["username"] = t.user
            kwargs["oauth_token_generator"] = self.oauth.token
        elif t.user and t.password:
            kwargs["username"] = t.user
            kwargs["password"] = t.password
        client = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            use_tls=t.use_tls,
            start_tls=t.start_tls,
            timeout=self.timeout,
            tls_context=self.tls_context,
            local_hostname=self.local_hostname,
            **kwargs,
        )
        try:
            async with client:
                errors, _ = await client.send_message(message)
        except (aiosmtplib.SMTPException, OAuth2Error, OSError, TimeoutError) as exc:
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and self.oauth is not None:
                self.oauth.invalidate()
            raise classify_smtp_error(exc) from None
        if errors:
            refused = ", ".join(f"{rcpt} ({resp.code})" for rcpt, resp in list(errors.items())[:5])
            log.warning("Correo %s: el servidor rechazó a %s; los demás destinatarios lo recibieron", email_id, refused)


def transport_from_settings(settings: Settings, *, oauth: OAuth2TokenProvider | None = None) -> Transport:
    """SMTP when ``smtp_url`` is set, else the spool folder (embedded default)."""
    if not settings.smtp_url:
        return SpoolTransport(settings.spool_dir)
    target = SmtpTarget.from_url(settings.smtp_url, settings.smtp_password)
    if settings.mail_auth == "xoauth2" and oauth is None:
        oauth = OAuth2TokenProvider(OAuth2Config.from_settings(settings))
    return SmtpTransport(target, oauth=oauth if settings.mail_auth == "xoauth2" else None)


# ---------------------------------------------------------------------------------------- job
async def _record(db: Database, email_id: int, values: dict[str, Any]) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.id == email_id, OutboundEmail.status != "sent")
            .values(attempts=OutboundEmail.attempts + 1, **values)
            .execution_options(synchronize_session=False)
        )


def make_send_handler(
    db: Database,
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    oauth: OAuth2TokenProvider | None = None,
) -> Handler:
    """The ``email.send`` job handler (payload ``{"email_id": id}``)."""
    chosen = transport or transport_from_settings(settings, oauth=oauth)
    now = (clock or SystemClock()).now

    async def handle(ctx: JobContext) -> None:
        email_id = ctx.payload.get("email_id")
        if not isinstance(email_id, int) or isinstance(email_id, bool):
            raise PermanentJobError("email.send necesita un email_id entero")
        async with db.session() as session:
            row = await session.get(OutboundEmail, email_id)
        if row is None:
            raise PermanentJobError(f"no existe el correo {email_id}")
        if row.status == "sent":
            log.info("Correo %s ya enviado; no se reenvía", email_id)
            return
        try:
            message = build_message(row, settings.data_dir)
            await chosen.send(message, email_id=email_id)
        except SendError as exc:
            # The last temporary failure makes the job dead: the row says so too.
            status = "failed" if exc.permanent or ctx.is_last_attempt else "queued"
            await _record(db, email_id, {"status": status, "last_error": f"[{exc.code}] {exc.message}"[:2000]})
            if exc.permanent:
                log.error("Correo %s no se pudo entregar: %s", email_id, exc.message)
                raise PermanentJobError(exc.message) from None
            log.warning("Correo %s: envío pospuesto (%s)", email_id, exc.message)
            raise
        await _record(db, email_id, {"status": "sent", "sent_at": now(), "last_error": None})
        log.info("Correo %s enviado (%s)", email_id, row.message_id)

    return handle
