"""The web view's routes: place, cancel and query orders; query and restock inventory.

Bad input never reaches Kafka: every body, path parameter, query parameter and
header a client controls is validated here first, against the bounds in
``ordersaga.schemas.bounds``, and each error answer names the field at fault.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

import faust
from aiohttp import web
from faust.web import Request, Response
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from ordersaga.app.codec import new_id
from ordersaga.app.http import ApiView, HttpError, invalid, require_json
from ordersaga.app.node import Node
from ordersaga.saga.inventory import merge_lines
from ordersaga.schemas.bounds import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_STOCK_LEVEL, Id, Sku
from ordersaga.schemas.http import CancelBody, PlaceOrderBody, RestockBody
from ordersaga.schemas.messages import CancelOrder, Message, PlaceOrder, RestockSku
from ordersaga.web.errors import parse_body
from ordersaga.web.store import ViewStore
from ordersaga.web.watch import OrderWatch, WatchFull

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MAX_WAIT_S = 60.0
# How often the long-poll watcher re-reads the watched orders: another worker may
# have projected the change.
POLL_INTERVAL_S = 0.1
_WAIT = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,3})?$")
# Visible ASCII only: keys end up in logs and Redis key names.
_IDEMPOTENCY_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$")
_ID = TypeAdapter(Id)
_SKU = TypeAdapter(Sku)


class Desk:
    """What the HTTP routes read and write: the Redis view store and the command topics."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self._store: ViewStore | None = None
        self.watch = self.new_watch()
        node.health_checks["redis"] = self._redis_answers

    def new_watch(self) -> OrderWatch:
        """The one long-poll watcher of this worker."""

        async def statuses(order_ids: list[str]) -> dict[str, str | None]:
            return await self.store.order_statuses(order_ids)

        return OrderWatch(
            statuses, TERMINAL, limit=self.settings.max_long_polls, interval_s=POLL_INTERVAL_S
        )

    @property
    def store(self) -> ViewStore:
        """The view store (its Redis pool connects on first use, in the worker's loop)."""
        if self._store is None:
            self._store = ViewStore.from_url(
                self.settings.redis_url_or_default,
                finished_ttl_s=self.settings.finished_view_ttl_s,
                refresh_after_s=self.settings.view_refresh_after_s,
                max_connections=self.settings.redis_max_connections,
                pool_timeout_s=self.settings.redis_pool_timeout_s,
            )
        return self._store

    async def _redis_answers(self) -> None:
        await self.store.redis.ping()

    async def send(self, message: Message, *, key: str, correlation_id: str) -> None:
        """Send a command from the HTTP edge; returns once the broker has it."""
        await self.node.send(message, key=key, correlation_id=correlation_id, acked=True)


V = TypeVar("V", bound=ApiView)
Route = Callable[..., Awaitable[Response]]


def answers(fn: Route) -> Route:
    """A route whose dependency failures answer 503 (with Retry-After), never 500."""

    @wraps(fn)
    async def route(self: ApiView, request: Request, **kwargs: Any) -> Response:
        try:
            return await fn(self, request, **kwargs)
        except RedisError as exc:
            raise HttpError(
                503,
                "dependency_down",
                f"the view store is unavailable ({type(exc).__name__})",
                problems=[{"field": "redis", "message": "unavailable"}],
                headers={"Retry-After": "1"},
            ) from None

    return route


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


async def _json_body(request: Request, max_bytes: int) -> bytes:
    require_json(cast(web.Request, request))
    return await _read_body(request, max_bytes)


def _path_id(value: str, field: str) -> str:
    try:
        return _ID.validate_python(value)
    except ValidationError:
        raise invalid(field, "not a valid id (1-64 of A-Z a-z 0-9 _ . : @ -)") from None


def _path_sku(value: str) -> str:
    try:
        return _SKU.validate_python(value)
    except ValidationError:
        raise invalid(
            "sku", "not a valid SKU (1-64 of A-Z a-z 0-9 _ . -, a letter or digit first)"
        ) from None


