"""Summary e-mails once per period per vendor (time zones, restarts, two schedulers) and alerts once per crossing."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from core.clock import FrozenClock
from core.db.engine import Database, create_engine
from core.notifications.models import OutboundEmail
from core.stamps import service as stamps
from core.statements import summaries
from core.statements.models import StatementDelivery
from core.statements.summaries import SummaryConfig
from tests.integration.statements.seed import insert_reps, rep_rows, seed_payment, seed_vendor
from tests.support.app import container_for, settings_for

CREATED = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
MONDAY_15_UTC = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)  # Cancún 10:00, Tijuana 07:00


def config(tmp_path: Path, **kw: object) -> SummaryConfig:
    base: dict[str, object] = {
        "mail_from": "Timbrado <timbrado@test.local>", "mail_domain": "test.local", "data_dir": tmp_path,
        "buy_url": "https://portal.test/paquetes",
    }  # fmt: skip
    base.update(kw)
    return SummaryConfig(**base)  # type: ignore[arg-type]


async def provision(db: Database, vendor_id: int, count: int, *, at: dt.datetime = CREATED, days: int = 365) -> int:
    async with db.transaction() as s:
        view = await stamps.provision(
            s, vendor_id=vendor_id, order_id=None, plan_name=f"Paquete {count}", stamps=count, validity_days=days,
            price_paid_mxn=Decimal("100.00"), purchased_at=at, now=at,
        )  # fmt: skip
        return view.id


async def consume(db: Database, vendor_id: int, n: int, now: dt.datetime) -> None:
    async with db.transaction() as s:
        for i in range(n):
            plan = await stamps.reserve(s, vendor_id, reference=f"r{i}", now=now)
            await stamps.debit(s, plan, reference=f"r{i}", now=now)


async def emails(db: Database, template: str) -> list[OutboundEmail]:
    async with db.session() as s:
        stmt = select(OutboundEmail).where(OutboundEmail.template == template).order_by(OutboundEmail.id)
        return list(await s.scalars(stmt))


async def vendors(db: Database, n: int, *, time_zone: str | None = None) -> list[int]:
    client_id, first = await seed_vendor(db, CREATED, time_zone=time_zone, correo="v0@prov.test")
    ids = [first]
    for i in range(1, n):
        _, vid = await seed_vendor(
            db, CREATED, rfc=f"AAA0101010{i:02d}"[:12], correo=f"v{i}@prov.test", client_id=client_id,
            time_zone=time_zone,
        )  # fmt: skip
        ids.append(vid)
    for vid in ids:
        await provision(db, vid, 100)
    return ids


class _HtmlView(HTMLParser):
    """The table rows (cell texts), links and visible text of an HTML e-mail."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[tuple[str, str]] = []
        self._open_rows: list[list[str]] = []
        self._href: str | None = None
        self._link_text: list[str] = []
        self._text: list[str] = []
        self.feed(html)
        self.close()
        self.text = " ".join("".join(self._text).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "br", "li", "tr", "td", "th", "title"):
            self._text.append(" ")  # inline tags (strong, a) do not separate words
        if tag == "tr":
            self._open_rows.append([])
        elif tag in ("td", "th") and self._open_rows:
            self._open_rows[-1].append("")
        elif tag == "a":
            self._href, self._link_text = dict(attrs).get("href"), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._open_rows:
            self.rows.append([" ".join(cell.split()) for cell in self._open_rows.pop()])
        elif tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._link_text).split())))
            self._href = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._open_rows and self._open_rows[-1]:
            self._open_rows[-1][-1] += data
        if self._href is not None:
            self._link_text.append(data)


def line_starting(text: str, prefix: str) -> str:
    [line] = [x.strip() for x in text.splitlines() if x.strip().startswith(prefix)]
    return line


