"""Onboarding gaps found by the audit: folios decided from the REPs, several CSDs with one active,
and the 30-day expiry warning boundary.  Service level, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.audit.service import Actor
from core.clients import service as clients
from core.clock import FrozenClock
from core.db.engine import Database
from core.errors import Invalid, NotFound
from core.notifications.models import OutboundEmail
from core.sat import SatCertificate
from core.sat.trust import SatTrust
from core.secrets.box import SecretBox
from core.secrets.keys import Keyring
from core.stamping import queries
from core.stamping.models import Payment
from core.stamps import service as stamps
from core.vendors import onboarding
from core.vendors.models import CfdiSettings, Csd
from core.vendors.service import register_vendor
from tests.support.onboarding_gaps import add_csd, insert_reps, issue_csd, issue_reps

SANDBOX = SatTrust(sandbox=True)
ACTOR = Actor.system()
RFC = "PBA010101AB1"
PLACE = "76000"


async def new_vendor(database: Database, clock: FrozenClock) -> int:
    async with database.transaction() as s:
        c = await clients.create_client(
            s, name="ACME", rfc=None, proveedores_plus=True, contacts=[], actor=ACTOR, now=clock.now()
        )
        v = await register_vendor(
            s, client_id=c.id, rfc=RFC, razon_social="PAPELERA", correo="f@papelera.mx", actor=ACTOR, now=clock.now()
        )
    return v.id


async def save(
    database: Database, clock: FrozenClock, vendor_id: int, folio: object, serie: str = "REP"
) -> onboarding.CfdiSettingsView:
    async with database.transaction() as s:
        return await onboarding.set_cfdi_settings(
            s,
            vendor_id,
            {"lugar_expedicion": PLACE, "serie": serie, "folio_inicial": folio},
            actor=ACTOR,
            now=clock.now(),
        )


async def refused(database: Database, clock: FrozenClock, vendor_id: int, folio: int, serie: str = "REP") -> dict:
    with pytest.raises(Invalid) as info:
        await save(database, clock, vendor_id, folio, serie)
    assert info.value.code == "invalid_cfdi_settings"
    [detail] = info.value.details
    assert (detail["field"], detail["code"]) == ("folio_inicial", "folio_backwards")
    return detail


async def stored(database: Database, vendor_id: int) -> tuple[str, int]:
    async with database.session() as s:
        row = await s.get(CfdiSettings, vendor_id)
        assert row is not None
        return row.serie, row.next_folio


# ------------------------------------------------------------------------------------------ folios
async def test_after_reps_a_forward_folio_move_does_not_open_the_way_back(
    database: Database, clock: FrozenClock
) -> None:
    vid = await new_vendor(database, clock)
    await save(database, clock, vid, 50)
    assert await issue_reps(database, vid, 3, clock.now()) == [("REP", 50), ("REP", 51), ("REP", 52)]
    assert (await save(database, clock, vid, 60)).next_folio == 60
    detail = await refused(database, clock, vid, 1)
    assert detail["message"] == (
        "El folio inicial debe ser 60 o mayor: la serie «REP» ya tiene complementos de pago emitidos hasta el "
        "folio 52 y sus folios solo pueden avanzar."
    )
    for folio in (50, 52, 53, 59):  # issued ones, and free ones below the current next folio
        await refused(database, clock, vid, folio)
    assert await stored(database, vid) == ("REP", 60)
    assert (await save(database, clock, vid, 60)).next_folio == 60  # saving the same folio again is fine
    assert (await save(database, clock, vid, 75)).next_folio == 75
    assert await issue_reps(database, vid, 1, clock.now()) == [("REP", 75)]
    await refused(database, clock, vid, 60)


async def test_before_any_rep_the_folio_may_move_back_freely(database: Database, clock: FrozenClock) -> None:
    vid = await new_vendor(database, clock)
    await save(database, clock, vid, 100)
    await save(database, clock, vid, 60)
    assert (await save(database, clock, vid, "1")).next_folio == 1


async def test_reps_that_did_not_move_the_settings_still_block_a_backwards_folio(
    database: Database, clock: FrozenClock
) -> None:
    """Imported or seeded REPs: ``next_folio`` was never advanced, the REP table decides."""
    vid = await new_vendor(database, clock)
    await save(database, clock, vid, 1)
    await insert_reps(database, vid, "REP", [1, 2, 3, 4, 5], clock.now())
    detail = await refused(database, clock, vid, 3)
    assert "debe ser 6 o mayor" in detail["message"]
    assert "hasta el folio 5" in detail["message"]
    assert (await save(database, clock, vid, 6)).next_folio == 6


async def test_a_new_serie_restarts_its_folios_but_a_used_serie_stays_above_its_reps(
    database: Database, clock: FrozenClock
) -> None:
    vid = await new_vendor(database, clock)
    await save(database, clock, vid, 1)
    await issue_reps(database, vid, 3, clock.now())  # REP 1-3
    assert (await save(database, clock, vid, 1, serie="B")).next_folio == 1
    assert await issue_reps(database, vid, 2, clock.now()) == [("B", 1), ("B", 2)]
    detail = await refused(database, clock, vid, 2, serie="REP")  # back to REP below its last folio
    assert "debe ser 4 o mayor" in detail["message"] and "«REP»" in detail["message"]
    assert (await save(database, clock, vid, 4, serie=" REP ")).next_folio == 4
    await refused(database, clock, vid, 2, serie="B")
    assert (await save(database, clock, vid, 3, serie="B")).next_folio == 3


async def test_other_field_errors_are_reported_with_the_backwards_folio(database: Database, clock: FrozenClock) -> None:
    vid = await new_vendor(database, clock)
    await save(database, clock, vid, 10)
    await issue_reps(database, vid, 1, clock.now())
    with pytest.raises(Invalid) as info:
        async with database.transaction() as s:
            await onboarding.set_cfdi_settings(
                s, vid, {"lugar_expedicion": "00000", "serie": "REP", "folio_inicial": 5}, actor=ACTOR, now=clock.now()
            )
    assert {(d["field"], d["code"]) for d in info.value.details} == {
        ("lugar_expedicion", "postal_code_not_found"),
        ("folio_inicial", "folio_backwards"),
    }


# ------------------------------------------------------------------------------------ several CSDs


async def stamping_csd_id(database: Database, vid: int, clock: FrozenClock) -> int | None:
    """The CSD the stamping pipeline's head query picks for a payment of the vendor."""
    async with database.transaction() as s:
        payment_id = await s.scalar(select(Payment.id).where(Payment.vendor_id == vid))
        head = (await s.execute(queries.HEAD, {"payment_id": payment_id})).one()
    return None if head.csd_id is None else int(head.csd_id)


