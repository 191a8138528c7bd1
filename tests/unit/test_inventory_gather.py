"""The per-order gather of SKU answers, and forgetting finished orders' holds."""

from __future__ import annotations

import pytest

from ordersaga.saga.order_stock import (
    GatherStep,
    OrderStockRecord,
    begin_stock_command,
    collect_sku_result,
    direct_holds,
    direct_reply,
    merge_lines,
    skus_to_forget,
    stock_command,
)
from ordersaga.schemas.messages import (
    CommitStock,
    OrderLine,
    PricedLine,
    ReleaseStock,
    ReserveStock,
    SkuCommand,
    SkuResult,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
)
from tests.unit.test_inventory_rules import ORDER, Sku, cmd, stocked
from tests.unit.test_inventory_rules import SKU as SKU_NAME

# ------------------------------------------------------------------ gather


class Shelf:
    """SKU partitions answering SKU commands, so gathers run against real rules."""

    def __init__(self, **stock: int) -> None:
        self.records: dict[str, Sku] = {
            sku: stocked(quantity, sku=sku, price=PRICES[sku]) for sku, quantity in stock.items()
        }

    def answer(self, command: SkuCommand) -> SkuResult:
        return self.records.setdefault(command.sku, Sku()).apply(command)


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
    a = shelf.records["A"].levels
    assert (a.available, a.reserved) == (10, 0)


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


def test_repeated_reserve_while_rolling_back_sends_the_unanswered_releases_again():
    # Given a reservation whose short SKU started a rollback of the other
    shelf = Shelf(A=10, B=1)
    step = begin_stock_command(None, two_sku_reserve())
    first = collect_sku_result(step.record, shelf.answer(step.sku_commands[0]))
    second = collect_sku_result(first.record, shelf.answer(step.sku_commands[1]))
    assert second.sku_commands  # the rollback is under way
    # When the reserve is repeated before the release was answered (it may be lost:
    # found by the chaos test, a saga retried reserve_stock forever)
    again = begin_stock_command(second.record, two_sku_reserve())
    # Then the release is sent again, with no answer yet, and nothing else changes
    assert again.reply is None and not again.changed
    assert again.sku_commands == second.sku_commands
    # And once it is answered the order is rejected
    done = collect_sku_result(again.record, shelf.answer(again.sku_commands[0]))
    assert isinstance(done.reply, StockRejected)


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
        levels = shelf.records[sku].levels
        assert (levels.available, levels.reserved, levels.committed) == (10, 0, 0)


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
        assert shelf.records[sku].levels.reserved == 0


# ------------------------------------------------------- one SKU: answered by the SKU itself


def one_sku_reserve(quantity: int = 2) -> ReserveStock:
    return ReserveStock(order_id=ORDER, items=(OrderLine(sku="A", quantity=quantity),))


def answer_directly(shelf: Shelf, step: GatherStep) -> list[object]:
    """What the orchestrator hears when each of ``step``'s SKU commands is answered."""
    replies: list[object] = []
    for command in step.sku_commands:
        assert command.reply_to == "orchestrator"
        result = shelf.answer(command)
        replies.append(direct_reply(command, result) or result)
    return replies


@pytest.mark.parametrize(
    ("command", "stock", "expected"),
    [
        (
            one_sku_reserve(),
            10,
            StockReserved(
                order_id=ORDER, lines=(PricedLine(sku="A", quantity=2, unit_price=500),), total=1000
            ),
        ),
        (one_sku_reserve(11), 10, StockRejected(order_id=ORDER, skus=("A",))),
        (one_sku_reserve(), 0, StockRejected(order_id=ORDER, skus=("A",))),
    ],
    ids=["reserved", "short", "empty"],
)
def test_a_single_sku_order_is_answered_by_its_sku_as_the_gather_would(command, stock, expected):
    # Given one SKU
    # When a single-SKU order reserves it, directly and through a two-step gather
    direct = answer_directly(Shelf(A=stock), begin_stock_command(None, command))
    gathered = begin_stock_command(None, command)
    gathered = gathered.__class__(
        gathered.record,
        sku_commands=tuple(
            c.model_copy(update={"reply_to": "gather"}) for c in gathered.sku_commands
        ),
    )
    _, steps = run_gather(Shelf(A=stock), gathered)
    # Then the orchestrator hears the same answer either way
    assert direct == [expected] == [steps[-1].reply]


def test_a_single_sku_order_writes_its_gather_record_once_per_command():
    step = begin_stock_command(None, one_sku_reserve())
    assert step.changed and step.record is not None
    # The op stays pending (no SkuResult comes back), so a repeat re-asks the SKU...
    again = begin_stock_command(step.record, one_sku_reserve())
    assert not again.changed and again.sku_commands == step.sku_commands
    # ...which answers the same from its hold.
    shelf = Shelf(A=10)
    assert answer_directly(shelf, step) == answer_directly(shelf, again)
    assert shelf.records["A"].levels.reserved == 2


@pytest.mark.parametrize(
    ("op", "reply"),
    [("commit", StockCommitted(order_id=ORDER)), ("release", StockReleased(order_id=ORDER))],
)
def test_direct_commit_and_release_answer_the_order_level_reply(op, reply):
    sku = stocked()
    sku.apply(cmd("reserve", 2))
    command = cmd(op, 2)
    assert direct_reply(command, sku.apply(command)) == reply


