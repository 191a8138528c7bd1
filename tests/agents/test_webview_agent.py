"""The webview group shell: the read-model projections and the HTTP routes' rejection paths.

Only routes that answer without Redis are exercised; a stand-in Redis that fails
the test on any use makes sure of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ordersaga.agents import webview
from ordersaga.app.topics import (
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
)
from ordersaga.schemas.messages import CancelOrder, RestockSku, StockChanged

from .conftest import ADDRESS, ORDER_ID, order_event


@pytest.fixture
def outbox(capture):
    return capture(webview.node)


def stock_changed(sku: str = "SKU-A", version: int = 1, available: int = 10) -> StockChanged:
    return StockChanged(
        sku=sku,
        version=version,
        unit_price=500,
        put_in=10,
        available=available,
        reserved=10 - available,
        committed=0,
    )


# ------------------------------------------------------------------ projections


async def test_order_events_fold_into_the_order_view(drive, outbox):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(
            order_event("StockReserved", 2, "STOCK_RESERVED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )

    view = webview.order_views.get(ORDER_ID)
    assert view["seq"] == 2
    assert view["order"]["status"] == "STOCK_RESERVED"
    assert [(e["seq"], e["type"], e["status"]) for e in view["events"]] == [
        (1, "OrderPlaced", "PENDING"),
        (2, "StockReserved", "STOCK_RESERVED"),
    ]
    assert outbox.sent == []


async def test_older_or_repeated_order_events_are_ignored(drive, outbox):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(order_event("PaymentCharged", 3, "PAID"), key=ORDER_ID, topic=ORDERS_EVENTS)
        before = webview.order_views.get(ORDER_ID)
        await d.put(
            order_event("StockReserved", 2, "STOCK_RESERVED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )
        await d.put(order_event("PaymentCharged", 3, "PAID"), key=ORDER_ID, topic=ORDERS_EVENTS)

    view = webview.order_views.get(ORDER_ID)
    assert view == before
    assert view["seq"] == 3
    assert view["order"]["status"] == "PAID"
    assert [e["seq"] for e in view["events"]] == [1, 3]


async def test_projecting_wakes_a_waiting_long_poll(drive, outbox):
    waiter = asyncio.ensure_future(webview.desk.watch.wait(ORDER_ID, timeout=5.0))
    await asyncio.sleep(0)
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
    await asyncio.wait_for(waiter, timeout=1.0)


async def test_stock_events_keep_the_latest_version(drive, outbox):
    async with drive(webview.project_stock, webview.node) as d:
        await d.put(stock_changed(version=1, available=10), key="SKU-A", topic=INVENTORY_EVENTS)
        await d.put(stock_changed(version=3, available=4), key="SKU-A", topic=INVENTORY_EVENTS)
        await d.put(stock_changed(version=2, available=7), key="SKU-A", topic=INVENTORY_EVENTS)
        await d.put(stock_changed(version=3, available=0), key="SKU-A", topic=INVENTORY_EVENTS)

    view = webview.stock_views.get("SKU-A")
    assert (view["version"], view["available"]) == (3, 4)


async def test_wrong_message_types_are_dead_lettered(drive, outbox):
    async with drive(webview.project_stock, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=INVENTORY_EVENTS)
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(stock_changed(), key="SKU-A", topic=ORDERS_EVENTS)

    [stock_dead] = outbox.on(f"{INVENTORY_EVENTS}.dlq")
    assert "OrderEvent does not belong on inventory.events" in stock_dead.header("dlq.error")
    [order_dead] = outbox.on(f"{ORDERS_EVENTS}.dlq")
    assert "StockChanged does not belong on orders.events" in order_dead.header("dlq.error")
    assert webview.order_views.get(ORDER_ID) is None
    assert webview.stock_views.get("SKU-A") is None


# ------------------------------------------------------------------ HTTP routes


class NoRedis:
    """Any use of Redis fails the test: these routes must answer before reaching it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the route touched Redis ({name})")


@pytest.fixture
async def client(monkeypatch) -> AsyncIterator[TestClient]:
    monkeypatch.setattr(webview.desk, "_redis", NoRedis())
    # A fresh aiohttp app per test (an aiohttp app is bound to the first loop that
    # serves it) carrying the webview app's own routes and handlers.
    app = web.Application()
    for route in webview.app.web.web_app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    async with TestClient(TestServer(app)) as c:
        yield c


