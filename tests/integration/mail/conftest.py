"""Fixtures for the mail driver tests: a private Dovecot, a test OAuth2 server, a recording sink."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition
from mail.parsing import parse_message
from tests.support.dovecot import DovecotServer, dovecot_unavailable_reason
from tests.support.oauth_server import OAuthServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EML_DIR = Path(__file__).resolve().parents[2] / "data" / "eml"
USER = "soporte@portaldeproveedores.example.mx"
PASSWORD = "contraseña-de-prueba"


def make_mail(n: int, *, subject: str = "Configuración del Módulo de Timbrado de complementos de pago") -> bytes:
    """A small distinct message with Message-ID ``<m{n}@test>``."""
    return (
        f"From: Cliente {n} <cliente{n}@ejemplo.mx>\r\n"
        f"To: {USER}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <m{n}@test>\r\n"
        "Date: Wed, 08 May 2024 09:15:00 -0600\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Mensaje número {n}.\r\n"
    ).encode()


def mid_of(raw: bytes) -> str:
    return parse_message(raw).dedup_key


@dataclass
class RecordingSink:
    """An in-memory :class:`core.inbox.ports.MailSink`: dedup by Message-ID (or raw hash), positions, failures.

    ``fail`` makes ``ingest`` raise for the messages it returns True for (a broken core);
    ``unprocessable`` makes it answer UNPROCESSABLE.
    """

    fail: Callable[[bytes], bool] = lambda raw: False
    unprocessable: Callable[[bytes], bool] = lambda raw: False
    delay: float = 0.0
    records: dict[str, MailboxPosition] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    failure_errors: list[str] = field(default_factory=list)
    ingest_calls: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    parse: bool = True

    async def last_uid(self, mailbox: str, uidvalidity: int) -> int:
        return self.positions.get((mailbox, uidvalidity), 0)

    def _key(self, raw: bytes) -> str:
        return mid_of(raw) if self.parse else "sha256:" + hashlib.sha256(raw).hexdigest()

    async def ingest(self, raw: bytes, position: MailboxPosition) -> IngestResult:
        self.ingest_calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail(raw):
            raise RuntimeError("fallo simulado del núcleo")
        key = self._key(raw)
        pos_key = (position.mailbox, position.uidvalidity)
        self.positions[pos_key] = max(self.positions.get(pos_key, 0), position.uid)
        if key in self.records:
            outcome = IngestOutcome.DUPLICATE
        elif self.unprocessable(raw):
            self.records[key] = position
            self.order.append(key)
            outcome = IngestOutcome.UNPROCESSABLE
        else:
            self.records[key] = position
            self.order.append(key)
            outcome = IngestOutcome.NEW_REQUEST
        self.outcomes[outcome.value] += 1
        return IngestResult(outcome=outcome)

    async def ingest_batch(self, items: Sequence[tuple[bytes, MailboxPosition]]) -> list[IngestResult]:
        """The batch contract: stop at the first message that raises, answered FAILED."""
        self.batch_sizes.append(len(items))
        results: list[IngestResult] = []
        for raw, position in items:
            try:
                results.append(await self.ingest(raw, position))
            except Exception as exc:
                results.append(IngestResult(IngestOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"))
                break
        return results

    async def record_failure(self, raw: bytes | None, position: MailboxPosition, error: str) -> int:
        key = self._key(raw) if raw is not None else f"pos:{position.mailbox}:{position.uidvalidity}:{position.uid}"
        self.failures[key] += 1
        self.failure_errors.append(error)
        return self.failures[key]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def oauth_server() -> Iterator[OAuthServer]:
    server = OAuthServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dovecot(oauth_server: OAuthServer) -> Iterator[DovecotServer]:
    server = start_dovecot(oauth_server)
    try:
        yield server
    finally:
        server.cleanup()


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` (event-driven tests still need a bound; this is not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., asyncio.Task[None]]]:
    """Start sources in background tasks; every one is stopped (and awaited) at teardown."""
    started: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(source: object) -> asyncio.Task[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(stop))  # type: ignore[attr-defined]
        task.stop_event = stop  # type: ignore[attr-defined]
        started.append((stop, task))
        return task

    yield start
    for stop, _ in started:
        stop.set()
    for _, task in started:
        with contextlib.suppress(Exception):  # a test may expect the failure it already checked
            await asyncio.wait_for(task, 30)


async def stop_task(task: asyncio.Task[None]) -> None:
    task.stop_event.set()  # type: ignore[attr-defined]
    await asyncio.wait_for(task, 30)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cert))
        return ctx

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 / localhost (its own trust anchor)."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


def start_dovecot(oauth_server: OAuthServer, **kwargs: object) -> DovecotServer:
    reason = dovecot_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"Dovecot is required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    server = DovecotServer({USER: PASSWORD}, introspection_url=oauth_server.introspection_url, **kwargs)  # type: ignore[arg-type]
    server.start()
    return server
