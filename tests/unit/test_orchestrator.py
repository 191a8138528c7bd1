"""Unit tests of the pure order saga: ``decide`` and ``expired``.

Every test drives the saga only through ``decide`` (and ``expired``), exactly as
the Faust shell does, and looks at what it returned: state, commands, events.
"""

from __future__ import annotations

import pytest

from ordersaga.saga.orchestrator import Policy, decide
from ordersaga.schemas.messages import (
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CommitStock,
    PrepareShipment,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
    StepDeadlineExpired,
    StockRejected,
    ValidateCustomer,
)
from ordersaga.schemas.status import FailureReason, SagaStatus
from tests.unit.saga_driver import (
    ADDRESS,
    CANCEL,
    CUSTOMER_ID,
    ITEMS,
    LINES,
    MESSAGE_KINDS,
    ORDER_ID,
    PLACE,
    POINTS,
    POLICY,
    T0,
    TOTAL,
    _compensating_after_failure,
    _compensation_stuck,
    _completed,
    _paid,
    _stock_reserved,
    assert_seq_consecutive,
    message_of_kind,
    placed,
    terminal_event_count,
)

# ------------------------------------------------------------------ happy path


def test_happy_path_sends_each_forward_command_once_in_order_and_completes():
    # Given a placed order
    saga = placed()
    # When every participant that is asked for an answer answers with success
    for reply in ("StockReserved", "PaymentCharged", "ShipmentPrepared"):
        saga.reply(reply)
    # Then exactly the five forward commands were sent, in order, the last unanswered
    assert saga.commands_since(0) == [
        ValidateCustomer,
        ReserveStock,
        ChargePayment,
        PrepareShipment,
        CommitStock,
    ]
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
        "CustomerValidated",
        "StockReserved",
        "PaymentCharged",
        "ShipmentPrepared",
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
    validate, reserve, charge, ship, commit = saga.commands
    # Then every command is built from the order and the replies so far
    assert validate == ValidateCustomer(order_id=ORDER_ID, customer_id=CUSTOMER_ID)
    assert reserve == ReserveStock(order_id=ORDER_ID, items=ITEMS)
    assert charge == ChargePayment(
        order_id=ORDER_ID, customer_id=CUSTOMER_ID, payment_token="tok_ok", amount=TOTAL
    )
    assert ship == PrepareShipment(order_id=ORDER_ID, address=ADDRESS, items=ITEMS)
    # The commit is sent with the shipment's answer, and no one is to answer it
    assert commit == CommitStock(order_id=ORDER_ID, items=ITEMS, answered=False)


def test_place_order_starts_a_pending_saga_awaiting_the_customer_check():
    # When a new order is placed
    decision = decide(None, PLACE, T0, POLICY)
    # Then the saga exists, awaits CustomerValidated at attempt 1 with a deadline
    state = decision.state
    assert decision.changed is True
    assert state is not None
    assert state.status == SagaStatus.PENDING
    assert state.awaiting == "CustomerValidated"
    assert state.attempt == 1
    assert state.deadline == T0 + POLICY.step_timeout_s
    assert state.seq == 1
    assert [e.name for e in decision.events] == ["OrderPlaced"]
    assert decision.events[0].order.status == "PENDING"
    assert decision.commands == (ValidateCustomer(order_id=ORDER_ID, customer_id=CUSTOMER_ID),)


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
    ("PENDING", "CustomerRejected", [], FailureReason.CUSTOMER_INVALID),
    ("CUSTOMER_VALIDATED", "StockRejected", [], FailureReason.OUT_OF_STOCK),
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


def test_a_busy_sku_fails_the_order_sku_busy_not_out_of_stock():
    # Given a placed order
    saga = placed()
    # When inventory refuses it because the SKU holds too many orders at once
    decision = saga.deliver(StockRejected(order_id=ORDER_ID, reason="sku_busy", skus=("A",)))
    # Then the order fails for that reason, which the customer can act on (retry)
    assert decision.state is not None
    assert decision.state.status == SagaStatus.FAILED
    assert decision.state.failure_reason == FailureReason.SKU_BUSY
    assert decision.events[0].detail == "sku_busy"


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
    ("CUSTOMER_VALIDATED", [ReleaseStock]),
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
    ("CUSTOMER_VALIDATED", ReserveStock, [ReleaseStock]),
    ("STOCK_RESERVED", ChargePayment, [RefundPayment, ReleaseStock]),
    ("PAID", PrepareShipment, [CancelShipment, RefundPayment, ReleaseStock]),
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


