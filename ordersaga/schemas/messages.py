"""The wire envelope and every command, reply and event the agent groups exchange.

Money is in integer minor units (cents) everywhere, so totals are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Cents = Annotated[int, Field(ge=0)]


class Message(BaseModel):
    """Base of every payload; ``TYPE`` is the name written to the ``type`` header."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def order_ref(self) -> str | None:
        """The order this message is about, if any (the envelope's ``order_id``)."""
        return getattr(self, "order_id", None)


class Envelope(BaseModel):
    """What travels as a Kafka value: metadata around one typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    version: int = 1
    order_id: str | None = None
    correlation_id: str = Field(min_length=1)
    causation_id: str | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    payload: dict[str, Any]


# ---------------------------------------------------------------- shared parts


class OrderLine(BaseModel):
    """A SKU and how many of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Sku
    quantity: int = Field(gt=0, le=10_000)


class PricedLine(OrderLine):
    """An order line priced from the inventory catalogue at reservation time."""

    unit_price: Cents


class Address(BaseModel):
    """A shipping address."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")


# ------------------------------------------------------------ orders.commands


class PlaceOrder(Message):
    """The web view asks the orchestrator to run a new saga."""

    TYPE = "PlaceOrder"
    order_id: str
    customer_id: str
    items: tuple[OrderLine, ...] = Field(min_length=1)
    payment_token: str
    shipping_address: Address


class CancelOrder(Message):
    """The customer asks to cancel an order in flight."""

    TYPE = "CancelOrder"
    order_id: str
    reason: str = "customer_request"


class StepDeadlineExpired(Message):
    """The orchestrator's own timer: the step awaited at ``attempt`` had no reply in time."""

    TYPE = "StepDeadlineExpired"
    order_id: str
    awaiting: str
    attempt: int


class RepublishOrder(Message):
    """The web view asks for an order's latest event again: its view may have missed it.

    The orchestrator answers with the very event it published last (same ``seq``,
    same event id), so a view that has it ignores the copy.
    """

    TYPE = "RepublishOrder"
    order_id: str


class ForgetOrders(Message):
    """Orders that ended at least the retention period ago: drop what is kept about them.

    The orchestrator sends one per partition to itself and to every participant, on
    the partition those orders' keys hash to, so each group deletes keys it owns.
    """

    TYPE = "ForgetOrders"
    order_ids: tuple[str, ...] = Field(min_length=1)


# ---------------------------------------------------------- inventory.commands


class ReserveStock(Message):
    """Reserve every line of an order, all or nothing."""

    TYPE = "ReserveStock"
    order_id: str
    items: tuple[OrderLine, ...]


class ReleaseStock(Message):
    """Give back whatever the order holds (reserved or committed)."""

    TYPE = "ReleaseStock"
    order_id: str
    items: tuple[OrderLine, ...]


class CommitStock(Message):
    """Turn the order's reservations into committed (shipped) stock."""

    TYPE = "CommitStock"
    order_id: str
    items: tuple[OrderLine, ...]


# ------------------------------------------------------ inventory.sku-commands

SkuOp = Literal["reserve", "release", "commit"]


class SkuCommand(Message):
    """One SKU's share of an order-level stock command, keyed by SKU."""

    TYPE = "SkuCommand"
    op: SkuOp
    order_id: str
    sku: Sku
    quantity: int = Field(gt=0)


class RestockSku(Message):
    """Create a SKU or top it up; ``restock_id`` makes a replay harmless."""

    TYPE = "RestockSku"
    restock_id: str
    sku: Sku
    quantity: int = Field(ge=0)
    unit_price: Cents | None = None


# ------------------------------------------------------- inventory.sku-replies


class ForgetHolds(Message):
    """Drop the finished holds of forgotten orders from one SKU's record."""

    TYPE = "ForgetHolds"
    sku: Sku
    order_ids: tuple[str, ...] = Field(min_length=1)


class SkuResult(Message):
    """A SKU partition's answer to one SkuCommand, keyed by order id."""

    TYPE = "SkuResult"
    op: SkuOp
    order_id: str
    sku: Sku
    ok: bool
    unit_price: Cents = 0
    reason: str | None = None


# ----------------------------------------------------------- payments.commands


class ChargePayment(Message):
    """Charge the order's total to the customer's payment token."""

    TYPE = "ChargePayment"
    order_id: str
    customer_id: str
    payment_token: str
    amount: Cents


