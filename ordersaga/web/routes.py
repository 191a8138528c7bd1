"""The web view's routes: place, cancel and query orders; query and restock inventory.

Bad input never reaches Kafka: every body is validated here first, and each
error answer names the field at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from datetime import UTC, datetime
from typing import Any, cast

import faust
from aiohttp import web
from faust.web import Request, Response, View

from ordersaga.app.codec import new_id
from ordersaga.app.node import Node
from ordersaga.saga.inventory import merge_lines
from ordersaga.schemas.http import PlaceOrderBody, RestockBody
from ordersaga.schemas.messages import CancelOrder, Message, PlaceOrder, RestockSku
from ordersaga.web.errors import HttpError, parse_body
from ordersaga.web.store import ViewStore

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MAX_WAIT_S = 60.0
# How often a long poll re-reads the view: another worker may have projected the change.
POLL_INTERVAL_S = 0.1


class OrderWatch:
    """Wakes long-polling requests when this process projects an order's change."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def changed(self, order_id: str) -> None:
        """Wake whoever waits on ``order_id`` here."""
        event = self._events.pop(order_id, None)
        if event is not None:
            event.set()

    async def wait(self, order_id: str, timeout: float) -> None:
        """Wait until ``order_id`` changes here or ``timeout`` seconds pass."""
        event = self._events.setdefault(order_id, asyncio.Event())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            # Forget the order once nobody waits, or ids projected elsewhere pile up here.
            if self._events.get(order_id) is event:
                del self._events[order_id]


