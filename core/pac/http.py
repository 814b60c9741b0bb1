"""Small aiohttp helpers shared by the real PAC adapters: timeouts, size cap, error mapping.

Transport failures become :class:`~core.pac.base.PacUnavailable` (retry later), HTTP 429 becomes
:class:`~core.pac.base.PacRateLimited` with the server's ``Retry-After``. Nothing here logs request
bodies or headers (they carry PAC passwords and tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from core.pac.base import PacRateLimited, PacUnavailable

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 3600))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - (now or datetime.now(UTC))).total_seconds(), 3600.0))


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    seconds: float,
    pac: str,
    data: aiohttp.FormData | bytes | None = None,
    json: object | None = None,
    headers: dict[str, str] | None = None,
) -> HttpAnswer:
    """Send one request; map timeouts, connection errors, 429 and 5xx to PAC errors."""
    try:
        async with session.request(
            method,
            url,
            data=data,
            json=json,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,
        ) as response:
            if response.status == 429:
                raise PacRateLimited(
                    retry_after_seconds(response.headers.get("Retry-After")),
                    f"{pac} limitó la frecuencia de solicitudes; se reintentará más tarde.",
                )
            if response.status >= 500:
                raise PacUnavailable(
                    "pac_error_servidor", f"{pac} respondió con un error del servidor ({response.status})."
                )
            body = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                raise PacUnavailable("pac_respuesta_invalida", f"La respuesta de {pac} excede el tamaño permitido.")
            return HttpAnswer(response.status, body)
    except TimeoutError:
        raise PacUnavailable("pac_tiempo_agotado", f"{pac} no respondió a tiempo.") from None
    except aiohttp.ClientError:
        raise PacUnavailable("pac_sin_conexion", f"No fue posible comunicarse con {pac}.") from None


class SessionHolder:
    """Uses the given session, or creates one on first use (closed by :meth:`close`)."""

    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self._session = session
        self._owned = session is None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owned = True
        return self._session

    async def close(self) -> None:
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()