async def test_a_vendor_keeps_several_csds_with_exactly_one_active_and_stamping_follows_it(
    database: Database, clock: FrozenClock
) -> None:
    box = SecretBox(Keyring.generate("k1"))
    vid = await new_vendor(database, clock)
    async with database.transaction() as s:
        await stamps.provision(
            s,
            vendor_id=vid,
            order_id=None,
            plan_name="P",
            stamps=5,
            validity_days=90,
            price_paid_mxn=Decimal("1"),
            purchased_at=clock.now(),
            now=clock.now(),
        )
    await save(database, clock, vid, 1)
    await insert_reps(database, vid, "X", [1], clock.now())  # a payment row for the stamping head query
    lasting, soon = issue_csd(clock, 21, days=700), issue_csd(clock, 22, days=10)
    first = await add_csd(database, clock, vid, lasting, box)
    second = await add_csd(database, clock, vid, soon, box)

    async def state() -> tuple[list[tuple[int, str]], str | None, list[str]]:
        async with database.session() as s:
            views = await onboarding.list_csds(s, vid, clock.now())
            credential = await onboarding.active_csd_credential(s, vid, box, clock.now())
            ready = await onboarding.readiness(s, vid, clock.now())
        assert sum(v.active for v in views) == 1
        number = credential.certificate.certificate_number if credential else None
        if credential is not None:
            assert credential.verify(b"cadena", credential.sign(b"cadena"))
        return [(v.id, v.status) for v in views], number, [m.value for m in ready.missing]

    number_first = SatCertificate.load(lasting.cer_der()).certificate_number
    number_second = SatCertificate.load(soon.cer_der()).certificate_number
    assert number_first != number_second
    assert await state() == ([(first, "inactivo"), (second, "activo")], number_second, ["contract"])
    assert await stamping_csd_id(database, vid, clock) == second

    async with database.transaction() as s:
        view = await onboarding.activate_csd(s, vid, first, actor=ACTOR, now=clock.now())
    assert (view.id, view.active, view.status) == (first, True, "activo")
    assert await state() == ([(first, "activo"), (second, "inactivo")], number_first, ["contract"])
    assert await stamping_csd_id(database, vid, clock) == first

    async with database.transaction() as s:
        await onboarding.activate_csd(s, vid, second, actor=ACTOR, now=clock.now())
    clock.advance(timedelta(days=11))  # the active one expires: stamping is no longer ready
    assert await state() == ([(first, "inactivo"), (second, "vencido")], None, ["contract", "csd"])
    with pytest.raises(Invalid) as info:
        async with database.transaction() as s:
            await onboarding.activate_csd(s, vid, second, actor=ACTOR, now=clock.now())
    assert info.value.code == "certificate_expired"
    async with database.transaction() as s:
        await onboarding.activate_csd(s, vid, first, actor=ACTOR, now=clock.now())
    assert await state() == ([(first, "activo"), (second, "vencido")], number_first, ["contract"])
    assert await stamping_csd_id(database, vid, clock) == first


