"""Block Kit builders: pure, within Slack's limits, and safe with hostile text."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import blocks as b
from core.enablement.service import RequestView

NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
VIEW = RequestView(
    id=7,
    ticket="TCP-000007",
    source="email",
    status="received",
    status_label="Recibida",
    client_id=3,
    client_name="Comercial del Norte",
    client_rfc="CNO010101AB1",
    client_proveedores_plus=True,
    client_timbrado_enabled=False,
    unidentified=False,
    requester_email="ana@norte.example",
    requester_name="Ana",
    subject="s",
    excerpt="hola",
    external_ticket_id=None,
    pp_checked_at=None,
    pp_checked_by=None,
    pp_result=None,
    decided_at=None,
    decided_by=None,
    decided_via=None,
    decision_reason=None,
    slack_channel=None,
    slack_ts=None,
    created_at=NOW,
)


def check_limits(blocks: list[dict]) -> None:
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            if "text" in block:
                assert 0 < len(block["text"]["text"]) <= 3000
            for f in block.get("fields", []):
                assert 0 < len(f["text"]) <= 2000
        if block["type"] == "actions":
            for e in block["elements"]:
                assert len(e["text"]["text"]) <= 75 and len(e["value"]) <= 2000


def test_times_are_shown_in_mexico_city_with_a_slack_date_token() -> None:
    assert b.local_time(NOW) == "01/12/2026 10:00"
    assert b.slack_date(NOW) == "<!date^1796140800^{date_num} {time}|01/12/2026 10:00 (hora del centro)>"


def test_a_decided_card_has_no_buttons_and_says_who_when_and_why() -> None:
    decided = replace(
        VIEW,
        status="rejected",
        status_label="Rechazada",
        decided_at=NOW,
        decided_by="lucia",
        decided_via="slack",
        decision_reason="Falta el RFC",
    )
    text = json.dumps(b.request_card(decided), ensure_ascii=False)
    assert "*Rechazada* por lucia" in text and "Falta el RFC" in text and "vía Slack" in text
    assert not any(block["type"] == "actions" for block in b.request_card(decided))


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=400),
    excerpt=st.text(max_size=5000),
    reason=st.text(max_size=2500),
    email=st.text(max_size=320),
)
def test_any_text_gives_a_card_within_slack_limits_without_mentions(
    name: str, excerpt: str, reason: str, email: str
) -> None:
    for view in (
        replace(VIEW, client_name=name, excerpt=excerpt, requester_email=email, requester_name=name),
        replace(VIEW, status="rejected", decided_at=NOW, decided_by=name, decision_reason=reason),
    ):
        blocks = b.request_card(view)
        check_limits(blocks)
        rendered = json.dumps(blocks, ensure_ascii=False)
        # User text is escaped: the only "<" left opens Slack date tokens (no mentions, links, broadcasts).
        assert "<" not in rendered.replace("<!date^", "")


def test_long_lists_are_split_into_sections_of_at_most_3000_characters() -> None:
    views = [replace(VIEW, id=i, ticket=f"TCP-{i:06d}", client_name="x" * 200) for i in range(1, 41)]
    blocks = b.request_list("Pendientes", views, empty="nada", total=90)
    check_limits(blocks)
    assert "Se muestran 40 de 90." in json.dumps(blocks, ensure_ascii=False)
    home = b.home_view(views, total=90, staff=True)
    assert len(home["blocks"]) <= 100


def test_the_reason_modal_keeps_its_metadata_and_limits_the_reason() -> None:
    modal = b.reason_modal(
        callback_id="order.reject_reason",
        title="Rechazar comprobante de pago largo",
        intro="x",
        metadata={"order_id": 5},
        submit="Rechazar",
    )
    assert json.loads(modal["private_metadata"]) == {"order_id": 5}
    assert len(modal["title"]["text"]) <= 24
    [field] = [blk for blk in modal["blocks"] if blk["type"] == "input"]
    assert field["element"]["max_length"] == 2000
