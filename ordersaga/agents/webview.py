"""The webview group: the HTTP API and the read model it answers from.

Its projections fold ``orders.events`` and ``inventory.events`` into a read
model in Redis (see ``ordersaga.web.store`` for why Redis and not a Faust
table), so whichever webview worker receives a query answers it, and no query
reaches into another group's tables. Run alone with
``faust -A ordersaga.agents.webview worker`` (port 6066).
"""

from __future__ import annotations

import logging
import time

from faust.types import StreamT

from ordersaga.adapters.queue_probe import QueueProbe
from ordersaga.schemas.messages import (
    CustomerChanged,
    Envelope,
    ForgetOrders,
    OrderEvent,
    PlaceOrder,
    RepublishOrder,
    ServiceHeartbeat,
    StockChanged,
)
from ordersaga.schemas.status import TERMINAL
from ordersaga.shell.dispatch import Dispatch
from ordersaga.shell.groups import GROUP_NAMES
from ordersaga.shell.topics import (
    ALL_DLQ_TOPICS,
    CUSTOMERS_EVENTS,
    INVENTORY_EVENTS,
    ORDERS_EVENTS,
    SERVICES,
)
from ordersaga.shell.worker import Worker
from ordersaga.web.desk import Desk
from ordersaga.web.routes import register_routes

log = logging.getLogger(__name__)
# How often the dead-letter topics' sizes are read from the broker: two requests each time.
DEAD_LETTER_GAUGE_S = 15.0

node = Worker("webview")
app = node.app
desk = Desk(node)
register_routes(app, desk)


@app.task
async def say_whether_auth_is_on() -> None:
    """Log at start whether tokens are required: a worker started alone says it too."""
    settings = node.settings
    if settings.auth_enabled:
        log.info("auth on: %s bearer tokens required", settings.auth_algorithm)
    else:
        log.warning("auth OFF: every route is open; set ORDERSAGA_AUTH_SECRET to require tokens")


order_events = node.topic(ORDERS_EVENTS)
inventory_events = node.topic(INVENTORY_EVENTS)
customer_events = node.topic(CUSTOMERS_EVENTS)
heartbeats = node.topic(SERVICES)


async def _views_expire_by_ttl(envelope: Envelope, message: ForgetOrders) -> str:
    # Meant for the groups with tables; finished views expire in Redis by TTL.
    return "unchanged"


project_order_event = Dispatch(f"on {ORDERS_EVENTS}", forget=_views_expire_by_ttl)
project_stock_event = Dispatch(f"on {INVENTORY_EVENTS}", forget=None)
project_customer_event = Dispatch(f"on {CUSTOMERS_EVENTS}", forget=None)
keep_registry = Dispatch(f"on {SERVICES}", forget=None)


@project_order_event.on(OrderEvent)
async def fold_order_event(envelope: Envelope, message: OrderEvent) -> None:
    """Fold an order event into the order's view, once per sequence number."""
    order = message.order
    entry = {
        "seq": message.seq,
        "type": message.name,
        "status": order.status,
        "detail": message.detail,
        "at": envelope.occurred_at.isoformat(),
        "at_epoch": envelope.occurred_at.timestamp(),
    }
    await desk.store.project_order(
        order.order_id,
        message.seq,
        order.model_dump(mode="json"),
        entry,
        terminal=order.status in TERMINAL,
        placed_at=order.placed_at.timestamp(),
    )
    desk.watch.changed(order.order_id)


@project_stock_event.on(StockChanged)
async def fold_stock_event(envelope: Envelope, message: StockChanged) -> None:
    """Keep the latest levels of a SKU, ignoring older versions."""
    await desk.store.project_stock(message.sku, message.version, message.model_dump(mode="json"))


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
async def keep_services(stream: StreamT) -> None:
    """Maintain the registry of live workers the web API answers from."""
    await node.consume(stream, keep_registry, "keep_services")


@app.agent(customer_events)
async def project_customers(stream: StreamT) -> None:
    """Maintain the customer views the web API answers from."""
    await node.consume(stream, project_customer_event, "project_customers")


@app.agent(order_events)
async def project_orders(stream: StreamT) -> None:
    """Maintain the order views the web API answers from."""
    await node.consume(stream, project_order_event, "project_orders")


@app.agent(inventory_events)
async def project_stock(stream: StreamT) -> None:
    """Maintain the stock views the web API answers from."""
    await node.consume(stream, project_stock_event, "project_stock")


@node.timer(interval=node.settings.deadline_scan_interval_s)
async def redrive_unconfirmed_orders() -> None:
    """Send PlaceOrder again for accepted orders of which no event is projected yet.

    The HTTP edge answers 202 once the broker has the command, but a consumer can
    still skip it (seen under SIGKILL: an accepted order never started). Each
    webview worker claims due orders from Redis, so one re-sends each; duplicates
    are harmless since the orchestrator ignores a PlaceOrder for a saga it has.
    """
    settings = node.settings
    now = time.time()
    for record in await desk.store.claim_unconfirmed(now, settings.redrive_after_s):
        # Kept by whichever webview accepted the order, maybe a newer one: its added
        # fields are ignored, as when reading a topic.
        command = PlaceOrder.model_validate(record["command"], extra="ignore")
        if now - record["accepted_at"] >= settings.redrive_window_s:
            # The orchestrator may have run and forgotten it: sending could run it twice.
            await desk.store.drop_unconfirmed(command.order_id)
            node.metrics.orders_unstarted.inc()
            log.error(
                "order %s: no event projected %.0f s after acceptance; not re-sent",
                command.order_id,
                now - record["accepted_at"],
            )
            continue
        await node.send(
            command,
            key=command.order_id,
            correlation_id=record.get("correlation_id") or command.order_id,
            event_id=f"{command.order_id}:place:{now:.3f}",
            acked=True,
        )
        node.metrics.orders_redriven.inc()


@node.timer(interval=node.settings.deadline_scan_interval_s)
async def refresh_stale_order_views() -> None:
    """Ask for the latest event of open order views that stayed unchanged too long.

    A consumer can skip messages around a rebalance, and a view that missed its
    order's last event would show it in flight forever. The orchestrator answers
    RepublishOrder with that event again; a view that has it ignores the copy.
    """
    for order_id in await desk.store.claim_stale_views(time.time()):
        await node.send(RepublishOrder(order_id=order_id), key=order_id, correlation_id=order_id)
        node.metrics.views_refreshed.inc()


dead_letter_probe = QueueProbe(node.settings.bootstrap_servers)


@node.timer(interval=node.settings.heartbeat_s)
async def gauge_live_workers() -> None:
    """Set the gauge of live workers per group from the registry (an alert watches it)."""
    live = dict.fromkeys(GROUP_NAMES, 0)
    for service in await desk.registry.services():
        if service["state"] == "up" and service["group"] in live:
            live[service["group"]] += 1
    for group_name, count in live.items():
        node.metrics.group_live_workers.labels(group_name).set(count)


@node.timer(interval=DEAD_LETTER_GAUGE_S)
async def gauge_dead_letters() -> None:
    """Set the gauge of messages each dead-letter topic holds (an alert watches it grow)."""
    held = await dead_letter_probe.messages_held(list(ALL_DLQ_TOPICS), node.settings.partitions)
    for topic, count in held.items():
        node.metrics.dead_letter_depth.labels(topic).set(count)
    desk.dead_letters = held
