"""Block Kit builders: pure functions from views to Slack JSON (texts in Spanish, Mexico).

The generic pieces (buttons with confirm dialogs, field sections, the reason modal, a notice modal)
are shared by every kind of review card: configuration requests today, payment proofs later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from core.enablement.service import RequestView

Block = dict[str, Any]

LOCAL_TZ: Final = ZoneInfo("America/Mexico_City")

# Action and callback ids: "<subject kind>.<verb>", so one bot can review several kinds of things.
REQUEST_VERIFY: Final = "request.verify"
REQUEST_APPROVE: Final = "request.approve"
REQUEST_REJECT: Final = "request.reject"
REQUEST_REJECT_MODAL: Final = "request.reject_reason"

REASON_BLOCK: Final = "reason"
REASON_INPUT: Final = "reason_input"
MAX_REASON_INPUT: Final = 2000

_SECTION_MAX = 3000
_FIELD_MAX = 2000
_HEADER_MAX = 150
_EXCERPT_MAX = 600

SOURCE_LABELS: Final = {"email": "Correo", "ticket": "Mesa de ayuda", "api": "API", "cli": "CLI"}
HELP_TEXT: Final = (
    "*Comando /timbrado*\n"
    "• `/timbrado` o `/timbrado pendientes`: solicitudes de configuración pendientes.\n"
    "• `/timbrado buscar <texto>`: busca por cliente, RFC, ticket (TCP-000123) o correo.\n"
    "• `/timbrado ayuda`: esta ayuda.\n"
    "Las tarjetas del canal de soporte tienen los botones para verificar, aprobar o rechazar."
)
NOT_STAFF_TEXT: Final = (
    "No tienes permiso para decidir solicitudes de timbrado. "
    "Pide al equipo de soporte que te agregue a la lista autorizada o al grupo de usuarios."
)
AUTH_UNAVAILABLE_TEXT: Final = "No se pudieron comprobar tus permisos en este momento; intenta de nuevo en un minuto."
INVALID_ACTION_TEXT: Final = "La acción no es válida (solicitud desconocida)."


# ---------------------------------------------------------------------------- text helpers
def escape(text: str) -> str:
    """Escape user text for mrkdwn: no mentions, links or broadcasts can be smuggled in."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def local_time(when: datetime) -> str:
    return when.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def slack_date(when: datetime) -> str:
    """A date Slack renders in the reader's time zone, with Mexico City time as the fallback."""
    return f"<!date^{int(when.timestamp())}^{{date_num}} {{time}}|{local_time(when)} (hora del centro)>"


def quote(text: str, limit: int = _EXCERPT_MAX) -> str:
    lines = escape(clip(text.strip(), limit)).splitlines() or [""]
    return "\n".join(f">{line}" for line in lines[:20])


# ---------------------------------------------------------------------------- generic blocks
@dataclass(frozen=True, slots=True)
class Confirm:
    title: str
    text: str
    confirm: str = "Confirmar"
    deny: str = "Cancelar"
    style: str | None = None

    def to_dict(self) -> Block:
        out: Block = {
            "title": plain(self.title, 100),
            "text": mrkdwn(self.text, 300),
            "confirm": plain(self.confirm, 30),
            "deny": plain(self.deny, 30),
        }
        if self.style:
            out["style"] = self.style
        return out


@dataclass(frozen=True, slots=True)
class Button:
    action_id: str
    text: str
    value: str
    style: str | None = None  # "primary" | "danger"
    confirm: Confirm | None = None

    def to_dict(self) -> Block:
        out: Block = {
            "type": "button",
            "action_id": self.action_id,
            "text": plain(self.text, 75),
            "value": self.value[:2000],
        }
        if self.style:
            out["style"] = self.style
        if self.confirm:
            out["confirm"] = self.confirm.to_dict()
        return out


