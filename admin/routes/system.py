"""Health, readiness, metrics, the OpenAPI document, the rendered API docs page, and ``/me``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jinja2
from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import text

from admin.api import container_of, endpoint, json_response, principal_of
from admin.metrics import CONTENT_TYPE
from admin.openapi import build_openapi
from core.db import migrate
from core.jobs import queue

OPENAPI_KEY = web.AppKey("openapi_cache", dict)
API_TITLE = "Timbrado de complementos de pago"
API_VERSION = "1.0.0"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("admin", "templates"), autoescape=jinja2.select_autoescape(["html"])
)


class Health(BaseModel):
    status: str


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, ReadinessCheck]


class Me(BaseModel):
    token_id: int
    name: str
    role: str


@endpoint(summary="El proceso está vivo", tags=["Operación"], auth=None, response=Health)
async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


@endpoint(
    summary="Listo para atender: base de datos alcanzable y migraciones al día",
    tags=["Operación"],
    auth=None,
    response=Readiness,
    errors=[503],
)
async def readyz(request: web.Request) -> web.Response:
    container = container_of(request)
    checks: dict[str, ReadinessCheck] = {}
    try:
        async with asyncio.timeout(5):
            async with container.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = ReadinessCheck(ok=True, detail="conectada")
            at_head = await migrate.is_at_head(container.db.engine)
            checks["migrations"] = ReadinessCheck(
                ok=at_head, detail="al día" if at_head else "pendientes: ejecute 'timbrado db upgrade'"
            )
    except Exception as exc:
        checks["database"] = ReadinessCheck(ok=False, detail=f"no disponible ({type(exc).__name__})")
    ready = all(c.ok for c in checks.values()) and "migrations" in checks
    return json_response(Readiness(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503)


@endpoint(summary="Métricas en formato Prometheus", tags=["Operación"], auth=None, content_type=CONTENT_TYPE)
async def metrics(request: web.Request) -> web.Response:
    container = container_of(request)
    try:
        async with asyncio.timeout(5):
            async with container.db.session() as session:
                container.metrics.set_queue_depth(await queue.queue_depth(session))
    except Exception:  # metrics must answer even when the database does not
        container.metrics.queue_depth.clear()
    return web.Response(body=container.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def _openapi(request: web.Request) -> dict[str, Any]:
    app = request.app
    if not app[OPENAPI_KEY]:
        app[OPENAPI_KEY].update(
            build_openapi(app, title=API_TITLE, version=API_VERSION, server_url=container_of(request).settings.base_url)
        )
    return app[OPENAPI_KEY]


@endpoint(summary="Documento OpenAPI de esta API", tags=["Operación"], auth=None)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(_openapi(request), dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def api_docs(request: web.Request) -> web.Response:
    doc = _openapi(request)
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body and "$ref" in body:
                body = doc["components"]["schemas"].get(body["$ref"].rsplit("/", 1)[1], body)
            entry = {
                "method": method,
                "path": path,
                "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "parameters": op.get("parameters", []),
                "responses": op.get("responses", {}),
                "roles": ", ".join(op.get("x-roles", [])) or "público",
                "request": json.dumps(body, ensure_ascii=False, indent=2) if body else "",
            }
            groups.setdefault((op.get("tags") or ["General"])[0], []).append(entry)
    html = _TEMPLATES.get_template("api_docs.html").render(
        doc=doc, groups=sorted(groups.items()), spec_url="/api/v1/openapi.json"
    )
    return web.Response(text=html, content_type="text/html")


@endpoint(
    summary="Quién soy: el token con el que se llama",
    tags=["Operación"],
    auth=("staff", "vendor", "client"),
    response=Me,
)
async def me(request: web.Request) -> web.Response:
    p = principal_of(request)
    return json_response(Me(token_id=p.token_id, name=p.name, role=p.role))


def setup(app: web.Application) -> None:
    app[OPENAPI_KEY] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    app.router.add_get("/api/v1/docs", api_docs)
    app.router.add_get("/api/v1/me", me)