async def test_the_summary_says_everything_the_story_asks_in_text_and_html(database: Database, tmp_path: Path) -> None:
    client_id, vendor_id = await seed_vendor(
        database, CREATED, razon_social="Ñandú & Hijos <Norte>", time_zone="America/Mexico_City"
    )
    await provision(database, vendor_id, 100)  # valid until 30/11/2027 12:00 UTC
    await consume(database, vendor_id, 3, CREATED + dt.timedelta(days=1))  # in the week 30/11 to 06/12
    await consume(database, vendor_id, 2, dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC))  # 04:00 on 7/12: after
    stamped = await seed_payment(database, client_id, vendor_id, CREATED)
    # four REPs issued in the week, one issued the week before and cancelled in this one, one cancelled before
    reps = rep_rows(client_id, vendor_id, stamped, 4, newest=dt.datetime(2026, 12, 4, 18, tzinfo=dt.UTC),
                    step=dt.timedelta(days=1))  # fmt: skip
    cancelled = rep_rows(client_id, vendor_id, stamped, 2, newest=dt.datetime(2026, 11, 25, 18, tzinfo=dt.UTC),
                         step=dt.timedelta(days=5), first_folio=10, status="cancelled")  # fmt: skip
    cancelled[0]["cancelled_at"] = dt.datetime(2026, 11, 27, 18, tzinfo=dt.UTC)  # before the week
    cancelled[1]["cancelled_at"] = dt.datetime(2026, 12, 2, 18, tzinfo=dt.UTC)  # in the week
    await insert_reps(database, reps)
    await insert_reps(database, cancelled)  # apart: an executemany takes its columns from the first row
    # payments still waiting for their REP: one past its legal deadline (5/11), one within it (5/1/2027)
    overdue = await seed_payment(
        database, client_id, vendor_id, dt.datetime(2026, 10, 15, 17, tzinfo=dt.UTC),
        status="pending", amount=Decimal("1234.50"),
    )  # fmt: skip
    in_time = await seed_payment(
        database, client_id, vendor_id, dt.datetime(2026, 12, 2, 17, tzinfo=dt.UTC),
        status="rejected", amount=Decimal("20000.00"), currency="USD",
    )  # fmt: skip

    assert await summaries.run_summaries(database, config(tmp_path), MONDAY_15_UTC) == 1
    [mail] = await emails(database, "statement_summary")
    assert "semanal" in mail.subject and "30/11/2026 al 06/12/2026" in mail.subject

    text = mail.text_body
    assert text.startswith("Hola Ñandú & Hijos <Norte>:")
    assert line_starting(text, "Saldo de timbres disponibles:") == "Saldo de timbres disponibles: 95"
    assert line_starting(text, "Timbres usados en el periodo:") == "Timbres usados en el periodo: 3"
    assert line_starting(text, "Complementos de pago emitidos:") == "Complementos de pago emitidos: 4"
    assert line_starting(text, "Complementos de pago cancelados:") == "Complementos de pago cancelados: 1"
    assert line_starting(text, "Tu plan vigente vence") == "Tu plan vigente vence el 30/11/2027 (en 357 días)."
    assert "Pagos que todavía esperan su complemento de pago (2):" in text
    assert (
        line_starting(text, f"- Pago {overdue} ")
        == f"- Pago {overdue} del 15/10/2026: 1,234.50 MXN; plazo legal: 05/11/2026 (VENCIDO)"
    )
    assert (
        line_starting(text, f"- Pago {in_time} ")
        == f"- Pago {in_time} del 02/12/2026: 20,000.00 USD; plazo legal: 05/01/2027"
    )
    assert text.index(f"Pago {overdue} ") < text.index(f"Pago {in_time} ")  # oldest payment first
    assert f"Pago {stamped} " not in text
    assert line_starting(text, "- Paquete 100:") == (
        "- Paquete 100: 95 disponibles, 5 usados de 100; vigencia al 30/11/2027"
    )
    assert "Para comprar otro paquete de timbrado: https://portal.test/paquetes" in text

    assert mail.html_body is not None
    html = _HtmlView(mail.html_body)
    assert "Hola Ñandú & Hijos <Norte>:" in html.text
    assert "Ñandú &amp; Hijos &lt;Norte&gt;" in mail.html_body and "<Norte>" not in mail.html_body
    for row in (
        ["Saldo de timbres disponibles", "95"],
        ["Timbres usados en el periodo", "3"],
        ["Complementos de pago emitidos", "4"],
        ["Complementos de pago cancelados", "1"],
        ["Pago", "Fecha", "Monto", "Plazo legal"],
        [str(overdue), "15/10/2026", "1,234.50 MXN", "05/11/2026 vencido"],
        [str(in_time), "02/12/2026", "20,000.00 USD", "05/01/2027"],
    ):
        assert row in html.rows, row
    assert "Tu plan vigente vence el 30/11/2027 (en 357 días)." in html.text
    assert "Pagos que todavía esperan su complemento de pago (2):" in html.text
    assert "Paquete 100: 95 disponibles, 5 usados de 100; vigencia al 30/11/2027" in html.text
    assert ("https://portal.test/paquetes", "Comprar otro paquete de timbrado") in html.links
    assert "complementos de pago del 30/11/2026 al 06/12/2026." in html.text
    assert html.text.endswith("Estado de cuenta · EKU9003173C9 · 30/11/2026 al 06/12/2026")


