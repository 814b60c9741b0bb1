"""The IMAP inbox (``imap://`` and ``imaps://``): imapclient in a dedicated thread.

One pass: SELECT the mailbox, read UIDVALIDITY, ask the sink for the last recorded UID, then for the
messages above it fetch ``RFC822.SIZE`` first (oversized mail is recorded as a failure and
quarantined without downloading it) and ``BODY.PEEK[]`` in small batches, handed to the sink in UID
order.  While the event loop records one batch, the thread already downloads the next one.

Processed messages go to ``Procesados``, unprocessable ones (or after ``max_attempts`` failures)
to ``Fallidos``: MOVE when the server has it, else COPY + ``\\Deleted`` + ``UID EXPUNGE`` of exactly
those UIDs (without UIDPLUS the copies stay flagged and are skipped).  Nothing is ever deleted
otherwise.  A failing message stops the pass so the recorded position never jumps over it.
Messages at or below the recorded UID that are still in the mailbox (a crash between recording
and moving) are moved to ``Procesados`` without being recorded again.  A new UIDVALIDITY makes the
sink answer 0, so everything is handed again and the sink deduplicates it.

Between passes the thread waits in IDLE (re-issued every ``idle_seconds``) or, when the server has
no IDLE or IDLE misbehaves, polls every ``poll_seconds``.  Lost connections are re-opened with
capped exponential backoff and jitter; repeated authentication failures stop the source with
:class:`mail.watcher.InboxAuthError` instead of hammering the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import os
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from core.inbox.ports import IngestOutcome, MailboxPosition, MailSink
from core.settings import Settings
from mail.oauth2 import OAuth2Config, OAuth2Error, OAuth2TokenProvider
from mail.watcher import InboxAuthError, InboxConfigError, WatcherStats, backoff

log = logging.getLogger("timbrado.mail.imap")

T = TypeVar("T")

#: Errors meaning "the connection is gone": reconnect.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    socket.timeout,
    ssl.SSLError,
    IMAPClientAbortError,
    imaplib.IMAP4.abort,
)


class _Stopped(Exception):
    """The watcher was asked to stop."""


@dataclass(frozen=True, slots=True)
class ImapTarget:
    host: str
    port: int
    use_ssl: bool
    starttls: bool
    user: str
    password: str = field(repr=False)
    mailbox: str = "INBOX"

    @classmethod
    def from_url(cls, url: str, password: str = "") -> ImapTarget:
        """``imap[s]://user[:password]@host[:port]/Mailbox[?starttls=no]``; user/password percent-encoded."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("imap", "imaps") or not parts.hostname:
            raise InboxConfigError("inbox_url", "La URL del buzón debe ser imap://usuario@servidor/Carpeta.")
        if not parts.username:
            raise InboxConfigError("inbox_user", "Falta el usuario en la URL del buzón IMAP.")
        use_ssl = scheme == "imaps"
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        starttls = not use_ssl and query.get("starttls", "auto").lower() not in ("no", "0", "false", "off")
        mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(
            host=parts.hostname,
            port=parts.port or (993 if use_ssl else 143),
            use_ssl=use_ssl,
            starttls=starttls,
            user=unquote(parts.username),
            password=unquote(parts.password) if parts.password else password,
            mailbox=mailbox,
        )


@dataclass(slots=True)
class _BatchOutcome:
    processed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    halted: bool = False  # a message failed: do not go past it in this pass


