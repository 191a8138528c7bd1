"""The one vocabulary of where an order stands and why it failed.

Every module that names a status or a failure reason takes it from here; the
values are what the web view, the topics and the audit show.
"""

from __future__ import annotations

from enum import StrEnum


class SagaStatus(StrEnum):
    """Where an order stands."""

    PENDING = "PENDING"
    CUSTOMER_VALIDATED = "CUSTOMER_VALIDATED"
    STOCK_RESERVED = "STOCK_RESERVED"
    PAID = "PAID"
    SHIPMENT_PREPARED = "SHIPMENT_PREPARED"
    COMPENSATING = "COMPENSATING"
    COMPENSATION_STUCK = "COMPENSATION_STUCK"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# StrEnum members equal their values, so plain strings read from JSON test true too.
TERMINAL: frozenset[SagaStatus] = frozenset(
    {SagaStatus.COMPLETED, SagaStatus.FAILED, SagaStatus.CANCELLED}
)

# The event that ends a saga in each terminal status.
TERMINAL_EVENTS: dict[SagaStatus, str] = {
    SagaStatus.COMPLETED: "OrderCompleted",
    SagaStatus.FAILED: "OrderFailed",
    SagaStatus.CANCELLED: "OrderCancelled",
}
TERMINAL_EVENT_NAMES: frozenset[str] = frozenset(TERMINAL_EVENTS.values())


class FailureReason(StrEnum):
    """Why a FAILED order failed."""

    # The customer is unknown or blocked (nothing was done, nothing to undo).
    CUSTOMER_INVALID = "customer_invalid"
    OUT_OF_STOCK = "out_of_stock"
    # Too many orders hold the SKU at once (ORDERSAGA_MAX_HOLDS_PER_SKU); retry later.
    SKU_BUSY = "sku_busy"
    PAYMENT_DECLINED = "payment_declined"
    SHIPPING_FAILED = "shipping_failed"
    STEP_TIMEOUT = "step_timeout"
    # A participant refused a command for its content (CommandRejected).
    INVALID_ORDER = "invalid_order"
