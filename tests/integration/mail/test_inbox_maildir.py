"""The embedded Maildir source (the default inbox) on a real directory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from core.inbox.ports import MailboxPosition
from core.settings import Settings
from mail.inbox_maildir import MaildirSource
from mail.watcher import InboxConfigError, build_source, run_watcher
from tests.integration.mail.conftest import EML_DIR, RecordingSink, make_mail, mid_of, wait_until


def drop(root: Path, name: str, raw: bytes, sub: str = "new", mtime: float | None = None) -> Path:
    """Deliver like an MDA: write into tmp/, then rename into new/ (or cur/)."""
    for d in ("tmp", "new", "cur"):
        (root / d).mkdir(parents=True, exist_ok=True)
    tmp = root / "tmp" / name
    tmp.write_bytes(raw)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    target = root / sub / name
    tmp.rename(target)
    return target


def folder(root: Path, name: str) -> list[str]:
    base = root / f".{name}"
    if not base.exists():
        return []
    files = sorted((base / "cur").iterdir()) + sorted((base / "new").iterdir())
    return sorted(mid_of(p.read_bytes()) for p in files)


def leftover(root: Path) -> list[str]:
    return sorted(p.name for sub in ("new", "cur") if (root / sub).exists() for p in (root / sub).iterdir())


async def test_missing_maildir_is_created_and_mail_in_new_and_cur_is_processed(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    sink = RecordingSink()
    source = MaildirSource(root, sink)
    assert await source.run_once() == 0
    assert all((root / d).is_dir() for d in ("new", "cur", "tmp"))
    drop(root, "1.a.host", make_mail(1), mtime=1_000_000)
    drop(root, "2.b.host:2,S", make_mail(2), sub="cur", mtime=1_000_001)
    assert await source.run_once() == 2
    assert sink.order == ["mid:m1@test", "mid:m2@test"]
    assert folder(root, "Procesados") == ["mid:m1@test", "mid:m2@test"]
    assert (root / ".Procesados" / "maildirfolder").exists()
    assert leftover(root) == []
    names = sorted(p.name for p in (root / ".Procesados" / "cur").iterdir())
    assert names == ["1.a.host:2,S", "2.b.host:2,S"]


async def test_a_crash_between_recording_and_moving_is_deduplicated(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    sink = RecordingSink()
    drop(root, "1.a.host", make_mail(1))
    await sink.ingest(make_mail(1), MailboxPosition(f"maildir:{root}", 0, 0))  # recorded, then the crash
    await MaildirSource(root, sink).run_once()
    await MaildirSource(root, sink).run_once()
    assert sink.order == ["mid:m1@test"]
    assert sink.outcomes["duplicate"] == 1
    assert folder(root, "Procesados") == ["mid:m1@test"]


async def test_oversized_unprocessable_and_repeatedly_failing_mail_goes_to_fallidos(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    sink = RecordingSink(
        fail=lambda raw: b"<m2@test>" in raw,
        unprocessable=lambda raw: b"<m3@test>" in raw,
    )
    drop(root, "1.big", make_mail(1) + b"x" * 5000)
    drop(root, "2.fails", make_mail(2))
    drop(root, "3.unprocessable", make_mail(3))
    drop(root, "4.ok", make_mail(4))
    source = MaildirSource(root, sink, max_message_bytes=2000, max_attempts=3)
    for _ in range(3):
        await source.run_once()
    assert folder(root, "Fallidos") == ["mid:m1@test", "mid:m2@test", "mid:m3@test"]
    assert folder(root, "Procesados") == ["mid:m4@test"]
    assert sink.failures["mid:m2@test"] == 3
    assert source.stats.oversized == 1
    assert leftover(root) == []
    # nothing is ever deleted: 4 messages in, 4 messages out
    assert len(list((root / ".Fallidos" / "cur").iterdir())) + len(list((root / ".Procesados" / "cur").iterdir())) == 4


async def test_every_corpus_mail_is_handed_over_and_none_is_lost(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    sink = RecordingSink(parse=False)  # key by raw hash: the corpus has a duplicated Message-ID on purpose
    files = sorted(EML_DIR.glob("*.eml"))
    assert len(files) >= 40
    for i, path in enumerate(files):
        drop(root, f"{i}.corpus.host", path.read_bytes())
    await MaildirSource(root, sink).run_once()
    assert sink.ingest_calls == len(files)
    assert leftover(root) == []
    assert len(list((root / ".Procesados" / "cur").iterdir())) == len(files)


async def test_default_settings_watch_the_embedded_maildir_and_pick_up_dropped_mail(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.inbox == f"maildir:{tmp_path / 'inbox'}"
    sink = RecordingSink()
    stop = asyncio.Event()
    task = asyncio.create_task(run_watcher(settings, sink, stop, poll_seconds=0.05))
    await wait_until(lambda: (tmp_path / "inbox" / "new").is_dir())
    drop(tmp_path / "inbox", "1.dropped", make_mail(1))
    await wait_until(lambda: "mid:m1@test" in sink.records)
    stop.set()
    stats = await asyncio.wait_for(task, 10)
    assert stats.outcomes["new_request"] == 1
    await wait_until(lambda: folder(tmp_path / "inbox", "Procesados") == ["mid:m1@test"])


async def test_a_broken_sink_backs_off_and_the_mail_stays_until_it_recovers(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    broken = {"on": True}

    class FlakySink(RecordingSink):
        async def record_failure(self, raw: bytes | None, position: MailboxPosition, error: str) -> int:
            if broken["on"]:
                raise ConnectionError("base de datos caída")
            return await super().record_failure(raw, position, error)

    sink = FlakySink(fail=lambda raw: broken["on"])
    drop(root, "1.x", make_mail(1))
    source = MaildirSource(root, sink, poll_seconds=0.05, backoff_base=0.05, backoff_max=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    await wait_until(lambda: sink.ingest_calls >= 3)
    assert leftover(root) == ["1.x"]  # never quarantined while the database itself is down
    broken["on"] = False
    await wait_until(lambda: "mid:m1@test" in sink.records)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert folder(root, "Procesados") == ["mid:m1@test"]


def test_unknown_inbox_scheme_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InboxConfigError) as info:
        build_source(Settings(data_dir=tmp_path, inbox_url="pop3://x@y"), RecordingSink())
    assert info.value.code == "inbox_scheme"
