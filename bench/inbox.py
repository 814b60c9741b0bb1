"""Inbox throughput: 1,000 mails (the .eml corpus, cycled, each with a unique Message-ID, plus the
25 MB message) appended to a private Dovecot, then:

  1. raw fetch: imapclient alone, SELECT + SEARCH + RFC822.SIZE + BODY.PEEK[] in the same batches
     the watcher uses (the baseline);
  2. the watcher end to end (``ImapSource.run_once``: sizes, fetch, hand to the sink, MOVE to
     Procesados) with the chosen sink;
  3. raw fetch again (from Procesados), so page-cache warm-up favours neither side: the faster of
     the two raw runs is the baseline.

Prints mails/s for each, the ratio watcher/raw (target >= 50%) and the process peak RSS
(target < 250 MB with the 25 MB message in the mix).

Usage: .venv/bin/python bench/inbox.py [--mails 1000] [--sink recording] [--no-large]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import re
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from core.inbox.ports import IngestOutcome, IngestResult, MailboxPosition, MailSink  # noqa: E402
from mail.inbox_imap import ImapSource, ImapTarget  # noqa: E402
from mail.parsing import parse_message  # noqa: E402
from tests.data.eml.make_large import build_large_message  # noqa: E402
from tests.support.dovecot import DovecotServer, dovecot_unavailable_reason  # noqa: E402

EML_DIR = ROOT / "tests" / "data" / "eml"
USER = "soporte@portaldeproveedores.example.mx"
PASSWORD = "bench"
_MID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def with_message_id(raw: bytes, mid: str) -> bytes:
    """Drop the header block's Message-ID lines and put a unique one first."""
    sep = raw.find(b"\r\n\r\n")
    if sep < 0:
        sep = raw.find(b"\n\n")
    head, body = (raw[:sep], raw[sep:]) if sep >= 0 else (raw, b"")
    head = _MID.sub(b"", head + b"\n")[:-1] if head else head
    return f"Message-ID: <{mid}>\r\n".encode() + head + body


