"""``timbrado vendors show``, ``timbrado csd list`` and ``timbrado secrets rotate`` on SQLite and PostgreSQL.

The data is written in-process through the core; the commands run as real ``timbrado`` processes
(asyncio subprocesses, so the event loop never blocks) against the same database.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from core.audit.service import Actor
from core.clients import service as clients
from core.clock import FrozenClock
from core.db.engine import Database
from core.sat import SatCertificate
from core.secrets.box import SecretBox
from core.secrets.errors import SecretError
from core.secrets.keys import Keyring
from core.stamps import service as stamps
from core.vendors import onboarding
from core.vendors.models import Csd
from core.vendors.service import register_vendor
from tests.support.certs import PASSWORD
from tests.support.onboarding_gaps import add_csd, issue_csd

EXE = str(Path(sys.executable).parent / "timbrado")
ACTOR = Actor.system()
RFC = "PBA010101AB1"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


async def timbrado(args: list[str], env: dict[str, str], timeout: float = 120) -> Result:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")} | env
    proc = await asyncio.create_subprocess_exec(
        EXE, *args, env=full, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
def now() -> FrozenClock:
    """The commands read the system clock, so the data is written at the real time."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def ring_k1() -> Keyring:
    return Keyring.generate("k1")


@pytest.fixture
def env(database_url: str, tmp_path: Path, ring_k1: Keyring) -> dict[str, str]:
    return {
        "TIMBRADO_DATA_DIR": str(tmp_path),
        "TIMBRADO_DATABASE_URL": database_url,
        "TIMBRADO_SECRET_KEYS": ring_k1.encoded(),
    }


async def new_vendor(database: Database, clock: FrozenClock, *, client: str = "ACME") -> int:
    async with database.transaction() as s:
        c = await clients.create_client(
            s, name=client, rfc=None, proveedores_plus=True, contacts=[], actor=ACTOR, now=clock.now()
        )
        v = await register_vendor(
            s,
            client_id=c.id,
            rfc=RFC,
            razon_social="Papelera del Bajío SA de CV",
            correo="facturas@papelerabajio.mx",
            direccion="Av. Constituyentes 100, Querétaro",
            codigo_postal="76000",
            actor=ACTOR,
            now=clock.now(),
        )
    return v.id


async def test_vendors_show_prints_the_vendor_its_data_and_its_plans(
    database: Database, now: FrozenClock, env: dict[str, str]
) -> None:
    vid = await new_vendor(database, now)
    async with database.transaction() as s:
        await stamps.provision(
            s,
            vendor_id=vid,
            order_id=None,
            plan_name="Paquete 100",
            stamps=100,
            validity_days=365,
            price_paid_mxn=Decimal("580.00"),
            purchased_at=now.now(),
            now=now.now(),
        )
    shown = await timbrado(["vendors", "show", str(vid)], env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"Papelera del Bajío SA de CV ({RFC}) - cliente ACME"
    assert lines[1] == "  correo: facturas@papelerabajio.mx  dirección: Av. Constituyentes 100, Querétaro  CP: 76000"
    assert lines[2].startswith("  plan Paquete 100: 0/100 usados, 100 disponibles, vigente hasta ")
    assert len(lines) == 3

    bare = await new_vendor(database, now, client="OTRO")
    shown = await timbrado(["vendors", "show", str(bare)], env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == "  sin planes de timbrado"

    missing = await timbrado(["vendors", "show", "999"], env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "No se encontró el proveedor."
    assert "Traceback" not in missing.stderr


async def test_csd_list_prints_numbers_validity_and_status_without_keys(
    database: Database, now: FrozenClock, env: dict[str, str], ring_k1: Keyring
) -> None:
    box = SecretBox(ring_k1)
    vid = await new_vendor(database, now)
    empty = await timbrado(["csd", "list", "--vendor", str(vid)], env)
    assert (empty.returncode, empty.stdout.strip()) == (0, "(sin certificados)")

    first_cred, second_cred = issue_csd(now, 41), issue_csd(now, 42, days=400)
    first = await add_csd(database, now, vid, first_cred, box)
    second = await add_csd(database, now, vid, second_cred, box)
    listed = await timbrado(["csd", "list", "--vendor", str(vid)], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    for line, csd_id, cred, status in (
        (lines[0], first, first_cred, "inactivo"),
        (lines[1], second, second_cred, "activo"),
    ):
        cert = SatCertificate.load(cred.cer_der())
        assert line.split() == [
            str(csd_id),
            cert.certificate_number,
            RFC,
            f"{cert.valid_from:%d/%m/%Y}",
            "-",
            f"{cert.valid_until:%d/%m/%Y}",
            status,
        ]
    everything = listed.stdout + listed.stderr
    for cred in (first_cred, second_cred):
        assert cred.key_unencrypted_der().hex()[:64] not in everything
    assert PASSWORD not in everything

    unknown = await timbrado(["csd", "list", "--vendor", "999"], env)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "No se encontró el proveedor.")


async def test_secrets_rotate_re_encrypts_with_the_new_key_id_and_the_csd_still_signs(
    database: Database, now: FrozenClock, env: dict[str, str], ring_k1: Keyring
) -> None:
    vid = await new_vendor(database, now)
    await add_csd(database, now, vid, issue_csd(now, 43), SecretBox(ring_k1))
    async with database.session() as s:
        before = (await s.scalars(select(Csd))).one()
    assert before.key_id == "k1"

    nothing = await timbrado(["secrets", "rotate"], env)  # k1 is still the active key
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == "0 llave(s) de CSD cifradas de nuevo con la clave k1."

    ring_k2 = Keyring.parse(f"{Keyring.generate('k2').encoded()},{ring_k1.encoded()}")
    env_k2 = env | {"TIMBRADO_SECRET_KEYS": ring_k2.encoded()}
    rotated = await timbrado(["secrets", "rotate"], env_k2)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == "1 llave(s) de CSD cifradas de nuevo con la clave k2."
    again = await timbrado(["secrets", "rotate"], env_k2)
    assert again.stdout.strip() == "0 llave(s) de CSD cifradas de nuevo con la clave k2."
    for output in (rotated, again):
        assert ring_k2.encoded() not in output.stdout + output.stderr

    async with database.session() as s:
        after = (await s.scalars(select(Csd))).one()
        assert after.key_id == "k2"
        assert after.encrypted_key != before.encrypted_key
        only_k2 = Keyring.parse(ring_k2.encoded().split(",")[0])
        credential = await onboarding.active_csd_credential(s, vid, SecretBox(only_k2), now.now())
        assert credential is not None
        assert credential.verify(b"cadena original", credential.sign(b"cadena original"))
        with pytest.raises(SecretError):
            await onboarding.active_csd_credential(s, vid, SecretBox(ring_k1), now.now())
