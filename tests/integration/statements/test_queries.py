"""Estado de cuenta queries on SQLite and PostgreSQL: plans, REP list, filters, pagination, portfolio."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import event

from core.db.engine import Database
from core.errors import Invalid, NotFound
from core.orders.models import Order, OrderStatus, Package
from core.stamps import service as stamps
from core.statements import queries
from core.statements.queries import RepFilter
from tests.integration.statements.seed import insert_reps, rep_rows, seed_payment, seed_vendor

NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)


async def _vendor_with_reps(db: Database, count: int, **kw: object) -> tuple[int, int]:
    client_id, vendor_id = await seed_vendor(db, NOW, **kw)  # type: ignore[arg-type]
    payment_id = await seed_payment(db, client_id, vendor_id, NOW)
    await insert_reps(db, rep_rows(client_id, vendor_id, payment_id, count, newest=NOW))
    return client_id, vendor_id


async def _all_pages(db: Database, vendor_id: int, filters: RepFilter, limit: int) -> list[queries.RepLine]:
    out: list[queries.RepLine] = []
    cursor = None
    async with db.session() as s:
        vendor = await queries.vendor_ref(s, vendor_id)
        while True:
            page = await queries.list_reps(s, vendor, filters, cursor=cursor, limit=limit)
            out.extend(page.items)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor


async def test_plan_summary_shows_every_field_and_balances_add_up(database: Database) -> None:
    _, vendor_id = await seed_vendor(database, NOW)
    async with database.transaction() as s:
        old = await stamps.provision(
            s, vendor_id=vendor_id, order_id=None, plan_name="Paquete 100", stamps=100, validity_days=30,
            price_paid_mxn=Decimal("1160.00"), purchased_at=NOW - dt.timedelta(days=60),
            now=NOW - dt.timedelta(days=60),
        )  # fmt: skip
        new = await stamps.provision(
            s, vendor_id=vendor_id, order_id=None, plan_name="Paquete 500", stamps=500, validity_days=365,
            price_paid_mxn=Decimal("4640.00"), purchased_at=NOW, now=NOW,
        )  # fmt: skip
        plan = await stamps.reserve(s, vendor_id, reference="r1", now=NOW)
        await stamps.debit(s, plan, reference="r1", now=NOW)
        await stamps.reserve(s, vendor_id, reference="r2", now=NOW)
    async with database.session() as s:
        summary = await queries.statement_summary(s, vendor_id, NOW)
    assert [p.plan_name for p in summary.plans] == ["Paquete 500", "Paquete 100"]  # newest purchase first
    current, expired = summary.plans
    assert (current.stamps_used, current.stamps_reserved, current.stamps_available) == (1, 1, 498)
    assert current.purchased_at == NOW and current.valid_until == NOW + dt.timedelta(days=365)
    assert current.price_paid_mxn == Decimal("4640.00") and current.days_to_expiry == 365
    assert expired.expired and expired.plan_id == old.id and current.plan_id == new.id
    for p in summary.plans:
        assert p.stamps_used + p.stamps_reserved + p.stamps_available == p.stamps_total
    assert summary.stamps_available == 498  # the expired plan's stamps are not usable
    assert summary.total_paid_mxn == Decimal("5800.00")
    assert summary.next_expiry == NOW + dt.timedelta(days=365)


async def test_unknown_vendor_is_not_found(database: Database) -> None:
    async with database.session() as s:
        with pytest.raises(NotFound):
            await queries.statement_summary(s, 999, NOW)


async def test_pages_cover_every_rep_once_newest_first(database: Database) -> None:
    _, vendor_id = await _vendor_with_reps(database, 53)
    lines = await _all_pages(database, vendor_id, RepFilter(), 10)
    assert len(lines) == 53 and len({line.id for line in lines}) == 53
    keys = [(line.issued_at, line.id) for line in lines]
    assert keys == sorted(keys, reverse=True)
    assert lines[0].folio == 53 and lines[0].serie_folio == "P-53" and lines[0].status_label == "Vigente"


async def test_equal_issue_times_do_not_lose_or_repeat_rows_across_pages(database: Database) -> None:
    client_id, vendor_id = await seed_vendor(database, NOW)
    payment_id = await seed_payment(database, client_id, vendor_id, NOW)
    await insert_reps(database, rep_rows(client_id, vendor_id, payment_id, 25, newest=NOW, step=dt.timedelta(0)))
    lines = await _all_pages(database, vendor_id, RepFilter(), 4)
    assert sorted(line.folio for line in lines) == list(range(1, 26))


async def test_other_vendors_reps_never_appear(database: Database) -> None:
    client_id, vendor_a = await _vendor_with_reps(database, 5)
    _, vendor_b = await seed_vendor(database, NOW, rfc="IIA040805DZ4", client_id=client_id)
    payment_b = await seed_payment(database, client_id, vendor_b, NOW)
    await insert_reps(database, rep_rows(client_id, vendor_b, payment_b, 7, newest=NOW))
    assert len(await _all_pages(database, vendor_a, RepFilter(), 100)) == 5
    assert len(await _all_pages(database, vendor_b, RepFilter(), 100)) == 7


async def test_date_range_is_read_in_the_vendor_time_zone(database: Database) -> None:
    client_id, vendor_id = await seed_vendor(database, NOW, time_zone="America/Tijuana")
    payment_id = await seed_payment(database, client_id, vendor_id, NOW)
    # 2026-12-01 07:30 UTC is 30/11 23:30 in Tijuana (UTC-8); 08:30 UTC is 01/12 00:30 there.
    rows = rep_rows(client_id, vendor_id, payment_id, 2, newest=dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC),
                    step=dt.timedelta(hours=1))  # fmt: skip
    await insert_reps(database, rows)
    november = await _all_pages(database, vendor_id, RepFilter(date_to=dt.date(2026, 11, 30)), 10)
    december = await _all_pages(database, vendor_id, RepFilter(date_from=dt.date(2026, 12, 1)), 10)
    assert [line.folio for line in november] == [1] and [line.folio for line in december] == [2]
    assert november[0].issued_local == dt.datetime(2026, 11, 30, 23, 30)


async def test_filters_by_receptor_status_and_currency(database: Database) -> None:
    client_id, vendor_id = await _vendor_with_reps(database, 30)
    payment_id = await seed_payment(database, client_id, vendor_id, NOW)
    await insert_reps(
        database,
        rep_rows(
            client_id,
            vendor_id,
            payment_id,
            2,
            newest=NOW,
            first_folio=100,
            status="cancelled",
            receivers=[("ABC010101AB1", "100% Ñandú & Cía")],
        ),
    )
    by_rfc = await _all_pages(database, vendor_id, RepFilter(receptor="iia040805dz4"), 100)
    assert by_rfc and {line.receiver_rfc for line in by_rfc} == {"IIA040805DZ4"}
    by_name = await _all_pages(database, vendor_id, RepFilter(receptor="kemper"), 100)
    assert by_name and {line.receiver_name for line in by_name} == {"ESCUELA KEMPER URGATE"}
    # LIKE wildcards in the search are literal characters
    assert await _all_pages(database, vendor_id, RepFilter(receptor="%"), 100) != []
    assert {x.receiver_name for x in await _all_pages(database, vendor_id, RepFilter(receptor="100%"), 100)} == {
        "100% Ñandú & Cía"
    }
    assert await _all_pages(database, vendor_id, RepFilter(receptor="_ñandú"), 100) == []
    usd = await _all_pages(database, vendor_id, RepFilter(currency="usd"), 100)
    assert len(usd) == 10 and {line.currency for line in usd} == {"USD"}
    cancelled = await _all_pages(database, vendor_id, RepFilter(status="cancelled"), 100)
    assert [line.folio for line in cancelled] == [101, 100] and cancelled[0].status_label == "Cancelado"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "robado"},
        {"currency": "PESOS"},
        {"date_from": dt.date(2026, 2, 1), "date_to": dt.date(2026, 1, 1)},
        {"receptor": "x" * 301},
    ],
)
def test_invalid_filters_are_refused_in_spanish(kwargs: dict[str, object]) -> None:
    with pytest.raises(Invalid) as info:
        RepFilter(**kwargs)  # type: ignore[arg-type]
    assert info.value.code and info.value.message


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90LWEtY3Vyc29y", "x" * 200, "MjAyNi0xMi0wMXwtMQ"])
async def test_tampered_cursor_is_refused(database: Database, cursor: str) -> None:
    _, vendor_id = await _vendor_with_reps(database, 3)
    async with database.session() as s:
        vendor = await queries.vendor_ref(s, vendor_id)
        if cursor == "":
            assert len((await queries.list_reps(s, vendor, RepFilter(), cursor=cursor)).items) == 3
            return
        with pytest.raises(Invalid) as info:
            await queries.list_reps(s, vendor, RepFilter(), cursor=cursor)
    assert info.value.code == "cursor_invalido"


async def test_statement_statements_do_not_grow_with_rows(database: Database) -> None:
    _, small = await _vendor_with_reps(database, 3)
    _, large = await _vendor_with_reps(database, 300, rfc="IIA040805DZ4")
    counts = []
    for vendor_id in (small, large):
        seen: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_a: object) -> None:
            seen.append(statement)  # noqa: B023

        event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        try:
            async with database.session() as s:
                await queries.statement_summary(s, vendor_id, NOW)
                vendor = await queries.vendor_ref(s, vendor_id)
                await queries.list_reps(s, vendor, RepFilter(), limit=500)
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", count)
        counts.append(len([x for x in seen if x.lstrip().upper().startswith("SELECT")]))
    assert counts[0] == counts[1]


async def test_portfolio_orders_vendors_by_balance_and_lists_expiring_plans_and_reviews(database: Database) -> None:
    client_id, rich = await seed_vendor(database, NOW, rfc="EKU9003173C9")
    _, poor = await seed_vendor(database, NOW, rfc="IIA040805DZ4", razon_social="POBRE", client_id=client_id)
    _, none = await seed_vendor(database, NOW, rfc="XIA190128J61", razon_social="SIN PLAN", client_id=client_id)
    async with database.transaction() as s:
        for vendor_id, count, days in ((rich, 500, 365), (poor, 3, 10)):
            await stamps.provision(
                s, vendor_id=vendor_id, order_id=None, plan_name=f"P{count}", stamps=count, validity_days=days,
                price_paid_mxn=Decimal("100.00"), purchased_at=NOW, now=NOW,
            )  # fmt: skip
        package = Package(
            name="P", stamps=10, price_mxn=Decimal("1.00"), validity_days=30, created_at=NOW, updated_at=NOW
        )
        s.add(package)
        await s.flush()
        s.add(
            Order(
                vendor_id=poor, package_id=package.id, package_name="P", package_stamps=10,
                package_price_mxn=Decimal("116.00"), package_validity_days=30, contact_empresa="x",
                contact_nombre="x", contact_telefono="5512345678", contact_correo="x@x.mx",
                status=OrderStatus.IN_REVIEW.value, sla_due_at=NOW - dt.timedelta(hours=1),
                created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    async with database.session() as s:
        view = await queries.portfolio(s, NOW, expiring_days=30)
    assert [(v.vendor_id, v.stamps_available) for v in view.vendors] == [(none, 0), (poor, 3), (rich, 500)]
    assert [(p.vendor_id, p.days_to_expiry) for p in view.expiring] == [(poor, 10)]
    [order] = view.orders_in_review
    assert order.vendor_id == poor and order.overdue and order.amount_mxn == Decimal("116.00")


def _rows_skipped(sql: str, parameters: object) -> int:
    """The OFFSET a captured statement asks for (SQLite's dialect always writes ``LIMIT ? OFFSET ?``)."""
    if "OFFSET" not in sql.upper():
        return 0
    assert sql.rstrip().upper().endswith("OFFSET ?") and isinstance(parameters, tuple | list), sql
    return int(parameters[-1])


async def test_deep_pages_seek_by_keyset_on_the_statement_index_without_offset(database: Database) -> None:
    client_id, vendor_id = await _vendor_with_reps(database, 1000)
    _, other = await seed_vendor(database, NOW, rfc="IIA040805DZ4", client_id=client_id)  # rows the seek skips
    other_payment = await seed_payment(database, client_id, other, NOW)
    await insert_reps(database, rep_rows(client_id, other, other_payment, 1000, newest=NOW))
    async with database.engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")  # planner statistics, as a live database has them
    captured: list[tuple[str, object]] = []

    def capture(_conn: object, _cursor: object, statement: str, parameters: object, *_a: object) -> None:
        if "FROM payment_complements" in statement:
            captured.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with database.session() as s:
            vendor = await queries.vendor_ref(s, vendor_id)
            cursor = None
            for _ in range(25):  # page 25 of 20 rows: rows 481 to 500, half the history still ahead
                page = await queries.list_reps(s, vendor, RepFilter(), cursor=cursor, limit=20)
                cursor = page.next_cursor
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
    assert [line.folio for line in page.items] == list(range(520, 500, -1)) and cursor is not None
    assert len(captured) == 25
    (first, _), (second, _), (deep, parameters) = captured[0], captured[1], captured[-1]
    assert all(_rows_skipped(sql, params) == 0 for sql, params in captured)  # never an OFFSET
    assert "payment_complements.id <" not in first  # the first page has no cursor
    assert "payment_complements.issued_at <" in deep and "payment_complements.id <" in deep  # the keyset seek
    assert deep == second  # page 25 runs the statement of page 2: the same cost at any depth

    async with database.engine.begin() as conn:
        if database.dialect == "sqlite":
            result = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {deep}", parameters)  # type: ignore[arg-type]
            plan = "\n".join(str(r[-1]) for r in result)
            assert "USING INDEX ix_payment_complements_vendor_issued_id" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # the index gives the order: no sort
        else:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # small tables: a seq scan may win
            result = await conn.exec_driver_sql(f"EXPLAIN {deep}", parameters)  # type: ignore[arg-type]
            plan = "\n".join(str(r[0]) for r in result)
            assert "Index Scan Backward using ix_payment_complements_vendor_issued_id" in plan, plan
            assert "Sort" not in plan, plan  # the index gives the order: no sort
