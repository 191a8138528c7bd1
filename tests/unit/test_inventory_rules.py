"""Unit tests of the stock rules: per-SKU holds, restocks and the per-order gather."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersaga.saga.inventory import (
    GatherStep,
    Hold,
    InvalidCommand,
    OrderStockRecord,
    StockRecord,
    apply_sku_command,
    begin_stock_command,
    collect_sku_result,
    forget_holds,
    merge_lines,
    restock,
    skus_to_forget,
)
from ordersaga.schemas.messages import (
    CommitStock,
    OrderLine,
    PricedLine,
    ReleaseStock,
    ReserveStock,
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
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


# ------------------------------------------------------------------ gather


class Shelf:
    """SKU partitions answering SKU commands, so gathers run against real rules."""

    def __init__(self, **stock: int) -> None:
        self.records: dict[str, StockRecord | None] = {
            sku: stocked(quantity, sku=sku, price=PRICES[sku]) for sku, quantity in stock.items()
        }

    def answer(self, command: SkuCommand) -> SkuResult:
        record, result = apply_sku_command(self.records.get(command.sku), command)
        self.records[command.sku] = record
        return result


PRICES = {"A": 500, "B": 1250, "C": 99}


def two_sku_reserve() -> ReserveStock:
    return ReserveStock(
        order_id=ORDER, items=(OrderLine(sku="A", quantity=2), OrderLine(sku="B", quantity=3))
    )


def run_gather(shelf: Shelf, step: GatherStep) -> tuple[OrderStockRecord | None, list[GatherStep]]:
    """Answer every SKU command of ``step`` (and any it leads to), in order."""
    steps = []
    queue = list(step.sku_commands)
    record = step.record
    while queue:
        step = collect_sku_result(record, shelf.answer(queue.pop(0)))
        steps.append(step)
        record = step.record
        queue.extend(step.sku_commands)
    return record, steps


def test_reserve_fans_out_one_sku_command_per_sku():
    step = begin_stock_command(None, two_sku_reserve())
    assert step.changed is True
    assert step.reply is None
    assert step.sku_commands == (
        SkuCommand(op="reserve", order_id=ORDER, sku="A", quantity=2),
        SkuCommand(op="reserve", order_id=ORDER, sku="B", quantity=3),
    )


def test_two_sku_reserve_both_succeed_answers_priced_lines_and_total():
    # Given two SKUs with enough stock
    shelf = Shelf(A=10, B=10)
    # When an order reserves both
    _, steps = run_gather(shelf, begin_stock_command(None, two_sku_reserve()))
    # Then only the last SKU answer produces the reply
    assert [s.reply for s in steps[:-1]] == [None]
    reply = steps[-1].reply
    # And it is StockReserved with catalogue prices and the exact total
    assert reply == StockReserved(
        order_id=ORDER,
        lines=(
            PricedLine(sku="A", quantity=2, unit_price=500),
            PricedLine(sku="B", quantity=3, unit_price=1250),
        ),
        total=2 * 500 + 3 * 1250,
    )
    assert all(not s.sku_commands for s in steps)


def test_two_sku_reserve_with_one_short_releases_the_other_then_rejects():
    # Given A in stock and B short
    shelf = Shelf(A=10, B=1)
    step = begin_stock_command(None, two_sku_reserve())
    record = step.record
    a_result = shelf.answer(step.sku_commands[0])
    b_result = shelf.answer(step.sku_commands[1])
    # When both answers are gathered
    first = collect_sku_result(record, a_result)
    assert first.reply is None and first.sku_commands == ()
    second = collect_sku_result(first.record, b_result)
    # Then no reply yet: only the reserved SKU is released
    assert second.reply is None
    assert second.sku_commands == (SkuCommand(op="release", order_id=ORDER, sku="A", quantity=2),)
    # When the release is answered
    third = collect_sku_result(second.record, shelf.answer(second.sku_commands[0]))
    # Then the order is rejected naming the short SKU
    assert third.reply == StockRejected(order_id=ORDER, skus=("B",))
    assert third.sku_commands == ()
    # And A's stock is back on the shelf
    a = shelf.records["A"]
    assert a is not None and (a.available, a.reserved) == (10, 0)


def test_short_sku_answering_first_still_releases_the_other_after_it_answers():
    shelf = Shelf(A=10, B=1)
    step = begin_stock_command(None, two_sku_reserve())
    b_first = collect_sku_result(step.record, shelf.answer(step.sku_commands[1]))
    assert b_first.reply is None and b_first.sku_commands == ()
    a_then = collect_sku_result(b_first.record, shelf.answer(step.sku_commands[0]))
    assert a_then.sku_commands == (SkuCommand(op="release", order_id=ORDER, sku="A", quantity=2),)


def test_reserve_with_every_sku_short_rejects_without_releasing():
    shelf = Shelf(A=0, B=0)
    _, steps = run_gather(shelf, begin_stock_command(None, two_sku_reserve()))
    assert all(not s.sku_commands for s in steps)
    assert steps[-1].reply == StockRejected(order_id=ORDER, skus=("A", "B"))


def test_reserve_of_an_unknown_sku_is_rejected():
    shelf = Shelf(A=10)
    _, steps = run_gather(shelf, begin_stock_command(None, two_sku_reserve()))
    assert steps[-1].reply == StockRejected(order_id=ORDER, skus=("B",))


@pytest.mark.parametrize("stock_b", [10, 1], ids=["reserved", "rejected"])
def test_duplicate_sku_results_change_nothing_at_any_point(stock_b):
    # Given a reserve gather that is answered one SKU result at a time
    shelf = Shelf(A=10, B=stock_b)
    step = begin_stock_command(None, two_sku_reserve())
    record = step.record
    seen: list[SkuResult] = []
    queue = list(step.sku_commands)
    while queue:
        result = shelf.answer(queue.pop(0))
        step = collect_sku_result(record, result)
        assert step.changed is True
        record = step.record
        queue.extend(step.sku_commands)
        seen.append(result)
        # When any answer seen so far is redelivered
        for old in seen:
            again = collect_sku_result(record, old)
            # Then nothing changes and nothing is sent or answered
            assert again == GatherStep(record)


def test_sku_result_for_an_unknown_order_or_op_changes_nothing():
    result = SkuResult(op="reserve", order_id=ORDER, sku="A", ok=True, unit_price=500)
    assert collect_sku_result(None, result) == GatherStep(None)
    step = begin_stock_command(None, two_sku_reserve())
    commit_result = result.model_copy(update={"op": "commit"})
    assert collect_sku_result(step.record, commit_result) == GatherStep(step.record)
    other_sku = result.model_copy(update={"sku": "C"})
    assert collect_sku_result(step.record, other_sku) == GatherStep(step.record)


@pytest.mark.parametrize("stock_b", [10, 1], ids=["reserved", "rejected"])
def test_repeated_reserve_after_completion_re_answers_the_stored_reply(stock_b):
    # Given a reserve that has completed
    shelf = Shelf(A=10, B=stock_b)
    record, steps = run_gather(shelf, begin_stock_command(None, two_sku_reserve()))
    answered = steps[-1].reply
    assert answered is not None
    # When the same ReserveStock is redelivered
    again = begin_stock_command(record, two_sku_reserve())
    # Then the stored reply is sent again, no SKU is asked again, nothing changes
    assert again.reply == answered
    assert type(again.reply) is type(answered)
    assert again.sku_commands == ()
    assert again.changed is False
    assert again.record is record


def test_repeated_reserve_in_progress_resends_only_the_unanswered_skus():
    shelf = Shelf(A=10, B=10)
    step = begin_stock_command(None, two_sku_reserve())
    half = collect_sku_result(step.record, shelf.answer(step.sku_commands[0]))
    again = begin_stock_command(half.record, two_sku_reserve())
    assert again.changed is False
    assert again.reply is None
    assert again.sku_commands == (SkuCommand(op="reserve", order_id=ORDER, sku="B", quantity=3),)


def test_repeated_reserve_while_rolling_back_waits_for_the_rollback():
    shelf = Shelf(A=10, B=1)
    step = begin_stock_command(None, two_sku_reserve())
    first = collect_sku_result(step.record, shelf.answer(step.sku_commands[0]))
    second = collect_sku_result(first.record, shelf.answer(step.sku_commands[1]))
    assert second.sku_commands  # the rollback is under way
    again = begin_stock_command(second.record, two_sku_reserve())
    assert again == GatherStep(second.record)


def test_duplicate_skus_in_items_are_merged():
    # Given an order listing A twice
    command = ReserveStock(
        order_id=ORDER,
        items=(
            OrderLine(sku="A", quantity=1),
            OrderLine(sku="B", quantity=1),
            OrderLine(sku="A", quantity=2),
        ),
    )
    shelf = Shelf(A=10, B=10)
    # When it is reserved
    step = begin_stock_command(None, command)
    # Then A is asked for once with the summed quantity, in first-seen order
    assert [(c.sku, c.quantity) for c in step.sku_commands] == [("A", 3), ("B", 1)]
    _, steps = run_gather(shelf, step)
    reply = steps[-1].reply
    assert isinstance(reply, StockReserved)
    assert [(line.sku, line.quantity) for line in reply.lines] == [("A", 3), ("B", 1)]
    assert reply.total == 3 * 500 + 1 * 1250


def test_merge_lines_sums_quantities_per_sku_in_first_seen_order():
    lines = [
        OrderLine(sku="B", quantity=1),
        OrderLine(sku="A", quantity=2),
        OrderLine(sku="B", quantity=4),
    ]
    assert merge_lines(lines) == (OrderLine(sku="B", quantity=5), OrderLine(sku="A", quantity=2))


@pytest.mark.parametrize(
    ("command", "op", "reply"),
    [
        (
            ReleaseStock(order_id=ORDER, items=two_sku_reserve().items),
            "release",
            StockReleased(order_id=ORDER),
        ),
        (
            CommitStock(order_id=ORDER, items=two_sku_reserve().items),
            "commit",
            StockCommitted(order_id=ORDER),
        ),
    ],
    ids=["release", "commit"],
)
def test_release_and_commit_gather_answer_once_and_re_answer_on_repeat(command, op, reply):
    # Given an order whose stock is reserved
    shelf = Shelf(A=10, B=10)
    record, _ = run_gather(shelf, begin_stock_command(None, two_sku_reserve()))
    # When the release or commit is fanned out and answered
    step = begin_stock_command(record, command)
    assert step.changed is True
    assert [c.op for c in step.sku_commands] == [op, op]
    record, steps = run_gather(shelf, step)
    # Then one reply comes after the last SKU answer
    assert [s.reply for s in steps] == [None, reply]
    # And a redelivered command re-answers it without asking the SKUs again
    again = begin_stock_command(record, command)
    assert again.reply == reply
    assert again.sku_commands == () and again.changed is False


def test_release_after_commit_returns_the_committed_stock():
    shelf = Shelf(A=10, B=10)
    items = two_sku_reserve().items
    record, _ = run_gather(shelf, begin_stock_command(None, two_sku_reserve()))
    record, _ = run_gather(
        shelf, begin_stock_command(record, CommitStock(order_id=ORDER, items=items))
    )
    record, steps = run_gather(
        shelf, begin_stock_command(record, ReleaseStock(order_id=ORDER, items=items))
    )
    assert steps[-1].reply == StockReleased(order_id=ORDER)
    for sku in ("A", "B"):
        sku_record = shelf.records[sku]
        assert sku_record is not None
        assert (sku_record.available, sku_record.reserved, sku_record.committed) == (10, 0, 0)


def test_release_before_reserve_refuses_the_late_reservation():
    # Given a release processed before the order's reservation (timed-out saga)
    shelf = Shelf(A=10, B=10)
    items = two_sku_reserve().items
    record, steps = run_gather(
        shelf, begin_stock_command(None, ReleaseStock(order_id=ORDER, items=items))
    )
    assert steps[-1].reply == StockReleased(order_id=ORDER)
    # When the reservation arrives late
    _, steps = run_gather(shelf, begin_stock_command(record, two_sku_reserve()))
    # Then it is rejected and nothing is held
    assert isinstance(steps[-1].reply, StockRejected)
    for sku in ("A", "B"):
        sku_record = shelf.records[sku]
        assert sku_record is not None and sku_record.reserved == 0


# ------------------------------------------------------------------ forgetting


def test_forgetting_drops_finished_holds_and_keeps_committed_stock_accounted():
    record = stocked()
    for order_id, ops in {
        "ord-c": ["reserve", "commit"],
        "ord-r": ["reserve", "release"],
        "ord-x": ["reserve"],  # still reserved: must survive
    }.items():
        for op in ops:
            record, _ = apply_sku_command(record, cmd(op, 2, order_id=order_id))
    record, _ = apply_sku_command(record, cmd("reserve", 99, order_id="ord-short"))
    assert record.holds["ord-short"].state == "rejected"

    kept = forget_holds(record, ["ord-c", "ord-r", "ord-x", "ord-short", "ord-unknown"])
    assert set(kept.holds) == {"ord-x"}
    assert kept.forgotten_committed == 2
    levels = ("put_in", "available", "reserved", "committed", "version")
    assert [getattr(kept, k) for k in levels] == [getattr(record, k) for k in levels]
    assert_conserved(kept)
    committed_in_holds = sum(h.quantity for h in kept.holds.values() if h.state == "committed")
    assert kept.committed == kept.forgotten_committed + committed_in_holds
    # Idempotent: forgetting again changes nothing.
    assert forget_holds(kept, ["ord-c", "ord-r"]) is kept


def test_skus_to_forget_groups_orders_by_sku():
    def rec(order_id: str, *skus: str) -> OrderStockRecord:
        return OrderStockRecord(
            order_id=order_id, items=tuple(OrderLine(sku=s, quantity=1) for s in skus)
        )

    assert skus_to_forget([rec("o1", "A", "B"), rec("o2", "B")]) == {
        "A": ["o1"],
        "B": ["o1", "o2"],
    }
