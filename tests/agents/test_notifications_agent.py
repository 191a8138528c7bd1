"""The notifications group shell: ``notify_customers`` from ``orders.outcomes``."""

from __future__ import annotations

import pytest

from ordersaga.agents import notifications
from ordersaga.schemas.messages import (
    CustomerNotified,
    ForgetOrders,
    LowStock,
    OperatorNotified,
    OrderEnded,
    StockChanged,
)
from ordersaga.shell.topics import INVENTORY_ALERTS, NOTIFICATIONS, ORDERS_OUTCOMES
from tests.harness import CUSTOMER_ID, ORDER_ID, order_event


def ended(*args, **kwargs):
    return OrderEnded.of(order_event(*args, **kwargs))


@pytest.fixture
def outbox(capture):
    return capture(notifications.node)


async def test_terminal_event_sends_one_notification_keyed_by_customer(drive, outbox):
    event = ended("OrderCompleted", 6, "COMPLETED", shipment_id="shp_1")
    async with drive(notifications.notify_customers, notifications.node) as d:
        await d.put(event, key=ORDER_ID, topic=ORDERS_OUTCOMES)

    [sent] = outbox.on(NOTIFICATIONS)
    assert outbox.topics() == [NOTIFICATIONS]
    assert sent.key == CUSTOMER_ID.encode()
    note = sent.message
    assert isinstance(note, CustomerNotified)
    assert (note.customer_id, note.order_id, note.status) == (CUSTOMER_ID, ORDER_ID, "COMPLETED")
    assert "shp_1" in note.text
    assert sent.envelope.event_id == f"{ORDER_ID}:notified"
    assert notifications.notified.get(ORDER_ID) == "COMPLETED"


async def test_same_event_twice_notifies_once(drive, outbox):
    event = ended("OrderFailed", 5, "FAILED", failure_reason="payment_declined")
    async with drive(notifications.notify_customers, notifications.node) as d:
        await d.put(event, key=ORDER_ID, topic=ORDERS_OUTCOMES)
        await d.put(event, key=ORDER_ID, topic=ORDERS_OUTCOMES)

    [note] = outbox.messages(NOTIFICATIONS)
    assert note.status == "FAILED"
    assert note.failure_reason == "payment_declined"
    assert "declined" in note.text


async def test_non_terminal_events_notify_nobody(drive, outbox):
    async with drive(notifications.notify_customers, notifications.node) as d:
        await d.put(ended("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_OUTCOMES)
        await d.put(
            ended("StockReserved", 2, "STOCK_RESERVED"), key=ORDER_ID, topic=ORDERS_OUTCOMES
        )

    assert outbox.sent == []
    assert notifications.notified.get(ORDER_ID) is None


async def test_foreign_message_is_dead_lettered(drive, outbox):
    stray = StockChanged(
        sku="SKU-A", version=1, unit_price=1, put_in=1, available=1, reserved=0, committed=0
    )
    async with drive(notifications.notify_customers, notifications.node) as d:
        await d.put(stray, key="SKU-A", topic=ORDERS_OUTCOMES)

    [dead] = outbox.on(f"{ORDERS_OUTCOMES}.dlq")
    assert dead.header("dlq.error") == "ValueError: StockChanged does not belong on orders.outcomes"
    assert dead.header("dlq.group") == "notifications"
    assert outbox.on(NOTIFICATIONS) == []


async def test_forget_orders_drops_what_was_notified(drive, outbox):
    event = ended("OrderCompleted", 6, "COMPLETED", shipment_id="shp_1")
    async with drive(notifications.notify_customers, notifications.node) as d:
        await d.put(event, key=ORDER_ID, topic=ORDERS_OUTCOMES)
        outbox.clear()
        await d.put(ForgetOrders(order_ids=(ORDER_ID,)), key=ORDER_ID, topic=ORDERS_OUTCOMES)

    assert notifications.notified.get(ORDER_ID) is None
    assert outbox.sent == []


async def test_a_low_stock_crossing_tells_the_operators_once(drive, outbox):
    low = LowStock(sku="SKU-A", version=7, available=2, low_stock_at=2)
    async with drive(notifications.notify_low_stock_skus, notifications.node) as d:
        await d.put(low, key="SKU-A", topic=INVENTORY_ALERTS)
        await d.put(low, key="SKU-A", topic=INVENTORY_ALERTS)  # a replay
        older = low.model_copy(update={"version": 3})
        await d.put(older, key="SKU-A", topic=INVENTORY_ALERTS)
    [notice] = outbox.on(NOTIFICATIONS)
    assert notice.key == b"SKU-A"
    assert isinstance(notice.message, OperatorNotified)
    assert "SKU-A is low: 2 available" in notice.message.text
    # A later crossing is news again
    async with drive(notifications.notify_low_stock_skus, notifications.node) as d:
        await d.put(low.model_copy(update={"version": 12}), key="SKU-A", topic=INVENTORY_ALERTS)
    assert len(outbox.on(NOTIFICATIONS)) == 2
