"""After any sequence of purchases, stampings, failures, cancellations and expiries, the estado de
cuenta equals an independent recomputation from the stamp ledger (and from a model of our own)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from core.db.engine import Database, create_engine
from core.stamps import service as stamps
from core.stamps.models import StampLedgerEntry
from core.statements import queries
from tests.integration.statements.seed import seed_vendor

START = dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC)


@dataclass
class ModelPlan:
    total: int
    valid_until: dt.datetime
    used: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.total - self.used - self.reserved


def make_machine(database_url: str) -> type[RuleBasedStateMachine]:
    class StatementMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.runner = asyncio.Runner()
            self.db = Database(create_engine(database_url, pool_size=2))
            self.now = START
            self.plans: dict[int, ModelPlan] = {}
            self.pending: list[int] = []  # plan ids with an open reservation (one per entry)
            self.stamped: list[int] = []  # plan ids of stamped REPs not cancelled
            _, self.vendor_id = self.runner.run(seed_vendor(self.db, START, rfc="EKU9003173C9"))

        def teardown(self) -> None:
            self.runner.run(self.db.dispose())
            self.runner.close()

        def _usable(self) -> list[int]:
            live = [(p.valid_until, pid) for pid, p in self.plans.items() if p.valid_until > self.now and p.available]
            return [pid for _, pid in sorted(live)]

        @rule(count=st.integers(1, 6), days=st.integers(1, 40), price=st.integers(1, 5000))
        def purchase(self, count: int, days: int, price: int) -> None:
            async def go() -> int:
                async with self.db.transaction() as s:
                    view = await stamps.provision(
                        s, vendor_id=self.vendor_id, order_id=None, plan_name=f"Paquete {count}", stamps=count,
                        validity_days=days, price_paid_mxn=Decimal(price), purchased_at=self.now, now=self.now,
                    )  # fmt: skip
                    return view.id

            self.plans[self.runner.run(go())] = ModelPlan(count, self.now + dt.timedelta(days=days))

        def _reserve(self) -> int | None:
            async def go() -> int | None:
                try:
                    async with self.db.transaction() as s:
                        return await stamps.reserve(s, self.vendor_id, reference="r", now=self.now)
                except stamps.NoStampAvailable:
                    return None

            expected = self._usable()
            got = self.runner.run(go())
            assert got == (expected[0] if expected else None)  # earliest-expiring plan first
            if got is not None:
                self.plans[got].reserved += 1
            return got

        @rule()
        def reserve_and_wait(self) -> None:
            plan = self._reserve()
            if plan is not None:
                self.pending.append(plan)

        @rule()
        def stamp(self) -> None:
            plan = self._reserve()
            if plan is not None:
                self._finish(plan, debit=True)

        @precondition(lambda self: bool(self.pending))
        @rule(debit=st.booleans(), data=st.data())
        def pac_answers(self, debit: bool, data: st.DataObject) -> None:
            plan = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
            self._finish(plan, debit=debit)

        def _finish(self, plan: int, *, debit: bool) -> None:
            async def go() -> None:
                async with self.db.transaction() as s:
                    if debit:
                        await stamps.debit(s, plan, reference="d", now=self.now)
                    else:
                        await stamps.release(s, plan, reference="x", now=self.now)

            self.runner.run(go())
            self.plans[plan].reserved -= 1
            if debit:
                self.plans[plan].used += 1
                self.stamped.append(plan)

        @precondition(lambda self: bool(self.stamped))
        @rule(data=st.data())
        def cancel_with_refund(self, data: st.DataObject) -> None:
            plan = self.stamped.pop(data.draw(st.integers(0, len(self.stamped) - 1)))

            async def go() -> None:
                async with self.db.transaction() as s:
                    await stamps.refund(s, plan, reference="c", now=self.now)

            self.runner.run(go())
            self.plans[plan].used -= 1

        @rule(days=st.integers(0, 30), hours=st.integers(0, 23))
        def time_passes(self, days: int, hours: int) -> None:
            self.now += dt.timedelta(days=days, hours=hours)

        @invariant()
        def statement_matches_ledger_and_model(self) -> None:
            async def go() -> tuple[queries.StatementSummary, list[StampLedgerEntry]]:
                async with self.db.session() as s:
                    summary = await queries.statement_summary(s, self.vendor_id, self.now)
                    ledger = list(
                        await s.scalars(select(StampLedgerEntry).where(StampLedgerEntry.vendor_id == self.vendor_id))
                    )
                    return summary, ledger

            summary, ledger = self.runner.run(go())
            kinds: dict[int, Counter[str]] = {}
            deltas: Counter[int] = Counter()
            provisioned: dict[int, int] = {}
            for entry in ledger:
                kinds.setdefault(entry.plan_id, Counter())[entry.kind] += 1
                deltas[entry.plan_id] += entry.delta
                if entry.kind == "provision":
                    provisioned[entry.plan_id] = entry.delta
            assert {p.plan_id for p in summary.plans} == set(self.plans) == set(provisioned)
            for line in summary.plans:
                k = kinds[line.plan_id]
                assert line.stamps_total == provisioned[line.plan_id]
                assert line.stamps_available == deltas[line.plan_id]
                assert line.stamps_used == k["debit"] - k["refund"]
                assert line.stamps_reserved == k["reserve"] - k["debit"] - k["release"]
                assert line.stamps_used + line.stamps_reserved + line.stamps_available == line.stamps_total
                model = self.plans[line.plan_id]
                assert (line.stamps_used, line.stamps_reserved, line.stamps_available) == (
                    model.used,
                    model.reserved,
                    model.available,
                )
                assert line.expired == (model.valid_until <= self.now)
            live = [p for p in self.plans.values() if p.valid_until > self.now]
            assert summary.stamps_available == sum(p.available for p in live)
            assert summary.stamps_used == sum(p.used for p in self.plans.values())
            usable = [p.valid_until for p in live if p.available > 0]
            assert summary.next_expiry == (min(usable) if usable else None)

    return StatementMachine


def test_statement_equals_ledger_recomputation(database_url: str) -> None:
    machine = make_machine(database_url)
    machine.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=18,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine.TestCase().runTest()