class Desk:
    """What the HTTP routes read and write: the Redis view store and the command topics."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self.watch = OrderWatch()
        self._store: ViewStore | None = None

    @property
    def store(self) -> ViewStore:
        """The view store (its Redis pool connects on first use, in the worker's loop)."""
        if self._store is None:
            self._store = ViewStore.from_url(
                self.settings.redis_url or "redis://127.0.0.1:6379/0",
                finished_ttl_s=self.settings.finished_view_ttl_s,
                refresh_after_s=self.settings.view_refresh_after_s,
            )
        return self._store

    async def send(self, message: Message, *, key: str, correlation_id: str) -> None:
        """Send a command from the HTTP edge; returns once the broker has it."""
        await self.node.send(message, key=key, correlation_id=correlation_id, acked=True)


def _error(view: View, exc: HttpError) -> Response:
    return view.json(exc.body, status=exc.status)


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, read no further than one byte past the limit."""
    raw = cast(web.Request, request)  # Faust's aiohttp driver hands views aiohttp requests
    length = raw.content_length
    if length is not None and length > max_bytes:
        raise HttpError(413, "body_too_large", f"body is over {max_bytes} bytes")
    body = await raw.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise HttpError(413, "body_too_large", f"body is over {max_bytes} bytes")
    return body


def _order_response(view: dict[str, Any]) -> dict[str, Any]:
    order = view["order"]
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "failure_reason": order.get("failure_reason"),
        "failure_detail": order.get("failure_detail"),
        "customer_id": order["customer_id"],
        "items": order["items"],
        "lines": order.get("lines", []),
        "total": order.get("total"),
        "charge_id": order.get("charge_id"),
        "shipment_id": order.get("shipment_id"),
        "placed_at": order.get("placed_at"),
        "updated_at": order.get("updated_at"),
        "events_seen": view.get("seq", 0),
    }


def _stock_response(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": view["sku"],
        "available": view["available"],
        "reserved": view["reserved"],
        "committed": view["committed"],
        "put_in": view["put_in"],
        "unit_price": view["unit_price"],
        "version": view["version"],
    }


def accepted_record(command: PlaceOrder, accepted_at: float) -> dict[str, Any]:
    """What GET answers for an accepted order before its first event is projected."""
    at = datetime.fromtimestamp(accepted_at, UTC).isoformat()
    return {
        "order_id": command.order_id,
        "status": "PENDING",
        "failure_reason": None,
        "failure_detail": None,
        "customer_id": command.customer_id,
        "items": [line.model_dump() for line in command.items],
        "lines": [],
        "total": None,
        "charge_id": None,
        "shipment_id": None,
        "placed_at": at,
        "updated_at": at,
        "events_seen": 0,
    }


def register_routes(app: faust.App, desk: Desk) -> None:
    """Add the HTTP API to the webview app."""
    settings = desk.settings

    async def find_order(order_id: str) -> dict[str, Any] | None:
        """The order's view, or what was accepted over HTTP if the view is not there yet."""
        view = await desk.store.order(order_id)
        if view is not None:
            return _order_response(view)
        return await desk.store.accepted(order_id)

    @app.page("/orders")
    class Orders(View):
        async def post(self, request: Request) -> Response:
            """Place an order: 202 with its id; Idempotency-Key makes retries safe."""
            try:
                body = await _read_body(request, settings.max_body_bytes)
                order = parse_body(PlaceOrderBody, body, settings.max_body_bytes)
                items = merge_lines(order.items)
                known = await desk.store.stock(*(line.sku for line in items))
                for i, line in enumerate(items):
                    if line.sku not in known:
                        raise HttpError(
                            422,
                            "unknown_sku",
                            f"items[{i}].sku: unknown SKU {line.sku!r}",
                            problems=[{"field": f"items[{i}].sku", "message": "unknown SKU"}],
                        )
                key = request.headers.get("Idempotency-Key")
                fingerprint = hashlib.sha256(body).hexdigest()
                command = PlaceOrder(
                    order_id=f"ord_{new_id()[:24]}",
                    customer_id=order.customer_id,
                    items=items,
                    payment_token=order.payment_token,
                    shipping_address=order.shipping_address,
                )
                accepted_at = time.time()
                if key:
                    command, accepted_at = await remember_key(
                        key, fingerprint, command, accepted_at
                    )
            except HttpError as exc:
                return _error(self, exc)
            accepted = accepted_record(command, accepted_at)
            await desk.store.remember_accepted(
                command.order_id, accepted, settings.idempotency_ttl_s
            )
            # The PlaceOrder is re-sent by the webview's re-drive until an event of
            # the order is projected, so neither a lost send nor a message the
            # orchestrator skipped leaves an accepted order unstarted. A retried
            # request sends it again under the same rule. Neither sends once the
            # orchestrator may have forgotten the order (Settings.redrive_window_s):
            # it would run again.
            waiting = await desk.store.await_confirmation(
                command.order_id,
                command.model_dump(mode="json"),
                accepted_at,
                redrive_at=time.time() + settings.redrive_after_s,
            )
            if waiting and time.time() - accepted_at < settings.redrive_window_s:
                await desk.send(command, key=command.order_id, correlation_id=command.order_id)
            return self.json(
                {**accepted, "links": {"self": f"/orders/{command.order_id}"}},
                status=202,
                headers={"Location": f"/orders/{command.order_id}"},
            )

    async def remember_key(
        key: str, fingerprint: str, command: PlaceOrder, accepted_at: float
    ) -> tuple[PlaceOrder, float]:
        """The order an Idempotency-Key stands for and when it was first accepted."""
        if len(key) > 200:
            raise HttpError(400, "bad_idempotency_key", "Idempotency-Key is over 200 characters")
        record = {
            "fingerprint": fingerprint,
            "command": command.model_dump(mode="json"),
            "accepted_at": accepted_at,
        }
        first = await desk.store.claim_key(key, record, settings.idempotency_ttl_s)
        if first["fingerprint"] != fingerprint:
            raise HttpError(
                422,
                "idempotency_key_reused",
                "Idempotency-Key was already used with a different body",
            )
        return PlaceOrder.model_validate(first["command"]), float(first["accepted_at"])

    @app.page("/orders/{order_id}")
    class Order(View):
        async def get(self, request: Request, order_id: str) -> Response:
            """The order; ``?wait=SECONDS`` long-polls until it is terminal."""
            try:
                wait = float(request.query.get("wait", "0"))
            except ValueError:
                return self.json(
                    {"error": "bad_query", "message": "wait: must be a number"}, status=400
                )
            deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT_S))
            while True:
                found = await find_order(order_id)
                if found is None and wait <= 0:
                    break
                if found is not None and found["status"] in TERMINAL:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                await desk.watch.wait(order_id, min(remaining, POLL_INTERVAL_S))
            if found is None:
                return self.json(
                    {"error": "not_found", "message": f"no order {order_id}"}, status=404
                )
            return self.json(found)

    @app.page("/orders/{order_id}/events")
    class OrderEvents(View):
        async def get(self, request: Request, order_id: str) -> Response:
            """The order's history, oldest first."""
            view = await desk.store.order(order_id)
            if view is None:
                if await desk.store.accepted(order_id) is not None:
                    return self.json({"order_id": order_id, "events": []})
                return self.json(
                    {"error": "not_found", "message": f"no order {order_id}"}, status=404
                )
            return self.json({"order_id": order_id, "events": await desk.store.events(order_id)})

    @app.page("/orders/{order_id}/cancel")
    class CancelOrderView(View):
        async def post(self, request: Request, order_id: str) -> Response:
            """Ask to cancel: 202 while in flight, 409 once terminal."""
            found = await find_order(order_id)
            if found is None:
                return self.json(
                    {"error": "not_found", "message": f"no order {order_id}"}, status=404
                )
            if found["status"] in TERMINAL:
                return self.json(
                    {
                        "error": "conflict",
                        "message": f"order is already {found['status']}",
                        "status": found["status"],
                    },
                    status=409,
                )
            await desk.send(CancelOrder(order_id=order_id), key=order_id, correlation_id=order_id)
            return self.json({"order_id": order_id, "status": "CANCEL_REQUESTED"}, status=202)

    @app.page("/inventory")
    class Inventory(View):
        async def get(self, request: Request) -> Response:
            """Every SKU's levels."""
            items = [_stock_response(v) for v in await desk.store.all_stock()]
            return self.json({"items": items})

    @app.page("/inventory/{sku}")
    class InventoryItem(View):
        async def get(self, request: Request, sku: str) -> Response:
            """One SKU's levels."""
            view = (await desk.store.stock(sku)).get(sku)
            if view is None:
                return self.json({"error": "not_found", "message": f"no SKU {sku}"}, status=404)
            return self.json(_stock_response(view))

    @app.page("/inventory/{sku}/restock")
    class Restock(View):
        async def post(self, request: Request, sku: str) -> Response:
            """Create a SKU or top it up."""
            try:
                body = parse_body(
                    RestockBody,
                    await _read_body(request, settings.max_body_bytes),
                    settings.max_body_bytes,
                )
                if body.unit_price is None and not await desk.store.stock(sku):
                    raise HttpError(
                        422,
                        "validation_error",
                        "unit_price: required for a new SKU",
                        problems=[{"field": "unit_price", "message": "required for a new SKU"}],
                    )
                command = RestockSku(
                    restock_id=request.headers.get("Idempotency-Key") or new_id(),
                    sku=sku,
                    quantity=body.quantity,
                    unit_price=body.unit_price,
                )
            except HttpError as exc:
                return _error(self, exc)
            except ValueError as exc:  # the SKU in the path is not a valid SKU
                return self.json(
                    {"error": "validation_error", "message": f"sku: {exc}"}, status=422
                )
            await desk.send(command, key=sku, correlation_id=command.restock_id)
            return self.json(
                {
                    "sku": sku,
                    "restock_id": command.restock_id,
                    "quantity": body.quantity,
                    "status": "ACCEPTED",
                },
                status=202,
            )
