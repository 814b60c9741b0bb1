"""Local validator of REPs (CFDI 4.0 tipo P + Pagos 2.0) keyed by SAT's error codes.

Used before any stamp is spent or any PAC is called, and on its own for REPs made elsewhere
(``timbrado validate``). Every rule answers a :class:`Finding` with SAT's code and a Spanish message.

Sources for the rules and texts:

* SAT, "Matriz de errores del Complemento para recepción de pagos 2.0" (CRP20101–CRP20279), texts as
  returned by PACs, e.g. the test-suite of ntlink's SOAP client (NtLinkClientPagosTest) and the
  summary of ``MatrizDeErrores_CRP_V20_RevB.xls``; rules CRP20217/CRP20276 as quoted by the KPac
  validators (PagoValidator).
* SAT, "Matriz de errores CFDI 4.0" (CFDI40101 Fecha, CFDI40102 sello, CFDI40106 certificado,
  CFDI40126 LugarExpedicion, CFDI40148 DomicilioFiscalReceptor, CFDI40161 UsoCFDI, CFDI40201).
* Anexo 20, validaciones del PAC: 401 "Fecha y hora de generación fuera de rango" (72 horas).
* SAT, "Guía de llenado del complemento para recepción de pagos 2.0": limits of ImporteDR and of
  amounts converted with EquivalenciaDR, Totales in MXN rounded to 2 decimals.

Rules no PAC can check (the installment history of each invoice) use our own snake_case codes.
SAT's CRP20275 is documented only loosely; see :func:`_check_cross_currency` for our reading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from lxml import etree

from core.cfdi.cadena import CFDI_NS, PAGOS_NS, cadena_original
from core.cfdi.catalogs import currency_decimals, payment_form_exists, postal_code_exists, postal_code_time_zone
from core.cfdi.errors import UnsafeXml
from core.cfdi.money import decimals_of, parse_decimal, round_half_up, round_up, truncate, unit
from core.cfdi.parsing import MAX_XML_BYTES, parse_untrusted
from core.cfdi.signing import certificate_number_of, load_certificate_b64, verify_seal
from core.cfdi.taxes import amount_limits
from core.cfdi.xsd import validate_xsd

_C = "{" + CFDI_NS + "}"
_P = "{" + PAGOS_NS + "}"
ZERO = Decimal(0)
ONE = Decimal(1)
WINDOW = timedelta(hours=72)
_FECHA = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_BANKED = frozenset({"02", "03", "04", "05", "06", "28", "29"})
_OBJETO_IMP = frozenset({"01", "02", "03", "04", "05", "06", "07", "08"})
_IMPUESTOS = frozenset({"001", "002", "003"})
_FACTORES = frozenset({"Tasa", "Cuota", "Exento"})
_IVA_TRASLADO = frozenset({Decimal("0"), Decimal("0.16"), Decimal("0.08")})
_IEPS_TASAS = frozenset(
    Decimal(v)
    for v in ("0.265", "0.3", "0.53", "0.5", "1.6", "0.304", "0.25", "0.09", "0.08", "0.07", "0.06", "0.03", "0")
)
_IEPS_CUOTA_MAX = Decimal("59.1449")
_TOTAL_NAMES = {
    ("002", "16"): ("TotalTrasladosBaseIVA16", "TotalTrasladosImpuestoIVA16", "CRP20204", "CRP20205"),
    ("002", "8"): ("TotalTrasladosBaseIVA8", "TotalTrasladosImpuestoIVA8", "CRP20206", "CRP20207"),
    ("002", "0"): ("TotalTrasladosBaseIVA0", "TotalTrasladosImpuestoIVA0", "CRP20208", "CRP20209"),
}
_RETENCION_TOTAL = {"002": ("TotalRetencionesIVA", "CRP20201"), "001": ("TotalRetencionesISR", "CRP20202"),
                    "003": ("TotalRetencionesIEPS", "CRP20203")}  # fmt: skip

MESSAGES: dict[str, str] = {
    "CRP20101": 'El valor del campo TipoDeComprobante debe ser "P".',
    "CRP20102": 'El valor del campo Exportacion debe ser "01".',
    "CRP20103": 'El valor del campo SubTotal debe ser cero "0".',
    "CRP20104": 'El valor del campo Moneda debe ser "XXX".',
    "CRP20105": "El campo FormaPago no se debe registrar en el CFDI.",
    "CRP20106": "El campo MetodoPago no se debe registrar en el CFDI.",
    "CRP20107": "El campo CondicionesDePago no se debe registrar en el CFDI.",
    "CRP20108": "El campo Descuento no se debe registrar en el CFDI.",
    "CRP20109": "El campo TipoCambio no se debe registrar en el CFDI.",
    "CRP20110": 'El valor del campo Total debe ser cero "0".',
    "CRP20111": "Solo debe existir un Concepto en el CFDI.",
    "CRP20112": "Si no existe el nodo ACuentaTerceros, no se deben registrar apartados dentro de Conceptos.",
    "CRP20113": 'El valor del campo ClaveProdServ debe ser "84111506".',
    "CRP20114": "El campo NoIdentificacion no se debe registrar en el CFDI.",
    "CRP20115": 'El valor del campo Cantidad debe ser "1".',
    "CRP20116": 'El valor del campo ClaveUnidad debe ser "ACT".',
    "CRP20117": "El campo Unidad no se debe registrar en el CFDI.",
    "CRP20118": 'El valor del campo Descripcion debe ser "Pago".',
    "CRP20119": 'El valor del campo ValorUnitario debe ser cero "0".',
    "CRP20120": 'El valor del campo Importe debe ser cero "0".',
    "CRP20121": "El campo Descuento no se debe registrar en el CFDI.",
    "CRP20122": 'El valor del campo ObjetoImp debe ser "01".',
    "CRP20123": "No se debe registrar el apartado de Impuestos en el CFDI.",
    "tipo_relacion_rep": 'En un complemento de pago solo se admite TipoRelacion "04" (sustitución de los CFDI '
    "previos).",
    "CRP20211": "El valor del campo MontoTotalPagos no es igual al redondeo de la suma del resultado de "
    "multiplicar cada uno de los atributos Monto por el valor registrado en el atributo TipoCambioP de "
    "cada nodo Pago.",
    "CRP20212": 'El valor del campo FormaDePagoP debe ser distinto de "99".',
    "CRP20213": 'El campo MonedaP debe ser distinto de "XXX".',
    "CRP20214": "El campo TipoCambioP se debe registrar.",
    "CRP20215": 'El campo TipoCambioP debe contener el valor "1".',
    "CRP20217": "La suma de los valores registrados en el campo ImpPagado de los apartados DoctoRelacionado "
    "no es menor o igual que el valor del campo Monto.",
    "CRP20218": 'El valor del campo Monto no es mayor que cero "0".',
    "CRP20219": "El valor del campo Monto debe tener hasta la cantidad de decimales que soporte la moneda "
    "registrada en el campo MonedaP.",
    "CRP20221": "El campo RfcEmisorCtaOrd no se debe registrar.",
    "CRP20223": "El campo NomBancoOrdExt se debe registrar.",
    "CRP20224": "El campo CtaOrdenante no se debe registrar.",
    "CRP20227": "El campo RfcEmisorCtaBen no se debe registrar.",
    "CRP20228": "El campo CtaBeneficiario no se debe registrar.",
    "CRP20229": "El campo TipoCadPago no se debe registrar.",
    "CRP20230": "El campo CertPago se debe registrar.",
    "CRP20231": "El campo CertPago no se debe registrar.",
    "CRP20232": "El campo CadPago se debe registrar.",
    "CRP20233": "El campo CadPago no se debe registrar.",
    "CRP20234": "El campo SelloPago se debe registrar.",
    "CRP20235": "El campo SelloPago no se debe registrar.",
    "CRP20236": 'El valor del campo MonedaDR debe ser distinto de "XXX".',
    "CRP20237": "El campo EquivalenciaDR se debe registrar.",
    "CRP20238": 'El campo EquivalenciaDR debe contener el valor "1".',
    "CRP20239": "El campo ImpSaldoAnt debe ser mayor a cero.",
    "CRP20240": "El valor del campo ImpSaldoAnt debe tener hasta la cantidad de decimales que soporte la "
    "moneda registrada en el campo MonedaDR.",
    "CRP20241": "El campo ImpPagado debe ser mayor a cero.",
    "CRP20242": "El valor del campo ImpPagado debe tener hasta la cantidad de decimales que soporte la "
    "moneda registrada en el campo MonedaDR.",
    "CRP20243": "El valor del campo ImpSaldoInsoluto debe tener hasta la cantidad de decimales que soporte "
    "la moneda registrada en el campo MonedaDR.",
    "CRP20244": "El campo ImpSaldoInsoluto debe ser mayor o igual a cero y calcularse con la suma de los "
    "campos ImpSaldoAnt menos el ImpPagado.",
    "CRP20245": "El campo ObjetoImpDR debe tener un valor del catálogo c_ObjetoImp.",
    "CRP20246": "El nodo hijo ImpuestosDR del nodo DoctoRelacionado debe existir.",
    "CRP20247": "El nodo hijo ImpuestosDR del nodo DoctoRelacionado no debe existir.",
    "CRP20248": "En caso de utilizar el nodo ImpuestosDR en un documento relacionado, se deben incluir "
    "impuestos de traslados y/o retenciones.",
    "CRP20249": "El valor del campo BaseDR que corresponde a Retención debe ser mayor que cero.",
    "CRP20250": "El valor del campo ImpuestoDR que corresponde a Retención no contiene un valor del "
    "catálogo c_Impuesto.",
    "CRP20251": "El valor del campo TipoFactorDR que corresponde a Retención no contiene un valor del "
    "catálogo c_TipoFactor.",
    "CRP20252": "El valor registrado en el campo TipoFactorDR que corresponde a Retención debe ser distinto de Exento.",
    "CRP20253": "El valor del campo TasaOCuotaDR que corresponde a Retención no contiene un valor del "
    "catálogo c_TasaOCuota o se encuentra fuera de rango.",
    "CRP20254": "El valor del campo ImporteDR que corresponde a Retención no se encuentra entre el límite "
    "inferior y superior permitido.",
    "CRP20255": "El valor del campo BaseDR que corresponde a Traslado debe ser mayor que cero.",
    "CRP20256": "El valor del campo ImpuestoDR que corresponde a Traslado no contiene un valor del "
    "catálogo c_Impuesto.",
    "CRP20257": "El valor del campo TipoFactorDR que corresponde a Traslado no contiene un valor del "
    "catálogo c_TipoFactor.",
    "CRP20258": "Si el valor registrado es Exento no se deben registrar los atributos TasaOCuotaDR ni ImporteDR.",
    "CRP20259": "Si el valor registrado es Tasa o Cuota se deben registrar los atributos TasaOCuotaDR e ImporteDR.",
    "CRP20260": "El valor del campo TasaOCuotaDR que corresponde a Traslado no contiene un valor del "
    "catálogo c_TasaOCuota o se encuentra fuera de rango.",
    "CRP20261": "El valor del campo ImporteDR que corresponde a Traslado no se encuentra entre el límite "
    "inferior y superior permitido.",
    "CRP20262": "El campo ImpuestoP no contiene un valor del catálogo c_Impuesto.",
    "CRP20263": "Debe haber sólo un registro por cada tipo de impuesto retenido.",
    "CRP20264": "Debe existir al menos uno de los campos TotalRetencionesIVA, TotalRetencionesISR, "
    "TotalRetencionesIEPS.",
    "CRP20265": "El campo ImporteP que corresponde a Retención no es igual a la suma de los importes de los "
    "impuestos retenidos registrados en los documentos relacionados donde el impuesto sea igual al "
    "campo ImpuestoP de este elemento.",
    "CRP20266": "Si todos los traslados son Exento solo deben existir los campos BaseP, ImpuestoP y TipoFactorP.",
    "CRP20267": "Debe existir al menos uno de los campos TotalTrasladosBaseIVA16, TotalTrasladosBaseIVA8, "
    "TotalTrasladosBaseIVA0 o TotalTrasladosBaseIVAExento.",
    "CRP20268": "El campo BaseP que corresponde a Traslado no es igual a la suma de las bases registradas "
    "en los documentos relacionados con el mismo impuesto y la misma TasaOCuota.",
    "CRP20269": "El campo BaseP que corresponde a Traslado Exento no es igual a la suma de las bases "
    "registradas en los documentos relacionados.",
    "CRP20270": "El campo ImpuestoP que corresponde a Traslado no contiene un valor del catálogo c_Impuesto.",
    "CRP20271": "Debe haber sólo un registro con la misma combinación de impuesto, factor y tasa por cada traslado.",
    "CRP20272": "El valor de TasaOCuotaP debe corresponder a un valor del catálogo c_TasaOCuota para el "
    "ImpuestoP y el TipoFactorP registrados.",
    "CRP20273": "Deben existir al menos uno de los campos TotalTrasladosImpuestoIVA16, "
    "TotalTrasladosImpuestoIVA8, TotalTrasladosImpuestoIVA0 cuando existan traslados con un TipoFactor "
    "distinto a Exento.",
    "CRP20274": "El campo ImporteP que corresponde a Traslado no es igual a la suma de los importes de los "
    "impuestos registrados en los documentos relacionados con el mismo impuesto y la misma TasaOCuota.",
    "CRP20275": "El valor del campo ImpPagado convertido a la moneda del pago no se encuentra entre el "
    "límite inferior y superior permitido.",
    "CRP20276": "El valor del campo Monto no se encuentra entre el límite inferior y superior permitido.",
    "CFDI40101": "El campo Fecha no cumple con el patrón requerido.",
    "CFDI40102": "El resultado de la digestión debe ser igual al resultado de la desencripción del sello.",
    "CFDI40106": "El certificado no cumple con alguno de los valores permitidos.",
    "CFDI40126": "El campo LugarExpedicion no contiene un valor del catálogo c_CodigoPostal.",
    "CFDI40148": "El campo DomicilioFiscalReceptor no contiene un valor del catálogo c_CodigoPostal.",
    "CFDI40161": 'El campo UsoCFDI debe contener el valor "CP01" en un CFDI de tipo P.',
    "CFDI40201": "No se debe registrar el apartado Impuestos en un CFDI de tipo P.",
    "401": "Fecha y hora de generación fuera de rango: la Fecha no puede ser posterior al momento del "
    "timbrado ni anterior a 72 horas.",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: SAT code (or our snake_case code), Spanish message, XPath-like location."""

    code: str
    message: str
    path: str


