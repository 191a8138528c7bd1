"""The order views: place an order, read it (long-polling if asked), its history, cancel it."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from faust.web import Request, Response
from pydantic import TypeAdapter, ValidationError

from ordersaga.edge.http import HttpError, invalid
from ordersaga.edge.operations import (
    BODY_ERRORS,
    IDEMPOTENCY_KEY,
    ORDER_ID,
    Operation,
    Reply,
    documented,
    error,
    errors,
    param,
)
from ordersaga.observability.correlation import current_correlation_id
from ordersaga.saga.order_ids import mint_order_id
from ordersaga.saga.order_stock import merge_lines
from ordersaga.schemas.bounds import Id
from ordersaga.schemas.http import CancelBody, PlaceOrderBody
from ordersaga.schemas.messages import CancelOrder, PlaceOrder
from ordersaga.schemas.responses import (
    CancelRequested,
    OrderConflict,
    OrderEventEntry,
    OrderHistory,
    OrderLinks,
    OrderPage,
    OrderResponse,
    PlacedOrder,
)
from ordersaga.schemas.status import SagaStatus
from ordersaga.web.accept import KeyOutcome, KeyUse, Send, order_fingerprint, place_order_send
from ordersaga.web.auth import (
    admission_client,
    authenticated,
    client_of,
    ordering_customer,
    require_owner,
)
from ordersaga.web.desk import TERMINAL, Desk, DeskView
from ordersaga.web.errors import answers, key_reused, not_found, parse_body
from ordersaga.web.inputs import WAIT, idempotency_key, json_body, path_id, wait_seconds
from ordersaga.web.paging import PAGING, page_cursor, page_limit, page_response
from ordersaga.web.watch import ClientWatchFull, WatchFull

log = logging.getLogger(__name__)


def order_response(view: dict[str, Any]) -> OrderResponse:
    """What GET answers for a projected order."""
    order = view["order"]
    return OrderResponse(
        order_id=order["order_id"],
        status=order["status"],
        failure_reason=order.get("failure_reason"),
        failure_detail=order.get("failure_detail"),
        customer_id=order["customer_id"],
        items=order["items"],
        lines=order.get("lines", []),
        total=order.get("total"),
        charge_id=order.get("charge_id"),
        shipment_id=order.get("shipment_id"),
        placed_at=order.get("placed_at"),
        updated_at=order.get("updated_at"),
        events_seen=view.get("seq", 0),
    )


def accepted_record(command: PlaceOrder, accepted_at: float) -> OrderResponse:
    """What GET answers for an accepted order before its first event is projected."""
    at = datetime.fromtimestamp(accepted_at, UTC)
    return OrderResponse(
        order_id=command.order_id,
        status=SagaStatus.PENDING,
        customer_id=command.customer_id,
        items=list(command.items),
        placed_at=at,
        updated_at=at,
    )


async def find_order(desk: Desk, order_id: str) -> OrderResponse | None:
    """The order's view, or what was accepted over HTTP if the view is not there yet."""
    view = await desk.store.order(order_id)
    if view is not None:
        return order_response(view)
    accepted = await desk.intake.accepted(order_id)
    if accepted is None:
        return None
    # Kept by whichever webview accepted the order, maybe a newer release's: fields
    # it added are ignored, as on the topics (ARCHITECTURE.md, Message compatibility).
    return OrderResponse.model_validate(accepted, extra="ignore")


_SINCE = TypeAdapter(datetime)
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
STATUSES = frozenset(SagaStatus)

LIST_ORDERS = Operation(
    summary="List orders, newest first (the operators' query)",
    description="Over the newest ORDERSAGA_MAX_LISTED_ORDERS orders, at most "
    "ORDERSAGA_MAX_LISTING_SCAN (500) looked at per page: a sparse filter answers a short "
    "page (even an empty one) with a cursor to go on.",
    tag="orders",
    params=(
        param("status", "query", SagaStatus, "only orders in this status"),
        param("customer_id", "query", Id, "only this customer's orders"),
        param("since", "query", datetime, "only orders placed at or after (ISO 8601)"),
        *PAGING,
    ),
    replies=(
        Reply(200, "a page of orders", (OrderPage,)),
        *errors(422, 503),
    ),
)
PLACE_ORDER = Operation(
    summary="Place an order",
    description="Prices come from the catalogue; every SKU must exist. The saga runs after "
    "the answer: read the order (with ?wait=) to see it end.",
    tag="orders",
    body=PlaceOrderBody,
    params=(IDEMPOTENCY_KEY,),
    replies=(
        Reply(202, "accepted (PENDING)", (PlacedOrder,), headers=("Location",)),
        *BODY_ERRORS,
        *errors(429, 503),
    ),
)
READ_ORDER = Operation(
    summary="Read an order",
    tag="orders",
    params=(ORDER_ID, WAIT),
    replies=(
        Reply(200, "the order (terminal, or as it stands when the wait ends)", (OrderResponse,)),
        *errors(404, 422),
        error(429, "this client holds its share of long-polls here already"),
        error(503, "Redis does not answer, or too many long-polls are held here"),
    ),
)
ORDER_EVENTS = Operation(
    summary="An order's history, oldest first",
    tag="orders",
    params=(ORDER_ID,),
    replies=(Reply(200, "its events", (OrderHistory,)), *errors(404, 422, 503)),
)
CANCEL_ORDER = Operation(
    summary="Ask to cancel an order",
    # Documented as required: an empty body is taken too, but never without the JSON
    # Content-Type, which a cross-site POST without a body could otherwise leave out.
    description="It ends CANCELLED, compensated. An empty body is taken too, but "
    "Content-Type must be application/json even then (415 otherwise).",
    tag="orders",
    body=CancelBody,
    params=(ORDER_ID,),
    replies=(
        Reply(202, "the cancel is sent", (CancelRequested,)),
        *BODY_ERRORS,
        error(404),
        error(409, "the order has ended", OrderConflict),
        error(503),
    ),
)


