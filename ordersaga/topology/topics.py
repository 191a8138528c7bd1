"""The topic names, and the dead-letter naming rule."""

from __future__ import annotations

ORDERS_COMMANDS = "orders.commands"
ORDERS_REPLIES = "orders.replies"
ORDERS_EVENTS = "orders.events"
# The terminal event of each order again: what notifications and the bench read.
ORDERS_OUTCOMES = "orders.outcomes"
CUSTOMERS_COMMANDS = "customers.commands"
CUSTOMERS_EVENTS = "customers.events"
INVENTORY_COMMANDS = "inventory.commands"
INVENTORY_SKU_COMMANDS = "inventory.sku-commands"
INVENTORY_SKU_REPLIES = "inventory.sku-replies"
INVENTORY_EVENTS = "inventory.events"
# LowStock only: the operators' notices, without every level change around them.
INVENTORY_ALERTS = "inventory.alerts"
PAYMENTS_COMMANDS = "payments.commands"
SHIPPING_COMMANDS = "shipping.commands"
NOTIFICATIONS = "notifications"
# Every worker's heartbeat, keyed by instance: compacted, so the topic holds each
# instance's last word (the Kafka way to keep a service registry).
SERVICES = "ordersaga.services"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"