def test_cancel_while_the_customer_is_checked_ends_cancelled_with_nothing_to_undo():
    saga = POINTS["PENDING"]()
    sent_before = len(saga.commands)
    decision = saga.deliver(CANCEL)
    assert decision.state is not None and decision.state.status == SagaStatus.CANCELLED
    assert saga.commands_since(sent_before) == []
    assert saga.event_names[-1] == "OrderCancelled"
    assert terminal_event_count(saga) == 1


def test_a_customer_check_that_never_answers_fails_step_timeout_with_nothing_to_undo():
    saga = POINTS["PENDING"]()
    for attempt in range(1, POLICY.step_max_attempts):
        decision = saga.time_out()
        assert [type(c) for c in decision.commands] == [ValidateCustomer]
        assert decision.state is not None and decision.state.attempt == attempt + 1
    sent_before = len(saga.commands)
    decision = saga.time_out()
    assert decision.state is not None and decision.state.status == SagaStatus.FAILED
    assert decision.state.failure_reason == FailureReason.STEP_TIMEOUT
    assert saga.commands_since(sent_before) == []
    assert terminal_event_count(saga) == 1


@pytest.mark.parametrize("point", sorted(POINTS))
def test_one_event_per_decision_keeps_every_entry_in_order(point, monkeypatch):
    # Every decision on the way to each point, then a cancel and the compensations it
    # starts: folded into the one event published, each decision's history entries
    # read exactly as its events do.
    from ordersaga.saga.orchestrator import one_event
    from tests.unit import saga_driver

    decisions = []

    def recorded(*args, **kwargs):
        decisions.append(decide(*args, **kwargs))
        return decisions[-1]

    monkeypatch.setattr(saga_driver, "decide", recorded)
    saga = POINTS[point]()
    assert saga.state is not None
    saga.deliver(CancelOrder(order_id=saga.state.order_id))
    if not saga.state.terminal:
        saga.answer_compensations()
    assert any(len(d.events) > 1 for d in decisions)
    for decision in decisions:
        event = one_event(decision.events)
        if not decision.events:
            assert event is None
            continue
        assert event is not None and event.order == decision.events[-1].order
        assert [(e.name, e.seq, e.status, e.detail) for e in event.entries()] == [
            (e.name, e.seq, e.order.status, e.detail) for e in decision.events
        ]
        if len(decision.events) == 1:
            assert event is decision.events[0]


def test_the_last_reply_publishes_one_event_with_both_entries():
    from ordersaga.saga.orchestrator import one_event

    saga = POINTS["PAID"]()
    event = one_event(saga.reply("ShipmentPrepared").events)
    assert event is not None
    assert [(e.name, e.status) for e in event.entries()] == [
        ("ShipmentPrepared", "PAID"),
        ("OrderCompleted", "COMPLETED"),
    ]


# ---------------------------------------------- sagas of the earlier definition


def test_a_saga_stored_awaiting_the_commit_completes_on_its_answer():
    # Given a saga stored when the commit was still answered (it awaits StockCommitted)
    saga = POINTS["SHIPMENT_PREPARED"]()
    assert saga.state is not None and saga.state.awaiting == "StockCommitted"
    # When the answer comes
    decision = saga.reply("StockCommitted")
    # Then it completes and sends nothing more
    assert decision.state is not None and decision.state.status == SagaStatus.COMPLETED
    assert decision.commands == ()
    assert [e.name for e in decision.events] == ["StockCommitted", "OrderCompleted"]


def test_a_saga_stored_awaiting_the_commit_passes_it_when_its_deadline_expires():
    # Given a saga stored when the commit was still answered, and nobody answers now
    saga = POINTS["SHIPMENT_PREPARED"]()
    # When its deadline expires
    decision = saga.time_out()
    # Then the commit is sent once more, unanswered, and the order completes: no undo
    assert decision.commands == (CommitStock(order_id=ORDER_ID, items=ITEMS, answered=False),)
    assert decision.state is not None and decision.state.status == SagaStatus.COMPLETED
    assert decision.state.awaiting is None and decision.state.deadline is None
    assert [e.name for e in decision.events] == ["StepPassed", "OrderCompleted"]
    assert_seq_consecutive(saga.events)
    # And a late answer to the first commit changes nothing
    assert saga.reply("StockCommitted").changed is False
