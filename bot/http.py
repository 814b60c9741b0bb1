"""Slack over HTTP: ``POST /slack/events`` in the aiohttp app (events, interactivity, commands).

Bolt checks every request's signature (HMAC-SHA256 of ``v0:timestamp:body`` with the signing
secret) and refuses timestamps more than five minutes away with 401 before any listener runs.
"""

from __future__ import annotations

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

SLACK_PATH = "/slack/events"
BOLT_KEY = web.AppKey("slack_bolt", AsyncApp)
MAX_BODY = 1024 * 1024  # Slack payloads are a few kB; view submissions stay far below this


async def _slack_events(request: web.Request) -> web.StreamResponse:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return web.json_response({"error": "payload_too_large"}, status=413)
    raw = await request.read()
    if len(raw) > MAX_BODY:
        return web.json_response({"error": "payload_too_large"}, status=413)
    bolt_request = AsyncBoltRequest(
        # A body that is not UTF-8 cannot carry a valid signature: decoding loosely just lets Bolt say 401.
        body=raw.decode("utf-8", errors="replace"),
        query=request.query_string,
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    bolt_response = await request.app[BOLT_KEY].async_dispatch(bolt_request)
    headers = {k: v for k, v in bolt_response.first_headers_without_set_cookie().items() if k.lower() != "content-type"}
    content_type = (bolt_response.headers.get("content-type") or ["text/plain"])[0].split(";")[0]
    return web.Response(
        status=bolt_response.status, body=bolt_response.body, headers=headers, content_type=content_type
    )


def setup(app: web.Application, bolt: AsyncApp) -> None:
    """Mount the Slack endpoint (call only when a signing secret is configured)."""
    app[BOLT_KEY] = bolt
    app.router.add_post(SLACK_PATH, _slack_events)
