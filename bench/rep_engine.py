"""Micro-benchmark of the REP engine (core.cfdi), in one run on this machine.

Prints per-REP times for:
  * our build + cadena + seal (build_rep), and the cadena alone (native vs SAT XSLT);
  * satcfdi's own build + seal of a comparable Pagos 2.0 REP (one PPD invoice, IVA 16 %);
  * XSD validation (light vs SAT's full schemas), the local validator, the sandbox TFD;
  * raw RSA-2048 sign rate of ``cryptography``.

Run: .venv/bin/python bench/rep_engine.py [N]
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from core.cfdi.builder import build_rep
from core.cfdi.cadena import cadena_original_native, cadena_original_xslt
from core.cfdi.tfd import stamp, verify_cfdi
from core.cfdi.validator import validate_rep
from core.cfdi.xsd import schema, validate_xsd
from tests.unit.cfdi.factories import make_signer, simple_rep


def per_call(label: str, fn: Callable[[], object], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    ms = (time.perf_counter() - start) / n * 1000
    print(f"{label:<58} {ms:8.3f} ms  ({1000 / ms:8.0f}/s)")
    return ms


def satcfdi_rep(signer_sat: object) -> Callable[[], bytes]:
    from satcfdi.create.cfd import cfdi40, pago20

    def run() -> bytes:
        complemento = pago20.Pagos(
            pago=pago20.Pago(
                fecha_pago=dt.datetime(2025, 3, 9, 12, 30),
                forma_de_pago_p="03",
                moneda_p="MXN",
                tipo_cambio_p=Decimal(1),
                docto_relacionado=pago20.DoctoRelacionado(
                    id_documento="6F1A2B3C-4D5E-4F60-8172-839405A6B7C8",
                    moneda_dr="MXN",
                    num_parcialidad=1,
                    imp_saldo_ant=Decimal("1160.00"),
                    imp_pagado=Decimal("580.00"),
                    objeto_imp_dr="02",
                    serie="F",
                    folio="1001",
                    equivalencia_dr=Decimal(1),
                    impuestos_dr=pago20.ImpuestosDR(
                        traslados_dr=pago20.TrasladoDR(
                            base_dr=Decimal("500.00"),
                            impuesto_dr="002",
                            tipo_factor_dr="Tasa",
                            tasa_o_cuota_dr=Decimal("0.160000"),
                            importe_dr=Decimal("80.00"),
                        )
                    ),
                ),
                num_operacion="SPEI-123",
            )
        )
        invoice = cfdi40.Comprobante.pago(
            emisor=cfdi40.Emisor(rfc="EKU9003173C9", nombre="ESCUELA KEMPER URGATE", regimen_fiscal="601"),
            lugar_expedicion="06600",
            receptor=cfdi40.Receptor(
                rfc="URE180429TM6",
                nombre="UNIVERSIDAD ROBOTICA ESPAÑOLA",
                domicilio_fiscal_receptor="86991",
                regimen_fiscal_receptor="601",
                uso_cfdi="CP01",
            ),
            complemento_pago=complemento,
            serie="P",
            folio="1",
            fecha=dt.datetime(2025, 3, 10, 12, 30),
        )
        invoice.sign(signer_sat)
        return invoice.xml_bytes()

    return run


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    signer = make_signer()
    pac = make_signer(rfc="SPR190613I52", serial_digits="30001000000500003456")
    rep = simple_rep()
    built = build_rep(rep, signer)
    root = etree.fromstring(built.xml)
    print(f"REP engine micro-benchmark, {n} iterations per figure, one thread\n")

    ours = per_call("ours: build + cadena + seal (build_rep)", lambda: build_rep(rep, signer), n)
    per_call("cadena original, native", lambda: cadena_original_native(root), n)
    per_call("cadena original, SAT XSLT (lxml, compiled once)", lambda: cadena_original_xslt(root), n)

    from satcfdi.models import Signer as SatSigner

    key_der = signer._key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sat_signer = SatSigner.load(certificate=signer.certificate_der, key=key_der, check=False)
    theirs = per_call("satcfdi: build + seal of a comparable Pagos 2.0 REP", satcfdi_rep(sat_signer), max(n // 4, 50))
    print(f"{'  ratio satcfdi / ours':<58} {theirs / ours:8.2f} x")

    t0 = time.perf_counter()
    schema("light")
    t1 = time.perf_counter()
    schema("full")
    t2 = time.perf_counter()
    print(f"{'XSD compile light / full':<58} {(t1 - t0) * 1000:8.0f} ms / {(t2 - t1) * 1000:.0f} ms")
    per_call("XSD validate, light schema set (catalogs by lookup)", lambda: validate_xsd(root), n)
    per_call("XSD validate, SAT full schemas", lambda: validate_xsd(root, variant="full"), max(n // 4, 50))
    now = dt.datetime(2025, 3, 10, 19, 0, tzinfo=dt.UTC)
    per_call("validate_rep (parse + light XSD + rules + sello)", lambda: validate_rep(built.xml, now=now), n)
    per_call(
        "sandbox TFD (verify sello + UUID + SelloSAT + serialize)",
        lambda: stamp(verify_cfdi(built.xml), pac, rfc_prov_certif="SPR190613I52", stamped_at=now),
        n,
    )
    key = signer._key
    data = built.cadena_original.encode()
    per_call(
        "raw RSA-2048 PKCS#1 v1.5 SHA-256 sign (cryptography)",
        lambda: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        n,
    )


if __name__ == "__main__":
    main()
