"""Payment-proof review in Slack: the real Bolt app behind the real aiohttp app, signed requests,
the fake Slack API (with files_upload_v2's three steps), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from admin.container import Container
from admin.deps import file_store, orders_config
from core.audit.service import Actor
from core.clients import service as clients
from core.clients.models import Client
from core.clock import FrozenClock
from core.jobs.models import Job, JobStatus
from core.orders import service
from core.orders.models import Order
from core.stamps.models import StampPlan
from core.vendors.service import register_vendor
from tests.integration.bot.conftest import CHANNEL, GROUP, GROUP_MEMBER, OUTSIDER, SECRET, STAFF, Slack
from tests.support import fake_slack
from tests.support.app import container_for, make_tokens, settings_for
from tests.support.fake_slack import FakeSlack
from tests.support.samples import make_image, make_pdf

ESCALATION_GROUP = "S0ESCAL001"
CONTACT = {"empresa": "Papelera del Bajío SA de CV", "nombre": "Rosa Martínez", "telefono": "4421234567",
           "correo": "rosa@papelerabajio.mx"}  # fmt: skip


@pytest.fixture
async def container(database_url: str, tmp_path: Path, clock: FrozenClock, fake: FakeSlack) -> AsyncIterator[Container]:
    """The Slack suite's container, plus an escalation user group."""
    settings = settings_for(
        database_url,
        tmp_path,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_channel=CHANNEL,
        slack_allowed_users=(STAFF,),
        slack_allowed_usergroup=GROUP,
        slack_escalation_usergroup=ESCALATION_GROUP,
        slack_api_url=fake.api_url,
    )
    c = container_for(settings, clock)
    yield c
    await c.aclose()


# ---------------------------------------------------------------------------- helpers
def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for blk in blocks if blk["type"] == "actions" for e in blk["elements"]]


async def new_order(
    c: Container, *, razon_social: str = "Papelera del Bajío SA de CV", rfc: str = "PBA010101AB1"
) -> tuple[int, int]:
    """An enabled client, its vendor, a package and an order awaiting payment: (vendor id, order id)."""
    actor, now = Actor.system(), c.clock.now()
    async with c.db.transaction() as s:
        client = await clients.create_client(
            s, name="Grupo ACME", rfc=None, proveedores_plus=True, contacts=[], actor=actor, now=now
        )
        row = await s.get(Client, client.id)
        assert row is not None
        row.timbrado_enabled = True
        vendor = await register_vendor(
            s, client_id=client.id, rfc=rfc, razon_social=razon_social, correo="f@p.mx", actor=actor, now=now
        )
        pkg = await service.create_package(
            s, name="Paquete 100", stamps=100, price_mxn="1160.00", validity_days=365, actor=actor, now=now
        )
        order = await service.create_order(
            s, vendor_id=vendor.id, package_id=pkg.id, contact=CONTACT, actor=actor, cfg=orders_config(c), now=now
        )
    return vendor.id, order.id


async def send_proof(c: Container, vendor_id: int, order_id: int, data: bytes, name: str = "pago.pdf") -> None:
    stored = file_store(c).store_bytes(data)
    async with c.db.transaction() as s:
        await service.attach_proof(
            s,
            order_id,
            vendor_id=vendor_id,
            stored=stored,
            display_name=name,
            actor=Actor.system(),
            cfg=orders_config(c),
            now=c.clock.now(),
        )


async def order_in_review(c: Container, data: bytes | None = None, **kw: Any) -> int:
    vendor_id, order_id = await new_order(c, **kw)
    await send_proof(c, vendor_id, order_id, data or make_pdf())
    return order_id


async def get(c: Container, order_id: int) -> service.OrderView:
    async with c.db.transaction() as s:
        return await service.get_order(s, order_id)


async def click(slack: Slack, action_id: str, value: str, user_id: str = STAFF, name: str = "", **kw: Any) -> Any:
    payload = fake_slack.block_action(action_id, value, user_id=user_id, name=name or user_id.lower())
    return await slack.send(fake_slack.interaction(payload, SECRET, **kw))


