"""What the customer is told when an order ends."""

from __future__ import annotations

from ordersaga.schemas.messages import CustomerNotified, OrderEvent

_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}

_REASON_TEXT = {
    "out_of_stock": "some items are out of stock",
    "payment_declined": "the payment was declined",
    "shipping_failed": "the carrier cannot ship to your address",
    "step_timeout": "a service did not answer in time",
    "invalid_order": "the order was invalid",
}


def notification_for(event: OrderEvent) -> CustomerNotified | None:
    """The message to the customer for an order event, or None when it is not an outcome."""
    order = event.order
    if order.status not in _TERMINAL or event.name not in {
        "OrderCompleted",
        "OrderFailed",
        "OrderCancelled",
    }:
        return None
    if order.status == "COMPLETED":
        text = f"Your order {order.order_id} is on its way (shipment {order.shipment_id})."
    elif order.status == "CANCELLED":
        text = f"Your order {order.order_id} is cancelled; nothing was charged in the end."
    else:
        why = _REASON_TEXT.get(order.failure_reason or "", "it could not be completed")
        text = f"Your order {order.order_id} failed: {why}. Nothing was charged in the end."
    return CustomerNotified(
        customer_id=order.customer_id,
        order_id=order.order_id,
        status=order.status,
        failure_reason=order.failure_reason,
        text=text,
    )
