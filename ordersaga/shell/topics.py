"""Where each message type is sent, derived from the participants' declarations.

Every map here comes from :data:`ordersaga.topology.TOPOLOGY`; none is kept by
hand. A message type no declaration routes raises :class:`Unrouted` instead of
going anywhere by default.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.partitioner import murmur2

from ordersaga.schemas.messages import Message
from ordersaga.topology import TOPOLOGY, Unrouted
from ordersaga.topology.topics import (
    CUSTOMERS_COMMANDS,
    CUSTOMERS_EVENTS,
    INVENTORY_ALERTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
    NOTIFICATIONS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_OUTCOMES,
    ORDERS_REPLIES,
    PAYMENTS_COMMANDS,
    SERVICES,
    SHIPPING_COMMANDS,
    dlq_topic,
)

# Topics whose consumers dead-letter what they cannot handle.
CONSUMED_TOPICS: tuple[str, ...] = TOPOLOGY.consumed_topics

ALL_TOPICS: tuple[str, ...] = TOPOLOGY.all_topics

# Topics of saga steps' commands: a command refused there for its content is
# answered with CommandRejected, so its saga fails at once instead of timing out.
REJECTION_REPLY_TOPICS: frozenset[str] = TOPOLOGY.rejection_reply_topics

# Every table's changelog topic is created with the others before any worker
# starts: a worker that creates one itself can keep a stale partition count of it
# in its metadata for minutes, and Faust then refuses every write of the table
# (PartitionsMismatch, seen on Apache Kafka).
CHANGELOG_TOPICS: tuple[str, ...] = TOPOLOGY.changelog_topics

ALL_DLQ_TOPICS: tuple[str, ...] = TOPOLOGY.dlq_topics

# The group that consumes each topic one group alone consumes (every step's command topic).
CONSUMING_GROUP: Mapping[str, str] = TOPOLOGY.consuming_group

# Where the orchestrator forwards ForgetOrders: every participant keeping per-order state.
FORGET_TOPICS: tuple[str, ...] = TOPOLOGY.forget_topics


def topic_of(message_type: type[Message]) -> str:
    """The topic messages of this type go to; raises :class:`Unrouted` when none."""
    return TOPOLOGY.topic_of(message_type)


def carries(topic: str, type_name: str) -> bool:
    """True when messages of ``type_name`` are sent to ``topic`` (not misrouted there)."""
    return TOPOLOGY.carries(topic, type_name)


def destination(message: Message) -> str:
    """The topic a message goes to; raises :class:`Unrouted` when none is declared."""
    return TOPOLOGY.topic_of(type(message))


def partition_of(key: str, partitions: int) -> int:
    """The partition a key lands on: the Kafka default partitioner (murmur2), as Faust uses."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


__all__ = [
    "ALL_DLQ_TOPICS",
    "ALL_TOPICS",
    "CHANGELOG_TOPICS",
    "CONSUMED_TOPICS",
    "CONSUMING_GROUP",
    "CUSTOMERS_COMMANDS",
    "CUSTOMERS_EVENTS",
    "FORGET_TOPICS",
    "INVENTORY_ALERTS",
    "INVENTORY_COMMANDS",
    "INVENTORY_EVENTS",
    "INVENTORY_SKU_COMMANDS",
    "INVENTORY_SKU_REPLIES",
    "NOTIFICATIONS",
    "ORDERS_COMMANDS",
    "ORDERS_EVENTS",
    "ORDERS_OUTCOMES",
    "ORDERS_REPLIES",
    "PAYMENTS_COMMANDS",
    "REJECTION_REPLY_TOPICS",
    "SERVICES",
    "SHIPPING_COMMANDS",
    "Unrouted",
    "carries",
    "destination",
    "dlq_topic",
    "partition_of",
    "topic_of",
]
