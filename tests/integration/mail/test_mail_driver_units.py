"""Pure pieces of the mail driver: URL parsing, backoff bounds, IDLE response classification."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient.exceptions import IMAPClientAbortError

from mail.inbox_imap import ImapTarget, _is_change
from mail.watcher import InboxConfigError, WatcherStats, _describe, backoff


def test_imap_url_with_encoded_userinfo_port_and_mailbox() -> None:
    t = ImapTarget.from_url("imaps://soporte%40ejemplo.mx:p%40ss%3Aw@imap.ejemplo.mx:1993/Soporte%20%C3%91")
    assert (t.host, t.port, t.use_ssl, t.starttls) == ("imap.ejemplo.mx", 1993, True, False)
    assert (t.user, t.password, t.mailbox) == ("soporte@ejemplo.mx", "p@ss:w", "Soporte Ñ")
    assert "p@ss" not in repr(t)


def test_imap_url_defaults_and_password_fallback() -> None:
    t = ImapTarget.from_url("imap://u@host", "desde-settings")
    assert (t.port, t.mailbox, t.password, t.starttls) == (143, "INBOX", "desde-settings", True)
    assert ImapTarget.from_url("imap://u@host/INBOX?starttls=no").starttls is False


@pytest.mark.parametrize("url", ["imap://host/INBOX", "pop3://u@host", "imap:///INBOX"])
def test_unusable_imap_urls_are_config_errors(url: str) -> None:
    with pytest.raises(InboxConfigError):
        ImapTarget.from_url(url)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.floats(min_value=0.01, max_value=10),
    st.floats(min_value=1, max_value=600),
)
def test_backoff_is_positive_and_capped(attempt: int, base: float, cap: float) -> None:
    delay = backoff(attempt, base, cap, random.Random(attempt))
    assert 0 < delay <= cap
    assert delay >= min(cap, base * 2 ** min(attempt - 1, 62)) / 2


def test_idle_responses_that_mean_new_mail() -> None:
    assert _is_change((3, b"EXISTS"))
    assert _is_change((1, b"RECENT"))
    assert not _is_change((b"OK", b"Still here"))
    assert not _is_change((2, b"FETCH", (b"FLAGS", ())))
    with pytest.raises(IMAPClientAbortError):
        _is_change((b"BYE", b"Server shutting down"))


def test_described_urls_never_carry_credentials() -> None:
    assert _describe("imaps://u%40x:secreto@imap.x.mx/INBOX") == "imaps://imap.x.mx/INBOX"
    assert _describe("maildir:/var/inbox") == "maildir:/var/inbox"


def test_progress_is_logged_only_when_something_happened(caplog: pytest.LogCaptureFixture) -> None:
    stats = WatcherStats()
    with caplog.at_level("INFO"):
        stats.maybe_log("x", every=0, force=True)
        assert caplog.records == []
        stats.outcomes["new_request"] += 2
        stats.maybe_log("x", every=0, force=True)
    assert len(caplog.records) == 1 and "2 correos" in caplog.records[0].getMessage()
