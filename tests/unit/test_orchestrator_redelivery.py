"""The orchestrator under redelivery: deadlines found, duplicates, late and unknown
messages, and a property test over random message sequences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordersaga.saga.orchestrator import Decision, Policy, SagaState, decide, expired
from ordersaga.schemas.messages import (
    Message,
    RepublishOrder,
    StepDeadlineExpired,
)
from ordersaga.schemas.status import TERMINAL, SagaStatus
from tests.unit.saga_driver import (
    ACCEPTED_REPLIES,
    CANCEL,
    COMPENSATION_COMMANDS,
    LIVE_POINTS,
    MESSAGE_KINDS,
    ORDER_ID,
    PLACE,
    POINTS,
    POLICY,
    REPLIES,
    SUCCESS_UNDONE_BY,
    T0,
    TERMINAL_POINTS,
    UNDOES,
    Saga,
    assert_seq_consecutive,
    message_of_kind,
    placed,
    terminal_event_count,
)

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
            order_id=ORDER_ID,
            awaiting=str(state.awaiting),
            attempt=state.attempt,
            deadline=state.deadline,
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
