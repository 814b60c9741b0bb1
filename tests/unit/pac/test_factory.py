"""build_pac picks the adapter named in settings and refuses incomplete options."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from core.pac.factory import build_pac
from core.pac.finkok import FinkokPac
from core.pac.sandbox import SandboxPac
from core.pac.sw import SwPac

from .helpers import NOW, identity


async def test_each_name_builds_its_adapter() -> None:
    clock = FrozenClock(NOW)
    assert isinstance(build_pac("sandbox", clock=clock, sandbox_signer=identity().signer()), SandboxPac)
    fk = build_pac("finkok", clock=clock, options={"username": "u", "password": "p"}, test_environment=True)
    assert isinstance(fk, FinkokPac) and "demo-facturacion" in repr(fk)
    swp = build_pac("sw", clock=clock, options={"token": "t"})
    assert isinstance(swp, SwPac) and "services.sw.com.mx" in repr(swp)
    await fk.close()
    await swp.close()


@pytest.mark.parametrize(
    ("name", "options"),
    [("finkok", {"username": "u"}), ("sw", {"user": "u"}), ("nope", {}), ("sandbox", {})],
)
def test_missing_options_or_unknown_names_are_refused(name: str, options: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        build_pac(name, clock=FrozenClock(NOW), options=options)  # type: ignore[arg-type]
