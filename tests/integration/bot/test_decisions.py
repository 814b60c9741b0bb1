"""Buttons and the rejection modal, through signed requests to the real server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import weakref
from datetime import timedelta

from core.jobs.models import JobStatus
from core.jobs.worker import JobContext, RetryLater
from tests.integration.bot.conftest import CHANNEL, GROUP_MEMBER, STAFF, Slack, get, make_request


def texts(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def has_buttons(blocks: list[dict]) -> bool:
    return any(b["type"] == "actions" for b in blocks)


async def test_a_new_request_is_posted_as_a_card_with_the_three_buttons(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()

    [post] = slack.fake.calls_to("chat.postMessage")
    assert post.args["channel"] == CHANNEL
    card = texts(post.args["blocks"])
    for expected in (
        "Comercial del Norte SA de CV",
        "CNO010101AB1",
        "ana@norte.example",
        "TCP-000001",
        "Sin verificar",
        "Solicitamos activar el módulo.",
    ):
        assert expected in card
    actions = next(b for b in post.args["blocks"] if b["type"] == "actions")
    labels = [e["text"]["text"] for e in actions["elements"]]
    assert labels == ["Verificar Proveedores Plus", "Aprobar", "Rechazar"]
    approve = actions["elements"][1]
    assert approve["confirm"]["confirm"]["text"] == "Aprobar"
    view = await get(slack.container, rid)
    assert (view.slack_channel, view.slack_ts) == (CHANNEL, "1700000000.000001")


async def test_verify_records_the_check_tells_the_clicker_and_the_card_shows_it(slack: Slack) -> None:
    rid = await make_request(slack.container, pp=True)
    await slack.run_jobs()

    resp = await slack.click("request.verify", rid, name="lucia")
    assert resp.status == 200
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert eph.args["user"] == STAFF and eph.args["channel"] == CHANNEL
    assert "*tiene* Proveedores Plus" in eph.args["text"]
    view = await get(slack.container, rid)
    assert view.status == "verified" and view.pp_result is True and view.pp_checked_by == "lucia"

    await slack.run_jobs()
    [update] = slack.fake.calls_to("chat.update")
    assert ":white_check_mark: Sí (verificó lucia" in texts(update.args["blocks"])
    assert has_buttons(update.args["blocks"])


async def test_verify_of_a_client_without_proveedores_plus_says_it_cannot_be_approved(slack: Slack) -> None:
    rid = await make_request(slack.container, pp=False)
    await slack.run_jobs()

    await slack.click("request.verify", rid)
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "*no tiene* Proveedores Plus" in eph.args["text"]
    await slack.run_jobs()
    card = texts(slack.fake.calls_to("chat.update")[-1].args["blocks"])
    assert "No tiene Proveedores Plus" in card and "no se puede aprobar" in card
    assert (await get(slack.container, rid)).status == "received"


async def test_approve_enables_the_module_and_the_card_shows_who_and_when_without_buttons(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()

    resp = await slack.click("request.approve", rid, name="lucia")
    assert resp.status == 200
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "aprobada" in eph.args["text"]
    view = await get(slack.container, rid)
    assert view.status == "enabled" and view.client_timbrado_enabled is True
    assert (view.decided_by, view.decided_via) == ("lucia", "slack")

    [home] = await slack.fake.wait_for("views.publish")
    assert home.args["user_id"] == STAFF

    await slack.run_jobs()
    [update] = slack.fake.calls_to("chat.update")
    assert update.args["ts"] == view.slack_ts
    card = texts(update.args["blocks"])
    assert "*Aprobada* por lucia" in card and "<!date^" in card
    assert not has_buttons(update.args["blocks"])


async def test_approve_is_refused_when_the_client_lacks_proveedores_plus_and_the_card_says_so(slack: Slack) -> None:
    rid = await make_request(slack.container, pp=False)
    await slack.run_jobs()

    await slack.click("request.approve", rid)
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "No se puede aprobar" in eph.args["text"] and "Proveedores Plus" in eph.args["text"]
    view = await get(slack.container, rid)
    assert view.status == "received" and view.client_timbrado_enabled is False and view.pp_result is False
    await slack.run_jobs()
    update = slack.fake.calls_to("chat.update")[-1]
    assert "No tiene Proveedores Plus" in texts(update.args["blocks"])
    assert has_buttons(update.args["blocks"])  # still open: the client may get the module later


async def test_an_unidentified_client_is_shown_clearly_and_cannot_be_approved(slack: Slack) -> None:
    rid = await make_request(slack.container, client_name=None, email="quien@desconocido.example")
    await slack.run_jobs()

    [post] = slack.fake.calls_to("chat.postMessage")
    assert "Cliente no identificado" in texts(post.args["blocks"])
    await slack.click("request.approve", rid)
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "no tiene un cliente identificado" in eph.args["text"]
    assert (await get(slack.container, rid)).status == "received"


async def test_reject_opens_a_modal_asking_for_the_reason(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()

    resp = await slack.click("request.reject", rid)
    assert resp.status == 200
    [opened] = await slack.fake.wait_for("views.open")
    modal = opened.args["view"]
    assert opened.args["trigger_id"].startswith("trigger-request.reject")
    assert modal["callback_id"] == "request.reject_reason"
    assert json.loads(modal["private_metadata"]) == {"request_id": rid, "channel": CHANNEL}
    assert any(b["type"] == "input" and b["block_id"] == "reason" for b in modal["blocks"])
    assert (await get(slack.container, rid)).status == "received"


async def test_an_empty_reason_is_refused_inside_the_modal_and_nothing_is_decided(slack: Slack) -> None:
    rid = await make_request(slack.container)
    for reason in (None, "", "   \n\t "):
        resp = await slack.submit_reason(rid, reason)
        assert resp.status == 200
        body = await resp.json()
        assert body["response_action"] == "errors"
        assert "motivo" in body["errors"]["reason"]
    assert (await get(slack.container, rid)).status == "received"


async def test_a_reason_rejects_the_request_and_the_card_shows_the_reason(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()

    resp = await slack.submit_reason(rid, "El RFC <no coincide> con el registrado & otros")
    assert resp.status == 200
    assert await resp.text() == ""  # an empty 200 closes the modal
    view = await get(slack.container, rid)
    assert view.status == "rejected" and view.decision_reason == "El RFC <no coincide> con el registrado & otros"
    [eph] = await slack.fake.wait_for("chat.postEphemeral")
    assert "Rechazaste la solicitud" in eph.args["text"] and eph.args["channel"] == CHANNEL

    await slack.run_jobs()
    update = slack.fake.calls_to("chat.update")[-1]
    card = texts(update.args["blocks"])
    assert "*Rechazada* por" in card and "El RFC &lt;no coincide&gt; con el registrado &amp; otros" in card
    assert not has_buttons(update.args["blocks"])


async def test_reject_of_a_decided_request_tells_who_decided_instead_of_opening_the_modal(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.click("request.approve", rid, name="lucia")
    await slack.fake.wait_for("chat.postEphemeral")

    await slack.click("request.reject", rid, user_id=GROUP_MEMBER)
    calls = await slack.fake.wait_for("chat.postEphemeral", 2)
    assert "ya fue resuelta por lucia" in calls[-1].args["text"]
    assert slack.fake.calls_to("views.open") == []


async def test_a_modal_submitted_after_another_decision_shows_who_resolved_it(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.click("request.approve", rid, name="lucia")
    await slack.fake.wait_for("chat.postEphemeral")

    resp = await slack.submit_reason(rid, "No procede", user_id=GROUP_MEMBER)
    body = await resp.json()
    assert body["response_action"] == "update"
    assert "ya fue resuelta por lucia" in json.dumps(body["view"], ensure_ascii=False)
    assert (await get(slack.container, rid)).status == "enabled"


async def test_a_double_click_decides_once_and_the_second_click_hears_ya_fue_resuelta(slack: Slack) -> None:
    rid = await make_request(slack.container)
    first, second = await asyncio.gather(
        slack.click("request.approve", rid, name="lucia"),
        slack.click("request.approve", rid, user_id=GROUP_MEMBER, name="mario"),
    )
    assert first.status == second.status == 200
    calls = await slack.fake.wait_for("chat.postEphemeral", 2)
    messages = sorted(c.args["text"] for c in calls)
    assert sum("aprobada: módulo habilitado" in m for m in messages) == 1
    assert sum("ya fue resuelta por" in m for m in messages) == 1
    async with slack.container.db.transaction() as s:
        from sqlalchemy import func, select

        from core.audit.models import AuditEvent

        approvals = await s.scalar(
            select(func.count()).where(AuditEvent.action == "request.approved", AuditEvent.subject_id == str(rid))
        )
    assert approvals == 1


async def test_a_slack_retry_of_an_approval_is_answered_silently_and_decides_nothing_new(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.click("request.approve", rid, name="lucia")
    await slack.fake.wait_for("chat.postEphemeral")
    before = await get(slack.container, rid)

    resp = await slack.click(
        "request.approve", rid, name="lucia", **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert resp.status == 200
    await asyncio.sleep(0.2)
    assert len(slack.fake.calls_to("chat.postEphemeral")) == 1  # no "ya fue resuelta" for one's own click
    assert await get(slack.container, rid) == before


async def test_a_retried_rejection_closes_the_modal_without_a_second_decision(slack: Slack) -> None:
    rid = await make_request(slack.container)
    assert (await slack.submit_reason(rid, "Falta información")).status == 200
    resp = await slack.submit_reason(rid, "Falta información", **{"X-Slack-Retry-Num": "2"})
    assert resp.status == 200 and await resp.text() == ""
    assert (await get(slack.container, rid)).decision_reason == "Falta información"


async def test_a_429_on_the_card_update_is_retried_after_retry_after_and_never_undoes_the_decision(
    slack: Slack,
) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()
    await slack.click("request.approve", rid)
    await slack.fake.wait_for("chat.postEphemeral")
    slack.fake.fail_next("chat.update", status=429, retry_after=7)

    await slack.run_jobs()
    [job] = [j for j in await slack.slack_jobs() if j.status != JobStatus.SUCCEEDED.value]
    assert job.status == JobStatus.QUEUED.value and "limitó la tasa" in (job.last_error or "")
    assert job.run_at == slack.container.clock.now() + timedelta(seconds=7)
    assert (await get(slack.container, rid)).status == "enabled"

    slack.container.clock.advance(timedelta(seconds=7))  # type: ignore[attr-defined]
    await slack.run_jobs()
    assert all(j.status == JobStatus.SUCCEEDED.value for j in await slack.slack_jobs())
    updates = slack.fake.calls_to("chat.update")
    assert len(updates) == 2 and not has_buttons(updates[-1].args["blocks"])


async def test_a_slack_outage_while_posting_is_retried_with_backoff(slack: Slack) -> None:
    await make_request(slack.container)
    slack.fake.fail_next("chat.postMessage", status=503, error="service_unavailable", retry_after=None)
    await slack.run_jobs()
    [job] = await slack.slack_jobs()
    assert job.status == JobStatus.QUEUED.value and job.attempts == 1
    slack.container.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    await slack.run_jobs()
    assert len(slack.fake.calls_to("chat.postMessage")) == 2
    assert (await slack.slack_jobs())[0].status == JobStatus.SUCCEEDED.value


async def test_a_deleted_card_is_posted_again(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()
    slack.fake.fail_next("chat.update", status=200, error="message_not_found", retry_after=None)
    await slack.click("request.verify", rid)
    await slack.fake.wait_for("chat.postEphemeral")
    await slack.run_jobs()
    assert len(slack.fake.calls_to("chat.postMessage")) == 2
    assert (await get(slack.container, rid)).slack_ts == "1700000000.000003"


async def test_concurrent_syncs_of_a_new_request_post_one_card(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.click("request.verify", rid)  # a second sync job before the card exists
    await slack.fake.wait_for("chat.postEphemeral")
    assert len([j for j in await slack.slack_jobs() if j.kind == "slack.sync_request"]) == 2
    await slack.run_jobs()
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert len(slack.fake.calls_to("chat.update")) == 1


async def test_two_worker_processes_syncing_a_new_request_at_once_post_one_card(slack: Slack) -> None:
    """Each ``job_handlers()`` call builds its own handlers (its own in-process locks), as a second
    worker process would; the cross-process guard lets one post while the other retries later and
    then updates that card."""
    rid = await make_request(slack.container)
    bot = slack.container.slack
    assert bot is not None
    other_process = dataclasses.replace(bot, _post_locks=weakref.WeakValueDictionary())
    first, second = bot.job_handlers()["slack.sync_request"], other_process.job_handlers()["slack.sync_request"]
    ctx = JobContext(1, "slack.sync_request", {"request_id": rid}, 1, f"sync:{rid}", 5)
    slack.fake.latency = 0.3  # both find no card while the first post is still on its way
    outcomes = await asyncio.gather(first(ctx), second(ctx), return_exceptions=True)
    slack.fake.latency = 0.0
    assert sum(isinstance(o, RetryLater) for o in outcomes) == 1
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    await second(ctx)  # the retry
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert len(slack.fake.calls_to("chat.update")) == 1


async def test_two_jobs_of_one_process_syncing_a_new_request_at_once_post_one_card_without_retrying(
    slack: Slack,
) -> None:
    rid = await make_request(slack.container)
    bot = slack.container.slack
    assert bot is not None
    first, second = bot.job_handlers()["slack.sync_request"], bot.job_handlers()["slack.sync_request"]
    ctx = JobContext(1, "slack.sync_request", {"request_id": rid}, 1, f"sync:{rid}", 5)
    slack.fake.latency = 0.3
    await asyncio.gather(first(ctx), second(ctx))  # neither raises RetryLater
    slack.fake.latency = 0.0
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert len(slack.fake.calls_to("chat.update")) == 1
