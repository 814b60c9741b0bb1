"""Staff endpoints to issue, list and revoke API tokens."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from admin.api import container_of, endpoint, int_param, json_response, principal_of
from admin.deps import api_actor
from admin.errors import not_found
from core.auth import tokens


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="Nombre descriptivo")
    role: str = Field(description="staff, vendor:<id> o client:<id>")

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        try:
            return tokens.validate_role(value)
        except tokens.InvalidRole as exc:
            raise ValueError(str(exc)) from None


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    hint: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="El token; se muestra solo en esta respuesta")


@endpoint(summary="Emitir un token", tags=["Tokens"], body=TokenCreate, response=TokenCreated, status=201)
async def create(request: web.Request, body: TokenCreate) -> web.Response:
    container = container_of(request)
    actor = api_actor(principal_of(request))
    async with container.db.transaction() as session:
        row, plain = await tokens.issue(session, name=body.name, role=body.role, actor=actor, at=container.clock.now())
    out = TokenCreated(**TokenOut.model_validate(row, from_attributes=True).model_dump(), token=plain)
    return json_response(out, 201)


@endpoint(summary="Listar tokens (sin el secreto)", tags=["Tokens"], response=list[TokenOut])
async def list_tokens(request: web.Request) -> web.Response:
    async with container_of(request).db.session() as session:
        rows = (await session.scalars(select(tokens.ApiToken).order_by(tokens.ApiToken.id))).all()
    return json_response([TokenOut.model_validate(r, from_attributes=True) for r in rows])


@endpoint(summary="Revocar un token", tags=["Tokens"], response=TokenOut, errors=[404])
async def revoke(request: web.Request) -> web.Response:
    token_id = int_param(request, "token_id")
    container = container_of(request)
    actor = api_actor(principal_of(request))
    async with container.db.transaction() as session:
        row = await tokens.revoke(session, token_id, actor=actor, at=container.clock.now())
        if row is None:
            raise not_found("token activo")
    return json_response(TokenOut.model_validate(row, from_attributes=True))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/tokens", create)
    app.router.add_get("/api/v1/tokens", list_tokens)
    app.router.add_delete("/api/v1/tokens/{token_id}", revoke)
