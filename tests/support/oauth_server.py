"""A tiny OAuth2 authorisation server for the tests: a token endpoint and an introspection endpoint.

``POST /token`` (``grant_type=refresh_token``) exchanges a known refresh token for a fresh access
token; ``POST /introspect`` (``token=...``) answers RFC 7662 style with ``active`` and ``email`` --
what Dovecot's oauth2 passdb asks.  The server runs on its own event loop in a background thread so
Dovecot (another process) and the code under test can both call it whatever loop the test uses.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class OAuthServerState:
    client_id: str = "timbrado-test"
    client_secret: str = "secreto-de-cliente"
    #: refresh token -> e-mail address (user) it grants access for
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    #: access token -> (user, expires at monotonic time)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    expires_in: int = 3600
    token_requests: int = 0
    introspections: int = 0
    fail_token_endpoint: bool = False


class OAuthServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.state = OAuthServerState()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    def add_refresh_token(self, user: str) -> str:
        token = "rt-" + secrets.token_hex(12)
        with self._lock:
            self.state.refresh_tokens[token] = user
        return token

    def issue_access_token(self, user: str, expires_in: int | None = None) -> str:
        token = "at-" + secrets.token_hex(16)
        with self._lock:
            ttl = self.state.expires_in if expires_in is None else expires_in
            self.state.access_tokens[token] = (user, time.monotonic() + ttl)
        return token

    def revoke_all(self) -> None:
        with self._lock:
            self.state.access_tokens.clear()

    # ------------------------------------------------------------------ handlers
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self._lock:
            self.state.token_requests += 1
            failing = self.state.fail_token_endpoint
        if failing:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        client_id = str(form.get("client_id", ""))
        client_secret = str(form.get("client_secret", ""))
        if request.headers.get("Authorization", "").startswith("Basic "):
            import base64

            decoded = base64.b64decode(request.headers["Authorization"][6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.state.client_id or client_secret != self.state.client_secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        user = self.state.refresh_tokens.get(str(form.get("refresh_token", "")))
        if user is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = self.issue_access_token(user)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.state.expires_in})

    async def _introspect(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", ""))
        if not token and request.headers.get("Authorization", "").startswith("Bearer "):
            token = request.headers["Authorization"][7:]
        with self._lock:
            self.state.introspections += 1
            entry = self.state.access_tokens.get(token)
        if entry is None or entry[1] < time.monotonic():
            return web.json_response({"active": "false"})
        return web.json_response({"active": "true", "email": entry[0], "username": entry[0]})

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/token", self._token)
            app.router.add_post("/introspect", self._introspect)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            self._runner = runner
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="oauth-test-server", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the test OAuth2 server did not start")

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
            self._thread = None