@dataclass(frozen=True, slots=True)
class Installment:
    """A previously stamped installment of one invoice (from our ledger)."""

    number: int
    previous_balance: Decimal
    amount_paid: Decimal
    outstanding_balance: Decimal


class _Report:
    __slots__ = ("findings",)

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, code: str, path: str, detail: str | None = None) -> None:
        message = MESSAGES.get(code, code)
        if detail:
            message = f"{message} {detail}"
        self.findings.append(Finding(code, message, path))

    def own(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(code, message, path))


def _dec(el: etree._Element, name: str) -> Decimal | None:
    return parse_decimal(el.get(name))


def _too_many_decimals(text: str | None, decimals: int | None) -> bool:
    value = parse_decimal(text)
    if value is None or decimals is None:
        return False
    return decimals_of(value) > decimals


def _limits_converted(
    amount: Decimal, amount_decimals: int, equivalence: Decimal, equivalence_text: str, p_decimals: int
) -> tuple[Decimal, Decimal]:
    """Limits of ``amount`` (MonedaDR) converted to MonedaP with EquivalenciaDR (guía de llenado)."""
    half_amount = unit(amount_decimals) / 2
    eq_decimals = min(decimals_of(parse_decimal(equivalence_text) or equivalence), 10)
    half_eq = unit(eq_decimals) / 2
    lower = truncate((amount - half_amount) / (equivalence + half_eq), p_decimals)
    upper_div = equivalence - half_eq
    upper = round_up((amount + half_amount) / upper_div, p_decimals) if upper_div > 0 else amount * 10**12
    return lower, upper


