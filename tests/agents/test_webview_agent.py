"""The webview group shell: the read-model projections and the HTTP routes.

The read model lives in Redis, and so do the accepted orders and the
Idempotency-Keys: every test here runs against the session's real valkey-server,
on a database flushed before the test (``view_store`` in conftest).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from ordersaga.agents import webview
from ordersaga.app.topics import (
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
)
from ordersaga.schemas.messages import (
    Address,
    CancelOrder,
    ForgetOrders,
    OrderLine,
    PlaceOrder,
    RepublishOrder,
    RestockSku,
    StockChanged,
)
from ordersaga.web.store import (
    EVENTS,
    IDEMPOTENCY,
    OPEN,
    ORDER,
    UNCONFIRMED,
    UNCONFIRMED_ORDERS,
    ViewStore,
    idempotency_key,
)

from .conftest import ADDRESS, ORDER_ID, order_event


@pytest.fixture(autouse=True)
def store(view_store: ViewStore) -> ViewStore:
    """Every test here needs Redis: the projections write to it, the routes read it."""
    return view_store


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


async def stock(drive, *skus: str) -> None:
    """Project one StockChanged per SKU, so the routes know them."""
    async with drive(webview.project_stock, webview.node) as d:
        for sku in skus:
            await d.put(stock_changed(sku), key=sku, topic=INVENTORY_EVENTS)


# ------------------------------------------------------------------ projections


async def test_order_events_fold_into_the_order_view(drive, outbox, store):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(
            order_event("StockReserved", 2, "STOCK_RESERVED", detail="held"),
            key=ORDER_ID,
            topic=ORDERS_EVENTS,
        )

    view = await store.order(ORDER_ID)
    assert view is not None
    assert view["seq"] == 2
    assert view["order"]["order_id"] == ORDER_ID
    assert view["order"]["status"] == "STOCK_RESERVED"
    events = await store.events(ORDER_ID)
    assert [(e["seq"], e["type"], e["status"], e["detail"]) for e in events] == [
        (1, "OrderPlaced", "PENDING", None),
        (2, "StockReserved", "STOCK_RESERVED", "held"),
    ]
    assert outbox.sent == []


async def test_forget_orders_on_the_event_topic_leaves_the_view_alone(drive, outbox, store):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(ForgetOrders(order_ids=(ORDER_ID,)), key=ORDER_ID, topic=ORDERS_EVENTS)

    view = await store.order(ORDER_ID)
    assert view is not None and view["seq"] == 1
    assert outbox.sent == []  # in particular, not dead-lettered


async def test_older_or_repeated_order_events_are_ignored(drive, outbox, store):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(order_event("PaymentCharged", 3, "PAID"), key=ORDER_ID, topic=ORDERS_EVENTS)
        before = (await store.order(ORDER_ID), await store.events(ORDER_ID))
        await d.put(
            order_event("StockReserved", 2, "STOCK_RESERVED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )
        await d.put(order_event("PaymentCharged", 3, "PAID"), key=ORDER_ID, topic=ORDERS_EVENTS)

    view = await store.order(ORDER_ID)
    events = await store.events(ORDER_ID)
    assert (view, events) == before
    assert view is not None
    assert view["seq"] == 3
    assert view["order"]["status"] == "PAID"
    assert [e["seq"] for e in events] == [1, 3]
    assert outbox.sent == []


async def test_a_finished_order_view_expires_an_open_one_does_not(drive, outbox, store):
    keys = (ORDER + ORDER_ID, ORDER + ORDER_ID + EVENTS)
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        assert [await store.redis.ttl(k) for k in keys] == [-1, -1]
        await d.put(
            order_event("OrderCancelled", 2, "CANCELLED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )

    for key in keys:
        assert 0 < await store.redis.ttl(key) <= 60  # finished_ttl_s of the test store


async def test_projecting_wakes_a_waiting_long_poll(drive, outbox):
    waiter = asyncio.ensure_future(webview.desk.watch.wait(ORDER_ID, timeout=5.0))
    await asyncio.sleep(0)
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
    await asyncio.wait_for(waiter, timeout=1.0)


async def test_stock_events_keep_the_latest_version(drive, outbox, store):
    async with drive(webview.project_stock, webview.node) as d:
        await d.put(stock_changed(version=1, available=10), key="SKU-A", topic=INVENTORY_EVENTS)
        await d.put(stock_changed(version=3, available=4), key="SKU-A", topic=INVENTORY_EVENTS)
        await d.put(stock_changed(version=2, available=7), key="SKU-A", topic=INVENTORY_EVENTS)
        await d.put(stock_changed(version=3, available=0), key="SKU-A", topic=INVENTORY_EVENTS)

    view = (await store.stock("SKU-A"))["SKU-A"]
    assert (view["version"], view["available"]) == (3, 4)
    assert [v["sku"] for v in await store.all_stock()] == ["SKU-A"]
    assert outbox.sent == []


async def test_wrong_message_types_are_dead_lettered(drive, outbox, store):
    async with drive(webview.project_stock, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=INVENTORY_EVENTS)
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(stock_changed(), key="SKU-A", topic=ORDERS_EVENTS)

    [stock_dead] = outbox.on(f"{INVENTORY_EVENTS}.dlq")
    assert "OrderEvent does not belong on inventory.events" in stock_dead.header("dlq.error")
    [order_dead] = outbox.on(f"{ORDERS_EVENTS}.dlq")
    assert "StockChanged does not belong on orders.events" in order_dead.header("dlq.error")
    assert await store.order(ORDER_ID) is None
    assert await store.stock("SKU-A") == {}
    assert await store.redis.dbsize() == 0


# ------------------------------------------------------------------ HTTP routes


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    # A fresh aiohttp app per test (an aiohttp app is bound to the first loop that
    # serves it) carrying the webview app's own routes and handlers.
    app = web.Application(middlewares=list(webview.app.web.web_app.middlewares))
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


async def post_order(
    client: TestClient, body: dict[str, Any], key: str | None = None
) -> ClientResponse:
    """POST /orders with exactly these body bytes (the idempotency fingerprint is of bytes)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/orders", data=orjson.dumps(body), headers=headers)


