"""Onboarding in the core: CSD stored encrypted, Datos del CFDI, logo, readiness, and no secret leaks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from core.audit.service import Actor
from core.clients import service as clients
from core.clock import FrozenClock
from core.db.engine import Database
from core.errors import Invalid, NotFound
from core.sat.trust import SatTrust
from core.secrets.box import SecretBox
from core.secrets.errors import SecretError
from core.secrets.keys import Keyring
from core.stamps import service as stamps
from core.uploads.store import ContentStore
from core.vendors import onboarding
from core.vendors.models import Csd
from core.vendors.service import register_vendor
from tests.support.certs import PASSWORD, TestCa
from tests.support.onboarding_gaps import issue_reps
from tests.support.samples import make_image, make_png_with_header

SANDBOX = SatTrust(sandbox=True)
ACTOR = Actor.system()


async def vendor(database: Database, clock: FrozenClock, rfc: str = "EKU9003173C9") -> int:
    async with database.transaction() as s:
        c = await clients.create_client(
            s, name="ACME", rfc=None, proveedores_plus=True, contacts=[], actor=ACTOR, now=clock.now()
        )
        v = await register_vendor(
            s,
            client_id=c.id,
            rfc=rfc,
            razon_social="ESCUELA KEMPER URGATE SA DE CV",
            correo="sat@ekusa.mx",
            actor=ACTOR,
            now=clock.now(),
        )
    return v.id


async def add(
    database: Database,
    clock: FrozenClock,
    vendor_id: int,
    cer: bytes,
    key: bytes,
    password: str,
    box: SecretBox,
    trust: SatTrust = SANDBOX,
) -> onboarding.CsdView:
    async with database.transaction() as s:
        return await onboarding.add_csd(
            s,
            vendor_id,
            cer=cer,
            key=key,
            password=password,
            box=box,
            trust=trust,
            actor=ACTOR,
            now=clock.now(),
            require_contract=False,
        )


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Keyring.generate("k1"))


def sat_files(root: Path, folder: str) -> tuple[bytes, bytes, str]:
    base = root / folder
    return (
        (base / "certificate.cer").read_bytes(),
        (base / "private.key").read_bytes(),
        (base / "password.txt").read_text(),
    )


async def test_sat_test_csd_is_accepted_stored_encrypted_and_signs_again(
    database: Database, clock: FrozenClock, box: SecretBox, sat_credentials: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vid = await vendor(database, clock)
    cer, key, password = sat_files(sat_credentials, "valid-2027/EKU9003173C9-csd")
    view = await add(database, clock, vid, cer, key, password, box)
    assert view.certificate_number == "30001000000500003416"
    assert view.active and view.status == "activo"
    async with database.session() as s:
        credential = await onboarding.active_csd_credential(s, vid, box, clock.now())
        raw_rows = (await s.execute(text("SELECT * FROM csds"))).all()
    assert credential is not None
    assert credential.verify(b"cadena", credential.sign(b"cadena"))
    plain_key = credential.private_key_der()
    dumped = repr(raw_rows).encode()
    assert plain_key not in dumped and plain_key[:64].hex() not in dumped.decode()
    assert password not in dumped.decode()
    assert password not in caplog.text
    assert plain_key.hex()[:40] not in caplog.text


@pytest.mark.parametrize(
    ("folder", "code"),
    [
        ("valid-2027/EKU9003173C9-efirma", "fiel_not_csd"),
        ("expired-2023/EKU9003173C9-csd", "certificate_expired"),
        ("valid-2027/FUNK671228PH6-csd", "rfc_mismatch"),
    ],
)
async def test_sat_credentials_that_do_not_fit_are_refused_with_a_reason(
    database: Database, clock: FrozenClock, box: SecretBox, sat_credentials: Path, folder: str, code: str
) -> None:
    vid = await vendor(database, clock)
    cer, key, password = sat_files(sat_credentials, folder)
    with pytest.raises(onboarding.CredentialRefused) as info:
        await add(database, clock, vid, cer, key, password, box)
    assert info.value.code == code
    assert password not in info.value.message


async def test_wrong_key_and_wrong_password_are_refused(
    database: Database, clock: FrozenClock, box: SecretBox, sat_credentials: Path
) -> None:
    vid = await vendor(database, clock)
    cer, _key, password = sat_files(sat_credentials, "valid-2027/EKU9003173C9-csd")
    _, other_key, _ = sat_files(sat_credentials, "valid-2027/FUNK671228PH6-csd")
    with pytest.raises(onboarding.CredentialRefused) as info:
        await add(database, clock, vid, cer, other_key, password, box)
    assert info.value.code == "key_mismatch"
    _, key, _ = sat_files(sat_credentials, "valid-2027/EKU9003173C9-csd")
    with pytest.raises(onboarding.CredentialRefused) as info:
        await add(database, clock, vid, cer, key, "no-es-la-contraseña", box)
    assert info.value.code == "wrong_password"
    assert "contraseña" in info.value.message


async def test_generated_credentials_expiry_rotation_and_the_expiry_warning(
    database: Database, clock: FrozenClock
) -> None:
    ca = TestCa.sat_like()
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    vid = await vendor(database, clock, rfc="PBA010101AB1")
    soon = ca.issue(
        rfc="PBA010101AB1",
        legal_name="PAPELERA",
        not_before=clock.now() - timedelta(days=300),
        not_after=clock.now() + timedelta(days=20),
    )
    ring_old = Keyring.generate("k1")
    box_old = SecretBox(ring_old)
    await add(database, clock, vid, soon.cer_der(), soon.key_der(), PASSWORD, box_old)
    async with database.transaction() as s:
        warned = await onboarding.csd_expiry_sweep(s, mail_from="t@x.mx", mail_domain="x.mx", now=clock.now())
        again = await onboarding.csd_expiry_sweep(s, mail_from="t@x.mx", mail_domain="x.mx", now=clock.now())
    assert (warned, again) == (1, 0)
    # Rotation: a new active key re-encrypts stored keys; the old key still decrypts until rotated.
    box_new = SecretBox(Keyring.parse(f"{Keyring.generate('k2').encoded()},{ring_old.encoded()}"))
    assert box_new.active_key_id == "k2"
    async with database.transaction() as s:
        assert await onboarding.rotate_secrets(s, box_new) == 1
        assert await onboarding.rotate_secrets(s, box_new) == 0
    async with database.session() as s:
        row = (await s.scalars(select(Csd))).one()
        assert row.key_id == "k2"
        assert await onboarding.active_csd_credential(s, vid, box_new, clock.now()) is not None
        with pytest.raises(SecretError):
            await onboarding.active_csd_credential(s, vid, box_old, clock.now())
    clock.advance(timedelta(days=21))
    async with database.session() as s:
        assert await onboarding.active_csd_credential(s, vid, box_new, clock.now()) is None
        assert [c.status for c in await onboarding.list_csds(s, vid, clock.now())] == ["vencido"]


async def test_untrusted_issuer_and_not_yet_valid_are_refused(database: Database, clock: FrozenClock) -> None:
    vid = await vendor(database, clock, rfc="PBA010101AB1")
    box = SecretBox(Keyring.generate("k1"))
    stranger = TestCa.create(common_name="AC Pirata", organization="Nadie SA")
    cred = stranger.issue(rfc="PBA010101AB1", legal_name="PAPELERA", not_before=clock.now() - timedelta(days=1))
    with pytest.raises(onboarding.CredentialRefused) as info:
        await add(database, clock, vid, cred.cer_der(), cred.key_der(), PASSWORD, box)
    assert info.value.code == "untrusted_issuer"
    future = TestCa.sat_like().issue(
        rfc="PBA010101AB1",
        legal_name="PAPELERA",
        not_before=clock.now() + timedelta(days=1),
        not_after=clock.now() + timedelta(days=400),
    )
    with pytest.raises(onboarding.CredentialRefused) as info:
        await add(database, clock, vid, future.cer_der(), future.key_der(), PASSWORD, box)
    assert info.value.code == "certificate_not_yet_valid"
    sat_name_test_ca = TestCa.sat_like().issue(
        rfc="PBA010101AB1", legal_name="PAPELERA", not_before=clock.now() - timedelta(days=1)
    )
    with pytest.raises(onboarding.CredentialRefused) as info:
        await add(
            database,
            clock,
            vid,
            sat_name_test_ca.cer_der(),
            sat_name_test_ca.key_der(),
            PASSWORD,
            box,
            trust=SatTrust(sandbox=False),
        )
    assert info.value.code == "untrusted_issuer"


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"lugar_expedicion": "00000", "serie": "REP", "folio_inicial": 1}, {"lugar_expedicion"}),
        ({"lugar_expedicion": "ABCDE", "serie": "REP", "folio_inicial": 1}, {"lugar_expedicion"}),
        ({"lugar_expedicion": "00001", "serie": "REP", "folio_inicial": 1}, {"lugar_expedicion"}),
        ({"lugar_expedicion": "76000", "serie": "RE|P", "folio_inicial": 1}, {"serie"}),
        ({"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": 0}, {"folio_inicial"}),
        ({"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": -1}, {"folio_inicial"}),
        ({"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": "abc"}, {"folio_inicial"}),
        ({}, {"lugar_expedicion", "serie", "folio_inicial"}),
    ],
)
async def test_bad_cfdi_settings_name_each_field(
    database: Database, clock: FrozenClock, data: dict, fields: set[str]
) -> None:
    vid = await vendor(database, clock)
    with pytest.raises(Invalid) as info:
        async with database.transaction() as s:
            await onboarding.set_cfdi_settings(s, vid, data, actor=ACTOR, now=clock.now())
    assert {d["field"] for d in info.value.details} == fields


async def test_cfdi_settings_record_the_time_zone_and_the_folio_only_moves_forward_after_use(
    database: Database, clock: FrozenClock
) -> None:
    vid = await vendor(database, clock)
    async with database.transaction() as s:
        view = await onboarding.set_cfdi_settings(
            s,
            vid,
            {"lugar_expedicion": "22000", "serie": " REP ", "folio_inicial": "100"},
            actor=ACTOR,
            now=clock.now(),
        )
    assert (view.serie, view.next_folio, view.time_zone) == ("REP", 100, "America/Tijuana")
    async with database.transaction() as s:  # no REP yet: moving back is allowed
        await onboarding.set_cfdi_settings(
            s, vid, {"lugar_expedicion": "22000", "serie": "REP", "folio_inicial": 50}, actor=ACTOR, now=clock.now()
        )
    assert [f for _, f in await issue_reps(database, vid, 3, clock.now())] == [50, 51, 52]
    with pytest.raises(Invalid) as info:
        async with database.transaction() as s:
            await onboarding.set_cfdi_settings(
                s, vid, {"lugar_expedicion": "22000", "serie": "REP", "folio_inicial": 52}, actor=ACTOR, now=clock.now()
            )
    assert [d["code"] for d in info.value.details] == ["folio_backwards"]
    async with database.transaction() as s:
        view = await onboarding.set_cfdi_settings(
            s, vid, {"lugar_expedicion": "22000", "serie": "REP", "folio_inicial": 60}, actor=ACTOR, now=clock.now()
        )
    assert view.next_folio == 60


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "unsupported_type"),
        (make_image("GIF"), "unsupported_type"),
        (make_png_with_header(5000, 5000), "logo_dimensions"),
        (make_image("PNG", (1200, 1200), noise=True), "logo_too_large"),
    ],
)
async def test_bad_logos_are_refused(
    database: Database, clock: FrozenClock, tmp_path: Path, data: bytes, code: str
) -> None:
    vid = await vendor(database, clock)
    async with database.transaction() as s:
        await onboarding.set_cfdi_settings(
            s, vid, {"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": 1}, actor=ACTOR, now=clock.now()
        )
    with pytest.raises(Invalid) as info:
        async with database.transaction() as s:
            await onboarding.set_logo(s, vid, data, store=ContentStore(tmp_path), actor=ACTOR, now=clock.now())
    assert info.value.code == code


async def test_a_jpeg_named_png_is_fine_because_content_decides(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    vid = await vendor(database, clock)
    async with database.transaction() as s:
        await onboarding.set_cfdi_settings(
            s, vid, {"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": 1}, actor=ACTOR, now=clock.now()
        )
        view = await onboarding.set_logo(
            s, vid, make_image("JPEG"), store=ContentStore(tmp_path), actor=ACTOR, now=clock.now()
        )
    assert view.logo_content_type == "image/jpeg"


async def test_readiness_names_what_is_missing_in_step_order(
    database: Database, clock: FrozenClock, box: SecretBox
) -> None:
    vid = await vendor(database, clock, rfc="PBA010101AB1")
    async with database.session() as s:
        r = await onboarding.readiness(s, vid, clock.now())
    assert [m.value for m in r.missing] == ["plan", "contract", "csd", "cfdi_settings"]
    assert r.messages[0].startswith("Sin plan")
    async with database.transaction() as s:
        await stamps.provision(
            s,
            vendor_id=vid,
            order_id=None,
            plan_name="P",
            stamps=5,
            validity_days=30,
            price_paid_mxn=__import__("decimal").Decimal("1"),
            purchased_at=clock.now(),
            now=clock.now(),
        )
        await onboarding.set_cfdi_settings(
            s, vid, {"lugar_expedicion": "76000", "serie": "REP", "folio_inicial": 1}, actor=ACTOR, now=clock.now()
        )
    cred = TestCa.sat_like().issue(
        rfc="PBA010101AB1",
        legal_name="PAPELERA",
        not_before=clock.now() - timedelta(days=1),
        not_after=clock.now() + timedelta(days=700),
    )
    await add(database, clock, vid, cred.cer_der(), cred.key_der(), PASSWORD, box)
    async with database.session() as s:
        r = await onboarding.readiness(s, vid, clock.now())
    assert [m.value for m in r.missing] == ["contract"]
    assert r.stamps_available == 5
    with pytest.raises(NotFound):
        async with database.session() as s:
            await onboarding.readiness(s, 999, clock.now())


async def test_the_scheduler_task_warns_of_an_expiring_csd_once(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    from core.notifications.models import OutboundEmail
    from tests.support.app import container_for, settings_for

    container = container_for(settings_for(database_url, tmp_path), clock)
    try:
        vid = await vendor(container.db, clock, rfc="PBA010101AB1")
        soon = TestCa.sat_like().issue(
            rfc="PBA010101AB1",
            legal_name="PAPELERA",
            not_before=clock.now() - timedelta(days=300),
            not_after=clock.now() + timedelta(days=10),
        )
        await add(container.db, clock, vid, soon.cer_der(), soon.key_der(), PASSWORD, container.secret_box())
        [task] = [t for t in container.periodic_tasks() if t.name == "csd-expiry"]
        await task.run()
        await task.run()
        async with container.db.session() as s:
            mails = (await s.scalars(select(OutboundEmail).where(OutboundEmail.template == "csd_expiring"))).all()
        assert len(mails) == 1
        assert mails[0].to_addrs == ["sat@ekusa.mx"]
        assert "vence" in mails[0].subject
    finally:
        await container.aclose()