class ImapSource:
    DEFAULT_BATCH_MESSAGES = 25
    DEFAULT_BATCH_BYTES = 4 * 1024 * 1024

    def __init__(
        self,
        target: ImapTarget,
        sink: MailSink,
        *,
        auth: Literal["password", "xoauth2"] = "password",
        oauth: OAuth2TokenProvider | None = None,
        max_message_bytes: int = 30 * 1024 * 1024,
        max_attempts: int = 3,
        processed_folder: str = "Procesados",
        failed_folder: str = "Fallidos",
        idle_seconds: float = 300.0,
        poll_seconds: float = 60.0,
        batch_messages: int = DEFAULT_BATCH_MESSAGES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        move_batch: int = 250,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        auth_max_failures: int = 3,
        timeout: float = 60.0,
        use_idle: bool = True,
        use_move: bool = True,
        progress_seconds: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        stats: WatcherStats | None = None,
    ) -> None:
        if auth == "xoauth2" and oauth is None:
            raise InboxConfigError("inbox_oauth2", "XOAUTH2 necesita la configuración OAuth2 (TIMBRADO_OAUTH2_*).")
        self.target = target
        self.sink = sink
        self.auth = auth
        self.oauth = oauth
        self.max_message_bytes = max_message_bytes
        self.max_attempts = max_attempts
        self.processed_folder = processed_folder
        self.failed_folder = failed_folder
        self.idle_seconds = idle_seconds
        self.poll_seconds = poll_seconds
        self.batch_messages = max(1, batch_messages)
        self.batch_bytes = batch_bytes
        self.move_batch = max(1, move_batch)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.auth_max_failures = auth_max_failures
        self.timeout = timeout
        self.use_idle = use_idle
        self.use_move = use_move
        self.progress_seconds = progress_seconds
        self.ssl_context = ssl_context
        self.stats = stats or WatcherStats()
        self._rng = random.Random()
        self._idle_broken = False
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: IMAPClient | None = None
        self._folders: dict[str, str] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        sink: MailSink,
        *,
        oauth: OAuth2TokenProvider | None = None,
        stats: WatcherStats | None = None,
        **options: Any,
    ) -> ImapSource:
        target = ImapTarget.from_url(settings.inbox, settings.inbox_password)
        auth: Literal["password", "xoauth2"] = "xoauth2" if settings.mail_auth == "xoauth2" else "password"
        if auth == "xoauth2" and oauth is None:
            oauth = OAuth2TokenProvider(OAuth2Config.from_settings(settings))
        params: dict[str, Any] = {
            "max_message_bytes": settings.inbox_max_message_bytes,
            "max_attempts": settings.inbox_max_attempts,
            "processed_folder": settings.inbox_processed_folder,
            "failed_folder": settings.inbox_failed_folder,
            "idle_seconds": settings.inbox_idle_seconds,
            "poll_seconds": settings.inbox_poll_seconds,
        }
        params.update(options)
        return cls(target, sink, auth=auth, oauth=oauth, stats=stats, **params)

    @property
    def description(self) -> str:
        t = self.target
        return f"{'imaps' if t.use_ssl else 'imap'}://{t.host}:{t.port}/{t.mailbox}"

    # ------------------------------------------------------------------ thread <-> loop
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the event loop and wait for it (from the IMAP thread)."""
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        while True:
            try:
                return future.result(timeout=0.5)
            except TimeoutError:
                if self._loop.is_closed():
                    future.cancel()
                    raise _Stopped() from None

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # ------------------------------------------------------------------ public API
    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set.  Raises :class:`InboxAuthError` after repeated auth failures."""
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        done: asyncio.Future[None] = self._loop.create_future()

        def target() -> None:
            try:
                self._thread_main()
            except BaseException as exc:  # handed to the awaiting coroutine
                self._set_result(done, exc)
            else:
                self._set_result(done, None)

        thread = threading.Thread(target=target, name="timbrado-imap", daemon=True)
        thread.start()
        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {stopper, done}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._stop.set()
            stopper.cancel()
            await asyncio.shield(done)

    def _set_result(self, done: asyncio.Future[None], exc: BaseException | None) -> None:
        assert self._loop is not None

        def apply() -> None:
            if done.done():
                return
            if exc is None or isinstance(exc, _Stopped):
                done.set_result(None)
            else:
                done.set_exception(exc)

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(apply)

    async def run_once(self) -> int:
        """Connect, process what is there, disconnect (tests and the CLI)."""
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        return await asyncio.to_thread(self._once_in_thread)

    def _once_in_thread(self) -> int:
        client = self._connect()
        try:
            return self._pass(client)
        finally:
            self._disconnect(client)

    # ------------------------------------------------------------------ the thread
    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped()

    def _thread_main(self) -> None:
        failures = 0
        auth_failures = 0
        while not self._stop.is_set():
            client: IMAPClient | None = None
            try:
                client = self._connect()
                auth_failures = 0
                if failures:
                    log.info("IMAP %s: conexión restablecida", self.description)
                failures = 0
                self._session(client)
            except _Stopped:
                break
            except InboxAuthError:
                auth_failures += 1
                self.stats.auth_failures += 1
                if auth_failures >= self.auth_max_failures:
                    raise InboxAuthError(
                        "inbox_auth_failed",
                        f"El servidor IMAP {self.target.host} rechazó la autenticación de "
                        f"{self.target.user} {auth_failures} veces seguidas; revise las credenciales.",
                    ) from None
                delay = backoff(auth_failures, self.backoff_base, self.backoff_max, self._rng)
                log.error(
                    "IMAP %s: autenticación rechazada (%d/%d); reintento en %.1f s",
                    self.description,
                    auth_failures,
                    self.auth_max_failures,
                    delay,
                )
                with contextlib.suppress(_Stopped):
                    self._sleep(delay)
            except Exception as exc:  # connection lost, server error, or a bug: back off and reconnect
                failures += 1
                self.stats.reconnects += 1
                delay = backoff(failures, self.backoff_base, self.backoff_max, self._rng)
                expected = isinstance(exc, (*CONNECTION_ERRORS, IMAPClientError, OAuth2Error))
                log.warning(
                    "IMAP %s: conexión perdida (%s: %s); reintento en %.1f s",
                    self.description,
                    type(exc).__name__,
                    str(exc)[:200],
                    delay,
                    exc_info=not expected,
                )
                with contextlib.suppress(_Stopped):
                    self._sleep(delay)
            finally:
                if client is not None:
                    self._disconnect(client)

    def _connect(self) -> IMAPClient:
        t = self.target
        client = IMAPClient(t.host, port=t.port, ssl=t.use_ssl, ssl_context=self.ssl_context, timeout=self.timeout)
        try:
            if t.starttls and not t.use_ssl and client.has_capability("STARTTLS"):
                client.starttls(self.ssl_context or ssl.create_default_context())
            self._login(client)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self._client = client
        self._folders = {}
        return client

    def _login(self, client: IMAPClient) -> None:
        t = self.target
        try:
            if self.auth == "xoauth2":
                assert self.oauth is not None and self._loop is not None
                try:
                    token = self.oauth.token_from_thread(self._loop)
                except OAuth2Error as exc:
                    if exc.permanent:
                        raise InboxAuthError(exc.code, exc.message) from None
                    raise
                try:
                    client.oauth2_login(t.user, token)
                except LoginError:
                    self.oauth.invalidate()  # maybe revoked or expired early: ask for a new one next time
                    raise
            elif t.user.isascii() and t.password.isascii():
                client.login(t.user, t.password)
            else:
                client.plain_login(t.user, t.password)  # SASL PLAIN is UTF-8; LOGIN is ASCII only
        except LoginError:
            raise InboxAuthError("inbox_auth_failed", "El servidor IMAP rechazó la autenticación.") from None

    def _disconnect(self, client: IMAPClient) -> None:
        if self._client is client:
            self._client = None
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(Exception):
            client.shutdown()

    def _session(self, client: IMAPClient) -> None:
        while not self._stop.is_set():
            handled = self._pass(client)
            self.stats.maybe_log(self.description, self.progress_seconds)
            if handled:
                # Mail that arrived during the pass may have been announced (EXISTS) inside the
                # MOVE/FETCH responses, and IDLE would not announce it again: look once more first.
                continue
            self._wait_for_mail(client)

    # ------------------------------------------------------------------ folders
    def _folder(self, client: IMAPClient, name: str) -> str:
        """The full name of a folder (personal namespace prefix applied), created when missing."""
        if name in self._folders:
            return self._folders[name]
        full = name
        with contextlib.suppress(IMAPClientError):
            if client.has_capability("NAMESPACE"):
                personal = client.namespace().personal
                if personal:
                    prefix = personal[0][0]
                    prefix = prefix.decode() if isinstance(prefix, bytes) else str(prefix)
                    if prefix and not name.startswith(prefix):
                        full = prefix + name
        if not client.folder_exists(full):
            try:
                client.create_folder(full)
                log.info("IMAP %s: carpeta %s creada", self.description, full)
            except IMAPClientError:
                if not client.folder_exists(full):
                    raise
        self._folders[name] = full
        return full

    def _move(self, client: IMAPClient, uids: Sequence[int], name: str) -> None:
        if not uids:
            return
        folder = self._folder(client, name)
        if self.use_move and client.has_capability("MOVE"):
            client.move(list(uids), folder)
            return
        client.copy(list(uids), folder)
        client.add_flags(list(uids), [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(list(uids))
        # without UIDPLUS an EXPUNGE would remove every \Deleted message, not only ours: leave them

    # ------------------------------------------------------------------ one pass
    def _pass(self, client: IMAPClient) -> int:
        mailbox = self.target.mailbox
        selected = client.select_folder(mailbox)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        last = self._call(self.sink.last_uid(mailbox, uidvalidity))
        uids = sorted(int(u) for u in client.search(["UNDELETED"]))
        leftovers = [u for u in uids if u <= last]
        fresh = [u for u in uids if u > last]
        if leftovers:
            log.info("IMAP %s: %d correos ya registrados siguen en el buzón; se mueven", mailbox, len(leftovers))
            self._move(client, leftovers, self.processed_folder)
            self.stats.moved_processed += len(leftovers)
        handled = 0
        if fresh:
            handled = self._process(client, mailbox, uidvalidity, fresh)
        self.stats.passes += 1
        return handled

    def _sizes(self, client: IMAPClient, uids: list[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for i in range(0, len(uids), 500):
            chunk = uids[i : i + 500]
            for uid, data in client.fetch(chunk, ["RFC822.SIZE"]).items():
                sizes[int(uid)] = int(data.get(b"RFC822.SIZE", 0))
        return sizes

    def _batches(self, uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
        batch: list[int] = []
        total = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if batch and (len(batch) >= self.batch_messages or total + size > self.batch_bytes):
                yield batch
                batch, total = [], 0
            batch.append(uid)
            total += size
        if batch:
            yield batch

    def _process(self, client: IMAPClient, mailbox: str, uidvalidity: int, uids: list[int]) -> int:
        sizes = self._sizes(client, uids)
        oversized = [u for u in uids if sizes.get(u, 0) > self.max_message_bytes]
        handled = 0
        for uid in oversized:
            position = MailboxPosition(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid)
            self._call(
                self.sink.record_failure(
                    None,
                    position,
                    f"mensaje de {sizes[uid]} bytes excede el máximo de {self.max_message_bytes}",
                )
            )
            self._move(client, [uid], self.failed_folder)
            self.stats.oversized += 1
            self.stats.quarantined += 1
            handled += 1
            log.warning("IMAP %s: UID %d (%d bytes) excede el máximo; enviado a cuarentena", mailbox, uid, sizes[uid])
        wanted = [u for u in uids if u in sizes and sizes[u] <= self.max_message_bytes]
        pending: Future[_BatchOutcome] | None = None
        done: list[int] = []  # recorded, moved to Procesados in few commands (crash-safe: see _pass)
        try:
            for batch in self._batches(wanted, sizes):
                if self._stop.is_set():
                    break
                bodies = self._fetch_bodies(client, batch)
                if pending is not None:
                    outcome = pending.result()
                    pending = None
                    handled += self._apply(client, outcome, done)
                    if outcome.halted:
                        return handled
                items = [(uid, bodies[uid]) for uid in batch if uid in bodies]
                del bodies
                pending = self._submit(self._ingest_batch(mailbox, uidvalidity, items))
                del items
            if pending is not None:
                outcome = pending.result()
                pending = None
                handled += self._apply(client, outcome, done)
        finally:
            if pending is not None:
                # the connection failed while the loop was recording: let it finish, then move on
                with contextlib.suppress(Exception):
                    pending.result()
            self._flush(client, done, force=True)
        return handled

    def _fetch_bodies(self, client: IMAPClient, batch: list[int]) -> dict[int, bytes]:
        data = client.fetch(batch, ["BODY.PEEK[]"])
        out: dict[int, bytes] = {}
        for uid, item in data.items():
            raw = item.get(b"BODY[]")
            if isinstance(raw, bytes | bytearray):
                out[int(uid)] = bytes(raw)
        return out

    def _apply(self, client: IMAPClient, outcome: _BatchOutcome, done: list[int]) -> int:
        done.extend(outcome.processed)
        self._move(client, outcome.failed, self.failed_folder)
        self.stats.quarantined += len(outcome.failed)
        self._flush(client, done)
        return len(outcome.processed) + len(outcome.failed)

    def _flush(self, client: IMAPClient, done: list[int], *, force: bool = False) -> None:
        if done and (force or len(done) >= self.move_batch):
            with contextlib.suppress(*CONNECTION_ERRORS) if force else contextlib.nullcontext():
                self._move(client, done, self.processed_folder)
                self.stats.moved_processed += len(done)
            done.clear()

    async def _ingest_batch(self, mailbox: str, uidvalidity: int, items: list[tuple[int, bytes]]) -> _BatchOutcome:
        """Runs on the event loop: hand the batch to the sink (one transaction), in UID order.

        The sink stops at the first message it could not record (``FAILED``): that one gets a
        failure counted; after ``max_attempts`` it is quarantined and the rest of the batch is
        handed again, otherwise the pass halts there so the recorded position never jumps over it.
        """
        outcome = _BatchOutcome()
        pending = [(raw, MailboxPosition(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid)) for uid, raw in items]
        while pending:
            failed = await _ingest_prefix(self.sink, pending, self.stats, outcome.processed, outcome.failed)
            if failed is None:
                return outcome
            index, error = failed
            if index >= len(pending):  # the sink stopped early without saying why: try again later
                outcome.halted = True
                return outcome
            raw, position = pending[index]
            self.stats.failures += 1
            log.error("IMAP %s: no se pudo registrar el UID %d: %s", mailbox, position.uid, error)
            attempts = await self.sink.record_failure(raw, position, error)
            if attempts < self.max_attempts:
                outcome.halted = True
                return outcome
            log.warning("IMAP %s: UID %d falló %d veces; enviado a cuarentena", mailbox, position.uid, attempts)
            outcome.failed.append(position.uid)
            pending = pending[index + 1 :]
        return outcome

    # ------------------------------------------------------------------ waiting
    def _wait_for_mail(self, client: IMAPClient) -> None:
        if self.use_idle and not self._idle_broken and client.has_capability("IDLE"):
            try:
                self._idle(client)
                return
            except CONNECTION_ERRORS:
                raise
            except IMAPClientError as exc:
                self._idle_broken = True
                log.warning(
                    "IMAP %s: IDLE no funciona (%s); se revisará cada %.0f s", self.description, exc, self.poll_seconds
                )
                raise  # the connection state is unknown after a broken IDLE: reconnect, then poll
        self._sleep(self.poll_seconds)
        client.noop()

    def _idle(self, client: IMAPClient) -> None:
        client.idle()
        deadline = time.monotonic() + self.idle_seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            responses = _idle_wait(client, min(0.5, remaining))
            if any(_is_change(r) for r in responses):
                break
        client.idle_done()
        if self._stop.is_set():
            raise _Stopped()


async def _ingest_prefix(
    sink: MailSink,
    pending: list[tuple[bytes, MailboxPosition]],
    stats: WatcherStats,
    processed: list[int],
    unprocessable: list[int],
) -> tuple[int, str] | None:
    """Hand ``pending`` to ``sink.ingest_batch`` and sort the results into ``processed`` and
    ``unprocessable`` (UIDs).  Returns None when every message was recorded, else the index of the
    message that was not (and why): nothing at or after that index was recorded.
    """
    try:
        results = await sink.ingest_batch(pending)
    except Exception as exc:  # the whole transaction failed: nothing of the batch was recorded
        log.exception("no se pudo registrar el lote que empieza en el UID %d", pending[0][1].uid)
        return 0, f"{type(exc).__name__}: {exc}"[:500]
    for index, ((raw, position), result) in enumerate(zip(pending, results, strict=False)):
        if result.outcome is IngestOutcome.FAILED:
            return index, result.detail or "error al registrar el mensaje"
        stats.record(result, len(raw))
        (unprocessable if result.outcome is IngestOutcome.UNPROCESSABLE else processed).append(position.uid)
    if len(results) < len(pending):
        return len(pending), "el lote no se registró completo"
    return None


def _idle_wait(client: IMAPClient, timeout: float) -> list[Any]:
    """Like ``idle_check`` but a closed connection raises instead of looking like silence."""
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return list(client.idle_check(timeout=0))
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    if not poller.poll(timeout * 1000):
        return []
    if _at_eof(sock):
        raise IMAPClientAbortError("socket error: EOF (el servidor cerró la conexión)")
    return list(client.idle_check(timeout=0))


def _at_eof(sock: socket.socket) -> bool:
    """Peek at the TCP stream (below TLS) without consuming it: b'' means the peer closed it."""
    with socket.socket(fileno=os.dup(sock.fileno())) as raw:
        try:
            return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True


def _is_change(response: Any) -> bool:
    """True for untagged responses that mean "the mailbox changed"; a BYE means the connection ends."""
    if not isinstance(response, tuple) or not response:
        return False
    if response[0] == b"BYE":
        raise IMAPClientAbortError("el servidor cerró la conexión (BYE)")
    return len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
