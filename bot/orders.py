"""Payment-proof review in Slack: the order card, its buttons and modal, the App Home queue, the jobs.

* ``slack.sync_order`` (queued by the core on every proof and decision): post the order's card the
  first time, update it afterwards, always rendered from the state read now.  It then queues, once
  per review round (job idempotency keys), the upload of that round's proof to the card's thread
  and, from the second round on, a broadcast thread reply announcing the new proof.
* ``slack.order_proof``: upload one round's proof to the thread (``files_upload_v2``).
* ``slack.order_note``: a reply in the card's thread (optionally also sent to the channel).
* ``slack.order_reminder`` / ``slack.order_escalation`` (queued by ``sla_sweep``): a thread reply
  "⏰ vence a las HH:MM" / a broadcast reply mentioning the escalation user group; each then queues
  a card sync so the card shows the mark.

Each job makes at most one Slack call that is not idempotent, so a retry repeats nothing visible
except when the process dies between that call and the job's completion.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import blocks as b
from bot.app import ERROR_TEXT, Ack, Listeners, is_retry, refusal, run_decision, user_of
from bot.auth import Access
from bot.jobs import CARD_GONE, CARD_NOT_POSTED_DELAY, slack_error, translate
from core.errors import DomainError, NotFound
from core.jobs.queue import enqueue
from core.jobs.worker import Handler, JobContext, PermanentJobError, RetryLater
from core.orders import service
from core.orders.models import Order, OrderProof, OrderStatus
from core.orders.service import (
    SLACK_ORDER_ESCALATION,
    SLACK_ORDER_NOTE,
    SLACK_ORDER_REMINDER,
    SLACK_SYNC_ORDER,
    AlreadyDecided,
    OrdersConfig,
    OrderView,
)
from core.stamps.service import PlanView
from core.uploads.models import FileRecord

if TYPE_CHECKING:
    from bot.runtime import SlackBot

log = logging.getLogger("timbrado.bot")

Block = b.Block

ORDER_APPROVE: Final = "order.approve"
ORDER_REJECT: Final = "order.reject"
ORDER_REJECT_MODAL: Final = "order.reject_reason"
#: Upload of one review round's proof to the card's thread (queued by the card sync).
SLACK_ORDER_PROOF: Final = "slack.order_proof"

HOME_ORDERS_LIMIT = 20
EMPTY_REASON_TEXT = "Escribe el motivo del rechazo; se enviará al proveedor."
INVALID_ORDER_TEXT = "La acción no es válida (orden desconocida)."
_USERGROUP_ID = re.compile(r"S[A-Z0-9]{2,30}")
_WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
_TYPE_LABELS = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG"}


# ============================================================================ card (pure)
@dataclass(frozen=True, slots=True)
class SlaMarks:
    """When the review reminder and the escalation went out (None: not yet)."""

    reminded_at: datetime | None = None
    escalated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProofInfo:
    display_name: str
    content_type: str
    size: int
    review_round: int
    uploaded_at: datetime


def money(amount: Decimal) -> str:
    return f"${amount:,.2f} MXN"


def clock_time(when: datetime, cfg: OrdersConfig) -> str:
    return when.astimezone(ZoneInfo(cfg.calendar.tz)).strftime("%H:%M")


def local_when(when: datetime, cfg: OrdersConfig) -> str:
    """``19/11/2026 14:00`` in the business calendar's time zone."""
    return service.local(when, cfg)


def due_phrase(due: datetime, cfg: OrdersConfig, now: datetime) -> str:
    """``vence a las 14:00 (hoy)`` or ``vence a las 14:00 del jueves 19/11/2026`` (local time)."""
    tz = ZoneInfo(cfg.calendar.tz)
    local_due, local_now = due.astimezone(tz), now.astimezone(tz)
    if local_due.date() == local_now.date():
        day = "(hoy)"
    else:
        day = f"del {_WEEKDAYS[local_due.weekday()]} {local_due:%d/%m/%Y}"
    return f"vence a las {local_due:%H:%M} {day}"


