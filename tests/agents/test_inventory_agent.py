"""The inventory group shell: ``change_stock`` (per SKU) and ``gather_reservations`` (per order)."""

from __future__ import annotations

import pytest

from ordersaga.agents import inventory, repairs
from ordersaga.saga.sku_holds import hold_key, levels_of
from ordersaga.schemas.messages import (
    CommitStock,
    ForgetHolds,
    ForgetOrders,
    LowStock,
    PricedLine,
    ReserveStock,
    RestockSku,
    SkuCommand,
    SkuResult,
    StockChanged,
    StockCommitted,
    StockRejected,
    StockReserved,
)
from ordersaga.shell.topics import (
    INVENTORY_ALERTS,
    INVENTORY_COMMANDS,
    INVENTORY_EVENTS,
    INVENTORY_SKU_COMMANDS,
    INVENTORY_SKU_REPLIES,
    ORDERS_REPLIES,
)
from tests.harness import ITEMS, ORDER_ID, PRICES, TOTAL, event_id_of


@pytest.fixture
def outbox(capture):
    return capture(inventory.node)


def levels(sku: str) -> dict[str, int]:
    """A SKU's levels as the shell derives them: its record plus the sums of its holds."""
    record = inventory.stock.load(sku)
    assert record is not None
    return levels_of(record, inventory.totals_for(sku)).model_dump()


def restock_sku(
    sku: str = "SKU-A", quantity: int = 10, unit_price: int | None = 500, restock_id: str = "r-1"
) -> RestockSku:
    return RestockSku(restock_id=restock_id, sku=sku, quantity=quantity, unit_price=unit_price)


def sku_command(
    op: str = "reserve", sku: str = "SKU-A", quantity: int = 3, order_id: str = ORDER_ID
) -> SkuCommand:
    return SkuCommand(op=op, order_id=order_id, sku=sku, quantity=quantity)


# ------------------------------------------------------------------ change_stock


async def test_restock_creates_the_sku_and_publishes_stock_changed(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)

    assert outbox.topics() == [INVENTORY_EVENTS]
    [changed] = outbox.on(INVENTORY_EVENTS)
    assert changed.key == b"SKU-A"
    assert changed.message == StockChanged(
        sku="SKU-A",
        version=1,
        unit_price=500,
        put_in=10,
        available=10,
        reserved=0,
        committed=0,
        low_stock_at=5,
        low_stock=False,
    )
    assert changed.envelope.event_id == "SKU-A:1"
    record = levels("SKU-A")
    assert (record["available"], record["put_in"], record["version"]) == (10, 10, 1)


def test_the_inventory_runs_its_repair_loop_as_a_timer():
    assert "republish_changed_stock" in {task.__name__ for task in inventory.app._app_tasks}


async def test_changed_levels_are_published_once_more_per_version(drive, outbox):

    async def republish() -> None:
        await repairs.republish_changed_stock(inventory.changed, inventory.publish_levels)

    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        [original] = outbox.on(INVENTORY_EVENTS)
        outbox.clear()

        await republish()
        await republish()  # nothing changed since: nothing sent
        [again] = outbox.sent
        assert (again.topic, again.key, again.message) == (
            INVENTORY_EVENTS,
            b"SKU-A",
            original.message,
        )
        assert again.envelope.event_id == original.envelope.event_id == "SKU-A:1"

        await d.put(
            restock_sku(restock_id="r-2", quantity=5), key="SKU-A", topic=INVENTORY_SKU_COMMANDS
        )
        outbox.clear()
        await republish()
    [newer] = outbox.messages(INVENTORY_EVENTS)
    assert isinstance(newer, StockChanged)
    assert (newer.version, newer.available) == (2, 15)


async def test_replayed_restock_changes_nothing(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        before = inventory.stock.get("SKU-A")
        outbox.clear()
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)

    assert outbox.sent == []
    assert inventory.stock.get("SKU-A") == before


