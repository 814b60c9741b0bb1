"""The ``bot`` role over Socket Mode: the real Bolt app and slack_sdk's Socket Mode client, connected
to the fake Slack's WebSocket (opened with the app-level token), acknowledging every envelope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from admin.container import Container
from bot.socket_mode import run_socket_mode
from core.clock import FrozenClock
from core.enablement.models import RequestStatus
from tests.integration.bot.conftest import CHANNEL, STAFF, bot_settings, get, make_request
from tests.support import fake_slack
from tests.support.app import container_for
from tests.support.fake_slack import TEAM, FakeSlack

APP_TOKEN = "xapp-1-A0000TEST-1-secret"


@pytest.fixture
async def socket_container(
    database_url: str, tmp_path: Path, clock: FrozenClock, fake: FakeSlack
) -> AsyncIterator[Container]:
    settings = bot_settings(database_url, tmp_path, fake, slack_app_token=APP_TOKEN)
    c = container_for(settings, clock)
    yield c
    await c.aclose()


@pytest.fixture
async def connected(socket_container: Container, fake: FakeSlack) -> AsyncIterator[Container]:
    assert socket_container.slack is not None
    stop = asyncio.Event()
    task = asyncio.create_task(run_socket_mode(socket_container.slack, stop))
    await fake.wait_for_socket()
    yield socket_container
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_the_bot_connects_with_the_app_level_token(connected: Container, fake: FakeSlack) -> None:
    opened = fake.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].token == APP_TOKEN


async def test_an_approve_click_over_socket_mode_is_acknowledged_and_enables_the_module(
    connected: Container, fake: FakeSlack
) -> None:
    request_id = await make_request(connected)
    payload = fake_slack.block_action("request.approve", str(request_id), user_id=STAFF, name="ana.soporte")
    ack = await fake.socket_send("interactive", payload)
    assert ack["envelope_id"].startswith("env-")
    told = await fake.wait_for("chat.postEphemeral", 1, timeout=10)
    assert "aprob" in str(told[0].args).lower()
    view = await get(connected, request_id)
    assert view.status == RequestStatus.ENABLED and view.decided_via == "slack"


async def test_a_slash_command_over_socket_mode_answers_in_the_acknowledgement(
    connected: Container, fake: FakeSlack
) -> None:
    await make_request(connected)
    command = {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "user_id": STAFF,
        "user_name": "ana.soporte",
        "command": "/timbrado",
        "text": "pendientes",
        "api_app_id": "A0000TEST",
        "response_url": "https://hooks.slack.invalid/commands/T/1/x",
        "trigger_id": "trigger-command",
    }
    ack = await fake.socket_send("slash_commands", command)
    answer = ack.get("payload") or {}
    assert answer.get("response_type") == "ephemeral"
    assert "TCP-" in str(answer)


async def test_app_home_opened_over_socket_mode_publishes_the_home(connected: Container, fake: FakeSlack) -> None:
    envelope = {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0000TEST",
        "event": {"type": "app_home_opened", "user": STAFF, "tab": "home"},
        "type": "event_callback",
        "event_id": "Ev0000SOCK",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": fake_slack.BOT_USER, "is_bot": True}],
    }
    await fake.socket_send("events_api", envelope)
    published = await fake.wait_for("views.publish", 1, timeout=10)
    assert published[0].args["user_id"] == STAFF
