"""Test data and a saga driver shared by the orchestrator tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ordersaga.saga.definition import SAGA, Step
from ordersaga.saga.orchestrator import Decision, Policy, SagaState, decide, expired
from ordersaga.saga.order_stock import stock_command
from ordersaga.schemas.messages import (
    Address,
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CommitStock,
    CustomerRejected,
    CustomerValidated,
    Message,
    OrderEvent,
    OrderLine,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PlaceOrder,
    PrepareShipment,
    PricedLine,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
    StepDeadlineExpired,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
    ValidateCustomer,
)

# ------------------------------------------------------------------ test data

ORDER_ID = "ord-1"
CUSTOMER_ID = "cust-7"
ADDRESS = Address(name="Ada", line1="1 Main St", city="Paris", postal_code="75001", country="FR")
ITEMS = (OrderLine(sku="SKU-A", quantity=2), OrderLine(sku="SKU-B", quantity=1))
LINES = (
    PricedLine(sku="SKU-A", quantity=2, unit_price=500),
    PricedLine(sku="SKU-B", quantity=1, unit_price=1250),
)
TOTAL = 2250
POLICY = Policy(
    step_timeout_s=10.0, step_max_attempts=3, compensation_stuck_after=4, max_backoff_s=60.0
)
T0 = 1_700_000_000.0

PLACE = PlaceOrder(
    order_id=ORDER_ID,
    customer_id=CUSTOMER_ID,
    items=ITEMS,
    payment_token="tok_ok",
    shipping_address=ADDRESS,
)
CANCEL = CancelOrder(order_id=ORDER_ID)

REPLIES: dict[str, Message] = {
    m.TYPE: m
    for m in (
        CustomerValidated(order_id=ORDER_ID, customer_id=CUSTOMER_ID),
        CustomerRejected(order_id=ORDER_ID, customer_id=CUSTOMER_ID, reason="blocked"),
        StockReserved(order_id=ORDER_ID, lines=LINES, total=TOTAL),
        StockRejected(order_id=ORDER_ID, skus=("SKU-B",)),
        StockReleased(order_id=ORDER_ID),
        StockCommitted(order_id=ORDER_ID),
        PaymentCharged(order_id=ORDER_ID, amount=TOTAL, charge_id="ch_ord-1"),
        PaymentDeclined(order_id=ORDER_ID, reason="card_declined"),
        PaymentRefunded(order_id=ORDER_ID, amount=TOTAL),
        ShipmentPrepared(order_id=ORDER_ID, shipment_id="shp_ord-1", carrier="simulated-post"),
        ShipmentRefused(order_id=ORDER_ID, reason="carrier does not ship to XX"),
        ShipmentCancelled(order_id=ORDER_ID),
    )
}

FORWARD_COMMANDS = (ValidateCustomer, ReserveStock, ChargePayment, PrepareShipment, CommitStock)
# The saga as defined before its commit went unanswered: sagas it stored await
# StockCommitted, and the orchestrator of today finishes them.
ANSWERED_COMMIT = (
    *SAGA[:-1],
    replace(
        SAGA[-1],
        build=lambda s: stock_command("commit", s.order_id, s.items),
        success=StockCommitted,
    ),
)
# The forward command each compensation undoes.
UNDOES: dict[type[Message], type[Message]] = {
    ReleaseStock: ReserveStock,
    RefundPayment: ChargePayment,
    CancelShipment: PrepareShipment,
}
COMPENSATION_COMMANDS = tuple(UNDOES)
# The success reply event of each forward step that has an undo, and that undo.
SUCCESS_UNDONE_BY: dict[str, type[Message]] = {
    "StockReserved": ReleaseStock,
    "PaymentCharged": RefundPayment,
    "ShipmentPrepared": CancelShipment,
}
TERMINAL_EVENTS = {"OrderCompleted", "OrderFailed", "OrderCancelled"}


# ------------------------------------------------------------------ a saga driver


@dataclass
class Saga:
    """One saga driven message by message, remembering all it sent and published."""

    policy: Policy = POLICY
    state: SagaState | None = None
    now: float = T0
    commands: list[Message] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    # The step table walked: the real one unless a test adds a step of its own.
    steps: tuple[Step, ...] = SAGA

    def deliver(self, message: Message, after: float = 1.0) -> Decision:
        self.now += after
        decision = decide(self.state, message, self.now, self.policy, self.steps)
        self.state = decision.state
        self.commands.extend(decision.commands)
        self.events.extend(decision.events)
        return decision

    def reply(self, type_name: str, after: float = 1.0) -> Decision:
        return self.deliver(REPLIES[type_name], after)

    def time_out(self) -> Decision:
        """Let the awaited step's deadline pass and deliver the timer message."""
        assert self.state is not None and self.state.deadline is not None
        self.now = max(self.now, self.state.deadline)
        message = expired(self.state, self.now)
        assert message is not None
        return self.deliver(message, after=0.0)

    def answer_compensations(self) -> None:
        """Confirm each compensation the saga awaits, in turn, until it ends."""
        for _ in range(10):
            assert self.state is not None
            if self.state.terminal:
                return
            assert self.state.compensating
            self.reply(str(self.state.awaiting))
        raise AssertionError("the saga did not end")

    @property
    def event_names(self) -> list[str]:
        return [e.name for e in self.events]

    def commands_since(self, index: int) -> list[type[Message]]:
        return [type(c) for c in self.commands[index:]]


