"""Small helpers that turn the container's settings into what core services need."""

from __future__ import annotations

from functools import lru_cache

from admin.container import Container
from core.audit.service import Actor, ActorKind, Driver
from core.auth.tokens import Principal
from core.calendar import BusinessCalendar
from core.contracts.documents import ServiceProvider
from core.enablement.service import EnablementConfig
from core.errors import NotFound
from core.orders.service import BankData, OrdersConfig
from core.uploads.store import ContentStore


def enablement_config(container: Container) -> EnablementConfig:
    s = container.settings
    return EnablementConfig(mail_from=s.mail_from, mail_domain=s.mail_domain, slack_enabled=s.slack_enabled)


def api_actor(principal: Principal) -> Actor:
    return Actor(ActorKind.TOKEN, f"token:{principal.token_id}", Driver.API, principal.name)


def cli_actor(user: str) -> Actor:
    return Actor(ActorKind.STAFF, f"cli:{user}", Driver.CLI, user)


def business_calendar(container: Container) -> BusinessCalendar:
    s = container.settings
    return _calendar(s.business_time_zone, s.office_hours, s.extra_holidays)


@lru_cache(maxsize=8)
def _calendar(tz: str, office_hours: tuple[int, int], extra_holidays: tuple[str, ...]) -> BusinessCalendar:
    """Built once per configuration: a calendar caches each year's holidays, which are slow to compute
    (they showed in every proof upload's profile when a new calendar was built per request)."""
    from datetime import date, time

    return BusinessCalendar(
        tz=tz,
        office_start=time(office_hours[0]),
        office_end=time(office_hours[1] % 24) if office_hours[1] < 24 else time(23, 59, 59),
        extra_holidays=frozenset(date.fromisoformat(d) for d in extra_holidays),
    )


def orders_config(container: Container) -> OrdersConfig:
    s = container.settings
    return OrdersConfig(
        mail_from=s.mail_from,
        mail_domain=s.mail_domain,
        slack_enabled=s.slack_enabled,
        bank=BankData(s.bank_beneficiary, s.bank_name, s.bank_clabe),
        calendar=business_calendar(container),
        sla_hours=s.review_sla_hours,
        reminder_fraction=s.review_reminder_fraction,
    )


def file_store(container: Container) -> ContentStore:
    return ContentStore(container.settings.data_dir / "files")


def require_vendor_scope(principal: Principal, vendor_id: int) -> None:
    """Staff may act for any vendor; a vendor token only for itself (404 otherwise: nothing leaks)."""
    if principal.is_staff:
        return
    if principal.vendor_id != vendor_id:
        raise NotFound("No se encontró el recurso.")


def service_provider(container: Container) -> ServiceProvider:
    s = container.settings
    return ServiceProvider.create(
        razon_social=s.provider_name, rfc=s.provider_rfc, direccion=s.provider_address, correo=s.provider_email
    )
