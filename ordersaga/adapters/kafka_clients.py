"""The aiokafka clients ordersaga makes outside Faust, each with the Kafka security settings.

The tools, the bench, the audit, the queue probes and the runtime's topic admin
all make their clients here, so a broker that asks for SASL or TLS is reached
by every one of them the same way (the Faust apps get the same settings through
``ordersaga.shell.faust_app.broker_credentials``).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from ordersaga.config.kafka_security import KafkaSecuritySettings
from ordersaga.config.settings import get_settings


def security(settings: KafkaSecuritySettings | None = None) -> dict[str, Any]:
    """aiokafka's security arguments from ``settings`` (default: the process's settings)."""
    return (settings or get_settings()).aiokafka_security()


def new_producer(
    bootstrap: str, *, settings: KafkaSecuritySettings | None = None, **options: Any
) -> AIOKafkaProducer:
    """An (unstarted) producer on ``bootstrap``."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **security(settings), **options)


def new_consumer(
    *topics: str,
    bootstrap: str,
    settings: KafkaSecuritySettings | None = None,
    **options: Any,
) -> AIOKafkaConsumer:
    """An (unstarted) consumer on ``bootstrap``, subscribed to ``topics`` if any are given."""
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **security(settings), **options)


def new_admin(
    bootstrap: str, *, settings: KafkaSecuritySettings | None = None, **options: Any
) -> AIOKafkaAdminClient:
    """An (unstarted) admin client on ``bootstrap``."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security(settings), **options)
