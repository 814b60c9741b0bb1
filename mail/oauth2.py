"""OAuth2 access tokens for XOAUTH2 (IMAP and SMTP), from a refresh token.

:class:`OAuth2TokenProvider` asks the configured token endpoint for an access token with the
refresh-token grant, caches it and refreshes it ``refresh_margin`` seconds before it expires.  It
is safe to share: concurrent callers on the event loop wait for one refresh (an ``asyncio.Lock``),
and threads (the IMAP thread) call :meth:`OAuth2TokenProvider.token_from_thread`, which runs the
same coroutine on the owning loop.  Secrets (client secret, refresh token, access token) never
appear in reprs, logs or error messages.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from core.settings import Settings

log = logging.getLogger("timbrado.mail.oauth2")


_PERMANENT_ERRORS = ("invalid_grant", "invalid_client", "unauthorized_client")


class OAuth2Error(Exception):
    """The token endpoint refused or could not be reached.  ``code`` is stable; ``message`` is Spanish."""

    def __init__(self, code: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class OAuth2Config:
    token_url: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    scope: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuth2Config:
        return cls(
            token_url=settings.oauth2_token_url,
            client_id=settings.oauth2_client_id,
            client_secret=settings.oauth2_client_secret,
            refresh_token=settings.oauth2_refresh_token,
            scope=settings.oauth2_scope,
        )


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # monotonic seconds


def xoauth2_string(user: str, token: str) -> bytes:
    """The raw (not base64) SASL XOAUTH2 initial response."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def xoauth2_b64(user: str, token: str) -> str:
    return base64.b64encode(xoauth2_string(user, token)).decode("ascii")


class OAuth2TokenProvider:
    """Cached access tokens from a refresh token.  Use one instance per process."""

    def __init__(
        self,
        config: OAuth2Config,
        *,
        refresh_margin: float = 60.0,
        timeout: float = 20.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.refresh_margin = refresh_margin
        self.timeout = timeout
        self._monotonic = monotonic
        self._token: AccessToken | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state_lock = threading.Lock()
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"OAuth2TokenProvider(token_url={self.config.token_url!r}, client_id={self.config.client_id!r})"

    def _fresh(self) -> str | None:
        with self._state_lock:
            token = self._token
        if token is not None and token.expires_at - self.refresh_margin > self._monotonic():
            return token.value
        return None

    def invalidate(self) -> None:
        """Forget the cached token (after the server refused it)."""
        with self._state_lock:
            self._token = None

    async def token(self) -> str:
        """A valid access token, refreshed when it is about to expire."""
        cached = self._fresh()
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            cached = self._fresh()
            if cached is not None:
                return cached
            token = await self._request()
            with self._state_lock:
                self._token = token
            return token.value

    def token_from_thread(self, loop: asyncio.AbstractEventLoop, timeout: float | None = None) -> str:
        """Blocking variant for worker threads: runs :meth:`token` on ``loop`` (never call it on ``loop``)."""
        cached = self._fresh()
        if cached is not None:
            return cached
        future = asyncio.run_coroutine_threadsafe(self.token(), loop)
        return future.result(timeout if timeout is not None else self.timeout + 5)

    async def _request(self) -> AccessToken:
        cfg = self.config
        form = {"grant_type": "refresh_token", "refresh_token": cfg.refresh_token, "client_id": cfg.client_id}
        if cfg.client_secret:
            form["client_secret"] = cfg.client_secret
        if cfg.scope:
            form["scope"] = cfg.scope
        started = self._monotonic()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http,
                http.post(cfg.token_url, data=form, headers={"Accept": "application/json"}) as resp,
            ):
                status = resp.status
                try:
                    body: Any = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    body = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise OAuth2Error(
                "oauth2_unreachable",
                f"No se pudo contactar el servidor de tokens OAuth2 ({type(exc).__name__}).",
            ) from None
        if not isinstance(body, dict):
            body = {}
        if status != 200 or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            error = str(body.get("error", "")) if body else ""
            permanent = status in (400, 401, 403) and error in _PERMANENT_ERRORS
            raise OAuth2Error(
                "oauth2_refused" if permanent else "oauth2_failed",
                f"El servidor de tokens OAuth2 respondió {status}"
                + (f" ({error[:60]})" if error else "")
                + (": revise el token de actualización y el cliente." if permanent else "."),
                permanent=permanent,
            )
        try:
            expires_in = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600.0
        self.refreshes += 1
        log.info("OAuth2: token de acceso renovado (vigencia %ss)", int(expires_in))
        return AccessToken(value=body["access_token"], expires_at=started + max(0.0, expires_in))
