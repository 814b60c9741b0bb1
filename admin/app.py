"""aiohttp application factory."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from admin.api import CONTAINER_KEY, REQUEST_ID_KEY
from admin.container import Container
from admin.errors import MAX_BYTES_KEY, error_middleware
from admin.routes import clients, contract, jobs, onboarding, orders, requests, system, tickets, tokens
from admin.routes import stamping as stamping_routes
from admin.routes import statements as statement_routes  # --- statements
from core.logctx import log_context, new_request_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


@web.middleware
async def context_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
    request[REQUEST_ID_KEY] = request_id
    started = time.perf_counter()
    status = 500
    with log_context(request_id=request_id):
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            response.headers["X-Request-ID"] = request_id
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = request.match_info.route.resource
            name = route.canonical if route is not None else "unmatched"
            request.app[CONTAINER_KEY].metrics.request_latency.labels(
                method=request.method, route=name, status=str(status)
            ).observe(time.perf_counter() - started)


def create_app(container: Container) -> web.Application:
    app = web.Application(
        middlewares=[context_middleware, error_middleware],
        client_max_size=container.settings.max_request_bytes,
    )
    app[CONTAINER_KEY] = container
    app[MAX_BYTES_KEY] = container.settings.max_request_bytes
    system.setup(app)
    jobs.setup(app)
    tokens.setup(app)
    clients.setup(app)
    requests.setup(app)
    tickets.setup(app)
    orders.setup(app)
    onboarding.setup(app)
    contract.setup(app)
    stamping_routes.setup(app)
    statement_routes.setup(app)  # --- statements
    # --- Slack (bot/): POST /slack/events, signature-checked, when Slack runs over HTTP
    if container.slack is not None and container.settings.slack_signing_secret:
        from bot import http as slack_http

        slack_http.setup(app, container.slack.bolt())
    # --- end Slack
    return app
