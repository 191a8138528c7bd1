"""The shipping group: shipments per order and the simulated carrier.

Run alone with ``faust -A ordersaga.agents.shipping worker``. :func:`build` makes
the group from explicit settings; the module's attributes are those of the
default group (``ordersaga.agents.building``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.edge.sealing import Sealer, address_context, open_or_refuse
from ordersaga.saga.shipping import ShipmentRecord, cancel, prepare
from ordersaga.schemas.messages import (
    Address,
    CancelShipment,
    Envelope,
    Message,
    PrepareShipment,
)
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.records import RecordTable
from ordersaga.shell.topics import SHIPPING_COMMANDS
from ordersaga.shell.worker import Worker
from ordersaga.tables import SHIPMENTS


@dataclass
class Shipping:
    """One shipping group: its worker, shipments table and agent."""

    node: Worker
    app: faust.App
    shipments: RecordTable[ShipmentRecord]
    book_shipment: Dispatch
    prepare_or_cancel: Handler
    ship_orders: AgentT[Any]


def build(settings: Settings) -> Shipping:
    """The shipping group, configured from ``settings`` alone."""
    node = Worker("shipping", settings)
    app = node.app
    shipments = node.table(SHIPMENTS)
    book_shipment = Dispatch(f"on {SHIPPING_COMMANDS}", forget=shipments)
    # Shipping alone holds the key the web view seals addresses with.
    addresses = Sealer.from_setting(settings.address_keys)

    def opened_address(message: PrepareShipment, before: ShipmentRecord | None) -> Address | None:
        """The address of a first PrepareShipment, opened if sealed (a repeat needs none)."""
        if before is not None or isinstance(message.address, Address):
            return None
        opened = open_or_refuse(addresses, message.address, address_context(message.order_id))
        return Address.model_validate_json(opened)

    @book_shipment.on(PrepareShipment, CancelShipment)
    async def prepare_or_cancel(
        envelope: Envelope, message: PrepareShipment | CancelShipment
    ) -> None:
        """Prepare or cancel an order's shipment once, answering repeats as the first time."""
        before = shipments.load(message.order_id)
        reply: Message
        if isinstance(message, PrepareShipment):
            after, reply = prepare(before, message, opened_address(message, before))
        else:
            after, reply = cancel(before, message)
        await node.answer(shipments, message.order_id, before, after, reply, to=envelope)

    @app.agent(node.topic(SHIPPING_COMMANDS))
    @toplevel
    async def ship_orders(stream: StreamT) -> None:
        """Book and cancel shipments with the simulated carrier."""
        await node.consume(stream, book_shipment, "ship_orders")

    return Shipping(
        node=node,
        app=app,
        shipments=shipments,
        book_shipment=book_shipment,
        prepare_or_cancel=prepare_or_cancel,
        ship_orders=ship_orders,
    )


default = DefaultGroup(__name__, build, Shipping)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
