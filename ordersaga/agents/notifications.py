"""The notifications group: tells customers how their orders ended.

Run alone with ``faust -A ordersaga.agents.notifications worker``.
"""

from __future__ import annotations

import logging

from faust.types import StreamT

from ordersaga.saga.notifications import notification_for, operator_notice
from ordersaga.schemas.messages import Envelope, LowStock, OrderEvent, StockChanged
from ordersaga.shell.dispatch import Dispatch
from ordersaga.shell.topics import INVENTORY_EVENTS, NOTIFICATIONS, ORDERS_EVENTS
from ordersaga.shell.worker import Worker
from ordersaga.tables import NOTIFIED

log = logging.getLogger(__name__)

node = Worker("notifications")
app = node.app
notified = node.table(NOTIFIED)
notify_customer = Dispatch(f"on {ORDERS_EVENTS}", forget=notified)


@notify_customer.on(OrderEvent)
async def notify_once(envelope: Envelope, message: OrderEvent) -> str | None:
    """Send the customer one notification per order outcome."""
    notification = notification_for(message)
    if notification is None or notified.load(message.order.order_id) == notification.status:
        return "unchanged"
    await node.send(
        notification,
        key=notification.customer_id,
        cause=envelope,
        topic=NOTIFICATIONS,
        event_id=f"{message.order.order_id}:notified",
    )
    notified[message.order.order_id] = notification.status
    log.info("customer notified: %s", notification.status)
    return None


# Keyed by SKU, so each SKU's notices are kept on its inventory.events partition.
notify_operators = Dispatch(f"on {INVENTORY_EVENTS}", forget=None)


async def _levels_are_not_news(envelope: Envelope, message: StockChanged) -> str:
    return "unchanged"


notify_operators.on(StockChanged)(_levels_are_not_news)


@notify_operators.on(LowStock)
async def notify_low_stock(envelope: Envelope, message: LowStock) -> str | None:
    """Tell the operators once per crossing that a SKU is low."""
    key = f"low:{message.sku}"
    last = notified.load(key)
    if last is not None and int(last) >= message.version:
        return "unchanged"
    await node.send(
        operator_notice(message),
        key=message.sku,
        cause=envelope,
        topic=NOTIFICATIONS,
        event_id=f"{envelope.event_id}:notified",
    )
    notified[key] = str(message.version)
    return None


@app.agent(node.topic(INVENTORY_EVENTS))
async def notify_low_stock_skus(stream: StreamT) -> None:
    """Turn low-stock crossings into notices on the operators' channel."""
    await node.consume(stream, notify_operators, "notify_low_stock_skus")


@app.agent(node.topic(ORDERS_EVENTS))
async def notify_customers(stream: StreamT) -> None:
    """Turn order outcomes into customer notifications."""
    await node.consume(stream, notify_customer, "notify_customers")