def _rate_ok(tax: str, factor: str, rate: Decimal | None, *, withholding: bool) -> bool:
    if rate is None or rate < 0:
        return False
    if tax == "002":
        if factor != "Tasa":
            return False
        return rate <= Decimal("0.16") if withholding else rate in _IVA_TRASLADO
    if tax == "001":
        return withholding and factor == "Tasa" and rate <= Decimal("0.35")
    if tax == "003":
        if factor == "Cuota":
            return rate <= _IEPS_CUOTA_MAX
        return factor == "Tasa" and rate in _IEPS_TASAS
    return False


def _check_envelope(root: etree._Element, report: _Report) -> None:
    path = "/cfdi:Comprobante"
    if root.get("TipoDeComprobante") != "P":
        report.add("CRP20101", path + "@TipoDeComprobante")
    if root.get("Exportacion") != "01":
        report.add("CRP20102", path + "@Exportacion")
    if root.get("SubTotal") != "0":
        report.add("CRP20103", path + "@SubTotal")
    if root.get("Moneda") != "XXX":
        report.add("CRP20104", path + "@Moneda")
    for code, name in (("CRP20105", "FormaPago"), ("CRP20106", "MetodoPago"), ("CRP20107", "CondicionesDePago"),
                       ("CRP20108", "Descuento"), ("CRP20109", "TipoCambio")):  # fmt: skip
        if root.get(name) is not None:
            report.add(code, f"{path}@{name}")
    if root.get("Total") != "0":
        report.add("CRP20110", path + "@Total")
    if root.find(_C + "Impuestos") is not None:
        report.add("CFDI40201", path + "/cfdi:Impuestos")
    for rel in root.findall(_C + "CfdiRelacionados"):
        if rel.get("TipoRelacion") != "04":
            report.add("tipo_relacion_rep", path + "/cfdi:CfdiRelacionados@TipoRelacion")
    lugar = root.get("LugarExpedicion", "")
    if not postal_code_exists(lugar):
        report.add("CFDI40126", path + "@LugarExpedicion")
    receptor = root.find(_C + "Receptor")
    if receptor is not None:
        if not postal_code_exists(receptor.get("DomicilioFiscalReceptor", "")):
            report.add("CFDI40148", path + "/cfdi:Receptor@DomicilioFiscalReceptor")
        if receptor.get("UsoCFDI") != "CP01":
            report.add("CFDI40161", path + "/cfdi:Receptor@UsoCFDI")
    conceptos = root.findall(_C + "Conceptos/" + _C + "Concepto")
    if len(conceptos) != 1:
        report.add("CRP20111", path + "/cfdi:Conceptos")
    for concepto in conceptos[:1]:
        cpath = path + "/cfdi:Conceptos/cfdi:Concepto"
        children = [c for c in concepto if isinstance(c.tag, str)]
        if concepto.find(_C + "Impuestos") is not None:
            report.add("CRP20123", cpath + "/cfdi:Impuestos")
        elif any(c.tag != _C + "ACuentaTerceros" for c in children):
            report.add("CRP20112", cpath)
        for code, name, expected in (
            ("CRP20113", "ClaveProdServ", "84111506"), ("CRP20115", "Cantidad", "1"),
            ("CRP20116", "ClaveUnidad", "ACT"), ("CRP20118", "Descripcion", "Pago"),
            ("CRP20119", "ValorUnitario", "0"), ("CRP20120", "Importe", "0"), ("CRP20122", "ObjetoImp", "01"),
        ):  # fmt: skip
            if concepto.get(name) != expected:
                report.add(code, f"{cpath}@{name}")
        for code, name in (("CRP20114", "NoIdentificacion"), ("CRP20117", "Unidad"), ("CRP20121", "Descuento")):
            if concepto.get(name) is not None:
                report.add(code, f"{cpath}@{name}")