def just_placed(policy: Policy = POLICY) -> Saga:
    """A saga that has asked whether its customer may order."""
    saga = Saga(policy=policy)
    saga.deliver(PLACE)
    return saga


def placed(policy: Policy = POLICY) -> Saga:
    """A saga whose customer was validated: it awaits its stock."""
    saga = just_placed(policy)
    saga.reply("CustomerValidated")
    return saga


def assert_seq_consecutive(events: list[OrderEvent]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def terminal_event_count(saga: Saga) -> int:
    return sum(1 for name in saga.event_names if name in TERMINAL_EVENTS)


# Named points of a saga's life, each built only through decide().
def _pending() -> Saga:
    return just_placed()


def _customer_validated() -> Saga:
    return placed()


def _stock_reserved() -> Saga:
    saga = placed()
    saga.reply("StockReserved")
    return saga


def _paid() -> Saga:
    saga = _stock_reserved()
    saga.reply("PaymentCharged")
    return saga


def _shipment_prepared() -> Saga:
    """A saga stored by the earlier definition (``ANSWERED_COMMIT``): it awaits StockCommitted."""
    saga = _paid()
    saga.steps = ANSWERED_COMMIT
    saga.reply("ShipmentPrepared")
    saga.steps = SAGA
    return saga


def _compensating_after_failure() -> Saga:
    saga = _paid()
    saga.reply("ShipmentRefused")
    return saga


def _compensating_after_cancel() -> Saga:
    saga = _paid()
    saga.deliver(CANCEL)
    return saga


def _compensating_after_timeout() -> Saga:
    saga = placed()
    for _ in range(POLICY.step_max_attempts):
        saga.time_out()
    return saga


def _compensation_stuck() -> Saga:
    saga = _compensating_after_failure()
    for _ in range(POLICY.compensation_stuck_after):
        saga.time_out()
    return saga


def _completed() -> Saga:
    saga = _paid()
    saga.reply("ShipmentPrepared")
    return saga


def _failed() -> Saga:
    saga = placed()
    saga.reply("StockRejected")
    return saga


def _customer_rejected() -> Saga:
    saga = just_placed()
    saga.reply("CustomerRejected")
    return saga


def _failed_after_compensation() -> Saga:
    saga = _compensating_after_failure()
    saga.answer_compensations()
    return saga


def _cancelled() -> Saga:
    saga = _compensating_after_cancel()
    saga.answer_compensations()
    return saga


POINTS: dict[str, Callable[[], Saga]] = {
    "PENDING": _pending,
    "CUSTOMER_VALIDATED": _customer_validated,
    "STOCK_RESERVED": _stock_reserved,
    "PAID": _paid,
    # Only a saga stored by the earlier definition rests here now.
    "SHIPMENT_PREPARED": _shipment_prepared,
    "COMPENSATING_AFTER_FAILURE": _compensating_after_failure,
    "COMPENSATING_AFTER_CANCEL": _compensating_after_cancel,
    "COMPENSATING_AFTER_TIMEOUT": _compensating_after_timeout,
    "COMPENSATION_STUCK": _compensation_stuck,
    "COMPLETED": _completed,
    "FAILED": _failed,
    "CUSTOMER_REJECTED": _customer_rejected,
    "FAILED_AFTER_COMPENSATION": _failed_after_compensation,
    "CANCELLED": _cancelled,
}
TERMINAL_POINTS = (
    "COMPLETED",
    "FAILED",
    "CUSTOMER_REJECTED",
    "FAILED_AFTER_COMPENSATION",
    "CANCELLED",
)
LIVE_POINTS = tuple(p for p in POINTS if p not in TERMINAL_POINTS)

# The replies that a saga at each point takes into account; everything else is ignored.
ACCEPTED_REPLIES: dict[str, set[str]] = {
    "PENDING": {"CustomerValidated", "CustomerRejected"},
    "CUSTOMER_VALIDATED": {"StockReserved", "StockRejected"},
    "STOCK_RESERVED": {"PaymentCharged", "PaymentDeclined"},
    "PAID": {"ShipmentPrepared", "ShipmentRefused"},
    "SHIPMENT_PREPARED": {"StockCommitted"},
    "COMPENSATING_AFTER_FAILURE": {"PaymentRefunded"},
    "COMPENSATING_AFTER_CANCEL": {"ShipmentCancelled"},
    "COMPENSATING_AFTER_TIMEOUT": {"StockReleased"},
    "COMPENSATION_STUCK": {"PaymentRefunded"},
    **{p: set() for p in TERMINAL_POINTS},
}


def message_of_kind(kind: str, state: SagaState) -> Message:
    """Every kind of message the orchestrator can receive, built for ``state``."""
    if kind in REPLIES:
        return REPLIES[kind]
    awaiting = state.awaiting or "CustomerValidated"
    match kind:
        case "PlaceOrder":
            return PLACE
        case "CancelOrder":
            return CANCEL
        case "deadline_current":
            return StepDeadlineExpired(order_id=ORDER_ID, awaiting=awaiting, attempt=state.attempt)
        case "deadline_old_attempt":
            return StepDeadlineExpired(
                order_id=ORDER_ID, awaiting=awaiting, attempt=state.attempt - 1
            )
        case "deadline_other_step":
            return StepDeadlineExpired(order_id=ORDER_ID, awaiting="Nope", attempt=state.attempt)
    raise ValueError(kind)


MESSAGE_KINDS = (
    *REPLIES,
    "PlaceOrder",
    "CancelOrder",
    "deadline_current",
    "deadline_old_attempt",
    "deadline_other_step",
)
