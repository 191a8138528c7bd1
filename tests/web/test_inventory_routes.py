"""The inventory routes: GET /inventory, GET /inventory/{sku}, POST /inventory/{sku}/restock.

Each test runs against the session's real valkey-server on a flushed database;
stock reaches the read model through the webview's own projection.
"""

from __future__ import annotations

from aiohttp import ClientResponse

from ordersaga.agents import webview
from ordersaga.schemas.messages import RestockSku
from ordersaga.shell.topics import INVENTORY_EVENTS, INVENTORY_SKU_COMMANDS
from tests.harness import stock, stock_changed


async def test_inventory_reads_the_stock_view(client, outbox, drive):
    async with drive(webview.project_stock, webview.node) as d:
        await d.put(
            stock_changed("SKU-B", version=2, available=6), key="SKU-B", topic=INVENTORY_EVENTS
        )
        await d.put(
            stock_changed("SKU-A", version=1, available=10), key="SKU-A", topic=INVENTORY_EVENTS
        )
    resp = await client.get("/inventory")
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert [(i["sku"], i["available"], i["version"]) for i in items] == [
        ("SKU-A", 10, 1),
        ("SKU-B", 6, 2),
    ]
    one = await client.get("/inventory/SKU-B")
    assert (await one.json())["reserved"] == 4
    missing = await client.get("/inventory/SKU-Z")
    assert missing.status == 404


async def test_inventory_is_empty_before_any_stock_event(client, outbox):
    resp = await client.get("/inventory")
    assert resp.status == 200
    assert (await resp.json()) == {"items": [], "next_cursor": None}


async def test_restock_sends_restock_sku_keyed_by_sku(client, outbox, drive, store):
    resp = await client.post(
        "/inventory/SKU-N/restock",
        json={"quantity": 5, "unit_price": 250},
        headers={"Idempotency-Key": "rk-1"},
    )
    assert resp.status == 202
    restock_id = (await resp.json())["restock_id"]
    # A fixed-size id of the server's, never the client's key, travels and is kept.
    assert restock_id.startswith("rst_") and len(restock_id) == 28
    [sent] = outbox.on(INVENTORY_SKU_COMMANDS)
    assert outbox.topics() == [INVENTORY_SKU_COMMANDS]
    assert sent.key == b"SKU-N"
    assert sent.message == RestockSku(
        restock_id=restock_id, sku="SKU-N", quantity=5, unit_price=250
    )
    # The request's correlation id (made at the edge, answered back) travels with it.
    assert sent.envelope.correlation_id == resp.headers["X-Correlation-ID"]


async def test_a_restock_retried_with_its_key_is_the_same_restock(client, outbox, drive, store):
    async def restock(body: dict[str, int], key: str = "rk-same") -> ClientResponse:
        return await client.post(
            "/inventory/SKU-N/restock", json=body, headers={"Idempotency-Key": key}
        )

    first = await restock({"quantity": 5, "unit_price": 250})
    again = await restock({"quantity": 5, "unit_price": 250})
    other = await restock({"quantity": 6, "unit_price": 250})

    assert (first.status, again.status) == (202, 202)
    assert (await first.json())["restock_id"] == (await again.json())["restock_id"]
    assert other.status == 422
    answer = await other.json()
    assert (answer["error"], answer["problems"][0]["field"]) == (
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    assert len({m.restock_id for m in outbox.messages(INVENTORY_SKU_COMMANDS)}) == 1


async def test_restocking_a_known_sku_needs_no_price(client, outbox, drive):
    await stock(drive, "SKU-A")
    resp = await client.post(
        "/inventory/SKU-A/restock", json={"quantity": 3}, headers={"Idempotency-Key": "rk-2"}
    )
    assert resp.status == 202
    restock_id = (await resp.json())["restock_id"]
    assert outbox.messages(INVENTORY_SKU_COMMANDS) == [
        RestockSku(restock_id=restock_id, sku="SKU-A", quantity=3, unit_price=None)
    ]


async def test_restock_rejections(client, outbox, store):
    new_without_price = await client.post("/inventory/SKU-N/restock", json={"quantity": 5})
    assert new_without_price.status == 422
    assert (await new_without_price.json())["problems"][0]["field"] == "unit_price"

    zero = await client.post("/inventory/SKU-N/restock", json={"quantity": 0, "unit_price": 1})
    assert zero.status == 422
    assert (await zero.json())["problems"][0]["field"] == "quantity"

    coerced = await client.post("/inventory/SKU-N/restock", json={"quantity": "5", "unit_price": 1})
    assert coerced.status == 422  # strict: no string-to-int coercion

    bad_sku = await client.post(
        "/inventory/bad%20sku/restock", json={"quantity": 1, "unit_price": 1}
    )
    assert bad_sku.status == 422
    assert (await bad_sku.json())["message"].startswith("sku:")
    assert outbox.sent == []