async def test_reserve_lowers_available_and_answers_ok_keyed_by_order(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        outbox.clear()
        fed = await d.put(sku_command(quantity=3), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)

    [result] = outbox.on(INVENTORY_SKU_REPLIES)
    assert result.key == ORDER_ID.encode()
    assert result.message == SkuResult(
        op="reserve", order_id=ORDER_ID, sku="SKU-A", ok=True, unit_price=500
    )
    fed_id = event_id_of(fed)
    assert result.envelope.event_id == f"{fed_id}:result"
    assert result.envelope.causation_id == fed_id

    [changed] = outbox.on(INVENTORY_EVENTS)
    assert (changed.message.available, changed.message.reserved, changed.message.version) == (
        7,
        3,
        2,
    )
    record = levels("SKU-A")
    assert (record["available"], record["reserved"]) == (7, 3)
    assert inventory.holds.get(hold_key("SKU-A", ORDER_ID)) == {
        "sku": "SKU-A",
        "order_id": ORDER_ID,
        "quantity": 3,
        "state": "reserved",
        "version": 2,
    }
    # The SKU's own record is not written per order: only restocks and forgetting do.
    assert inventory.stock.get("SKU-A")["version"] == 1


async def test_reserve_beyond_available_answers_out_of_stock(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(quantity=2), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        outbox.clear()
        await d.put(sku_command(quantity=3), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)

    [result] = outbox.messages(INVENTORY_SKU_REPLIES)
    assert (result.ok, result.reason) == (False, "out_of_stock")
    assert levels("SKU-A")["available"] == 2


async def test_reserve_of_unknown_sku_answers_not_ok_and_creates_nothing(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(sku_command(sku="SKU-Z"), key="SKU-Z", topic=INVENTORY_SKU_COMMANDS)

    assert outbox.topics() == [INVENTORY_SKU_REPLIES]
    [result] = outbox.messages(INVENTORY_SKU_REPLIES)
    assert (result.ok, result.reason) == (False, "unknown_sku")
    assert inventory.stock.get("SKU-Z") is None


async def test_restock_without_price_for_unknown_sku_is_dead_lettered(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        fed = await d.put(
            restock_sku(sku="SKU-NEW", unit_price=None), key="SKU-NEW", topic=INVENTORY_SKU_COMMANDS
        )
        # The agent goes on with the next message.
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)

    [dead] = outbox.on(f"{INVENTORY_SKU_COMMANDS}.dlq")
    assert dead.value == fed.value
    assert dead.key == b"SKU-NEW"
    assert dead.header("dlq.error").startswith("InvalidCommand: unit_price is required")
    assert dead.header("dlq.attempts") == "1"
    assert dead.header("dlq.topic") == INVENTORY_SKU_COMMANDS
    assert dead.header("dlq.group") == "inventory"
    assert inventory.stock.get("SKU-NEW") is None
    assert [m.sku for m in outbox.messages(INVENTORY_EVENTS)] == ["SKU-A"]


async def test_order_level_command_on_the_sku_topic_is_dead_lettered(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_SKU_COMMANDS
        )

    [dead] = outbox.on(f"{INVENTORY_SKU_COMMANDS}.dlq")
    assert "ReserveStock does not belong on inventory.sku-commands" in dead.header("dlq.error")
    assert outbox.topics() == [f"{INVENTORY_SKU_COMMANDS}.dlq"]


# ------------------------------------------------------------ gather_reservations


async def test_reserve_stock_fans_out_one_sku_command_per_sku(drive, outbox):
    async with drive(inventory.gather_reservations, inventory.node) as d:
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )

    sent = outbox.on(INVENTORY_SKU_COMMANDS)
    assert outbox.topics() == [INVENTORY_SKU_COMMANDS, INVENTORY_SKU_COMMANDS]
    assert [(s.key, s.message) for s in sent] == [
        (b"SKU-A", sku_command("reserve", "SKU-A", 2)),
        (b"SKU-B", sku_command("reserve", "SKU-B", 1)),
    ]
    assert len({s.envelope.event_id for s in sent}) == 2
    assert all(s.envelope.correlation_id == ORDER_ID for s in sent)
    assert inventory.order_stock.get(ORDER_ID)["ops"]["reserve"]["pending"] == ["SKU-A", "SKU-B"]


async def test_both_sku_results_produce_stock_reserved_with_the_total(drive, outbox):
    async with drive(inventory.gather_reservations, inventory.node) as d:
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )
        outbox.clear()
        await d.put(
            SkuResult(
                op="reserve", order_id=ORDER_ID, sku="SKU-A", ok=True, unit_price=PRICES["SKU-A"]
            ),
            key=ORDER_ID,
            topic=INVENTORY_SKU_REPLIES,
        )
        assert outbox.sent == []  # still waiting for SKU-B
        await d.put(
            SkuResult(
                op="reserve", order_id=ORDER_ID, sku="SKU-B", ok=True, unit_price=PRICES["SKU-B"]
            ),
            key=ORDER_ID,
            topic=INVENTORY_SKU_REPLIES,
        )

    [reply] = outbox.on(ORDERS_REPLIES)
    assert outbox.topics() == [ORDERS_REPLIES]
    assert reply.key == ORDER_ID.encode()
    assert reply.message == StockReserved(
        order_id=ORDER_ID,
        lines=tuple(
            PricedLine(sku=i.sku, quantity=i.quantity, unit_price=PRICES[i.sku]) for i in ITEMS
        ),
        total=TOTAL,
    )
    assert reply.envelope.correlation_id == ORDER_ID


async def test_repeated_reserve_stock_after_the_answer_re_answers_without_fan_out(drive, outbox):
    async with drive(inventory.gather_reservations, inventory.node) as d:
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )
        for sku in ("SKU-A", "SKU-B"):
            await d.put(
                SkuResult(
                    op="reserve", order_id=ORDER_ID, sku=sku, ok=True, unit_price=PRICES[sku]
                ),
                key=ORDER_ID,
                topic=INVENTORY_SKU_REPLIES,
            )
        first = outbox.messages(ORDERS_REPLIES)
        outbox.clear()
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )

    assert outbox.topics() == [ORDERS_REPLIES]
    assert outbox.messages(ORDERS_REPLIES) == first


