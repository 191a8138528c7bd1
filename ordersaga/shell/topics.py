"""Topic names, where each message type is sent, and the dead-letter naming rule."""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from ordersaga import tables
from ordersaga.schemas.messages import (
    BlockCustomer,
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CommitStock,
    ForgetHolds,
    Message,
    PlaceOrder,
    PrepareShipment,
    RefundPayment,
    RegisterCustomer,
    ReleaseStock,
    RepublishOrder,
    ReserveStock,
    RestockSku,
    ServiceHeartbeat,
    SkuCommand,
    SkuResult,
    StepDeadlineExpired,
    ValidateCustomer,
)

ORDERS_COMMANDS = "orders.commands"
ORDERS_REPLIES = "orders.replies"
ORDERS_EVENTS = "orders.events"
CUSTOMERS_COMMANDS = "customers.commands"
CUSTOMERS_EVENTS = "customers.events"
INVENTORY_COMMANDS = "inventory.commands"
INVENTORY_SKU_COMMANDS = "inventory.sku-commands"
INVENTORY_SKU_REPLIES = "inventory.sku-replies"
INVENTORY_EVENTS = "inventory.events"
PAYMENTS_COMMANDS = "payments.commands"
SHIPPING_COMMANDS = "shipping.commands"
NOTIFICATIONS = "notifications"
# Every worker's heartbeat, keyed by instance: compacted, so the topic holds each
# instance's last word (the Kafka way to keep a service registry).
SERVICES = "ordersaga.services"

# Topics whose consumers dead-letter what they cannot handle.
CONSUMED_TOPICS: tuple[str, ...] = (
    ORDERS_COMMANDS,
    ORDERS_REPLIES,
    ORDERS_EVENTS,
    CUSTOMERS_COMMANDS,
    CUSTOMERS_EVENTS,
    INVENTORY_COMMANDS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
    INVENTORY_EVENTS,
    PAYMENTS_COMMANDS,
    SHIPPING_COMMANDS,
    SERVICES,
)

ALL_TOPICS: tuple[str, ...] = (*CONSUMED_TOPICS, NOTIFICATIONS)

# Topics of saga steps' commands: a command refused there for its content is
# answered with CommandRejected, so its saga fails at once instead of timing out.
REJECTION_REPLY_TOPICS: frozenset[str] = frozenset(
    {CUSTOMERS_COMMANDS, INVENTORY_COMMANDS, PAYMENTS_COMMANDS, SHIPPING_COMMANDS}
)


# Every table's changelog topic is created with the others before any worker
# starts: a worker that creates one itself can keep a stale partition count of it
# in its metadata for minutes, and Faust then refuses every write of the table
# (PartitionsMismatch, seen on Apache Kafka). The tables are in ordersaga.tables.
CHANGELOG_TOPICS = tables.CHANGELOG_TOPICS


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"


ALL_DLQ_TOPICS: tuple[str, ...] = tuple(dlq_topic(t) for t in CONSUMED_TOPICS)

_DESTINATION: dict[type[Message], str] = {
    PlaceOrder: ORDERS_COMMANDS,
    CancelOrder: ORDERS_COMMANDS,
    RepublishOrder: ORDERS_COMMANDS,
    StepDeadlineExpired: ORDERS_REPLIES,
    RegisterCustomer: CUSTOMERS_COMMANDS,
    BlockCustomer: CUSTOMERS_COMMANDS,
    ValidateCustomer: CUSTOMERS_COMMANDS,
    ReserveStock: INVENTORY_COMMANDS,
    ReleaseStock: INVENTORY_COMMANDS,
    CommitStock: INVENTORY_COMMANDS,
    SkuCommand: INVENTORY_SKU_COMMANDS,
    RestockSku: INVENTORY_SKU_COMMANDS,
    ForgetHolds: INVENTORY_SKU_COMMANDS,
    SkuResult: INVENTORY_SKU_REPLIES,
    ChargePayment: PAYMENTS_COMMANDS,
    RefundPayment: PAYMENTS_COMMANDS,
    PrepareShipment: SHIPPING_COMMANDS,
    CancelShipment: SHIPPING_COMMANDS,
    ServiceHeartbeat: SERVICES,
}


_TOPIC_OF_TYPE: dict[str, str] = {cls.TYPE: topic for cls, topic in _DESTINATION.items()}


def topic_of(message_type: type[Message]) -> str:
    """The topic messages of this type go to."""
    return _DESTINATION.get(message_type, ORDERS_REPLIES)


# The group that consumes each topic a saga step's command goes to (one per topic).
CONSUMING_GROUP: dict[str, str] = {
    CUSTOMERS_COMMANDS: "customers",
    INVENTORY_COMMANDS: "inventory",
    INVENTORY_SKU_COMMANDS: "inventory",
    PAYMENTS_COMMANDS: "payments",
    SHIPPING_COMMANDS: "shipping",
}


def carries(topic: str, type_name: str) -> bool:
    """True when messages of ``type_name`` are sent to ``topic`` (not misrouted there)."""
    return _TOPIC_OF_TYPE.get(type_name) == topic


def destination(message: Message) -> str:
    """The topic a command goes to; every participant reply goes to orders.replies."""
    return _DESTINATION.get(type(message), ORDERS_REPLIES)


# Where the orchestrator forwards ForgetOrders: every participant keeping per-order state.
FORGET_TOPICS: tuple[str, ...] = (
    INVENTORY_COMMANDS,
    PAYMENTS_COMMANDS,
    SHIPPING_COMMANDS,
    ORDERS_EVENTS,
)


def partition_of(key: str, partitions: int) -> int:
    """The partition a key lands on: the Kafka default partitioner (murmur2), as Faust uses."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
