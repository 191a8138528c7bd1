"""The shipping group: shipments per order and the simulated carrier.

Run alone with ``faust -A ordersaga.agents.shipping worker``.
"""

from __future__ import annotations

from faust.types import StreamT

from ordersaga.saga.shipping import cancel, prepare
from ordersaga.schemas.messages import CancelShipment, Envelope, Message, PrepareShipment
from ordersaga.shell.dispatch import Dispatch
from ordersaga.shell.topics import SHIPPING_COMMANDS
from ordersaga.shell.worker import Worker
from ordersaga.tables import SHIPMENTS

node = Worker("shipping")
app = node.app
shipments = node.table(SHIPMENTS)
book_shipment = Dispatch(f"on {SHIPPING_COMMANDS}", forget=shipments)


@book_shipment.on(PrepareShipment, CancelShipment)
async def prepare_or_cancel(envelope: Envelope, message: PrepareShipment | CancelShipment) -> None:
    """Prepare or cancel an order's shipment once, answering repeats as the first time."""
    before = shipments.load(message.order_id)
    reply: Message
    if isinstance(message, PrepareShipment):
        after, reply = prepare(before, message)
    else:
        after, reply = cancel(before, message)
    await node.answer(shipments, message.order_id, before, after, reply, to=envelope)


@app.agent(node.topic(SHIPPING_COMMANDS))
async def ship_orders(stream: StreamT) -> None:
    """Book and cancel shipments with the simulated carrier."""
    await node.consume(stream, book_shipment, "ship_orders")
