"""SW Sapien (SmarterWeb) adapter: REST over aiohttp, written from SW's documented API.

* ``POST /security/authenticate`` with ``user``/``password`` headers answers
  ``{"status": "success", "data": {"token": ..., "expires_in": <epoch seconds>}}``; the token is
  cached until shortly before it expires and renewed once on a 401.
* ``POST /v4/cfdi33/stamp/v4`` (multipart field ``xml``; the path says cfdi33 but takes CFDI 4.0)
  with ``Authorization: Bearer <token>`` and ``customid: <idempotency key>``. Success:
  ``data.cfdi``, ``data.uuid``, ``data.fechaTimbrado``, ``data.noCertificadoSAT``... Errors:
  ``{"status": "error", "message": "<code>. <texto>", "messageDetail": ...}``.
* ``307. El comprobante contiene un timbre previo.``: SW returns the earlier stamp in ``data``
  when it has it; the adapter answers with it (``recovered=True``), otherwise raises
  :class:`~core.pac.base.PacAlreadyStamped` so the job retries later.
* Recovery by UUID: ``GET {api}/datawarehouse/v1/live/{uuid}`` lists the record with ``urlXml``.
* ``POST /cfdi33/cancel/xml``: a ``Cancelacion`` signed locally, so the CSD key and its password
  never travel (SW's ``/cfdi40/cancel/csd`` would take them). Answer ``data.uuid{UUID: code}``,
  ``data.acuse``. Status: SAT's public Consulta service (:mod:`core.pac.sat_status`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import aiohttp

from core.clock import Clock, SystemClock
from core.pac.base import (
    CancelResult,
    CancelStatus,
    PacAlreadyStamped,
    PacRejected,
    PacUnavailable,
    StampResult,
    check_cancel_request,
)
from core.pac.cancellation import CancelRequest, build_signed_cancellation
from core.pac.http import HttpAnswer, SessionHolder, request
from core.pac.sat_status import SAT_CONSULTA_URL, consult_sat_status
from core.pac.stamped import result_from_stamped_xml
from core.sat.credentials import Credential

PRODUCTION_URL = "https://services.sw.com.mx"
TEST_URL = "https://services.test.sw.com.mx"
PRODUCTION_API_URL = "https://api.sw.com.mx"
TEST_API_URL = "https://api.test.sw.com.mx"
_CODE = re.compile(r"^\s*([A-Z]*\d{3,6})\s*[.\-:]?\s*(.*)$", re.S)
_TOKEN_MARGIN = 60.0
_MAX_CUSTOM_ID = 100


def split_message(message: str) -> tuple[str, str]:
    """("307", "El comprobante contiene un timbre previo.") from SW's "307. El comprobante..."."""
    match = _CODE.match(message or "")
    if match is None:
        return "sw_error", (message or "SW rechazó la solicitud.")[:500]
    return match.group(1), (match.group(2) or message)[:500]


def custom_id(idempotency_key: str) -> str:
    """SW's ``customid`` (≤ 100 characters): the key itself, or its SHA-256 when longer."""
    if len(idempotency_key) <= _MAX_CUSTOM_ID:
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


