"""The wire envelope and every command, reply and event the agent groups exchange.

Money is in integer minor units (cents) everywhere, so totals are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ordersaga.schemas.bounds import (
    MAX_LINES,
    MAX_RESTOCK_QUANTITY,
    MAX_UNIT_PRICE,
    Amount,
    City,
    Counter,
    CountryCode,
    Email,
    EventId,
    Id,
    Name,
    PaymentToken,
    PostalCode,
    Quantity,
    Reason,
    Sealed,
    Sku,
    StockLevel,
    TypeName,
    UnitPrice,
)

# The most ids one ForgetOrders or ForgetHolds carries (the orchestrator batches by it).
MAX_FORGET_BATCH = 1_000


class Message(BaseModel):
    """Base of every payload; ``TYPE`` is the name written to the ``type`` header.

    ``extra="forbid"`` holds where a message is built in code or parts of it are an
    HTTP body: an undeclared field there is a mistake. The codec reads topics with
    ``extra="ignore"`` instead, so a newer producer's added field does not make an
    older reader dead-letter the message (ARCHITECTURE.md, Message compatibility).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str] = ""
    # The payload's shape; bumped by a breaking change only (a field removed, renamed
    # or retyped, a new required field), together with an ``upgrade`` from the old one.
    VERSION: ClassVar[int] = 1
    # The field whose value is the Kafka key (a customer's commands: the customer).
    ROUTING_FIELD: ClassVar[str] = "order_id"

    def order_ref(self) -> str | None:
        """The order this message is about, if any (the envelope's ``order_id``)."""
        return getattr(self, "order_id", None)

    def routing_key(self) -> str | None:
        """The Kafka key: the value of ``ROUTING_FIELD`` (the order's id unless said otherwise)."""
        return getattr(self, self.ROUTING_FIELD, None)

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any] | None:
        """``payload`` as written at ``version`` (older than ``VERSION``) in this version's shape.

        None when that version is no longer read: the default, as no class has had a
        breaking change yet. A class bumping ``VERSION`` overrides this for every older
        version whose messages topics may still hold; what it returns is then
        validated like any payload. ``payload`` is another producer's: check, never trust.
        """
        return None


class Envelope(BaseModel):
    """What travels as a Kafka value: metadata around one typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: EventId
    type: TypeName
    version: int = Field(default=1, ge=1, le=1_000)
    order_id: Id | None = None
    correlation_id: EventId
    causation_id: EventId | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    payload: dict[str, Any]


# ---------------------------------------------------------------- shared parts


class OrderLine(BaseModel):
    """A SKU and how many of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Sku
    quantity: Quantity


class PricedLine(OrderLine):
    """An order line priced from the inventory catalogue at reservation time."""

    unit_price: UnitPrice


class Address(BaseModel):
    """A shipping address."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Name
    line1: Name
    city: City
    postal_code: PostalCode
    country: CountryCode


# ------------------------------------------------------------ orders.commands


class PlaceOrder(Message):
    """The web view asks the orchestrator to run a new saga."""

    TYPE = "PlaceOrder"
    order_id: Id
    customer_id: Id
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)
    # Sealed for payments and shipping alone when keyed (ordersaga.edge.sealing).
    payment_token: PaymentToken | Sealed
    shipping_address: Address | Sealed


class CancelOrder(Message):
    """The customer asks to cancel an order in flight."""

    TYPE = "CancelOrder"
    order_id: Id
    reason: Reason = "customer_request"


class StepDeadlineExpired(Message):
    """The orchestrator's own timer: the step awaited at ``attempt`` had no reply in time."""

    TYPE = "StepDeadlineExpired"
    order_id: Id
    awaiting: TypeName
    attempt: int = Field(ge=0, le=1_000_000)
    # The command is still waiting in the queue of a participant working through
    # its backlog (its committed offsets are older than the command): waiting is
    # not failing, so the deadline moves instead of counting an attempt.
    queued: bool = False
    # The deadline this message is about: one about a deadline since moved is stale.
    deadline: float | None = Field(default=None, ge=0, le=1e11)


class RepublishOrder(Message):
    """The web view asks for an order's latest event again: its view may have missed it.

    The orchestrator answers with the very event it published last (same ``seq``,
    same event id), so a view that has it ignores the copy.
    """

    TYPE = "RepublishOrder"
    order_id: Id


class ForgetOrders(Message):
    """Orders that ended at least the retention period ago: drop what is kept about them.

    The orchestrator sends one per partition to itself and to every participant, on
    the partition those orders' keys hash to, so each group deletes keys it owns.
    """

    TYPE = "ForgetOrders"
    order_ids: tuple[Id, ...] = Field(min_length=1, max_length=MAX_FORGET_BATCH)


# ---------------------------------------------------------- inventory.commands


class ReserveStock(Message):
    """Reserve every line of an order, all or nothing."""

    TYPE = "ReserveStock"
    order_id: Id
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)


class ReleaseStock(Message):
    """Give back whatever the order holds (reserved or committed)."""

    TYPE = "ReleaseStock"
    order_id: Id
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)


