"""The real Bolt app behind the real aiohttp server, its Web API client pointed at a fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from admin.app import create_app
from admin.container import Container
from bot.runtime import SlackBot
from core.audit.service import Actor
from core.clients import service as clients
from core.clock import FrozenClock
from core.enablement import service
from core.enablement.models import RequestSource
from core.jobs.models import Job
from core.jobs.worker import Worker, WorkerStats
from tests.support import fake_slack
from tests.support.app import container_for, settings_for
from tests.support.fake_slack import FakeSlack, SignedRequest

SECRET = "8f14e45fceea167a5a36dedd4bea2543"
CHANNEL = "CSUPPORT"
STAFF = "UALLOWED01"  # in the allowlist
GROUP_MEMBER = "UGROUP0001"  # member of the staff user group
GROUP = "S0STAFF001"
OUTSIDER = "UOUTSIDE01"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}).start()
    yield server
    await server.stop()


def bot_settings(database_url: str, tmp_path: Path, fake: FakeSlack, **extra: Any) -> Any:
    """Settings of a Slack-enabled service talking to ``fake``."""
    return settings_for(
        database_url,
        tmp_path,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_channel=CHANNEL,
        slack_allowed_users=(STAFF,),
        slack_allowed_usergroup=GROUP,
        slack_api_url=fake.api_url,
        **extra,
    )


@pytest.fixture
async def container(database_url: str, tmp_path: Path, clock: FrozenClock, fake: FakeSlack) -> AsyncIterator[Container]:
    c = container_for(bot_settings(database_url, tmp_path, fake), clock)
    yield c
    await c.aclose()


@pytest.fixture
def bot(container: Container) -> SlackBot:
    assert container.slack is not None
    return container.slack


@dataclass
class Slack:
    """Drives the app the way Slack does."""

    http: TestClient
    container: Container
    fake: FakeSlack

    async def send(self, req: SignedRequest) -> Any:
        return await self.http.post("/slack/events", data=req.body.encode(), headers=req.headers)

    async def click(self, action_id: str, request_id: int, user_id: str = STAFF, name: str = "", **kw: Any) -> Any:
        payload = fake_slack.block_action(action_id, str(request_id), user_id=user_id, name=name or user_id.lower())
        return await self.send(fake_slack.interaction(payload, SECRET, **kw))

    async def submit_reason(self, request_id: int, reason: str | None, user_id: str = STAFF, **kw: Any) -> Any:
        values = {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}
        payload = fake_slack.view_submission(
            "request.reject_reason",
            user_id=user_id,
            name=user_id.lower(),
            metadata={"request_id": request_id, "channel": CHANNEL},
            values=values,
        )
        return await self.send(fake_slack.interaction(payload, SECRET, **kw))

    async def command(self, text: str, user_id: str = STAFF) -> Any:
        return await self.send(fake_slack.slash_command(text, SECRET, user_id=user_id))

    async def run_jobs(self) -> WorkerStats:
        assert self.container.slack is not None
        handlers = self.container.slack.job_handlers()
        worker = Worker(self.container.db, handlers, clock=self.container.clock, kinds=frozenset(handlers))
        return await worker.run_until_empty()

    async def slack_jobs(self) -> list[Job]:
        async with self.container.db.transaction() as s:
            rows = await s.scalars(select(Job).where(Job.kind.like("slack.%")).order_by(Job.id))
            return list(rows)


@pytest.fixture
async def slack(container: Container, fake: FakeSlack) -> AsyncIterator[Slack]:
    async with TestClient(TestServer(create_app(container))) as http:
        yield Slack(http, container, fake)


async def make_request(
    container: Container,
    *,
    client_name: str | None = "Comercial del Norte SA de CV",
    rfc: str = "CNO010101AB1",
    pp: bool = True,
    email: str = "ana@norte.example",
    body: str = "Solicitamos activar el módulo.",
) -> int:
    """A client (unless ``client_name`` is None) and an open request from one of its contacts."""
    now = container.clock.now()
    cfg = service.EnablementConfig(
        mail_from="soporte@timbrado.example", mail_domain="timbrado.example", slack_enabled=True
    )
    async with container.db.transaction() as s:
        client_id = None
        if client_name is not None:
            view = await clients.create_client(
                s, name=client_name, rfc=rfc, proveedores_plus=pp, contacts=[email], actor=Actor.system(), now=now
            )
            client_id = view.id
        req, _ = await service.open_request(
            s,
            source=RequestSource.API,
            requester_email=email,
            requester_name="Ana Pérez",
            body=body,
            client_id=client_id,
            actor=Actor.system(),
            cfg=cfg,
            now=now,
        )
        return req.id


async def get(container: Container, request_id: int) -> service.RequestView:
    async with container.db.transaction() as s:
        return await service.get_request(s, request_id)