class SwPac:
    """A :class:`~core.pac.base.Pac` over SW Sapien's REST services."""

    name = "sw"

    def __init__(
        self,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        base_url: str = PRODUCTION_URL,
        api_url: str = PRODUCTION_API_URL,
        sat_status_url: str = SAT_CONSULTA_URL,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
    ) -> None:
        if token is None and (user is None or password is None):
            raise ValueError("SW needs a token or a user and password")
        self._user = user
        self._password = password
        self._fixed_token = token
        self._token: str | None = token
        self._token_expires = float("inf") if token else 0.0
        self._base = base_url.rstrip("/")
        self._api = api_url.rstrip("/")
        self._sat_status_url = sat_status_url
        self._timeout = timeout
        self._http = SessionHolder(session)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"SwPac(base_url={self._base!r}, user={self._user!r}, password=<oculta>, token=<oculto>)"

    async def close(self) -> None:
        await self._http.close()

    # --- plumbing ---------------------------------------------------------------------------------

    @staticmethod
    def _json(answer: HttpAnswer) -> dict[str, Any]:
        try:
            data = json.loads(answer.body)
        except ValueError:
            raise PacUnavailable("pac_respuesta_invalida", "SW devolvió una respuesta que no se puede leer.") from None
        if not isinstance(data, dict):
            raise PacUnavailable("pac_respuesta_invalida", "SW devolvió una respuesta inesperada.")
        return data

    async def _authenticate(self) -> str:
        now = self._clock.now().timestamp()
        if self._token is not None and now < self._token_expires - _TOKEN_MARGIN:
            return self._token
        if self._fixed_token is not None:
            return self._fixed_token
        answer = await request(
            self._http.get(),
            "POST",
            f"{self._base}/security/authenticate",
            seconds=self._timeout,
            pac="SW",
            headers={"user": self._user or "", "password": self._password or ""},
        )
        body = self._json(answer)
        data = body.get("data") or {}
        token = data.get("token") if isinstance(data, dict) else None
        if answer.status >= 400 or body.get("status") != "success" or not isinstance(token, str):
            raise PacUnavailable("pac_credenciales", "SW no aceptó el usuario y contraseña configurados.")
        expires = data.get("expires_in")
        self._token = token
        self._token_expires = float(expires) if isinstance(expires, int | float) else now + 3600
        return token

    async def _send(
        self,
        method: str,
        url: str,
        *,
        form: tuple[str, bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[HttpAnswer, dict[str, Any]]:
        for attempt in (1, 2):
            token = await self._authenticate()
            data = None
            if form is not None:
                data = aiohttp.FormData()
                data.add_field(form[0], form[1], filename=form[0], content_type="text/xml")
            answer = await request(
                self._http.get(),
                method,
                url,
                seconds=self._timeout,
                pac="SW",
                data=data,
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
            )
            if answer.status == 401 and attempt == 1 and self._fixed_token is None:
                self._token, self._token_expires = None, 0.0
                continue
            if answer.status == 401:
                raise PacUnavailable("pac_credenciales", "SW rechazó el token de acceso.")
            return answer, self._json(answer)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- stamping ---------------------------------------------------------------------------------

    def _stamp_from(self, data: object, *, recovered: bool) -> StampResult | None:
        if not isinstance(data, dict):
            return None
        cfdi = data.get("cfdi")
        if not isinstance(cfdi, str) or not cfdi:
            return None
        uuid = data.get("uuid")
        return result_from_stamped_xml(
            cfdi.encode("utf-8"), pac_name=self.name, recovered=recovered, uuid=uuid if isinstance(uuid, str) else None
        )

    async def stamp(self, xml: bytes, *, idempotency_key: str) -> StampResult:
        headers = {"customid": custom_id(idempotency_key)} if idempotency_key else {}
        _, body = await self._send("POST", f"{self._base}/v4/cfdi33/stamp/v4", form=("xml", xml), headers=headers)
        if body.get("status") == "success":
            found = self._stamp_from(body.get("data"), recovered=False)
            if found is None:
                raise PacUnavailable("pac_respuesta_invalida", "SW no devolvió el CFDI timbrado.")
            return found
        code, message = split_message(str(body.get("message", "")))
        if code in ("307", "CFDI3307"):
            found = self._stamp_from(body.get("data"), recovered=True)
            if found is None:
                raise PacAlreadyStamped(None)
            return found
        raise PacRejected(code, message)

    async def recover(self, xml_or_uuid: bytes | str) -> StampResult | None:
        if isinstance(xml_or_uuid, bytes):
            try:
                return await self.stamp(xml_or_uuid, idempotency_key="")
            except (PacAlreadyStamped, PacRejected):
                return None
        _, body = await self._send("GET", f"{self._api}/datawarehouse/v1/live/{xml_or_uuid.upper()}")
        data = body.get("data")
        records = data.get("records") if isinstance(data, dict) else None
        if body.get("status") != "success" or not isinstance(records, list) or not records:
            return None
        url = records[0].get("urlXml") if isinstance(records[0], dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return None
        answer = await request(self._http.get(), "GET", url, seconds=self._timeout, pac="SW")
        if answer.status != 200:
            return None
        return result_from_stamped_xml(answer.body, pac_name=self.name, recovered=True, uuid=xml_or_uuid)

    # --- cancellation -----------------------------------------------------------------------------

    async def cancel(
        self,
        uuid: str,
        rfc_emisor: str,
        motivo: str,
        folio_sustitucion: str | None,
        *,
        credential: Credential,
    ) -> CancelResult:
        check_cancel_request(uuid, motivo, folio_sustitucion)
        signed = build_signed_cancellation(
            CancelRequest(uuid, rfc_emisor, motivo, folio_sustitucion, self._clock.now()), credential
        )
        _, body = await self._send("POST", f"{self._base}/cfdi33/cancel/xml", form=("xml", signed))
        if body.get("status") != "success":
            code, message = split_message(str(body.get("message", "")))
            raise PacRejected(code, message)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        codes = data.get("uuid") if isinstance(data.get("uuid"), dict) else {}
        assert isinstance(codes, dict)
        code = str(next((v for k, v in codes.items() if str(k).upper() == uuid.upper()), ""))
        acuse = data.get("acuse")
        if code not in ("201", "202"):
            raise PacRejected(code or "sw_cancelacion", f"El SAT no aceptó la cancelación ({code}).")
        return CancelResult(
            status=CancelStatus.CANCELLED if code == "202" else CancelStatus.REQUESTED,
            uuid=uuid.upper(),
            acuse=acuse.encode("utf-8") if isinstance(acuse, str) else None,
            raw=code,
        )

    async def cancel_status(self, uuid: str, *, rfc_emisor: str, rfc_receptor: str, total: str) -> CancelResult:
        return await consult_sat_status(
            self._http.get(),
            self._sat_status_url,
            uuid=uuid,
            rfc_emisor=rfc_emisor,
            rfc_receptor=rfc_receptor,
            total=total,
            seconds=self._timeout,
        )
