"""The Bolt app: buttons, the rejection modal, the /timbrado command and the App Home tab.

Every decision is taken in the database first (the core's conditional updates make double clicks
and Slack retries harmless), then the request is acknowledged, then the person is told the result
(ephemeral message) and their App Home refreshed.  Cards are never edited here: the decision's
``slack.sync_request`` job does it, with retries, so a Slack failure cannot undo a decision.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackClientError

from bot import blocks as b
from bot.auth import Access
from core.enablement import service
from core.enablement.service import AlreadyResolved, RequestView
from core.errors import DomainError

if TYPE_CHECKING:
    from bot.runtime import SlackBot
    from core.audit.service import Actor

log = logging.getLogger("timbrado.bot")

Ack = Callable[..., Awaitable[Any]]
T = TypeVar("T")
#: How long a click waits for its decision before acknowledging anyway.  Slack wants an answer within
#: 3 s; a decision still running when the budget is spent goes on (it is never cancelled) and its
#: result reaches the person as an ephemeral message.
ACK_BUDGET = 0.1
#: With more decisions than this already running, a click is acknowledged at once: under a burst the
#: wait would only add queueing delay to every response.
BUSY_DECISIONS = 4
#: Decisions run at most this many at a time per process: a burst of clicks then queues cheaply
#: instead of flooding the event loop (and the connection pool) and delaying every acknowledgement.
DECISION_CONCURRENCY = 4
#: Reads for the slash command must answer within Slack's 3 s.
READ_TIMEOUT = 2.5
#: App Home refreshes after decisions are coalesced per user over this many seconds.
HOME_DEBOUNCE = 0.5
LIST_LIMIT = 20
HOME_LIMIT = 30
MAX_QUERY = 200

SLOW_READ_TEXT = "La consulta tardó demasiado; inténtalo de nuevo en un momento."
ERROR_TEXT = "Ocurrió un error interno; inténtalo de nuevo en un momento."
EMPTY_REASON_TEXT = "Escribe el motivo del rechazo; se enviará al solicitante."


async def run_decision(
    request: AsyncBoltRequest,
    subject: str,
    decide: Callable[[], Awaitable[str]],
    *,
    already: type[DomainError],
    mine: Callable[[], Awaitable[bool]],
) -> tuple[str | None, bool]:
    """Run ``decide`` (which returns the text to show).  Returns (text, or None for silence; decided).

    ``already`` is the refusal for a subject decided before; when Slack re-delivered the click that
    made that decision (``mine``), nothing is said twice."""
    try:
        return await decide(), True
    except already as exc:
        if is_retry(request) and await mine():
            return None, False
        return exc.message, False
    except DomainError as exc:
        return exc.message, False
    except Exception:
        log.exception("decision on %s failed", subject)
        return ERROR_TEXT, False


def user_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """(user id, display name) of whoever sent an interaction or a command."""
    user = body.get("user") or {}
    if isinstance(user, Mapping):
        uid = str(user.get("id") or "")
        name = str(user.get("name") or user.get("username") or "")
    else:
        uid, name = str(user), ""
    uid = uid or str(body.get("user_id") or "")
    name = name or str(body.get("user_name") or "")
    return uid, name[:100]


def is_retry(request: AsyncBoltRequest) -> bool:
    return bool(request.headers.get("x-slack-retry-num"))


def parse_id(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 18 else None


def resolved_text(view: RequestView) -> str:
    verb = "aprobada" if view.status == "enabled" else "rechazada"
    when = f", {b.local_time(view.decided_at)}" if view.decided_at else ""
    return f"La solicitud {view.ticket} ya fue resuelta por {view.decided_by or 'otra persona'} ({verb}{when})."


def refusal(access: Access) -> str:
    return b.AUTH_UNAVAILABLE_TEXT if access is Access.UNKNOWN else b.NOT_STAFF_TEXT


class Listeners:
    """The behaviour behind each Slack interaction, independent of how requests arrive."""

    def __init__(self, bot: SlackBot, *, ack_budget: float = ACK_BUDGET, home_debounce: float = HOME_DEBOUNCE) -> None:
        self.bot = bot
        self.ack_budget = ack_budget
        self.home_debounce = home_debounce
        self._home_pending: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(DECISION_CONCURRENCY)

    # ------------------------------------------------------------------ replies
    async def tell(self, body: Mapping[str, Any], text: str, *, channel: str | None = None) -> None:
        """An ephemeral message in the channel of the interaction, or a direct message otherwise."""
        user_id, _ = user_of(body)
        channel = channel or str((body.get("channel") or {}).get("id") or "")
        if not channel:
            channel = str((body.get("container") or {}).get("channel_id") or "")
        try:
            if channel:
                await self.bot.client.chat_postEphemeral(channel=channel, user=user_id, text=text)
            else:
                await self.bot.client.chat_postMessage(channel=user_id, text=text)
        except SlackClientError as exc:
            log.warning("could not tell %s the result: %s", user_id, type(exc).__name__)

    async def publish_home(self, user_id: str) -> None:
        try:
            staff = await self.bot.authorizer.is_staff(user_id)
            views: list[RequestView] = []
            total = 0
            order_blocks: list[b.Block] = []
            if staff:
                async with self.bot.db.session() as session:
                    views = await service.list_requests(session, open_only=True, limit=HOME_LIMIT)
                    total = await service.count_open(session)
                    if self.bot.orders is not None:  # payment proofs in review, by SLA due time
                        from bot import orders

                        order_blocks = await orders.order_home_blocks(session, self.bot)
            home = b.home_view(views, total=total, staff=staff)
            if order_blocks:
                from bot.orders import with_orders

                home = with_orders(home, order_blocks)
            await self.bot.client.views_publish(user_id=user_id, view=home)
        except SlackClientError as exc:
            log.warning("could not publish the App Home of %s: %s", user_id, type(exc).__name__)
        except Exception:
            log.exception("could not build the App Home of %s", user_id)

    def refresh_home_soon(self, user_id: str) -> None:
        """Refresh a user's App Home shortly; many decisions in a row cause one views.publish."""
        if not user_id or user_id in self._home_pending:
            return

        async def later() -> None:
            try:
                await asyncio.sleep(self.home_debounce)
            finally:
                self._home_pending.pop(user_id, None)
            await self.publish_home(user_id)

        self._home_pending[user_id] = asyncio.create_task(later())

    async def _resolved_by_me(self, request_id: int, label: str) -> bool:
        async with self.bot.db.session() as session:
            view = await service.get_request(session, request_id)
        return view.decided_by == label and view.decided_via == "slack"

    async def _decision(
        self, request: AsyncBoltRequest, request_id: int, label: str, decide: Callable[[], Awaitable[str]]
    ) -> tuple[str | None, bool]:
        return await run_decision(
            request,
            f"request {request_id}",
            decide,
            already=AlreadyResolved,
            mine=lambda: self._resolved_by_me(request_id, label),
        )

    async def _decide_then_ack(
        self, ack: Ack, request: AsyncBoltRequest, request_id: int, label: str, decide: Callable[[], Awaitable[str]]
    ) -> tuple[str | None, bool]:
        """Decide in the database, acknowledging as soon as it is done or the budget is spent."""
        task = self._start(self._limited(self._decision(request, request_id, label, decide)))
        await asyncio.wait({task}, timeout=self._budget())
        await ack()
        return await task

    async def _limited(self, decision: Awaitable[T]) -> T:
        async with self._slots:
            return await decision

    def _budget(self) -> float:
        return self.ack_budget if len(self._running) <= BUSY_DECISIONS else 0.0

    def _start(self, decision: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(decision)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    # ------------------------------------------------------------------ shared with bot/orders.py
    def start_decision(self, decision: Awaitable[T]) -> asyncio.Task[T]:
        """Run a decision in the bounded pool (never cancelled)."""
        return self._start(self._limited(decision))

    def budget(self) -> float:
        return self._budget()

    async def decide_then_ack(self, ack: Ack, decision: Awaitable[T]) -> T:
        """Run ``decision``, acknowledging as soon as it is done or the budget is spent."""
        task = self.start_decision(decision)
        await asyncio.wait({task}, timeout=self._budget())
        await ack()
        return await task

    async def staff_or_refuse(self, ack: Ack, body: Mapping[str, Any]) -> bool:
        return await self._staff_or_refuse(ack, body)

    async def _staff_or_refuse(self, ack: Ack, body: Mapping[str, Any]) -> bool:
        user_id, _ = user_of(body)
        access = await self.bot.authorizer.check(user_id)
        if access is Access.ALLOWED:
            return True
        await ack()
        await self.tell(body, refusal(access))
        return False

    # ------------------------------------------------------------------ buttons
    async def _clicked(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> tuple[int, Actor] | None:
        """The request a staff member's button names, and who clicked; None once the click is answered
        (not staff, or a button value that names no request)."""
        if not await self._staff_or_refuse(ack, body):
            return None
        request_id = parse_id(action.get("value"))
        if request_id is None:
            await ack()
            await self.tell(body, b.INVALID_ACTION_TEXT)
            return None
        user_id, name = user_of(body)
        return request_id, self.bot.actor(user_id, name)

    async def verify_clicked(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        clicked = await self._clicked(ack, body, action)
        if clicked is None:
            return
        request_id, actor = clicked

        async def decide() -> str:
            async with self.bot.db.transaction() as session:
                result = await service.verify(
                    session, request_id, actor=actor, cfg=self.bot.cfg, now=self.bot.clock.now()
                )
            return b.verify_feedback(result.request, result.has_proveedores_plus)

        text, _ = await self._decide_then_ack(ack, request, request_id, actor.label, decide)
        if text:
            await self.tell(body, text)

    async def approve_clicked(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        clicked = await self._clicked(ack, body, action)
        if clicked is None:
            return
        request_id, actor = clicked

        async def decide() -> str:
            async with self.bot.db.transaction() as session:
                result = await service.approve(
                    session, request_id, actor=actor, cfg=self.bot.cfg, now=self.bot.clock.now()
                )
            prefix = ":white_check_mark: " if result.approved else ":x: "
            return prefix + b.escape(result.message)

        text, decided = await self._decide_then_ack(ack, request, request_id, actor.label, decide)
        if text:
            await self.tell(body, text)
        if decided:
            self.refresh_home_soon(user_of(body)[0])

    async def reject_clicked(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        # Acknowledge at once: the modal is opened with a Web API call that must follow the click.
        await ack()
        user_id, _ = user_of(body)
        access = await self.bot.authorizer.check(user_id)
        if access is not Access.ALLOWED:
            await self.tell(body, refusal(access))
            return
        request_id = parse_id(action.get("value"))
        if request_id is None:
            await self.tell(body, b.INVALID_ACTION_TEXT)
            return
        try:
            async with self.bot.db.session() as session:
                view = await service.get_request(session, request_id)
        except DomainError as exc:
            await self.tell(body, exc.message)
            return
        if not view.is_open:
            await self.tell(body, resolved_text(view))
            return
        channel = str((body.get("channel") or {}).get("id") or "")
        modal = b.reason_modal(
            callback_id=b.REQUEST_REJECT_MODAL,
            title="Rechazar solicitud",
            intro=f"Rechazar la solicitud *{view.ticket}* de *{b.escape(view.client_name or view.requester_email)}*.",
            metadata={"request_id": request_id, "channel": channel},
            submit="Rechazar",
        )
        try:
            await self.bot.client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=modal)
        except SlackClientError as exc:
            log.warning("could not open the rejection modal: %s", type(exc).__name__)
            await self.tell(body, "No se pudo abrir el formulario de rechazo; vuelve a intentarlo.")

    # ------------------------------------------------------------------ modal
    async def reject_submitted(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        user_id, name = user_of(body)
        access = await self.bot.authorizer.check(user_id)
        if access is not Access.ALLOWED:
            await ack(response_action="errors", errors={b.REASON_BLOCK: refusal(access)[:150]})
            return
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        request_id = parse_id(meta.get("request_id") if isinstance(meta, dict) else None)
        if request_id is None:
            await ack(response_action="update", view=b.notice_modal("Rechazar solicitud", b.INVALID_ACTION_TEXT))
            return
        channel = str(meta.get("channel") or "")
        state = (view.get("state") or {}).get("values") or {}
        reason = str(((state.get(b.REASON_BLOCK) or {}).get(b.REASON_INPUT) or {}).get("value") or "")
        if not reason.strip():
            await ack(response_action="errors", errors={b.REASON_BLOCK: EMPTY_REASON_TEXT})
            return
        actor = self.bot.actor(user_id, name)

        async def decide() -> tuple[str, str]:
            """(outcome, text): outcome is "rejected", "silent", "resolved", "invalid" or "error"."""
            try:
                async with self.bot.db.transaction() as session:
                    decided = await service.reject(
                        session, request_id, reason=reason, actor=actor, cfg=self.bot.cfg, now=self.bot.clock.now()
                    )
                return "rejected", f":no_entry: Rechazaste la solicitud {decided.ticket}."
            except AlreadyResolved as exc:
                if is_retry(request) and await self._resolved_by_me(request_id, actor.label):
                    return "silent", ""
                return "resolved", exc.message
            except DomainError as exc:
                return ("invalid" if exc.code.startswith("reason") else "resolved"), exc.message
            except Exception:
                log.exception("rejection of request %s failed", request_id)
                return "error", ERROR_TEXT

        task = self._start(self._limited(decide()))
        await asyncio.wait({task}, timeout=self._budget())
        if not task.done():
            # Close the modal on time; the outcome follows as an ephemeral message.
            await ack()
            outcome, text = await task
        else:
            outcome, text = task.result()
            if outcome == "invalid":
                await ack(response_action="errors", errors={b.REASON_BLOCK: text})
                return
            if outcome in ("resolved", "error"):
                await ack(response_action="update", view=b.notice_modal("Rechazar solicitud", text))
                return
            await ack()
        if text and outcome != "silent":
            await self.tell(body, text, channel=channel or None)
        if outcome == "rejected":
            self.refresh_home_soon(user_id)

    # ------------------------------------------------------------------ slash command
    async def command(self, ack: Ack, command: dict[str, Any]) -> None:
        async def reply(ack: Ack, *, text: str, blocks: list[b.Block] | None = None) -> None:
            await ack(text=text, blocks=blocks, response_type="ephemeral")

        text = " ".join(str(command.get("text") or "").split())
        verb, _, rest = text.partition(" ")
        verb = verb.lower()
        if verb in ("ayuda", "help", "?"):
            await reply(ack, text=b.HELP_TEXT, blocks=[b.section(b.HELP_TEXT)])
            return
        access = await self.bot.authorizer.check(str(command.get("user_id") or ""))
        if access is not Access.ALLOWED:
            await reply(ack, text=refusal(access))
            return
        if verb not in ("", "pendientes", "buscar"):
            unknown = f"No reconozco «{b.escape(b.clip(verb, 40))}».\n\n{b.HELP_TEXT}"
            await reply(ack, text=unknown, blocks=[b.section(unknown)])
            return
        query = rest.strip()[:MAX_QUERY]
        if verb == "buscar" and not query:
            await reply(ack, text="Escribe qué buscar: `/timbrado buscar <cliente, RFC, ticket o correo>`.")
            return
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                async with self.bot.db.session() as session:
                    if verb == "buscar":
                        views = await service.list_requests(session, query=query, limit=LIST_LIMIT)
                        title, total, empty = f"Resultados para «{query}»", None, "No se encontraron solicitudes."
                    else:
                        views = await service.list_requests(session, open_only=True, limit=LIST_LIMIT)
                        total = await service.count_open(session)
                        title, empty = (
                            "Solicitudes pendientes (más recientes primero)",
                            "No hay solicitudes pendientes.",
                        )
        except TimeoutError:
            await reply(ack, text=SLOW_READ_TEXT)
            return
        listing = b.request_list(title, views, empty=empty, total=total)
        await reply(ack, text=b.clip(title, 150), blocks=listing)

    # ------------------------------------------------------------------ events
    async def home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        await self.publish_home(str(event.get("user") or ""))


def create_bolt_app(bot: SlackBot) -> AsyncApp:
    """Build the Bolt app.  HTTP requests are signature-checked with the signing secret (Bolt
    refuses bad signatures and timestamps older than five minutes with 401); Socket Mode
    envelopes need no signature."""
    s = bot.settings
    app = AsyncApp(
        name="timbrado",
        client=bot.client,
        signing_secret=s.slack_signing_secret,
        verification_token="",
        request_verification_enabled=True,
        process_before_response=False,
        logger=logging.getLogger("timbrado.bot.bolt"),
    )
    on = Listeners(bot)
    app.action(b.REQUEST_VERIFY)(on.verify_clicked)
    app.action(b.REQUEST_APPROVE)(on.approve_clicked)
    app.action(b.REQUEST_REJECT)(on.reject_clicked)
    app.view(b.REQUEST_REJECT_MODAL)(on.reject_submitted)
    app.command("/timbrado")(on.command)
    if bot.orders is not None:  # payment-proof review (order.* actions)
        from bot import orders

        orders.register(app, on)
    app.event("app_home_opened")(on.home_opened)

    @app.error
    async def on_error(error: Exception) -> None:
        log.error("Slack listener failed: %s", type(error).__name__, exc_info=error)

    return app
