"""``timbrado demo``: a guided run of the product on embedded defaults in a fresh temporary data dir.

Each step prints what it did; a step that cannot run says why and the demo goes on with the next
one it can run.  Nothing outside the temporary data dir is touched.

Steps run today: client with Proveedores Plus, configuration request (opened through the API path)
verified and approved, vendor, package, order, proof of payment upload, approval (plan
provisioned), estado de cuenta as a table, XLSX export, summary and alert e-mails, every queued
e-mail delivered to the spool folder as .eml.  Not run yet (reported as such): the request e-mail
through the Maildir watcher, contract signature with an e.firma and CSD configuration with generated
test credentials (no credential generator in the product code yet), invoices, payments and REP
stamping with the sandbox PAC, REP PDFs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from admin.cli_statements import render_statement
from admin.container import Container, build_container
from core.audit.service import Actor
from core.settings import Settings

NOT_YET = (
    (
        "Correo de solicitud en el Maildir",
        "el vigilante del buzón no se ejecuta en la demo; la solicitud se abre por la vía de la API",
    ),
    ("Contrato firmado con e.firma", "el producto aún no genera credenciales de prueba (e.firma) fuera de las pruebas"),
    ("CSD y Datos del CFDI", "el producto aún no genera un CSD de prueba fuera de las pruebas"),
    ("Facturas, pagos y timbrado de REP", "requiere CSD y facturas PPD timbradas de prueba"),
    ("PDF de los REP", "no hay REP timbrados en la demo"),
)


@dataclass
class DemoState:
    client_id: int = 0
    vendor_id: int = 0
    order_id: int = 0
    outputs: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 32), (11, 61, 92)).save(buffer, format="PNG")
    return buffer.getvalue()


async def run_demo(container: Container, out: Callable[[str], None] = print) -> DemoState:
    from admin.deps import enablement_config, file_store, orders_config
    from admin.serve import prepare_database
    from core.clients import service as clients
    from core.enablement import service as enablement
    from core.enablement.models import RequestSource
    from core.orders import service as orders
    from core.statements import exports, queries, summaries
    from core.statements.queries import RepFilter
    from core.vendors.service import register_vendor

    state = DemoState()
    actor = Actor.system()
    db = container.db
    now = container.clock.now

    async def step(title: str, body: Callable[[], Awaitable[str]]) -> None:
        try:
            detail = await body()
        except Exception as exc:  # a demo step reports its failure and the demo goes on
            state.skipped.append((title, f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"))
            out(f"  ✗ {title}: no se pudo ejecutar ({type(exc).__name__})")
            return
        out(f"  ✓ {title}: {detail}")

    out(f"Directorio de datos: {container.settings.data_dir}")
    if not await prepare_database(container):
        raise RuntimeError("no se pudo preparar la base de datos")

    async def client_step() -> str:
        async with db.transaction() as s:
            view = await clients.create_client(
                s,
                name="Compradora Industrial del Bajío",
                rfc="CIB850101AB1",
                proveedores_plus=True,
                contacts=["compras@compradora.example"],
                actor=actor,
                now=now(),
            )
        state.client_id = view.id
        return f"cliente {view.id} con Proveedores Plus"

    async def request_step() -> str:
        cfg = enablement_config(container)
        async with db.transaction() as s:
            req, _ = await enablement.open_request(
                s,
                source=RequestSource.API,
                requester_email="compras@compradora.example",
                requester_name="Ana Compras",
                client_id=state.client_id,
                actor=actor,
                cfg=cfg,
                now=now(),
            )
        async with db.transaction() as s:
            await enablement.verify(s, req.id, actor=actor, cfg=cfg, now=now())
        async with db.transaction() as s:
            done = await enablement.approve(s, req.id, actor=actor, cfg=cfg, now=now())
        return f"solicitud {req.ticket} aprobada ({getattr(done, 'status_label', 'habilitado')})"

    async def vendor_step() -> str:
        async with db.transaction() as s:
            v = await register_vendor(
                s,
                client_id=state.client_id,
                rfc="EKU9003173C9",
                razon_social="ESCUELA KEMPER URGATE",
                correo="proveedor@ekemper.example",
                codigo_postal="06600",
                actor=actor,
                now=now(),
            )
        state.vendor_id = v.id
        return f"proveedor {v.id} ({v.rfc})"

    async def order_step() -> str:
        cfg = orders_config(container)
        async with db.transaction() as s:
            package = await orders.create_package(
                s, name="Paquete 100 timbres", stamps=100, price_mxn=Decimal("580.00"), validity_days=365,
                actor=actor, now=now(),
            )  # fmt: skip
            order = await orders.create_order(
                s,
                vendor_id=state.vendor_id,
                package_id=package.id,
                contact={
                    "empresa": "ESCUELA KEMPER URGATE",
                    "nombre": "Rosa Kemper",
                    "telefono": "5512345678",
                    "correo": "proveedor@ekemper.example",
                },
                actor=actor,
                cfg=cfg,
                now=now(),
            )
        state.order_id = order.id
        stored = file_store(container).store_bytes(_png())
        async with db.transaction() as s:
            await orders.attach_proof(
                s, order.id, vendor_id=state.vendor_id, stored=stored, display_name="comprobante.png",
                actor=actor, cfg=cfg, now=now(),
            )  # fmt: skip
        async with db.transaction() as s:
            _, plan = await orders.approve_order(s, order.id, actor=actor, cfg=cfg, now=now())
        return f"orden {order.payment_reference} aprobada: plan de {plan.stamps_total} timbres"

    async def statement_step() -> str:
        async with db.session() as s:
            summary = await queries.statement_summary(s, state.vendor_id, now())
            page = await queries.list_reps(s, summary.vendor, RepFilter(), limit=20)
            target = (
                container.settings.data_dir / "exports" / exports.export_filename(summary.vendor, RepFilter(), "xlsx")
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = await exports.write_xlsx(s, summary.vendor, RepFilter(), target)
        out("")
        out(render_statement(summary, page))
        out("")
        state.outputs.append(target)
        return f"XLSX con {rows} complementos en {target}"

    async def summaries_step() -> str:
        cfg = summaries.SummaryConfig.from_settings(container.settings)
        async with db.transaction() as s:
            alerts = await summaries.check_alerts(s, state.vendor_id, replace(cfg, low_balance_threshold=101), now())
        return f"avisos en cola: {', '.join(alerts) or 'ninguno'}"

    async def mail_step() -> str:
        stats = await container.make_worker("demo").run_until_empty()
        spool = container.settings.spool_dir
        files = sorted(spool.rglob("*.eml")) if spool.exists() else []
        state.outputs.extend(files)
        return f"{stats.succeeded} trabajos procesados; {len(files)} correos en {spool}"

    await step("Cliente con Proveedores Plus", client_step)
    await step("Solicitud de configuración verificada y aprobada", request_step)
    await step("Proveedor del cliente", vendor_step)
    await step("Compra de paquete, comprobante y aprobación", order_step)
    for title, why in NOT_YET:
        state.skipped.append((title, why))
        out(f"  – {title}: no se ejecuta en esta versión de la demo ({why})")
    await step("Estado de cuenta y exportación XLSX", statement_step)
    await step("Avisos de saldo y resumen", summaries_step)
    await step("Correos salientes entregados al spool", mail_step)
    out("")
    out("Archivos generados:")
    for path in state.outputs:
        out(f"  {path}")
    return state


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """``timbrado demo [--data-dir DIR]``: ignores the configured database; always a fresh SQLite file."""
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="timbrado-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    demo_settings = replace(
        Settings(),
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'timbrado.db'}",
        mail_from=settings.mail_from,
    )
    started = time.monotonic()

    async def main() -> int:
        container = build_container(demo_settings)
        try:
            state = await run_demo(container)
        finally:
            await container.aclose()
        failed = [t for t, why in state.skipped if not any(t == n for n, _ in NOT_YET)]
        print(f"\nDemo terminada en {time.monotonic() - started:.1f} s.", file=sys.stderr)
        if failed:
            print(f"Pasos con error: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(main())


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="recorrido guiado del producto en un directorio temporal")
    p.add_argument("--data-dir", help="directorio (vacío) para la demo; por omisión uno temporal nuevo")
    p.set_defaults(fn=cmd_demo)