def plain(text: str, limit: int = _SECTION_MAX) -> Block:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, limit: int = _SECTION_MAX) -> Block:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, _HEADER_MAX)}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def fields(pairs: Sequence[tuple[str, str]]) -> Block:
    """A section of up to ten "label: value" fields (values already mrkdwn-safe)."""
    return {"type": "section", "fields": [mrkdwn(f"*{label}*\n{value}", _FIELD_MAX) for label, value in pairs[:10]]}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def actions(block_id: str, buttons: Sequence[Button]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": [b.to_dict() for b in buttons[:25]]}


def divider() -> Block:
    return {"type": "divider"}


def reason_modal(*, callback_id: str, title: str, intro: str, metadata: dict[str, Any], submit: str) -> Block:
    """A modal asking for a decision's reason; the view submission checks it is not empty."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps(metadata, separators=(",", ":"))[:3000],
        "title": plain(title, 24),
        "submit": plain(submit, 24),
        "close": plain("Cancelar", 24),
        "blocks": [
            section(intro),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain("Motivo (se enviará al solicitante)", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": MAX_REASON_INPUT,
                    "placeholder": plain("Explica por qué se rechaza", 150),
                },
            },
        ],
    }


def notice_modal(title: str, text: str) -> Block:
    """A read-only modal (used to replace a form whose subject was decided meanwhile)."""
    return {"type": "modal", "title": plain(title, 24), "close": plain("Cerrar", 24), "blocks": [section(text)]}


# ---------------------------------------------------------------------------- configuration requests
def _client_value(v: RequestView) -> str:
    if v.client_id is None or v.client_name is None:
        return ":warning: *Cliente no identificado*"
    return escape(v.client_name)


def _requester_value(v: RequestView) -> str:
    name = escape(v.requester_name.strip())
    email = escape(v.requester_email)
    return f"{name} ({email})" if name else email


def _ticket_value(v: RequestView) -> str:
    text = f"`{v.ticket}` · {SOURCE_LABELS.get(v.source, escape(v.source))}"
    if v.external_ticket_id:
        text += f" (mesa de ayuda #{escape(v.external_ticket_id)})"
    return text


def prerequisite_text(v: RequestView) -> str:
    """Proveedores Plus as last checked (a decided card keeps the last known state)."""
    if v.pp_result is None or v.pp_checked_at is None:
        if v.client_id is None:
            return ":grey_question: No se puede verificar sin cliente"
        return ":hourglass_flowing_sand: Sin verificar"
    who = escape(v.pp_checked_by or "")
    if v.pp_result:
        return f":white_check_mark: Sí (verificó {who}, {slack_date(v.pp_checked_at)})"
    return f":x: *No tiene Proveedores Plus*: no se puede aprobar (verificó {who}, {slack_date(v.pp_checked_at)})"


def _decision_text(v: RequestView) -> str:
    verb = {"enabled": ":white_check_mark: *Aprobada*", "rejected": ":no_entry: *Rechazada*"}.get(
        v.status, f"*{escape(v.status_label)}*"
    )
    who = escape(v.decided_by or "")
    via = {"slack": "Slack", "api": "la API", "cli": "la CLI", "email": "correo"}.get(v.decided_via or "", "")
    when = slack_date(v.decided_at) if v.decided_at else ""
    text = f"{verb} por {who} el {when}" + (f" vía {via}" if via else "") + "."
    if v.decision_reason:
        text += f"\n*Motivo:*\n{quote(v.decision_reason, 1500)}"
    return text


def request_buttons(v: RequestView) -> list[Button]:
    value = str(v.id)
    client = escape(v.client_name or "el cliente")
    return [
        Button(REQUEST_VERIFY, "Verificar Proveedores Plus", value),
        Button(
            REQUEST_APPROVE,
            "Aprobar",
            value,
            style="primary",
            confirm=Confirm(
                "¿Aprobar la solicitud?",
                f"Se habilitará el módulo de Timbrado para *{client}* ({v.ticket}) "
                "y se enviará la confirmación por correo.",
                confirm="Aprobar",
                style="primary",
            ),
        ),
        Button(REQUEST_REJECT, "Rechazar", value, style="danger"),
    ]


def request_card_text(v: RequestView) -> str:
    """Notification fallback text of a card (shown in push notifications and screen readers)."""
    who = v.client_name or "cliente no identificado"
    return clip(f"Solicitud {v.ticket} · {who} · {v.status_label}", 300)


def request_card(v: RequestView) -> list[Block]:
    """The card in the support channel.  Open requests have buttons; decided ones say who/when/why."""
    blocks: list[Block] = [
        header(f"Solicitud de configuración {v.ticket} · {v.status_label}"),
        fields(
            [
                ("Cliente", _client_value(v)),
                ("RFC", escape(v.client_rfc) if v.client_rfc else "—"),
                ("Solicitante", _requester_value(v)),
                ("Ticket", _ticket_value(v)),
                ("Proveedores Plus", prerequisite_text(v)),
                ("Recibida", slack_date(v.created_at)),
            ]
        ),
    ]
    if v.excerpt.strip():
        blocks.append(section(f"*Mensaje:*\n{quote(v.excerpt)}"))
    if v.unidentified or v.client_id is None:
        blocks.append(
            context(
                ":warning: No se identificó al cliente por el remitente ni por un RFC en el mensaje. "
                f"Vincúlelo antes de verificar o aprobar (`timbrado requests link {v.id} <cliente>`)."
            )
        )
    if v.is_open:
        if v.pp_result is False:
            blocks.append(
                context(":x: El cliente no tiene Proveedores Plus: la aprobación será rechazada mientras no lo tenga.")
            )
        blocks.append(actions(f"request:{v.id}", request_buttons(v)))
    else:
        blocks.append(divider())
        blocks.append(section(_decision_text(v)))
    return blocks


def verify_feedback(v: RequestView, has_pp: bool) -> str:
    client = escape(v.client_name or "El cliente")
    if has_pp:
        return f":white_check_mark: {client} *tiene* Proveedores Plus: la solicitud {v.ticket} puede aprobarse."
    return f":x: {client} *no tiene* Proveedores Plus: la solicitud {v.ticket} no puede aprobarse."


def request_line(v: RequestView) -> str:
    client = escape(v.client_name) if v.client_name else ":warning: cliente no identificado"
    rfc = f" · {escape(v.client_rfc)}" if v.client_rfc else ""
    pp = {True: " · PP :white_check_mark:", False: " · PP :x:"}.get(v.pp_result, "") if v.pp_result is not None else ""
    return f"`{v.ticket}` *{client}*{rfc} · {escape(v.requester_email)} · {escape(v.status_label)}{pp}"


def request_list(title: str, views: Sequence[RequestView], *, empty: str, total: int | None = None) -> list[Block]:
    blocks: list[Block] = [section(f"*{escape(title)}*")]
    if not views:
        blocks.append(context(empty))
        return blocks
    lines = [request_line(v) for v in views]
    # Sections hold 3,000 characters: split the list into several.
    chunk: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > _SECTION_MAX and chunk:
            blocks.append(section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(section("\n".join(chunk)))
    if total is not None and total > len(views):
        blocks.append(context(f"Se muestran {len(views)} de {total}."))
    return blocks[:50]


def home_view(views: Sequence[RequestView], *, total: int, staff: bool) -> Block:
    """The App Home tab: the queue of pending configuration requests."""
    blocks: list[Block] = [header("Timbrado de complementos de pago")]
    if not staff:
        blocks.append(section(NOT_STAFF_TEXT))
    else:
        blocks.append(context(f"Solicitudes de configuración pendientes: *{total}*"))
        blocks.extend(
            request_list(
                "Cola de solicitudes pendientes (más antiguas primero)",
                views,
                empty="No hay solicitudes pendientes. :tada:",
                total=total,
            )[:45]
        )
        blocks.append(context("Decide desde la tarjeta de cada solicitud en el canal de soporte."))
    return {"type": "home", "blocks": blocks[:100]}
