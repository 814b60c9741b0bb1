"""A local fake of the Slack Web API (records calls, can fail on demand) and signed-request helpers.

Point the bot's Web API client at ``FakeSlack.api_url``.  Every call is recorded as a
:class:`Call`; ``fail_next`` makes the next calls of one method answer an HTTP status (429 with
Retry-After by default) or a Slack ``{"ok": false, "error": ...}``.

Socket Mode too: ``apps.connections.open`` (with an ``xapp-`` token) answers the URL of a local
WebSocket that greets with ``hello`` like Slack's; ``socket_send`` pushes an envelope
(``interactive``, ``events_api``, ``slash_commands``) and returns the client's acknowledgement.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = "UBOT000001"
TEAM = "T0000TEST"


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    token: str


@dataclass
class Failure:
    status: int = 429
    error: str = "ratelimited"
    retry_after: int | None = 1


@dataclass(frozen=True)
class Upload:
    """A file completed with files.completeUploadExternal (the bytes POSTed to its upload URL)."""

    file_id: str
    filename: str
    title: str
    data: bytes
    channel: str
    thread_ts: str
    initial_comment: str


@dataclass
class FakeSlack:
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    #: file id -> (filename, declared length, bytes received at the upload URL or None)
    _pending: dict[str, tuple[str, int, bytes | None]] = field(default_factory=dict)
    latency: float = 0.0
    _failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition | None = None
    port: int = 0
    #: Socket Mode: the open WebSocket connections and the acknowledgements awaited by envelope id
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _envelopes: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/link/", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._changed = asyncio.Condition()
        return self

    async def stop(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ Socket Mode
    async def wait_for_socket(self, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not any(not ws.closed for ws in self.sockets):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("no Socket Mode client connected")
            await asyncio.sleep(0.02)

    async def socket_send(self, kind: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Push an envelope to the connected client; returns its acknowledgement (``envelope_id`` and,
        for interactions, any ``payload`` answered)."""
        await self.wait_for_socket(timeout)
        ws = next(ws for ws in reversed(self.sockets) if not ws.closed)
        envelope_id = f"env-{next(self._envelopes)}"
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = ack
        await ws.send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        return await asyncio.wait_for(ack, timeout)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0000TEST"}})
        async for msg in ws:
            if msg.type != web.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            waiter = self._acks.pop(str(data.get("envelope_id", "")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
        return ws

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ control
    def fail_next(self, method: str, *, times: int = 1, **failure: Any) -> None:
        for _ in range(times):
            self._failures[method].append(Failure(**failure))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def clear(self) -> None:
        self.calls.clear()

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.calls_to(method)) >= count), timeout)
        return self.calls_to(method)

    # ------------------------------------------------------------------ server
    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.body_exists:
            raw = await request.read()
            if request.content_type == "application/json":
                args.update(json.loads(raw or b"{}"))
            else:
                for k, v in urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True):
                    args[k] = v
        for key in ("blocks", "view", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or str(args.pop("token", ""))
        if self.latency:
            await asyncio.sleep(self.latency)
        failure = self._failures[method].popleft() if self._failures[method] else None
        self.calls.append(Call(method, args, token))
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status, headers=headers)
        if not token.startswith(("xoxb-", "xapp-")):
            return web.json_response({"ok": False, "error": "not_authed"})
        return web.json_response(self._answer(method, args))

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL of files.getUploadURLExternal: the SDK POSTs the raw bytes; "upload" in
        ``fail_next`` makes it answer an HTTP error."""
        file_id = request.match_info["file_id"]
        data = await request.read()
        failure = self._failures["upload"].popleft() if self._failures["upload"] else None
        self.calls.append(Call("upload", {"file_id": file_id, "size": len(data)}, ""))
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()
        if failure is not None:
            return web.Response(status=failure.status, text=failure.error)
        if file_id not in self._pending:
            return web.Response(status=404, text="unknown upload")
        name, length, _ = self._pending[file_id]
        if len(data) != length:
            return web.Response(status=400, text="length mismatch")
        self._pending[file_id] = (name, length, data)
        return web.Response(text=f"OK - {len(data)}")

    def _complete(self, args: dict[str, Any]) -> dict[str, Any]:
        raw = args.get("files")
        files = json.loads(raw) if isinstance(raw, str) else raw or []
        done = []
        for f in files:
            name, length, data = self._pending.get(str(f.get("id")), ("", 0, None))
            if data is None:
                return {"ok": False, "error": "file_upload_not_found"}
            upload = Upload(
                file_id=str(f["id"]),
                filename=name,
                title=str(f.get("title") or name),
                data=data,
                channel=str(args.get("channel_id") or ""),
                thread_ts=str(args.get("thread_ts") or ""),
                initial_comment=str(args.get("initial_comment") or ""),
            )
            self.uploads.append(upload)
            del self._pending[upload.file_id]
            done.append({"id": upload.file_id, "name": name, "title": upload.title, "size": length})
        return {"ok": True, "files": done}

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ok: dict[str, Any] = {"ok": True}
        if method == "files.getUploadURLExternal":
            try:
                length = int(args.get("length") or 0)
            except ValueError:
                length = 0
            if length <= 0 or not args.get("filename"):
                return {"ok": False, "error": "invalid_arguments"}
            file_id = f"F{next(self._ts):09d}"
            self._pending[file_id] = (str(args["filename"]), length, None)
            return ok | {"file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{file_id}"}
        if method == "files.completeUploadExternal":
            return self._complete(args)
        if method == "apps.connections.open":
            return ok | {"url": f"ws://127.0.0.1:{self.port}/link/?ticket=test-ticket"}
        if method == "auth.test":
            return ok | {
                "url": "https://test.slack.com/",
                "team": "Test",
                "user": "timbrado",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": "B0000TEST",
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return ok | {"channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text"), "ts": ts}}
        if method == "chat.update":
            return ok | {"channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return ok | {"message_ts": f"1700000001.{next(self._ts):06d}"}
        if method in ("views.open", "views.publish", "views.update"):
            return ok | {"view": {"id": "V0000TEST", **(args.get("view") or {})}}
        if method == "usergroups.users.list":
            group = str(args.get("usergroup", ""))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return ok | {"users": self.usergroups[group]}
        return ok


# ---------------------------------------------------------------------------- signing and payloads
def sign(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class SignedRequest:
    body: str
    headers: dict[str, str]


def _form(fields: dict[str, str]) -> str:
    return urllib.parse.urlencode(fields)


def signed(body: str, secret: str, *, content_type: str, timestamp: int | None = None, **extra: str) -> SignedRequest:
    return SignedRequest(body, {"Content-Type": content_type, **sign(body, secret, timestamp), **extra})


def interaction(payload: dict[str, Any], secret: str, **kw: Any) -> SignedRequest:
    body = _form({"payload": json.dumps(payload)})
    return signed(body, secret, content_type="application/x-www-form-urlencoded", **kw)


def user(user_id: str, name: str = "") -> dict[str, str]:
    return {"id": user_id, "username": name or user_id.lower(), "name": name or user_id.lower(), "team_id": TEAM}


def block_action(
    action_id: str,
    value: str,
    *,
    user_id: str,
    name: str = "",
    channel: str = "CSUPPORT",
    message_ts: str = "1700000000.000001",
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "test"},
        "user": user(user_id, name),
        "api_app_id": "A0000TEST",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"trigger-{action_id}-{value}-{user_id}",
        "channel": {"id": channel, "name": "soporte"},
        "message": {"type": "message", "ts": message_ts, "text": "card"},
        "response_url": "https://hooks.slack.invalid/actions/T/1/x",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"request:{value}",
                "value": value,
                "action_ts": "1700000002.000001",
                "text": {"type": "plain_text", "text": action_id},
            }
        ],
    }


def view_submission(
    callback_id: str,
    *,
    user_id: str,
    name: str = "",
    metadata: dict[str, Any],
    values: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "test"},
        "user": user(user_id, name),
        "api_app_id": "A0000TEST",
        "trigger_id": "trigger-view",
        "view": {
            "id": "V0000TEST",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": json.dumps(metadata),
            "state": {"values": values},
            "hash": "h",
            "app_id": "A0000TEST",
            "team_id": TEAM,
        },
    }


def slash_command(text: str, secret: str, *, user_id: str, name: str = "", **kw: Any) -> SignedRequest:
    body = _form(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "team_domain": "test",
            "channel_id": "CSUPPORT",
            "channel_name": "soporte",
            "user_id": user_id,
            "user_name": name or user_id.lower(),
            "command": "/timbrado",
            "text": text,
            "api_app_id": "A0000TEST",
            "response_url": "https://hooks.slack.invalid/commands/T/1/x",
            "trigger_id": "trigger-command",
        }
    )
    return signed(body, secret, content_type="application/x-www-form-urlencoded", **kw)


def event(event_body: dict[str, Any], secret: str, **kw: Any) -> SignedRequest:
    body = json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "api_app_id": "A0000TEST",
            "event": event_body,
            "type": "event_callback",
            "event_id": "Ev0000TEST",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
    )
    return signed(body, secret, content_type="application/json", **kw)