def listing_filters(request: Request) -> tuple[str | None, str | None, float | None]:
    """``?status=``, ``?customer_id=`` and ``?since=`` of GET /orders, within their bounds."""
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(sorted(STATUSES))}")
    customer_id = request.query.get("customer_id")
    if customer_id is not None:
        customer_id = path_id(customer_id, "customer_id")
    since = request.query.get("since")
    if since is None:
        return status, customer_id, None
    # pydantic also reads a bare number as epoch seconds; the document promises ISO 8601.
    problem = "must be an ISO 8601 time (2026-12-01T09:30:00Z)"
    if not _ISO_DATE.match(since):
        raise invalid("since", problem)
    try:
        when = _SINCE.validate_python(since[:40])
    except ValidationError:
        raise invalid("since", problem) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return status, customer_id, when.timestamp()


class Orders(DeskView):
    """``POST /orders`` and ``GET /orders``."""

    @documented(LIST_ORDERS)
    @answers
    async def get(self, request: Request) -> Response:
        """Orders newest first: ``status``, ``customer_id``, ``since``; ``limit``, ``cursor``."""
        desk = self.desk
        status, customer_id, since = listing_filters(request)
        caller = authenticated(request)
        if caller is not None and not caller.is_admin:
            # A customer lists its own orders only: the filter is its own id.
            if customer_id is not None:
                require_owner(request, customer_id, f"the orders of customer {customer_id}")
            customer_id = caller.subject
        limit, cursor = page_limit(request), page_cursor(request)
        ids, next_cursor = await desk.order_index.page(
            limit=limit, status=status, customer_id=customer_id, since=since, before=cursor
        )
        found = await asyncio.gather(*(find_order(desk, order_id) for order_id in ids))
        return self.answer(OrderPage(**page_response(found, next_cursor)))

    @documented(PLACE_ORDER)
    @answers
    async def post(self, request: Request) -> Response:
        """Place an order: 202 with its id; Idempotency-Key makes retries safe."""
        desk, settings = self.desk, self.desk.settings
        body = await json_body(request, settings.max_body_bytes)
        key = idempotency_key(request)
        order = parse_body(PlaceOrderBody, body, settings.max_body_bytes)
        customer_id = ordering_customer(request, order.customer_id)
        items = merge_lines(order.items)
        known = await desk.store.stock(*(line.sku for line in items))
        for i, line in enumerate(items):
            if line.sku not in known:
                raise invalid(f"items[{i}].sku", f"unknown SKU {line.sku!r}", error="unknown_sku")
        # Before the key is claimed: a refused order leaves nothing behind, and its
        # retry (same key) is a new attempt.
        await desk.admit_order()
        accepted_at = time.time()
        order_id = mint_order_id(accepted_at)
        share_of = admission_client(request, customer_id)
        await desk.admit_client_order(share_of, order_id)
        minted_id = order_id
        try:
            if key:
                minted = KeyUse(order_fingerprint(body), order_id, accepted_at)
                # Keys are the client's own: one customer's key never finds another's order.
                claim = await desk.use_key("order", f"{customer_id}/{key}", minted)
                if claim.outcome is KeyOutcome.REUSED:
                    raise key_reused()
                order_id, accepted_at = claim.id, claim.accepted_at
            # Built from the body, so a retry with the same body rebuilds the same
            # command: the key's record needs no copy of the payment token.
            sealing = desk.sealing
            address = order.shipping_address
            command = PlaceOrder(
                order_id=order_id,
                customer_id=customer_id,
                items=items,
                payment_token=sealing.token(order_id, order.payment_token),
                shipping_address=sealing.address(order_id, address.model_dump_json()) or address,
            )
            accepted = accepted_record(command, accepted_at)
            await desk.intake.remember_accepted(
                command.order_id, accepted.body(), settings.idempotency_ttl_s
            )
            # The webview's re-drive re-sends the PlaceOrder until an event of the
            # order is projected, so neither a lost send nor a message the
            # orchestrator skipped leaves an accepted order unstarted.
            awaiting = await desk.intake.await_confirmation(
                command.order_id,
                command.model_dump(mode="json"),
                accepted_at,
                redrive_at=time.time() + settings.redrive_after_s,
                correlation_id=current_correlation_id(command.order_id),
            )
        except Exception:
            # Refused or failed before the order was kept: it holds no share.
            await desk.client_share.release(share_of, minted_id)
            raise
        if order_id != minted_id:
            # A retry answers the order it repeats, which was counted when placed.
            await desk.client_share.release(share_of, minted_id)
        send = place_order_send(
            awaiting=awaiting,
            accepted_at=accepted_at,
            now=time.time(),
            redrive_window_s=settings.redrive_window_s,
        )
        if send is Send.SEND:
            # Not acknowledged in time is still 202: the order is kept, and the re-drive
            # sends it again until an event of it is projected.
            await desk.send(
                command,
                key=command.order_id,
                correlation_id=current_correlation_id(command.order_id),
            )
        # The order's first line: where following its correlation id begins.
        told = "order accepted" if send is Send.SEND else f"order accepted again ({send.value})"
        log.info(told, extra={"order_id": command.order_id})
        location = f"/orders/{command.order_id}"
        return self.answer(
            PlacedOrder(**dict(accepted), links=OrderLinks(self=location)),
            status=202,
            headers={"Location": location},
        )


