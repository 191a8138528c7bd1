"""The circuit breaker's state machine: no one caller opens it for everyone."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ordersaga.saga.breaker import MAX_RECENT_CALLS, BreakerState, CircuitBreaker


def call(b: CircuitBreaker, now: float, caller: str, ok: bool) -> CircuitBreaker:
    b, allowed = b.before_call(now, caller)
    assert allowed
    return b.after_call(ok, now, caller)


def fail(b: CircuitBreaker, now: float, caller: str = "c1") -> CircuitBreaker:
    return call(b, now, caller, False)


def breaker(**kw: float) -> CircuitBreaker:
    defaults: dict[str, float] = {"failure_threshold": 3, "cool_down_s": 10, "min_callers": 2}
    return CircuitBreaker(**{**defaults, **kw})  # type: ignore[arg-type]


def test_opens_after_the_threshold_of_failures_from_enough_callers() -> None:
    b = fail(fail(breaker(), 1, "a"), 2, "b")
    assert b.state == BreakerState.CLOSED
    b = fail(b, 3, "a")
    assert b.state == BreakerState.OPEN
    assert b.before_call(4, "z")[1] is False


def test_one_callers_failures_never_open_it_however_many() -> None:
    b = breaker()
    for i in range(500):
        b = fail(b, i * 0.01, "attacker")
    assert b.state == BreakerState.CLOSED
    # and everyone else's calls still go ahead
    assert b.before_call(6, "someone-else")[1] is True
    assert len(b.recent) <= MAX_RECENT_CALLS


def test_failures_below_the_ratio_of_calls_do_not_open_it() -> None:
    b = breaker(failure_ratio=0.5)
    for i in range(10):
        b = call(b, i, f"ok{i}", True)
    for i, caller in enumerate(("a", "b", "c")):
        b = fail(b, 10 + i, caller)
    # 3 failures of 13 calls
    assert b.state == BreakerState.CLOSED


def test_failures_older_than_the_window_are_forgotten() -> None:
    b = fail(fail(breaker(window_s=5), 0, "a"), 1, "b")
    b = fail(b, 10, "c")
    assert b.state == BreakerState.CLOSED
    assert b.failures == 1


def test_a_success_in_the_window_does_not_hide_an_outage() -> None:
    # Unlike consecutive counting, one lucky call does not reset the evidence.
    b = fail(fail(breaker(), 1, "a"), 2, "b")
    b = call(b, 2.5, "c", True)
    b = fail(b, 3, "d")
    assert b.state == BreakerState.OPEN


def opened() -> CircuitBreaker:
    b = fail(fail(fail(breaker(), 0, "a"), 0, "b"), 0, "c")
    assert b.state == BreakerState.OPEN
    return b


def test_half_open_after_cool_down_lets_one_trial_per_caller() -> None:
    b = opened()
    assert b.before_call(9.9, "x")[1] is False
    b, allowed = b.before_call(10, "x")
    assert allowed and b.state == BreakerState.HALF_OPEN
    # the same caller again while its trial is in flight is refused
    assert b.before_call(10.1, "x")[1] is False
    # another caller gets a trial of its own, up to min_callers trials
    b, allowed = b.before_call(10.1, "y")
    assert allowed
    assert b.before_call(10.2, "z")[1] is False


def test_one_callers_failed_trial_does_not_reopen_it_for_everyone() -> None:
    b, _ = opened().before_call(10, "attacker")
    b = b.after_call(False, 10.5, "attacker")
    assert b.state == BreakerState.HALF_OPEN
    # the failing caller is refused, another gets its trial and closes the circuit
    assert b.before_call(11, "attacker")[1] is False
    b, allowed = b.before_call(11, "customer")
    assert allowed
    b = b.after_call(True, 11.5, "customer")
    assert b.state == BreakerState.CLOSED
    assert b.before_call(12, "attacker")[1] is True


def test_trials_of_enough_callers_failing_reopen_it() -> None:
    b, _ = opened().before_call(10, "x")
    b = b.after_call(False, 10.5, "x")
    b, _ = b.before_call(10.6, "y")
    b = b.after_call(False, 10.7, "y")
    assert b.state == BreakerState.OPEN
    assert b.opened_at == 10.7
    assert b.before_call(15, "z")[1] is False


def test_a_trial_success_closes_it() -> None:
    b, _ = opened().before_call(10, "x")
    closed = b.after_call(True, 10.5, "x")
    assert closed.state == BreakerState.CLOSED
    assert closed.recent == ()
    assert closed.before_call(10.6, "x")[1] is True


def test_a_trial_that_never_returns_is_given_back() -> None:
    b, _ = opened().before_call(10, "x")
    b, _ = b.before_call(10, "y")
    # both trials were cancelled (the worker stopped mid-call): others may try again
    b = b.abandon("x").abandon("y")
    assert b.state == BreakerState.HALF_OPEN
    assert b.before_call(11, "z")[1] is True


def _opens_by_the_rules(b: CircuitBreaker, calls: list[tuple[float, str, bool]]) -> bool:
    """The closed breaker's rules, read straight from the docstring, on a plain list."""
    window = calls[-MAX_RECENT_CALLS:]
    now = calls[-1][0]
    window = [c for c in window if now - c[0] < b.window_s]
    failed = [c for c in window if not c[2]]
    return (
        len(failed) >= b.failure_threshold
        and len(failed) >= b.failure_ratio * len(window)
        and len({c[1] for c in failed}) >= b.min_callers
    )


@settings(max_examples=300)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=30),
            st.sampled_from(["a", "b", "c", "d"]),
            st.booleans(),
        ),
        max_size=400,
    )
)
def test_a_closed_breaker_opens_exactly_when_its_window_says_so(
    steps: list[tuple[float, str, bool]],
) -> None:
    # Calls end in time order; the kept failure count must agree with a recount.
    b = breaker(failure_threshold=4, min_callers=2, window_s=60)
    now = 0.0
    seen: list[tuple[float, str, bool]] = []
    for gap, caller, ok in steps:
        now += gap
        b, allowed = b.before_call(now, caller)
        if b.state != BreakerState.CLOSED:
            return
        assert allowed
        seen.append((now, caller, ok))
        b = b.after_call(ok, now, caller)
        assert (b.state == BreakerState.OPEN) == _opens_by_the_rules(b, seen)
        if b.state == BreakerState.OPEN:
            return
        assert b.recent_failures == sum(1 for c in b.recent if not c.ok)
        assert len(b.recent) <= MAX_RECENT_CALLS