def corpus(n: int, large: bool) -> list[bytes]:
    files = sorted(EML_DIR.glob("*.eml"))
    mails = [with_message_id(files[i % len(files)].read_bytes(), f"bench-{i}@bench.local") for i in range(n)]
    if large:
        raw, _ = build_large_message()
        mails[n // 2] = with_message_id(raw, f"bench-{n // 2}-large@bench.local")
    return mails


def append_corpus(url: str, n: int, large: bool) -> tuple[int, int]:
    target = ImapTarget.from_url(url, PASSWORD)
    mails = corpus(n, large)
    with IMAPClient(target.host, port=target.port, ssl=False) as imap:
        imap.login(target.user, PASSWORD)
        for raw in mails:
            imap.append("INBOX", raw)
    return len(mails), sum(len(m) for m in mails)


# ---------------------------------------------------------------------------------------- sinks
@dataclass
class MemorySink:
    """In-memory sink: deduplicate (raw hash, or ``mail.parsing`` when ``parse``), record the position."""

    parse: bool = False
    seen: set[str] = field(default_factory=set)
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    count: int = 0

    async def last_uid(self, mailbox: str, uidvalidity: int) -> int:
        return self.positions.get((mailbox, uidvalidity), 0)

    async def ingest(self, raw: bytes, position: MailboxPosition) -> IngestResult:
        key = parse_message(raw).dedup_key if self.parse else hashlib.sha256(raw).hexdigest()
        self.positions[(position.mailbox, position.uidvalidity)] = position.uid
        self.count += 1
        if key in self.seen:
            return IngestResult(IngestOutcome.DUPLICATE)
        self.seen.add(key)
        return IngestResult(IngestOutcome.NEW_REQUEST)

    async def ingest_batch(self, items: Sequence[tuple[bytes, MailboxPosition]]) -> list[IngestResult]:
        return [await self.ingest(raw, position) for raw, position in items]

    async def record_failure(self, raw: bytes | None, position: MailboxPosition, error: str) -> int:
        return 1


SinkFactory = Callable[[argparse.Namespace], Awaitable[tuple[MailSink, Callable[[], Awaitable[None]]]]]


async def _noop() -> None:
    return None


async def _recording(_: argparse.Namespace) -> tuple[MailSink, Callable[[], Awaitable[None]]]:
    return MemorySink(), _noop


async def _parsing(_: argparse.Namespace) -> tuple[MailSink, Callable[[], Awaitable[None]]]:
    return MemorySink(parse=True), _noop


async def _core(args: argparse.Namespace) -> tuple[MailSink, Callable[[], Awaitable[None]]]:
    """The real sink: parse, deduplicate, persist the request and queue its acknowledgement (SQLite file
    by default, or ``--db`` for PostgreSQL), with a client whose domain matches part of the corpus."""
    import tempfile

    from core.audit.service import Actor
    from core.clients import service as clients
    from core.clock import SystemClock
    from core.db import migrate
    from core.db.engine import Database, create_engine
    from core.enablement.service import EnablementConfig
    from mail.sink import CoreMailSink, RawMailStore

    tmp = tempfile.TemporaryDirectory()
    url = args.db or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    db = Database(create_engine(url))
    await migrate.upgrade(db.engine)
    clock = SystemClock()
    async with db.transaction() as session:
        await clients.create_client(
            session,
            name="Grupo ACME",
            rfc="GAC010101AB1",
            proveedores_plus=True,
            contacts=["@grupoacme.com.mx"],
            actor=Actor.system(),
            now=clock.now(),
        )
    sink = CoreMailSink(
        db,
        clock,
        EnablementConfig("soporte@timbrado.local", "timbrado.local", False),
        RawMailStore(Path(tmp.name) / "mail"),
    )

    async def close() -> None:
        await db.dispose()
        tmp.cleanup()

    return sink, close


#: "recording": the driver's own cost; "parsing": plus mail.parsing of every message; "core": the real
#: sink (parse, deduplicate, persist, queue the acknowledgement) -- the issue's "end to end".
SINKS: dict[str, SinkFactory] = {"recording": _recording, "parsing": _parsing, "core": _core}


# ---------------------------------------------------------------------------------------- runs
def raw_fetch(server: DovecotServer, mailbox: str, batch_messages: int, batch_bytes: int) -> tuple[int, int, float]:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with server.client() as imap:
        imap.select_folder(mailbox, readonly=True)
        uids = sorted(imap.search("ALL"))
        sizes: dict[int, int] = {}
        for i in range(0, len(uids), 500):
            for uid, data in imap.fetch(uids[i : i + 500], ["RFC822.SIZE"]).items():
                sizes[uid] = data[b"RFC822.SIZE"]
        count = total = 0
        batch: list[int] = []
        acc = 0
        for uid in [*uids, None]:
            if uid is not None and not (batch and (len(batch) >= batch_messages or acc + sizes[uid] > batch_bytes)):
                batch.append(uid)
                acc += sizes[uid]
                continue
            if batch:
                for item in imap.fetch(batch, ["BODY.PEEK[]"]).values():
                    body = item[b"BODY[]"]
                    digest.update(body[:64])
                    count += 1
                    total += len(body)
            batch, acc = ([uid], sizes[uid]) if uid is not None else ([], 0)
    return count, total, time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--sink", choices=sorted(SINKS), default="core")
    parser.add_argument("--db", default="", help="database URL for --sink core (default: a temporary SQLite file)")
    parser.add_argument("--no-large", action="store_true", help="leave the 25 MB message out")
    parser.add_argument("--batch-messages", type=int, default=ImapSource.DEFAULT_BATCH_MESSAGES)
    parser.add_argument("--batch-bytes", type=int, default=ImapSource.DEFAULT_BATCH_BYTES)
    args = parser.parse_args()
    reason = dovecot_unavailable_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2

    server = DovecotServer({USER: PASSWORD})
    server.start()
    try:
        # Build and append in a child process, so this process's peak RSS is the fetching and the watcher.
        t0 = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            count, total_bytes = pool.apply(append_corpus, (server.url(), args.mails, not args.no_large))
        print(
            f"appended {count} mails ({total_bytes / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s (child process)"
        )
        print(f"peak RSS before fetching       : {peak_rss_mb():.0f} MB")

        n1, b1, raw1 = await asyncio.to_thread(raw_fetch, server, "INBOX", args.batch_messages, args.batch_bytes)
        print(f"raw fetch (imapclient)         : {n1} mails in {raw1:.2f} s = {n1 / raw1:,.0f} mails/s")

        sink, close = await SINKS[args.sink](args)
        source = ImapSource(
            ImapTarget.from_url(server.url(), PASSWORD),
            sink,
            batch_messages=args.batch_messages,
            batch_bytes=args.batch_bytes,
        )
        t0 = time.perf_counter()
        handled = await source.run_once()
        e2e = time.perf_counter() - t0
        await close()
        print(
            f"watcher end to end ({args.sink:9s}): {handled} mails in {e2e:.2f} s = {handled / e2e:,.0f} mails/s "
            f"(moved {source.stats.moved_processed}, quarantined {source.stats.quarantined})"
        )

        n2, _, raw2 = await asyncio.to_thread(raw_fetch, server, "Procesados", args.batch_messages, args.batch_bytes)
        print(f"raw fetch again (Procesados)   : {n2} mails in {raw2:.2f} s = {n2 / raw2:,.0f} mails/s")
        remaining = await asyncio.to_thread(server.uids, "INBOX")

        best_raw = max(n1 / raw1, n2 / raw2)
        ratio = (handled / e2e) / best_raw
        rss = peak_rss_mb()
        print(f"ratio end to end / raw         : {ratio:.0%} (target >= 50%)")
        print(f"peak RSS                       : {rss:.0f} MB (target < 250 MB)")
        ok = handled == n1 and not remaining and ratio >= 0.5 and rss < 250
        print(f"left in INBOX: {len(remaining)}; data fetched {b1 / 1e6:.1f} MB; result: {'OK' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
