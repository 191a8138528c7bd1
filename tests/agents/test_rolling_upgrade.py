"""A rolling upgrade, seen from a worker of the older release.

While an upgrade rolls through, workers of the newer release write messages and
table records with fields this release does not know. The older worker must answer
them as always, not dead-letter them (ARCHITECTURE.md, Message compatibility).
A newer release's message is stood for by a subclass with a field added, encoded
with the real codec, exactly what that release's ``encode`` would write.
"""

from __future__ import annotations

from typing import Any

import orjson

from ordersaga.agents import payments, shipping
from ordersaga.schemas.messages import (
    ChargePayment,
    PaymentCharged,
    PaymentRefunded,
    PrepareShipment,
    RefundPayment,
    ShipmentPrepared,
)
from ordersaga.shell.codec import encode
from ordersaga.shell.topics import ORDERS_REPLIES, PAYMENTS_COMMANDS, SHIPPING_COMMANDS
from tests.harness import ADDRESS, CUSTOMER_ID, ITEMS, ORDER_ID, TOTAL


class NewerChargePayment(ChargePayment):
    """ChargePayment as the next release writes it: an optional field more."""

    statement_descriptor: str | None = None


class NewerChargePaymentV2(NewerChargePayment):
    """The same, written by a release that also bumped VERSION (an additive change)."""

    VERSION = 2


def charge(order_id: str = ORDER_ID) -> ChargePayment:
    return ChargePayment(
        order_id=order_id, customer_id=CUSTOMER_ID, payment_token="tok_ok", amount=TOTAL
    )


async def test_a_charge_with_a_field_added_by_a_newer_release_is_charged(drive, capture):
    outbox = capture(payments.node)
    newer = NewerChargePayment(**charge().model_dump(), statement_descriptor="SHOP*ORDER")
    later = NewerChargePaymentV2(**charge("ord-2").model_dump(), statement_descriptor="x")
    async with drive(payments.process_payments, payments.node) as d:
        fed = await d.put(newer, key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        await d.put(later, key="ord-2", topic=PAYMENTS_COMMANDS)

    assert orjson.loads(fed.value)["payload"]["statement_descriptor"] == "SHOP*ORDER"
    assert set(outbox.topics()) == {ORDERS_REPLIES}  # nothing dead-lettered
    assert outbox.messages(ORDERS_REPLIES) == [
        PaymentCharged(order_id=ORDER_ID, amount=TOTAL, charge_id=f"ch_{ORDER_ID}"),
        PaymentCharged(order_id="ord-2", amount=TOTAL, charge_id="ch_ord-2"),
    ]
    assert payments.payment_ledger.get(ORDER_ID)["status"] == "charged"


async def test_a_shipment_with_fields_added_in_envelope_payload_and_address_is_booked(
    drive, capture
):
    outbox = capture(shipping.node)
    encoded = encode(
        PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS),
        key=ORDER_ID,
        correlation_id=ORDER_ID,
    )
    raw: dict[str, Any] = orjson.loads(encoded.value)
    raw["region"] = "eu-west"
    raw["payload"]["delivery_window"] = {"from": "09:00", "to": "12:00"}
    raw["payload"]["address"]["line2"] = "Flat 4"
    raw["payload"]["items"][0]["fragile"] = True
    async with drive(shipping.ship_orders, shipping.node) as d:
        await d.put_raw(
            orjson.dumps(raw), key=ORDER_ID, topic=SHIPPING_COMMANDS, headers=encoded.headers
        )

    assert outbox.topics() == [ORDERS_REPLIES]
    assert outbox.messages(ORDERS_REPLIES) == [
        ShipmentPrepared(order_id=ORDER_ID, shipment_id=f"shp_{ORDER_ID}", carrier="simulated-post")
    ]


async def test_a_ledger_record_a_newer_release_wrote_is_read_and_rewritten_without_its_field(
    drive, capture
):
    outbox = capture(payments.node)
    async with drive(payments.process_payments, payments.node) as d:
        await d.put(charge(), key=ORDER_ID, topic=PAYMENTS_COMMANDS)
        # The partition moved here from a newer worker, which kept one field more.
        ledger = payments.payment_ledger.faust_table
        ledger.data[ORDER_ID] = {**ledger.data[ORDER_ID], "gateway_region": "eu"}
        await d.put(RefundPayment(order_id=ORDER_ID), key=ORDER_ID, topic=PAYMENTS_COMMANDS)

    assert set(outbox.topics()) == {ORDERS_REPLIES}
    assert outbox.messages(ORDERS_REPLIES)[-1] == PaymentRefunded(order_id=ORDER_ID, amount=TOTAL)
    ledger = payments.payment_ledger.get(ORDER_ID)
    assert ledger["status"] == "refunded" and "gateway_region" not in ledger
