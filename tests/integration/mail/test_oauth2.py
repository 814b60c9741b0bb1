"""The XOAUTH2 token provider against the test OAuth2 server (real HTTP)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from core.settings import Settings
from mail.oauth2 import OAuth2Config, OAuth2Error, OAuth2TokenProvider, xoauth2_b64
from tests.support.oauth_server import OAuthServer

USER = "soporte@portaldeproveedores.example.mx"


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider_for(server: OAuthServer, refresh: str, **kwargs: object) -> OAuth2TokenProvider:
    cfg = OAuth2Config(server.token_url, server.state.client_id, server.state.client_secret, refresh)
    return OAuth2TokenProvider(cfg, **kwargs)  # type: ignore[arg-type]


async def test_token_is_cached_and_refreshed_before_it_expires(oauth_server: OAuthServer) -> None:
    oauth_server.state.expires_in = 600
    clock = FakeMonotonic()
    provider = provider_for(oauth_server, oauth_server.add_refresh_token(USER), refresh_margin=60, monotonic=clock)
    first = await provider.token()
    clock.now += 500  # 100 s left: still more than the margin
    assert await provider.token() == first
    clock.now += 45  # 55 s left: inside the margin, refresh now rather than fail a login later
    second = await provider.token()
    assert second != first
    assert oauth_server.state.token_requests == 2


async def test_concurrent_callers_share_one_refresh(oauth_server: OAuthServer) -> None:
    provider = provider_for(oauth_server, oauth_server.add_refresh_token(USER))
    tokens = await asyncio.gather(*(provider.token() for _ in range(20)))
    assert len(set(tokens)) == 1
    assert oauth_server.state.token_requests == 1


async def test_threads_get_the_token_through_the_owning_loop(oauth_server: OAuthServer) -> None:
    provider = provider_for(oauth_server, oauth_server.add_refresh_token(USER))
    loop = asyncio.get_running_loop()
    tokens = await asyncio.gather(*(asyncio.to_thread(provider.token_from_thread, loop) for _ in range(5)))
    assert len(set(tokens)) == 1
    assert oauth_server.state.token_requests == 1


async def test_a_refused_refresh_token_is_a_permanent_error_without_secrets(oauth_server: OAuthServer) -> None:
    provider = provider_for(oauth_server, "rt-robado-y-revocado")
    with pytest.raises(OAuth2Error) as info:
        await provider.token()
    assert info.value.permanent
    assert info.value.code == "oauth2_refused"
    assert "rt-robado" not in str(info.value) and oauth_server.state.client_secret not in str(info.value)
    assert "rt-robado" not in repr(provider) and oauth_server.state.client_secret not in repr(provider.config)


async def test_an_unavailable_token_endpoint_is_a_temporary_error(oauth_server: OAuthServer) -> None:
    oauth_server.state.fail_token_endpoint = True
    provider = provider_for(oauth_server, oauth_server.add_refresh_token(USER))
    with pytest.raises(OAuth2Error) as info:
        await provider.token()
    assert not info.value.permanent
    unreachable = OAuth2TokenProvider(OAuth2Config("http://127.0.0.1:9/token", "x", "y", "z"), timeout=2)
    with pytest.raises(OAuth2Error) as info:
        await unreachable.token()
    assert info.value.code == "oauth2_unreachable"


def test_xoauth2_initial_response_format() -> None:
    assert base64.b64decode(xoauth2_b64("a@b.mx", "tok")) == b"user=a@b.mx\x01auth=Bearer tok\x01\x01"


def test_config_comes_from_settings() -> None:
    s = Settings(
        oauth2_token_url="http://t/token", oauth2_client_id="c", oauth2_client_secret="s", oauth2_refresh_token="r"
    )
    cfg = OAuth2Config.from_settings(s)
    assert (cfg.token_url, cfg.client_id, cfg.client_secret, cfg.refresh_token) == ("http://t/token", "c", "s", "r")
    assert "'s'" not in repr(cfg) and "'r'" not in repr(cfg)
