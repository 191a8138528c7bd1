"""Unit tests of what the customer is told when an order ends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ordersaga.saga.notifications import notification_for
from ordersaga.saga.orchestrator import Policy, decide
from ordersaga.schemas.messages import (
    Address,
    CancelOrder,
    CustomerNotified,
    CustomerRejected,
    CustomerValidated,
    Message,
    OrderEvent,
    OrderLine,
    OrderSnapshot,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PlaceOrder,
    PricedLine,
    ShipmentCancelled,
    ShipmentPrepared,
    StepDeadlineExpired,
    StockRejected,
    StockReleased,
    StockReserved,
)

ORDER = "ord-9"
CUSTOMER = "cust-42"
ITEMS = (OrderLine(sku="SKU-A", quantity=1),)
PLACE = PlaceOrder(
    order_id=ORDER,
    customer_id=CUSTOMER,
    items=ITEMS,
    payment_token="tok_ok",
    shipping_address=Address(
        name="Ada", line1="1 Main St", city="Paris", postal_code="1", country="FR"
    ),
)
RESERVED = StockReserved(
    order_id=ORDER, lines=(PricedLine(sku="SKU-A", quantity=1, unit_price=100),), total=100
)
CHARGED = PaymentCharged(order_id=ORDER, amount=100, charge_id="ch_9")
VALID = CustomerValidated(order_id=ORDER, customer_id=PLACE.customer_id)
POLICY = Policy(step_max_attempts=1)

# Each outcome as the sequence of messages that leads a fresh saga to it.
OUTCOMES: dict[str, tuple[Message, ...]] = {
    "completed": (
        PLACE,
        VALID,
        RESERVED,
        CHARGED,
        ShipmentPrepared(order_id=ORDER, shipment_id="shp_9", carrier="simulated-post"),
    ),
    "out_of_stock": (PLACE, VALID, StockRejected(order_id=ORDER, skus=("SKU-A",))),
    "customer_invalid": (
        PLACE,
        CustomerRejected(order_id=ORDER, customer_id=PLACE.customer_id, reason="blocked"),
    ),
    "payment_declined": (
        PLACE,
        VALID,
        RESERVED,
        PaymentDeclined(order_id=ORDER, reason="card_declined"),
        StockReleased(order_id=ORDER),
    ),
    "step_timeout": (
        PLACE,
        VALID,
        StepDeadlineExpired(order_id=ORDER, awaiting="StockReserved", attempt=1),
        StockReleased(order_id=ORDER),
    ),
    "cancelled": (
        PLACE,
        VALID,
        RESERVED,
        CHARGED,
        CancelOrder(order_id=ORDER),
        PaymentRefunded(order_id=ORDER, amount=0),  # not awaited yet: ignored
    ),
}


CONFIRMATIONS: dict[str, Message] = {
    m.TYPE: m
    for m in (
        ShipmentCancelled(order_id=ORDER),
        PaymentRefunded(order_id=ORDER, amount=100),
        StockReleased(order_id=ORDER),
    )
}


def events_of(messages: tuple[Message, ...]) -> list[OrderEvent]:
    """Every event a fresh saga publishes for these messages, then confirming its compensations."""
    state = None
    events: list[OrderEvent] = []
    now = 1_000.0
    for message in messages:
        now += 1
        decision = decide(state, message, now, POLICY)
        state = decision.state
        events.extend(decision.events)
    while state is not None and not state.terminal:
        now += 1
        decision = decide(state, CONFIRMATIONS[str(state.awaiting)], now, POLICY)
        state = decision.state
        events.extend(decision.events)
    return events


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_only_the_terminal_event_of_a_saga_produces_a_notification(outcome):
    # Given every event a saga published on its way to an outcome
    events = events_of(OUTCOMES[outcome])
    # When each is turned into a notification
    notes = [(e.name, notification_for(e)) for e in events]
    # Then exactly one notification comes out, for the terminal event, the last one
    produced = [(name, note) for name, note in notes if note is not None]
    assert len(produced) == 1
    name, note = produced[0]
    assert name in {"OrderCompleted", "OrderFailed", "OrderCancelled"}
    assert name == events[-1].name
    # And it is addressed to the order's customer with the outcome
    assert isinstance(note, CustomerNotified)
    assert note.customer_id == CUSTOMER
    assert note.order_id == ORDER
    assert note.status == events[-1].order.status
    assert note.failure_reason == events[-1].order.failure_reason
    assert ORDER in note.text


def test_completed_notification_names_the_shipment():
    note = notification_for(events_of(OUTCOMES["completed"])[-1])
    assert note is not None
    assert note.status == "COMPLETED"
    assert note.failure_reason is None
    assert "shp_9" in note.text


def test_cancelled_notification_has_no_failure_reason():
    note = notification_for(events_of(OUTCOMES["cancelled"])[-1])
    assert note is not None
    assert (note.status, note.failure_reason) == ("CANCELLED", None)
    assert "cancelled" in note.text


@pytest.mark.parametrize(
    ("outcome", "reason", "phrase"),
    [
        ("out_of_stock", "out_of_stock", "out of stock"),
        ("payment_declined", "payment_declined", "payment was declined"),
        ("step_timeout", "step_timeout", "did not answer in time"),
    ],
)
def test_failed_notification_explains_the_reason(outcome, reason, phrase):
    note = notification_for(events_of(OUTCOMES[outcome])[-1])
    assert note is not None
    assert (note.status, note.failure_reason) == ("FAILED", reason)
    assert phrase in note.text


# ------------------------------------------------------------------ hand-made events

AT = datetime(2026, 1, 1, tzinfo=UTC)


def event(name: str, status: str, failure_reason: str | None = None) -> OrderEvent:
    snapshot = OrderSnapshot(
        order_id=ORDER,
        customer_id=CUSTOMER,
        status=status,
        failure_reason=failure_reason,
        items=ITEMS,
        placed_at=AT,
        updated_at=AT,
    )
    return OrderEvent(name=name, seq=1, order=snapshot)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("OrderPlaced", "PENDING"),
        ("StockReserved", "STOCK_RESERVED"),
        ("CompensationStarted", "COMPENSATING"),
        ("CompensationStuck", "COMPENSATION_STUCK"),
        # a non-outcome event whose snapshot is already terminal
        ("StockCommitted", "COMPLETED"),
        ("StockReleased", "FAILED"),
        # an outcome name on a snapshot that is not terminal
        ("OrderCompleted", "SHIPMENT_PREPARED"),
    ],
)
def test_non_terminal_events_produce_no_notification(name, status):
    assert notification_for(event(name, status)) is None


def test_unknown_failure_reason_gets_a_generic_text():
    note = notification_for(event("OrderFailed", "FAILED", "mystery"))
    assert note is not None
    assert note.customer_id == CUSTOMER
    assert note.failure_reason == "mystery"
    assert "could not be completed" in note.text
