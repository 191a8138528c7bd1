"""The web view folds a fetch's order events at once (``Node.handle_events``).

What the direct delivery of a running worker hands the shell: consecutive records
of one fetch as Faust events. The read model is the session's real valkey; the
records are encoded with the real codec.
"""

from __future__ import annotations

from typing import Any

import faust
import pytest
from faust.types.tuples import Message as FaustMessage

from ordersaga.agents import webview
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import ORDERS_EVENTS
from tests.harness import order_event, stock_changed

pytestmark = pytest.mark.usefixtures("store")


@pytest.fixture
def outbox(capture):
    return capture(webview.node)


def fetched(*records: tuple[Any, str]) -> list[faust.EventT]:
    """Events as the consumer hands them over: one partition, consecutive offsets."""
    events = []
    for offset, (message, key) in enumerate(records):
        encoded = encode(message, key=key, correlation_id=key)
        record = FaustMessage(
            topic=ORDERS_EVENTS,
            partition=0,
            offset=offset,
            timestamp=0.0,
            timestamp_type=0,
            headers=encoded.headers,
            key=encoded.key,
            value=encoded.value,
            checksum=None,
        )
        events.append(faust.Event(webview.app, record.key, record.value, record.headers, record))
    return events


async def fold(events: list[faust.EventT], many: Any) -> None:
    await webview.node.handle_events(
        events,
        webview.project_order_event,
        many,
        (type(order_event("OrderPlaced", 1, "PENDING")),),
        "project_orders",
        {},
    )


async def test_a_fetch_of_order_events_folds_into_the_views(outbox, store):
    answers: list[Any] = []

    async def many(pairs: list[Any]) -> list[Any]:
        answers.append(await webview.fold_order_events(pairs))
        return answers[-1]

    await fold(
        fetched(
            (order_event("OrderPlaced", 1, "PENDING", order_id="ord_x"), "ord_x"),
            (stock_changed(), "SKU-A"),  # does not belong: dead-lettered on its own
            (order_event("OrderPlaced", 1, "PENDING", order_id="ord_y"), "ord_y"),
            (order_event("StockReserved", 2, "STOCK_RESERVED", order_id="ord_x"), "ord_x"),
        ),
        many,
    )
    assert answers == [[None, None, None]]  # one call for the three order events, all applied
    x, y = await store.order("ord_x"), await store.order("ord_y")
    assert x is not None and x["seq"] == 2 and x["order"]["status"] == "STOCK_RESERVED"
    assert y is not None and y["seq"] == 1
    [dead] = outbox.on(f"{ORDERS_EVENTS}.dlq")
    assert "StockChanged does not belong on orders.events" in dead.header("dlq.error")


async def test_what_the_batch_cannot_apply_goes_one_by_one(outbox, store):
    async def many(pairs: list[Any]) -> list[Any]:
        raise ConnectionError("the pipeline broke")

    await fold(
        fetched(
            (order_event("OrderPlaced", 1, "PENDING", order_id="ord_z"), "ord_z"),
            (order_event("StockReserved", 2, "STOCK_RESERVED", order_id="ord_z"), "ord_z"),
        ),
        many,
    )
    z = await store.order("ord_z")
    assert z is not None and z["seq"] == 2
    assert [e["seq"] for e in await store.events("ord_z")] == [1, 2]
    assert outbox.sent == []


async def test_a_fetch_of_stock_events_keeps_each_skus_newest_in_one_call(outbox, store):
    calls: list[Any] = []
    original = store.project_stocks

    async def counted(levels: list[Any]) -> list[Any]:
        calls.append([(sku, version) for sku, version, _ in levels])
        return await original(levels)

    store.project_stocks = counted  # the real store, its calls noted
    try:
        outcomes = await webview.fold_stock_events(
            [
                (None, stock_changed("SKU-A", version=1, available=9)),
                (None, stock_changed("SKU-B", version=4, available=6)),
                (None, stock_changed("SKU-A", version=3, available=7)),
                (None, stock_changed("SKU-A", version=2, available=8)),  # older, arrived later
            ]
        )
    finally:
        del store.project_stocks
    assert calls == [[("SKU-A", 3), ("SKU-B", 4)]]
    assert outcomes == ["unchanged", None, None, "unchanged"]
    levels = await store.stock("SKU-A", "SKU-B")
    assert levels["SKU-A"]["version"] == 3 and levels["SKU-A"]["available"] == 7
    assert levels["SKU-B"]["available"] == 6
    assert outbox.sent == []