async def assert_nothing_accepted(outbox, store: ViewStore) -> None:
    assert outbox.sent == []
    assert await store.accepted_ids() == set()
    assert [k async for k in store.redis.scan_iter(match=IDEMPOTENCY + "*")] == []


JSON = {"Content-Type": "application/json"}

# --------------------------------------------------------- POST /orders rejected


async def test_malformed_json_is_400(client, outbox, store):
    resp = await client.post("/orders", data=b'{"customer_id": ', headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "malformed_json"
    await assert_nothing_accepted(outbox, store)


async def test_empty_body_is_400(client, outbox, store):
    resp = await client.post("/orders", data=b"", headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "empty_body"
    await assert_nothing_accepted(outbox, store)


async def test_missing_field_is_422_naming_it(client, outbox, store):
    body = order_body()
    del body["payment_token"]
    resp = await client.post("/orders", json=body)
    assert resp.status == 422
    answer = await resp.json()
    assert answer["error"] == "validation_error"
    assert answer["message"].startswith("payment_token:")
    assert [p["field"] for p in answer["problems"]] == ["payment_token"]
    await assert_nothing_accepted(outbox, store)


async def test_zero_quantity_is_422(client, outbox, store):
    resp = await client.post("/orders", json=order_body(items=[{"sku": "SKU-A", "quantity": 0}]))
    assert resp.status == 422
    answer = await resp.json()
    assert answer["problems"][0]["field"] == "items[0].quantity"
    await assert_nothing_accepted(outbox, store)


async def test_non_object_body_is_422(client, outbox, store):
    resp = await client.post("/orders", json=[order_body()])
    assert resp.status == 422
    assert (await resp.json())["message"] == "(body): must be a JSON object"
    await assert_nothing_accepted(outbox, store)


async def test_unknown_sku_is_422(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    items = [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-NOPE", "quantity": 1}]
    resp = await post_order(client, order_body(items=items), key="k-unknown")
    assert resp.status == 422
    answer = await resp.json()
    assert answer["error"] == "unknown_sku"
    assert answer["problems"] == [{"field": "items[1].sku", "message": "unknown SKU 'SKU-NOPE'"}]
    await assert_nothing_accepted(outbox, store)


async def test_a_body_over_the_limit_is_413(client, outbox, store):
    limit = webview.desk.settings.max_body_bytes
    declared = await client.post("/orders", data=b" " * (limit + 1), headers=JSON)
    assert declared.status == 413
    assert (await declared.json())["error"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    streamed = await client.post("/orders", data=chunks(), headers=JSON)
    assert streamed.status == 413
    assert (await streamed.json())["error"] == "body_too_large"
    await assert_nothing_accepted(outbox, store)


@pytest.mark.parametrize("key", ["k" * 129, "", "a b", "caf\u00e9"])
async def test_an_idempotency_key_out_of_bounds_is_422_naming_the_header(
    client, outbox, drive, store, key
):
    await stock(drive, "SKU-A")
    resp = await client.post(
        "/orders",
        data=orjson.dumps(order_body()),
        headers={**JSON, "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert resp.status == 422
    assert (await resp.json())["problems"][0]["field"] == "Idempotency-Key"
    await assert_nothing_accepted(outbox, store)


# --------------------------------------------------------- POST /orders accepted


async def test_an_order_for_known_skus_is_accepted_and_sent(client, outbox, drive, store):
    await stock(drive, "SKU-A", "SKU-B")
    items = [
        {"sku": "SKU-A", "quantity": 1},
        {"sku": "SKU-B", "quantity": 1},
        {"sku": "SKU-A", "quantity": 2},
    ]
    resp = await post_order(client, order_body(items=items))

    assert resp.status == 202
    answer = await resp.json()
    order_id = answer["order_id"]
    assert order_id.startswith("ord_")
    assert resp.headers["Location"] == f"/orders/{order_id}"
    assert answer["links"] == {"self": f"/orders/{order_id}"}
    assert (answer["status"], answer["customer_id"]) == ("PENDING", "cust-1")
    merged = [{"sku": "SKU-A", "quantity": 3}, {"sku": "SKU-B", "quantity": 1}]
    assert answer["items"] == merged

    assert outbox.topics() == [ORDERS_COMMANDS]
    [sent] = outbox.on(ORDERS_COMMANDS)
    assert sent.key == order_id.encode()
    assert sent.envelope.correlation_id == order_id
    assert sent.message == PlaceOrder(
        order_id=order_id,
        customer_id="cust-1",
        items=(OrderLine(sku="SKU-A", quantity=3), OrderLine(sku="SKU-B", quantity=1)),
        payment_token="tok_ok",
        shipping_address=Address.model_validate(ADDRESS.model_dump()),
    )
    accepted = await store.accepted(order_id)
    assert accepted is not None
    assert (accepted["order_id"], accepted["status"], accepted["items"]) == (
        order_id,
        "PENDING",
        merged,
    )


async def test_without_a_key_each_post_is_a_new_order(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    first = await post_order(client, order_body())
    second = await post_order(client, order_body())
    assert (first.status, second.status) == (202, 202)
    ids = {(await first.json())["order_id"], (await second.json())["order_id"]}
    assert len(ids) == 2
    assert {m.order_id for m in outbox.messages(ORDERS_COMMANDS)} == ids
    assert await store.accepted_ids() == ids


async def test_a_retry_with_the_same_key_and_body_resends_the_same_order(
    client, outbox, drive, store
):
    await stock(drive, "SKU-A")
    first = await post_order(client, order_body(), key="retry-1")
    again = await post_order(client, order_body(), key="retry-1")

    assert (first.status, again.status) == (202, 202)
    order_id = (await first.json())["order_id"]
    assert (await again.json())["order_id"] == order_id
    assert again.headers["Location"] == f"/orders/{order_id}"
    sent = outbox.on(ORDERS_COMMANDS)
    assert len(sent) == 2
    assert sent[0].message == sent[1].message
    assert sent[1].message.order_id == order_id
    assert [s.key for s in sent] == [order_id.encode()] * 2
    assert await store.accepted_ids() == {order_id}


async def test_the_same_key_with_another_body_is_422(client, outbox, drive, store):
    await stock(drive, "SKU-A", "SKU-B")
    first = await post_order(client, order_body(), key="reused-1")
    assert first.status == 202
    order_id = (await first.json())["order_id"]

    other = order_body(items=[{"sku": "SKU-B", "quantity": 1}])
    reused = await post_order(client, other, key="reused-1")
    assert reused.status == 422
    assert (await reused.json())["error"] == "idempotency_key_reused"
    assert [m.order_id for m in outbox.messages(ORDERS_COMMANDS)] == [order_id]

    # The first body is still the one the key stands for.
    retried = await post_order(client, order_body(), key="reused-1")
    assert (retried.status, (await retried.json())["order_id"]) == (202, order_id)
    assert await store.accepted_ids() == {order_id}


# ------------------------------------------------- re-drive of unconfirmed orders

redrive = inspect.unwrap(webview.redrive_unconfirmed_orders)


async def test_an_accepted_order_waits_for_its_first_event(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    order_id = (await (await post_order(client, order_body())).json())["order_id"]
    assert await store.unconfirmed_ids() == {order_id}

    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    assert await store.unconfirmed_ids() == set()
    # Confirmed for good: a replayed projection or a retry does not bring it back.
    assert not await store.await_confirmation(order_id, {}, time.time(), time.time())
    assert await store.unconfirmed_ids() == set()


async def test_an_unconfirmed_order_is_sent_again_once_due(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    order_id = (await (await post_order(client, order_body())).json())["order_id"]
    [first] = outbox.messages(ORDERS_COMMANDS)

    await redrive()  # not due yet
    assert outbox.messages(ORDERS_COMMANDS) == [first]

    # As if the re-send time had come: the same PlaceOrder goes out again, once.
    await store.redis.zadd(UNCONFIRMED, {order_id: time.time() - 1})
    await redrive()
    await redrive()
    assert outbox.messages(ORDERS_COMMANDS) == [first, first]
    [_, again] = outbox.on(ORDERS_COMMANDS)
    assert again.key == order_id.encode()
    assert again.envelope.correlation_id == order_id
    assert webview.node.metrics.orders_redriven._value.get() >= 1
    # The next try waits at least ORDERSAGA_REDRIVE_AFTER_S.
    next_at = await store.redis.zscore(UNCONFIRMED, order_id)
    assert next_at >= time.time() + webview.node.settings.redrive_after_s - 1


async def test_an_order_past_the_redrive_window_is_given_up(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    order_id = (await (await post_order(client, order_body())).json())["order_id"]
    # Accepted so long ago that the orchestrator may have run and forgotten it.
    record = orjson.loads(await store.redis.hget(UNCONFIRMED_ORDERS, order_id))
    record["accepted_at"] -= webview.node.settings.redrive_window_s + 1
    await store.redis.hset(UNCONFIRMED_ORDERS, order_id, orjson.dumps(record))
    await store.redis.zadd(UNCONFIRMED, {order_id: time.time() - 1})
    given_up = webview.node.metrics.orders_unstarted._value.get()

    await redrive()

    assert len(outbox.messages(ORDERS_COMMANDS)) == 1
    assert await store.unconfirmed_ids() == set()
    assert webview.node.metrics.orders_unstarted._value.get() == given_up + 1


async def test_a_retry_after_the_window_sends_nothing(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    first = await post_order(client, order_body(), key="late-retry")
    order_id = (await first.json())["order_id"]
    raw = await store.redis.get(idempotency_key("order", "late-retry"))
    record = orjson.loads(raw)
    record["accepted_at"] -= webview.node.settings.redrive_window_s + 1
    await store.redis.set(idempotency_key("order", "late-retry"), orjson.dumps(record))
    await store.drop_unconfirmed(order_id)

    again = await post_order(client, order_body(), key="late-retry")

    assert (again.status, (await again.json())["order_id"]) == (202, order_id)
    assert len(outbox.messages(ORDERS_COMMANDS)) == 1
    # It answers with when the key was first used, not with the retry's time.
    body = await (await client.get(f"/orders/{order_id}")).json()
    assert body["placed_at"] == datetime.fromtimestamp(record["accepted_at"], UTC).isoformat()


async def test_a_retry_of_a_projected_order_sends_nothing(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    order_id = (await (await post_order(client, order_body(), key="seen")).json())["order_id"]
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    again = await post_order(client, order_body(), key="seen")
    assert (await again.json())["order_id"] == order_id
    assert len(outbox.messages(ORDERS_COMMANDS)) == 1
    assert await store.unconfirmed_ids() == set()


# ----------------------------------------------------------- stale open views

refresh = inspect.unwrap(webview.refresh_stale_order_views)


async def test_an_open_view_that_stays_unchanged_asks_for_the_latest_event(drive, outbox, store):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
    assert await store.open_ids() == {ORDER_ID}

    await refresh()  # changed just now: nothing asked
    assert outbox.messages(ORDERS_COMMANDS) == []

    await store.redis.zadd(OPEN, {ORDER_ID: time.time() - 1})  # as if the wait were over
    await refresh()
    await refresh()  # claimed: the next ask waits
    assert outbox.messages(ORDERS_COMMANDS) == [RepublishOrder(order_id=ORDER_ID)]
    [asked] = outbox.on(ORDERS_COMMANDS)
    assert asked.key == ORDER_ID.encode()
    next_at = await store.redis.zscore(OPEN, ORDER_ID)
    assert next_at >= time.time() + store.refresh_after_s - 1


async def test_a_view_leaves_the_open_set_once_terminal(drive, outbox, store):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(
            order_event("OrderCompleted", 5, "COMPLETED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )
        # A late, older event does not reopen it.
        await d.put(
            order_event("StockReserved", 2, "STOCK_RESERVED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )
    assert await store.open_ids() == set()
    await store.redis.zadd(OPEN, {"ord-gone": time.time() - 1})  # a view that expired
    await refresh()
    assert outbox.messages(ORDERS_COMMANDS) == []
    assert await store.open_ids() == set()


# ------------------------------------------------------------------ order reads


async def test_an_order_is_readable_right_after_it_is_accepted(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    placed = await post_order(client, order_body())
    order_id = (await placed.json())["order_id"]

    got = await client.get(f"/orders/{order_id}")
    assert got.status == 200
    body = await got.json()
    assert (body["order_id"], body["status"], body["customer_id"]) == (
        order_id,
        "PENDING",
        "cust-1",
    )
    assert body["items"] == [{"sku": "SKU-A", "quantity": 1}]
    history = await client.get(f"/orders/{order_id}/events")
    assert history.status == 200
    assert (await history.json()) == {"order_id": order_id, "events": []}

    cancel = await client.post(f"/orders/{order_id}/cancel", headers=JSON)
    assert cancel.status == 202
    assert outbox.messages(ORDERS_COMMANDS)[-1] == CancelOrder(order_id=order_id)

    # Once projected, the view answers instead (its customer is the event's).
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    body = await (await client.get(f"/orders/{order_id}")).json()
    assert (body["customer_id"], body["events_seen"]) == ("cust-42", 1)


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
    assert bad_wait.status == 422
    assert (await bad_wait.json())["problems"][0]["field"] == "wait"

    terminal = await client.post("/orders/ord-done/cancel", headers=JSON)
    assert terminal.status == 409
    assert (await terminal.json())["status"] == "CANCELLED"
    assert outbox.sent == []

    in_flight = await client.post(f"/orders/{ORDER_ID}/cancel", headers=JSON)
    assert in_flight.status == 202
    [sent] = outbox.on(ORDERS_COMMANDS)
    assert sent.key == ORDER_ID.encode()
    assert sent.message == CancelOrder(order_id=ORDER_ID)


async def test_unknown_orders_are_404(client, outbox):
    for resp in (
        await client.get("/orders/ord-nope"),
        await client.get("/orders/ord-nope/events"),
        await client.post("/orders/ord-nope/cancel", headers=JSON),
        await client.get("/orders/ord-nope?wait=0.2"),
    ):
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"
    assert outbox.sent == []


async def test_a_long_poll_answers_once_the_order_is_finished(client, outbox, drive):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        started = time.monotonic()
        poll = asyncio.ensure_future(client.get(f"/orders/{ORDER_ID}?wait=10"))
        await asyncio.sleep(0.05)
        assert not poll.done()
        await d.put(
            order_event("OrderCancelled", 2, "CANCELLED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )
        resp = await asyncio.wait_for(poll, timeout=2.0)
    assert resp.status == 200
    assert (await resp.json())["status"] == "CANCELLED"
    assert time.monotonic() - started < 2.0


# ------------------------------------------------------------------- inventory


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
    assert (await resp.json()) == {"items": []}


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
    assert sent.envelope.correlation_id == restock_id


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
