"""The notifications group: tells customers how their orders ended.

Run alone with ``faust -A ordersaga.agents.notifications worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.app.node import Node
from ordersaga.app.topics import NOTIFICATIONS, ORDERS_EVENTS
from ordersaga.saga.notifications import notification_for
from ordersaga.schemas.messages import Envelope, ForgetOrders, Message, OrderEvent

node = Node("notifications")
app = node.app

#: order id -> the status the customer was told
notified = node.table("notified")
order_events = node.topic(ORDERS_EVENTS)


async def notify_customer(envelope: Envelope, message: Message) -> str | None:
    """Send the customer one notification per order outcome."""
    if isinstance(message, ForgetOrders):
        return node.forget(notified, message.order_ids)
    if not isinstance(message, OrderEvent):
        raise ValueError(f"{envelope.type} does not belong on {ORDERS_EVENTS}")
    notification = notification_for(message)
    if notification is None or notified.get(message.order.order_id) == notification.status:
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


@app.agent(order_events)
async def notify_customers(stream: StreamT) -> None:
    """Turn order outcomes into customer notifications."""
    await node.consume(stream, notify_customer, "notify_customers")
