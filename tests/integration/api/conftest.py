from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from admin.app import create_app
from admin.container import Container
from core.clock import FrozenClock
from tests.support.app import Tokens, container_for, make_tokens, settings_for


@pytest.fixture
async def container(database_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Container]:
    c = container_for(settings_for(database_url, tmp_path, max_request_bytes=64 * 1024), clock)
    yield c
    await c.aclose()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(container))) as c:
        yield c


@pytest.fixture
async def tokens(container: Container) -> Tokens:
    return await make_tokens(container)
