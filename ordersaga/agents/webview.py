"""The webview group: the HTTP API and the read models it answers from.

It keeps its own changelog-backed views of orders (from ``orders.events``) and
stock (from ``inventory.events``), so queries never reach into another group's
tables. Run alone with ``faust -A ordersaga.agents.webview worker`` (port 6066).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from faust.types import StreamT

from ordersaga.app.node import Node
from ordersaga.app.topics import INVENTORY_EVENTS, ORDERS_EVENTS
from ordersaga.schemas.messages import Envelope, Message, OrderEvent, StockChanged
from ordersaga.web.routes import register_routes

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

node = Node("webview")
app = node.app

#: order id -> {"order": OrderSnapshot, "events": [...], "seq": last seq applied}
order_views = node.table("order_views")
#: SKU -> StockChanged (latest version)
stock_views = node.table("stock_views")

order_events = node.topic(ORDERS_EVENTS)
inventory_events = node.topic(INVENTORY_EVENTS)


class OrderWatch:
    """Wakes long-polling requests when an order's view changes (this process only)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def changed(self, order_id: str) -> None:
        """Wake whoever waits on ``order_id``."""
        event = self._events.pop(order_id, None)
        if event is not None:
            event.set()

    async def wait(self, order_id: str, timeout: float) -> None:
        """Wait until ``order_id`` changes or ``timeout`` seconds pass."""
        event = self._events.setdefault(order_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


class Desk:
    """What the HTTP routes read and write: the views, Redis and the command topics."""

    def __init__(self) -> None:
        self.node = node
        self.settings = node.settings
        self.watch = OrderWatch()
        self._redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        """The Redis client (connects on first use, inside the worker's event loop)."""
        if self._redis is None:
            self._redis = aioredis.from_url(
                self.settings.redis_url or "redis://127.0.0.1:6379/0", decode_responses=False
            )
        return self._redis

    def order_view(self, order_id: str) -> dict[str, Any] | None:
        """The order's view, if the order has been seen."""
        view = order_views.get(order_id)
        return dict(view) if view else None

    def stock_view(self, sku: str) -> dict[str, Any] | None:
        """The SKU's latest levels, if it exists."""
        view = stock_views.get(sku)
        return dict(view) if view else None

    def all_stock(self) -> Iterator[dict[str, Any]]:
        """Every SKU's latest levels."""
        for _, view in stock_views.items():
            if view:
                yield dict(view)

    async def send(self, message: Message, *, key: str, correlation_id: str) -> None:
        """Send a command from the HTTP edge."""
        await node.send(message, key=key, correlation_id=correlation_id)


desk = Desk()
register_routes(app, desk)


async def project_order_event(envelope: Envelope, message: Message) -> None:
    """Fold an order event into the order's view, once per sequence number."""
    if not isinstance(message, OrderEvent):
        raise ValueError(f"{envelope.type} does not belong on {ORDERS_EVENTS}")
    order_id = message.order.order_id
    view = order_views.get(order_id) or {"seq": 0, "events": []}
    if message.seq <= view["seq"]:
        return
    entry = {
        "seq": message.seq,
        "type": message.name,
        "status": message.order.status,
        "detail": message.detail,
        "at": envelope.occurred_at.isoformat(),
    }
    order_views[order_id] = {
        "seq": message.seq,
        "order": message.order.model_dump(mode="json"),
        "events": [*view["events"], entry],
    }
    desk.watch.changed(order_id)


async def project_stock_event(envelope: Envelope, message: Message) -> None:
    """Keep the latest levels of a SKU, ignoring older versions."""
    if not isinstance(message, StockChanged):
        raise ValueError(f"{envelope.type} does not belong on {INVENTORY_EVENTS}")
    view = stock_views.get(message.sku)
    if view and view["version"] >= message.version:
        return
    stock_views[message.sku] = message.model_dump(mode="json")


@app.agent(order_events)
async def project_orders(stream: StreamT) -> None:
    """Maintain the order views the web API answers from."""
    await node.consume(stream, project_order_event, "project_orders")


@app.agent(inventory_events)
async def project_stock(stream: StreamT) -> None:
    """Maintain the stock views the web API answers from."""
    await node.consume(stream, project_stock_event, "project_stock")
