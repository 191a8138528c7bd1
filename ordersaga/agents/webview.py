"""The webview group: the HTTP API and the read model it answers from.

Its projections fold ``orders.events`` and ``inventory.events`` into a read
model in Redis (see ``ordersaga.web.read_model`` for why Redis and not a Faust
table), so whichever webview worker receives a query answers it, and no query
reaches into another group's tables. Run alone with
``faust -A ordersaga.agents.webview worker`` (port 6066). :func:`build` makes
the group from explicit settings; the module's attributes are those of the
default group (``ordersaga.agents.building``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.adapters.queue_probe import QueueProbe
from ordersaga.agents import repairs
from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.schemas.heartbeats import ServiceHeartbeat
from ordersaga.schemas.messages import (
    CustomerChanged,
    Envelope,
    ForgetOrders,
    OrderEvent,
    StockChanged,
)
from ordersaga.schemas.status import TERMINAL
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.groups import GROUP_NAMES
from ordersaga.shell.node import ManyHandler
from ordersaga.shell.topics import (
    ALL_DLQ_TOPICS,
    CUSTOMERS_EVENTS,
    INVENTORY_EVENTS,
    ORDERS_EVENTS,
    SERVICES,
)
from ordersaga.shell.worker import Worker
from ordersaga.web.desk import Desk
from ordersaga.web.read_model import OrderProjection
from ordersaga.web.routes import register_routes

log = logging.getLogger(__name__)
# How often the dead-letter topics' sizes are read from the broker: two requests each time.
DEAD_LETTER_GAUGE_S = 15.0


async def _views_expire_by_ttl(envelope: Envelope, message: ForgetOrders) -> str:
    # Meant for the groups with tables; finished views expire in Redis by TTL.
    return "unchanged"


def _projection(envelope: Envelope, message: OrderEvent) -> OrderProjection:
    """What an order event changes in its order's view: snapshot and history line."""
    order = message.order
    at, at_epoch = envelope.occurred_at.isoformat(), envelope.occurred_at.timestamp()
    entries = [
        {
            "seq": entry.seq,
            "type": entry.name,
            "status": entry.status,
            "detail": entry.detail,
            "at": at,
            "at_epoch": at_epoch,
        }
        for entry in message.earlier
    ]
    entries.append(
        {
            "seq": message.seq,
            "type": message.name,
            "status": order.status,
            "detail": message.detail,
            "at": at,
            "at_epoch": at_epoch,
        }
    )
    return OrderProjection(
        order.order_id,
        message.seq,
        order.model_dump(mode="json"),
        entries[-1],
        terminal=order.status in TERMINAL,
        placed_at=order.placed_at.timestamp(),
        earlier=tuple(entries[:-1]),
    )


@dataclass
class Webview:
    """One webview group: its worker, the desk its routes answer from, projections and loops."""

    node: Worker
    app: faust.App
    desk: Desk
    say_whether_auth_is_on: Callable[[], Awaitable[None]]
    order_events: faust.TopicT
    inventory_events: faust.TopicT
    customer_events: faust.TopicT
    heartbeats: faust.TopicT
    project_order_event: Dispatch
    project_stock_event: Dispatch
    project_customer_event: Dispatch
    keep_registry: Dispatch
    fold_order_event: Handler
    fold_order_events: ManyHandler
    fold_stock_event: Handler
    fold_stock_events: ManyHandler
    fold_customer_event: Handler
    keep_heartbeat: Handler
    keep_services: AgentT[Any]
    project_customers: AgentT[Any]
    project_orders: AgentT[Any]
    project_stock: AgentT[Any]
    redrive_repair: Callable[[], Awaitable[None]]
    refresh_repair: Callable[[], Awaitable[None]]
    dead_letter_probe: QueueProbe
    gauge_live_workers: Callable[[], Awaitable[None]]
    gauge_dead_letters: Callable[[], Awaitable[None]]


