"""Endpoint declaration: authentication, body parsing and the metadata OpenAPI is generated from.

Every API handler is declared with :func:`endpoint`; the OpenAPI document is built by walking
the app's routes and reading this metadata, so it cannot drift from the code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from admin.container import Container
from admin.errors import ApiError
from core.auth.tokens import Principal, authenticate

CONTAINER_KEY = web.AppKey("container", Container)
PRINCIPAL_KEY = web.RequestKey("principal", Principal)
REQUEST_ID_KEY = web.RequestKey("request_id", str)

M = TypeVar("M", bound=BaseModel)
HandlerFn = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class EndpointSpec:
    summary: str
    tags: tuple[str, ...]
    auth: tuple[str, ...] | None
    body: type[BaseModel] | None
    response: Any
    status: int
    description: str
    query: tuple[QueryParam, ...]
    errors: tuple[int, ...]
    content_type: str


def container_of(request: web.Request) -> Container:
    return request.app[CONTAINER_KEY]


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL_KEY]


def _role_allowed(principal: Principal, allowed: tuple[str, ...]) -> bool:
    if principal.is_staff:
        return True  # staff may use every authenticated endpoint
    kind = principal.role.split(":", 1)[0]
    return kind in allowed


async def require_principal(request: web.Request, allowed: tuple[str, ...]) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "missing_token", "Falta el encabezado Authorization: Bearer <token>.")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_token", "El encabezado Authorization debe tener la forma 'Bearer <token>'.")
    container = container_of(request)
    async with container.db.session() as session:
        principal = await authenticate(session, token.strip())
    if principal is None:
        raise ApiError(401, "invalid_token", "El token no es válido o fue revocado.")
    if not _role_allowed(principal, allowed):
        raise ApiError(
            403,
            "forbidden",
            "El token no tiene permiso para esta operación.",
            {"required": list(allowed), "role": principal.role},
        )
    request[PRINCIPAL_KEY] = principal
    return principal


_MESSAGES_ES = {
    "missing": "Campo obligatorio.",
    "string_type": "Debe ser texto.",
    "int_type": "Debe ser un número entero.",
    "int_parsing": "Debe ser un número entero.",
    "float_parsing": "Debe ser un número.",
    "decimal_parsing": "Debe ser un número decimal.",
    "bool_type": "Debe ser verdadero o falso.",
    "string_too_short": "El texto es demasiado corto.",
    "string_too_long": "El texto es demasiado largo.",
    "greater_than": "El valor es demasiado pequeño.",
    "greater_than_equal": "El valor es demasiado pequeño.",
    "less_than_equal": "El valor es demasiado grande.",
    "extra_forbidden": "Campo no permitido.",
    "literal_error": "Valor no permitido.",
    "enum": "Valor no permitido.",
    "value_error": "Valor inválido.",
    "string_pattern_mismatch": "El formato no es válido.",
    "model_type": "Se esperaba un objeto JSON.",
    "list_type": "Se esperaba una lista.",
    "datetime_parsing": "Fecha y hora inválidas (use ISO 8601).",
    "date_parsing": "Fecha inválida (use AAAA-MM-DD).",
}


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        field_path = ".".join(str(p) for p in err["loc"]) or "(cuerpo)"
        message = _MESSAGES_ES.get(err["type"], "Valor inválido.")
        if err["type"] == "value_error":
            message = str(err.get("ctx", {}).get("error", message))
        details.append({"field": field_path, "code": err["type"], "message": message})
    return details


async def parse_json(request: web.Request) -> Any:
    raw = await request.read()  # bounded by client_max_size: 413 beyond it
    if not raw.strip():
        raise ApiError(400, "empty_body", "El cuerpo de la solicitud está vacío; se esperaba un objeto JSON.")
    ctype = request.content_type
    if ctype not in ("application/json", "application/octet-stream", "text/plain") and not ctype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Envíe el cuerpo como application/json.")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        pos = getattr(exc, "pos", None)
        raise ApiError(
            400, "invalid_json", "El cuerpo no es JSON válido.", {"position": pos, "error": str(exc)[:200]}
        ) from None


def parse_model(data: Any, model: type[M]) -> M:
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "Se esperaba un objeto JSON.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422, "validation_error", "Hay datos inválidos en la solicitud.", validation_details(exc)
        ) from None


def json_response(data: Any, status: int = 200) -> web.Response:
    payload: Any
    if isinstance(data, BaseModel):
        payload = data.model_dump(mode="json")
    elif isinstance(data, list):
        payload = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    else:
        payload = data
    return web.json_response(payload, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def int_param(request: web.Request, name: str) -> int:
    raw = request.match_info.get(name, "")
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", "No se encontró el recurso.")
    return int(raw)


def query_int(request: web.Request, name: str, default: int, *, minimum: int = 1, maximum: int = 1000) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"El parámetro {name!r} debe ser un número entero.") from None
    if not minimum <= value <= maximum:
        raise ApiError(400, "invalid_query", f"El parámetro {name!r} debe estar entre {minimum} y {maximum}.")
    return value


def endpoint(
    *,
    summary: str,
    tags: Sequence[str] = (),
    auth: Sequence[str] | None = ("staff",),
    body: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    description: str = "",
    query: Sequence[QueryParam] = (),
    errors: Sequence[int] = (),
    content_type: str = "application/json",
) -> Callable[[HandlerFn], HandlerFn]:
    """Declare an API handler.  ``auth=None`` makes it public; otherwise the allowed role kinds.

    A handler declared with ``body=Model`` is called as ``handler(request, body)``.
    """
    spec = EndpointSpec(
        summary=summary,
        tags=tuple(tags),
        auth=tuple(auth) if auth is not None else None,
        body=body,
        response=response,
        status=status,
        description=description,
        query=tuple(query),
        errors=tuple(errors),
        content_type=content_type,
    )

    def decorate(fn: HandlerFn) -> HandlerFn:
        @functools.wraps(fn)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            if spec.auth is not None:
                await require_principal(request, spec.auth)
            if spec.body is not None:
                parsed = parse_model(await parse_json(request), spec.body)
                return await fn(request, parsed)
            return await fn(request)

        wrapper.__endpoint__ = spec  # type: ignore[attr-defined]
        return wrapper

    return decorate
