"""A circuit breaker as a pure value: closed -> open after N consecutive failures ->
half-open after a cool-down (one trial call) -> closed on success, open on failure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitBreaker:
    """Counts consecutive failures of a dependency and stops calling it while it is down."""

    failure_threshold: int = 5
    cool_down_s: float = 30.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False

    def before_call(self, now: float) -> tuple[CircuitBreaker, bool]:
        """Whether a call may go ahead now, and the breaker after asking."""
        if self.state == BreakerState.CLOSED:
            return self, True
        if self.state == BreakerState.OPEN and now - self.opened_at >= self.cool_down_s:
            return replace(self, state=BreakerState.HALF_OPEN, trial_in_flight=True), True
        if self.state == BreakerState.HALF_OPEN and not self.trial_in_flight:
            return replace(self, trial_in_flight=True), True
        return self, False

    def after_call(self, ok: bool, now: float) -> CircuitBreaker:
        """The breaker after a call that went ahead succeeded or failed."""
        if ok:
            return replace(self, state=BreakerState.CLOSED, failures=0, trial_in_flight=False)
        failures = self.failures + 1
        if self.state == BreakerState.HALF_OPEN or failures >= self.failure_threshold:
            return replace(
                self,
                state=BreakerState.OPEN,
                failures=failures,
                opened_at=now,
                trial_in_flight=False,
            )
        return replace(self, failures=failures)
