"""Shared builders for the PAC tests: a SAT-like CA, CSDs, sealed REPs and a sandbox PAC."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache

from core.cfdi.builder import build_rep
from core.cfdi.signing import RsaSigner
from core.clock import FrozenClock
from core.pac.sandbox import AcceptancePolicy, SandboxIdentity, SandboxPac
from core.pac.sandbox_store import MemorySandboxStore
from core.sat.credentials import Credential
from core.sat.trust import SatTrust
from tests.support.certs import IssuedCredential, TestCa, pooled_key
from tests.unit.cfdi.factories import simple_rep

UTC = dt.UTC
ISSUED_AT = dt.datetime(2025, 3, 10, 18, 30, tzinfo=UTC)
NOW = ISSUED_AT + dt.timedelta(minutes=2)
VALID_FROM = dt.datetime(2024, 1, 1, tzinfo=UTC)
VALID_UNTIL = dt.datetime(2028, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1)
def sat_ca() -> TestCa:
    return TestCa.sat_like()


@lru_cache(maxsize=8)
def issued(
    kind: str = "csd",
    rfc: str = "EKU9003173C9",
    not_after: dt.datetime = VALID_UNTIL,
    not_before: dt.datetime = VALID_FROM,
    own_ca: bool = False,
) -> IssuedCredential:
    ca = TestCa.create() if own_ca else sat_ca()
    return ca.issue(kind=kind, rfc=rfc, not_before=not_before, not_after=not_after, key=pooled_key(7))  # type: ignore[arg-type]


def signer_of(cred: IssuedCredential) -> RsaSigner:
    return RsaSigner(cred.private_key, cred.certificate)


def credential_of(cred: IssuedCredential) -> Credential:
    return Credential.from_stored(cred.cer_der(), cred.key_unencrypted_der())


def sealed_rep(
    *,
    cred: IssuedCredential | None = None,
    issued_at: dt.datetime = ISSUED_AT,
    amount: Decimal = Decimal("580.00"),
) -> bytes:
    return build_rep(simple_rep(issued_at=issued_at, amount=amount), signer_of(cred or issued())).xml


@lru_cache(maxsize=1)
def identity() -> SandboxIdentity:
    return SandboxIdentity.generate(now=VALID_FROM, certificate_number="99001000000500000001")


def sandbox(
    clock: FrozenClock | None = None,
    *,
    acceptance: AcceptancePolicy = AcceptancePolicy.SAT_RULES,
    latency: float = 0.0,
    trust: SatTrust | None = None,
    store: MemorySandboxStore | None = None,
) -> SandboxPac:
    return SandboxPac(
        identity().signer(),
        clock=clock or FrozenClock(NOW),
        acceptance=acceptance,
        latency=latency,
        trust=trust,
        store=store,
    )
