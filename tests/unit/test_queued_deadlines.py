"""A late step whose command still waits in its participant's queue is not failed for it.

Waiting is not working (Temporal's schedule-to-start against start-to-close): a
deadline that finds the command still queued moves, without a re-send and
without counting an attempt, until ``Policy.queue_timeout_s``; after that, or
when the participant has read past it, the deadline counts as before.
"""

from __future__ import annotations

from ordersaga.saga.orchestrator import awaited_command, expired
from ordersaga.schemas.messages import ChargePayment, RefundPayment, ReserveStock
from ordersaga.schemas.status import SagaStatus
from tests.unit.saga_driver import POLICY, _compensating_after_failure, _stock_reserved, placed


def test_a_queued_step_moves_its_deadline_without_a_resend_or_an_attempt() -> None:
    saga = placed()
    assert saga.state is not None and saga.state.deadline is not None
    first_deadline, sent = saga.state.deadline, len(saga.commands)
    saga.now = first_deadline
    message = expired(saga.state, saga.now, queued=True)
    assert message is not None and message.queued
    decision = saga.deliver(message, after=0.0)
    assert decision.changed and decision.commands == () and decision.events == ()
    assert saga.state.attempt == 1 and saga.state.awaiting == "StockReserved"
    assert saga.state.deadline == saga.now + POLICY.step_timeout_s
    assert len(saga.commands) == sent
    # The reply that comes after the wait still counts.
    saga.reply("StockReserved")
    assert saga.state.status == SagaStatus.STOCK_RESERVED


def test_a_step_queued_past_the_queue_timeout_times_out_as_before() -> None:
    saga = placed()
    assert saga.state is not None and saga.state.sent_at is not None
    saga.now = saga.state.sent_at + POLICY.queue_timeout_s
    queued = expired(saga.state, saga.now, queued=True)
    assert queued is not None
    saga.deliver(queued, after=0.0)
    assert saga.state.attempt == 2  # re-sent: the wait counted
    assert type(saga.commands[-1]) is ReserveStock


def test_a_deadline_message_about_a_deadline_since_moved_changes_nothing() -> None:
    saga = placed()
    assert saga.state is not None
    saga.now = saga.state.deadline or 0.0
    stale = expired(saga.state, saga.now)  # not queued: would count an attempt
    moved = expired(saga.state, saga.now, queued=True)
    assert stale is not None and moved is not None
    saga.deliver(moved, after=0.0)
    before = saga.state
    assert saga.deliver(stale, after=0.0).changed is False
    assert saga.state == before


def test_an_undo_waiting_in_a_queue_moves_its_deadline_too() -> None:
    saga = _compensating_after_failure()
    assert saga.state is not None and saga.state.compensating
    attempt = saga.state.attempt
    saga.now = saga.state.deadline or 0.0
    message = expired(saga.state, saga.now, queued=True)
    assert message is not None
    saga.deliver(message, after=0.0)
    assert saga.state.attempt == attempt and saga.state.status == SagaStatus.COMPENSATING


def test_the_awaited_command_is_the_step_in_flight_or_the_undo_in_flight() -> None:
    assert awaited_command(placed().state) is ReserveStock  # type: ignore[arg-type]
    assert awaited_command(_stock_reserved().state) is ChargePayment  # type: ignore[arg-type]
    undoing = _compensating_after_failure().state
    assert undoing is not None
    assert awaited_command(undoing) is RefundPayment  # refund first, newest first
