"""Issue 3's whole story with every real piece running: the Maildir inbox watcher, the worker, the API
with the real Bolt app, the SMTP spool, and a fake Slack Web API that records calls.

An e-mail dropped into the embedded Maildir becomes a request, an acknowledgement in the spool and a
card in Slack; approving from Slack, the API and the CLI each enables the module and sends exactly one
confirmation.
"""

from __future__ import annotations

import asyncio
import email
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from email import policy
from pathlib import Path

import aiohttp
import pytest

from admin.container import Container, build_container
from admin.serve import run_roles
from core.audit.service import Actor
from core.auth.tokens import create_token
from core.clients import service as clients
from core.db import migrate
from core.enablement import service
from core.settings import Settings
from tests.support import fake_slack
from tests.support.fake_slack import FakeSlack

SECRET = "8f14e45fceea167a5a36dedd4bea2543"
STAFF = "UALLOWED01"
SUBJECT = "Configuraci=C3=B3n del M=C3=B3dulo de Timbrado de complementos de pago"


def config_mail(n: int, sender: str) -> bytes:
    return (
        f"From: Contacto {n} <{sender}>\r\nTo: soporte@timbrado.test\r\n"
        f"Subject: =?utf-8?q?{SUBJECT.replace(' ', '_')}?=\r\n"
        f"Message-ID: <e2e-{n}-{time.time_ns()}@cliente{n}.mx>\r\nDate: Thu, 03 Dec 2026 10:00:00 -0600\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSolicitamos activar el módulo.\r\n"
    ).encode()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the story did not get there in time")


def spooled(data_dir: Path) -> list[email.message.EmailMessage]:
    spool = data_dir / "spool"
    files = sorted(spool.glob("*.eml")) if spool.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in files]  # type: ignore[misc]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    yield server
    await server.stop()


@pytest.fixture
async def running(database_url: str, tmp_path: Path, fake: FakeSlack) -> AsyncIterator[tuple[Container, str]]:
    settings = replace(
        Settings(data_dir=tmp_path, database_url=database_url),
        http_port=0,
        roles=("api", "mail", "worker", "scheduler"),
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_channel="CSUPPORT",
        slack_allowed_users=(STAFF,),
        slack_api_url=fake.api_url,
        inbox_poll_seconds=0.2,
    )
    container = build_container(settings)
    await migrate.upgrade(container.db.engine)
    stop = asyncio.Event()
    urls: list[str] = []
    task = asyncio.create_task(run_roles(container, settings.roles, stop, on_started=urls.extend))
    await until(lambda: asyncio.sleep(0, bool(urls)))
    yield container, urls[0].rstrip("/")
    stop.set()
    await task
    await container.aclose()


def drop(data_dir: Path, raw: bytes, name: str) -> None:
    new = data_dir / "inbox" / "new"
    new.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / "inbox" / "tmp" / name
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(raw)
    os.replace(tmp, new / name)


@pytest.mark.slow
async def test_from_an_email_in_the_inbox_to_an_enabled_module_three_ways(
    running: tuple[Container, str], fake: FakeSlack, database_url: str
) -> None:
    container, base = running
    data_dir = container.settings.data_dir
    now = container.clock.now()
    async with container.db.transaction() as s:
        for n in (1, 2, 3):
            await clients.create_client(
                s,
                name=f"Cliente {n}",
                rfc=None,
                proveedores_plus=True,
                contacts=[f"@cliente{n}.mx"],
                actor=Actor.system(),
                now=now,
            )
        _, staff_token = await create_token(s, name="soporte", role="staff", at=now)

    async def request_of(ticket: str) -> service.RequestView | None:
        async with container.db.session() as s:
            return await service.find_by_ticket(s, ticket)

    # 1. The e-mail arrives: request, acknowledgement in the spool (threaded), card in Slack.
    drop(data_dir, config_mail(1, "ana@cliente1.mx"), "1.eml")
    await until(lambda: asyncio.sleep(0, len(spooled(data_dir)) >= 1))
    ack = spooled(data_dir)[0]
    assert "[TCP-000001]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"].startswith("<e2e-1-")
    assert (data_dir / "inbox" / ".Procesados" / "cur").is_dir() or (data_dir / "inbox" / ".Procesados").exists()
    post = (await fake.wait_for("chat.postMessage", 1, timeout=15))[0]
    assert "TCP-000001" in str(post.args)

    # 2. Approved from Slack: the module is enabled, one confirmation, the card updated.
    req1 = await request_of("TCP-000001")
    assert req1 is not None
    payload = fake_slack.block_action("request.approve", str(req1.id), user_id=STAFF, name="ana.soporte")
    signed = fake_slack.interaction(payload, SECRET)
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{base}/slack/events", data=signed.body.encode(), headers=signed.headers)
        assert r.status == 200
        await until(lambda: asyncio.sleep(0, len(spooled(data_dir)) >= 2))
        await fake.wait_for("chat.update", 1, timeout=15)

        # 3. Another request, approved through the API.
        drop(data_dir, config_mail(2, "beto@cliente2.mx"), "2.eml")
        await until(lambda: asyncio.sleep(0, len(spooled(data_dir)) >= 3))
        req2 = await request_of("TCP-000002")
        assert req2 is not None
        r = await http.post(
            f"{base}/api/v1/requests/{req2.id}/approve", headers={"Authorization": f"Bearer {staff_token}"}
        )
        assert r.status == 200, await r.text()
        await until(lambda: asyncio.sleep(0, len(spooled(data_dir)) >= 4))

    # 4. A third, approved from the CLI in another process.
    drop(data_dir, config_mail(3, "caro@cliente3.mx"), "3.eml")
    await until(lambda: asyncio.sleep(0, len(spooled(data_dir)) >= 5))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | {
        "TIMBRADO_DATA_DIR": str(data_dir),
        "TIMBRADO_DATABASE_URL": database_url,
    }
    # Asynchronously: the server shares this event loop, and a blocked loop would keep whatever
    # SQLite write lock it holds at that moment, so the CLI would wait for it in vain.
    cli = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "timbrado"),
        *("requests", "approve", "TCP-000003", "--as", "caro.soporte"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, err.decode()
    await until(lambda: asyncio.sleep(0, len(spooled(data_dir)) >= 6))
    await asyncio.sleep(1.5)  # give any duplicate a chance to appear

    mails = spooled(data_dir)
    confirmations = [m for m in mails if "fue aprobada" in m.get_body(("plain",)).get_content()]  # type: ignore[union-attr]
    assert sorted(m["Subject"].split("[")[1][:10] for m in confirmations) == ["TCP-000001", "TCP-000002", "TCP-000003"]
    assert len(mails) == 6
    for ticket, via in (("TCP-000001", "slack"), ("TCP-000002", "api"), ("TCP-000003", "cli")):
        view = await request_of(ticket)
        assert view is not None
        assert (view.status, view.decided_via, view.client_timbrado_enabled) == ("enabled", via, True)
