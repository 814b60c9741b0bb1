"""``timbrado demo``: a guided run of the whole product on embedded defaults in a fresh data dir.

Each step prints what it did (in Spanish); a step that fails says why and the demo goes on with the
next one, then exits 1.  Nothing outside the demo data dir is touched.

Steps, all through the real service layer and the real worker: a client with Proveedores Plus; a
configuration request e-mail dropped into the embedded Maildir and read by one pass of the inbox
watcher (``mail.watcher.build_source``) into the real mail sink, then verified and approved; a vendor;
a package bought, its proof of payment uploaded and approved (plan provisioned); the four contract
steps (manifiesto, contrato, firma with a generated e.firma, revisión: the signed PDF is written to
the data dir); the CSD and the Datos del CFDI; three PPD invoices sealed with the generated CSD and
stamped by the sandbox PAC, registered; three payments registered; the worker until every REP is
stamped by the sandbox PAC and delivered (XML + PDF + e-mail); the estado de cuenta as a table, the
XLSX export, balance alerts, and every queued e-mail written to the spool folder.

Test credentials come from :mod:`core.sat.demo_credentials` (a CA named like SAT's test CA, trusted
by name only in sandbox mode, the embedded default) and invoices from :mod:`core.cfdi.demo_invoices`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from admin.cli_statements import render_statement
from admin.container import Container, build_container
from core.audit.service import Actor
from core.settings import Settings

CLIENT_NAME = "Compradora Industrial del Bajío"
CLIENT_RFC = "CIB850101AB1"
CLIENT_EMAIL = "compras@compradora.example"
VENDOR_RFC = "EKU9003173C9"
VENDOR_NAME = "ESCUELA KEMPER URGATE"
VENDOR_EMAIL = "proveedor@ekemper.example"
REQUEST_SUBJECT = "=?utf-8?q?Configuraci=C3=B3n_del_M=C3=B3dulo_de_Timbrado_de_complementos_de_pago?="
# (invoice subtotal, amount paid): one paid in full, one in a first installment, one in full
INVOICES = ((Decimal("1000.00"), Decimal("1160.00")), (Decimal("2500.00"), Decimal("1000.00")),
            (Decimal("480.00"), Decimal("556.80")))  # fmt: skip


@dataclass
class DemoState:
    client_id: int = 0
    vendor_id: int = 0
    order_id: int = 0
    invoice_ids: list[int] = field(default_factory=list)
    payment_ids: list[int] = field(default_factory=list)
    rep_files: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 32), (11, 61, 92)).save(buffer, format="PNG")
    return buffer.getvalue()


def request_email(now_rfc2822: str, message_id: str) -> bytes:
    """The configuration request a client's buyer sends to support."""
    return (
        f"From: Ana Compras <{CLIENT_EMAIL}>\r\nTo: soporte@timbrado.local\r\n"
        f"Subject: {REQUEST_SUBJECT}\r\nMessage-ID: <{message_id}>\r\nDate: {now_rfc2822}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Hola, ¿nos ayudan con la configuración del módulo de timbrado para nuestros proveedores?\r\n"
    ).encode()


def drop_into_maildir(root: Path, name: str, raw: bytes) -> Path:
    """Deliver like an MTA: write in ``tmp/``, then rename into ``new/``."""
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    tmp, new = root / "tmp" / name, root / "new" / name
    tmp.write_bytes(raw)
    os.replace(tmp, new)
    return new