async def test_short_sku_rolls_back_the_held_one_then_rejects(drive, outbox):
    async with drive(inventory.gather_reservations, inventory.node) as d:
        await d.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )
        outbox.clear()
        await d.put(
            SkuResult(op="reserve", order_id=ORDER_ID, sku="SKU-A", ok=True, unit_price=500),
            key=ORDER_ID,
            topic=INVENTORY_SKU_REPLIES,
        )
        await d.put(
            SkuResult(
                op="reserve", order_id=ORDER_ID, sku="SKU-B", ok=False, reason="out_of_stock"
            ),
            key=ORDER_ID,
            topic=INVENTORY_SKU_REPLIES,
        )
        assert [(s.key, s.message) for s in outbox.sent] == [
            (b"SKU-A", sku_command("release", "SKU-A", 2))
        ]
        outbox.clear()
        await d.put(
            SkuResult(op="release", order_id=ORDER_ID, sku="SKU-A", ok=True, unit_price=500),
            key=ORDER_ID,
            topic=INVENTORY_SKU_REPLIES,
        )

    assert outbox.messages(ORDERS_REPLIES) == [StockRejected(order_id=ORDER_ID, skus=("SKU-B",))]


async def test_sku_result_for_unknown_order_is_ignored(drive, outbox):
    async with drive(inventory.gather_reservations, inventory.node) as d:
        await d.put(
            SkuResult(op="reserve", order_id="ord-ghost", sku="SKU-A", ok=True),
            key="ord-ghost",
            topic=INVENTORY_SKU_REPLIES,
        )

    assert outbox.sent == []
    assert inventory.order_stock.get("ord-ghost") is None


async def test_sku_command_on_the_order_topic_is_dead_lettered(drive, outbox):
    async with drive(inventory.gather_reservations, inventory.node) as d:
        await d.put(sku_command(), key=ORDER_ID, topic=INVENTORY_COMMANDS)
        await d.put_raw(b"{}", key=ORDER_ID, topic=INVENTORY_SKU_REPLIES)

    [dead] = outbox.on(f"{INVENTORY_COMMANDS}.dlq")
    assert "SkuCommand does not belong to the inventory gather" in dead.header("dlq.error")
    [bad] = outbox.on(f"{INVENTORY_SKU_REPLIES}.dlq")
    assert bad.header("dlq.error").startswith("bad envelope:")


# ------------------------------------------------------------ both agents together


async def stock_every_sku(change) -> None:
    """Five of each SKU of the test order, through change_stock."""
    for sku, price in PRICES.items():
        await change.put(
            restock_sku(sku=sku, quantity=5, unit_price=price, restock_id=f"r-{sku}"),
            key=sku,
            topic=INVENTORY_SKU_COMMANDS,
        )


async def settle(outbox, gather, change) -> None:
    """Deliver SKU commands to change_stock and its answers back to the gather, as Kafka would."""
    while True:
        commands = outbox.on(INVENTORY_SKU_COMMANDS)
        results = outbox.on(INVENTORY_SKU_REPLIES)
        if not commands and not results:
            return
        for s in commands + results:
            outbox.sent.remove(s)
        for s in commands:
            await change.put_sent(s)
        for s in results:
            await gather.put_sent(s)


async def through_both(outbox, gather, change, *commands) -> None:
    """Each order-level stock command to the gather, settled through both agents in turn."""
    for command in commands:
        await gather.put(command, key=ORDER_ID, topic=INVENTORY_COMMANDS)
        await settle(outbox, gather, change)