class CommitStock(Message):
    """Turn the order's reservations into committed (shipped) stock."""

    TYPE = "CommitStock"
    order_id: Id
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)
    answered: bool = True  # False: the saga does not await StockCommitted


# ------------------------------------------------------ inventory.sku-commands

SkuOp = Literal["reserve", "release", "commit"]


class SkuCommand(Message):
    """One SKU's share of an order-level stock command, keyed by SKU."""

    TYPE = "SkuCommand"
    ROUTING_FIELD = "sku"
    op: SkuOp
    order_id: Id
    sku: Sku
    quantity: Quantity
    # "orchestrator": the order has this one SKU, so the orchestrator sends this itself
    # and the SKU answers it, skipping the gather's hops; "nobody": an unanswered commit.
    reply_to: Literal["gather", "orchestrator", "nobody"] = "gather"


class RestockSku(Message):
    """Create a SKU or top it up; ``restock_id`` makes a replay harmless."""

    TYPE = "RestockSku"
    restock_id: Id
    sku: Sku
    # 0 only re-prices (HTTP restocks add at least one).
    quantity: Annotated[int, Field(ge=0, le=MAX_RESTOCK_QUANTITY)]
    unit_price: UnitPrice | None = None
    # Available stock at or below which the SKU is low (unset: keep it, or the default).
    low_stock_at: StockLevel | None = None


# ------------------------------------------------------- inventory.sku-replies


class ForgetHolds(Message):
    """Drop the finished holds of forgotten orders from one SKU's record."""

    TYPE = "ForgetHolds"
    sku: Sku
    order_ids: tuple[Id, ...] = Field(min_length=1, max_length=MAX_FORGET_BATCH)


class SkuResult(Message):
    """A SKU partition's answer to one SkuCommand, keyed by order id."""

    TYPE = "SkuResult"
    op: SkuOp
    order_id: Id
    sku: Sku
    ok: bool
    unit_price: Annotated[int, Field(ge=0, le=MAX_UNIT_PRICE)] = 0
    reason: Reason | None = None


# ---------------------------------------------------------- customers.commands


class RegisterCustomer(Message):
    """Create a customer account; a repeat for the same id changes nothing."""

    TYPE = "RegisterCustomer"
    ROUTING_FIELD = "customer_id"
    customer_id: Id
    name: Name
    email: Email


class BlockCustomer(Message):
    """Refuse the customer's orders from now on (``blocked`` false unblocks)."""

    TYPE = "BlockCustomer"
    ROUTING_FIELD = "customer_id"
    customer_id: Id
    blocked: bool = True


class ValidateCustomer(Message):
    """The saga's first step: may this customer order? Keyed by customer, not order."""

    TYPE = "ValidateCustomer"
    ROUTING_FIELD = "customer_id"
    order_id: Id
    customer_id: Id


# ----------------------------------------------------------- payments.commands


class ChargePayment(Message):
    """Charge the order's total to the customer's payment token."""

    TYPE = "ChargePayment"
    order_id: Id
    customer_id: Id
    payment_token: PaymentToken | Sealed
    amount: Amount


class RefundPayment(Message):
    """Refund whatever was charged for the order (and refuse any later charge)."""

    TYPE = "RefundPayment"
    order_id: Id


# ----------------------------------------------------------- shipping.commands


class PrepareShipment(Message):
    """Book a shipment for the order."""

    TYPE = "PrepareShipment"
    order_id: Id
    address: Address | Sealed
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)


class CancelShipment(Message):
    """Cancel the order's shipment (and refuse any later booking)."""

    TYPE = "CancelShipment"
    order_id: Id


# -------------------------------------------------------------- orders.replies


class CommandRejected(Message):
    """A participant can never apply ``command`` for this order (its content is invalid).

    Sent instead of waiting out the step's deadline: retrying would be refused the
    same way, so the saga fails at once with ``invalid_order``.
    """

    TYPE = "CommandRejected"
    order_id: Id
    command: TypeName
    reason: Reason


class CustomerValidated(Message):
    """The customer exists and is not blocked."""

    TYPE = "CustomerValidated"
    order_id: Id
    customer_id: Id


class CustomerRejected(Message):
    """The customer is unknown or blocked: the order fails, nothing to undo."""

    TYPE = "CustomerRejected"
    order_id: Id
    customer_id: Id
    reason: Literal["unknown_customer", "blocked"]


class StockReserved(Message):
    """Every line is reserved; prices and total come from the catalogue."""

    TYPE = "StockReserved"
    order_id: Id
    lines: tuple[PricedLine, ...] = Field(min_length=1, max_length=MAX_LINES)
    total: Amount


class StockRejected(Message):
    """At least one SKU was short; partial reservations were released first."""

    TYPE = "StockRejected"
    order_id: Id
    reason: Reason = "out_of_stock"
    skus: tuple[Sku, ...] = Field(default=(), max_length=MAX_LINES)


class StockReleased(Message):
    """Everything the order held is back on the shelf."""

    TYPE = "StockReleased"
    order_id: Id


class StockCommitted(Message):
    """The order's reservations are committed."""

    TYPE = "StockCommitted"
    order_id: Id