def test_a_busy_sku_answers_a_direct_command_itself_and_refuses_its_late_duplicate():
    # Given a SKU that many orders hold at once, and a single-SKU order sent straight to it
    sku = stocked()
    for n in range(2):
        sku.apply(cmd("reserve", 1, order_id=f"other-{n}"), max_holds=2)
    command = direct_cmd("reserve", 2)
    # When it is refused as busy
    result = sku.apply(command, max_holds=2)
    # Then the order is told why: the SKU was busy, not short
    assert direct_reply(command, result) == StockRejected(
        order_id=ORDER, reason="sku_busy", skus=(SKU_NAME,)
    )
    # And the refusal is remembered without counting as a hold (no gather rolls it back)...
    assert sku.holds[ORDER].state == "rejected" and sku.totals.holds == 2
    # ...so a duplicate arriving once the SKU is free is refused, not reserved
    for n in range(2):
        sku.apply(direct_cmd("release", 1, order_id=f"other-{n}"))
    assert not sku.apply(command).ok
    assert sku.levels.reserved == 0


def test_a_gathered_command_refused_as_busy_leaves_no_hold():
    sku = stocked()
    sku.apply(cmd("reserve", 1, order_id="other"), max_holds=1)
    result = sku.apply(cmd("reserve", 2), max_holds=1)
    assert result.reason == "sku_busy" and ORDER not in sku.holds


def direct_cmd(op: str, quantity: int, order_id: str = ORDER) -> SkuCommand:
    return cmd(op, quantity, order_id=order_id).model_copy(update={"reply_to": "orchestrator"})


# ---------------------------------------------------------- the orchestrator's command


def test_a_one_sku_order_is_sent_to_its_sku_and_any_other_to_the_gather():
    one = (OrderLine(sku="A", quantity=2),)
    assert stock_command("reserve", ORDER, one) == SkuCommand(
        op="reserve", order_id=ORDER, sku="A", quantity=2, reply_to="orchestrator"
    )
    assert stock_command("commit", ORDER, one).routing_key() == "A"  # keyed by SKU
    # Lines of one SKU are one line: the quantities summed
    twice = (OrderLine(sku="A", quantity=2), OrderLine(sku="A", quantity=3))
    assert stock_command("release", ORDER, twice) == SkuCommand(
        op="release", order_id=ORDER, sku="A", quantity=5, reply_to="orchestrator"
    )
    two = (OrderLine(sku="A", quantity=2), OrderLine(sku="B", quantity=1))
    assert stock_command("reserve", ORDER, two) == ReserveStock(order_id=ORDER, items=two)
    assert stock_command("release", ORDER, two) == ReleaseStock(order_id=ORDER, items=two)
    assert stock_command("commit", ORDER, two) == CommitStock(order_id=ORDER, items=two)
    assert stock_command("commit", ORDER, two).routing_key() == ORDER  # keyed by order


def test_an_unanswered_commit_names_no_one_to_answer():
    one = (OrderLine(sku="A", quantity=2),)
    two = (OrderLine(sku="A", quantity=2), OrderLine(sku="B", quantity=1))
    assert stock_command("commit", ORDER, one, answered=False) == SkuCommand(
        op="commit", order_id=ORDER, sku="A", quantity=2, reply_to="nobody"
    )
    assert stock_command("commit", ORDER, two, answered=False) == CommitStock(
        order_id=ORDER, items=two, answered=False
    )
    # A reserve or a release is always awaited: the saga decides on its answer
    for op in ("reserve", "release"):
        with pytest.raises(ValueError, match="always answered"):
            stock_command(op, ORDER, two, answered=False)


def test_the_gather_fans_an_unanswered_commit_out_and_keeps_nothing():
    # Given an order whose stock was reserved through the gather
    items = (
        OrderLine(sku="A", quantity=2),
        OrderLine(sku="A", quantity=1),
        OrderLine(sku="B", quantity=1),
    )
    reserved = begin_stock_command(None, ReserveStock(order_id=ORDER, items=items)).record
    # When the saga commits it without awaiting an answer
    step = begin_stock_command(reserved, CommitStock(order_id=ORDER, items=items, answered=False))
    # Then each SKU is told to commit its share, answering no one, and the record is untouched
    assert step == GatherStep(
        reserved,
        sku_commands=(
            SkuCommand(op="commit", order_id=ORDER, sku="A", quantity=3, reply_to="nobody"),
            SkuCommand(op="commit", order_id=ORDER, sku="B", quantity=1, reply_to="nobody"),
        ),
    )


def test_direct_holds_names_each_one_sku_order_under_its_sku():
    orders = [
        ("o1", (OrderLine(sku="A", quantity=1),)),
        ("o2", (OrderLine(sku="A", quantity=1), OrderLine(sku="B", quantity=1))),
        ("o3", (OrderLine(sku="B", quantity=1), OrderLine(sku="B", quantity=2))),
        ("o4", (OrderLine(sku="A", quantity=4),)),
    ]
    # o2 went through the gather, whose record names its SKUs when it is forgotten
    assert direct_holds(orders) == {"A": ["o1", "o4"], "B": ["o3"]}


# ------------------------------------------------------------------ forgetting


def test_skus_to_forget_groups_orders_by_sku():
    def rec(order_id: str, *skus: str) -> OrderStockRecord:
        return OrderStockRecord(
            order_id=order_id, items=tuple(OrderLine(sku=s, quantity=1) for s in skus)
        )

    assert skus_to_forget([rec("o1", "A", "B"), rec("o2", "B")]) == {
        "A": ["o1"],
        "B": ["o1", "o2"],
    }
