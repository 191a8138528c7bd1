"""The order saga, declared once: its steps in order, each with its undo.

``ordersaga.saga.orchestrator.decide`` walks this table and nothing else knows
the steps. A step is sent when the one before it succeeded; its success reply
writes ``record(reply)`` into the saga and moves it to ``status_after``; its
failure reply fails the order with ``failure_reason`` and runs the undos of the
steps already done, newest first. A step that timed out, or was in flight when
the customer cancelled, may have happened, so its own undo runs too. Each step
and undo names its participant, the agent group that takes its command; the
routing is derived from the participants' declarations (``ordersaga.topology``),
so adding a step is one entry here plus the participant module that answers it.

A step with no ``success`` reply is not answered: one that cannot fail once the
steps before it succeeded (after the saga's pivot, as committing reserved stock
once the shipment is prepared). Its command goes out with the decision that
reaches it and the saga moves past it at once. Delivery stays at-least-once (the
command is sent before the saga is written) and the participant applies it
idempotently; awaiting its reply cost a handled message, a decision, a table
write and an order event per saga, and told the saga nothing (issue 21).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ordersaga.saga.order_stock import stock_command
from ordersaga.saga.state import SagaState
from ordersaga.schemas.messages import (
    CancelShipment,
    ChargePayment,
    CommitStock,
    CustomerRejected,
    CustomerValidated,
    Message,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PrepareShipment,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
    SkuCommand,
    StockRejected,
    StockReleased,
    StockReserved,
    ValidateCustomer,
)
from ordersaga.schemas.status import FailureReason, SagaStatus


def _command_for(
    command: type[Message],
    direct: type[Message] | None,
    build: Callable[[SagaState], Message],
    state: SagaState,
) -> type[Message]:
    # Built to be sure: a command's type follows from the saga, as its content does.
    return command if direct is None else type(build(state))


@dataclass(frozen=True)
class Undo:
    """A compensation: the command that undoes a step and the reply that confirms it."""

    name: str
    # The agent group that takes the command (a name in ordersaga.topology).
    participant: str
    command: type[Message]
    build: Callable[[SagaState], Message]
    done: type[Message]
    # What ``build`` sends instead of ``command`` when it takes a shortcut (a
    # one-SKU order's stock goes to its SKU's partition: ``stock_command``).
    direct: type[Message] | None = None

    def command_for(self, state: SagaState) -> type[Message]:
        """The type of the command this undo sends for ``state``."""
        return _command_for(self.command, self.direct, self.build, state)


@dataclass(frozen=True)
class Step:
    """One forward step: its command, the replies it waits for, and its undo."""

    name: str
    # The agent group that takes the command (a name in ordersaga.topology).
    participant: str
    command: type[Message]
    build: Callable[[SagaState], Message]
    # None: the step is not answered (see the module's docstring). Such a step comes
    # after every step that can fail, with no failure reply and no undo of its own.
    success: type[Message] | None
    status_after: SagaStatus
    record: Callable[[Any], Mapping[str, object]] = lambda reply: {}
    failure: type[Message] | None = None
    failure_reason: FailureReason | None = None
    # A failure reply's own reason that names a more precise FailureReason.
    failure_reasons: Mapping[str, FailureReason] = field(default_factory=dict)
    undo: Undo | None = None
    # What ``build`` sends instead of ``command`` when it takes a shortcut.
    direct: type[Message] | None = None

    def command_for(self, state: SagaState) -> type[Message]:
        """The type of the command this step sends for ``state``."""
        return _command_for(self.command, self.direct, self.build, state)

    def reason_of(self, failure: Message) -> FailureReason | None:
        """Why the order fails on this step's ``failure`` reply."""
        return self.failure_reasons.get(str(getattr(failure, "reason", "")), self.failure_reason)


def _charge(s: SagaState) -> ChargePayment:
    if s.payment_token is None:
        raise ValueError(f"order {s.order_id} has no payment token left to charge")
    return ChargePayment(
        order_id=s.order_id,
        customer_id=s.customer_id,
        payment_token=s.payment_token,
        amount=s.total or 0,
    )


# ReleaseStock gives back committed stock as well as reserved stock, so
# commit_stock needs no undo of its own.
RELEASE_STOCK = Undo(
    "release_stock",
    "inventory",
    ReleaseStock,
    lambda s: stock_command("release", s.order_id, s.items),
    done=StockReleased,
    direct=SkuCommand,
)
REFUND_PAYMENT = Undo(
    "refund_payment",
    "payments",
    RefundPayment,
    lambda s: RefundPayment(order_id=s.order_id),
    PaymentRefunded,
)
CANCEL_SHIPMENT = Undo(
    "cancel_shipment",
    "shipping",
    CancelShipment,
    lambda s: CancelShipment(order_id=s.order_id),
    done=ShipmentCancelled,
)

SAGA: tuple[Step, ...] = (
    # Nothing is done for an unknown or blocked customer, so nothing needs undoing.
    Step(
        "validate_customer",
        "customers",
        ValidateCustomer,
        lambda s: ValidateCustomer(order_id=s.order_id, customer_id=s.customer_id),
        success=CustomerValidated,
        status_after=SagaStatus.CUSTOMER_VALIDATED,
        failure=CustomerRejected,
        failure_reason=FailureReason.CUSTOMER_INVALID,
    ),
    Step(
        "reserve_stock",
        "inventory",
        ReserveStock,
        lambda s: stock_command("reserve", s.order_id, s.items),
        success=StockReserved,
        status_after=SagaStatus.STOCK_RESERVED,
        record=lambda r: {"lines": r.lines, "total": r.total},
        failure=StockRejected,
        failure_reason=FailureReason.OUT_OF_STOCK,
        # Too many orders hold the SKU at once: not the shelf, the bound on its memory.
        failure_reasons={"sku_busy": FailureReason.SKU_BUSY},
        undo=RELEASE_STOCK,
        direct=SkuCommand,
    ),
    Step(
        "charge_payment",
        "payments",
        ChargePayment,
        _charge,
        success=PaymentCharged,
        status_after=SagaStatus.PAID,
        # The token has served its one purpose.
        record=lambda r: {"charge_id": r.charge_id, "payment_token": None},
        failure=PaymentDeclined,
        failure_reason=FailureReason.PAYMENT_DECLINED,
        undo=REFUND_PAYMENT,
    ),
    Step(
        "prepare_shipment",
        "shipping",
        PrepareShipment,
        lambda s: PrepareShipment(order_id=s.order_id, address=s.shipping_address, items=s.items),
        success=ShipmentPrepared,
        status_after=SagaStatus.SHIPMENT_PREPARED,
        record=lambda r: {"shipment_id": r.shipment_id},
        failure=ShipmentRefused,
        failure_reason=FailureReason.SHIPPING_FAILED,
        undo=CANCEL_SHIPMENT,
    ),
    Step(
        "commit_stock",
        "inventory",
        CommitStock,
        # Reserved stock commits whatever happens: the order completes as it is sent.
        lambda s: stock_command("commit", s.order_id, s.items, answered=False),
        success=None,
        status_after=SagaStatus.COMPLETED,
        direct=SkuCommand,
    ),
)

UNDOS: dict[str, Undo] = {step.undo.name: step.undo for step in SAGA if step.undo is not None}
