"""Unit tests of the stock rules: per-SKU holds, restocks and the per-order gather."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersaga.saga.inventory import (
    Hold,
    InvalidCommand,
    StockRecord,
    apply_sku_command,
    restock,
)
from ordersaga.schemas.messages import (
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
)

ORDER = "ord-1"
SKU = "SKU-A"
PRICE = 250
STOCK = 10


def stocked(quantity: int = STOCK, sku: str = SKU, price: int = PRICE) -> StockRecord:
    return restock(
        None, RestockSku(restock_id=f"init-{sku}", sku=sku, quantity=quantity, unit_price=price)
    )


def cmd(op: str, quantity: int = 3, order_id: str = ORDER, sku: str = SKU) -> SkuCommand:
    return SkuCommand(op=op, order_id=order_id, sku=sku, quantity=quantity)


def assert_conserved(record: StockRecord) -> None:
    assert record.put_in == record.available + record.reserved + record.committed
    assert min(record.available, record.reserved, record.committed) >= 0


# ------------------------------------------------------------------ restock


def test_restock_creates_a_sku_with_its_price_and_stock():
    record = restock(None, RestockSku(restock_id="r1", sku=SKU, quantity=7, unit_price=PRICE))
    assert (record.sku, record.unit_price, record.put_in, record.available) == (SKU, PRICE, 7, 7)
    assert (record.reserved, record.committed, record.version) == (0, 0, 1)
    assert record.restocks == ("r1",)
    assert_conserved(record)


def test_creating_a_sku_without_unit_price_is_an_invalid_command():
    with pytest.raises(InvalidCommand):
        restock(None, RestockSku(restock_id="r1", sku=SKU, quantity=7))


def test_restock_tops_up_and_keeps_the_price_when_none_is_given():
    # Given a SKU with 10 in stock
    record = stocked()
    # When it is restocked by 5 without a price
    topped = restock(record, RestockSku(restock_id="r2", sku=SKU, quantity=5))
    # Then stock grows and the price stays
    assert (topped.put_in, topped.available, topped.unit_price) == (15, 15, PRICE)
    assert topped.version == record.version + 1


def test_restock_with_a_new_price_reprices_the_sku():
    topped = restock(stocked(), RestockSku(restock_id="r2", sku=SKU, quantity=0, unit_price=999))
    assert topped.unit_price == 999
    assert topped.put_in == STOCK


def test_restock_with_the_same_restock_id_twice_adds_once():
    # Given a SKU restocked once with id r2
    command = RestockSku(restock_id="r2", sku=SKU, quantity=5)
    once = restock(stocked(), command)
    # When the same restock is redelivered
    twice = restock(once, command)
    # Then nothing changes
    assert twice is once
    assert twice.put_in == STOCK + 5


def test_creating_restock_redelivered_adds_once():
    command = RestockSku(restock_id="r1", sku=SKU, quantity=5, unit_price=PRICE)
    once = restock(None, command)
    assert restock(once, command) is once


def test_stock_changed_event_carries_the_levels():
    record = stocked()
    record, _ = apply_sku_command(record, cmd("reserve", 3))
    assert record.changed_event() == StockChanged(
        sku=SKU,
        version=record.version,
        unit_price=PRICE,
        put_in=10,
        available=7,
        reserved=3,
        committed=0,
    )


# ---------------------------------------------------- SKU commands over every hold state


def record_with_hold(hold: str | None) -> StockRecord:
    """A SKU with 10 in stock where order ORDER holds 3 in the given state."""
    record = stocked()
    steps = {
        None: [],
        "reserved": [cmd("reserve")],
        "committed": [cmd("reserve"), cmd("commit")],
        "released": [cmd("reserve"), cmd("release")],
        "rejected": [cmd("reserve", STOCK + 1)],
    }[hold]
    for step in steps:
        record, _ = apply_sku_command(record, step)
    assert (record.holds[ORDER].state if ORDER in record.holds else None) == hold
    return record


# hold before, op -> ok, reason, hold after, (d available, d reserved, d committed), version bump
SKU_TABLE = [
    (None, "reserve", True, None, "reserved", (-3, +3, 0), True),
    (None, "release", True, None, "released", (0, 0, 0), True),
    (None, "commit", False, "not_reserved", None, (0, 0, 0), False),
    ("reserved", "reserve", True, None, "reserved", (0, 0, 0), False),
    ("reserved", "release", True, None, "released", (+3, -3, 0), True),
    ("reserved", "commit", True, None, "committed", (0, -3, +3), True),
    ("committed", "reserve", True, None, "committed", (0, 0, 0), False),
    ("committed", "release", True, None, "released", (+3, 0, -3), True),
    ("committed", "commit", True, None, "committed", (0, 0, 0), False),
    ("released", "reserve", False, "released", "released", (0, 0, 0), False),
    ("released", "release", True, None, "released", (0, 0, 0), False),
    ("released", "commit", False, "not_reserved", "released", (0, 0, 0), False),
    ("rejected", "reserve", False, "out_of_stock", "rejected", (0, 0, 0), False),
    ("rejected", "release", True, None, "rejected", (0, 0, 0), False),
    ("rejected", "commit", False, "not_reserved", "rejected", (0, 0, 0), False),
]


@pytest.mark.parametrize(
    ("hold", "op", "ok", "reason", "hold_after", "deltas", "bumps"),
    SKU_TABLE,
    ids=[f"{h}-{o}" for h, o, *_ in SKU_TABLE],
)
def test_sku_command_over_every_hold_state(hold, op, ok, reason, hold_after, deltas, bumps):
    # Given a SKU where the order's hold is in some state
    record = record_with_hold(hold)
    # When a command for that order arrives
    after, result = apply_sku_command(record, cmd(op))
    # Then the answer, the hold and the levels are as the rules say
    assert after is not None
    assert result == SkuResult(
        op=op, order_id=ORDER, sku=SKU, ok=ok, unit_price=PRICE, reason=reason
    )
    assert (after.holds[ORDER].state if ORDER in after.holds else None) == hold_after
    assert (
        after.available - record.available,
        after.reserved - record.reserved,
        after.committed - record.committed,
    ) == deltas
    assert after.put_in == record.put_in
    assert after.version == record.version + (1 if bumps else 0)
    if not bumps:
        assert after is record
    assert_conserved(after)


@pytest.mark.parametrize(("hold", "op"), [(h, o) for h, o, *_ in SKU_TABLE])
def test_repeated_sku_command_gives_the_same_answer_and_changes_nothing(hold, op):
    # Given a SKU where a command was applied once
    once, first = apply_sku_command(record_with_hold(hold), cmd(op))
    # When it is redelivered
    twice, second = apply_sku_command(once, cmd(op))
    # Then the answer is the same and nothing moves
    assert second == first
    assert twice is once


def test_reserve_short_is_rejected_and_remembered():
    # Given a SKU with 10 in stock
    record = stocked()
    # When an order asks for 11
    after, result = apply_sku_command(record, cmd("reserve", 11))
    # Then it is refused out of stock and the levels are untouched
    assert not result.ok and result.reason == "out_of_stock"
    assert after is not None
    assert after.holds[ORDER] == Hold(quantity=0, state="rejected")
    assert (after.available, after.reserved) == (10, 0)
    # And a later restock does not let the same order's redelivered reserve through
    after = restock(after, RestockSku(restock_id="more", sku=SKU, quantity=100))
    _, again = apply_sku_command(after, cmd("reserve", 11))
    assert not again.ok


def test_reserve_of_exactly_the_available_stock_succeeds():
    after, result = apply_sku_command(stocked(), cmd("reserve", STOCK))
    assert result.ok
    assert after is not None and after.available == 0 and after.reserved == STOCK


def test_late_reserve_after_release_is_refused():
    # Given a release that arrived before its reservation (a tombstone)
    record, released = apply_sku_command(stocked(), cmd("release"))
    assert released.ok
    # When the reservation arrives late
    after, result = apply_sku_command(record, cmd("reserve"))
    # Then it is refused and no stock is held
    assert not result.ok and result.reason == "released"
    assert after is not None
    assert (after.available, after.reserved) == (STOCK, 0)


def test_release_gives_back_the_held_quantity_even_if_the_command_says_otherwise():
    record = record_with_hold("reserved")
    after, result = apply_sku_command(record, cmd("release", 1))
    assert result.ok
    assert after is not None and (after.available, after.reserved) == (STOCK, 0)


def test_holds_of_different_orders_are_independent():
    record = stocked()
    record, a = apply_sku_command(record, cmd("reserve", 4, order_id="o-a"))
    record, b = apply_sku_command(record, cmd("reserve", 4, order_id="o-b"))
    record, c = apply_sku_command(record, cmd("reserve", 4, order_id="o-c"))
    assert (a.ok, b.ok, c.ok) == (True, True, False)
    assert record is not None
    record, _ = apply_sku_command(record, cmd("release", 4, order_id="o-a"))
    assert record is not None
    assert (record.available, record.reserved) == (6, 4)


@pytest.mark.parametrize(
    ("op", "ok", "reason"),
    [("reserve", False, "unknown_sku"), ("release", True, None), ("commit", False, "unknown_sku")],
)
def test_sku_command_on_an_unknown_sku(op, ok, reason):
    record, result = apply_sku_command(None, cmd(op))
    assert record is None
    assert result == SkuResult(op=op, order_id=ORDER, sku=SKU, ok=ok, unit_price=0, reason=reason)


# ------------------------------------------------------------------ conservation (property)

sku_actions = st.one_of(
    st.tuples(
        st.just("sku"),
        st.sampled_from(["reserve", "release", "commit"]),
        st.sampled_from(["o1", "o2", "o3"]),
        st.integers(min_value=1, max_value=8),
    ),
    st.tuples(
        st.just("restock"),
        st.sampled_from(["r1", "r2", "r3", "r4"]),
        st.integers(min_value=0, max_value=8),
        st.none() | st.integers(min_value=1, max_value=1000),
    ),
)


@settings(max_examples=300, deadline=None)
@given(actions=st.lists(sku_actions, max_size=40))
def test_levels_are_conserved_after_any_sequence(actions):
    # Given a SKU with some stock
    record = stocked(5)
    # When any sequence of restocks and order commands (with repeats) is applied
    for action in actions:
        before = record
        if action[0] == "restock":
            _, restock_id, quantity, price = action
            record = restock(
                record,
                RestockSku(restock_id=restock_id, sku=SKU, quantity=quantity, unit_price=price),
            )
        else:
            _, op, order_id, quantity = action
            new, _ = apply_sku_command(record, cmd(op, quantity, order_id))
            assert new is not None
            record = new
        # Then put_in == available + reserved + committed, nothing negative
        assert_conserved(record)
        # And the levels match what the holds say
        holds = record.holds.values()
        assert record.reserved == sum(h.quantity for h in holds if h.state == "reserved")
        assert record.committed == sum(h.quantity for h in holds if h.state == "committed")
        # And the version grows with every change and only then
        assert record.version in (before.version, before.version + 1)
        assert (record.version == before.version) == (record == before)
    # And put_in counts each distinct restock id once
    distinct = {a[1]: a[2] for a in reversed(actions) if a[0] == "restock"}
    assert record.put_in == 5 + sum(distinct.values())