async def test_adding_the_same_csd_again_keeps_one_row_and_makes_it_active(
    database: Database, clock: FrozenClock
) -> None:
    box = SecretBox(Keyring.generate("k1"))
    vid = await new_vendor(database, clock)
    a, b = issue_csd(clock, 21, days=700), issue_csd(clock, 22, days=700)
    first = await add_csd(database, clock, vid, a, box)
    second = await add_csd(database, clock, vid, b, box)
    assert await add_csd(database, clock, vid, a, box) == first
    async with database.session() as s:
        rows = (await s.scalars(select(Csd).order_by(Csd.id))).all()
    assert [(r.id, r.active) for r in rows] == [(first, True), (second, False)]


async def test_a_csd_of_another_vendor_cannot_be_activated(database: Database, clock: FrozenClock) -> None:
    box = SecretBox(Keyring.generate("k1"))
    vid = await new_vendor(database, clock)
    other = await new_vendor(database, clock)
    theirs = await add_csd(database, clock, other, issue_csd(clock, 21, days=700), box)
    with pytest.raises(NotFound):
        async with database.transaction() as s:
            await onboarding.activate_csd(s, vid, theirs, actor=ACTOR, now=clock.now())


# ------------------------------------------------------------------------------ expiry warning
async def test_the_expiry_warning_starts_exactly_30_days_before_expiry(database: Database, clock: FrozenClock) -> None:
    box = SecretBox(Keyring.generate("k1"))
    vid = await new_vendor(database, clock)
    await add_csd(database, clock, vid, issue_csd(clock, 23, days=31), box)

    async def sweep() -> int:
        async with database.transaction() as s:
            return await onboarding.csd_expiry_sweep(s, mail_from="t@x.mx", mail_domain="x.mx", now=clock.now())

    assert await sweep() == 0  # 31 days left
    clock.advance(timedelta(hours=23, minutes=59, seconds=59))
    assert await sweep() == 0  # one second more than 30 days
    clock.advance(timedelta(seconds=1))
    assert await sweep() == 1  # exactly 30 days
    clock.advance(timedelta(days=1))
    assert await sweep() == 0  # once per certificate
    async with database.session() as s:
        mails = (await s.scalars(select(OutboundEmail).where(OutboundEmail.template == "csd_expiring"))).all()
    assert [m.to_addrs for m in mails] == [["f@papelera.mx"]]
