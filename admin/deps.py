"""Small helpers that turn the container's settings into what core services need."""

from __future__ import annotations

from admin.container import Container
from core.audit.service import Actor, ActorKind, Driver
from core.auth.tokens import Principal
from core.enablement.service import EnablementConfig


def enablement_config(container: Container) -> EnablementConfig:
    s = container.settings
    return EnablementConfig(mail_from=s.mail_from, mail_domain=s.mail_domain, slack_enabled=s.slack_enabled)


def api_actor(principal: Principal) -> Actor:
    return Actor(ActorKind.TOKEN, f"token:{principal.token_id}", Driver.API, principal.name)


def cli_actor(user: str) -> Actor:
    return Actor(ActorKind.STAFF, f"cli:{user}", Driver.CLI, user)
