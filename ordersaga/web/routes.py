"""The web view's routes: place, cancel and query orders; query and restock inventory.

Bad input never reaches Kafka: every body is validated here first, and each
error answer names the field at fault.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any, cast

import faust
import orjson
from aiohttp import web
from faust.web import Request, Response, View

from ordersaga.app.codec import new_id
from ordersaga.saga.inventory import merge_lines
from ordersaga.schemas.http import PlaceOrderBody, RestockBody
from ordersaga.schemas.messages import CancelOrder, PlaceOrder, RestockSku
from ordersaga.web.errors import HttpError, parse_body

if TYPE_CHECKING:
    from ordersaga.agents.webview import Desk

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MAX_WAIT_S = 60.0
IDEMPOTENCY_PREFIX = "ordersaga:idempotency:"
ACCEPTED_PREFIX = "ordersaga:accepted:"


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


def register_routes(app: faust.App, desk: Desk) -> None:
    """Add the HTTP API to the webview app."""
    settings = desk.settings

    async def accepted_order(order_id: str) -> dict[str, Any] | None:
        """An order accepted over HTTP that the views have not caught up with yet."""
        raw = await desk.redis.get(ACCEPTED_PREFIX + order_id)
        return orjson.loads(raw) if raw else None

    async def find_order(order_id: str) -> dict[str, Any] | None:
        view = desk.order_view(order_id)
        if view is not None:
            return _order_response(view)
        return await accepted_order(order_id)

    @app.page("/orders")
    class Orders(View):
        async def post(self, request: Request) -> Response:
            """Place an order: 202 with its id; Idempotency-Key makes retries safe."""
            try:
                body = await _read_body(request, settings.max_body_bytes)
                order = parse_body(PlaceOrderBody, body, settings.max_body_bytes)
                items = merge_lines(order.items)
                for i, line in enumerate(items):
                    if desk.stock_view(line.sku) is None:
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
                if key:
                    command = await remember_key(key, fingerprint, command)
            except HttpError as exc:
                return _error(self, exc)
            now = time.time()
            accepted = {
                "order_id": command.order_id,
                "status": "PENDING",
                "failure_reason": None,
                "customer_id": command.customer_id,
                "items": [line.model_dump() for line in command.items],
                "lines": [],
                "total": None,
                "placed_at": now,
            }
            await desk.redis.set(
                ACCEPTED_PREFIX + command.order_id,
                orjson.dumps(accepted),
                ex=settings.idempotency_ttl_s,
            )
            # A retried request re-sends the same PlaceOrder: the orchestrator
            # ignores it if the first arrived, and runs it if the first was lost.
            await desk.send(command, key=command.order_id, correlation_id=command.order_id)
            return self.json(
                {**accepted, "links": {"self": f"/orders/{command.order_id}"}},
                status=202,
                headers={"Location": f"/orders/{command.order_id}"},
            )

    async def remember_key(key: str, fingerprint: str, command: PlaceOrder) -> PlaceOrder:
        """The order an Idempotency-Key stands for; the first request under it wins."""
        if len(key) > 200:
            raise HttpError(400, "bad_idempotency_key", "Idempotency-Key is over 200 characters")
        record = {"fingerprint": fingerprint, "command": command.model_dump(mode="json")}
        redis_key = IDEMPOTENCY_PREFIX + key
        stored = await desk.redis.set(
            redis_key, orjson.dumps(record), nx=True, ex=settings.idempotency_ttl_s
        )
        if stored:
            return command
        raw = await desk.redis.get(redis_key)
        if raw is None:  # expired between the two calls: this request is the first
            return await remember_key(key, fingerprint, command)
        first = orjson.loads(raw)
        if first["fingerprint"] != fingerprint:
            raise HttpError(
                422,
                "idempotency_key_reused",
                "Idempotency-Key was already used with a different body",
            )
        return PlaceOrder.model_validate(first["command"])

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
                # Polls too, so a change projected by another worker is seen as well.
                await desk.watch.wait(order_id, min(remaining, 0.5))
            if found is None:
                return self.json(
                    {"error": "not_found", "message": f"no order {order_id}"}, status=404
                )
            return self.json(found)

    @app.page("/orders/{order_id}/events")
    class OrderEvents(View):
        async def get(self, request: Request, order_id: str) -> Response:
            """The order's history, oldest first."""
            view = desk.order_view(order_id)
            if view is None:
                if await accepted_order(order_id) is not None:
                    return self.json({"order_id": order_id, "events": []})
                return self.json(
                    {"error": "not_found", "message": f"no order {order_id}"}, status=404
                )
            return self.json({"order_id": order_id, "events": view["events"]})

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
            items = sorted((_stock_response(v) for v in desk.all_stock()), key=lambda v: v["sku"])
            return self.json({"items": items})

    @app.page("/inventory/{sku}")
    class InventoryItem(View):
        async def get(self, request: Request, sku: str) -> Response:
            """One SKU's levels."""
            view = desk.stock_view(sku)
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
                if body.unit_price is None and desk.stock_view(sku) is None:
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
