"""The IMAP source against Dovecot variants: TLS, STARTTLS, no IDLE and no MOVE, broken IDLE."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from imapclient.exceptions import IMAPClientError

from mail.inbox_imap import ImapSource, ImapTarget
from tests.integration.mail.conftest import (
    PASSWORD,
    USER,
    RecordingSink,
    TlsFiles,
    make_mail,
    mid_of,
    start_dovecot,
    stop_task,
    wait_until,
)
from tests.support.oauth_server import OAuthServer

FAST: dict[str, Any] = {"idle_seconds": 0.5, "poll_seconds": 0.2, "backoff_base": 0.05, "backoff_max": 0.5}


async def test_imaps_with_a_verified_certificate(oauth_server: OAuthServer, tls_files: TlsFiles) -> None:
    server = start_dovecot(oauth_server, tls=(tls_files.cert, tls_files.key))
    try:
        await asyncio.to_thread(server.append, "INBOX", make_mail(1))
        sink = RecordingSink()
        target = ImapTarget.from_url(f"imaps://{USER}@127.0.0.1:{server.tls_port}/INBOX", PASSWORD)
        assert target.use_ssl
        source = ImapSource(target, sink, ssl_context=tls_files.client_context(), **FAST)
        assert await source.run_once() == 1
        untrusted = ImapSource(target, sink, **FAST)  # system trust store: our self-signed certificate is refused
        with pytest.raises(ssl.SSLError):
            await untrusted.run_once()
    finally:
        server.cleanup()


async def test_starttls_is_used_on_the_plain_port_when_offered(oauth_server: OAuthServer, tls_files: TlsFiles) -> None:
    server = start_dovecot(oauth_server, tls=(tls_files.cert, tls_files.key))
    try:
        sink = RecordingSink()
        source = ImapSource(
            ImapTarget.from_url(server.url(), PASSWORD), sink, ssl_context=tls_files.client_context(), **FAST
        )
        await source.run_once()
        assert any("method=PLAIN" in line and "TLS" in line for line in server.log_tail(50).splitlines())
    finally:
        server.cleanup()


async def test_without_idle_and_move_it_polls_and_copies(oauth_server: OAuthServer, running) -> None:
    server = start_dovecot(oauth_server, extra_config="imap_capability = IMAP4rev1 LITERAL+ UIDPLUS NAMESPACE")
    try:
        sink = RecordingSink()
        source = ImapSource(ImapTarget.from_url(server.url(), PASSWORD), sink, **FAST)
        task = running(source)
        await wait_until(lambda: source.stats.passes >= 1)
        await asyncio.to_thread(server.append, "INBOX", make_mail(1))
        await wait_until(lambda: "mid:m1@test" in sink.records)
        await wait_until(lambda: server.uids("INBOX") == [])
        await stop_task(task)
        assert [mid_of(r) for r in server.list("Procesados")] == ["mid:m1@test"]
        with server.client() as imap:  # the variant really lacks both, so COPY + UID EXPUNGE did the move
            assert not imap.has_capability("MOVE") and not imap.has_capability("IDLE")
    finally:
        server.cleanup()


class BrokenIdleSource(ImapSource):
    idle_calls = 0

    def _idle(self, client: Any) -> None:
        type(self).idle_calls += 1
        raise IMAPClientError("IDLE respondió BAD")


async def test_broken_idle_falls_back_to_polling(dovecot, running) -> None:
    sink = RecordingSink()
    source = BrokenIdleSource(ImapTarget.from_url(dovecot.url(), PASSWORD), sink, **FAST)
    task = running(source)
    await wait_until(lambda: source.stats.passes >= 2)  # reconnected after the broken IDLE, then polled
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    await wait_until(lambda: "mid:m1@test" in sink.records)
    await stop_task(task)
    assert BrokenIdleSource.idle_calls == 1
