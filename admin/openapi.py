"""OpenAPI 3.1 document generated from the app's routes and their :func:`admin.api.endpoint` metadata."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from admin.api import EndpointSpec

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Código estable para programas"},
                "message": {"type": "string", "description": "Mensaje en español para personas"},
                "details": {"description": "Información adicional (campos inválidos, límites)"},
            },
        }
    },
}

_STATUS_TEXT = {
    400: "Solicitud inválida",
    401: "Falta un token válido",
    403: "El token no tiene permiso",
    404: "No encontrado",
    409: "Conflicto con el estado actual",
    413: "Cuerpo demasiado grande",
    415: "Tipo de contenido no soportado",
    422: "Datos inválidos",
    503: "No disponible",
}


def _schema_ref(obj: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        schema = obj.model_json_schema(ref_template="#/components/schemas/{model}")
    else:
        schema = TypeAdapter(obj).json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        components[obj.__name__] = schema
        return {"$ref": f"#/components/schemas/{obj.__name__}"}
    return schema


def build_openapi(app: web.Application, *, title: str, version: str, server_url: str | None = None) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        spec: EndpointSpec | None = getattr(route.handler, "__endpoint__", None)
        if spec is None or route.method == "HEAD":
            continue
        info = route.get_info()
        path = info.get("path") or info.get("formatter")
        if not path:
            continue
        op: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": f"{route.method.lower()}_{getattr(route.handler, '__name__', 'handler')}",
            "tags": list(spec.tags),
        }
        if spec.description:
            op["description"] = spec.description
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in _path_params(path)]
        params += [
            {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "description": q.description,
                "schema": q.schema,
            }
            for q in spec.query
        ]
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(spec.body, components)}},
            }
        ok: dict[str, Any] = {"description": "Correcto"}
        if spec.response is not None:
            ok["content"] = {spec.content_type: {"schema": _schema_ref(spec.response, components)}}
        elif spec.content_type != "application/json":
            ok["content"] = {spec.content_type: {"schema": {"type": "string"}}}
        responses: dict[str, Any] = {str(spec.status): ok}
        error_codes = set(spec.errors)
        if spec.auth is not None:
            error_codes |= {401, 403}
            op["security"] = [{"bearer": []}]
            op["x-roles"] = list(spec.auth)
        if spec.body is not None:
            error_codes |= {400, 413, 422}
        for code in sorted(error_codes):
            responses[str(code)] = {
                "description": _STATUS_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        op["responses"] = responses
        paths.setdefault(path, {})[route.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "API de administración del servicio de Timbrado de complementos de pago.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _path_params(path: str) -> list[str]:
    out = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            out.append(part[1:-1].split(":", 1)[0])
    return out
