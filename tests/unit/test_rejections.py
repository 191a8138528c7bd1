"""A participant's deterministic rejection fails the order at once, truly, compensated.

And the payment token leaves the saga once no step needs it.
"""

from __future__ import annotations

import pytest

from ordersaga.schemas.messages import (
    ChargePayment,
    CommandRejected,
    PrepareShipment,
    RefundPayment,
    ReleaseStock,
    ReserveStock,
)
from ordersaga.schemas.status import FailureReason, SagaStatus
from tests.unit.saga_driver import ORDER_ID, Saga, _paid, _stock_reserved, placed


def rejected(command: type, reason: str = "bad payload") -> CommandRejected:
    return CommandRejected(order_id=ORDER_ID, command=command.TYPE, reason=reason)


@pytest.mark.parametrize(
    ("reach", "command", "undone"),
    [
        (placed, ReserveStock, [ReleaseStock]),
        (_stock_reserved, ChargePayment, [RefundPayment, ReleaseStock]),
    ],
)
def test_a_rejected_forward_command_fails_invalid_order_and_undoes_it_too(reach, command, undone):
    saga: Saga = reach()
    sent = len(saga.commands)

    saga.deliver(rejected(command))

    assert saga.state is not None
    assert saga.state.status == SagaStatus.COMPENSATING
    assert saga.state.failure_reason == FailureReason.INVALID_ORDER
    assert "bad payload" in (saga.state.failure_detail or "")
    assert saga.event_names[-2:] == ["CommandRejected", "CompensationStarted"]
    # The step in flight may have acted before refusing: its undo comes first.
    assert saga.commands_since(sent) == [undone[0]]
    saga.answer_compensations()
    assert saga.commands_since(sent) == undone
    assert saga.state.status == SagaStatus.FAILED
    assert saga.state.failure_reason == FailureReason.INVALID_ORDER


def test_a_rejection_of_another_command_than_the_awaited_one_changes_nothing():
    saga = _stock_reserved()
    before = saga.state

    decision = saga.deliver(rejected(PrepareShipment))

    assert not decision.changed
    assert saga.state == before


def test_a_repeated_rejection_changes_nothing_more():
    saga = placed()
    saga.deliver(rejected(ReserveStock))
    before = saga.state

    assert not saga.deliver(rejected(ReserveStock)).changed
    assert saga.state == before


def test_a_rejected_compensation_reports_stuck_once_and_keeps_being_retried():
    saga = _paid()
    saga.deliver(rejected(PrepareShipment))  # not awaited: ignored
    saga.time_out()
    saga.time_out()
    saga.time_out()  # prepare_shipment gave up: compensating, cancel_shipment first
    assert saga.state is not None and saga.state.compensating
    awaiting = saga.state.pending_compensations[0]
    command = {"cancel_shipment": "CancelShipment"}[awaiting]

    saga.deliver(CommandRejected(order_id=ORDER_ID, command=command, reason="refused"))
    assert saga.state.status == SagaStatus.COMPENSATION_STUCK
    assert saga.event_names[-1] == "CompensationStuck"
    assert not saga.deliver(
        CommandRejected(order_id=ORDER_ID, command=command, reason="refused")
    ).changed
    # Still awaited: a deadline re-sends it, and its answer moves the saga on.
    sent = len(saga.commands)
    saga.time_out()
    assert len(saga.commands) == sent + 1
    saga.answer_compensations()
    assert saga.state.status == SagaStatus.FAILED


def test_the_payment_token_is_kept_until_the_charge_is_answered():
    saga = _stock_reserved()
    assert saga.state is not None and saga.state.payment_token == "tok_ok"
    saga.reply("PaymentCharged")
    assert saga.state.payment_token is None
    assert "tok_ok" not in saga.state.model_dump_json()


def test_the_payment_token_is_dropped_when_the_saga_compensates():
    saga = placed()
    saga.reply("StockRejected")
    assert saga.state is not None and saga.state.payment_token is None
