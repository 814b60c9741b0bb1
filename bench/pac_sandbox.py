"""Micro benchmark of the sandbox PAC: stamps per second at 0 ms and 150 ms latency.

    .venv/bin/python -m bench.pac_sandbox [N] [CONCURRENCY]

REPs are built and sealed beforehand (not timed); the figure is the PAC alone: parse, light XSD,
sello verification, certificate checks, TFD signature, store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from decimal import Decimal

from core.cfdi.builder import build_rep
from core.clock import FrozenClock
from core.pac.sandbox import SandboxIdentity, SandboxPac
from tests.unit.cfdi.factories import simple_rep
from tests.unit.pac.helpers import ISSUED_AT, NOW, VALID_FROM, issued, signer_of


async def run(n: int, concurrency: int, latency: float, documents: list[bytes]) -> float:
    pac = SandboxPac(SandboxIdentity.generate(now=VALID_FROM).signer(), clock=FrozenClock(NOW), latency=latency)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await pac.stamp(documents[i], idempotency_key=f"p{i}")

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    signer = signer_of(issued())
    documents = [
        build_rep(simple_rep(issued_at=ISSUED_AT - dt.timedelta(seconds=i), amount=Decimal("580.00")), signer).xml
        for i in range(n)
    ]
    for latency in (0.0, 0.150):
        rate = asyncio.run(run(n, concurrency, latency, documents))
        print(f"sandbox PAC, {n} REPs, latency {latency * 1000:.0f} ms, concurrency {concurrency}: {rate:,.0f} REP/s")


if __name__ == "__main__":
    main()
