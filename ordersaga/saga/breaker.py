"""A circuit breaker as a pure value, that no one caller can open for everyone.

closed -> open when, within the last ``window_s``, at least ``failure_threshold``
calls failed, they were at least ``failure_ratio`` of the calls, and they came
from at least ``min_callers`` different callers -> half-open after a cool-down ->
closed on the first success, open again once trials of ``min_callers`` different
callers failed.

Why callers: a payment provider that is down fails everyone's charges, while
failures that follow one customer's orders say something about that customer's
input, not about the provider. Counting distinct callers keeps one customer (a
bad card, a fuzzer, an attacker) from failing fast every other customer's
orders; in half-open, one caller's failed trial refuses only that caller again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

# The newest calls remembered in the window, whatever the traffic.
MAX_RECENT_CALLS = 256


class BreakerState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Call:
    """One call's outcome: when, for whom, and whether the dependency answered."""

    at: float
    caller: str
    ok: bool


@dataclass(frozen=True)
class CircuitBreaker:
    """Watches a dependency's failures and stops calling it while it is down."""

    failure_threshold: int = 5
    cool_down_s: float = 30.0
    min_callers: int = 3
    failure_ratio: float = 0.5
    window_s: float = 60.0
    state: BreakerState = BreakerState.CLOSED
    recent: tuple[Call, ...] = ()
    # How many of ``recent`` failed: kept with it, so a call that leaves no failure
    # in the window costs no scan of the window (payments make one per charge).
    recent_failures: int = 0
    opened_at: float = 0.0
    # Half-open: callers whose trial is under way, and callers whose trial failed.
    trials: frozenset[str] = frozenset()
    failed_trials: frozenset[str] = frozenset()

    @property
    def failures(self) -> int:
        """Failed calls in the window (as last pruned)."""
        return self.recent_failures

    def before_call(self, now: float, caller: str = "") -> tuple[CircuitBreaker, bool]:
        """Whether ``caller``'s call may go ahead now, and the breaker after asking."""
        if self.state == BreakerState.CLOSED:
            return self, True
        if self.state == BreakerState.OPEN:
            if now - self.opened_at < self.cool_down_s:
                return self, False
            half_open = replace(
                self,
                state=BreakerState.HALF_OPEN,
                trials=frozenset({caller}),
                failed_trials=frozenset(),
            )
            return half_open, True
        # Half-open: one trial per caller, as many callers as it takes to re-open.
        if caller in self.trials or caller in self.failed_trials:
            return self, False
        if len(self.trials) + len(self.failed_trials) >= self.min_callers:
            return self, False
        return replace(self, trials=self.trials | {caller}), True

    def after_call(self, ok: bool, now: float, caller: str = "") -> CircuitBreaker:
        """The breaker after ``caller``'s call that went ahead succeeded or failed.

        ``ok`` is False only for a failure of the dependency itself (it errored or
        did not answer); an answer about the caller's input, a decline, is ok.
        """
        if self.state == BreakerState.HALF_OPEN:
            if ok:
                return self._closed()
            failed = self.failed_trials | {caller}
            if len(failed) >= self.min_callers:
                return replace(self._closed(), state=BreakerState.OPEN, opened_at=now)
            return replace(self, trials=self.trials - {caller}, failed_trials=failed)
        if self.state == BreakerState.OPEN:
            # A call that went ahead before the circuit opened: already counted in.
            return self
        recent, failures = self._window(now)
        recent = (*recent, Call(now, caller, ok))
        failures += not ok
        if len(recent) > MAX_RECENT_CALLS:
            failures -= not recent[0].ok
            recent = recent[1:]
        after = replace(self, recent=recent, recent_failures=failures)
        return after._opened(now) if after._should_open() else after

    def _window(self, now: float) -> tuple[tuple[Call, ...], int]:
        """``recent`` without the calls older than the window, and its failures.

        Calls are appended as they end, so the window's expired calls are its
        oldest: the scan stops at the first call still inside it.
        """
        recent, failures = self.recent, self.recent_failures
        expired = 0
        for call in recent:
            if now - call.at < self.window_s:
                break
            expired += 1
            failures -= not call.ok
        return recent[expired:], failures

    def abandon(self, caller: str = "") -> CircuitBreaker:
        """The breaker after ``caller``'s call ended with no outcome (it was cancelled).

        Its half-open trial is given back, so a trial that never returns cannot
        hold the circuit half-open, refusing everyone, for ever.
        """
        return replace(self, trials=self.trials - {caller})

    def _should_open(self) -> bool:
        if self.recent_failures < self.failure_threshold or self.recent_failures < (
            self.failure_ratio * len(self.recent)
        ):
            return False
        return len({call.caller for call in self.recent if not call.ok}) >= self.min_callers

    def _opened(self, now: float) -> CircuitBreaker:
        return replace(self, state=BreakerState.OPEN, opened_at=now, recent=(), recent_failures=0)

    def _closed(self) -> CircuitBreaker:
        return replace(
            self,
            state=BreakerState.CLOSED,
            recent=(),
            recent_failures=0,
            trials=frozenset(),
            failed_trials=frozenset(),
        )
