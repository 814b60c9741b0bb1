"""Signatures, timestamps and who may decide."""

from __future__ import annotations

import time

from tests.integration.bot.conftest import GROUP, GROUP_MEMBER, OUTSIDER, SECRET, STAFF, Slack, get, make_request
from tests.support import fake_slack


def approve_payload(rid: int, user_id: str = STAFF) -> dict:
    return fake_slack.block_action("request.approve", str(rid), user_id=user_id)


async def test_a_bad_signature_is_refused_with_401_and_nothing_is_decided(slack: Slack) -> None:
    rid = await make_request(slack.container)
    for secret in ("wrong-secret", ""):
        resp = await slack.send(fake_slack.interaction(approve_payload(rid), secret))
        assert resp.status == 401
    forged = fake_slack.interaction(approve_payload(rid), SECRET)
    tampered = fake_slack.SignedRequest(forged.body.replace("UALLOWED01", "UALLOWED02"), forged.headers)
    assert (await slack.send(tampered)).status == 401
    unsigned = fake_slack.SignedRequest(forged.body, {"Content-Type": forged.headers["Content-Type"]})
    assert (await slack.send(unsigned)).status == 401
    assert (await get(slack.container, rid)).status == "received"
    assert slack.fake.calls == []


async def test_a_timestamp_older_than_five_minutes_is_refused_with_401(slack: Slack) -> None:
    rid = await make_request(slack.container)
    stale = fake_slack.interaction(approve_payload(rid), SECRET, timestamp=int(time.time()) - 5 * 60 - 30)
    assert (await slack.send(stale)).status == 401
    future = fake_slack.interaction(approve_payload(rid), SECRET, timestamp=int(time.time()) + 10 * 60)
    assert (await slack.send(future)).status == 401
    assert (await get(slack.container, rid)).status == "received"


async def test_a_timestamp_within_five_minutes_is_accepted(slack: Slack) -> None:
    rid = await make_request(slack.container)
    recent = fake_slack.interaction(approve_payload(rid), SECRET, timestamp=int(time.time()) - 4 * 60)
    assert (await slack.send(recent)).status == 200
    await slack.fake.wait_for("chat.postEphemeral")
    assert (await get(slack.container, rid)).status == "enabled"


async def test_an_unauthorized_user_gets_an_ephemeral_refusal_and_nothing_is_decided(slack: Slack) -> None:
    rid = await make_request(slack.container)
    for action in ("request.approve", "request.verify", "request.reject"):
        resp = await slack.click(action, rid, user_id=OUTSIDER)
        assert resp.status == 200
    calls = await slack.fake.wait_for("chat.postEphemeral", 3)
    assert all(c.args["user"] == OUTSIDER and "No tienes permiso" in c.args["text"] for c in calls)
    assert slack.fake.calls_to("views.open") == []
    view = await get(slack.container, rid)
    assert view.status == "received" and view.pp_checked_at is None


async def test_an_unauthorized_modal_submission_is_refused_inside_the_modal(slack: Slack) -> None:
    rid = await make_request(slack.container)
    resp = await slack.submit_reason(rid, "Porque sí", user_id=OUTSIDER)
    body = await resp.json()
    assert body["response_action"] == "errors" and "No tienes permiso" in body["errors"]["reason"]
    assert (await get(slack.container, rid)).status == "received"


async def test_a_member_of_the_staff_user_group_may_decide_and_membership_is_cached(slack: Slack) -> None:
    first = await make_request(slack.container)
    second = await make_request(slack.container, client_name="Otra SA", rfc="OTR010101AB2", email="b@otra.example")
    await slack.click("request.approve", first, user_id=GROUP_MEMBER)
    await slack.click("request.approve", second, user_id=GROUP_MEMBER)
    await slack.fake.wait_for("chat.postEphemeral", 2)
    assert (await get(slack.container, first)).status == "enabled"
    assert (await get(slack.container, second)).status == "enabled"
    lookups = slack.fake.calls_to("usergroups.users.list")
    assert len(lookups) == 1 and lookups[0].args["usergroup"] == GROUP


async def test_when_the_user_group_cannot_be_read_outsiders_are_refused_but_the_allowlist_still_works(
    slack: Slack,
) -> None:
    rid = await make_request(slack.container)
    slack.fake.fail_next("usergroups.users.list", status=500, error="fatal_error", retry_after=None)
    await slack.click("request.approve", rid, user_id=GROUP_MEMBER)
    [refusal] = await slack.fake.wait_for("chat.postEphemeral")
    assert "No se pudieron comprobar tus permisos" in refusal.args["text"]
    assert (await get(slack.container, rid)).status == "received"

    await slack.click("request.approve", rid, user_id=STAFF)
    await slack.fake.wait_for("chat.postEphemeral", 2)
    assert (await get(slack.container, rid)).status == "enabled"


async def test_without_slack_settings_there_is_no_slack_endpoint(database_url: str, tmp_path, clock) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from admin.app import create_app
    from tests.support.app import container_for, settings_for

    container = container_for(settings_for(database_url, tmp_path), clock)
    try:
        assert container.slack is None
        async with TestClient(TestServer(create_app(container))) as http:
            req = fake_slack.interaction(approve_payload(1), SECRET)
            resp = await http.post("/slack/events", data=req.body.encode(), headers=req.headers)
            assert resp.status == 404
    finally:
        await container.aclose()
