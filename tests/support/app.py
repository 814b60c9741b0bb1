"""Build the real aiohttp app over a test database, with tokens for each role."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp.test_utils import TestClient

from admin.container import Container, build_container
from core.auth.tokens import create_token
from core.clock import Clock
from core.settings import Settings


def settings_for(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    return replace(Settings(data_dir=data_dir, database_url=database_url), **overrides)  # type: ignore[arg-type]


def container_for(settings: Settings, clock: Clock) -> Container:
    return build_container(settings, clock=clock)


@dataclass
class Tokens:
    staff: str
    vendor: str
    client: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, who)}"}


async def make_tokens(container: Container) -> Tokens:
    now = container.clock.now()
    async with container.db.transaction() as s:
        _, staff = await create_token(s, name="soporte", role="staff", at=now)
        _, vendor = await create_token(s, name="proveedor 1", role="vendor:1", at=now)
        _, client = await create_token(s, name="cliente 1", role="client:1", at=now)
    return Tokens(staff, vendor, client)


ApiClient = TestClient
