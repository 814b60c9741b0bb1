"""/timbrado, the App Home tab and thread notes."""

from __future__ import annotations

import json
from datetime import timedelta

from core.enablement.service import SLACK_REQUEST_NOTE
from core.jobs.models import JobStatus
from core.jobs.queue import enqueue
from tests.integration.bot.conftest import OUTSIDER, SECRET, STAFF, Slack, make_request
from tests.support import fake_slack


async def three_requests(slack: Slack) -> tuple[int, int, int]:
    a = await make_request(slack.container, client_name="Comercial del Norte SA de CV", rfc="CNO010101AB1")
    b = await make_request(slack.container, client_name="Aceros del Bajío", rfc="ABA020202CD3", email="x@bajio.example")
    c = await make_request(slack.container, client_name="Textiles Sur", rfc="TSU030303EF4", email="y@sur.example")
    return a, b, c


async def test_the_slash_command_lists_pending_requests(slack: Slack) -> None:
    *_, c = await three_requests(slack)
    await slack.submit_reason(c, "Duplicada")
    resp = await slack.command("")
    assert resp.status == 200
    body = await resp.json()
    listing = json.dumps(body["blocks"], ensure_ascii=False)
    assert "TCP-000001" in listing and "TCP-000002" in listing and "TCP-000003" not in listing
    assert body.get("response_type", "ephemeral") == "ephemeral"
    assert (await (await slack.command("pendientes")).json())["blocks"] == body["blocks"]


async def test_the_slash_command_searches_by_client_rfc_and_ticket(slack: Slack) -> None:
    await three_requests(slack)
    for query, expected in (("bajío", "TCP-000002"), ("TSU030303", "TCP-000003"), ("tcp-000001", "TCP-000001")):
        body = await (await slack.command(f"buscar   {query}")).json()
        listing = json.dumps(body["blocks"], ensure_ascii=False)
        assert expected in listing
        assert sum(t in listing for t in ("TCP-000001", "TCP-000002", "TCP-000003")) == 1
    body = await (await slack.command("buscar nadaquecoincida")).json()
    assert "No se encontraron solicitudes" in json.dumps(body["blocks"], ensure_ascii=False)


async def test_the_slash_command_explains_itself(slack: Slack) -> None:
    for text in ("ayuda", "help"):
        body = await (await slack.command(text, user_id=OUTSIDER)).json()
        assert "/timbrado buscar" in body["text"]
    body = await (await slack.command("borrar todo")).json()
    assert "No reconozco «borrar»" in body["text"] and "/timbrado buscar" in body["text"]
    body = await (await slack.command("buscar")).json()
    assert "Escribe qué buscar" in body["text"]


async def test_the_slash_command_does_not_show_requests_to_outsiders(slack: Slack) -> None:
    await three_requests(slack)
    body = await (await slack.command("", user_id=OUTSIDER)).json()
    assert "No tienes permiso" in body["text"] and "TCP-" not in json.dumps(body)


async def test_the_slash_command_escapes_hostile_text(slack: Slack) -> None:
    await make_request(slack.container, client_name="<!channel> Hackers & Co", rfc="HAC010101AB1")
    body = await (await slack.command("buscar hackers")).json()
    listing = json.dumps(body["blocks"], ensure_ascii=False)
    assert "&lt;!channel&gt; Hackers &amp; Co" in listing and "<!channel>" not in listing


async def test_opening_the_app_home_publishes_the_pending_queue(slack: Slack) -> None:
    await three_requests(slack)
    resp = await slack.send(fake_slack.event({"type": "app_home_opened", "user": STAFF, "tab": "home"}, SECRET))
    assert resp.status == 200
    [published] = await slack.fake.wait_for("views.publish")
    assert published.args["user_id"] == STAFF
    view = published.args["view"]
    assert view["type"] == "home"
    home = json.dumps(view["blocks"], ensure_ascii=False)
    assert "pendientes: *3*" in home and all(f"TCP-00000{i}" in home for i in (1, 2, 3))


async def test_a_retried_app_home_event_publishes_the_same_view_again(slack: Slack) -> None:
    await make_request(slack.container)
    event = {"type": "app_home_opened", "user": STAFF, "tab": "home"}
    await slack.send(fake_slack.event(event, SECRET))
    await slack.send(fake_slack.event(event, SECRET, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"}))
    first, second = await slack.fake.wait_for("views.publish", 2)
    assert first.args == second.args


async def test_the_app_home_of_an_outsider_shows_no_requests(slack: Slack) -> None:
    await make_request(slack.container)
    await slack.send(fake_slack.event({"type": "app_home_opened", "user": OUTSIDER, "tab": "home"}, SECRET))
    [published] = await slack.fake.wait_for("views.publish")
    home = json.dumps(published.args["view"], ensure_ascii=False)
    assert "No tienes permiso" in home and "TCP-" not in home


async def test_the_messages_tab_does_not_publish_a_home(slack: Slack) -> None:
    await slack.send(fake_slack.event({"type": "app_home_opened", "user": STAFF, "tab": "messages"}, SECRET))
    await slack.send(fake_slack.event({"type": "app_home_opened", "user": STAFF, "tab": "home"}, SECRET))
    await slack.fake.wait_for("views.publish")
    assert len(slack.fake.calls_to("views.publish")) == 1


async def note(slack: Slack, rid: int, text: str, key: str) -> None:
    now = slack.container.clock.now()
    async with slack.container.db.transaction() as s:
        await enqueue(s, kind=SLACK_REQUEST_NOTE, payload={"request_id": rid, "text": text}, key=key, now=now)


async def test_a_note_is_posted_in_the_thread_of_the_card(slack: Slack) -> None:
    rid = await make_request(slack.container)
    await slack.run_jobs()
    await note(slack, rid, "📧 ana@norte.example respondió:\n> ¿Ya quedó? <!here>", "n1")
    await slack.run_jobs()
    _card, reply = slack.fake.calls_to("chat.postMessage")
    assert reply.args["thread_ts"] == "1700000000.000001"
    assert "&lt;!here&gt;" in reply.args["text"] and "<!here>" not in reply.args["text"]


async def test_a_note_waits_for_the_card_to_be_posted(slack: Slack) -> None:
    rid = await make_request(slack.container)
    slack.fake.fail_next("chat.postMessage", status=429, retry_after=30)
    await note(slack, rid, "respuesta", "n2")
    await slack.run_jobs()
    jobs = {j.kind: j for j in await slack.slack_jobs()}
    assert jobs[SLACK_REQUEST_NOTE].status == JobStatus.QUEUED.value
    assert "aún no se publica" in (jobs[SLACK_REQUEST_NOTE].last_error or "")
    slack.container.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    await slack.run_jobs()
    slack.container.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    await slack.run_jobs()
    assert all(j.status == JobStatus.SUCCEEDED.value for j in await slack.slack_jobs())
    posts = slack.fake.calls_to("chat.postMessage")
    assert [p.args.get("thread_ts") for p in posts] == [None, None, "1700000000.000001"]
