"""One order's correlation id, from its POST through every topic its saga used."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest

from ordersaga.ops.tail import read_topic
from tests.integration.conftest import System
from tests.integration.support import final, new_sku, order_body, wait_for

pytestmark = pytest.mark.integration
TOPICS = (
    "orders.commands",
    "customers.commands",
    "orders.replies",
    "inventory.commands",
    "inventory.sku-commands",
    "payments.commands",
    "shipping.commands",
    "orders.events",
    "notifications",
)


def test_a_completed_orders_messages_all_carry_the_requests_correlation_id(
    system: System, client: httpx.Client
) -> None:
    # Two SKUs, so that the order's stock goes through the gather (inventory.commands)
    # as well as to each SKU (inventory.sku-commands).
    skus = [new_sku(client, 5, 300), new_sku(client, 5, 300)]
    correlation_id = f"it-{uuid.uuid4().hex[:12]}"
    r = client.post(
        "/orders",
        json=order_body([(sku, 1) for sku in skus]),
        headers={"X-Correlation-ID": correlation_id},
    )
    assert r.status_code == 202 and r.headers["X-Correlation-ID"] == correlation_id
    order_id = r.json()["order_id"]
    assert final(client, order_id)["status"] == "COMPLETED"

    async def messages_of_the_order() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for topic in TOPICS:
            for record in await read_topic(system.bootstrap, topic):
                # Only this order's records: other tests put poison (not JSON, not
                # UTF-8, a megabyte) on these topics, before or after this one.
                if record.value is None or order_id.encode() not in record.value:
                    continue
                envelope = orjson.loads(record.value)
                if envelope.get("order_id") == order_id:
                    found.setdefault(topic, set()).add(envelope["correlation_id"])
                    assert (
                        dict(record.headers)["correlation_id"]
                        == envelope["correlation_id"].encode()
                    )
        return found

    # The notification comes last: notifications reads the outcomes in batches that
    # wait up to ORDERSAGA_OFF_PATH_FETCH_MAX_WAIT_MS (500 ms) after the order completed.
    seen: list[dict[str, set[str]]] = []

    def every_topic_saw_it() -> bool:
        seen.append(asyncio.run(messages_of_the_order()))
        return set(seen[-1]) == set(TOPICS)

    wait_for(every_topic_saw_it, timeout=15, interval=0.5)
    found = seen[-1]
    # Every topic of the saga's path saw the order, under the one id
    assert set(found) == set(TOPICS), set(TOPICS) - set(found)
    assert {cid for ids in found.values() for cid in ids} == {correlation_id}