def phone(digits: str) -> str:
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}" if len(digits) == 10 and digits.isdigit() else digits


def size_text(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size < 1024 * 1024 else f"{size / (1024 * 1024):,.1f} MB"


def button_value(v: OrderView) -> str:
    """``<order id>:<review round>``: a click or modal from an earlier round is recognised as stale."""
    return f"{v.id}:{v.review_round}"


def parse_value(value: Any) -> tuple[int, int | None] | None:
    text = str(value or "").strip()
    order, _, round_ = text.partition(":")
    if not (order.isdigit() and len(order) < 18):
        return None
    if not round_:
        return int(order), None
    if not (round_.isdigit() and len(round_) < 9):
        return None
    return int(order), int(round_)


def order_buttons(v: OrderView) -> list[b.Button]:
    value = button_value(v)
    vendor = b.escape(v.vendor_razon_social)
    return [
        b.Button(
            ORDER_APPROVE,
            "Aprobar",
            value,
            style="primary",
            confirm=b.Confirm(
                "¿Aprobar el comprobante?",
                f"Se asignará el plan *{b.escape(v.package_name)}* ({v.package_stamps:,} timbres) a *{vendor}* "
                f"por {money(v.package_price_mxn)} y se le enviará la confirmación por correo.",
                confirm="Aprobar",
                style="primary",
            ),
        ),
        b.Button(ORDER_REJECT, "Rechazar", value, style="danger"),
    ]


def _contact(v: OrderView) -> str:
    lines = [b.escape(v.contact_empresa), b.escape(v.contact_nombre), phone(v.contact_telefono)]
    return "\n".join([*lines, b.escape(v.contact_correo)])


def _proof_value(v: OrderView, proof: ProofInfo | None) -> str:
    if v.proof_sha256 is None:
        return ":hourglass_flowing_sand: Sin comprobante"
    kind = _TYPE_LABELS.get(v.proof_content_type or "", b.escape(v.proof_content_type or ""))
    if proof is None:
        return f"{kind} · en el hilo"
    name = b.escape(b.clip(proof.display_name, 80)) if proof.display_name else "sin nombre"
    return f"{kind} · {size_text(proof.size)} · {name}\n(en el hilo de esta tarjeta)"


def _due_value(v: OrderView, cfg: OrdersConfig, marks: SlaMarks) -> str:
    if v.sla_due_at is None:
        return "—"
    text = f"{local_when(v.sla_due_at, cfg)} ({cfg.calendar.tz})"
    if v.status == OrderStatus.IN_REVIEW.value:
        if marks.escalated_at is not None:
            text += "\n:rotating_light: *Vencido*"
        elif marks.reminded_at is not None:
            text += "\n:alarm_clock: Por vencer"
    return text


def _decision_text(v: OrderView) -> str:
    verb = {
        OrderStatus.APPROVED.value: ":white_check_mark: *Aprobado*",
        OrderStatus.REJECTED.value: ":no_entry: *Rechazado*",
    }.get(v.status, f"*{b.escape(v.status_label)}*")
    who = b.escape(v.decided_by or "otra persona")
    via = {"slack": "Slack", "api": "la API", "cli": "la CLI"}.get(v.decided_via or "", "")
    when = f" el {b.slack_date(v.decided_at)}" if v.decided_at else ""
    text = f"{verb} por {who}{when}" + (f" vía {via}" if via else "") + "."
    if v.status == OrderStatus.REJECTED.value and v.rejection_reason:
        text += f"\n*Motivo:*\n{b.quote(v.rejection_reason, 1500)}"
    return text


def order_card_text(v: OrderView) -> str:
    """Notification fallback text (push notifications, screen readers)."""
    return b.clip(
        f"Comprobante de pago · orden #{v.id} · {v.vendor_razon_social} · {money(v.package_price_mxn)} · "
        f"{v.status_label}",
        300,
    )


def order_card(
    v: OrderView,
    cfg: OrdersConfig,
    *,
    marks: SlaMarks | None = None,
    proof: ProofInfo | None = None,
) -> list[Block]:
    """The review card.  In review: buttons; decided: who/when/decision/reason and no buttons."""
    marks = marks or SlaMarks()
    title = f"Comprobante de pago · orden #{v.id} · {v.status_label}"
    if v.review_round > 1:
        title += f" (ronda {v.review_round})"
    received = b.slack_date(v.proof_received_at) if v.proof_received_at else "—"
    blocks: list[Block] = [
        b.header(title),
        b.fields(
            [
                ("Proveedor", b.escape(v.vendor_razon_social)),
                ("RFC", b.escape(v.vendor_rfc)),
                (
                    "Paquete",
                    f"{b.escape(v.package_name)}\n{v.package_stamps:,} timbres · vigencia "
                    f"{v.package_validity_days} días",
                ),
                ("Monto (IVA incluido)", money(v.package_price_mxn)),
                ("Referencia de pago", f"`{b.escape(v.payment_reference)}`"),
                ("Vence la revisión", _due_value(v, cfg, marks)),
                ("Contacto", _contact(v)),
                ("Comprobante", _proof_value(v, proof)),
                ("Recibido", received),
            ]
        ),
    ]
    in_review = v.status == OrderStatus.IN_REVIEW.value
    if in_review and v.review_round > 1 and v.rejection_reason:
        blocks.append(
            b.context(
                ":repeat: Comprobante nuevo tras un rechazo. Motivo anterior: "
                + b.escape(b.clip(v.rejection_reason, 300))
            )
        )
    if in_review:
        if marks.escalated_at is not None and v.sla_due_at is not None:
            blocks.append(
                b.context(
                    f":rotating_light: El plazo de revisión venció el {local_when(v.sla_due_at, cfg)}; "
                    "se avisó al grupo de escalamiento."
                )
            )
        elif marks.reminded_at is not None and v.sla_due_at is not None:
            blocks.append(
                b.context(
                    ":alarm_clock: Recordatorio enviado: la revisión "
                    f"{due_phrase(v.sla_due_at, cfg, marks.reminded_at)}."
                )
            )
        blocks.append(b.actions(f"order:{v.id}", order_buttons(v)))
    else:
        blocks.append(b.divider())
        blocks.append(b.section(_decision_text(v)))
        if v.status == OrderStatus.APPROVED.value:
            blocks.append(b.context("Plan de timbres asignado; se envió la confirmación al proveedor."))
        elif v.status == OrderStatus.REJECTED.value:
            blocks.append(b.context("El proveedor puede enviar un comprobante nuevo; esta tarjeta volverá a revisión."))
    return blocks


def approved_text(v: OrderView, plan: PlanView, cfg: OrdersConfig) -> str:
    return (
        f":white_check_mark: Aprobaste la orden #{v.id} de *{b.escape(v.vendor_razon_social)}*: plan "
        f"*{b.escape(plan.plan_name)}* con {plan.stamps_total:,} timbres, vigente hasta "
        f"{local_when(plan.valid_until, cfg)}."
    )


def decided_text(v: OrderView) -> str:
    verb = "aprobada" if v.status == OrderStatus.APPROVED.value else "rechazada"
    return f"La orden #{v.id} ya fue {verb} por {v.decided_by or 'otra persona'}."


STALE_TEXT = "La orden #{id} recibió un comprobante nuevo; revisa la tarjeta actualizada antes de decidir."


class StaleRound(DomainError):
    code = "stale_review_round"


def check_round(v: OrderView, expected: int | None) -> None:
    """Refuse a decision meant for an earlier review round (a stale card, modal or retry)."""
    if expected is not None and v.status == OrderStatus.IN_REVIEW.value and v.review_round != expected:
        raise StaleRound(STALE_TEXT.format(id=v.id))


# ============================================================================ App Home (pure)
def order_line(v: OrderView, cfg: OrdersConfig, now: datetime) -> str:
    due = ""
    if v.sla_due_at is not None:
        flag = " :rotating_light: *vencida*" if v.sla_due_at <= now else ""
        due = f" · vence {local_when(v.sla_due_at, cfg)}{flag}"
    return (
        f"`#{v.id}` *{b.escape(v.vendor_razon_social)}* · {b.escape(v.vendor_rfc)} · "
        f"{b.escape(v.package_name)} · {money(v.package_price_mxn)}{due}"
    )


def home_orders(views: Sequence[OrderView], *, total: int, cfg: OrdersConfig, now: datetime) -> list[Block]:
    """The orders-in-review section of the App Home, most urgent first."""
    blocks: list[Block] = [b.divider(), b.context(f"Comprobantes de pago en revisión: *{total}*")]
    title = "Comprobantes por revisar (vencimiento más próximo primero)"
    if views:
        blocks.extend(_chunked(title, views, cfg, now))
    else:
        blocks.extend([b.section(f"*{title}*"), b.context("No hay comprobantes por revisar. :tada:")])
    if total > len(views):
        blocks.append(b.context(f"Se muestran {len(views)} de {total}."))
    return blocks


def _chunked(title: str, views: Sequence[OrderView], cfg: OrdersConfig, now: datetime) -> list[Block]:
    out: list[Block] = [b.section(f"*{b.escape(title)}*")]
    chunk: list[str] = []
    size = 0
    for line in (order_line(v, cfg, now) for v in views):
        if size + len(line) + 1 > 2900 and chunk:
            out.append(b.section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        out.append(b.section("\n".join(chunk)))
    return out


def with_orders(home: Block, order_blocks: Sequence[Block]) -> Block:
    """Insert the orders section before the App Home's closing context, within Slack's 100 blocks."""
    blocks = list(home.get("blocks") or [])
    if not order_blocks:
        return home
    tail = blocks[-1:] if blocks and blocks[-1].get("type") == "context" else []
    head = blocks[: len(blocks) - len(tail)]
    room = 100 - len(head) - len(tail)
    return {**home, "blocks": [*head, *list(order_blocks)[: max(0, room)], *tail]}


async def order_home_blocks(session: AsyncSession, bot: SlackBot) -> list[Block]:
    cfg = bot.orders_cfg
    views = await service.list_orders(session, status=OrderStatus.IN_REVIEW.value, by_sla=True, limit=HOME_ORDERS_LIMIT)
    total = await session.scalar(
        select(func.count()).select_from(Order).where(Order.status == OrderStatus.IN_REVIEW.value)
    )
    return home_orders(views, total=int(total or 0), cfg=cfg, now=bot.clock.now())


# ============================================================================ listeners
class OrderListeners:
    """Approve (with the card's confirm dialog) and reject (reason modal) payment proofs."""

    def __init__(self, base: Listeners) -> None:
        self.base = base
        self.bot = base.bot

    async def _decided_by_me(self, order_id: int, label: str) -> bool:
        async with self.bot.db.session() as session:
            view = await service.get_order(session, order_id)
        return view.decided_by == label and view.decided_via == "slack"

    async def _decision(
        self, request: AsyncBoltRequest, order_id: int, label: str, decide: Callable[[], Awaitable[str]]
    ) -> tuple[str | None, bool]:
        return await run_decision(
            request,
            f"order {order_id}",
            decide,
            already=AlreadyDecided,
            mine=lambda: self._decided_by_me(order_id, label),
        )

    async def approve_clicked(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        if not await self.base.staff_or_refuse(ack, body):
            return
        target = parse_value(action.get("value"))
        if target is None:
            await ack()
            await self.base.tell(body, INVALID_ORDER_TEXT)
            return
        order_id, round_ = target
        user_id, name = user_of(body)
        actor = self.bot.actor(user_id, name)
        cfg = self.bot.orders_cfg

        async def decide() -> str:
            async with self.bot.db.transaction() as session:
                check_round(await service.get_order(session, order_id), round_)
                view, plan = await service.approve_order(
                    session, order_id, actor=actor, cfg=cfg, now=self.bot.clock.now()
                )
            return approved_text(view, plan, cfg)

        text, decided = await self.base.decide_then_ack(ack, self._decision(request, order_id, actor.label, decide))
        if text:
            await self.base.tell(body, text)
        if decided:
            self.base.refresh_home_soon(user_id)

    async def reject_clicked(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()  # at once: the modal must be opened right after the click
        user_id, _ = user_of(body)
        access = await self.bot.authorizer.check(user_id)
        if access is not Access.ALLOWED:
            await self.base.tell(body, refusal(access))
            return
        target = parse_value(action.get("value"))
        if target is None:
            await self.base.tell(body, INVALID_ORDER_TEXT)
            return
        order_id, round_ = target
        try:
            async with self.bot.db.session() as session:
                view = await service.get_order(session, order_id)
            check_round(view, round_)
        except DomainError as exc:
            await self.base.tell(body, exc.message)
            return
        if view.status != OrderStatus.IN_REVIEW.value:
            text = decided_text(view) if view.decided_by else "La orden no tiene un comprobante en revisión."
            await self.base.tell(body, text)
            return
        channel = str((body.get("channel") or {}).get("id") or "")
        modal = b.reason_modal(
            callback_id=ORDER_REJECT_MODAL,
            title="Rechazar comprobante",
            intro=(
                f"Rechazar el comprobante de la orden *#{view.id}* de *{b.escape(view.vendor_razon_social)}* "
                f"({money(view.package_price_mxn)}, referencia `{b.escape(view.payment_reference)}`). "
                "El proveedor recibirá el motivo por correo y podrá enviar un comprobante nuevo."
            ),
            metadata={"order_id": view.id, "round": view.review_round, "channel": channel},
            submit="Rechazar",
        )
        try:
            await self.bot.client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=modal)
        except SlackClientError as exc:
            log.warning("could not open the order rejection modal: %s", type(exc).__name__)
            await self.base.tell(body, "No se pudo abrir el formulario de rechazo; vuelve a intentarlo.")

    async def reject_submitted(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        title = "Rechazar comprobante"
        user_id, name = user_of(body)
        access = await self.bot.authorizer.check(user_id)
        if access is not Access.ALLOWED:
            await ack(response_action="errors", errors={b.REASON_BLOCK: refusal(access)[:150]})
            return
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        meta = meta if isinstance(meta, dict) else {}
        target = parse_value(f"{meta.get('order_id', '')}:{meta.get('round', '')}".rstrip(":"))
        if target is None:
            await ack(response_action="update", view=b.notice_modal(title, INVALID_ORDER_TEXT))
            return
        order_id, round_ = target
        channel = str(meta.get("channel") or "")
        state = (view.get("state") or {}).get("values") or {}
        reason = str(((state.get(b.REASON_BLOCK) or {}).get(b.REASON_INPUT) or {}).get("value") or "")
        if not reason.strip():
            await ack(response_action="errors", errors={b.REASON_BLOCK: EMPTY_REASON_TEXT})
            return
        actor = self.bot.actor(user_id, name)
        cfg = self.bot.orders_cfg

        async def decide() -> tuple[str, str]:
            """(outcome, text): "rejected", "silent", "resolved", "invalid" or "error"."""
            try:
                async with self.bot.db.transaction() as session:
                    check_round(await service.get_order(session, order_id), round_)
                    decided = await service.reject_order(
                        session, order_id, reason=reason, actor=actor, cfg=cfg, now=self.bot.clock.now()
                    )
                return "rejected", f":no_entry: Rechazaste el comprobante de la orden #{decided.id}."
            except AlreadyDecided as exc:
                if is_retry(request) and await self._decided_by_me(order_id, actor.label):
                    return "silent", ""
                return "resolved", exc.message
            except DomainError as exc:
                return ("invalid" if exc.code.startswith("reason") else "resolved"), exc.message
            except Exception:
                log.exception("rejection of order %s failed", order_id)
                return "error", ERROR_TEXT

        task = self.base.start_decision(decide())
        await asyncio.wait({task}, timeout=self.base.budget())
        if not task.done():
            await ack()  # close the modal on time; the outcome follows as an ephemeral message
            outcome, text = await task
        else:
            outcome, text = task.result()
            if outcome == "invalid":
                await ack(response_action="errors", errors={b.REASON_BLOCK: text})
                return
            if outcome in ("resolved", "error"):
                await ack(response_action="update", view=b.notice_modal(title, text))
                return
            await ack()
        if text and outcome != "silent":
            await self.base.tell(body, text, channel=channel or None)
        if outcome == "rejected":
            self.base.refresh_home_soon(user_id)


def register(app: AsyncApp, base: Listeners) -> OrderListeners:
    on = OrderListeners(base)
    app.action(ORDER_APPROVE)(on.approve_clicked)
    app.action(ORDER_REJECT)(on.reject_clicked)
    app.view(ORDER_REJECT_MODAL)(on.reject_submitted)
    return on


# ============================================================================ jobs
def _order_id(payload: Mapping[str, Any]) -> int:
    value = payload.get("order_id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise PermanentJobError("el trabajo no indica una orden válida")
    return int(value)


@dataclass(frozen=True, slots=True)
class Snapshot:
    view: OrderView
    marks: SlaMarks
    proofs: tuple[ProofInfo, ...]
    files: tuple[tuple[ProofInfo, str], ...]  # (proof, sha256)

    def proof_of_round(self, round_: int) -> tuple[ProofInfo, str] | None:
        matches = [item for item in self.files if item[0].review_round == round_]
        return matches[-1] if matches else None

    @property
    def current_proof(self) -> ProofInfo | None:
        found = self.proof_of_round(self.view.review_round)
        return found[0] if found else None

    @property
    def card(self) -> tuple[str, str] | None:
        v = self.view
        return (v.slack_channel, v.slack_ts) if v.slack_channel and v.slack_ts else None


async def _proofs(session: AsyncSession, order_id: int) -> list[tuple[OrderProof, FileRecord]]:
    return await service.proof_files(session, order_id)


class OrderCards:
    """Posts, updates and annotates order cards.  One in-process lock per order stops two
    concurrent syncs from posting two cards (see docs/slack.md for several workers)."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, order_id: int) -> asyncio.Lock:
        lock = self._locks.get(order_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[order_id] = lock
        return lock

    async def snapshot(self, order_id: int) -> Snapshot:
        try:
            async with self.bot.db.session() as session:
                view = await service.get_order(session, order_id)
                row = await session.get(Order, order_id)
                rows = await _proofs(session, order_id)
        except NotFound as exc:
            raise PermanentJobError(f"no existe la orden {order_id}") from exc
        marks = SlaMarks(row.reminder_sent_at, row.escalated_at) if row else SlaMarks()
        files = tuple(
            (ProofInfo(p.display_name, f.content_type, f.size, p.review_round, p.uploaded_at), f.sha256)
            for p, f in rows
        )
        return Snapshot(view, marks, tuple(info for info, _ in files), files)

    # ------------------------------------------------------------------ slack.sync_order
    async def sync(self, ctx: JobContext) -> None:
        order_id = _order_id(ctx.payload)
        async with self._lock(order_id):
            snap = await self.snapshot(order_id)
            cfg = self.bot.orders_cfg
            blocks = order_card(snap.view, cfg, marks=snap.marks, proof=snap.current_proof)
            text = order_card_text(snap.view)
            if not await self._update(snap, blocks, text):
                async with self.bot.first_post_guard("order", order_id):
                    fresh = await self.snapshot(order_id)
                    blocks = order_card(fresh.view, cfg, marks=fresh.marks, proof=fresh.current_proof)
                    text = order_card_text(fresh.view)
                    # another process may have posted it meanwhile: then that card is brought up to date
                    if fresh.card == snap.card or not await self._update(fresh, blocks, text):
                        await self._post(fresh, blocks, text)
            await self._follow_up(order_id)

    async def _update(self, snap: Snapshot, blocks: list[Block], text: str) -> bool:
        if snap.card is None:
            return False
        channel, ts = snap.card
        try:
            await self.bot.client.chat_update(channel=channel, ts=ts, blocks=blocks, text=text)
            return True
        except SlackApiError as exc:
            if slack_error(exc) not in CARD_GONE:
                raise translate(exc, "la actualización de la tarjeta") from None
            log.warning("card of order %s is gone (%s); posting a new one", snap.view.id, slack_error(exc))
            return False

    async def _post(self, snap: Snapshot, blocks: list[Block], text: str) -> None:
        order_id = snap.view.id
        channel, ts = await self.bot.post_card(
            snap.view.slack_channel, blocks, text, "timbrado_order", {"order_id": order_id}
        )
        async with self.bot.db.transaction() as session:
            await service.set_slack_message(session, order_id, channel, ts)

    async def _follow_up(self, order_id: int) -> None:
        """Once per review round: upload its proof to the thread; announce rounds after the first."""
        snap = await self.snapshot(order_id)
        v = snap.view
        if v.proof_sha256 is None or v.review_round < 1 or snap.card is None:
            return
        now = self.bot.clock.now()
        async with self.bot.db.transaction() as session:
            if v.review_round > 1 and v.status == OrderStatus.IN_REVIEW.value and v.sla_due_at is not None:
                await enqueue(
                    session,
                    kind=SLACK_ORDER_NOTE,
                    payload={
                        "order_id": v.id,
                        "broadcast": True,
                        "text": (
                            f"📎 Comprobante nuevo (ronda {v.review_round}) de {v.vendor_razon_social} para la orden "
                            f"#{v.id}: vuelve a revisión y "
                            f"{due_phrase(v.sla_due_at, self.bot.orders_cfg, now)}."
                        ),
                    },
                    key=f"slack:order:{v.id}:round-note:{v.review_round}",
                    now=now,
                )
            await enqueue(
                session,
                kind=SLACK_ORDER_PROOF,
                payload={"order_id": v.id, "round": v.review_round},
                key=f"slack:order:{v.id}:proof-upload:{v.review_round}",
                now=now,
            )

    # ------------------------------------------------------------------ slack.order_proof
    async def upload_proof(self, ctx: JobContext) -> None:
        order_id = _order_id(ctx.payload)
        round_ = ctx.payload.get("round")
        if isinstance(round_, bool) or not isinstance(round_, int) or round_ < 1:
            raise PermanentJobError("el trabajo no indica una ronda de revisión válida")
        if self.bot.files is None:
            raise PermanentJobError("el bot no tiene acceso al almacén de archivos")
        snap = await self.snapshot(order_id)
        found = snap.proof_of_round(round_)
        if found is None:
            raise PermanentJobError(f"la orden {order_id} no tiene comprobante en la ronda {round_}")
        if snap.card is None:
            raise RetryLater("la tarjeta de la orden aún no se publica", CARD_NOT_POSTED_DELAY)
        proof, sha256 = found
        path = self.bot.files.path_for(sha256)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise PermanentJobError(f"el comprobante {sha256[:12]}… no está en el almacén") from None
        v = snap.view
        ext = _EXTENSIONS.get(proof.content_type, "bin")
        filename = f"comprobante-{v.payment_reference}-ronda{round_}.{ext}"
        shown = proof.display_name or filename
        channel, ts = snap.card
        try:
            await self.bot.client.files_upload_v2(
                channel=channel,
                thread_ts=ts,
                file=data,
                filename=filename,
                title=b.clip(f"Comprobante de pago · orden #{v.id} · {shown}", 250),
                alt_txt=f"Comprobante de pago de la orden {v.id}" if ext in ("png", "jpg") else None,
                initial_comment=(
                    f"Comprobante de pago (ronda {round_}) de {b.escape(v.vendor_razon_social)}, "
                    f"referencia `{b.escape(v.payment_reference)}`, recibido el "
                    f"{local_when(proof.uploaded_at, self.bot.orders_cfg)}."
                ),
            )
        except SlackApiError as exc:
            raise translate(exc, "la subida del comprobante") from None
        except SlackRequestError as exc:  # the upload URL refused the bytes: retried with backoff
            raise RuntimeError(f"Slack no aceptó el archivo del comprobante: {type(exc).__name__}") from None

    # ------------------------------------------------------------------ thread replies
    async def _reply(self, snap: Snapshot, text: str, *, broadcast: bool, what: str) -> None:
        if snap.card is None:
            raise RetryLater("la tarjeta de la orden aún no se publica", CARD_NOT_POSTED_DELAY)
        channel, ts = snap.card
        try:
            await self.bot.client.chat_postMessage(
                channel=channel,
                thread_ts=ts,
                reply_broadcast=broadcast,
                text=b.clip(text, 3000),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise translate(exc, what) from None

    async def _mark(self, v: OrderView, what: str) -> None:
        """Queue a card sync so the card shows the reminder or escalation mark."""
        now = self.bot.clock.now()
        async with self.bot.db.transaction() as session:
            await enqueue(
                session,
                kind=SLACK_SYNC_ORDER,
                payload={"order_id": v.id},
                key=f"slack:order:{v.id}:{what}:{v.review_round}",
                now=now,
            )

    async def note(self, ctx: JobContext) -> None:
        order_id = _order_id(ctx.payload)
        text = str(ctx.payload.get("text") or "").strip()
        if not text:
            raise PermanentJobError("la nota está vacía")
        snap = await self.snapshot(order_id)
        await self._reply(snap, b.escape(text), broadcast=bool(ctx.payload.get("broadcast")), what="la nota en el hilo")

    async def reminder(self, ctx: JobContext) -> None:
        order_id = _order_id(ctx.payload)
        snap = await self.snapshot(order_id)
        v = snap.view
        if v.status != OrderStatus.IN_REVIEW.value or snap.marks.reminded_at is None or v.sla_due_at is None:
            log.info("reminder of order %s no longer applies (%s)", order_id, v.status)
            return
        cfg = self.bot.orders_cfg
        text = (
            f"⏰ La revisión del comprobante de la orden #{v.id} ({b.escape(v.vendor_razon_social)}) "
            f"{due_phrase(v.sla_due_at, cfg, self.bot.clock.now())}."
        )
        await self._reply(snap, text, broadcast=False, what="el recordatorio")
        await self._mark(v, "mark-reminder")

    async def escalation(self, ctx: JobContext) -> None:
        order_id = _order_id(ctx.payload)
        snap = await self.snapshot(order_id)
        v = snap.view
        if v.status != OrderStatus.IN_REVIEW.value or snap.marks.escalated_at is None or v.sla_due_at is None:
            log.info("escalation of order %s no longer applies (%s)", order_id, v.status)
            return
        text = (
            f"{self.mention()}🚨 Venció el plazo de revisión del comprobante de la orden #{v.id} "
            f"({b.escape(v.vendor_razon_social)}, referencia `{b.escape(v.payment_reference)}`): vencía el "
            f"{local_when(v.sla_due_at, self.bot.orders_cfg)}. Por favor revisen la tarjeta."
        )
        # One message that is a thread reply and also appears in the channel (one call: no half-done retry).
        await self._reply(snap, text, broadcast=True, what="el aviso de vencimiento")
        await self._mark(v, "mark-escalation")

    def mention(self) -> str:
        group = self.bot.settings.slack_escalation_usergroup.strip()
        if not group:
            return ""
        if not _USERGROUP_ID.fullmatch(group):
            log.warning("TIMBRADO_SLACK_ESCALATION_USERGROUP is not a user group id (S…); not mentioning it")
            return ""
        return f"<!subteam^{group}> "


def job_handlers(bot: SlackBot) -> dict[str, Handler]:
    cards = OrderCards(bot)
    return {
        SLACK_SYNC_ORDER: cards.sync,
        SLACK_ORDER_PROOF: cards.upload_proof,
        SLACK_ORDER_NOTE: cards.note,
        SLACK_ORDER_REMINDER: cards.reminder,
        SLACK_ORDER_ESCALATION: cards.escalation,
    }
