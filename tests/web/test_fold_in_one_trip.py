"""A fetch's order events folded in one Redis round trip, against a real Redis (valkey)."""

from __future__ import annotations

from ordersaga.web.read_model import OrderProjection, ViewStore
from ordersaga.web.redis_keys import CUSTOMER_ORDERS, ORDERS_BY_TIME
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


def timed(order_id: str, seq: int, name: str, at: float) -> OrderProjection:
    p = projection(order_id, seq, "PENDING")
    return p._replace(entry={**p.entry, "type": name, "at_epoch": at})


async def test_each_event_counts_the_time_since_the_order_s_previous_one(store: ViewStore):
    at = 1_796_000_000.0
    await store.project_orders(
        [
            timed("ord_t", 1, "OrderPlaced", at),
            timed("ord_t", 2, "CustomerValidated", at + 0.25),
            timed("ord_t", 2, "CustomerValidated", at + 9),  # a replay counts nothing
            timed("ord_t", 4, "StockReserved", at + 1.0),
            timed("ord_t", 3, "Late", at + 0.5),  # older than the view: dropped
        ]
    )
    [(_, figures)] = await store.stats(1, now=at)
    assert figures["step:CustomerValidated:count"] == "1"
    assert float(figures["step:CustomerValidated:sum"]) == 0.25
    assert figures["step:StockReserved:count"] == "1"
    assert float(figures["step:StockReserved:sum"]) == 0.75
    assert not any(name.startswith("step:OrderPlaced") for name in figures)
    assert not any(name.startswith("step:Late") for name in figures)


async def test_an_order_is_filed_once_by_its_first_projected_event(store: ViewStore):
    await store.project_orders([projection("ord_f", seq, "PENDING") for seq in (1, 2, 3)])
    customer = (await store.order("ord_f") or {})["order"]["customer_id"]
    filed = await store.redis.zrange(CUSTOMER_ORDERS + customer, 0, -1, withscores=True)
    assert filed == [(b"ord_f", 1.0)]
    assert await store.redis.zrange(ORDERS_BY_TIME, 0, -1) == [b"ord_f"]


async def test_a_decisions_earlier_entries_are_appended_once_before_its_own(store: ViewStore):
    placed = projection("ord_m", 1, "PENDING")
    shipped = {**placed.entry, "seq": 2, "type": "ShipmentPrepared", "status": "PAID"}
    closing = projection("ord_m", 3, "COMPLETED")._replace(
        entry={**placed.entry, "seq": 3, "type": "OrderCompleted", "status": "COMPLETED"},
        earlier=(shipped,),
    )
    assert await store.project_orders([placed, closing, closing]) == [True, True, False]
    assert [(e["seq"], e["type"]) for e in await store.events("ord_m")] == [
        (1, "OrderPlaced"),
        (2, "ShipmentPrepared"),
        (3, "OrderCompleted"),
    ]
    # A replay of the same decision, alone, appends nothing either.
    assert await store.project_order(*closing) is False
    assert len(await store.events("ord_m")) == 3