async def submit_reason(
    slack: Slack, order_id: int, round_: int, reason: str | None, user_id: str = STAFF, **kw: Any
) -> Any:
    payload = fake_slack.view_submission(
        "order.reject_reason",
        user_id=user_id,
        name=user_id.lower(),
        metadata={"order_id": order_id, "round": round_, "channel": CHANNEL},
        values={"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}},
    )
    return await slack.send(fake_slack.interaction(payload, SECRET, **kw))


async def sweep(c: Container) -> tuple[int, int]:
    async with c.db.transaction() as s:
        return await service.sla_sweep(s, cfg=orders_config(c), now=c.clock.now())


async def plans(c: Container, order_id: int) -> int:
    async with c.db.session() as s:
        return int(await s.scalar(select(func.count()).where(StampPlan.order_id == order_id)) or 0)


def thread_replies(slack: Slack, ts: str) -> list[dict[str, Any]]:
    return [c.args for c in slack.fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]


# ---------------------------------------------------------------------------- the card
async def test_a_proof_uploaded_through_the_api_posts_a_review_card_and_the_proof_to_its_thread(
    slack: Slack,
) -> None:
    c = slack.container
    c.clock.set(datetime(2026, 12, 4, 23, 0, tzinfo=UTC))  # type: ignore[attr-defined]  # Friday 17:00 local
    tokens = await make_tokens(c)
    vendor_id, order_id = await new_order(c)
    assert vendor_id == 1  # the vendor:1 token
    pdf = make_pdf("Transferencia SPEI 1160.00")
    resp = await slack.http.put(
        f"/api/v1/vendors/1/orders/{order_id}/proof",
        data=pdf,
        headers=tokens.auth("vendor") | {"Content-Type": "application/pdf", "X-Filename": "../../spei.pdf"},
    )
    assert resp.status == 200, await resp.text()
    await slack.run_jobs()

    [post] = slack.fake.calls_to("chat.postMessage")
    assert post.args["channel"] == CHANNEL
    card = texts(post.args["blocks"])
    view = await get(c, order_id)
    for expected in (
        "Papelera del Bajío SA de CV",
        "PBA010101AB1",
        "Paquete 100",
        "100 timbres",
        "$1,160.00 MXN",
        view.payment_reference,
        "09/12/2026 14:00 (America/Mexico_City)",  # Friday 17:00 + 24 business hours = Wednesday 14:00
        "Rosa Martínez",
        "442 123 4567",
        "rosa@papelerabajio.mx",
        "spei.pdf",
    ):
        assert expected in card, expected
    approve, reject = buttons(post.args["blocks"])
    assert (approve["text"]["text"], approve["action_id"]) == ("Aprobar", "order.approve")
    assert approve["value"] == f"{order_id}:1"
    assert approve["confirm"]["confirm"]["text"] == "Aprobar" and "Paquete 100" in approve["confirm"]["text"]["text"]
    assert (reject["text"]["text"], reject["action_id"], reject["style"]) == ("Rechazar", "order.reject", "danger")
    assert (view.slack_channel, view.slack_ts) == (CHANNEL, post.args.get("ts") or "1700000000.000001")

    [upload] = slack.fake.uploads
    assert upload.data == pdf  # the proof itself, byte for byte
    assert (upload.channel, upload.thread_ts) == (CHANNEL, view.slack_ts)
    assert upload.filename == f"comprobante-{view.payment_reference}-ronda1.pdf"
    assert "spei.pdf" in upload.title and "ronda 1" in upload.initial_comment
    assert ".." not in upload.title


async def test_an_image_proof_is_uploaded_with_alternative_text_and_its_own_extension(slack: Slack) -> None:
    png = make_image("PNG")
    order_id = await order_in_review(slack.container, png)
    await slack.run_jobs()
    [upload] = slack.fake.uploads
    assert upload.data == png and upload.filename.endswith("-ronda1.png")
    [url_call] = slack.fake.calls_to("files.getUploadURLExternal")
    assert url_call.args["alt_txt"] == f"Comprobante de pago de la orden {order_id}"
    assert int(url_call.args["length"]) == len(png)


async def test_hostile_vendor_text_is_escaped_on_the_card(slack: Slack) -> None:
    await order_in_review(slack.container, razon_social="<!channel> Papelera & <https://x.invalid|Co>")
    await slack.run_jobs()
    card = texts(slack.fake.calls_to("chat.postMessage")[0].args["blocks"])
    assert "&lt;!channel&gt; Papelera &amp; &lt;https://x.invalid|Co&gt;" in card
    assert "<!channel>" not in card and "<https://" not in card


# ---------------------------------------------------------------------------- decisions
async def test_approve_provisions_the_plan_and_the_card_shows_who_and_when_without_buttons(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    await slack.run_jobs()

    resp = await click(slack, "order.approve", f"{order_id}:1", name="lucia")
    assert resp.status == 200
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert f"Aprobaste la orden #{order_id}" in eph.args["text"] and "100 timbres" in eph.args["text"]
    view = await get(slack.container, order_id)
    assert (view.status, view.decided_by, view.decided_via) == ("approved", "lucia", "slack")
    assert await plans(slack.container, order_id) == 1
    await slack.fake.wait_for("views.publish")  # the clicker's App Home is refreshed

    await slack.run_jobs()
    [update] = slack.fake.calls_to("chat.update")
    assert update.args["ts"] == view.slack_ts
    card = texts(update.args["blocks"])
    assert "*Aprobado* por lucia el <!date^" in card and "vía Slack" in card
    assert buttons(update.args["blocks"]) == []
    assert len(slack.fake.uploads) == 1  # the proof is not uploaded again


async def test_reject_opens_a_reason_modal_for_the_current_round(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    await slack.run_jobs()
    resp = await click(slack, "order.reject", f"{order_id}:1")
    assert resp.status == 200
    [opened] = await slack.fake.wait_for("views.open")
    modal = opened.args["view"]
    assert modal["callback_id"] == "order.reject_reason"
    assert json.loads(modal["private_metadata"]) == {"order_id": order_id, "round": 1, "channel": CHANNEL}
    assert any(blk["type"] == "input" and blk["block_id"] == "reason" for blk in modal["blocks"])
    assert (await get(slack.container, order_id)).status == "in_review"


async def test_an_empty_reason_is_refused_inside_the_modal_and_nothing_is_decided(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    for reason in (None, "", "  \n\t "):
        resp = await submit_reason(slack, order_id, 1, reason)
        body = await resp.json()
        assert body["response_action"] == "errors" and "motivo" in body["errors"]["reason"]
    assert (await get(slack.container, order_id)).status == "in_review"


async def test_a_reason_rejects_the_proof_and_the_card_shows_it_escaped(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    await slack.run_jobs()
    resp = await submit_reason(slack, order_id, 1, "El monto <no coincide> & falta la referencia")
    assert resp.status == 200 and await resp.text() == ""
    view = await get(slack.container, order_id)
    assert view.status == "rejected" and view.rejection_reason == "El monto <no coincide> & falta la referencia"
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "Rechazaste el comprobante" in eph.args["text"]

    await slack.run_jobs()
    card = texts(slack.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "*Rechazado* por" in card and "El monto &lt;no coincide&gt; &amp; falta la referencia" in card
    assert "comprobante nuevo" in card and buttons(slack.fake.calls_to("chat.update")[-1].args["blocks"]) == []


async def test_a_new_proof_after_a_rejection_reopens_the_card_announces_it_and_uploads_the_new_proof(
    slack: Slack,
) -> None:
    c = slack.container
    vendor_id, order_id = await new_order(c)
    first, second = make_pdf("primer intento"), make_image("JPEG")
    await send_proof(c, vendor_id, order_id, first)
    await slack.run_jobs()
    await submit_reason(slack, order_id, 1, "Ilegible")
    await slack.run_jobs()
    c.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]

    await send_proof(c, vendor_id, order_id, second, name="foto.jpg")
    await slack.run_jobs()
    view = await get(c, order_id)
    assert view.review_round == 2 and view.status == "in_review"
    update = slack.fake.calls_to("chat.update")[-1]
    assert update.args["ts"] == view.slack_ts
    card = texts(update.args["blocks"])
    assert "ronda 2" in card and "Motivo anterior: Ilegible" in card and "foto.jpg" in card
    assert [b["value"] for b in buttons(update.args["blocks"])] == [f"{order_id}:2", f"{order_id}:2"]
    [announce] = [r for r in thread_replies(slack, view.slack_ts or "") if "ronda 2" in r["text"]]
    assert announce["reply_broadcast"] in (True, "true", "1") and "vuelve a revisión" in announce["text"]
    assert [u.data for u in slack.fake.uploads] == [first, second]
    assert all(u.thread_ts == view.slack_ts for u in slack.fake.uploads)
    assert len(slack.fake.calls_to("chat.postMessage")) == 2  # one card + the announcement


async def test_a_click_or_modal_from_an_earlier_round_decides_nothing(slack: Slack) -> None:
    c = slack.container
    vendor_id, order_id = await new_order(c)
    await send_proof(c, vendor_id, order_id, make_pdf("uno"))
    await submit_reason(slack, order_id, 1, "Ilegible")
    await send_proof(c, vendor_id, order_id, make_pdf("dos"))

    await click(slack, "order.approve", f"{order_id}:1")
    calls = await slack.fake.wait_for("chat.postEphemeral", 2)  # after "Rechazaste…"
    assert "recibió un comprobante nuevo" in calls[-1].args["text"]
    resp = await submit_reason(slack, order_id, 1, "Sigue ilegible", user_id=GROUP_MEMBER)
    assert "recibió un comprobante nuevo" in json.dumps(await resp.json(), ensure_ascii=False)
    view = await get(c, order_id)
    assert (view.status, view.review_round) == ("in_review", 2) and await plans(c, order_id) == 0


async def test_a_double_click_approves_once_and_the_second_click_hears_who_decided(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    first, second = await asyncio.gather(
        click(slack, "order.approve", f"{order_id}:1", name="lucia"),
        click(slack, "order.approve", f"{order_id}:1", user_id=GROUP_MEMBER, name="mario"),
    )
    assert first.status == second.status == 200
    messages = sorted(call.args["text"] for call in await slack.fake.wait_for("chat.postEphemeral", 2))
    assert sum("Aprobaste la orden" in m for m in messages) == 1
    assert sum("ya fue aprobada por" in m for m in messages) == 1
    assert await plans(slack.container, order_id) == 1


async def test_a_slack_retry_of_an_approval_is_answered_silently(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    await click(slack, "order.approve", f"{order_id}:1", name="lucia")
    await slack.fake.wait_for("chat.postEphemeral")
    resp = await click(slack, "order.approve", f"{order_id}:1", name="lucia", **{"X-Slack-Retry-Num": "1"})
    assert resp.status == 200
    await asyncio.sleep(0.2)
    assert len(slack.fake.calls_to("chat.postEphemeral")) == 1
    assert await plans(slack.container, order_id) == 1


async def test_only_authorized_staff_decide(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    await click(slack, "order.approve", f"{order_id}:1", user_id=OUTSIDER)
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "No tienes permiso" in eph.args["text"]
    await click(slack, "order.reject", f"{order_id}:1", user_id=OUTSIDER)
    await slack.fake.wait_for("chat.postEphemeral", 2)
    resp = await submit_reason(slack, order_id, 1, "No procede", user_id=OUTSIDER)
    assert (await resp.json())["response_action"] == "errors"
    assert slack.fake.calls_to("views.open") == []
    view = await get(slack.container, order_id)
    assert view.status == "in_review" and await plans(slack.container, order_id) == 0


async def test_a_forged_signature_decides_nothing(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    payload = fake_slack.block_action("order.approve", f"{order_id}:1", user_id=STAFF)
    resp = await slack.send(fake_slack.interaction(payload, "not-the-secret"))
    assert resp.status == 401
    assert (await get(slack.container, order_id)).status == "in_review"


@pytest.mark.parametrize("value", ["", "abc", "1:x", "-1:1", "99999:1", "1:1:1", "9" * 30])
async def test_malformed_or_unknown_button_values_decide_nothing(slack: Slack, value: str) -> None:
    order_id = await order_in_review(slack.container)
    resp = await click(slack, "order.approve", value)
    assert resp.status == 200
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "no es válida" in eph.args["text"] or "No se encontró la orden" in eph.args["text"]
    assert (await get(slack.container, order_id)).status == "in_review"


# ---------------------------------------------------------------------------- Slack failures
async def test_a_429_on_the_proof_upload_is_retried_after_retry_after(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    slack.fake.fail_next("files.getUploadURLExternal", status=429, retry_after=9)
    await slack.run_jobs()
    [job] = [j for j in await slack.slack_jobs() if j.kind == "slack.order_proof"]
    assert job.status == JobStatus.QUEUED.value and "limitó la tasa" in (job.last_error or "")
    assert job.run_at == slack.container.clock.now() + timedelta(seconds=9)
    assert slack.fake.uploads == []

    slack.container.clock.advance(timedelta(seconds=9))  # type: ignore[attr-defined]
    await slack.run_jobs()
    [upload] = slack.fake.uploads
    assert upload.thread_ts == (await get(slack.container, order_id)).slack_ts


async def test_an_outage_of_the_upload_url_is_retried_with_backoff_and_uploads_once(slack: Slack) -> None:
    await order_in_review(slack.container)
    slack.fake.fail_next("upload", status=503, error="unavailable")
    await slack.run_jobs()
    [job] = [j for j in await slack.slack_jobs() if j.kind == "slack.order_proof"]
    assert job.status == JobStatus.QUEUED.value and job.attempts == 1
    slack.container.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    await slack.run_jobs()
    assert len(slack.fake.uploads) == 1
    assert all(j.status == JobStatus.SUCCEEDED.value for j in await slack.slack_jobs())


async def test_the_proof_waits_for_the_card_when_slack_is_down(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    slack.fake.fail_next("chat.postMessage", status=503, error="service_unavailable", retry_after=None)
    await slack.run_jobs()
    assert slack.fake.calls_to("files.getUploadURLExternal") == []
    assert (await get(slack.container, order_id)).status == "in_review"
    slack.container.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    await slack.run_jobs()
    [upload] = slack.fake.uploads
    assert upload.thread_ts == (await get(slack.container, order_id)).slack_ts


async def test_repeated_syncs_upload_each_round_once(slack: Slack) -> None:
    order_id = await order_in_review(slack.container)
    async with slack.container.db.transaction() as s:
        from core.jobs.queue import enqueue

        for n in range(3):
            await enqueue(s, kind="slack.sync_order", payload={"order_id": order_id}, key=f"again-{n}",
                          now=slack.container.clock.now())  # fmt: skip
    await slack.run_jobs()
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert len(slack.fake.uploads) == 1


async def test_two_worker_processes_syncing_a_new_order_at_once_post_one_card(slack: Slack) -> None:
    from core.jobs.worker import JobContext, RetryLater

    order_id = await order_in_review(slack.container)
    bot = slack.container.slack
    assert bot is not None
    other_process = dataclasses.replace(bot, _post_locks=weakref.WeakValueDictionary())
    first, second = bot.job_handlers()["slack.sync_order"], other_process.job_handlers()["slack.sync_order"]
    ctx = JobContext(1, "slack.sync_order", {"order_id": order_id}, 1, f"sync:{order_id}", 5)
    slack.fake.latency = 0.3
    outcomes = await asyncio.gather(first(ctx), second(ctx), return_exceptions=True)
    slack.fake.latency = 0.0
    assert sum(isinstance(o, RetryLater) for o in outcomes) == 1, outcomes
    await second(ctx)  # the retry updates the card the first one posted
    assert len(slack.fake.calls_to("chat.postMessage")) == 1


# ---------------------------------------------------------------------------- SLA: reminder and escalation
async def test_reminder_and_escalation_fire_at_the_right_business_times(slack: Slack) -> None:
    c = slack.container
    clock: FrozenClock = c.clock  # type: ignore[assignment]
    clock.set(datetime(2026, 11, 13, 23, 0, tzinfo=UTC))  # Friday 13 Nov 2026, 17:00 local
    order_id = await order_in_review(c)
    await slack.run_jobs()
    ts = (await get(c, order_id)).slack_ts or ""
    async with c.db.session() as s:
        order = await s.get(Order, order_id)
        assert order is not None and order.reminder_due_at is not None and order.sla_due_at is not None
        reminder_due, sla_due = order.reminder_due_at, order.sla_due_at
    # Monday 16 Nov is a holiday (Revolución): 24 business hours end Thursday 19 Nov 14:00 local.
    assert sla_due == datetime(2026, 11, 19, 20, 0, tzinfo=UTC)
    assert reminder_due == datetime(2026, 11, 18, 23, 0, tzinfo=UTC)  # Wednesday 17:00 local

    for moment in (datetime(2026, 11, 16, 18, 0, tzinfo=UTC), reminder_due - timedelta(minutes=1)):
        clock.set(moment)
        assert await sweep(c) == (0, 0)
        await slack.run_jobs()
        assert thread_replies(slack, ts) == []

    clock.set(reminder_due)
    assert await sweep(c) == (1, 0)
    await slack.run_jobs()
    [reminder] = thread_replies(slack, ts)
    assert reminder["text"].startswith("⏰") and "vence a las 14:00 del jueves 19/11/2026" in reminder["text"]
    assert reminder.get("reply_broadcast") in (None, False, "false", "0")
    marked = texts(slack.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "Recordatorio enviado" in marked and "Por vencer" in marked
    assert await sweep(c) == (0, 0)  # once

    clock.set(sla_due - timedelta(seconds=1))
    assert await sweep(c) == (0, 0)
    clock.set(sla_due)
    assert await sweep(c) == (0, 1)
    await slack.run_jobs()
    escalation = thread_replies(slack, ts)[-1]
    assert escalation["text"].startswith(f"<!subteam^{ESCALATION_GROUP}>")
    assert escalation["reply_broadcast"] in (True, "true", "1")  # also shown in the channel
    assert "Venció el plazo" in escalation["text"] and "19/11/2026 14:00" in escalation["text"]
    card = slack.fake.calls_to("chat.update")[-1].args["blocks"]
    assert "Vencido" in texts(card) and "se avisó al grupo de escalamiento" in texts(card)
    assert len(buttons(card)) == 2  # still decidable
    clock.advance(timedelta(days=3))
    assert await sweep(c) == (0, 0)
    await slack.run_jobs()
    assert len(thread_replies(slack, ts)) == 2


async def test_a_reminder_queued_before_a_decision_stays_silent(slack: Slack) -> None:
    c = slack.container
    order_id = await order_in_review(c)
    await slack.run_jobs()
    c.clock.advance(timedelta(days=10))  # type: ignore[attr-defined]
    assert await sweep(c) == (1, 1)
    await click(slack, "order.approve", f"{order_id}:1")
    await slack.fake.wait_for("chat.postEphemeral")
    await slack.run_jobs()
    assert thread_replies(slack, (await get(c, order_id)).slack_ts or "") == []
    async with c.db.session() as s:
        kinds = set(await s.scalars(select(Job.kind).where(Job.status == JobStatus.SUCCEEDED.value)))
    assert {"slack.order_reminder", "slack.order_escalation"} <= kinds


async def test_the_reminder_is_driven_by_the_scheduler_task(slack: Slack) -> None:
    c = slack.container
    order_id = await order_in_review(c)
    await slack.run_jobs()
    [task] = [t for t in c.periodic_tasks() if t.name == "review-sla"]
    c.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    await task.run()
    await slack.run_jobs()
    [reminder] = thread_replies(slack, (await get(c, order_id)).slack_ts or "")
    assert "vence a las" in reminder["text"]


# ---------------------------------------------------------------------------- App Home
async def test_the_app_home_lists_orders_in_review_by_due_time_next_to_the_requests_queue(slack: Slack) -> None:
    c = slack.container
    late = await order_in_review(c, razon_social="Aceros Tardíos", rfc="ATA010101AB1")
    c.clock.advance(timedelta(hours=30))  # type: ignore[attr-defined]
    soon_vendor, soon = await new_order(c, razon_social="Papelera Pronta", rfc="PPR010101AB1")
    await send_proof(c, soon_vendor, soon, make_pdf())
    decided = await order_in_review(c, razon_social="Ya Aprobada", rfc="YAP010101AB1")
    await click(slack, "order.approve", f"{decided}:1")
    await slack.fake.wait_for("chat.postEphemeral")
    slack.fake.clear()

    resp = await slack.send(fake_slack.event({"type": "app_home_opened", "user": STAFF, "tab": "home"}, SECRET))
    assert resp.status == 200
    [published] = await slack.fake.wait_for("views.publish")
    home = texts(published.args["view"]["blocks"])
    assert "Solicitudes de configuración pendientes" in home  # the requests queue is kept
    assert "Comprobantes de pago en revisión: *2*" in home
    assert home.index("Aceros Tardíos") < home.index("Papelera Pronta")  # earliest due first
    assert f"`#{late}`" in home and "Ya Aprobada" not in home
    assert len(published.args["view"]["blocks"]) <= 100


async def test_outsiders_see_no_orders_in_the_app_home(slack: Slack) -> None:
    await order_in_review(slack.container)
    await slack.send(fake_slack.event({"type": "app_home_opened", "user": OUTSIDER, "tab": "home"}, SECRET))
    [published] = await slack.fake.wait_for("views.publish")
    home = texts(published.args["view"]["blocks"])
    assert "No tienes permiso" in home and "Papelera" not in home