def _check_fecha(root: etree._Element, report: _Report, reference: datetime) -> None:
    fecha = root.get("Fecha", "")
    path = "/cfdi:Comprobante@Fecha"
    if not _FECHA.match(fecha):
        report.add("CFDI40101", path)
        return
    try:
        local = datetime.strptime(fecha, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        report.add("CFDI40101", path)
        return
    zone_name = postal_code_time_zone(root.get("LugarExpedicion", "")) or "America/Mexico_City"
    moment = local.replace(tzinfo=ZoneInfo(zone_name))
    if moment > reference:
        report.add("401", path, "La Fecha está en el futuro respecto del momento del timbrado.")
    elif reference - moment > WINDOW:
        report.add("401", path, "La Fecha es anterior a 72 horas.")


def _check_seal(root: etree._Element, report: _Report) -> None:
    sello = root.get("Sello", "")
    path = "/cfdi:Comprobante"
    certificate = load_certificate_b64(root.get("Certificado", ""))
    if certificate is None:
        report.add("CFDI40106", path + "@Certificado")
        return
    if certificate_number_of(certificate) != root.get("NoCertificado"):
        report.add("CFDI40106", path + "@NoCertificado", "NoCertificado no corresponde al certificado.")
    if not sello or not verify_seal(cadena_original(root), sello, certificate):
        report.add("CFDI40102", path + "@Sello")


def _check_taxes_dr(
    docto: etree._Element, dpath: str, d_decimals: int | None, report: _Report
) -> tuple[list[tuple[str, str, Decimal | None, Decimal, Decimal | None]], list[tuple[str, Decimal]]]:
    """Checks ImpuestosDR; returns traslados (impuesto, factor, tasa, base, importe) and retenciones."""
    traslados: list[tuple[str, str, Decimal | None, Decimal, Decimal | None]] = []
    retenciones: list[tuple[str, Decimal]] = []
    objeto = docto.get("ObjetoImpDR", "")
    impuestos = docto.findall(_P + "ImpuestosDR")
    if objeto == "02" and not impuestos:
        report.add("CRP20246", dpath)
    if objeto in {"01", "03", "04", "05"} and impuestos:
        report.add("CRP20247", dpath + "/pago20:ImpuestosDR")
    for imp in impuestos:
        ipath = dpath + "/pago20:ImpuestosDR"
        rets = imp.findall(_P + "RetencionesDR/" + _P + "RetencionDR")
        tras = imp.findall(_P + "TrasladosDR/" + _P + "TrasladoDR")
        if not rets and not tras:
            report.add("CRP20248", ipath)
        for i, r in enumerate(rets, 1):
            rpath = f"{ipath}/pago20:RetencionesDR/pago20:RetencionDR[{i}]"
            base, rate, amount = _dec(r, "BaseDR"), _dec(r, "TasaOCuotaDR"), _dec(r, "ImporteDR")
            tax, factor = r.get("ImpuestoDR", ""), r.get("TipoFactorDR", "")
            if base is None or base <= 0:
                report.add("CRP20249", rpath + "@BaseDR")
            if tax not in _IMPUESTOS:
                report.add("CRP20250", rpath + "@ImpuestoDR")
            if factor not in _FACTORES:
                report.add("CRP20251", rpath + "@TipoFactorDR")
            elif factor == "Exento":
                report.add("CRP20252", rpath + "@TipoFactorDR")
            if not _rate_ok(tax, factor, rate, withholding=True):
                report.add("CRP20253", rpath + "@TasaOCuotaDR")
            if base is not None and rate is not None and amount is not None:
                lower, upper = amount_limits(base, rate, decimals_of(amount))
                if not lower <= amount <= upper:
                    report.add("CRP20254", rpath + "@ImporteDR", f"Límites: {lower} a {upper}.")
                retenciones.append((tax, amount))
        for i, t in enumerate(tras, 1):
            tpath = f"{ipath}/pago20:TrasladosDR/pago20:TrasladoDR[{i}]"
            base, rate, amount = _dec(t, "BaseDR"), _dec(t, "TasaOCuotaDR"), _dec(t, "ImporteDR")
            tax, factor = t.get("ImpuestoDR", ""), t.get("TipoFactorDR", "")
            if base is None or base <= 0:
                report.add("CRP20255", tpath + "@BaseDR")
            if tax not in _IMPUESTOS:
                report.add("CRP20256", tpath + "@ImpuestoDR")
            if factor not in _FACTORES:
                report.add("CRP20257", tpath + "@TipoFactorDR")
            if factor == "Exento":
                if t.get("TasaOCuotaDR") is not None or t.get("ImporteDR") is not None:
                    report.add("CRP20258", tpath)
            elif factor in _FACTORES:
                if rate is None or amount is None:
                    report.add("CRP20259", tpath)
                elif not _rate_ok(tax, factor, rate, withholding=False):
                    report.add("CRP20260", tpath + "@TasaOCuotaDR")
                elif base is not None:
                    lower, upper = amount_limits(base, rate, decimals_of(amount))
                    if not lower <= amount <= upper:
                        report.add("CRP20261", tpath + "@ImporteDR", f"Límites: {lower} a {upper}.")
            if base is not None:
                traslados.append((tax, factor, rate, base, amount))
    return traslados, retenciones


def _check_history(
    docto: etree._Element, dpath: str, history: Mapping[str, Sequence[Installment]], report: _Report
) -> None:
    uuid = docto.get("IdDocumento", "").upper()
    previous = sorted(history.get(uuid, ()), key=lambda item: item.number)
    number = docto.get("NumParcialidad", "")
    expected = previous[-1].number + 1 if previous else 1
    if not number.isdigit() or int(number) != expected:
        report.own(
            "num_parcialidad_fuera_de_secuencia",
            dpath + "@NumParcialidad",
            f"NumParcialidad debe ser {expected} para la factura {uuid} (se registró {number or 'vacío'}).",
        )
    if previous:
        last = previous[-1]
        if last.outstanding_balance <= 0:
            report.own("factura_liquidada", dpath, f"La factura {uuid} ya está pagada en su totalidad.")
        saldo = _dec(docto, "ImpSaldoAnt")
        if saldo is None or saldo != last.outstanding_balance:
            report.own(
                "saldo_anterior_no_coincide",
                dpath + "@ImpSaldoAnt",
                f"ImpSaldoAnt debe ser igual al ImpSaldoInsoluto de la parcialidad {last.number} "
                f"({last.outstanding_balance}).",
            )


def _check_cross_currency(
    pago: etree._Element,
    ppath: str,
    monto: Decimal,
    p_decimals: int,
    converted: list[tuple[Decimal, Decimal, Decimal]],
    report: _Report,
) -> None:
    """CRP20217 / CRP20275 / CRP20276 from (ImpPagado en MonedaP, límite inferior, límite superior).

    Same currency: Σ ImpPagado ≤ Monto (CRP20217, no margins). Different currencies: when
    Σ ImpPagado / EquivalenciaDR > Monto, Monto must lie between Σ lower and Σ upper limits
    (CRP20276). Our reading of CRP20275: a single document whose lower limit in MonedaP already
    exceeds Monto can never fit in the payment.
    """
    total = sum((c for c, _, _ in converted), ZERO)
    cross = any(lo != hi for _, lo, hi in converted)
    if not cross:
        if total > monto:
            report.add("CRP20217", ppath + "@Monto")
        return
    for i, (_, lower, _) in enumerate(converted, 1):
        if lower > monto:
            report.add("CRP20275", f"{ppath}/pago20:DoctoRelacionado[{i}]@ImpPagado")
    if round_half_up(total, p_decimals) > monto:
        lower_sum = sum((lo for _, lo, _ in converted), ZERO)
        upper_sum = sum((hi for _, _, hi in converted), ZERO)
        if not lower_sum <= monto <= upper_sum:
            report.add("CRP20276", ppath + "@Monto", f"Límites: {lower_sum} a {upper_sum}.")


def _close(a: Decimal, b: Decimal, p_decimals: int) -> bool:
    return abs(a - b) <= unit(p_decimals) / 2 + Decimal("0.000001")


def _check_pago(
    pago: etree._Element,
    ppath: str,
    history: Mapping[str, Sequence[Installment]] | None,
    report: _Report,
    totals: dict[str, Decimal],
) -> None:
    forma = pago.get("FormaDePagoP", "")
    moneda = pago.get("MonedaP", "")
    if forma == "99":
        report.add("CRP20212", ppath + "@FormaDePagoP")
    elif not payment_form_exists(forma):
        report.own("CRP20999", ppath + "@FormaDePagoP", "FormaDePagoP no contiene un valor del catálogo c_FormaPago.")
    if moneda == "XXX":
        report.add("CRP20213", ppath + "@MonedaP")
    p_decimals = currency_decimals(moneda) if moneda != "XXX" else None
    tipo_cambio = _dec(pago, "TipoCambioP")
    if moneda != "MXN" and tipo_cambio is None:
        report.add("CRP20214", ppath + "@TipoCambioP")
    if moneda == "MXN" and pago.get("TipoCambioP") is not None and pago.get("TipoCambioP") != "1":
        report.add("CRP20215", ppath + "@TipoCambioP")
    rate = ONE if moneda == "MXN" else (tipo_cambio or ONE)
    monto = _dec(pago, "Monto")
    if monto is None or monto <= 0:
        report.add("CRP20218", ppath + "@Monto")
    if _too_many_decimals(pago.get("Monto"), p_decimals):
        report.add("CRP20219", ppath + "@Monto")
    if monto is not None:
        totals["MontoTotalPagos"] = totals.get("MontoTotalPagos", ZERO) + monto * rate
    if forma not in _BANKED:
        for code, name in (("CRP20221", "RfcEmisorCtaOrd"), ("CRP20224", "CtaOrdenante"),
                           ("CRP20227", "RfcEmisorCtaBen"), ("CRP20228", "CtaBeneficiario")):  # fmt: skip
            if pago.get(name) is not None:
                report.add(code, f"{ppath}@{name}")
    if pago.get("RfcEmisorCtaOrd") == "XEXX010101000" and not pago.get("NomBancoOrdExt"):
        report.add("CRP20223", ppath + "@NomBancoOrdExt")
    tipo_cad = pago.get("TipoCadPago")
    if tipo_cad is not None and forma != "03":
        report.add("CRP20229", ppath + "@TipoCadPago")
    for present, absent, name in (("CRP20230", "CRP20231", "CertPago"), ("CRP20232", "CRP20233", "CadPago"),
                                  ("CRP20234", "CRP20235", "SelloPago")):  # fmt: skip
        if tipo_cad is not None and not pago.get(name):
            report.add(present, f"{ppath}@{name}")
        if tipo_cad is None and pago.get(name) is not None:
            report.add(absent, f"{ppath}@{name}")

    traslados_p: dict[tuple[str, str, str], list[Decimal]] = {}
    retenciones_p: dict[str, Decimal] = {}
    converted: list[tuple[Decimal, Decimal, Decimal]] = []
    for i, docto in enumerate(pago.findall(_P + "DoctoRelacionado"), 1):
        dpath = f"{ppath}/pago20:DoctoRelacionado[{i}]"
        moneda_dr = docto.get("MonedaDR", "")
        d_decimals = currency_decimals(moneda_dr) if moneda_dr != "XXX" else None
        if moneda_dr == "XXX":
            report.add("CRP20236", dpath + "@MonedaDR")
        eq_text = docto.get("EquivalenciaDR")
        equivalence = parse_decimal(eq_text)
        if moneda_dr != moneda and equivalence is None:
            report.add("CRP20237", dpath + "@EquivalenciaDR")
        if moneda_dr == moneda and eq_text is not None and equivalence != ONE:
            report.add("CRP20238", dpath + "@EquivalenciaDR")
        equivalence = equivalence if equivalence is not None and equivalence > 0 else ONE
        saldo, pagado, insoluto = _dec(docto, "ImpSaldoAnt"), _dec(docto, "ImpPagado"), _dec(docto, "ImpSaldoInsoluto")
        if saldo is None or saldo <= 0:
            report.add("CRP20239", dpath + "@ImpSaldoAnt")
        if _too_many_decimals(docto.get("ImpSaldoAnt"), d_decimals):
            report.add("CRP20240", dpath + "@ImpSaldoAnt")
        if pagado is None or pagado <= 0:
            report.add("CRP20241", dpath + "@ImpPagado")
        if _too_many_decimals(docto.get("ImpPagado"), d_decimals):
            report.add("CRP20242", dpath + "@ImpPagado")
        if _too_many_decimals(docto.get("ImpSaldoInsoluto"), d_decimals):
            report.add("CRP20243", dpath + "@ImpSaldoInsoluto")
        if insoluto is None or insoluto < 0 or saldo is None or pagado is None or insoluto != saldo - pagado:
            report.add("CRP20244", dpath + "@ImpSaldoInsoluto")
        if docto.get("ObjetoImpDR", "") not in _OBJETO_IMP:
            report.add("CRP20245", dpath + "@ObjetoImpDR")
        if history is not None:
            _check_history(docto, dpath, history, report)
        if pagado is not None and p_decimals is not None:
            if moneda_dr == moneda:
                converted.append((pagado, pagado, pagado))
            else:
                lower, upper = _limits_converted(
                    pagado, d_decimals if d_decimals is not None else 2, equivalence, eq_text or "1", p_decimals
                )
                converted.append((pagado / equivalence, lower, upper))
        traslados, retenciones = _check_taxes_dr(docto, dpath, d_decimals, report)
        for tax, factor, rate_dr, base, amount in traslados:
            key = (tax, factor, "" if rate_dr is None else f"{rate_dr:.6f}")
            acc = traslados_p.setdefault(key, [ZERO, ZERO])
            acc[0] += base / equivalence
            acc[1] += (amount or ZERO) / equivalence
        for tax, amount in retenciones:
            retenciones_p[tax] = retenciones_p.get(tax, ZERO) + amount / equivalence
    if monto is not None and p_decimals is not None:
        _check_cross_currency(pago, ppath, monto, p_decimals, converted, report)
    _check_impuestos_p(pago, ppath, p_decimals if p_decimals is not None else 2, rate, traslados_p, retenciones_p,
                       report, totals)  # fmt: skip


def _check_impuestos_p(
    pago: etree._Element,
    ppath: str,
    p_decimals: int,
    rate: Decimal,
    traslados_dr: dict[tuple[str, str, str], list[Decimal]],
    retenciones_dr: dict[str, Decimal],
    report: _Report,
    totals: dict[str, Decimal],
) -> None:
    ipath = ppath + "/pago20:ImpuestosP"
    seen_ret: set[str] = set()
    for i, r in enumerate(pago.findall(_P + "ImpuestosP/" + _P + "RetencionesP/" + _P + "RetencionP"), 1):
        rpath = f"{ipath}/pago20:RetencionesP/pago20:RetencionP[{i}]"
        tax = r.get("ImpuestoP", "")
        amount = _dec(r, "ImporteP") or ZERO
        if tax not in _IMPUESTOS:
            report.add("CRP20262", rpath + "@ImpuestoP")
            continue
        if tax in seen_ret:
            report.add("CRP20263", rpath)
        seen_ret.add(tax)
        if not _close(amount, retenciones_dr.get(tax, ZERO), p_decimals):
            report.add("CRP20265", rpath + "@ImporteP", f"Valor esperado: {retenciones_dr.get(tax, ZERO):.6f}.")
        name = _RETENCION_TOTAL[tax][0]
        totals[name] = totals.get(name, ZERO) + amount * rate
    for tax in retenciones_dr:
        if tax not in seen_ret:
            report.add("CRP20265", ipath, f"Falta RetencionP para el impuesto {tax}.")
    seen_tras: set[tuple[str, str, str]] = set()
    for i, t in enumerate(pago.findall(_P + "ImpuestosP/" + _P + "TrasladosP/" + _P + "TrasladoP"), 1):
        tpath = f"{ipath}/pago20:TrasladosP/pago20:TrasladoP[{i}]"
        tax, factor = t.get("ImpuestoP", ""), t.get("TipoFactorP", "")
        base = _dec(t, "BaseP") or ZERO
        amount_p = _dec(t, "ImporteP")
        rate_p = _dec(t, "TasaOCuotaP")
        if tax not in _IMPUESTOS:
            report.add("CRP20270", tpath + "@ImpuestoP")
            continue
        key = (tax, factor, "" if rate_p is None else f"{rate_p:.6f}")
        if key in seen_tras:
            report.add("CRP20271", tpath)
        seen_tras.add(key)
        expected = traslados_dr.get(key, [ZERO, ZERO])
        if factor == "Exento":
            if rate_p is not None or amount_p is not None:
                report.add("CRP20266", tpath)
            if not _close(base, expected[0], p_decimals):
                report.add("CRP20269", tpath + "@BaseP", f"Valor esperado: {expected[0]:.6f}.")
            if tax == "002":
                totals["TotalTrasladosBaseIVAExento"] = totals.get("TotalTrasladosBaseIVAExento", ZERO) + base * rate
            continue
        if not _rate_ok(tax, factor, rate_p, withholding=False):
            report.add("CRP20272", tpath + "@TasaOCuotaP")
            continue
        if not _close(base, expected[0], p_decimals):
            report.add("CRP20268", tpath + "@BaseP", f"Valor esperado: {expected[0]:.6f}.")
        if amount_p is None or not _close(amount_p, expected[1], p_decimals):
            report.add("CRP20274", tpath + "@ImporteP", f"Valor esperado: {expected[1]:.6f}.")
        if tax == "002" and rate_p is not None:
            suffix = {Decimal("0.16"): "16", Decimal("0.08"): "8", ZERO: "0"}[rate_p]
            base_name, tax_name, _, _ = _TOTAL_NAMES[("002", suffix)]
            totals[base_name] = totals.get(base_name, ZERO) + base * rate
            totals[tax_name] = totals.get(tax_name, ZERO) + (amount_p or ZERO) * rate
    for key in traslados_dr:
        if key not in seen_tras:
            report.add("CRP20268", ipath, f"Falta TrasladoP para {key[0]} {key[1]} {key[2]}.")


def _check_totales(pagos: etree._Element, totals: dict[str, Decimal], report: _Report) -> None:
    totales = pagos.find(_P + "Totales")
    path = "/cfdi:Comprobante/cfdi:Complemento/pago20:Pagos/pago20:Totales"
    if totales is None:
        return  # XSD reports the missing node
    registered_monto = _dec(totales, "MontoTotalPagos")
    if registered_monto is None or registered_monto != round_half_up(totals.get("MontoTotalPagos", ZERO), 2):
        report.add("CRP20211", path + "@MontoTotalPagos")
    checks: list[tuple[str, str]] = [(name, code) for name, code in _RETENCION_TOTAL.values()]
    for base_name, tax_name, base_code, tax_code in _TOTAL_NAMES.values():
        checks += [(base_name, base_code), (tax_name, tax_code)]
    checks.append(("TotalTrasladosBaseIVAExento", "CRP20210"))
    for name, code in checks:
        registered = _dec(totales, name)
        expected = totals.get(name)
        if expected is None:
            if registered is not None and registered != 0:
                report.add(code, f"{path}@{name}", "No existen impuestos que lo justifiquen.")
            continue
        if registered is None:
            if name.startswith("TotalRetenciones"):
                report.add("CRP20264", f"{path}@{name}")
            elif "Base" in name:
                report.add("CRP20267", f"{path}@{name}")
            else:
                report.add("CRP20273", f"{path}@{name}")
            continue
        if round_half_up(registered, 2) != round_half_up(expected, 2):
            report.add(code, f"{path}@{name}", f"Valor esperado: {round_half_up(expected, 2)}.")


def validate_rep(
    xml: bytes | etree._Element,
    *,
    history: Mapping[str, Sequence[Installment]] | None = None,
    now: datetime | None = None,
    pac_time: datetime | None = None,
    check_xsd: bool = True,
    xsd_variant: str = "light",
    check_seal: bool = True,
    max_bytes: int = MAX_XML_BYTES,
) -> list[Finding]:
    """Every SAT rule the REP breaks (empty list: valid).

    ``history`` maps invoice UUIDs (upper case) to their previous installments; ``pac_time`` (or
    ``now``, or the current time) is the stamping moment for the 72-hour window. ``xml`` may be
    untrusted bytes (parsed safely) or an lxml element.
    """
    report = _Report()
    if isinstance(xml, bytes | bytearray):
        try:
            root = parse_untrusted(bytes(xml), max_bytes=max_bytes)
        except UnsafeXml as exc:
            return [Finding(exc.code, exc.message, "/")]
    else:
        root = xml
    if root.tag != _C + "Comprobante" or root.get("Version") != "4.0":
        return [Finding("no_es_cfdi40", "El documento no es un CFDI versión 4.0.", "/")]
    if check_xsd:
        for error in validate_xsd(root, variant=xsd_variant)[:20]:
            report.own("XSD", error.path or "/", f"El XML no cumple con el esquema del SAT: {error.message}")
    _check_envelope(root, report)
    reference = pac_time or now or datetime.now(UTC)
    if reference.tzinfo is None:
        raise ValueError("now/pac_time deben incluir zona horaria")
    _check_fecha(root, report, reference)
    pagos_nodes = root.findall(_C + "Complemento/" + _P + "Pagos")
    if len(pagos_nodes) != 1:
        report.own("CRP20999", "/cfdi:Comprobante/cfdi:Complemento",
                   "El CFDI de tipo P debe contener exactamente un complemento Pagos versión 2.0.")  # fmt: skip
    else:
        pagos = pagos_nodes[0]
        totals: dict[str, Decimal] = {}
        for i, pago in enumerate(pagos.findall(_P + "Pago"), 1):
            _check_pago(
                pago, f"/cfdi:Comprobante/cfdi:Complemento/pago20:Pagos/pago20:Pago[{i}]", history, report, totals
            )
        _check_totales(pagos, totals, report)
    if check_seal:
        _check_seal(root, report)
    return report.findings
