"""The notifications group: tells customers how their orders ended.

Run alone with ``faust -A ordersaga.agents.notifications worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.app.dispatch import Dispatch
from ordersaga.app.node import Node
from ordersaga.app.topics import NOTIFICATIONS, ORDERS_EVENTS
from ordersaga.saga.notifications import notification_for
from ordersaga.schemas.messages import Envelope, OrderEvent
from ordersaga.tables import NOTIFIED

node = Node("notifications")
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
    return None


@app.agent(node.topic(ORDERS_EVENTS))
async def notify_customers(stream: StreamT) -> None:
    """Turn order outcomes into customer notifications."""
    await node.consume(stream, notify_customer, "notify_customers")
