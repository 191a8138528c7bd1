"""Unit tests of the stock rules: per-SKU holds, restocks and derived levels."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersaga.saga.sku_holds import (
    DEFAULT_LOW_STOCK_AT,
    DEFAULT_MAX_HOLDS,
    Hold,
    InvalidCommand,
    SkuLevels,
    SkuTotals,
    apply_sku_command,
    forget_holds,
    levels_of,
    low_stock_crossing,
    restock,
    totals_of,
)
from ordersaga.schemas.messages import (
    LowStock,
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
)

ORDER = "ord-1"
SKU = "SKU-A"
PRICE = 250
STOCK = 10


@dataclass
class Sku:
    """One SKU as the inventory shell keeps it: its record, its holds by order, their sums."""

    record: SkuLevels | None = None
    holds: dict[str, Hold] = field(default_factory=dict)
    totals: SkuTotals = field(default_factory=SkuTotals)

    def apply(self, command: SkuCommand, max_holds: int = DEFAULT_MAX_HOLDS) -> SkuResult:
        before = self.holds.get(command.order_id)
        # As the shell calls it: a command no gather rolls back remembers its refusal.
        after, result = apply_sku_command(
            self.record,
            self.totals,
            before,
            command,
            max_holds,
            remember_busy=command.reply_to == "orchestrator",
        )
        if after is not None:
            self.holds[command.order_id] = after
            self.totals.count(before, after)
        return result

    def restock(self, command: RestockSku) -> Sku:
        self.record = restock(self.record, self.totals, command)
        return self

    def forget(self, order_ids: list[str]) -> None:
        assert self.record is not None
        present = [self.holds[o] for o in order_ids if o in self.holds]
        self.record, dropped = forget_holds(self.record, self.totals, present)
        for hold in dropped:
            del self.holds[hold.order_id]
            self.totals.count(hold, None)

    @property
    def levels(self) -> StockChanged:
        assert self.record is not None
        return levels_of(self.record, self.totals)

    def state(self, order_id: str = ORDER) -> str | None:
        hold = self.holds.get(order_id)
        return hold.state if hold else None

    def copy(self) -> Sku:
        return copy.deepcopy(self)


def stocked(quantity: int = STOCK, sku: str = SKU, price: int = PRICE) -> Sku:
    return Sku().restock(
        RestockSku(restock_id=f"init-{sku}", sku=sku, quantity=quantity, unit_price=price)
    )


def cmd(op: str, quantity: int = 3, order_id: str = ORDER, sku: str = SKU) -> SkuCommand:
    return SkuCommand(op=op, order_id=order_id, sku=sku, quantity=quantity)


def assert_conserved(sku: Sku) -> None:
    levels = sku.levels
    assert levels.put_in == levels.available + levels.reserved + levels.committed
    assert min(levels.available, levels.reserved, levels.committed) >= 0
    # The running sums are what a rebuild from the holds gives.
    rebuilt = totals_of(sku.holds.values()).get(levels.sku, SkuTotals())
    assert (rebuilt.reserved, rebuilt.committed, rebuilt.holds) == (
        sku.totals.reserved,
        sku.totals.committed,
        sku.totals.holds,
    )


# ------------------------------------------------------------------ restock


def test_restock_creates_a_sku_with_its_price_and_stock():
    sku = Sku().restock(RestockSku(restock_id="r1", sku=SKU, quantity=7, unit_price=PRICE))
    levels = sku.levels
    assert (levels.sku, levels.unit_price, levels.put_in, levels.available) == (SKU, PRICE, 7, 7)
    assert (levels.reserved, levels.committed, levels.version) == (0, 0, 1)
    assert sku.record is not None and sku.record.restocks == ("r1",)
    assert_conserved(sku)


def test_creating_a_sku_without_unit_price_is_an_invalid_command():
    with pytest.raises(InvalidCommand):
        restock(None, SkuTotals(), RestockSku(restock_id="r1", sku=SKU, quantity=7))


def test_restock_tops_up_and_keeps_the_price_when_none_is_given():
    # Given a SKU with 10 in stock
    sku = stocked()
    version = sku.levels.version
    # When it is restocked by 5 without a price
    sku.restock(RestockSku(restock_id="r2", sku=SKU, quantity=5))
    # Then stock grows and the price stays
    assert (sku.levels.put_in, sku.levels.available, sku.levels.unit_price) == (15, 15, PRICE)
    assert sku.levels.version == version + 1


def test_restock_with_a_new_price_reprices_the_sku():
    sku = stocked().restock(RestockSku(restock_id="r2", sku=SKU, quantity=0, unit_price=999))
    assert sku.levels.unit_price == 999
    assert sku.levels.put_in == STOCK


def test_restock_with_the_same_restock_id_twice_adds_once():
    # Given a SKU restocked once with id r2
    command = RestockSku(restock_id="r2", sku=SKU, quantity=5)
    once = stocked().restock(command)
    record = once.record
    # When the same restock is redelivered
    once.restock(command)
    # Then nothing changes
    assert once.record is record
    assert once.levels.put_in == STOCK + 5


def test_creating_restock_redelivered_adds_once():
    command = RestockSku(restock_id="r1", sku=SKU, quantity=5, unit_price=PRICE)
    once = restock(None, SkuTotals(), command)
    assert restock(once, SkuTotals(), command) is once


def test_available_is_what_was_put_in_less_what_is_held():
    sku = stocked()
    sku.apply(cmd("reserve", 4))
    assert sku.levels.available == STOCK - 4


def test_levels_carry_what_the_holds_say():
    sku = stocked()
    sku.apply(cmd("reserve", 3))
    assert sku.levels == StockChanged(
        sku=SKU,
        version=2,
        unit_price=PRICE,
        put_in=10,
        available=7,
        reserved=3,
        committed=0,
        low_stock_at=DEFAULT_LOW_STOCK_AT,
        low_stock=False,
    )


def test_a_hot_sku_writes_one_small_hold_per_order_whatever_it_holds():
    # Given a SKU already holding a thousand orders
    sku = stocked(5_000)
    for i in range(1_000):
        sku.apply(cmd("reserve", 1, order_id=f"o{i}"))
    # When one more order reserves
    before = sku.totals.holds
    after, result = apply_sku_command(sku.record, sku.totals, None, cmd("reserve", 1, "o-new"))
    # Then what is written is that order's hold alone, the size of a cold SKU's
    assert result.ok and after is not None
    assert after == Hold(sku=SKU, order_id="o-new", quantity=1, state="reserved", version=1_002)
    assert sku.totals.holds == before


# ---------------------------------------------------- SKU commands over every hold state


def sku_with_hold(hold: str | None) -> Sku:
    """A SKU with 10 in stock where order ORDER holds 3 in the given state."""
    sku = stocked()
    steps = {
        None: [],
        "reserved": [cmd("reserve")],
        "committed": [cmd("reserve"), cmd("commit")],
        "released": [cmd("reserve"), cmd("release")],
        "rejected": [cmd("reserve", STOCK + 1)],
    }[hold]
    for step in steps:
        sku.apply(step)
    assert sku.state() == hold
    return sku


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


def _deltas(before: StockChanged, after: StockChanged) -> tuple[int, int, int]:
    return (
        after.available - before.available,
        after.reserved - before.reserved,
        after.committed - before.committed,
    )


@pytest.mark.parametrize(
    ("hold", "op", "ok", "reason", "hold_after", "deltas", "bumps"),
    SKU_TABLE,
    ids=[f"{h}-{o}" for h, o, *_ in SKU_TABLE],
)
def test_sku_command_over_every_hold_state(hold, op, ok, reason, hold_after, deltas, bumps):
    # Given a SKU where the order's hold is in some state
    sku = sku_with_hold(hold)
    before = sku.levels
    # When a command for that order arrives
    written, _ = apply_sku_command(sku.record, sku.totals, sku.holds.get(ORDER), cmd(op))
    result = sku.apply(cmd(op))
    # Then the answer, the hold and the levels are as the rules say
    assert result == SkuResult(
        op=op, order_id=ORDER, sku=SKU, ok=ok, unit_price=PRICE, reason=reason
    )
    assert sku.state() == hold_after
    assert _deltas(before, sku.levels) == deltas
    assert sku.levels.put_in == before.put_in
    assert sku.levels.version == before.version + (1 if bumps else 0)
    # And only a change writes anything
    assert (written is not None) == bumps
    assert_conserved(sku)


@pytest.mark.parametrize(("hold", "op"), [(h, o) for h, o, *_ in SKU_TABLE])
def test_repeated_sku_command_gives_the_same_answer_and_changes_nothing(hold, op):
    # Given a SKU where a command was applied once
    sku = sku_with_hold(hold)
    first = sku.apply(cmd(op))
    once = sku.copy()
    # When it is redelivered
    written, second = apply_sku_command(sku.record, sku.totals, sku.holds.get(ORDER), cmd(op))
    # Then the answer is the same and nothing is written
    assert second == first
    assert written is None
    assert sku.levels == once.levels


def test_reserve_short_is_rejected_and_remembered():
    # Given a SKU with 10 in stock
    sku = stocked()
    # When an order asks for 11
    result = sku.apply(cmd("reserve", 11))
    # Then it is refused out of stock and the levels are untouched
    assert not result.ok and result.reason == "out_of_stock"
    assert sku.holds[ORDER].state == "rejected" and sku.holds[ORDER].quantity == 0
    assert (sku.levels.available, sku.levels.reserved) == (10, 0)
    # And a later restock does not let the same order's redelivered reserve through
    sku.restock(RestockSku(restock_id="more", sku=SKU, quantity=100))
    assert not sku.apply(cmd("reserve", 11)).ok


def test_reserve_of_exactly_the_available_stock_succeeds():
    sku = stocked()
    assert sku.apply(cmd("reserve", STOCK)).ok
    assert sku.levels.available == 0 and sku.levels.reserved == STOCK


def test_late_reserve_after_release_is_refused():
    # Given a release that arrived before its reservation (a tombstone)
    sku = stocked()
    assert sku.apply(cmd("release")).ok
    # When the reservation arrives late
    result = sku.apply(cmd("reserve"))
    # Then it is refused and no stock is held
    assert not result.ok and result.reason == "released"
    assert (sku.levels.available, sku.levels.reserved) == (STOCK, 0)


def test_release_gives_back_the_held_quantity_even_if_the_command_says_otherwise():
    sku = sku_with_hold("reserved")
    assert sku.apply(cmd("release", 1)).ok
    assert (sku.levels.available, sku.levels.reserved) == (STOCK, 0)


def test_holds_of_different_orders_are_independent():
    sku = stocked()
    a = sku.apply(cmd("reserve", 4, order_id="o-a"))
    b = sku.apply(cmd("reserve", 4, order_id="o-b"))
    c = sku.apply(cmd("reserve", 4, order_id="o-c"))
    assert (a.ok, b.ok, c.ok) == (True, True, False)
    sku.apply(cmd("release", 4, order_id="o-a"))
    assert (sku.levels.available, sku.levels.reserved) == (6, 4)


@pytest.mark.parametrize(
    ("op", "ok", "reason"),
    [("reserve", False, "unknown_sku"), ("release", True, None), ("commit", False, "unknown_sku")],
)
def test_sku_command_on_an_unknown_sku(op, ok, reason):
    written, result = apply_sku_command(None, SkuTotals(), None, cmd(op))
    assert written is None
    assert result == SkuResult(op=op, order_id=ORDER, sku=SKU, ok=ok, unit_price=0, reason=reason)


# ------------------------------------------------------------------ forgetting


def test_forgetting_drops_finished_holds_and_keeps_committed_stock_accounted():
    sku = stocked()
    for order_id, ops in {
        "ord-c": ["reserve", "commit"],
        "ord-r": ["reserve", "release"],
        "ord-x": ["reserve"],  # still reserved: must survive
    }.items():
        for op in ops:
            sku.apply(cmd(op, 2, order_id=order_id))
    sku.apply(cmd("reserve", 99, order_id="ord-short"))
    assert sku.state("ord-short") == "rejected"
    before = sku.levels

    sku.forget(["ord-c", "ord-r", "ord-x", "ord-short", "ord-unknown"])
    assert set(sku.holds) == {"ord-x"}
    assert sku.record is not None and sku.record.forgotten_committed == 2
    assert sku.levels == before
    assert_conserved(sku)
    # Idempotent: forgetting again changes nothing.
    record = sku.record
    sku.forget(["ord-c", "ord-r"])
    assert sku.record is record


def test_a_forget_replayed_before_its_holds_were_deleted_folds_nothing_twice():
    # Given a committed order whose forget wrote the SKU record, then crashed
    sku = stocked()
    sku.apply(cmd("reserve", 2, order_id="ord-c"))
    sku.apply(cmd("commit", 2, order_id="ord-c"))
    assert sku.record is not None
    folded, dropped = forget_holds(sku.record, sku.totals, [sku.holds["ord-c"]])
    assert [h.order_id for h in dropped] == ["ord-c"] and folded.forgotten_committed == 2
    # When the ForgetHolds is replayed against the written record and the surviving hold
    again, dropped_again = forget_holds(folded, sku.totals, [sku.holds["ord-c"]])
    # Then the hold is dropped and its stock is not folded in a second time
    assert [h.order_id for h in dropped_again] == ["ord-c"]
    assert again.forgotten_committed == 2


def test_forgetting_keeps_the_version_where_it_was():
    sku = stocked()
    sku.apply(cmd("reserve", 2, order_id="o1"))
    sku.apply(cmd("release", 2, order_id="o1"))
    version = sku.levels.version
    sku.forget(["o1"])
    assert sku.holds == {}
    assert sku.levels.version == version
    # And the next change goes on from it
    sku.apply(cmd("reserve", 1, order_id="o2"))
    assert sku.levels.version == version + 1


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
    st.tuples(st.just("forget"), st.sampled_from(["o1", "o2", "o3"])),
)


@settings(max_examples=300, deadline=None)
@given(actions=st.lists(sku_actions, max_size=40))
def test_levels_are_conserved_after_any_sequence(actions):
    # Given a SKU with some stock
    sku = stocked(5)
    forgotten: set[str] = set()
    # When any sequence of restocks, order commands (with repeats) and forgets is applied
    for action in actions:
        before = sku.levels
        if action[0] == "restock":
            _, restock_id, quantity, price = action
            sku.restock(
                RestockSku(restock_id=restock_id, sku=SKU, quantity=quantity, unit_price=price)
            )
        elif action[0] == "forget":
            sku.forget([action[1]])
            if action[1] not in sku.holds:
                forgotten.add(action[1])
        elif action[2] not in forgotten:  # a forgotten order sends no more commands
            _, op, order_id, quantity = action
            sku.apply(cmd(op, quantity, order_id))
        # Then put_in == available + reserved + committed, nothing negative, sums exact
        assert_conserved(sku)
        # And the version grows with every change of the levels, by one
        assert sku.levels.version in (before.version, before.version + 1)
        if sku.levels.version == before.version:
            assert _deltas(before, sku.levels) == (0, 0, 0)
    # And put_in counts each distinct restock id once
    distinct = {a[1]: a[2] for a in reversed(actions) if a[0] == "restock"}
    assert sku.levels.put_in == 5 + sum(distinct.values())


# ------------------------------------------------------------------ low stock


def test_a_sku_is_low_at_or_below_its_threshold_and_says_so_once_per_crossing():
    sku = stocked(10).restock(RestockSku(restock_id="t", sku=SKU, quantity=0, low_stock_at=3))
    assert (sku.levels.low_stock_at, sku.levels.low_stock) == (3, False)
    before = sku.levels
    sku.apply(cmd("reserve", 6, order_id="o1"))  # 4 left: above
    assert low_stock_crossing(before, sku.levels) is None
    before = sku.levels
    sku.apply(cmd("reserve", 1, order_id="o2"))  # 3 left: at the threshold
    crossing = low_stock_crossing(before, sku.levels)
    assert crossing == LowStock(sku=SKU, version=sku.levels.version, available=3, low_stock_at=3)
    before = sku.levels
    sku.apply(cmd("reserve", 1, order_id="o3"))  # still low: nothing more
    assert sku.levels.low_stock and low_stock_crossing(before, sku.levels) is None
    # A release lifts it above; the next fall below is a new crossing
    sku.apply(cmd("release", 6, order_id="o1"))
    assert not sku.levels.low_stock
    before = sku.levels
    sku.apply(cmd("reserve", 7, order_id="o4"))
    assert low_stock_crossing(before, sku.levels) is not None


def test_the_default_threshold_applies_until_a_restock_sets_one():
    sku = stocked(DEFAULT_LOW_STOCK_AT)
    assert sku.levels.low_stock_at == DEFAULT_LOW_STOCK_AT and sku.levels.low_stock
    sku.restock(RestockSku(restock_id="t", sku=SKU, quantity=0, low_stock_at=0))
    assert sku.levels.low_stock_at == 0 and not sku.levels.low_stock
    # A restock that does not name a threshold keeps the one set
    sku.restock(RestockSku(restock_id="t2", sku=SKU, quantity=1))
    assert sku.levels.low_stock_at == 0
