"""Outgoing mail: the ``email.send`` job handler against a real SMTP server (aiosmtpd) and the spool."""

from __future__ import annotations

import base64
import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from core.clock import FrozenClock
from core.db.engine import Database
from core.jobs.worker import JobContext, PermanentJobError
from core.notifications.models import OutboundEmail
from core.settings import Settings
from mail.oauth2 import OAuth2Config, OAuth2TokenProvider
from mail.sender import SendError, SmtpTarget, SmtpTransport, SpoolTransport, make_send_handler, spool_filename
from tests.support.oauth_server import OAuthServer

SMTP_USER = "envios@portaldeproveedores.example.mx"
SMTP_PASSWORD = "clave-smtp-ñ"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Recorder:
    """aiosmtpd handler: records messages; ``rcpt_codes``/``data_codes`` script answers per attempt."""

    messages: list[tuple[Envelope, EmailMessage, bytes]] = field(default_factory=list)
    rcpt_codes: list[str] = field(default_factory=list)
    data_codes: list[str] = field(default_factory=list)
    data_attempts: list[bytes] = field(default_factory=list)
    oauth: OAuthServer | None = None
    auth_seen: list[str] = field(default_factory=list)
    authenticated: list[bool] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_codes:
            code = self.rcpt_codes.pop(0)
            if not code.startswith("250"):
                return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        self.data_attempts.append(raw)
        self.authenticated.append(bool(session.authenticated))
        self.tls.append(session.ssl is not None)
        if self.data_codes:
            code = self.data_codes.pop(0)
            if not code.startswith("250"):
                return code
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope, msg, raw))
        return "250 Message accepted"

    async def auth_XOAUTH2(self, server: SMTPServer, args: list[str]) -> AuthResult:
        decoded = base64.b64decode(args[1]).decode()
        user = decoded.split("\x01")[0].removeprefix("user=")
        token = decoded.split("auth=Bearer ", 1)[1].split("\x01")[0]
        assert self.oauth is not None
        entry = self.oauth.state.access_tokens.get(token)
        ok = entry is not None and entry[0] == user
        self.auth_seen.append(f"XOAUTH2:{user}:{ok}")
        return AuthResult(success=ok, handled=False)


def authenticator(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword) and data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, auth_require_tls=False, authenticator=authenticator
    )
    controller.start()
    yield recorder, port
    controller.stop()


def settings_for(tmp_path: Path, port: int | None = None, **kw: Any) -> Settings:
    url = f"smtp://127.0.0.1:{port}" if port else ""
    return Settings(data_dir=tmp_path, smtp_url=url, **kw)


async def add_email(db: Database, created: datetime, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "message_id": "<TCP-000123.ack.1a2b3c@portaldeproveedores.example.mx>",
        "template": "request_received",
        "from_addr": "Soporte Timbrado <soporte@portaldeproveedores.example.mx>",
        "to_addrs": ["contabilidad@gibajio.com.mx"],
        "cc_addrs": ["tesoreria@gibajio.com.mx"],
        "subject": "Recibimos tu solicitud [TCP-000123] Configuración del Módulo de Timbrado",
        "text_body": "Hola,\nrecibimos tu solicitud TCP-000123.\nSaludos.\n",
        "html_body": "<p>Hola, recibimos tu solicitud <b>TCP-000123</b>.</p>",
        "in_reply_to": "<CAF=orig.123@mail.gmail.com>",
        "references": "<prev.1@gibajio.com.mx> <CAF=orig.123@mail.gmail.com>",
        "headers": {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
        "attachments": [],
        "status": "queued",
        "attempts": 0,
        "created_at": created,
    }
    values.update(overrides)
    async with db.transaction() as s:
        row = OutboundEmail(**values)
        s.add(row)
        await s.flush()
        return row.id


async def load(db: Database, email_id: int) -> OutboundEmail:
    async with db.session() as s:
        row = await s.get(OutboundEmail, email_id)
        assert row is not None
        return row


def ctx(email_id: int, attempt: int = 1) -> JobContext:
    return JobContext(id=1, kind="email.send", payload={"email_id": email_id}, attempt=attempt, idempotency_key="k")


async def test_the_delivered_message_has_the_exact_headers_threading_and_parts(
    database: Database, clock: FrozenClock, smtp: tuple[Recorder, int], tmp_path: Path
) -> None:
    recorder, port = smtp
    email_id = await add_email(database, clock.now() - timedelta(minutes=5))
    handler = make_send_handler(database, settings_for(tmp_path, port), clock=clock)
    await handler(ctx(email_id))
    assert len(recorder.messages) == 1
    envelope, msg, raw = recorder.messages[0]
    assert envelope.mail_from == "soporte@portaldeproveedores.example.mx"
    assert sorted(envelope.rcpt_tos) == ["contabilidad@gibajio.com.mx", "tesoreria@gibajio.com.mx"]
    assert msg["From"] == "Soporte Timbrado <soporte@portaldeproveedores.example.mx>"
    assert msg["To"] == "contabilidad@gibajio.com.mx"
    assert msg["Cc"] == "tesoreria@gibajio.com.mx"
    assert msg["Subject"] == "Recibimos tu solicitud [TCP-000123] Configuración del Módulo de Timbrado"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].lower()  # RFC 2047 on the wire
    assert msg["Message-ID"] == "<TCP-000123.ack.1a2b3c@portaldeproveedores.example.mx>"
    assert msg["In-Reply-To"] == "<CAF=orig.123@mail.gmail.com>"
    assert msg["References"] == "<prev.1@gibajio.com.mx> <CAF=orig.123@mail.gmail.com>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Date"].datetime == clock.now() - timedelta(minutes=5)
    assert "Bcc" not in msg
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert (
        text is not None
        and text.get_content().replace("\r\n", "\n") == "Hola,\nrecibimos tu solicitud TCP-000123.\nSaludos.\n"
    )
    assert html is not None and "<b>TCP-000123</b>" in html.get_content()
    row = await load(database, email_id)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, clock.now(), None)