async def test_the_summary_without_plan_or_pending_payments_says_so(database: Database, tmp_path: Path) -> None:
    _, vendor_id = await seed_vendor(database, CREATED)
    await provision(database, vendor_id, 1)
    await consume(database, vendor_id, 1, CREATED)  # the only plan has no stamps left
    assert await summaries.run_summaries(database, config(tmp_path), MONDAY_15_UTC) == 1
    [mail] = await emails(database, "statement_summary")
    assert "No tienes un plan vigente con timbres disponibles." in mail.text_body
    assert "No tienes pagos esperando complemento de pago." in mail.text_body
    assert "Timbres usados en el periodo: 1" in mail.text_body and "VENCIDO" not in mail.text_body
    assert mail.html_body is not None
    html = _HtmlView(mail.html_body)
    assert "No tienes un plan vigente con timbres disponibles." in html.text
    assert "No tienes pagos esperando complemento de pago." in html.text


async def test_each_vendor_gets_its_week_when_its_own_monday_morning_comes(database: Database, tmp_path: Path) -> None:
    client_id, tijuana = await seed_vendor(database, CREATED, time_zone="America/Tijuana", correo="tj@prov.test")
    _, cancun = await seed_vendor(
        database, CREATED, rfc="IIA040805DZ4", time_zone="America/Cancun", correo="cun@prov.test", client_id=client_id
    )
    for vid in (tijuana, cancun):
        await provision(database, vid, 100)
        payment_id = await seed_payment(database, client_id, vid, CREATED)
        # one REP on Thursday 3/12, one at 07:30 UTC on Monday 7/12: still Sunday 6/12 in Tijuana, Monday in Cancún
        rows = rep_rows(client_id, vid, payment_id, 2, newest=dt.datetime(2026, 12, 7, 7, 30, tzinfo=dt.UTC),
                        step=dt.timedelta(days=3, hours=12))  # fmt: skip
        await insert_reps(database, rows)
    cfg = config(tmp_path)

    assert await summaries.run_summaries(database, cfg, MONDAY_15_UTC) == 1  # 10:00 in Cancún, 07:00 in Tijuana
    [cun] = await emails(database, "statement_summary")
    assert cun.to_addrs == ["cun@prov.test"] and "30/11/2026 al 06/12/2026" in cun.subject
    assert "Complementos de pago emitidos: 1" in cun.text_body

    assert await summaries.run_summaries(database, cfg, MONDAY_15_UTC + dt.timedelta(hours=1)) == 1  # 08:00 Tijuana
    _, tj = await emails(database, "statement_summary")
    assert tj.to_addrs == ["tj@prov.test"] and "Complementos de pago emitidos: 2" in tj.text_body
    assert "Saldo de timbres disponibles: 100" in tj.text_body and tj.html_body and "<table" in tj.html_body

    assert await summaries.run_summaries(database, cfg, MONDAY_15_UTC + dt.timedelta(hours=30)) == 0
    assert len(await emails(database, "statement_summary")) == 2


async def test_restart_in_the_middle_of_a_run_sends_the_rest_once(database: Database, tmp_path: Path) -> None:
    ids = await vendors(database, 4)
    cfg = config(tmp_path)
    done: list[int] = []

    async def crash_after_two(vendor_id: int) -> None:
        done.append(vendor_id)
        if len(done) == 2:
            raise RuntimeError("the scheduler process died")

    with pytest.raises(RuntimeError):
        await summaries.run_summaries(database, cfg, MONDAY_15_UTC, after_vendor=crash_after_two)
    assert len(await emails(database, "statement_summary")) == 2
    assert await summaries.run_summaries(database, cfg, MONDAY_15_UTC) == 2  # the restarted scheduler
    sent = await emails(database, "statement_summary")
    assert sorted(e.to_addrs[0] for e in sent) == sorted(f"v{i}@prov.test" for i in range(len(ids)))