class RefundPayment(Message):
    """Refund whatever was charged for the order (and refuse any later charge)."""

    TYPE = "RefundPayment"
    order_id: str


# ----------------------------------------------------------- shipping.commands


class PrepareShipment(Message):
    """Book a shipment for the order."""

    TYPE = "PrepareShipment"
    order_id: str
    address: Address
    items: tuple[OrderLine, ...]


class CancelShipment(Message):
    """Cancel the order's shipment (and refuse any later booking)."""

    TYPE = "CancelShipment"
    order_id: str


# -------------------------------------------------------------- orders.replies


class StockReserved(Message):
    """Every line is reserved; prices and total come from the catalogue."""

    TYPE = "StockReserved"
    order_id: str
    lines: tuple[PricedLine, ...]
    total: Cents


class StockRejected(Message):
    """At least one SKU was short; partial reservations were released first."""

    TYPE = "StockRejected"
    order_id: str
    reason: str = "out_of_stock"
    skus: tuple[str, ...] = ()


class StockReleased(Message):
    """Everything the order held is back on the shelf."""

    TYPE = "StockReleased"
    order_id: str


class StockCommitted(Message):
    """The order's reservations are committed."""

    TYPE = "StockCommitted"
    order_id: str


class PaymentCharged(Message):
    """The gateway took the money."""

    TYPE = "PaymentCharged"
    order_id: str
    amount: Cents
    charge_id: str


class PaymentDeclined(Message):
    """The gateway refused the charge."""

    TYPE = "PaymentDeclined"
    order_id: str
    reason: str


class PaymentRefunded(Message):
    """The charge (if any) is refunded; ``amount`` may be 0 when nothing was charged."""

    TYPE = "PaymentRefunded"
    order_id: str
    amount: Cents


class ShipmentPrepared(Message):
    """The carrier booked the shipment."""

    TYPE = "ShipmentPrepared"
    order_id: str
    shipment_id: str
    carrier: str


class ShipmentRefused(Message):
    """The carrier refused the shipment."""

    TYPE = "ShipmentRefused"
    order_id: str
    reason: str


class ShipmentCancelled(Message):
    """The shipment (if any) is cancelled."""

    TYPE = "ShipmentCancelled"
    order_id: str


# --------------------------------------------------------------- orders.events


class OrderSnapshot(BaseModel):
    """What the outside world may know of an order; carried by every order event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    order_id: str
    customer_id: str
    status: str
    failure_reason: str | None = None
    failure_detail: str | None = None
    items: tuple[OrderLine, ...]
    lines: tuple[PricedLine, ...] = ()
    total: Cents | None = None
    charge_id: str | None = None
    shipment_id: str | None = None
    placed_at: datetime
    updated_at: datetime


class OrderEvent(Message):
    """One entry of an order's history; ``name`` says what happened, ``seq`` orders them."""

    TYPE = "OrderEvent"
    name: str
    seq: int
    detail: str | None = None
    order: OrderSnapshot

    def order_ref(self) -> str | None:
        """The order this event belongs to."""
        return self.order.order_id


# ------------------------------------------------------------ inventory.events


class StockChanged(Message):
    """A SKU's levels after a change; ``version`` grows with every change."""

    TYPE = "StockChanged"
    sku: Sku
    version: int
    unit_price: Cents
    put_in: int
    available: int
    reserved: int
    committed: int


# ---------------------------------------------------------------- notifications


class CustomerNotified(Message):
    """What the customer was told about the outcome of an order."""

    TYPE = "CustomerNotified"
    customer_id: str
    order_id: str
    status: str
    failure_reason: str | None
    text: str


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        PlaceOrder,
        CancelOrder,
        StepDeadlineExpired,
        RepublishOrder,
        ForgetOrders,
        ForgetHolds,
        ReserveStock,
        ReleaseStock,
        CommitStock,
        SkuCommand,
        RestockSku,
        SkuResult,
        ChargePayment,
        RefundPayment,
        PrepareShipment,
        CancelShipment,
        StockReserved,
        StockRejected,
        StockReleased,
        StockCommitted,
        PaymentCharged,
        PaymentDeclined,
        PaymentRefunded,
        ShipmentPrepared,
        ShipmentRefused,
        ShipmentCancelled,
        OrderEvent,
        StockChanged,
        CustomerNotified,
    )
}


def message_type(name: str) -> type[Message]:
    """The payload class for a ``type`` header value; KeyError when unknown."""
    return MESSAGE_TYPES[name]