async def run_demo(container: Container, out: Callable[[str], None] = print) -> DemoState:
    from email.utils import format_datetime, make_msgid

    from admin.deps import enablement_config, file_store, orders_config, service_provider
    from admin.serve import prepare_database
    from core.cfdi.demo_invoices import InvoiceSpec, stamped_invoice
    from core.cfdi.signing import RsaSigner
    from core.clients import service as clients
    from core.contracts import documents as docs
    from core.enablement import service as enablement
    from core.orders import service as orders
    from core.sat.demo_credentials import DemoVendorCredentials, demo_vendor_credentials
    from core.stamping import invoices, payments
    from core.statements import exports, queries, summaries
    from core.statements.queries import RepFilter
    from core.vendors import contract, onboarding
    from core.vendors.service import register_vendor
    from mail.watcher import build_source

    state = DemoState()
    actor = Actor.system()
    db = container.db
    now = container.clock.now
    data_dir = container.settings.data_dir
    credentials: list[DemoVendorCredentials] = []

    async def step(title: str, body: Callable[[], Awaitable[str]]) -> None:
        try:
            detail = await body()
        except Exception as exc:  # a demo step reports its failure and the demo goes on
            state.skipped.append((title, f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"))
            out(f"  ✗ {title}: no se pudo ejecutar ({type(exc).__name__}: {getattr(exc, 'message', exc)})")
            return
        out(f"  ✓ {title}: {detail}")

    out(f"Directorio de datos: {data_dir}")
    if not await prepare_database(container):
        raise RuntimeError("no se pudo preparar la base de datos")

    async def client_step() -> str:
        async with db.transaction() as s:
            view = await clients.create_client(
                s, name=CLIENT_NAME, rfc=CLIENT_RFC, proveedores_plus=True, contacts=[CLIENT_EMAIL],
                actor=actor, now=now(),
            )  # fmt: skip
        state.client_id = view.id
        return f"cliente {view.id} con Proveedores Plus"

    async def request_step() -> str:
        inbox = Path(container.settings.inbox.split(":", 1)[1])
        dropped = drop_into_maildir(
            inbox,
            "demo-solicitud.eml",
            request_email(format_datetime(now()), make_msgid(domain="compradora.example")[1:-1]),
        )
        handled = await build_source(container.settings, container.mail_sink()).run_once()
        async with db.session() as s:
            found = await enablement.list_requests(s, client_id=state.client_id, limit=1)
        if not found:
            raise RuntimeError(f"el vigilante del buzón leyó {handled} correos y no abrió la solicitud")
        req = found[0]
        out(f"    correo dejado en {dropped.parent}; el vigilante leyó {handled} y abrió {req.ticket} ({req.source})")
        cfg = enablement_config(container)
        async with db.transaction() as s:
            await enablement.verify(s, req.id, actor=actor, cfg=cfg, now=now())
        async with db.transaction() as s:
            done = await enablement.approve(s, req.id, actor=actor, cfg=cfg, now=now())
        return f"solicitud {req.ticket} verificada y aprobada ({getattr(done, 'status_label', 'habilitado')})"

    async def vendor_step() -> str:
        async with db.transaction() as s:
            v = await register_vendor(
                s, client_id=state.client_id, rfc=VENDOR_RFC, razon_social=VENDOR_NAME, correo=VENDOR_EMAIL,
                regimen_fiscal="601", codigo_postal="06600", actor=actor, now=now(),
            )  # fmt: skip
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
                    "empresa": VENDOR_NAME,
                    "nombre": "Rosa Kemper",
                    "telefono": "5512345678",
                    "correo": VENDOR_EMAIL,
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

    async def credentials_step() -> str:
        creds = await asyncio.to_thread(demo_vendor_credentials, rfc=VENDOR_RFC, legal_name=VENDOR_NAME, now=now())
        credentials.append(creds)
        folder = data_dir / "credenciales-de-prueba"
        creds.csd.write(folder, creds.password, stem="csd")
        creds.fiel.write(folder, creds.password, stem="efirma")
        state.outputs.append(folder)
        return f"CSD y e.firma de prueba (AC UAT, solo modo de pruebas) en {folder}"

    async def contract_step() -> str:
        creds = credentials[0]
        provider = service_provider(container)
        async with db.transaction() as s:
            await contract.confirm_manifest(s, state.vendor_id, actor=actor, now=now())
        async with db.session() as s:
            await contract.documents(s, state.vendor_id, provider)
        async with db.transaction() as s:
            await contract.accept_documents(
                s, state.vendor_id, contract_version=docs.CURRENT_CONTRACT.id,
                privacy_version=docs.CURRENT_PRIVACY_NOTICE.id, actor=actor, now=now(),
            )  # fmt: skip
        async with db.transaction() as s:
            signed = await contract.sign(
                s, state.vendor_id, cer=creds.fiel.cer_der(), key=creds.fiel.key_der(creds.password),
                password=creds.password, provider=provider, trust=container.sat_trust(),
                store=file_store(container), actor=actor, now=now(),
            )  # fmt: skip
        async with db.session() as s:
            download = await contract.download(s, state.vendor_id, "contrato", store=file_store(container))
        target = data_dir / "contratos" / download.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(download.content)
        state.outputs.append(target)
        return f"manifiesto, contrato aceptado, firmado con e.firma {signed.certificate_number}; PDF en {target}"

    async def csd_step() -> str:
        creds = credentials[0]
        async with db.transaction() as s:
            csd = await onboarding.add_csd(
                s, state.vendor_id, cer=creds.csd.cer_der(), key=creds.csd.key_der(creds.password),
                password=creds.password, box=container.secret_box(), trust=container.sat_trust(), actor=actor,
                now=now(),
            )  # fmt: skip
            settings = await onboarding.set_cfdi_settings(
                s, state.vendor_id, {"lugar_expedicion": "06600", "serie": "P", "folio_inicial": 1},
                actor=actor, now=now(),
            )  # fmt: skip
        return f"CSD {csd.certificate_number} {csd.status}; Datos del CFDI: serie {settings.serie}, CP 06600"

    async def invoices_step() -> str:
        creds = credentials[0]
        signer = RsaSigner(creds.csd.private_key, creds.csd.certificate)
        pac = container.stamping().pac
        issued = now() - timedelta(hours=3)
        for n, (subtotal, _) in enumerate(INVOICES, start=1):
            spec = InvoiceSpec(
                subtotal=subtotal, emisor_rfc=VENDOR_RFC, emisor_nombre=VENDOR_NAME, receptor_rfc=CLIENT_RFC,
                receptor_nombre=CLIENT_NAME.upper(), receptor_codigo_postal="37000", serie="F",
                folio=str(1000 + n), issued_at=issued + timedelta(minutes=n),
            )  # fmt: skip
            xml = await stamped_invoice(spec, signer, pac)
            async with db.transaction() as s:
                view = await invoices.register_invoice(s, state.vendor_id, xml, actor=actor, now=now())
            state.invoice_ids.append(view.id)
        return f"{len(state.invoice_ids)} facturas PPD timbradas por el PAC de pruebas y registradas"

    async def payments_step() -> str:
        paid_at = now() - timedelta(hours=1)
        for n, (invoice_id, (_, amount)) in enumerate(zip(state.invoice_ids, INVOICES, strict=True), start=1):
            req = payments.PaymentRequest(
                vendor_id=state.vendor_id, paid_at=paid_at + timedelta(minutes=n), payment_form="03",
                currency="MXN", amount=amount, documents=(payments.AppliedInvoice(amount, invoice_id=invoice_id),),
                operation_number=f"SPEI-DEMO-{n:03d}",
            )  # fmt: skip
            async with db.transaction() as s:
                view = await payments.register_payment(s, req, actor=actor, now=now())
            state.payment_ids.append(view.id)
        return f"{len(state.payment_ids)} pagos registrados; sus REP quedan en la cola del worker"

    async def stamping_step() -> str:
        from sqlalchemy import select

        from core.stamping.models import PaymentComplement

        worker = container.make_worker("demo")
        processed = 0
        for _ in range(10):
            processed += (await worker.run_until_empty()).succeeded
            async with db.session() as s:
                reps = list(
                    await s.scalars(
                        select(PaymentComplement)
                        .where(PaymentComplement.vendor_id == state.vendor_id)
                        .order_by(PaymentComplement.id)
                    )
                )
            if reps and all(r.status == "stamped" and r.pdf_path for r in reps):
                break
            await asyncio.sleep(0.2)
        done = [r for r in reps if r.status == "stamped" and r.uuid]
        if len(done) != len(state.payment_ids):
            raise RuntimeError(f"solo {len(done)} de {len(state.payment_ids)} REP quedaron timbrados")
        folder = container.stamping().stamper.config.reps_dir / str(state.vendor_id)
        for r in done:
            for suffix in (".xml", ".pdf"):
                path = folder / f"{r.uuid}{suffix}"
                if not path.is_file():
                    raise RuntimeError(f"falta el archivo {path}")
                state.rep_files.append(path)
        for r in done:
            out(f"    REP {r.serie}{r.folio}  UUID {r.uuid}")
        return f"{len(done)} REP timbrados por el PAC de pruebas y entregados ({processed} trabajos del worker)"

    async def statement_step() -> str:
        async with db.session() as s:
            summary = await queries.statement_summary(s, state.vendor_id, now())
            page = await queries.list_reps(s, summary.vendor, RepFilter(), limit=20)
            target = data_dir / "exports" / exports.export_filename(summary.vendor, RepFilter(), "xlsx")
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
    await step("Correo de solicitud en el Maildir, leído por el vigilante del buzón", request_step)
    await step("Proveedor del cliente", vendor_step)
    await step("Compra de paquete, comprobante y aprobación", order_step)
    await step("Credenciales de prueba generadas", credentials_step)
    await step("Contrato: manifiesto, aceptación, firma con e.firma y revisión", contract_step)
    await step("CSD y Datos del CFDI", csd_step)
    await step("Facturas PPD del proveedor a su cliente", invoices_step)
    await step("Pagos de las facturas", payments_step)
    await step("Timbrado y entrega de los REP (worker + PAC de pruebas)", stamping_step)
    await step("Estado de cuenta y exportación XLSX", statement_step)
    await step("Avisos de saldo y resumen", summaries_step)
    await step("Correos salientes entregados al spool", mail_step)
    out("")
    out("REP (XML y PDF):")
    for path in state.rep_files:
        out(f"  {path}")
    out("Otros archivos generados:")
    for path in state.outputs:
        out(f"  {path}")
    return state


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """``timbrado demo [--data-dir DIR]``: ignores the configured database and data dir (it never writes
    there); always a fresh SQLite file in a new temporary directory or in an empty ``--data-dir``."""
    if args.data_dir:
        data_dir = Path(args.data_dir).expanduser().resolve()
        if data_dir == settings.data_dir.resolve():
            print("La demo no usa el directorio de datos configurado; indique otro con --data-dir.", file=sys.stderr)
            return 2
        if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
            print(f"El directorio {data_dir} no está vacío; la demo necesita uno vacío o nuevo.", file=sys.stderr)
            return 2
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="timbrado-demo-"))
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
        failed = [t for t, _ in state.skipped]
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
