"""Unit tests of the pure order saga: ``decide`` and ``expired``.

Every test drives the saga only through ``decide`` (and ``expired``), exactly as
the Faust shell does, and looks at what it returned: state, commands, events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordersaga.saga.orchestrator import Decision, Policy, SagaState, decide, expired
from ordersaga.schemas.messages import (
    Address,
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CommitStock,
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
    RepublishOrder,
    ReserveStock,
    ShipmentCancelled,
    ShipmentPrepared,
    ShipmentRefused,
    StepDeadlineExpired,
    StockCommitted,
    StockRejected,
    StockReleased,
    StockReserved,
)
from ordersaga.schemas.status import TERMINAL, FailureReason, SagaStatus

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

FORWARD_COMMANDS = (ReserveStock, ChargePayment, PrepareShipment, CommitStock)
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

    def deliver(self, message: Message, after: float = 1.0) -> Decision:
        self.now += after
        decision = decide(self.state, message, self.now, self.policy)
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


def placed(policy: Policy = POLICY) -> Saga:
    saga = Saga(policy=policy)
    saga.deliver(PLACE)
    return saga


def assert_seq_consecutive(events: list[OrderEvent]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def terminal_event_count(saga: Saga) -> int:
    return sum(1 for name in saga.event_names if name in TERMINAL_EVENTS)


# Named points of a saga's life, each built only through decide().
def _pending() -> Saga:
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
    saga = _paid()
    saga.reply("ShipmentPrepared")
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
    saga = _shipment_prepared()
    saga.reply("StockCommitted")
    return saga


def _failed() -> Saga:
    saga = placed()
    saga.reply("StockRejected")
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
    "STOCK_RESERVED": _stock_reserved,
    "PAID": _paid,
    "SHIPMENT_PREPARED": _shipment_prepared,
    "COMPENSATING_AFTER_FAILURE": _compensating_after_failure,
    "COMPENSATING_AFTER_CANCEL": _compensating_after_cancel,
    "COMPENSATING_AFTER_TIMEOUT": _compensating_after_timeout,
    "COMPENSATION_STUCK": _compensation_stuck,
    "COMPLETED": _completed,
    "FAILED": _failed,
    "FAILED_AFTER_COMPENSATION": _failed_after_compensation,
    "CANCELLED": _cancelled,
}
TERMINAL_POINTS = ("COMPLETED", "FAILED", "FAILED_AFTER_COMPENSATION", "CANCELLED")
LIVE_POINTS = tuple(p for p in POINTS if p not in TERMINAL_POINTS)

# The replies that a saga at each point takes into account; everything else is ignored.
ACCEPTED_REPLIES: dict[str, set[str]] = {
    "PENDING": {"StockReserved", "StockRejected"},
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
    awaiting = state.awaiting or "StockReserved"
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


# ------------------------------------------------------------------ happy path


def test_happy_path_sends_each_forward_command_once_in_order_and_completes():
    # Given a placed order
    saga = placed()
    # When every participant answers with success
    for reply in ("StockReserved", "PaymentCharged", "ShipmentPrepared", "StockCommitted"):
        saga.reply(reply)
    # Then exactly the four forward commands were sent, in order
    assert saga.commands_since(0) == [ReserveStock, ChargePayment, PrepareShipment, CommitStock]
    # And the saga is COMPLETED with everything the participants reported
    state = saga.state
    assert state is not None
    assert state.status == SagaStatus.COMPLETED
    assert state.failure_reason is None
    assert state.lines == LINES
    assert state.total == TOTAL
    assert state.charge_id == "ch_ord-1"
    assert state.shipment_id == "shp_ord-1"
    assert state.awaiting is None and state.deadline is None
    # And the events tell the story in order with seq growing by one
    assert saga.event_names == [
        "OrderPlaced",
        "StockReserved",
        "PaymentCharged",
        "ShipmentPrepared",
        "StockCommitted",
        "OrderCompleted",
    ]
    assert_seq_consecutive(saga.events)
    assert saga.events[-1].order.status == "COMPLETED"
    assert terminal_event_count(saga) == 1


def test_happy_path_commands_carry_the_order_data():
    # Given a placed order that has reserved its stock
    saga = placed()
    saga.reply("StockReserved")
    saga.reply("PaymentCharged")
    saga.reply("ShipmentPrepared")
    reserve, charge, ship, commit = saga.commands
    # Then every command is built from the order and the replies so far
    assert reserve == ReserveStock(order_id=ORDER_ID, items=ITEMS)
    assert charge == ChargePayment(
        order_id=ORDER_ID, customer_id=CUSTOMER_ID, payment_token="tok_ok", amount=TOTAL
    )
    assert ship == PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS)
    assert commit == CommitStock(order_id=ORDER_ID, items=ITEMS)


def test_place_order_starts_a_pending_saga_awaiting_the_reservation():
    # When a new order is placed
    decision = decide(None, PLACE, T0, POLICY)
    # Then the saga exists, awaits StockReserved at attempt 1 with a deadline
    state = decision.state
    assert decision.changed is True
    assert state is not None
    assert state.status == SagaStatus.PENDING
    assert state.awaiting == "StockReserved"
    assert state.attempt == 1
    assert state.deadline == T0 + POLICY.step_timeout_s
    assert state.seq == 1
    assert [e.name for e in decision.events] == ["OrderPlaced"]
    assert decision.events[0].order.status == "PENDING"
    assert decision.commands == (ReserveStock(order_id=ORDER_ID, items=ITEMS),)


def test_each_forward_event_snapshot_reflects_the_state_after_it():
    saga = placed()
    saga.reply("StockReserved")
    saga.reply("PaymentCharged")
    by_name = {e.name: e.order for e in saga.events}
    assert by_name["StockReserved"].status == "STOCK_RESERVED"
    assert by_name["StockReserved"].total == TOTAL
    assert by_name["PaymentCharged"].status == "PAID"
    assert by_name["PaymentCharged"].charge_id == "ch_ord-1"


def test_forward_reply_reports_the_step_latency():
    # Given an order placed at T0+1
    saga = placed()
    # When the reservation answers 2.5 s later
    decision = saga.reply("StockReserved", after=2.5)
    # Then the decision reports the step and its latency
    assert decision.step_latency == ("reserve_stock", 2.5)


def test_terminal_status_is_reached_exactly_once_and_then_nothing_moves():
    # Given a completed saga
    saga = _completed()
    final = saga.state
    # When every kind of message arrives afterwards
    for kind in MESSAGE_KINDS:
        assert final is not None
        decision = saga.deliver(message_of_kind(kind, final))
        # Then nothing changes
        assert decision.changed is False
        assert decision.state is final
    assert terminal_event_count(saga) == 1


# ------------------------------------------------------------------ explicit failures

FAILURES = [
    # point, failure reply, compensations expected (newest first), failure reason
    ("PENDING", "StockRejected", [], FailureReason.OUT_OF_STOCK),
    ("STOCK_RESERVED", "PaymentDeclined", [ReleaseStock], FailureReason.PAYMENT_DECLINED),
    ("PAID", "ShipmentRefused", [RefundPayment, ReleaseStock], FailureReason.SHIPPING_FAILED),
]


@pytest.mark.parametrize(("point", "failure", "compensations", "reason"), FAILURES)
def test_explicit_failure_compensates_only_the_steps_done_before_newest_first(
    point, failure, compensations, reason
):
    # Given a saga waiting on a forward step
    saga = POINTS[point]()
    sent_before = len(saga.commands)
    events_before = len(saga.events)
    # When that step answers with its explicit failure
    decision = saga.reply(failure)
    assert decision.changed is True
    # And every compensation is confirmed
    saga.answer_compensations()
    # Then exactly the undo of the steps done before it was sent, newest first
    assert saga.commands_since(sent_before) == compensations
    # And the saga FAILED for that step's reason
    state = saga.state
    assert state is not None
    assert state.status == SagaStatus.FAILED
    assert state.failure_reason == reason
    assert state.awaiting is None and state.deadline is None
    # And the events record the failure, the compensation and the end, in order
    new_events = saga.event_names[events_before:]
    assert new_events[:2] == [failure, "CompensationStarted"]
    assert new_events[-1] == "OrderFailed"
    assert saga.events[-1].order.failure_reason == reason.value
    assert_seq_consecutive(saga.events)
    assert terminal_event_count(saga) == 1


def test_stock_rejected_fails_straight_away_without_compensation():
    # Given a placed order
    saga = placed()
    # When inventory rejects it
    decision = saga.reply("StockRejected")
    # Then nothing is compensated and the order failed out of stock at once
    assert decision.commands == ()
    assert [e.name for e in decision.events] == [
        "StockRejected",
        "CompensationStarted",
        "OrderFailed",
    ]
    assert decision.events[0].detail == "out_of_stock"
    assert decision.state is not None
    assert decision.state.status == SagaStatus.FAILED
    assert decision.state.failure_reason == FailureReason.OUT_OF_STOCK


def test_shipment_refused_refunds_then_releases_then_fails_shipping():
    # Given a paid order
    saga = _paid()
    # When the carrier refuses
    first = saga.reply("ShipmentRefused")
    # Then the refund is asked first and awaited
    assert first.commands == (RefundPayment(order_id=ORDER_ID),)
    assert first.state is not None
    assert first.state.status == SagaStatus.COMPENSATING
    assert first.state.awaiting == "PaymentRefunded"
    # When the refund is confirmed
    second = saga.reply("PaymentRefunded")
    # Then the stock is released
    assert second.commands == (ReleaseStock(order_id=ORDER_ID, items=ITEMS),)
    # When the release is confirmed
    third = saga.reply("StockReleased")
    # Then the order failed for shipping
    assert third.commands == ()
    assert third.state is not None
    assert third.state.status == SagaStatus.FAILED
    assert third.state.failure_reason == FailureReason.SHIPPING_FAILED
    assert [e.name for e in third.events] == ["StockReleased", "OrderFailed"]


# ------------------------------------------------------------------ cancellation

CANCELS = [
    # point, compensations expected: steps done AND the in-flight one, newest first
    ("PENDING", [ReleaseStock]),
    ("STOCK_RESERVED", [RefundPayment, ReleaseStock]),
    ("PAID", [CancelShipment, RefundPayment, ReleaseStock]),
    ("SHIPMENT_PREPARED", [CancelShipment, RefundPayment, ReleaseStock]),
]


@pytest.mark.parametrize(("point", "compensations"), CANCELS)
def test_cancel_compensates_done_and_in_flight_steps_newest_first(point, compensations):
    # Given a saga in a forward state
    saga = POINTS[point]()
    sent_before = len(saga.commands)
    # When the customer cancels
    decision = saga.deliver(CANCEL)
    assert decision.changed is True
    assert decision.state is not None
    assert decision.state.status == SagaStatus.COMPENSATING
    assert [type(c) for c in decision.commands] == compensations[:1]
    # And every compensation is confirmed
    saga.answer_compensations()
    # Then the steps done and the one in flight were undone, newest first
    assert saga.commands_since(sent_before) == compensations
    # And the order is CANCELLED with no failure reason
    state = saga.state
    assert state is not None
    assert state.status == SagaStatus.CANCELLED
    assert state.failure_reason is None
    assert saga.event_names[-1] == "OrderCancelled"
    assert saga.events[-1].order.status == "CANCELLED"
    assert saga.events[-1].order.failure_reason is None
    assert_seq_consecutive(saga.events)
    assert terminal_event_count(saga) == 1


@pytest.mark.parametrize(
    "point",
    ["COMPENSATING_AFTER_FAILURE", "COMPENSATING_AFTER_TIMEOUT", "COMPENSATION_STUCK"],
)
def test_cancel_while_compensating_changes_nothing(point):
    # Given a saga already compensating a failure
    saga = POINTS[point]()
    before = saga.state
    # When the customer cancels
    decision = saga.deliver(CANCEL)
    # Then the failure stands and nothing is sent
    assert decision.changed is False
    assert decision.state is before
    assert decision.commands == () and decision.events == ()


def test_late_forward_success_after_cancel_is_ignored():
    # Given a saga cancelled while the charge was in flight
    saga = _stock_reserved()
    saga.deliver(CANCEL)
    before = saga.state
    # When the charge succeeds late
    decision = saga.reply("PaymentCharged")
    # Then it changes nothing; the refund is still awaited
    assert decision.changed is False
    assert decision.state is before
    assert before is not None and before.awaiting == "PaymentRefunded"


# ------------------------------------------------------------------ deadlines

TIMEOUTS = [
    # point, command of the awaited step, compensations on giving up
    ("PENDING", ReserveStock, [ReleaseStock]),
    ("STOCK_RESERVED", ChargePayment, [RefundPayment, ReleaseStock]),
    ("PAID", PrepareShipment, [CancelShipment, RefundPayment, ReleaseStock]),
    ("SHIPMENT_PREPARED", CommitStock, [CancelShipment, RefundPayment, ReleaseStock]),
]


@pytest.mark.parametrize(("point", "command", "compensations"), TIMEOUTS)
def test_forward_deadline_resends_the_same_command_until_max_attempts_then_compensates(
    point, command, compensations
):
    # Given a saga awaiting a forward step
    saga = POINTS[point]()
    original = saga.commands[-1]
    assert isinstance(original, command)
    status = saga.state.status if saga.state else None
    # When its deadline expires up to the last allowed attempt
    for attempt in range(1, POLICY.step_max_attempts):
        decision = saga.time_out()
        # Then the same command is resent with the next attempt and a longer deadline
        assert decision.commands == (original,)
        state = decision.state
        assert state is not None
        assert state.attempt == attempt + 1
        assert state.status == status
        assert state.deadline == POLICY.deadline(saga.now, attempt + 1)
        assert [e.name for e in decision.events] == ["StepRetried"]
    sent_before = len(saga.commands)
    # When the last attempt times out too
    decision = saga.time_out()
    assert decision.state is not None
    assert decision.state.status == SagaStatus.COMPENSATING
    saga.answer_compensations()
    # Then the steps done and the timed-out one are undone, newest first
    assert saga.commands_since(sent_before) == compensations
    # And the order failed with step_timeout
    assert saga.state is not None
    assert saga.state.status == SagaStatus.FAILED
    assert saga.state.failure_reason == FailureReason.STEP_TIMEOUT
    assert_seq_consecutive(saga.events)
    assert terminal_event_count(saga) == 1


def test_forward_reply_after_a_retry_still_counts():
    # Given a reservation that timed out once and was resent
    saga = placed()
    saga.time_out()
    # When the reservation finally answers
    decision = saga.reply("StockReserved")
    # Then the saga moves on and the next step starts at attempt 1
    assert decision.state is not None
    assert decision.state.status == SagaStatus.STOCK_RESERVED
    assert decision.state.attempt == 1
    assert decision.state.awaiting == "PaymentCharged"


@pytest.mark.parametrize(
    "stale",
    [
        StepDeadlineExpired(order_id=ORDER_ID, awaiting="PaymentCharged", attempt=1),
        StepDeadlineExpired(order_id=ORDER_ID, awaiting="PaymentCharged", attempt=3),
        StepDeadlineExpired(order_id=ORDER_ID, awaiting="StockReserved", attempt=2),
        StepDeadlineExpired(order_id=ORDER_ID, awaiting="ShipmentPrepared", attempt=2),
    ],
    ids=["older-attempt", "future-attempt", "previous-step", "next-step"],
)
def test_stale_deadline_changes_nothing(stale):
    # Given a saga awaiting PaymentCharged at attempt 2
    saga = _stock_reserved()
    saga.time_out()
    before = saga.state
    assert before is not None
    assert (before.awaiting, before.attempt) == ("PaymentCharged", 2)
    # When a deadline for another step or attempt arrives
    decision = saga.deliver(stale)
    # Then nothing changes
    assert decision.changed is False
    assert decision.state is before
    assert decision.commands == () and decision.events == ()


def test_policy_deadline_doubles_per_attempt_and_is_capped():
    policy = Policy(step_timeout_s=10.0, max_backoff_s=60.0)
    assert [policy.deadline(100.0, a) - 100.0 for a in range(1, 6)] == [10, 20, 40, 60, 60]


def test_compensation_deadline_retries_and_flips_to_stuck_after_the_policy_bound():
    # Given a saga compensating a refused shipment, awaiting the refund
    saga = _compensating_after_failure()
    refund = saga.commands[-1]
    assert isinstance(refund, RefundPayment)
    # When the refund times out fewer times than the stuck bound
    for attempt in range(1, POLICY.compensation_stuck_after):
        decision = saga.time_out()
        # Then it is resent and the saga is still just compensating
        assert decision.commands == (refund,)
        assert decision.state is not None
        assert decision.state.attempt == attempt + 1
        assert decision.state.status == SagaStatus.COMPENSATING
        assert decision.events == ()
    # When it times out once more
    decision = saga.time_out()
    # Then it is resent and the saga is reported stuck, once
    assert decision.commands == (refund,)
    assert decision.state is not None
    assert decision.state.status == SagaStatus.COMPENSATION_STUCK
    assert [e.name for e in decision.events] == ["CompensationStuck"]
    assert decision.events[0].order.status == "COMPENSATION_STUCK"


def test_compensation_is_retried_forever_with_capped_backoff_and_stuck_reported_once():
    # Given a saga compensating a refused shipment
    saga = _compensating_after_failure()
    # When the refund never answers, for many deadlines
    for _ in range(40):
        decision = saga.time_out()
        state = decision.state
        assert state is not None
        # Then it is always resent, never given up, backoff capped
        assert [type(c) for c in decision.commands] == [RefundPayment]
        assert not state.terminal
        assert state.deadline is not None
        assert state.deadline - saga.now <= POLICY.max_backoff_s
    assert saga.event_names.count("CompensationStuck") == 1
    assert saga.state is not None
    assert saga.state.attempt == 41
    assert saga.state.status == SagaStatus.COMPENSATION_STUCK


def test_stuck_compensation_answered_returns_to_compensating_then_ends():
    # Given a saga stuck on its refund
    saga = _compensation_stuck()
    assert saga.state is not None and saga.state.status == SagaStatus.COMPENSATION_STUCK
    # When the refund is finally confirmed
    decision = saga.reply("PaymentRefunded")
    # Then the saga is compensating again and releases the stock at attempt 1
    assert decision.state is not None
    assert decision.state.status == SagaStatus.COMPENSATING
    assert decision.state.attempt == 1
    assert decision.commands == (ReleaseStock(order_id=ORDER_ID, items=ITEMS),)
    assert decision.events[0].order.status == "COMPENSATING"
    # When the release is confirmed
    decision = saga.reply("StockReleased")
    # Then the order ends as it would have: FAILED shipping_failed
    assert decision.state is not None
    assert decision.state.status == SagaStatus.FAILED
    assert decision.state.failure_reason == FailureReason.SHIPPING_FAILED
    assert terminal_event_count(saga) == 1
    assert_seq_consecutive(saga.events)


def test_stuck_last_compensation_answered_goes_through_compensating_to_terminal():
    # Given a cancelled pending order whose only compensation (release) is stuck
    saga = placed()
    saga.deliver(CANCEL)
    for _ in range(POLICY.compensation_stuck_after):
        saga.time_out()
    assert saga.state is not None and saga.state.status == SagaStatus.COMPENSATION_STUCK
    # When the release is confirmed
    decision = saga.reply("StockReleased")
    # Then the confirmation is published while compensating, then the order is CANCELLED
    assert [(e.name, e.order.status) for e in decision.events] == [
        ("StockReleased", "COMPENSATING"),
        ("OrderCancelled", "CANCELLED"),
    ]
    assert decision.state is not None
    assert decision.state.status == SagaStatus.CANCELLED


def test_stale_compensation_deadline_changes_nothing():
    # Given a saga whose refund was resent once (attempt 2)
    saga = _compensating_after_failure()
    saga.time_out()
    before = saga.state
    # When the first attempt's timer fires late
    decision = saga.deliver(
        StepDeadlineExpired(order_id=ORDER_ID, awaiting="PaymentRefunded", attempt=1)
    )
    # Then nothing changes
    assert decision.changed is False
    assert decision.state is before


# ------------------------------------------------------------------ expired()


@pytest.mark.parametrize("point", LIVE_POINTS)
def test_expired_is_none_before_the_deadline_and_names_the_awaited_step_after(point):
    # Given a live saga awaiting something
    state = POINTS[point]().state
    assert state is not None and state.deadline is not None
    # Then before its deadline nothing expires
    assert expired(state, state.deadline - 0.001) is None
    # And at or after its deadline the timer names the awaited step and attempt
    for now in (state.deadline, state.deadline + 1000.0):
        assert expired(state, now) == StepDeadlineExpired(
            order_id=ORDER_ID, awaiting=str(state.awaiting), attempt=state.attempt
        )


@pytest.mark.parametrize("point", TERMINAL_POINTS)
def test_expired_is_none_for_terminal_sagas(point):
    state = POINTS[point]().state
    assert state is not None and state.terminal
    assert expired(state, T0 + 1e9) is None


# ------------------------------------------------------------------ duplicates, late, unknown


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
@pytest.mark.parametrize("point", list(POINTS))
def test_any_message_delivered_twice_leaves_the_state_of_one_delivery(point, kind):
    # Given a saga at some point of its life
    saga = POINTS[point]()
    assert saga.state is not None
    message = message_of_kind(kind, saga.state)
    # When a message is delivered, then delivered again
    first = saga.deliver(message)
    second = saga.deliver(message)
    # Then the second delivery changes nothing and sends nothing
    assert second.changed is False
    assert second.state is first.state
    assert second.commands == () and second.events == ()


@pytest.mark.parametrize("reply", list(REPLIES))
@pytest.mark.parametrize("point", list(POINTS))
def test_only_the_awaited_reply_counts(point, reply):
    # Given a saga at some point of its life
    saga = POINTS[point]()
    before = saga.state
    # When any reply arrives
    decision = saga.reply(reply)
    # Then it counts only if the saga waits for it (or for the step's failure)
    if reply in ACCEPTED_REPLIES[point]:
        assert decision.changed is True
        assert decision.state is not None
        assert decision.state.seq > (before.seq if before else 0)
    else:
        assert decision.changed is False
        assert decision.state is before
        assert decision.commands == () and decision.events == ()


@pytest.mark.parametrize("point", list(POINTS))
def test_place_order_for_an_existing_saga_changes_nothing(point):
    # Given an existing saga
    saga = POINTS[point]()
    before = saga.state
    # When the same order id is placed again, even with other contents
    other = PLACE.model_copy(update={"customer_id": "someone-else", "payment_token": "tok_decline"})
    for message in (PLACE, other):
        decision = saga.deliver(message)
        # Then nothing changes
        assert decision.changed is False
        assert decision.state is before
        assert decision.commands == () and decision.events == ()


@pytest.mark.parametrize("point", TERMINAL_POINTS)
@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_terminal_sagas_ignore_every_late_message(point, kind):
    # Given a saga that has ended
    saga = POINTS[point]()
    before = saga.state
    assert before is not None and before.terminal
    # When anything arrives late
    decision = saga.deliver(message_of_kind(kind, before))
    # Then it is ignored
    assert decision.changed is False
    assert decision.state is before


@pytest.mark.parametrize(
    "message",
    [*REPLIES.values(), CANCEL, StepDeadlineExpired(order_id=ORDER_ID, awaiting="X", attempt=1)],
    ids=lambda m: m.TYPE,
)
def test_messages_for_an_unknown_saga_change_nothing(message):
    decision = decide(None, message, T0, POLICY)
    assert decision == Decision(state=None)


def test_out_of_order_replies_are_ignored_and_the_right_one_still_counts():
    # Given a placed order
    saga = placed()
    before = saga.state
    # When later steps' replies arrive before the reservation's
    for early in ("PaymentCharged", "ShipmentPrepared", "StockCommitted", "PaymentDeclined"):
        assert saga.reply(early).changed is False
    assert saga.state is before
    # Then the reservation still counts when it arrives
    assert saga.reply("StockReserved").changed is True
    assert saga.state is not None and saga.state.status == SagaStatus.STOCK_RESERVED


# ------------------------------------------------------------------ property test

ACTIONS = (
    *REPLIES,
    "awaited",
    "awaited",
    "awaited",
    "cancel",
    "deadline",
    "deadline",
    "stale_deadline",
    "place",
    "repeat_last",
)
PROPERTY_POLICY = Policy(
    step_timeout_s=5.0, step_max_attempts=2, compensation_stuck_after=2, max_backoff_s=20.0
)


def _message_for_action(action: str, saga: Saga, last: Message | None) -> Message | None:
    state = saga.state
    assert state is not None
    match action:
        case "awaited":
            return REPLIES.get(str(state.awaiting), REPLIES["StockReleased"])
        case "cancel":
            return CANCEL
        case "deadline":
            if state.awaiting is None:
                return StepDeadlineExpired(order_id=ORDER_ID, awaiting="StockReserved", attempt=1)
            return StepDeadlineExpired(
                order_id=ORDER_ID, awaiting=state.awaiting, attempt=state.attempt
            )
        case "stale_deadline":
            return StepDeadlineExpired(
                order_id=ORDER_ID,
                awaiting=state.awaiting or "StockReserved",
                attempt=state.attempt + 1,
            )
        case "place":
            return PLACE
        case "repeat_last":
            return last
    return REPLIES[action]


def _check_invariants(saga: Saga) -> None:
    state = saga.state
    assert state is not None
    assert_seq_consecutive(saga.events)
    assert state.seq == len(saga.events)
    assert terminal_event_count(saga) <= 1
    if not state.terminal:
        assert terminal_event_count(saga) == 0
        return
    assert terminal_event_count(saga) == 1
    sent = [type(c) for c in saga.commands]
    # Every compensation undoes a forward step whose command was sent earlier.
    for i, command in enumerate(sent):
        if command in UNDOES:
            assert UNDOES[command] in sent[:i], f"{command.__name__} without earlier forward step"
    compensations = [c for c in sent if c in COMPENSATION_COMMANDS]
    if state.status == SagaStatus.COMPLETED:
        assert compensations == []
        assert state.failure_reason is None
        return
    # Every forward step that succeeded was undone.
    for name, undo in SUCCESS_UNDONE_BY.items():
        if name in saga.event_names:
            assert undo in compensations, f"{name} succeeded but {undo.__name__} never sent"
    if state.status == SagaStatus.CANCELLED:
        assert state.failure_reason is None
    else:
        assert state.failure_reason is not None


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(actions=st.lists(st.sampled_from(ACTIONS), max_size=40))
def test_random_message_sequences_end_at_most_once_and_only_undo_what_was_sent(actions):
    # Given a fresh saga
    saga = placed(PROPERTY_POLICY)
    last: Message | None = None
    terminal_state: SagaState | None = None
    # When any sequence of replies, duplicates, cancels and deadlines arrives
    for action in actions:
        message = _message_for_action(action, saga, last)
        if message is None:
            continue
        decision = saga.deliver(message)
        if action == "repeat_last":
            # (a redelivery never changes anything)
            assert decision.changed is False
        if terminal_state is not None:
            # (once ended, a saga never changes again)
            assert decision.state is terminal_state
        elif saga.state is not None and saga.state.terminal:
            terminal_state = saga.state
        last = message
        # Then the invariants hold at every point
        _check_invariants(saga)
    # And answering whatever it awaits always brings it to an end
    for _ in range(10):
        assert saga.state is not None
        if saga.state.terminal:
            break
        saga.reply(str(saga.state.awaiting))
        _check_invariants(saga)
    assert saga.state is not None
    assert saga.state.status in TERMINAL
    _check_invariants(saga)


# ------------------------------------------------------------------ republishing


@pytest.mark.parametrize("point", list(POINTS))
def test_republish_sends_the_latest_event_again_and_changes_nothing(point):
    # Given a saga at any point of its life, terminal or not
    saga = POINTS[point]()
    before = saga.state
    latest = saga.events[-1]
    # When the web view asks for its latest event, twice
    first = saga.deliver(RepublishOrder(order_id=ORDER_ID))
    second = saga.deliver(RepublishOrder(order_id=ORDER_ID))
    # Then the very event published last comes again each time, and nothing else moves
    assert first.events == second.events == (latest,)
    assert first.changed is second.changed is False
    assert first.state is second.state is before
    assert first.commands == second.commands == ()


def test_republish_of_an_unknown_order_sends_nothing():
    decision = decide(None, RepublishOrder(order_id=ORDER_ID), T0, POLICY)
    assert (decision.state, decision.events, decision.changed) == (None, (), False)