def assert_the_order_committed(outbox) -> None:
    """The test order's stock committed on both SKUs, and nothing dead-lettered."""
    a, b = levels("SKU-A"), levels("SKU-B")
    assert (a["available"], a["reserved"], a["committed"]) == (3, 0, 2)
    assert (b["available"], b["reserved"], b["committed"]) == (4, 0, 1)
    assert not any(t.endswith(".dlq") for t in outbox.topics())


async def test_reserve_then_commit_across_both_agents(drive, outbox):
    """Route each agent's output into the other, as Kafka would, for a whole order."""

    async with (
        drive(inventory.change_stock, inventory.node) as change,
        drive(inventory.gather_reservations, inventory.node) as gather,
    ):
        await stock_every_sku(change)
        await through_both(
            outbox,
            gather,
            change,
            ReserveStock(order_id=ORDER_ID, items=ITEMS),
            CommitStock(order_id=ORDER_ID, items=ITEMS),
        )

    replies = outbox.messages(ORDERS_REPLIES)
    assert [type(r) for r in replies] == [StockReserved, StockCommitted]
    assert replies[0].total == TOTAL
    assert_the_order_committed(outbox)


async def test_an_unanswered_commit_commits_every_sku_and_answers_no_one(drive, outbox):
    async with (
        drive(inventory.change_stock, inventory.node) as change,
        drive(inventory.gather_reservations, inventory.node) as gather,
    ):
        await stock_every_sku(change)
        await through_both(outbox, gather, change, ReserveStock(order_id=ORDER_ID, items=ITEMS))
        outbox.clear()
        commit = CommitStock(order_id=ORDER_ID, items=ITEMS, answered=False)
        # The second one a repeat (at-least-once), which changes nothing
        await through_both(outbox, gather, change, commit, commit)

    assert outbox.messages(ORDERS_REPLIES) == []
    assert_the_order_committed(outbox)