class PaymentCharged(Message):
    """The gateway took the money."""

    TYPE = "PaymentCharged"
    order_id: Id
    amount: Amount
    charge_id: Id


class PaymentDeclined(Message):
    """The gateway refused the charge."""

    TYPE = "PaymentDeclined"
    order_id: Id
    reason: Reason


class PaymentRefunded(Message):
    """The charge (if any) is refunded; ``amount`` may be 0 when nothing was charged."""

    TYPE = "PaymentRefunded"
    order_id: Id
    amount: Amount


class ShipmentPrepared(Message):
    """The carrier booked the shipment."""

    TYPE = "ShipmentPrepared"
    order_id: Id
    shipment_id: Id
    carrier: Name


class ShipmentRefused(Message):
    """The carrier refused the shipment."""

    TYPE = "ShipmentRefused"
    order_id: Id
    reason: Reason


class ShipmentCancelled(Message):
    """The shipment (if any) is cancelled."""

    TYPE = "ShipmentCancelled"
    order_id: Id


# --------------------------------------------------------------- orders.events


class OrderSnapshot(BaseModel):
    """What the outside world may know of an order; carried by every order event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    order_id: Id
    customer_id: Id
    status: TypeName
    failure_reason: Reason | None = None
    failure_detail: Reason | None = None
    items: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)
    lines: tuple[PricedLine, ...] = Field(default=(), max_length=MAX_LINES)
    total: Amount | None = None
    charge_id: Id | None = None
    shipment_id: Id | None = None
    placed_at: datetime
    updated_at: datetime


class EarlierEntry(BaseModel):
    """An entry of an order's history that the same decision made before its event's own."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: TypeName
    seq: Counter
    status: TypeName
    detail: Reason | None = None


# A decision makes at most three entries (a step's failure, the compensation's start
# and the order's end); the bound leaves room for a step table that grows.
MAX_EARLIER_ENTRIES = 8


class OrderEvent(Message):
    """One entry of an order's history; ``name`` says what happened, ``seq`` orders them.

    A decision that makes several entries (the last step's reply and the order's end)
    publishes one event: the newest entry with the others in ``earlier``, oldest
    first, so the history stays complete at a message per decision (issue 21). The
    field is left out of the JSON when empty, as it is for most events.
    """

    TYPE = "OrderEvent"
    name: TypeName
    seq: Counter
    detail: Reason | None = None
    order: OrderSnapshot
    earlier: tuple[EarlierEntry, ...] = Field(
        default=(), max_length=MAX_EARLIER_ENTRIES, exclude_if=lambda entries: not entries
    )

    def entries(self) -> tuple[EarlierEntry, ...]:
        """Every history entry this event carries, oldest first, its own last."""
        own = EarlierEntry(
            name=self.name, seq=self.seq, status=self.order.status, detail=self.detail
        )
        return (*self.earlier, own)

    def order_ref(self) -> str | None:
        """The order this event belongs to."""
        return self.order.order_id


# ------------------------------------------------------------- orders.outcomes


class OrderEnded(OrderEvent):
    """An order's last history entry, published again for readers of outcomes only.

    Notifications and the bench care only how orders end: reading this topic, they
    handle one message per order instead of its whole history (issue 21).
    """

    TYPE = "OrderEnded"

    @classmethod
    def of(cls, event: OrderEvent) -> OrderEnded:
        """``event`` as an outcome; built from a validated event, so not validated again."""
        return cls.model_construct(
            name=event.name,
            seq=event.seq,
            detail=event.detail,
            order=event.order,
            earlier=event.earlier,
        )


# ------------------------------------------------------------ inventory.events


class StockChanged(Message):
    """A SKU's levels after a change; ``version`` grows with every change."""

    TYPE = "StockChanged"
    sku: Sku
    version: Counter
    unit_price: UnitPrice
    put_in: StockLevel
    available: StockLevel
    reserved: StockLevel
    committed: StockLevel
    low_stock_at: StockLevel = 0
    low_stock: bool = False


# ------------------------------------------------------------ inventory.alerts


class LowStock(Message):
    """A SKU's available stock fell to its threshold: once per crossing, time to restock."""

    TYPE = "LowStock"
    sku: Sku
    version: Counter
    available: StockLevel
    low_stock_at: StockLevel


class OperatorNotified(Message):
    """What the shop's operators were told (on the notifications topic, keyed by SKU)."""

    TYPE = "OperatorNotified"
    sku: Sku
    version: Counter
    text: Annotated[str, Field(max_length=2_000)]


class CustomerChanged(Message):
    """A customer account after a change; ``version`` grows with every change."""

    TYPE = "CustomerChanged"
    ROUTING_FIELD = "customer_id"
    customer_id: Id
    name: Name
    email: Email
    blocked: bool
    version: Counter
    registered_at: datetime


# ---------------------------------------------------------------- notifications


class CustomerNotified(Message):
    """What the customer was told about the outcome of an order."""

    TYPE = "CustomerNotified"
    customer_id: Id
    order_id: Id
    status: TypeName
    failure_reason: Reason | None
    text: Annotated[str, Field(max_length=2_000)]
