"""The saga over SASL_SSL with a user and ACLs per group: `ordersaga run --secure`.

Apache Kafka only (Tansu has no ACLs): its listener takes SASL_SSL alone, each
worker logs in as its group's user, and the broker refuses whatever the group's
declaration does not give it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from pydantic import SecretStr

from ordersaga.adapters.kafka_clients import new_consumer, new_producer
from ordersaga.config.kafka_security import KafkaSecuritySettings
from ordersaga.topology.topics import (
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_REPLIES,
    PAYMENTS_COMMANDS,
)
from tests.harness import order_body
from tests.integration.conftest import System, running_system
from tests.integration.support import new_sku, register, stock, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("ordersaga-secure")
    with running_system("kafka", data_dir, args=("--secure",)) as system:
        yield system


def login(system: System, user: str, password: str | None = None) -> KafkaSecuritySettings:
    """The settings of a client logging in as ``user`` (with its own password by default)."""
    secrets = Path(system.data_dir) / "kafka-secure" / "secrets"
    passwords = orjson.loads((secrets / "users.json").read_bytes())
    return KafkaSecuritySettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=user,
        kafka_sasl_password=SecretStr(password or passwords[user]),
        kafka_ssl_cafile=str(secrets / "ca.pem"),
    )


def test_an_order_completes_over_sasl_ssl(secured: System) -> None:
    assert "kafka     SASL_SSL" in "\n".join(secured.output)
    with httpx.Client(base_url=secured.base_url, timeout=30) as client:
        # The web view's RegisterCustomer and RestockSku, then the whole saga.
        register(client, "cust-secure")
        sku = new_sku(client, quantity=5, unit_price=700)
        items = [{"sku": sku, "quantity": 2}]
        placed = client.post("/orders", json=order_body(customer_id="cust-secure", items=items))
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["order_id"]
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status not in ("COMPLETED", "FAILED"):
            time.sleep(0.2)
            status = client.get(f"/orders/{order_id}").json()["status"]
        assert status == "COMPLETED"
        # The inventory's StockChanged reached the web view's read model too.
        wait_for(lambda: stock(client, sku)["available"] == 3)
    # Every worker logged in as its own group's user; none was refused anything.
    logs = "\n".join(p.read_text() for p in (Path(secured.data_dir) / "logs").glob("*-0.log"))
    assert "AuthorizationFailed" not in logs and "Authentication failed" not in logs


async def _produce(bootstrap: str, topic: str, settings: KafkaSecuritySettings | None) -> None:
    producer = (
        AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        if settings is None
        else new_producer(bootstrap, settings=settings, request_timeout_ms=5000)
    )
    try:
        await asyncio.wait_for(producer.start(), 20)
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"k"), 20)
    finally:
        await producer.stop()


def test_a_client_without_credentials_is_refused(secured: System) -> None:
    # Plaintext on the TLS listener: no answer it can read.
    with pytest.raises((KafkaError, asyncio.TimeoutError)):
        asyncio.run(_produce(secured.bootstrap, ORDERS_REPLIES, None))
    # A known user with a wrong password.
    wrong = login(secured, "ordersaga-payments", password="not-the-password")
    with pytest.raises((KafkaError, asyncio.TimeoutError)):
        asyncio.run(_produce(secured.bootstrap, ORDERS_REPLIES, wrong))


def test_a_group_is_refused_on_a_topic_it_does_not_own(secured: System) -> None:
    payments = login(secured, "ordersaga-payments")
    # What it owns it may write (its dead letters)...
    asyncio.run(_produce(secured.bootstrap, f"{PAYMENTS_COMMANDS}.dlq", payments))
    # ...but not a command of the web view's, nor read the orchestrator's events.
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_produce(secured.bootstrap, ORDERS_COMMANDS, payments))

    async def read_events() -> None:
        consumer: AIOKafkaConsumer = new_consumer(
            ORDERS_EVENTS,
            bootstrap=secured.bootstrap,
            settings=payments,
            group_id="ordersaga-payments",
            enable_auto_commit=False,
        )
        try:
            await consumer.start()
            await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 20)
        finally:
            await consumer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(read_events())