async def test_an_already_sent_email_is_not_sent_again(
    database: Database, clock: FrozenClock, smtp: tuple[Recorder, int], tmp_path: Path
) -> None:
    recorder, port = smtp
    email_id = await add_email(database, clock.now())
    handler = make_send_handler(database, settings_for(tmp_path, port), clock=clock)
    await handler(ctx(email_id))
    await handler(ctx(email_id, attempt=2))
    assert len(recorder.messages) == 1
    assert (await load(database, email_id)).attempts == 1


async def test_a_4xx_answer_is_retried_and_the_retry_sends_the_same_message(
    database: Database, clock: FrozenClock, smtp: tuple[Recorder, int], tmp_path: Path
) -> None:
    recorder, port = smtp
    recorder.data_codes = ["451 4.3.0 Intente más tarde"]
    email_id = await add_email(database, clock.now())
    handler = make_send_handler(database, settings_for(tmp_path, port), clock=clock)
    with pytest.raises(SendError) as info:
        await handler(ctx(email_id))
    assert not info.value.permanent and info.value.smtp_code == 451
    row = await load(database, email_id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert "451" in (row.last_error or "")
    clock.advance(timedelta(minutes=1))
    await handler(ctx(email_id, attempt=2))
    first, second = recorder.data_attempts
    assert first == second  # byte for byte: same Message-ID, same Date, same boundary
    row = await load(database, email_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


async def test_a_5xx_answer_is_permanent_and_marks_the_email_failed(
    database: Database, clock: FrozenClock, smtp: tuple[Recorder, int], tmp_path: Path
) -> None:
    recorder, port = smtp
    recorder.rcpt_codes = ["550 5.1.1 Buzón inexistente", "550 5.1.1 Buzón inexistente"]
    email_id = await add_email(database, clock.now())
    handler = make_send_handler(database, settings_for(tmp_path, port), clock=clock)
    with pytest.raises(PermanentJobError):
        await handler(ctx(email_id))
    row = await load(database, email_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in (row.last_error or "")
    assert recorder.messages == []


async def test_one_refused_recipient_among_several_still_delivers_to_the_others(
    database: Database, clock: FrozenClock, smtp: tuple[Recorder, int], tmp_path: Path
) -> None:
    recorder, port = smtp
    recorder.rcpt_codes = ["550 5.1.1 Buzón inexistente", "250 OK"]
    email_id = await add_email(database, clock.now())
    await make_send_handler(database, settings_for(tmp_path, port), clock=clock)(ctx(email_id))
    assert len(recorder.messages) == 1
    assert (await load(database, email_id)).status == "sent"


async def test_an_unreachable_server_is_a_temporary_failure(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    email_id = await add_email(database, clock.now())
    handler = make_send_handler(database, settings_for(tmp_path, free_port()), clock=clock)
    with pytest.raises(SendError) as info:
        await handler(ctx(email_id))
    assert not info.value.permanent
    assert (await load(database, email_id)).status == "queued"


async def test_the_last_temporary_failure_marks_the_email_failed(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    email_id = await add_email(database, clock.now())
    handler = make_send_handler(database, settings_for(tmp_path, free_port()), clock=clock)
    last = JobContext(
        id=1, kind="email.send", payload={"email_id": email_id}, attempt=8, idempotency_key="k", max_attempts=8
    )
    with pytest.raises(SendError):
        await handler(last)
    row = await load(database, email_id)
    assert row.status == "failed"
    assert row.last_error


async def test_a_missing_row_or_bad_payload_is_permanent(database: Database, tmp_path: Path) -> None:
    handler = make_send_handler(database, settings_for(tmp_path))
    with pytest.raises(PermanentJobError):
        await handler(ctx(999_999))
    with pytest.raises(PermanentJobError):
        await handler(JobContext(id=1, kind="email.send", payload={"email_id": "1"}, attempt=1, idempotency_key="k"))


async def test_spool_mode_writes_one_eml_per_email_atomically(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    email_id = await add_email(database, clock.now())
    await make_send_handler(database, settings, clock=clock)(ctx(email_id))
    files = sorted(settings.spool_dir.iterdir())
    assert [f.name for f in files] == [f"{email_id}-TCP-000123.ack.1a2b3c@portaldeproveedores.example.mx.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["Message-ID"] == "<TCP-000123.ack.1a2b3c@portaldeproveedores.example.mx>"
    assert msg["Subject"] == "Recibimos tu solicitud [TCP-000123] Configuración del Módulo de Timbrado"
    assert (await load(database, email_id)).status == "sent"


def test_spool_file_names_are_sanitised() -> None:
    assert spool_filename(7, "<../../etc/passwd@x>") == "7-etc_passwd@x.eml"
    name = spool_filename(7, "<../../etc/passwd\r\n@x>")
    assert "/" not in name and "\r" not in name and "\n" not in name and name.startswith("7-")
    assert spool_filename(8, "") == "8-sin-id.eml"


async def test_attachments_are_read_from_the_data_dir_only(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rep.pdf").write_bytes(b"%PDF-1.7 prueba")
    ok = await add_email(
        database,
        clock.now(),
        attachments=[{"path": "docs/rep.pdf", "filename": "REP Ñ-1.pdf", "content_type": "application/pdf"}],
    )
    settings = settings_for(tmp_path)
    handler = make_send_handler(database, settings, clock=clock)
    await handler(ctx(ok))
    msg = email.message_from_bytes(next(settings.spool_dir.iterdir()).read_bytes(), policy=policy.default)
    [part] = list(msg.iter_attachments())
    assert part.get_filename() == "REP Ñ-1.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == b"%PDF-1.7 prueba"
    escape = await add_email(
        database,
        clock.now(),
        message_id="<esc@x>",
        attachments=[{"path": "../../etc/passwd"}],
    )
    with pytest.raises(PermanentJobError):
        await handler(ctx(escape))
    row = await load(database, escape)
    assert row.status == "failed" and "attachment_outside_data_dir" in (row.last_error or "")


async def test_header_injection_is_neutralised_and_reserved_headers_refused(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    handler = make_send_handler(database, settings, clock=clock)
    sneaky = await add_email(database, clock.now(), subject="Hola\r\nBcc: victima@ejemplo.mx", message_id="<s@x>")
    await handler(ctx(sneaky))
    raw = next(settings.spool_dir.iterdir()).read_bytes()
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert "Bcc" not in msg and msg["Subject"] == "Hola Bcc: victima@ejemplo.mx"
    bad = await add_email(database, clock.now(), headers={"From": "otro@x"}, message_id="<b@x>")
    with pytest.raises(PermanentJobError):
        await handler(ctx(bad))


async def test_smtp_password_authentication(database: Database, clock: FrozenClock, smtp, tmp_path: Path) -> None:
    recorder, port = smtp
    email_id = await add_email(database, clock.now())
    settings = Settings(
        data_dir=tmp_path,
        smtp_url=f"smtp://envios%40portaldeproveedores.example.mx@127.0.0.1:{port}",
        smtp_password=SMTP_PASSWORD,
    )
    await make_send_handler(database, settings, clock=clock)(ctx(email_id))
    assert len(recorder.messages) == 1
    assert recorder.authenticated == [True]
    wrong = SmtpTransport(SmtpTarget.from_url(f"smtp://{SMTP_USER}:equivocada@127.0.0.1:{port}"))
    with pytest.raises(SendError) as info:
        await wrong.send(EmailMessage(), email_id=1)
    assert info.value.code == "smtp_auth_failed" and not info.value.permanent
    assert "equivocada" not in str(info.value) and "equivocada" not in repr(wrong) + repr(wrong.target)


async def test_smtp_xoauth2_authentication(
    database: Database, clock: FrozenClock, smtp, oauth_server: OAuthServer, tmp_path: Path
) -> None:
    recorder, port = smtp
    recorder.oauth = oauth_server
    refresh = oauth_server.add_refresh_token(SMTP_USER)
    provider = OAuth2TokenProvider(
        OAuth2Config(oauth_server.token_url, oauth_server.state.client_id, oauth_server.state.client_secret, refresh)
    )
    transport = SmtpTransport(SmtpTarget.from_url(f"smtp://{SMTP_USER}@127.0.0.1:{port}"), oauth=provider)
    email_id = await add_email(database, clock.now())
    await make_send_handler(database, settings_for(tmp_path), transport=transport, clock=clock)(ctx(email_id))
    assert recorder.auth_seen == [f"XOAUTH2:{SMTP_USER}:True"]
    assert recorder.authenticated == [True]
    assert len(recorder.messages) == 1


def test_smtp_url_forms() -> None:
    t = SmtpTarget.from_url("smtps://u%40x.mx:p%3As@mail.x.mx")
    assert (t.host, t.port, t.use_tls, t.start_tls, t.user, t.password) == (
        "mail.x.mx",
        465,
        True,
        False,
        "u@x.mx",
        "p:s",
    )
    t = SmtpTarget.from_url("smtp://mail.x.mx?starttls=required", "pw")
    assert (t.port, t.use_tls, t.start_tls, t.password) == (587, False, True, "pw")
    assert SmtpTarget.from_url("smtp://mail.x.mx:25?starttls=no").start_tls is False
    assert SmtpTarget.from_url("smtp://mail.x.mx").start_tls is None


def test_spool_transport_leaves_no_temporary_files(tmp_path: Path) -> None:
    import asyncio

    msg = EmailMessage()
    msg["Message-ID"] = "<a@b>"
    msg.set_content("x")
    asyncio.run(SpoolTransport(tmp_path / "spool").send(msg, email_id=3))
    assert [p.name for p in (tmp_path / "spool").iterdir()] == ["3-a@b.eml"]


async def test_starttls_when_the_server_requires_it(
    database: Database, clock: FrozenClock, tls_files, tmp_path: Path
) -> None:
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        target = SmtpTarget.from_url(f"smtp://{SMTP_USER}@127.0.0.1:{port}?starttls=required", SMTP_PASSWORD)
        transport = SmtpTransport(target, tls_context=tls_files.client_context())
        email_id = await add_email(database, clock.now())
        await make_send_handler(database, settings_for(tmp_path), transport=transport, clock=clock)(ctx(email_id))
        assert recorder.tls == [True] and recorder.authenticated == [True]
    finally:
        controller.stop()


def test_transport_follows_settings(tmp_path: Path) -> None:
    from mail.sender import transport_from_settings

    spool = transport_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(spool, SpoolTransport) and spool.spool_dir == tmp_path / "spool"
    oauth = transport_from_settings(
        Settings(
            data_dir=tmp_path,
            smtp_url="smtp://u%40x.mx@smtp.x.mx:587",
            mail_auth="xoauth2",
            oauth2_token_url="http://t/token",
            oauth2_client_id="c",
            oauth2_refresh_token="r",
        )
    )
    assert isinstance(oauth, SmtpTransport) and oauth.oauth is not None and oauth.target.user == "u@x.mx"
    plain = transport_from_settings(Settings(data_dir=tmp_path, smtp_url="smtps://u@smtp.x.mx", smtp_password="pw"))
    assert isinstance(plain, SmtpTransport) and plain.oauth is None and plain.target.password == "pw"
