"""Facts of a stamped CFDI read from its TimbreFiscalDigital (for the real PAC adapters)."""

from __future__ import annotations

from core.cfdi.cadena import CFDI_NS, TFD_NS
from core.cfdi.errors import UnsafeXml
from core.cfdi.parsing import parse_untrusted
from core.pac.base import CancelStatus, PacUnavailable, StampResult

_TFD_PATH = f"{{{CFDI_NS}}}Complemento/{{{TFD_NS}}}TimbreFiscalDigital"


def result_from_stamped_xml(xml: bytes, *, pac_name: str, recovered: bool, uuid: str | None = None) -> StampResult:
    """A :class:`StampResult` from the stamped XML a PAC returned (checked to carry a TFD)."""
    try:
        root = parse_untrusted(xml)
    except UnsafeXml:
        raise PacUnavailable("pac_respuesta_invalida", f"{pac_name} devolvió un XML que no se puede leer.") from None
    tfd = root.find(_TFD_PATH)
    if tfd is None or not tfd.get("UUID"):
        raise PacUnavailable("pac_respuesta_invalida", f"{pac_name} devolvió un CFDI sin timbre fiscal digital.")
    found = tfd.get("UUID", "").upper()
    if uuid is not None and uuid.upper() != found:
        raise PacUnavailable("pac_respuesta_invalida", f"{pac_name} devolvió un UUID que no coincide con su timbre.")
    return StampResult(
        uuid=found,
        xml=xml,
        fecha_timbrado=tfd.get("FechaTimbrado", ""),
        no_certificado_sat=tfd.get("NoCertificadoSAT", ""),
        rfc_prov_certif=tfd.get("RfcProvCertif", ""),
        pac_name=pac_name,
        recovered=recovered,
    )


def status_from_sat(estado: str, estatus_cancelacion: str) -> CancelStatus:
    """SAT's Consulta answer (Estado, EstatusCancelacion) as a :class:`CancelStatus`."""
    estado_n = estado.strip().lower()
    estatus = estatus_cancelacion.strip().lower()
    if estado_n == "cancelado" or estatus.startswith(("cancelado", "plazo vencido")):
        return CancelStatus.CANCELLED
    if "rechaz" in estatus:
        return CancelStatus.REJECTED
    if "proceso" in estatus:
        return CancelStatus.PENDING_ACCEPTANCE
    return CancelStatus.REQUESTED
