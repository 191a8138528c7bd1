"""Topics are readable with console tools; bad messages are dead-lettered; metrics are served."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from ordersaga.ops.tail import read_topic
from ordersaga.shell.groups import GROUPS
from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, place, wait_for

pytestmark = pytest.mark.integration


def test_order_events_are_json_keyed_by_order_with_type_headers(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 5, 300)
    correlation = f"topics-{sku}"
    body = order_body([(sku, 1)], customer="cust-topics")
    order_id = place(client, body, **{"X-Correlation-ID": correlation})
    assert final(client, order_id)["status"] == "COMPLETED"
    records = asyncio.run(read_topic(system.bootstrap, "orders.events"))
    mine = [r for r in records if r.key == order_id.encode()]
    assert [orjson.loads(r.value)["payload"]["name"] for r in mine][-1] == "OrderCompleted"
    for r in mine:
        headers = dict(r.headers)
        assert headers["type"] == b"OrderEvent"
        assert headers["correlation_id"] == correlation.encode()
        envelope = orjson.loads(r.value)
        assert envelope["order_id"] == order_id

    # The notifications group reads the same events on its own, so give it a moment.
    def told() -> list[tuple[str, str]]:
        notes = asyncio.run(read_topic(system.bootstrap, "notifications"))
        payloads = [orjson.loads(r.value)["payload"] for r in notes if r.key == b"cust-topics"]
        return [(n["order_id"], n["status"]) for n in payloads]

    assert wait_for(told) == [(order_id, "COMPLETED")]


def test_malformed_messages_go_to_the_dlq_and_the_worker_keeps_going(
    system: System, client: httpx.Client
) -> None:
    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("orders.commands", b"{not json", key=b"poison-1")
            await producer.send_and_wait(
                "orders.commands",
                orjson.dumps(
                    {
                        "event_id": "e1",
                        "type": "PlaceOrder",
                        "correlation_id": "c",
                        "payload": {"order_id": "x"},
                    }
                ),
                key=b"poison-2",
            )
        finally:
            await producer.stop()

    asyncio.run(produce())
    sku = new_sku(client, 5, 300)
    assert final(client, place(client, order_body([(sku, 1)])))["status"] == "COMPLETED"
    dead = asyncio.run(read_topic(system.bootstrap, "orders.commands.dlq"))
    by_key = {r.key: dict(r.headers) for r in dead}
    assert b"not JSON" in by_key[b"poison-1"]["dlq.error"]
    assert b"bad PlaceOrder payload" in by_key[b"poison-2"]["dlq.error"]
    assert by_key[b"poison-2"]["dlq.topic"] == b"orders.commands"


def test_every_worker_serves_health_and_metrics(system: System, client: httpx.Client) -> None:
    sku = new_sku(client, 5, 300)
    final(client, place(client, order_body([(sku, 1)])))
    for group in GROUPS:
        port = group.web_port(system.web_port)
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["group"] == group.name
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "ordersaga_messages_handled_total" in text, group.name
    orders = httpx.get(f"http://127.0.0.1:{system.web_port + 1}/metrics").text
    assert 'ordersaga_saga_outcomes_total{reason="",status="COMPLETED"}' in orders
    assert "ordersaga_step_latency_seconds_bucket" in orders