def build(settings: Settings) -> Webview:
    """The webview group, configured from ``settings`` alone."""
    node = Worker("webview", settings)
    app = node.app
    desk = Desk(node)
    register_routes(app, desk)

    @app.task
    @toplevel
    async def say_whether_auth_is_on() -> None:
        """Log at start whether tokens are required: a worker started alone says it too."""
        if settings.auth_enabled:
            log.info("auth on: %s bearer tokens required", settings.auth_algorithm)
        else:
            log.warning(
                "auth OFF: every route is open; set ORDERSAGA_AUTH_SECRET to require tokens"
            )

    order_events = node.topic(ORDERS_EVENTS)
    inventory_events = node.topic(INVENTORY_EVENTS)
    customer_events = node.topic(CUSTOMERS_EVENTS)
    heartbeats = node.topic(SERVICES)

    project_order_event = Dispatch(f"on {ORDERS_EVENTS}", forget=_views_expire_by_ttl)
    project_stock_event = Dispatch(f"on {INVENTORY_EVENTS}", forget=None)
    project_customer_event = Dispatch(f"on {CUSTOMERS_EVENTS}", forget=None)
    keep_registry = Dispatch(f"on {SERVICES}", forget=None)

    @project_order_event.on(OrderEvent)
    async def fold_order_event(envelope: Envelope, message: OrderEvent) -> None:
        """Fold an order event into the order's view, once per sequence number."""
        await desk.store.project_order(*_projection(envelope, message))
        desk.watch.changed(message.order.order_id)

    async def fold_order_events(
        pairs: list[tuple[Envelope, OrderEvent]],
    ) -> list[str | Exception | None]:
        """Fold a fetch's order events in one Redis round trip (each still once per seq)."""
        results = await desk.store.project_orders(
            [_projection(envelope, message) for envelope, message in pairs]
        )
        for (_, message), result in zip(pairs, results, strict=True):
            if not isinstance(result, Exception):
                desk.watch.changed(message.order.order_id)
        return [result if isinstance(result, Exception) else None for result in results]

    @project_stock_event.on(StockChanged)
    async def fold_stock_event(envelope: Envelope, message: StockChanged) -> None:
        """Keep the latest levels of a SKU, ignoring older versions."""
        await desk.store.project_stock(
            message.sku, message.version, message.model_dump(mode="json")
        )

    async def fold_stock_events(
        pairs: list[tuple[Envelope, StockChanged]],
    ) -> list[str | Exception | None]:
        """Fold a fetch's stock events in one round trip: only each SKU's newest counts."""
        newest: dict[str, int] = {}
        for i, (_, message) in enumerate(pairs):
            kept = newest.get(message.sku)
            if kept is None or message.version > pairs[kept][1].version:
                newest[message.sku] = i
        results = await desk.store.project_stocks(
            [
                (pairs[i][1].sku, pairs[i][1].version, pairs[i][1].model_dump(mode="json"))
                for i in newest.values()
            ]
        )
        outcome: list[str | Exception | None] = ["unchanged"] * len(pairs)
        for i, result in zip(newest.values(), results, strict=True):
            outcome[i] = result if isinstance(result, Exception) else None
        return outcome

    @project_customer_event.on(CustomerChanged)
    async def fold_customer_event(envelope: Envelope, message: CustomerChanged) -> None:
        """Keep the latest version of a customer's account."""
        await desk.customers.project(
            message.customer_id, message.version, message.model_dump(mode="json")
        )

    @keep_registry.on(ServiceHeartbeat)
    async def keep_heartbeat(envelope: Envelope, message: ServiceHeartbeat) -> str | None:
        """Keep a worker's latest heartbeat in the registry."""
        if message.group not in GROUP_NAMES:
            raise ValueError(f"{message.group!r} is not an agent group")
        kept = await desk.registry.keep(message.model_dump(mode="json"), message.sent_at)
        return None if kept else "unchanged"

    @app.agent(heartbeats)
    @toplevel
    async def keep_services(stream: StreamT) -> None:
        """Maintain the registry of live workers the web API answers from."""
        await node.consume(stream, keep_registry, "keep_services")

    @app.agent(customer_events)
    @toplevel
    async def project_customers(stream: StreamT) -> None:
        """Maintain the customer views the web API answers from."""
        await node.consume(stream, project_customer_event, "project_customers")

    @app.agent(order_events)
    @toplevel
    async def project_orders(stream: StreamT) -> None:
        """Maintain the order views the web API answers from."""
        await node.consume(
            stream,
            project_order_event,
            "project_orders",
            many=fold_order_events,
            many_types=(OrderEvent,),
        )

    @app.agent(inventory_events)
    @toplevel
    async def project_stock(stream: StreamT) -> None:
        """Maintain the stock views the web API answers from."""
        await node.consume(
            stream,
            project_stock_event,
            "project_stock",
            many=fold_stock_events,
            many_types=(StockChanged,),
        )

    # The repair loops (see ordersaga.agents.repairs for what each makes up for).
    redrive_repair = node.timer(interval=settings.deadline_scan_interval_s)(
        repairs.as_timer(repairs.redrive_unconfirmed_orders, node, desk)
    )
    refresh_repair = node.timer(interval=settings.deadline_scan_interval_s)(
        repairs.as_timer(repairs.refresh_stale_order_views, node, desk)
    )

    dead_letter_probe = QueueProbe(settings.bootstrap_servers)

    @node.timer(interval=settings.heartbeat_s)
    @toplevel
    async def gauge_live_workers() -> None:
        """Set the gauge of live workers per group from the registry (an alert watches it)."""
        live = dict.fromkeys(GROUP_NAMES, 0)
        for service in await desk.registry.services():
            if service["state"] == "up" and service["group"] in live:
                live[service["group"]] += 1
        for group_name, count in live.items():
            node.metrics.group_live_workers.labels(group_name).set(count)

    @node.timer(interval=DEAD_LETTER_GAUGE_S)
    @toplevel
    async def gauge_dead_letters() -> None:
        """Set the gauge of messages each dead-letter topic holds (an alert watches it grow)."""
        held = await dead_letter_probe.messages_held(list(ALL_DLQ_TOPICS), settings.partitions)
        for topic, count in held.items():
            node.metrics.dead_letter_depth.labels(topic).set(count)
        desk.dead_letters = held

    return Webview(
        node=node,
        app=app,
        desk=desk,
        say_whether_auth_is_on=say_whether_auth_is_on,
        order_events=order_events,
        inventory_events=inventory_events,
        customer_events=customer_events,
        heartbeats=heartbeats,
        project_order_event=project_order_event,
        project_stock_event=project_stock_event,
        project_customer_event=project_customer_event,
        keep_registry=keep_registry,
        fold_order_event=fold_order_event,
        fold_order_events=fold_order_events,
        fold_stock_event=fold_stock_event,
        fold_stock_events=fold_stock_events,
        fold_customer_event=fold_customer_event,
        keep_heartbeat=keep_heartbeat,
        keep_services=keep_services,
        project_customers=project_customers,
        project_orders=project_orders,
        project_stock=project_stock,
        redrive_repair=redrive_repair,
        refresh_repair=refresh_repair,
        dead_letter_probe=dead_letter_probe,
        gauge_live_workers=gauge_live_workers,
        gauge_dead_letters=gauge_dead_letters,
    )


default = DefaultGroup(__name__, build, Webview)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
