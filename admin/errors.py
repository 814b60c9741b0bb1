"""JSON error bodies: ``{"error": {"code", "message", "details"}}`` for every failure."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import exc as sa_exc

from core.errors import DomainError

log = logging.getLogger("timbrado.api")


class ApiError(Exception):
    """An error the API reports to its caller.  ``message`` is Spanish, for people."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return web.json_response(body, status=status, headers=headers)


def not_found(what: str = "recurso") -> ApiError:
    return ApiError(404, "not_found", f"No se encontró el {what}.")


_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "La solicitud no es válida."),
    401: ("unauthorized", "Falta un token de acceso válido."),
    403: ("forbidden", "El token no tiene permiso para esta operación."),
    404: ("not_found", "La ruta solicitada no existe."),
    405: ("method_not_allowed", "El método HTTP no está permitido en esta ruta."),
    413: ("payload_too_large", "El cuerpo de la solicitud es demasiado grande."),
    415: ("unsupported_media_type", "Tipo de contenido no soportado."),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except DomainError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except ApiError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="timbrado"'} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        details: dict[str, Any] | None = None
        if exc.status == 413:
            max_size = request.app.get(MAX_BYTES_KEY)
            details = {"max_bytes": max_size}
            message = f"El cuerpo de la solicitud excede el máximo permitido ({max_size} bytes)."
        if exc.status == 405:
            details = {"allowed": sorted(getattr(exc, "allowed_methods", []) or [])}
        return error_response(exc.status, code, message, details)
    except _DATABASE_UNAVAILABLE as exc:
        # Not a bug to page anyone about: the database is down, restarting or locked for too long.
        log.warning("database unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
        return error_response(
            503,
            "service_unavailable",
            "El servicio no está disponible por el momento (base de datos). Inténtelo de nuevo en unos minutos.",
            {"request_id": request.headers.get("X-Request-ID") or _request_id(request)},
            {"Retry-After": "30"},
        )
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            500,
            "internal_error",
            "Ocurrió un error interno. Comparta el identificador de la solicitud con soporte.",
            {"request_id": request.headers.get("X-Request-ID") or _request_id(request)},
        )


MAX_BYTES_KEY = web.AppKey("max_request_bytes", int)

#: The database cannot answer: unreachable, restarting, the pool exhausted, or SQLite locked past
#: its busy timeout.  Answered 503 with Retry-After, not 500.
_DATABASE_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionRefusedError,
    ConnectionResetError,
)


def _request_id(request: web.Request) -> str | None:
    from core.logctx import current_request_id

    return current_request_id()
