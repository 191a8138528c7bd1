"""An order of one SKU: its stock commands go to the SKU's partition, from the orchestrator itself.

The same saga, the same replies; only the command and its key differ, so what
the orchestrator waits for, matches rejections against and probes queues for
must follow the command it actually sent.
"""

from __future__ import annotations

from ordersaga.saga.orchestrator import awaited_command, decide
from ordersaga.schemas.messages import (
    CommandRejected,
    OrderLine,
    PricedLine,
    SkuCommand,
    StockReleased,
    StockReserved,
)
from ordersaga.schemas.status import FailureReason, SagaStatus
from tests.unit.saga_driver import ORDER_ID, PLACE, REPLIES, Saga

LINE = OrderLine(sku="SKU-A", quantity=2)


def one_sku_saga() -> Saga:
    saga = Saga()
    saga.deliver(PLACE.model_copy(update={"items": (LINE,)}))
    saga.reply("CustomerValidated")
    return saga


def stock_reserved() -> StockReserved:
    priced = PricedLine(sku=LINE.sku, quantity=LINE.quantity, unit_price=500)
    return StockReserved(order_id=ORDER_ID, lines=(priced,), total=1000)


def test_a_one_sku_order_reserves_and_commits_through_its_sku() -> None:
    saga = one_sku_saga()
    reserve = saga.commands[-1]
    assert reserve == SkuCommand(
        op="reserve", order_id=ORDER_ID, sku="SKU-A", quantity=2, reply_to="orchestrator"
    )
    assert reserve.routing_key() == "SKU-A"
    assert saga.state is not None and awaited_command(saga.state) is SkuCommand
    saga.deliver(stock_reserved())
    saga.reply("PaymentCharged")
    saga.reply("ShipmentPrepared")
    # The commit goes to the SKU with the shipment's answer; nobody answers it
    commit = saga.commands[-1]
    assert commit == SkuCommand(
        op="commit", order_id=ORDER_ID, sku="SKU-A", quantity=2, reply_to="nobody"
    )
    assert saga.state is not None and saga.state.status == SagaStatus.COMPLETED


def test_a_one_sku_orders_stock_is_released_through_its_sku() -> None:
    saga = one_sku_saga()
    saga.deliver(stock_reserved())
    saga.deliver(REPLIES["PaymentDeclined"])
    release = saga.commands[-1]
    assert isinstance(release, SkuCommand) and release.op == "release"
    assert saga.state is not None and awaited_command(saga.state) is SkuCommand
    saga.deliver(StockReleased(order_id=ORDER_ID))
    assert saga.state.status == SagaStatus.FAILED


def test_a_rejected_sku_command_fails_the_order_as_a_rejected_reserve_would() -> None:
    saga = one_sku_saga()
    saga.deliver(CommandRejected(order_id=ORDER_ID, command="SkuCommand", reason="bad"))
    assert saga.state is not None and saga.state.compensating
    assert saga.state.failure_reason == FailureReason.INVALID_ORDER
    # The reservation may have been made: it is released, through the SKU again
    assert isinstance(saga.commands[-1], SkuCommand) and saga.commands[-1].op == "release"


def test_a_rejection_of_another_command_changes_nothing() -> None:
    saga = one_sku_saga()
    assert saga.state is not None
    rejected = CommandRejected(order_id=ORDER_ID, command="ChargePayment", reason="bad")
    assert not decide(saga.state, rejected, saga.now, saga.policy).changed
