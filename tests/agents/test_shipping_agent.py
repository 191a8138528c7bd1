"""The shipping group shell: ``ship_orders`` over the shipments table and simulated carrier."""

from __future__ import annotations

import orjson
import pytest

from ordersaga.agents import shipping
from ordersaga.schemas.messages import (
    CancelShipment,
    ForgetOrders,
    PrepareShipment,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
)
from ordersaga.shell.topics import ORDERS_REPLIES, SHIPPING_COMMANDS
from tests.harness import ADDRESS, ITEMS, ORDER_ID, event_id_of


@pytest.fixture
def outbox(capture):
    return capture(shipping.node)


def prepare(country: str = "FR") -> PrepareShipment:
    address = ADDRESS.model_copy(update={"country": country})
    return PrepareShipment(order_id=ORDER_ID, address=address, items=ITEMS)


async def test_prepare_answers_shipment_prepared(drive, outbox):
    async with drive(shipping.ship_orders, shipping.node) as d:
        fed = await d.put(prepare(), key=ORDER_ID, topic=SHIPPING_COMMANDS)

    [reply] = outbox.on(ORDERS_REPLIES)
    assert outbox.topics() == [ORDERS_REPLIES]
    assert reply.key == ORDER_ID.encode()
    assert reply.message == ShipmentPrepared(
        order_id=ORDER_ID, shipment_id=f"shp_{ORDER_ID}", carrier="simulated-post"
    )
    assert reply.envelope.event_id == f"{event_id_of(fed)}:reply"
    assert shipping.shipments.get(ORDER_ID)["status"] == "prepared"


async def test_replayed_prepare_answers_the_same_booking(drive, outbox):
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put(prepare(), key=ORDER_ID, topic=SHIPPING_COMMANDS)
        record = shipping.shipments.get(ORDER_ID)
        await d.put(prepare(), key=ORDER_ID, topic=SHIPPING_COMMANDS)

    first, second = outbox.messages(ORDERS_REPLIES)
    assert first == second
    assert shipping.shipments.get(ORDER_ID) == record


async def test_refused_country_answers_shipment_refused(drive, outbox):
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put(prepare("XX"), key=ORDER_ID, topic=SHIPPING_COMMANDS)

    assert outbox.messages(ORDERS_REPLIES) == [
        ShipmentRefused(order_id=ORDER_ID, reason="carrier does not ship to XX")
    ]
    assert shipping.shipments.get(ORDER_ID)["status"] == "refused"


async def test_cancel_answers_shipment_cancelled_and_refuses_a_late_booking(drive, outbox):
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put(prepare(), key=ORDER_ID, topic=SHIPPING_COMMANDS)
        outbox.clear()
        await d.put(CancelShipment(order_id=ORDER_ID), key=ORDER_ID, topic=SHIPPING_COMMANDS)
        assert outbox.messages(ORDERS_REPLIES) == [ShipmentCancelled(order_id=ORDER_ID)]
        assert shipping.shipments.get(ORDER_ID)["status"] == "cancelled"
        outbox.clear()
        await d.put(prepare(), key=ORDER_ID, topic=SHIPPING_COMMANDS)

    [late] = outbox.messages(ORDERS_REPLIES)
    assert isinstance(late, ShipmentRefused)
    assert shipping.shipments.get(ORDER_ID)["status"] == "cancelled"


async def test_cancel_without_booking_still_answers(drive, outbox):
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put(CancelShipment(order_id=ORDER_ID), key=ORDER_ID, topic=SHIPPING_COMMANDS)

    assert outbox.messages(ORDERS_REPLIES) == [ShipmentCancelled(order_id=ORDER_ID)]
    assert shipping.shipments.get(ORDER_ID)["status"] == "cancelled"


async def test_invalid_payload_is_dead_lettered(drive, outbox):
    bad = prepare().model_dump(mode="json")
    bad["address"]["country"] = "france"  # fails the schema
    raw = (
        b'{"event_id":"e-1","type":"PrepareShipment","correlation_id":"c","payload":'
        + orjson.dumps(bad)
        + b"}"
    )
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put_raw(raw, key=ORDER_ID, topic=SHIPPING_COMMANDS)

    [dead] = outbox.on(f"{SHIPPING_COMMANDS}.dlq")
    assert dead.header("dlq.error").startswith(
        "bad PrepareShipment payload: address.Address.country"
    )
    assert shipping.shipments.get(ORDER_ID) is None


async def test_forget_orders_drops_the_shipment(drive, outbox):
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put(prepare(), key=ORDER_ID, topic=SHIPPING_COMMANDS)
        outbox.clear()
        await d.put(ForgetOrders(order_ids=(ORDER_ID,)), key=ORDER_ID, topic=SHIPPING_COMMANDS)

    assert shipping.shipments.get(ORDER_ID) is None
    assert outbox.sent == []
