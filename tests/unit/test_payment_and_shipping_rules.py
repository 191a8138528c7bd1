"""Unit tests of the payment ledger and the shipment rules."""

from __future__ import annotations

import pytest

from ordersaga.adapters.gateway import DECLINE_TOKEN, NO_REPLY_TOKEN, simulate_gateway
from ordersaga.saga.payments import GatewayOutcome, PaymentRecord, charge, refund
from ordersaga.saga.shipping import CARRIER, ShipmentRecord, cancel, prepare
from ordersaga.schemas.messages import (
    Address,
    CancelShipment,
    ChargePayment,
    OrderLine,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PrepareShipment,
    RefundPayment,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
)

ORDER = "ord-1"
AMOUNT = 2250


def charge_command(token: str = "tok_ok", amount: int = AMOUNT) -> ChargePayment:
    return ChargePayment(order_id=ORDER, customer_id="cust-7", payment_token=token, amount=amount)


def pay(record: PaymentRecord | None, token: str = "tok_ok", amount: int = AMOUNT):
    """Charge through the simulated gateway, as the payments agent does."""
    return charge(record, charge_command(token, amount), simulate_gateway(token, faults=True))


REFUND = RefundPayment(order_id=ORDER)


# ------------------------------------------------------------------ gateway


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        ("tok_ok", GatewayOutcome.APPROVED),
        ("anything", GatewayOutcome.APPROVED),
        (DECLINE_TOKEN, GatewayOutcome.DECLINED),
        (NO_REPLY_TOKEN, GatewayOutcome.NO_REPLY),
    ],
)
def test_gateway_outcome_is_chosen_by_the_token(token, outcome):
    assert simulate_gateway(token, faults=True) == outcome
    # Without the simulator's faults no token a client sends chooses a failure.
    assert simulate_gateway(token) == GatewayOutcome.APPROVED


# ------------------------------------------------------------------ charge


def test_charge_once_records_the_amount_and_answers_charged():
    # When an order is charged for the first time
    record, reply = pay(None)
    # Then the ledger holds the charge and the reply says so
    assert record == PaymentRecord(
        order_id=ORDER, status="charged", charged=AMOUNT, charge_id=f"ch_{ORDER}"
    )
    assert reply == PaymentCharged(order_id=ORDER, amount=AMOUNT, charge_id=f"ch_{ORDER}")


def test_repeated_charge_answers_the_same_without_charging_twice():
    # Given an order charged once
    record, first = pay(None)
    # When the charge is redelivered, even with another amount
    again, second = pay(record, amount=AMOUNT * 2)
    # Then the answer is the same and nothing more was charged
    assert second == first
    assert again is record
    assert again is not None and again.charged == AMOUNT


def test_decline_token_is_declined_and_remembered():
    # When an order is charged with a declining card
    record, reply = pay(None, token=DECLINE_TOKEN)
    # Then it is declined and nothing is charged
    assert reply == PaymentDeclined(order_id=ORDER, reason="card_declined")
    assert record is not None
    assert (record.status, record.charged) == ("declined", 0)
    # And a redelivered charge is declined the same way, even if the token would pass now
    again, second = charge(record, charge_command(), GatewayOutcome.APPROVED)
    assert second == reply
    assert again is record


def test_timeout_token_gives_no_record_and_no_reply():
    assert pay(None, token=NO_REPLY_TOKEN) == (None, None)


def test_charge_after_a_gateway_timeout_can_still_succeed():
    record, reply = pay(None, token=NO_REPLY_TOKEN)
    record, reply = charge(record, charge_command(), GatewayOutcome.APPROVED)
    assert isinstance(reply, PaymentCharged)
    assert record is not None and record.charged == AMOUNT


# ------------------------------------------------------------------ refund


def test_refund_after_charge_refunds_exactly_what_was_charged():
    # Given an order charged AMOUNT
    record, _ = pay(None)
    # When it is refunded
    refunded, reply = refund(record, REFUND)
    # Then exactly the charged amount is refunded
    assert reply == PaymentRefunded(order_id=ORDER, amount=AMOUNT)
    assert (refunded.status, refunded.charged, refunded.refunded) == ("refunded", AMOUNT, AMOUNT)


def test_refund_twice_refunds_once():
    # Given an order charged then refunded
    record, _ = pay(None)
    once, first = refund(record, REFUND)
    # When the refund is redelivered
    twice, second = refund(once, REFUND)
    # Then the same amount is reported and nothing more is refunded
    assert second == first
    assert twice is once
    assert twice.refunded == AMOUNT


def test_charge_after_refund_is_declined_and_charges_nothing_more():
    record, _ = pay(None)
    record, _ = refund(record, REFUND)
    again, reply = pay(record)
    assert isinstance(reply, PaymentDeclined)
    assert again is record
    assert (again.charged, again.refunded) == (AMOUNT, AMOUNT)