async def test_two_schedulers_at_once_send_each_summary_once(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    ids = await vendors(database, 6)
    cfg = config(tmp_path)
    other = Database(create_engine(database_url))
    try:
        first, second = await asyncio.gather(
            summaries.run_summaries(database, cfg, MONDAY_15_UTC),
            summaries.run_summaries(other, cfg, MONDAY_15_UTC),
        )
    finally:
        await other.dispose()
    assert first + second == len(ids)
    assert len(await emails(database, "statement_summary")) == len(ids)
    async with database.session() as s:
        assert await s.scalar(select(func.count()).select_from(StatementDelivery)) == len(ids)


async def test_monthly_preference_and_opt_out(database: Database, tmp_path: Path) -> None:
    monthly, off, default = await vendors(database, 3)
    async with database.transaction() as s:
        await summaries.set_preferences(s, monthly, frequency="monthly", now=CREATED)
        await summaries.set_preferences(s, off, frequency="off", now=CREATED)
    now = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)  # Tuesday 1/12 09:00 in CDMX
    assert await summaries.run_summaries(database, config(tmp_path), now) == 1
    [mail] = await emails(database, "statement_summary")
    assert (
        mail.to_addrs == ["v0@prov.test"] and "mensual" in mail.subject and "01/11/2026 al 30/11/2026" in mail.subject
    )
    assert default  # created on 30/11: its first weekly summary is the week of 30/11, due on 7/12


async def test_opted_in_vendor_gets_the_period_xlsx_attached(database: Database, tmp_path: Path) -> None:
    [vendor_id] = await vendors(database, 1)
    client_id = 1
    payment_id = await seed_payment(database, client_id, vendor_id, CREATED)
    await insert_reps(
        database, rep_rows(client_id, vendor_id, payment_id, 3, newest=dt.datetime(2026, 12, 4, tzinfo=dt.UTC))
    )
    async with database.transaction() as s:
        await summaries.set_preferences(s, vendor_id, attach_xlsx=True, now=CREATED)
    assert await summaries.run_summaries(database, config(tmp_path), MONDAY_15_UTC) == 1
    [mail] = await emails(database, "statement_summary")
    [attachment] = mail.attachments
    assert attachment["filename"] == "estado-de-cuenta_EKU9003173C9_20261130_20261206.xlsx"
    sheet = openpyxl.load_workbook(tmp_path / attachment["path"]).active
    assert sheet is not None and sheet.max_row == 4


async def test_low_balance_alert_once_per_crossing(database: Database, tmp_path: Path) -> None:
    _, vendor_id = await seed_vendor(database, CREATED)
    await provision(database, vendor_id, 12)
    cfg = config(tmp_path, low_balance_threshold=10)
    now = CREATED + dt.timedelta(days=1)
    assert await summaries.run_alerts(database, cfg, now) == 0
    await consume(database, vendor_id, 3, now)  # 9 left: below 10
    assert await summaries.run_alerts(database, cfg, now) == 1
    assert await summaries.run_alerts(database, cfg, now + dt.timedelta(hours=1)) == 0
    await consume(database, vendor_id, 2, now)  # still below: same crossing
    assert await summaries.run_alerts(database, cfg, now + dt.timedelta(hours=2)) == 0
    await provision(database, vendor_id, 20, at=now)  # 27: back above, re-armed
    assert await summaries.run_alerts(database, cfg, now + dt.timedelta(hours=3)) == 0
    await consume(database, vendor_id, 18, now)  # 9 again: a new crossing
    assert await summaries.run_alerts(database, cfg, now + dt.timedelta(hours=4)) == 1
    sent = await emails(database, "alert_low_balance")
    assert len(sent) == 2 and "https://portal.test/paquetes" in sent[0].text_body
    assert "te quedan 9" in sent[0].subject


