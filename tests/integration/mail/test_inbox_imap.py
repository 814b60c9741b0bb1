"""The IMAP source against a real Dovecot on loopback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from core.inbox.ports import MailboxPosition
from core.settings import Settings
from mail.inbox_imap import ImapSource, ImapTarget
from mail.oauth2 import OAuth2Config, OAuth2TokenProvider
from mail.watcher import InboxAuthError, run_watcher
from tests.integration.mail.conftest import PASSWORD, USER, RecordingSink, make_mail, mid_of, stop_task, wait_until
from tests.support.dovecot import DovecotServer
from tests.support.oauth_server import OAuthServer

FAST: dict[str, Any] = {"idle_seconds": 0.5, "poll_seconds": 0.2, "backoff_base": 0.05, "backoff_max": 0.5}


def source_for(dovecot: DovecotServer, sink: RecordingSink, mailbox: str = "INBOX", **options: Any) -> ImapSource:
    target = ImapTarget.from_url(dovecot.url(mailbox=mailbox), PASSWORD)
    assert target.mailbox == mailbox
    return ImapSource(target, sink, **{**FAST, **options})


async def listing(dovecot: DovecotServer, mailbox: str) -> list[str]:
    return [mid_of(raw) for raw in await asyncio.to_thread(dovecot.list, mailbox)]


async def test_new_mail_is_handed_in_uid_order_and_moved_to_procesados(dovecot: DovecotServer, sink, running) -> None:
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(5)])
    task = running(source_for(dovecot, sink))
    await wait_until(lambda: len(sink.records) == 5)
    await wait_until(lambda: dovecot.uids("INBOX") == [])
    await stop_task(task)
    assert sink.order == [f"mid:m{i}@test" for i in range(5)]
    assert await listing(dovecot, "Procesados") == [f"mid:m{i}@test" for i in range(5)]
    assert await listing(dovecot, "Fallidos") == []


async def test_mail_arriving_while_idling_is_processed(dovecot: DovecotServer, sink, running) -> None:
    source = source_for(dovecot, sink, idle_seconds=60)
    task = running(source)
    await wait_until(lambda: source.stats.passes >= 1)
    await asyncio.sleep(0.3)  # let the watcher enter IDLE
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    await wait_until(lambda: "mid:m1@test" in sink.records)
    await stop_task(task)


async def test_polling_is_used_when_idle_is_off(dovecot: DovecotServer, sink, running) -> None:
    task = running(source_for(dovecot, sink, use_idle=False))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(7))
    await wait_until(lambda: "mid:m7@test" in sink.records)
    await stop_task(task)
    assert await listing(dovecot, "Procesados") == ["mid:m7@test"]


async def test_restarting_the_watcher_processes_each_mail_exactly_once(dovecot: DovecotServer, sink, running) -> None:
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(3)])
    assert await source_for(dovecot, sink).run_once() == 3
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(3, 6)])
    assert await source_for(dovecot, sink).run_once() == 3
    assert await source_for(dovecot, sink).run_once() == 0
    assert sink.ingest_calls == 6
    assert len(await listing(dovecot, "Procesados")) == 6


async def test_mail_recorded_but_not_moved_before_a_crash_is_moved_without_recording_again(
    dovecot: DovecotServer, sink
) -> None:
    uid = await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    validity = await asyncio.to_thread(dovecot.uidvalidity, "INBOX")
    # the core recorded it (and its position), then the process died before the MOVE
    await sink.ingest(make_mail(1), MailboxPosition("INBOX", validity, uid or 1))
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(2))
    await source_for(dovecot, sink).run_once()
    assert sink.ingest_calls == 2
    assert sink.order == ["mid:m1@test", "mid:m2@test"]
    assert await listing(dovecot, "Procesados") == ["mid:m1@test", "mid:m2@test"]
    assert await listing(dovecot, "INBOX") == []


async def test_dovecot_restart_mid_run_reconnects_and_loses_nothing(dovecot: DovecotServer, sink, running) -> None:
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(2)])
    source = source_for(dovecot, sink, idle_seconds=30)
    task = running(source)
    await wait_until(lambda: len(sink.records) == 2)
    await asyncio.to_thread(dovecot.restart)
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(2, 4)])
    await wait_until(lambda: len(sink.records) == 4)
    await wait_until(lambda: dovecot.uids("INBOX") == [])
    await stop_task(task)
    assert source.stats.reconnects >= 1
    assert sink.ingest_calls == 4
    assert await listing(dovecot, "Procesados") == [f"mid:m{i}@test" for i in range(4)]


async def test_uidvalidity_change_rescans_and_the_sink_deduplicates(dovecot: DovecotServer, sink) -> None:
    box = "Soporte"
    await asyncio.to_thread(dovecot.append_many, box, [make_mail(1), make_mail(2)])
    old = await asyncio.to_thread(dovecot.uidvalidity, box)
    # both recorded under the old UIDVALIDITY, but still in the folder (crash before moving)
    await sink.ingest(make_mail(1), MailboxPosition(box, old, 1))
    await sink.ingest(make_mail(2), MailboxPosition(box, old, 2))
    new = await asyncio.to_thread(dovecot.recreate, box)
    assert new != old
    await asyncio.to_thread(dovecot.append, box, make_mail(3))
    await source_for(dovecot, sink, mailbox=box).run_once()
    assert sink.outcomes["duplicate"] == 2
    assert sink.order == ["mid:m1@test", "mid:m2@test", "mid:m3@test"]
    assert sink.positions[(box, new)] == 3
    assert sorted(await listing(dovecot, "Procesados")) == ["mid:m1@test", "mid:m2@test", "mid:m3@test"]


async def test_oversized_mail_is_quarantined_without_being_downloaded(dovecot: DovecotServer, sink) -> None:
    big = make_mail(1) + b"x" * 5000 + b"\r\n"
    await asyncio.to_thread(dovecot.append_many, "INBOX", [big, make_mail(2)])
    source = source_for(dovecot, sink, max_message_bytes=2000)
    await source.run_once()
    assert sink.ingest_calls == 1
    assert sink.order == ["mid:m2@test"]
    assert list(sink.failures) == [f"pos:INBOX:{await asyncio.to_thread(dovecot.uidvalidity, 'INBOX')}:1"]
    assert "excede" in sink.failure_errors[0]
    assert await listing(dovecot, "Fallidos") == ["mid:m1@test"]
    assert source.stats.oversized == 1


async def test_the_25_mb_message_is_processed(dovecot: DovecotServer, sink) -> None:
    from tests.data.eml.make_large import build_large_message

    raw, _ = build_large_message()
    await asyncio.to_thread(dovecot.append, "INBOX", raw)
    await source_for(dovecot, sink).run_once()
    assert sink.order == ["mid:large-25mb.20240508091500@gibajio.com.mx"]
    assert await asyncio.to_thread(dovecot.uids, "Procesados") == [1]


async def test_unprocessable_mail_goes_to_fallidos(dovecot: DovecotServer) -> None:
    sink = RecordingSink(unprocessable=lambda raw: b"<m2@test>" in raw)
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(1, 4)])
    await source_for(dovecot, sink).run_once()
    assert await listing(dovecot, "Fallidos") == ["mid:m2@test"]
    assert await listing(dovecot, "Procesados") == ["mid:m1@test", "mid:m3@test"]


async def test_a_failing_mail_is_retried_then_quarantined_and_never_skipped(dovecot: DovecotServer, running) -> None:
    sink = RecordingSink(fail=lambda raw: b"<m2@test>" in raw)
    await asyncio.to_thread(dovecot.append_many, "INBOX", [make_mail(i) for i in range(1, 4)])
    task = running(source_for(dovecot, sink, max_attempts=3))
    await wait_until(lambda: len(sink.records) == 2 and dovecot.uids("INBOX") == [])
    await stop_task(task)
    assert sink.failures["mid:m2@test"] == 3
    assert sink.order == ["mid:m1@test", "mid:m3@test"]  # m3 waited until m2 was quarantined
    assert await listing(dovecot, "Fallidos") == ["mid:m2@test"]
    assert await listing(dovecot, "Procesados") == ["mid:m1@test", "mid:m3@test"]


async def test_without_move_it_copies_and_expunges_only_its_own_uid(dovecot: DovecotServer, sink) -> None:
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    with dovecot.client() as imap:  # someone else's deleted-but-not-expunged message stays untouched
        imap.select_folder("INBOX")
        imap.add_flags([1], [b"\\Deleted"])
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(2))
    await source_for(dovecot, sink, use_move=False).run_once()
    assert sink.order == ["mid:m2@test"]
    assert await listing(dovecot, "INBOX") == ["mid:m1@test"]
    assert await listing(dovecot, "Procesados") == ["mid:m2@test"]


async def test_xoauth2_login_through_dovecots_oauth2_passdb(
    dovecot: DovecotServer, oauth_server: OAuthServer, sink
) -> None:
    refresh = oauth_server.add_refresh_token(USER)
    provider = OAuth2TokenProvider(
        OAuth2Config(
            token_url=oauth_server.token_url,
            client_id=oauth_server.state.client_id,
            client_secret=oauth_server.state.client_secret,
            refresh_token=refresh,
        )
    )
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    target = ImapTarget.from_url(dovecot.url())
    assert target.password == ""
    source = ImapSource(target, sink, auth="xoauth2", oauth=provider, **FAST)
    assert await source.run_once() == 1
    assert await source.run_once() == 0
    assert oauth_server.state.token_requests == 1  # cached between connections
    assert oauth_server.state.introspections >= 2  # Dovecot asked our endpoint each login
    assert "method=XOAUTH2" in dovecot.log_tail(200)


async def test_revoked_xoauth2_token_is_refreshed_on_the_next_login(
    dovecot: DovecotServer, oauth_server: OAuthServer, sink, running
) -> None:
    refresh = oauth_server.add_refresh_token(USER)
    cfg = OAuth2Config(oauth_server.token_url, oauth_server.state.client_id, oauth_server.state.client_secret, refresh)
    source = ImapSource(
        ImapTarget.from_url(dovecot.url()), sink, auth="xoauth2", oauth=OAuth2TokenProvider(cfg), **FAST
    )
    assert await source.run_once() == 0
    oauth_server.revoke_all()
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    task = running(source)
    await wait_until(lambda: "mid:m1@test" in sink.records)
    await stop_task(task)
    assert oauth_server.state.token_requests == 2
    assert source.stats.auth_failures == 1


async def test_bad_password_stops_after_n_tries_with_a_critical_alert(
    dovecot: DovecotServer, sink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(inbox_url=dovecot.url(), inbox_password="equivocada")
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO), pytest.raises(InboxAuthError) as info:
        await asyncio.wait_for(
            run_watcher(settings, sink, stop, backoff_base=0.01, backoff_max=0.05, auth_max_failures=3), 30
        )
    assert info.value.code == "inbox_auth_failed"
    assert "3 veces" in info.value.message
    assert dovecot.log_tail(200).count("auth failed") + dovecot.log_tail(200).count("Disconnected") >= 3
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "ALERTA" in critical[0].getMessage()
    assert "equivocada" not in caplog.text


async def test_password_in_the_url_userinfo_is_used_and_never_logged(
    dovecot: DovecotServer, sink, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    settings = Settings(inbox_url=dovecot.url(with_password=True), inbox_poll_seconds=0.2, inbox_idle_seconds=1)
    stop = asyncio.Event()
    with caplog.at_level(logging.DEBUG):
        task = asyncio.create_task(run_watcher(settings, sink, stop))
        await wait_until(lambda: "mid:m1@test" in sink.records)
        stop.set()
        stats = await asyncio.wait_for(task, 30)
    assert stats.outcomes["new_request"] == 1
    assert PASSWORD not in caplog.text
    assert "contrase" not in repr(ImapTarget.from_url(settings.inbox))


async def test_mailbox_and_folder_names_with_accents_and_spaces(dovecot: DovecotServer, sink) -> None:
    box = "Atención Clientes"
    await asyncio.to_thread(dovecot.append, box, make_mail(1))
    source = source_for(dovecot, sink, mailbox=box, processed_folder="Procesados Ñ", failed_folder="Fallidos Ñ")
    assert source.target.mailbox == box
    assert await source.run_once() == 1
    assert await listing(dovecot, "Procesados Ñ") == ["mid:m1@test"]
    assert await listing(dovecot, box) == []


async def test_xoauth2_configured_through_settings(dovecot: DovecotServer, oauth_server: OAuthServer, sink) -> None:
    settings = Settings(
        inbox_url=dovecot.url(),
        mail_auth="xoauth2",
        oauth2_token_url=oauth_server.token_url,
        oauth2_client_id=oauth_server.state.client_id,
        oauth2_client_secret=oauth_server.state.client_secret,
        oauth2_refresh_token=oauth_server.add_refresh_token(USER),
        inbox_idle_seconds=1,
    )
    await asyncio.to_thread(dovecot.append, "INBOX", make_mail(1))
    stop = asyncio.Event()
    task = asyncio.create_task(run_watcher(settings, sink, stop))
    await wait_until(lambda: "mid:m1@test" in sink.records)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert oauth_server.state.token_requests == 1
    assert "method=XOAUTH2" in dovecot.log_tail(100)