def test_refund_before_charge_leaves_a_tombstone_that_declines_the_late_charge():
    # When the refund arrives before any charge
    tombstone, reply = refund(None, REFUND)
    # Then nothing is refunded and the order is marked refunded
    assert reply == PaymentRefunded(order_id=ORDER, amount=0)
    assert (tombstone.status, tombstone.charged, tombstone.refunded) == ("refunded", 0, 0)
    # When the charge arrives late with an approving card
    after, late = pay(tombstone)
    # Then it is declined and nothing is charged
    assert isinstance(late, PaymentDeclined)
    assert late.reason == "compensated_before_charge"
    assert after is tombstone
    assert after is not None and after.charged == 0


def test_refund_of_a_declined_charge_refunds_nothing_and_keeps_it_declined():
    record, _ = pay(None, token=DECLINE_TOKEN)
    after, reply = refund(record, REFUND)
    assert reply == PaymentRefunded(order_id=ORDER, amount=0)
    assert after is record
    _, late = pay(after)
    assert isinstance(late, PaymentDeclined)


# ------------------------------------------------------------------ shipping

ITEMS = (OrderLine(sku="SKU-A", quantity=2),)


def prepare_command(country: str = "FR") -> PrepareShipment:
    address = Address(
        name="Ada", line1="1 Main St", city="Paris", postal_code="75001", country=country
    )
    return PrepareShipment(order_id=ORDER, address=address, items=ITEMS)


CANCEL_SHIPMENT = CancelShipment(order_id=ORDER)


def test_prepare_books_one_shipment():
    record, reply = prepare(None, prepare_command())
    assert reply == ShipmentPrepared(order_id=ORDER, shipment_id=f"shp_{ORDER}", carrier=CARRIER)
    assert record.live
    assert (record.status, record.country) == ("prepared", "FR")


def test_country_xx_is_refused():
    # When a shipment to XX is asked for
    record, reply = prepare(None, prepare_command("XX"))
    # Then the carrier refuses and nothing is booked
    assert isinstance(reply, ShipmentRefused)
    assert "XX" in reply.reason
    assert record.status == "refused"
    assert not record.live
    assert record.shipment_id is None


def test_refused_shipment_stays_refused_on_repeat():
    record, first = prepare(None, prepare_command("XX"))
    again, second = prepare(record, prepare_command("XX"))
    assert second == first
    assert again is record


def test_prepare_twice_gives_the_same_shipment_id():
    # Given a prepared shipment
    record, first = prepare(None, prepare_command())
    # When the command is redelivered
    again, second = prepare(record, prepare_command())
    # Then the same shipment is answered and nothing new is booked
    assert second == first
    assert again is record


def test_cancel_after_prepare_cancels_the_booking():
    record, prepared = prepare(None, prepare_command())
    cancelled, reply = cancel(record, CANCEL_SHIPMENT)
    assert reply == ShipmentCancelled(order_id=ORDER)
    assert cancelled.status == "cancelled"
    assert not cancelled.live
    assert cancelled.shipment_id == prepared.shipment_id


def test_cancel_before_prepare_blocks_the_later_prepare():
    # When the cancel arrives before any booking
    tombstone, reply = cancel(None, CANCEL_SHIPMENT)
    # Then it is confirmed and remembered
    assert reply == ShipmentCancelled(order_id=ORDER)
    assert tombstone == ShipmentRecord(
        order_id=ORDER, status="cancelled", reason="cancelled by the saga"
    )
    # When the booking arrives late
    after, late = prepare(tombstone, prepare_command())
    # Then it is refused and nothing is booked
    assert isinstance(late, ShipmentRefused)
    assert after is tombstone
    assert not after.live


@pytest.mark.parametrize(
    "before",
    [None, "prepared", "refused"],
    ids=["nothing", "prepared", "refused"],
)
def test_cancel_twice_is_idempotent(before):
    # Given a shipment in some state
    record: ShipmentRecord | None = None
    if before == "prepared":
        record, _ = prepare(None, prepare_command())
    elif before == "refused":
        record, _ = prepare(None, prepare_command("XX"))
    # When it is cancelled twice
    once, first = cancel(record, CANCEL_SHIPMENT)
    twice, second = cancel(once, CANCEL_SHIPMENT)
    # Then the second cancel answers the same and changes nothing
    assert second == first == ShipmentCancelled(order_id=ORDER)
    assert twice is once
    assert not twice.live


def test_cancel_of_a_refused_shipment_keeps_it_refused():
    record, _ = prepare(None, prepare_command("XX"))
    after, reply = cancel(record, CANCEL_SHIPMENT)
    assert reply == ShipmentCancelled(order_id=ORDER)
    assert after is record
