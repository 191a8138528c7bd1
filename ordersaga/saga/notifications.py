"""What the customer is told when an order ends."""

from __future__ import annotations

from ordersaga.schemas.messages import CustomerNotified, LowStock, OperatorNotified, OrderEvent
from ordersaga.schemas.status import TERMINAL, TERMINAL_EVENT_NAMES, FailureReason, SagaStatus

_REASON_TEXT: dict[str, str] = {
    FailureReason.CUSTOMER_INVALID: "your account cannot place orders (unknown or blocked)",
    FailureReason.OUT_OF_STOCK: "some items are out of stock",
    FailureReason.SKU_BUSY: "too many orders hold one of its items right now: try again shortly",
    FailureReason.PAYMENT_DECLINED: "the payment was declined",
    FailureReason.SHIPPING_FAILED: "the carrier cannot ship to your address",
    FailureReason.STEP_TIMEOUT: "a service did not answer in time",
    FailureReason.INVALID_ORDER: "the order was invalid",
}


def notification_for(event: OrderEvent) -> CustomerNotified | None:
    """The message to the customer for an order event, or None when it is not an outcome."""
    order = event.order
    if order.status not in TERMINAL or event.name not in TERMINAL_EVENT_NAMES:
        return None
    if order.status == SagaStatus.COMPLETED:
        text = f"Your order {order.order_id} is on its way (shipment {order.shipment_id})."
    elif order.status == SagaStatus.CANCELLED:
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


def operator_notice(event: LowStock) -> OperatorNotified:
    """What the operators' channel is told when a SKU runs low."""
    return OperatorNotified(
        sku=event.sku,
        version=event.version,
        text=f"SKU {event.sku} is low: {event.available} available "
        f"(threshold {event.low_stock_at}); time to restock.",
    )
