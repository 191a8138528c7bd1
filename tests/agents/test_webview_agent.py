"""The webview group shell: the read-model projections and the re-drives.

The read model lives in Redis, and so do the accepted orders: every test here
runs against the session's real valkey-server, on a database flushed before the
test (``view_store`` in ``tests/harness.py``). The HTTP routes are tested in
``tests/web``; the re-drive tests accept their orders over HTTP.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from ordersaga.agents import repairs, webview
from ordersaga.schemas.messages import ForgetOrders, RepublishOrder
from ordersaga.shell.topics import INVENTORY_EVENTS, ORDERS_COMMANDS, ORDERS_EVENTS
from ordersaga.web.redis_keys import EVENTS, OPEN, ORDER, UNCONFIRMED, UNCONFIRMED_ORDERS
from tests.harness import ORDER_ID, order_body, order_event, post_order, stock, stock_changed

# Every test here needs Redis: the projections write to it, the routes read it.
pytestmark = pytest.mark.usefixtures("store")


@pytest.fixture
def outbox(capture):
    return capture(webview.node)


# -------------------------------------------------------------------------- projections


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


# ------------------------------------------------------- re-drive of unconfirmed orders


def test_the_webview_runs_its_two_repair_loops_as_timers():
    timers = {task.__name__ for task in webview.app._app_tasks}
    assert {"redrive_unconfirmed_orders", "refresh_stale_order_views"} <= timers


async def redrive() -> None:
    """One tick of the webview's re-send loop."""
    await repairs.redrive_unconfirmed_orders(webview.node, webview.desk)


async def test_an_accepted_order_waits_for_its_first_event(client, outbox, drive, store, intake):
    await stock(drive, "SKU-A")
    order_id = (await (await post_order(client, order_body())).json())["order_id"]
    assert await intake.unconfirmed_ids() == {order_id}

    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    assert await intake.unconfirmed_ids() == set()
    # Confirmed for good: a replayed projection or a retry does not bring it back.
    assert not await intake.await_confirmation(order_id, {}, time.time(), time.time())
    assert await intake.unconfirmed_ids() == set()


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
    [original, again] = outbox.on(ORDERS_COMMANDS)
    assert again.key == order_id.encode()
    # The re-send carries the correlation id of the request that placed the order.
    assert again.envelope.correlation_id == original.envelope.correlation_id
    assert original.envelope.correlation_id.startswith("cor_")
    assert webview.node.metrics.orders_redriven._value.get() >= 1
    # The next try waits at least ORDERSAGA_REDRIVE_AFTER_S.
    next_at = await store.redis.zscore(UNCONFIRMED, order_id)
    assert next_at >= time.time() + webview.node.settings.redrive_after_s - 1


async def test_an_order_past_the_redrive_window_is_given_up(client, outbox, drive, store, intake):
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
    assert await intake.unconfirmed_ids() == set()
    assert webview.node.metrics.orders_unstarted._value.get() == given_up + 1


# --------------------------------------------------------------------- stale open views


async def refresh() -> None:
    """One tick of the webview's loop that refreshes stale open views."""
    await repairs.refresh_stale_order_views(webview.node, webview.desk)


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
