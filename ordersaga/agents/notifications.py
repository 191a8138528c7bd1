"""The notifications group: tells customers how their orders ended.

Run alone with ``faust -A ordersaga.agents.notifications worker``. :func:`build`
makes the group from explicit settings; the module's attributes are those of
the default group (``ordersaga.agents.building``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.saga.notifications import notification_for, operator_notice
from ordersaga.schemas.messages import Envelope, LowStock, OrderEnded
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.records import RecordTable
from ordersaga.shell.topics import INVENTORY_ALERTS, NOTIFICATIONS, ORDERS_OUTCOMES
from ordersaga.shell.worker import Worker
from ordersaga.tables import NOTIFIED

log = logging.getLogger(__name__)


@dataclass
class Notifications:
    """One notifications group: its worker, what it told whom, and its agents."""

    node: Worker
    app: faust.App
    notified: RecordTable[str]
    notify_customer: Dispatch
    notify_once: Handler
    notify_operators: Dispatch
    notify_low_stock: Handler
    notify_low_stock_skus: AgentT[Any]
    notify_customers: AgentT[Any]


def build(settings: Settings) -> Notifications:
    """The notifications group, configured from ``settings`` alone."""
    node = Worker("notifications", settings)
    app = node.app
    notified = node.table(NOTIFIED)
    notify_customer = Dispatch(f"on {ORDERS_OUTCOMES}", forget=notified)

    @notify_customer.on(OrderEnded)
    async def notify_once(envelope: Envelope, message: OrderEnded) -> str | None:
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

    # Keyed by SKU, so each SKU's notices are kept on its inventory.alerts partition.
    notify_operators = Dispatch(f"on {INVENTORY_ALERTS}", forget=None)

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

    @app.agent(node.topic(INVENTORY_ALERTS))
    @toplevel
    async def notify_low_stock_skus(stream: StreamT) -> None:
        """Turn low-stock crossings into notices on the operators' channel."""
        await node.consume(stream, notify_operators, "notify_low_stock_skus")

    @app.agent(node.topic(ORDERS_OUTCOMES))
    @toplevel
    async def notify_customers(stream: StreamT) -> None:
        """Turn order outcomes into customer notifications."""
        await node.consume(stream, notify_customer, "notify_customers")

    return Notifications(
        node=node,
        app=app,
        notified=notified,
        notify_customer=notify_customer,
        notify_once=notify_once,
        notify_operators=notify_operators,
        notify_low_stock=notify_low_stock,
        notify_low_stock_skus=notify_low_stock_skus,
        notify_customers=notify_customers,
    )


default = DefaultGroup(__name__, build, Notifications)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
