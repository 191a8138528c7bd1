"""No payment token or address in clear on the topics or the orchestrator's changelog."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ordersaga.ops.tail import records
from ordersaga.shell.topics import ORDERS_COMMANDS, PAYMENTS_COMMANDS, SHIPPING_COMMANDS
from ordersaga.tables import SAGAS
from tests.harness import ADDRESS, order_body
from tests.integration.conftest import System
from tests.integration.support import new_sku, wait_for

pytestmark = pytest.mark.integration

TOKEN = "tok_sealcheck42"
STREET = "7 Sealing Lane"


async def _bytes_of(bootstrap: str, topic: str) -> bytes:
    found = []
    async for record in records(bootstrap, topic, idle_timeout=3.0):
        found.append(bytes(record.value or b""))
    return b"\n".join(found)


def test_the_token_and_the_address_travel_sealed(system: System, client: httpx.Client) -> None:
    sku = new_sku(client, quantity=3, unit_price=500)
    address = ADDRESS.model_copy(update={"line1": STREET}).model_dump()
    body = order_body(items=[{"sku": sku, "quantity": 1}], payment_token=TOKEN)
    placed = client.post("/orders", json={**body, "shipping_address": address})
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["order_id"]
    # Completed: payments opened the token and shipping the address.
    wait_for(lambda: client.get(f"/orders/{order_id}").json()["status"] == "COMPLETED")
    for topic in (ORDERS_COMMANDS, PAYMENTS_COMMANDS, SHIPPING_COMMANDS, SAGAS.changelog_topic):
        held = asyncio.run(_bytes_of(system.bootstrap, topic))
        assert order_id.encode() in held, topic
        assert TOKEN.encode() not in held, topic
        assert STREET.encode() not in held, topic
        assert b"sealed:v1:" in held, topic