async def test_a_one_sku_orders_unanswered_commit_answers_no_one(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as change:
        await stock_every_sku(change)
        for op, reply_to in (("reserve", "orchestrator"), ("commit", "nobody")):
            command = SkuCommand(
                op=op, order_id=ORDER_ID, sku="SKU-A", quantity=2, reply_to=reply_to
            )
            await change.put(command, key="SKU-A", topic=INVENTORY_SKU_COMMANDS)

    assert [type(r) for r in outbox.messages(ORDERS_REPLIES)] == [StockReserved]
    assert outbox.messages(INVENTORY_SKU_REPLIES) == []
    a = levels("SKU-A")
    assert (a["available"], a["reserved"], a["committed"]) == (3, 0, 2)


async def test_forgetting_an_order_drops_its_holds_and_keeps_the_levels(drive, outbox):
    async with (
        drive(inventory.change_stock, inventory.node) as change,
        drive(inventory.gather_reservations, inventory.node) as gather,
    ):
        await stock_every_sku(change)
        await gather.put(
            ReserveStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )
        await settle(outbox, gather, change)
        await gather.put(
            CommitStock(order_id=ORDER_ID, items=ITEMS), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )
        await settle(outbox, gather, change)
        before = {sku: levels(sku) for sku in PRICES}
        outbox.clear()
        forget = ForgetOrders(order_ids=(ORDER_ID, "ord-never-seen"))
        await gather.put(forget, key=ORDER_ID, topic=INVENTORY_COMMANDS)
        assert sorted(outbox.messages(INVENTORY_SKU_COMMANDS), key=lambda m: m.sku) == [
            ForgetHolds(sku=sku, order_ids=(ORDER_ID,)) for sku in sorted(PRICES)
        ]
        await settle(outbox, gather, change)
        await gather.put(forget, key=ORDER_ID, topic=INVENTORY_COMMANDS)  # a duplicate

    assert inventory.order_stock.get(ORDER_ID) is None
    for sku, old in before.items():
        assert inventory.holds.get(hold_key(sku, ORDER_ID)) is None
        assert levels(sku) == old
        assert inventory.stock.get(sku)["forgotten_committed"] == old["committed"]
    # Levels did not move, so nothing is published; the duplicate fans out nothing.
    assert outbox.on(INVENTORY_EVENTS) == []
    assert outbox.on(INVENTORY_SKU_COMMANDS) == []
    assert not any(t.endswith(".dlq") for t in outbox.topics())


async def test_restored_holds_are_summed_again_after_a_rebalance(drive, outbox):
    # Given a SKU with a reserved and a committed order
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        await d.put(
            sku_command(order_id="o-r", quantity=2), key="SKU-A", topic=INVENTORY_SKU_COMMANDS
        )
        await d.put(
            sku_command(order_id="o-c", quantity=3), key="SKU-A", topic=INVENTORY_SKU_COMMANDS
        )
        await d.put(
            sku_command("commit", order_id="o-c", quantity=3),
            key="SKU-A",
            topic=INVENTORY_SKU_COMMANDS,
        )
    before = levels("SKU-A")
    assert (before["available"], before["reserved"], before["committed"]) == (5, 2, 3)
    # When a worker's sums are lost (a restart) and its tables recovered
    inventory.totals.clear()
    inventory.changed.clear()
    assert levels("SKU-A")["reserved"] == 0
    await inventory.count_holds()
    # Then the sums are rebuilt from the holds, and the SKU is published once more
    assert levels("SKU-A") == before
    assert inventory.changed == {"SKU-A"}


async def test_a_single_sku_order_is_answered_by_the_sku_partition_itself(drive, outbox):
    """Two hops fewer: no SkuResult goes back to the gather for a one-SKU order."""
    line = ITEMS[0]
    async with (
        drive(inventory.change_stock, inventory.node) as change,
        drive(inventory.gather_reservations, inventory.node) as gather,
    ):
        await stock_every_sku(change)
        outbox.clear()
        await gather.put(
            ReserveStock(order_id=ORDER_ID, items=(line,)), key=ORDER_ID, topic=INVENTORY_COMMANDS
        )
        [sent] = outbox.on(INVENTORY_SKU_COMMANDS)
        assert (sent.message.op, sent.message.reply_to) == ("reserve", "orchestrator")
        await settle(outbox, gather, change)

    assert INVENTORY_SKU_REPLIES not in outbox.topics()
    [reply] = outbox.on(ORDERS_REPLIES)
    assert reply.message == StockReserved(
        order_id=ORDER_ID,
        lines=(PricedLine(sku=line.sku, quantity=line.quantity, unit_price=PRICES[line.sku]),),
        total=line.quantity * PRICES[line.sku],
    )
    # Its id derives from the SKU command, so a replayed command answers under the same id.
    assert reply.envelope.event_id == f"{sent.envelope.event_id}:reply"
    assert levels(line.sku)["reserved"] == line.quantity


async def test_falling_to_the_threshold_sends_one_low_stock_event(drive, outbox):
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(
            RestockSku(restock_id="r-1", sku="SKU-A", quantity=5, unit_price=500, low_stock_at=2),
            key="SKU-A",
            topic=INVENTORY_SKU_COMMANDS,
        )
        outbox.clear()
        for i, quantity in enumerate((2, 1, 1)):  # 3 left, then 2 (the crossing), then 1
            await d.put(
                sku_command(order_id=f"o-{i}", quantity=quantity),
                key="SKU-A",
                topic=INVENTORY_SKU_COMMANDS,
            )

    lows = [s for s in outbox.on(INVENTORY_ALERTS) if isinstance(s.message, LowStock)]
    assert [(s.message.available, s.message.low_stock_at) for s in lows] == [(2, 2)]
    [low] = lows
    assert low.key == b"SKU-A"
    assert low.envelope.event_id == f"SKU-A:low:{low.message.version}"
    assert levels("SKU-A")["low_stock"] is True
    assert inventory.node.metrics.low_stock_skus._value.get() == 1


async def test_a_busy_sku_tells_the_orchestrator_of_a_direct_command_itself(
    drive, outbox, monkeypatch
):
    """No gather rolls a direct command back: the SKU answers and remembers the refusal."""
    monkeypatch.setattr(
        inventory.node,
        "settings",
        inventory.node.settings.model_copy(update={"max_holds_per_sku": 1}),
    )
    direct = sku_command(order_id=ORDER_ID, quantity=1).model_copy(
        update={"reply_to": "orchestrator"}
    )
    async with drive(inventory.change_stock, inventory.node) as d:
        await d.put(restock_sku(), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        await d.put(sku_command(order_id="o-other"), key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        outbox.clear()
        await d.put(direct, key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        [reply] = outbox.on(ORDERS_REPLIES)
        assert reply.key == ORDER_ID.encode()
        assert reply.message == StockRejected(order_id=ORDER_ID, reason="sku_busy", skus=("SKU-A",))
        assert INVENTORY_SKU_REPLIES not in outbox.topics()
        # Once the SKU is free again, a late duplicate is refused all the same
        await d.put(
            sku_command("release", order_id="o-other"), key="SKU-A", topic=INVENTORY_SKU_COMMANDS
        )
        outbox.clear()
        await d.put(direct, key="SKU-A", topic=INVENTORY_SKU_COMMANDS)
        [again] = outbox.on(ORDERS_REPLIES)
        assert isinstance(again.message, StockRejected)
    assert levels("SKU-A")["reserved"] == 0
