"""The circuit breaker's state machine."""

from ordersaga.saga.breaker import BreakerState, CircuitBreaker


def fail(b: CircuitBreaker, now: float) -> CircuitBreaker:
    b, allowed = b.before_call(now)
    assert allowed
    return b.after_call(False, now)


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    b = CircuitBreaker(failure_threshold=3, cool_down_s=10)
    b = fail(fail(b, 1), 2)
    assert b.state == BreakerState.CLOSED
    b = fail(b, 3)
    assert b.state == BreakerState.OPEN
    assert b.before_call(4)[1] is False


def test_a_success_resets_the_count() -> None:
    b = fail(fail(CircuitBreaker(failure_threshold=3), 1), 2)
    b, _ = b.before_call(3)
    b = b.after_call(True, 3)
    b = fail(fail(b, 4), 5)
    assert b.state == BreakerState.CLOSED


def test_half_open_after_cool_down_lets_one_trial_through() -> None:
    b = fail(CircuitBreaker(failure_threshold=1, cool_down_s=10), 0)
    assert b.before_call(9.9)[1] is False
    b, allowed = b.before_call(10)
    assert allowed and b.state == BreakerState.HALF_OPEN
    # a second caller while the trial is in flight is refused
    assert b.before_call(10.1)[1] is False


def test_trial_success_closes_and_trial_failure_reopens() -> None:
    opened = fail(CircuitBreaker(failure_threshold=1, cool_down_s=10), 0)
    trial, _ = opened.before_call(10)
    assert trial.after_call(True, 10.5).state == BreakerState.CLOSED
    reopened = trial.after_call(False, 10.5)
    assert reopened.state == BreakerState.OPEN
    assert reopened.opened_at == 10.5
    assert reopened.before_call(15)[1] is False
