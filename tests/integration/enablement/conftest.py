from __future__ import annotations

from pathlib import Path

import pytest

from core.audit.service import Actor, ActorKind, Driver
from core.clock import FrozenClock
from core.db.engine import Database
from core.enablement.service import EnablementConfig
from mail.sink import CoreMailSink, RawMailStore

CORPUS = Path(__file__).resolve().parents[2] / "data" / "eml"


@pytest.fixture
def cfg() -> EnablementConfig:
    return EnablementConfig(
        mail_from="Soporte <soporte@timbrado.test>", mail_domain="timbrado.test", slack_enabled=True
    )


@pytest.fixture
def sink(database: Database, clock: FrozenClock, cfg: EnablementConfig, tmp_path: Path) -> CoreMailSink:
    return CoreMailSink(database, clock, cfg, RawMailStore(tmp_path / "mail"))


@pytest.fixture
def staff() -> Actor:
    return Actor(ActorKind.STAFF, "slack:U1", Driver.SLACK, "Ana Soporte")


def eml(name: str) -> bytes:
    return (CORPUS / name).read_bytes()
