"""The shipping group: shipments per order and the simulated carrier.

Run alone with ``faust -A ordersaga.agents.shipping worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.app.node import Node
from ordersaga.app.topics import SHIPPING_COMMANDS
from ordersaga.saga.shipping import ShipmentRecord, cancel, prepare
from ordersaga.schemas.messages import (
    CancelShipment,
    Envelope,
    ForgetOrders,
    Message,
    PrepareShipment,
)

node = Node("shipping")
app = node.app

#: order id -> ShipmentRecord
shipments = node.table("shipments")
shipping_commands = node.topic(SHIPPING_COMMANDS)


async def book_shipment(envelope: Envelope, message: Message) -> str | None:
    """Prepare or cancel an order's shipment once, answering repeats as the first time."""
    if isinstance(message, ForgetOrders):
        return node.forget(shipments, message.order_ids)
    if not isinstance(message, PrepareShipment | CancelShipment):
        raise ValueError(f"{envelope.type} does not belong on {SHIPPING_COMMANDS}")
    raw = shipments.get(message.order_id)
    before = ShipmentRecord.model_validate(raw) if raw else None
    reply: Message
    if isinstance(message, PrepareShipment):
        after, reply = prepare(before, message)
    else:
        after, reply = cancel(before, message)
    value = node.fit(after) if after != before else None
    await node.send(
        reply, key=message.order_id, cause=envelope, event_id=f"{envelope.event_id}:reply"
    )
    if value is not None:
        shipments[message.order_id] = value
    return None


@app.agent(shipping_commands)
async def ship_orders(stream: StreamT) -> None:
    """Book and cancel shipments with the simulated carrier."""
    await node.consume(stream, book_shipment, "ship_orders")