def order_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": "cust-1",
        "items": [{"sku": "SKU-A", "quantity": 1}],
        "payment_token": "tok_ok",
        "shipping_address": ADDRESS.model_dump(),
    }
    body.update(changes)
    return body


async def test_malformed_json_is_400(client, outbox):
    resp = await client.post("/orders", data=b'{"customer_id": ')
    assert resp.status == 400
    assert (await resp.json())["error"] == "malformed_json"
    assert outbox.sent == []


async def test_empty_body_is_400(client, outbox):
    resp = await client.post("/orders", data=b"")
    assert resp.status == 400
    assert (await resp.json())["error"] == "empty_body"


async def test_missing_field_is_422_naming_it(client, outbox):
    body = order_body()
    del body["payment_token"]
    resp = await client.post("/orders", json=body)
    assert resp.status == 422
    answer = await resp.json()
    assert answer["error"] == "validation_error"
    assert answer["message"].startswith("payment_token:")
    assert [p["field"] for p in answer["problems"]] == ["payment_token"]
    assert outbox.sent == []


async def test_zero_quantity_is_422(client, outbox):
    resp = await client.post("/orders", json=order_body(items=[{"sku": "SKU-A", "quantity": 0}]))
    assert resp.status == 422
    answer = await resp.json()
    assert answer["problems"][0]["field"] == "items[0].quantity"
    assert outbox.sent == []


async def test_unknown_sku_is_422(client, outbox, drive):
    async with drive(webview.project_stock, webview.node) as d:
        await d.put(stock_changed("SKU-A"), key="SKU-A", topic=INVENTORY_EVENTS)
    items = [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-NOPE", "quantity": 1}]
    resp = await client.post("/orders", json=order_body(items=items))
    assert resp.status == 422
    answer = await resp.json()
    assert answer["error"] == "unknown_sku"
    assert answer["problems"] == [{"field": "items[1].sku", "message": "unknown SKU"}]
    assert outbox.sent == []


async def test_non_object_body_is_422(client, outbox):
    resp = await client.post("/orders", json=[order_body()])
    assert resp.status == 422
    assert (await resp.json())["message"] == "(body): must be a JSON object"


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


async def test_restock_sends_restock_sku_keyed_by_sku(client, outbox, drive):
    resp = await client.post(
        "/inventory/SKU-N/restock",
        json={"quantity": 5, "unit_price": 250},
        headers={"Idempotency-Key": "rk-1"},
    )
    assert resp.status == 202
    assert (await resp.json())["restock_id"] == "rk-1"
    [sent] = outbox.on(INVENTORY_SKU_COMMANDS)
    assert outbox.topics() == [INVENTORY_SKU_COMMANDS]
    assert sent.key == b"SKU-N"
    assert sent.message == RestockSku(restock_id="rk-1", sku="SKU-N", quantity=5, unit_price=250)
    assert sent.envelope.correlation_id == "rk-1"


async def test_restock_rejections(client, outbox):
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


async def test_order_routes_answer_from_the_view(client, outbox, drive):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(
            order_event("OrderCancelled", 2, "CANCELLED", order_id="ord-done"),
            key="ord-done",
            topic=ORDERS_EVENTS,
        )

    got = await client.get(f"/orders/{ORDER_ID}")
    assert got.status == 200
    body = await got.json()
    assert (body["order_id"], body["status"], body["events_seen"]) == (ORDER_ID, "PENDING", 1)
    history = await client.get(f"/orders/{ORDER_ID}/events")
    assert [e["type"] for e in (await history.json())["events"]] == ["OrderPlaced"]
    bad_wait = await client.get(f"/orders/{ORDER_ID}?wait=soon")
    assert bad_wait.status == 400

    terminal = await client.post("/orders/ord-done/cancel")
    assert terminal.status == 409
    assert outbox.sent == []

    in_flight = await client.post(f"/orders/{ORDER_ID}/cancel")
    assert in_flight.status == 202
    [sent] = outbox.on(ORDERS_COMMANDS)
    assert sent.key == ORDER_ID.encode()
    assert sent.message == CancelOrder(order_id=ORDER_ID)