def too_many_waiters(status: int, held: str, problem: str) -> HttpError:
    """The answer of a long-poll refused for the ones already held (Retry-After 1)."""
    return HttpError(
        status,
        "too_many_waiters",
        f"{held}; retry, or read without wait",
        problems=[{"field": "wait", "message": problem}],
        headers={"Retry-After": "1"},
    )


class Order(DeskView):
    """``GET /orders/{order_id}``."""

    @documented(READ_ORDER)
    @answers
    async def get(self, request: Request, order_id: str) -> Response:
        """The order; ``?wait=SECONDS`` long-polls until it is terminal."""
        desk = self.desk
        order_id = path_id(order_id, "order_id")
        wait = wait_seconds(request)
        found = await find_order(desk, order_id)
        if found is None:
            raise not_found(f"order {order_id}")
        require_owner(request, found.customer_id, f"order {order_id}", hidden=True)
        deadline = time.monotonic() + wait
        while found.status not in TERMINAL:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                desk.node.metrics.long_polls.inc()
                await desk.watch.wait(order_id, remaining, client_of(request))
            except ClientWatchFull:
                raise too_many_waiters(
                    429,
                    f"this client holds {desk.watch.per_client} long-polls here already",
                    "too many long-polls of one client",
                ) from None
            except WatchFull:
                raise too_many_waiters(
                    503,
                    f"{desk.watch.limit} long-polls are held here already",
                    "too many concurrent long-polls",
                ) from None
            finally:
                desk.node.metrics.long_polls.dec()
            found = await find_order(desk, order_id) or found
        return self.answer(found)


class OrderEvents(DeskView):
    """``GET /orders/{order_id}/events``."""

    @documented(ORDER_EVENTS)
    @answers
    async def get(self, request: Request, order_id: str) -> Response:
        """The order's history, oldest first."""
        store = self.desk.store
        order_id = path_id(order_id, "order_id")
        found = await find_order(self.desk, order_id)
        if found is None:
            raise not_found(f"order {order_id}")
        require_owner(request, found.customer_id, f"order {order_id}", hidden=True)
        if await store.order(order_id) is None:  # accepted, no event projected yet
            return self.answer(OrderHistory(order_id=order_id, events=[]))
        # The stored entries keep their epoch time too, for the stats; it is not served.
        fields = OrderEventEntry.model_fields
        events = [
            OrderEventEntry.model_validate({k: entry[k] for k in fields if k in entry})
            for entry in await store.events(order_id)
        ]
        return self.answer(OrderHistory(order_id=order_id, events=events))


class CancelOrderView(DeskView):
    """``POST /orders/{order_id}/cancel``."""

    @documented(CANCEL_ORDER)
    @answers
    async def post(self, request: Request, order_id: str) -> Response:
        """Ask to cancel: 202 while in flight, 409 once terminal."""
        desk, settings = self.desk, self.desk.settings
        order_id = path_id(order_id, "order_id")
        body = await json_body(request, settings.max_body_bytes)
        if body.strip():
            parse_body(CancelBody, body, settings.max_body_bytes)
        found = await find_order(desk, order_id)
        if found is None:
            raise not_found(f"order {order_id}")
        require_owner(request, found.customer_id, f"order {order_id}", hidden=True)
        if found.status in TERMINAL:
            raise HttpError(
                409,
                "conflict",
                f"order is already {found.status}",
                problems=[{"field": "order_id", "message": f"order is {found.status}"}],
                model=OrderConflict,
                fields={"status": found.status},
            )
        sent = await desk.send(
            CancelOrder(order_id=order_id),
            key=order_id,
            correlation_id=current_correlation_id(order_id),
        )
        if not sent:
            # Nothing re-drives a cancel: the client must know to ask again (asking
            # twice is harmless, and the one not acknowledged may still arrive).
            raise HttpError(
                503,
                "broker_slow",
                "the broker did not acknowledge the cancel in time: retry after Retry-After",
                headers={"Retry-After": "1"},
            )
        return self.answer(CancelRequested(order_id=order_id), status=202)
