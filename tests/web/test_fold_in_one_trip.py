"""A fetch's order events folded in one Redis round trip, against a real Redis (valkey)."""

from __future__ import annotations

from ordersaga.web.read_model import OrderProjection, ViewStore
from tests.harness import order_event


def projection(order_id: str, seq: int, status: str) -> OrderProjection:
    event = order_event("OrderPlaced", seq, status, order_id=order_id)
    entry = {"seq": seq, "type": event.name, "status": status, "detail": None, "at_epoch": 1.0}
    return OrderProjection(order_id, seq, event.order.model_dump(mode="json"), entry, False, 1.0)


async def test_events_folded_at_once_apply_each_once_per_seq(store: ViewStore):
    applied = await store.project_orders(
        [
            projection("ord_a", 1, "PENDING"),
            projection("ord_b", 1, "PENDING"),
            projection("ord_a", 2, "CUSTOMER_VALIDATED"),
            projection("ord_a", 2, "CUSTOMER_VALIDATED"),  # a replay within the same fetch
            projection("ord_b", 1, "PENDING"),  # and one of an event already folded
        ]
    )
    assert applied == [True, True, True, False, False]
    a = await store.order("ord_a")
    assert a is not None and a["seq"] == 2 and a["order"]["status"] == "CUSTOMER_VALIDATED"
    assert [e["seq"] for e in await store.events("ord_a")] == [1, 2]
    assert [e["seq"] for e in await store.events("ord_b")] == [1]


async def test_folding_at_once_leaves_the_view_one_by_one_folding_leaves(store: ViewStore):
    events = [projection("ord_c", seq, "PENDING") for seq in (1, 2, 3)]
    await store.project_orders(events)
    for p in events:
        await store.project_order(
            "ord_d", p.seq, {**p.snapshot, "order_id": "ord_d"}, p.entry, False, 1.0
        )
    c, d = await store.order("ord_c"), await store.order("ord_d")
    assert c is not None and d is not None
    assert c["seq"] == d["seq"] == 3
    assert await store.events("ord_c") == await store.events("ord_d")


async def test_a_redis_that_lost_its_scripts_still_folds(store: ViewStore):
    # A restarted (or flushed) Redis answers NOSCRIPT to a call by sha alone.
    await store.redis.script_flush()
    assert await store.project_orders([projection("ord_e", 1, "PENDING")]) == [True]
    await store.redis.script_flush()
    assert await store.project_stocks([("SKU-E", 2, {"sku": "SKU-E", "version": 2})]) == [True]
    assert await store.project_stocks([("SKU-E", 1, {"sku": "SKU-E", "version": 1})]) == [False]
    assert (await store.stock("SKU-E"))["SKU-E"]["version"] == 2
    e = await store.order("ord_e")
    assert e is not None and e["seq"] == 1