def _wait_seconds(request: Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    if not _WAIT.match(raw) or float(raw) > MAX_WAIT_S:
        raise invalid("wait", f"must be a number of seconds from 0 to {MAX_WAIT_S:.0f}")
    return float(raw)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise invalid(
            "Idempotency-Key",
            f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters",
        )
    return key


def _not_found(what: str) -> HttpError:
    return HttpError(404, "not_found", f"no {what}")


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
    class Orders(ApiView):
        @answers
        async def post(self, request: Request) -> Response:
            """Place an order: 202 with its id; Idempotency-Key makes retries safe."""
            body = await _json_body(request, settings.max_body_bytes)
            key = _idempotency_key(request)
            order = parse_body(PlaceOrderBody, body, settings.max_body_bytes)
            items = merge_lines(order.items)
            known = await desk.store.stock(*(line.sku for line in items))
            for i, line in enumerate(items):
                if line.sku not in known:
                    raise invalid(
                        f"items[{i}].sku", f"unknown SKU {line.sku!r}", error="unknown_sku"
                    )
            order_id = f"ord_{new_id()[:24]}"
            accepted_at = time.time()
            if key:
                order_id, accepted_at = await remember_key(
                    "order", key, hashlib.sha256(body).hexdigest(), order_id, accepted_at
                )
            # Built from the body, so a retry with the same body rebuilds the same
            # command: the key's record needs no copy of the payment token.
            command = PlaceOrder(
                order_id=order_id,
                customer_id=order.customer_id,
                items=items,
                payment_token=order.payment_token,
                shipping_address=order.shipping_address,
            )
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
        kind: str, key: str, fingerprint: str, minted_id: str, accepted_at: float
    ) -> tuple[str, float]:
        """The id an Idempotency-Key stands for and when it was first used; 422 if reused."""
        record = {"fingerprint": fingerprint, "id": minted_id, "accepted_at": accepted_at}
        first = await desk.store.claim_key(kind, key, record, settings.idempotency_ttl_s)
        if first.get("fingerprint") != fingerprint:
            raise invalid(
                "Idempotency-Key",
                "was already used with a different request",
                error="idempotency_key_reused",
            )
        return str(first["id"]), float(first["accepted_at"])

    @app.page("/orders/{order_id}")
    class Order(ApiView):
        @answers
        async def get(self, request: Request, order_id: str) -> Response:
            """The order; ``?wait=SECONDS`` long-polls until it is terminal."""
            order_id = _path_id(order_id, "order_id")
            wait = _wait_seconds(request)
            found = await find_order(order_id)
            if found is None:
                raise _not_found(f"order {order_id}")
            deadline = time.monotonic() + wait
            while found["status"] not in TERMINAL:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    desk.node.metrics.long_polls.inc()
                    await desk.watch.wait(order_id, remaining)
                except WatchFull:
                    raise HttpError(
                        503,
                        "too_many_waiters",
                        f"{desk.watch.limit} long-polls are held here already; retry, "
                        "or read without wait",
                        problems=[{"field": "wait", "message": "too many concurrent long-polls"}],
                        headers={"Retry-After": "1"},
                    ) from None
                finally:
                    desk.node.metrics.long_polls.dec()
                found = await find_order(order_id) or found
            return self.json(found)

    @app.page("/orders/{order_id}/events")
    class OrderEvents(ApiView):
        @answers
        async def get(self, request: Request, order_id: str) -> Response:
            """The order's history, oldest first."""
            order_id = _path_id(order_id, "order_id")
            view = await desk.store.order(order_id)
            if view is None:
                if await desk.store.accepted(order_id) is not None:
                    return self.json({"order_id": order_id, "events": []})
                raise _not_found(f"order {order_id}")
            return self.json({"order_id": order_id, "events": await desk.store.events(order_id)})

    @app.page("/orders/{order_id}/cancel")
    class CancelOrderView(ApiView):
        @answers
        async def post(self, request: Request, order_id: str) -> Response:
            """Ask to cancel: 202 while in flight, 409 once terminal."""
            order_id = _path_id(order_id, "order_id")
            body = await _json_body(request, settings.max_body_bytes)
            if body.strip():
                parse_body(CancelBody, body, settings.max_body_bytes)
            found = await find_order(order_id)
            if found is None:
                raise _not_found(f"order {order_id}")
            if found["status"] in TERMINAL:
                conflict = HttpError(
                    409,
                    "conflict",
                    f"order is already {found['status']}",
                    problems=[{"field": "order_id", "message": f"order is {found['status']}"}],
                )
                conflict.body["status"] = found["status"]
                raise conflict
            await desk.send(CancelOrder(order_id=order_id), key=order_id, correlation_id=order_id)
            return self.json({"order_id": order_id, "status": "CANCEL_REQUESTED"}, status=202)

    @app.page("/inventory")
    class Inventory(ApiView):
        @answers
        async def get(self, request: Request) -> Response:
            """Every SKU's levels."""
            items = [_stock_response(v) for v in await desk.store.all_stock()]
            return self.json({"items": items})

    @app.page("/inventory/{sku}")
    class InventoryItem(ApiView):
        @answers
        async def get(self, request: Request, sku: str) -> Response:
            """One SKU's levels."""
            sku = _path_sku(sku)
            view = (await desk.store.stock(sku)).get(sku)
            if view is None:
                raise _not_found(f"SKU {sku}")
            return self.json(_stock_response(view))

    @app.page("/inventory/{sku}/restock")
    class Restock(ApiView):
        @answers
        async def post(self, request: Request, sku: str) -> Response:
            """Create a SKU or top it up."""
            sku = _path_sku(sku)
            raw = await _json_body(request, settings.max_body_bytes)
            key = _idempotency_key(request)
            body = parse_body(RestockBody, raw, settings.max_body_bytes)
            current = (await desk.store.stock(sku)).get(sku)
            if current is None:
                if body.unit_price is None:
                    raise invalid("unit_price", "required for a new SKU")
                if await desk.store.sku_count() >= settings.max_skus:
                    raise invalid(
                        "sku",
                        f"the catalogue holds {settings.max_skus} SKUs, its limit",
                        status=409,
                        error="catalogue_full",
                    )
            elif int(current["available"]) + body.quantity > MAX_STOCK_LEVEL:
                raise invalid("quantity", f"would bring {sku} over {MAX_STOCK_LEVEL} available")
            restock_id = f"rst_{new_id()[:24]}"
            if key:
                # The key is kept in Redis with a TTL, never in the SKU record: only
                # the fixed-size restock id travels, whatever the client sends.
                fingerprint = hashlib.sha256(sku.encode() + b"\0" + raw).hexdigest()
                restock_id, _ = await remember_key(
                    "restock", key, fingerprint, restock_id, time.time()
                )
            command = RestockSku(
                restock_id=restock_id, sku=sku, quantity=body.quantity, unit_price=body.unit_price
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
