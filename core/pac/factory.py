"""Build the configured PAC adapter from plain options (the composition root passes settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import aiohttp

from core.cfdi.signing import Signer
from core.clock import Clock
from core.pac import finkok, sw
from core.pac.base import Pac
from core.pac.finkok import FinkokPac
from core.pac.sandbox import AcceptancePolicy, SandboxPac
from core.pac.sandbox_store import SandboxStore
from core.pac.sw import SwPac
from core.sat.trust import SatTrust

PacName = Literal["sandbox", "finkok", "sw"]


def build_pac(
    name: PacName,
    *,
    clock: Clock,
    options: Mapping[str, str] | None = None,
    sandbox_signer: Signer | None = None,
    sandbox_store: SandboxStore | None = None,
    trust: SatTrust | None = None,
    latency: float = 0.0,
    test_environment: bool = False,
    timeout: float = 30.0,
    session: aiohttp.ClientSession | None = None,
) -> Pac:
    """The adapter for ``name``.

    ``options``: Finkok ``username``, ``password`` and optional ``base_url``; SW ``user`` and
    ``password`` or ``token``, optional ``base_url``, ``api_url``, ``sat_status_url``.
    ``test_environment`` selects the PAC's demo/test hosts. The sandbox needs ``sandbox_signer``
    (``SandboxIdentity.signer()``).
    """
    opts = dict(options or {})
    if name == "sandbox":
        if sandbox_signer is None:
            raise ValueError("the sandbox PAC needs its signer (SandboxIdentity)")
        return SandboxPac(
            sandbox_signer,
            clock=clock,
            trust=trust,
            latency=latency,
            store=sandbox_store,
            acceptance=AcceptancePolicy(opts.get("acceptance", AcceptancePolicy.SAT_RULES.value)),
        )
    if name == "finkok":
        default = finkok.DEMO_URL if test_environment else finkok.PRODUCTION_URL
        return FinkokPac(
            _required(opts, "username", name),
            _required(opts, "password", name),
            base_url=opts.get("base_url", default),
            timeout=timeout,
            session=session,
            clock=clock,
        )
    if name == "sw":
        extra = {"sat_status_url": opts["sat_status_url"]} if "sat_status_url" in opts else {}
        return SwPac(
            user=opts.get("user"),
            password=opts.get("password"),
            token=opts.get("token"),
            base_url=opts.get("base_url", sw.TEST_URL if test_environment else sw.PRODUCTION_URL),
            api_url=opts.get("api_url", sw.TEST_API_URL if test_environment else sw.PRODUCTION_API_URL),
            timeout=timeout,
            session=session,
            clock=clock,
            **extra,
        )
    raise ValueError(f"unknown PAC {name!r}; expected sandbox, finkok or sw")


def _required(options: Mapping[str, str], key: str, pac: str) -> str:
    value = options.get(key)
    if not value:
        raise ValueError(f"PAC {pac} needs option {key!r}")
    return value