async def test_expiry_alert_fifteen_days_before_once_per_plan(database: Database, tmp_path: Path) -> None:
    _, vendor_id = await seed_vendor(database, CREATED)
    await provision(database, vendor_id, 100, days=30)
    cfg = config(tmp_path, low_balance_threshold=0)
    assert await summaries.run_alerts(database, cfg, CREATED + dt.timedelta(days=14)) == 0  # 16 days left
    assert await summaries.run_alerts(database, cfg, CREATED + dt.timedelta(days=15)) == 1  # 15 days left
    assert await summaries.run_alerts(database, cfg, CREATED + dt.timedelta(days=20)) == 0
    [mail] = await emails(database, "alert_expiry")
    assert "30/12/2026" in mail.subject and "100 timbres" in mail.text_body
    assert '"Paquete 100" vence el 30/12/2026 (en 15 días)' in mail.text_body
    assert "compra otro paquete aquí: https://portal.test/paquetes" in mail.text_body
    assert mail.html_body is not None
    html = _HtmlView(mail.html_body)
    assert "vence el 30/12/2026 (en 15 días)" in html.text
    assert html.links == [("https://portal.test/paquetes", "Comprar otro paquete de timbrado")]


async def test_two_schedulers_checking_alerts_at_once_send_each_alert_once(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    ids = await vendors(database, 5)
    for vendor_id in ids:
        await provision(database, vendor_id, 5, days=10)  # expires within 15 days with stamps left
    cfg = config(tmp_path, low_balance_threshold=1000)  # every balance (105) is below it
    now = CREATED + dt.timedelta(days=1)
    other = Database(create_engine(database_url))
    try:
        first, second = await asyncio.gather(
            summaries.run_alerts(database, cfg, now), summaries.run_alerts(other, cfg, now)
        )
        assert first + second == 2 * len(ids)
        again = await asyncio.gather(
            summaries.run_alerts(database, cfg, now + dt.timedelta(hours=1)),
            summaries.run_alerts(other, cfg, now + dt.timedelta(hours=1)),
        )
    finally:
        await other.dispose()
    assert list(again) == [0, 0]
    low = await emails(database, "alert_low_balance")
    expiry = await emails(database, "alert_expiry")
    assert sorted(m.to_addrs[0] for m in low) == sorted(f"v{i}@prov.test" for i in range(len(ids)))
    assert sorted(m.to_addrs[0] for m in expiry) == sorted(f"v{i}@prov.test" for i in range(len(ids)))
    async with database.session() as s:
        kinds = list(await s.scalars(select(StatementDelivery.kind)))
    assert sorted(kinds) == sorted(["expiry", "low_balance"] * len(ids))


async def test_the_scheduler_runs_the_statement_summaries_task(database_url: str, tmp_path: Path) -> None:
    clock = FrozenClock(MONDAY_15_UTC)
    container = container_for(settings_for(database_url, tmp_path, buy_url="https://portal.test/paquetes"), clock)
    try:
        [task] = [t for t in container.periodic_tasks() if t.name == "statement-summaries"]
        assert task.interval_seconds <= 3600  # a summary leaves within the hour after its send hour
        _, vendor_id = await seed_vendor(container.db, CREATED, correo="tarea@prov.test")
        await provision(container.db, vendor_id, 5)  # below the default low-balance threshold (10)
        await task.run()
        await task.run()
        clock.advance(dt.timedelta(hours=1))
        await task.run()
        [summary] = await emails(container.db, "statement_summary")
        [alert] = await emails(container.db, "alert_low_balance")
    finally:
        await container.aclose()
    assert summary.to_addrs == alert.to_addrs == ["tarea@prov.test"]
    assert "30/11/2026 al 06/12/2026" in summary.subject
    assert "https://portal.test/paquetes" in alert.text_body


async def test_preferences_refuse_bad_values(database: Database) -> None:
    from core.errors import Invalid

    [vendor_id] = await vendors(database, 1)
    async with database.transaction() as s:
        with pytest.raises(Invalid):
            await summaries.set_preferences(s, vendor_id, frequency="daily", now=CREATED)
        with pytest.raises(Invalid):
            await summaries.set_preferences(s, vendor_id, low_balance_threshold=-1, now=CREATED)
