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
    opened_at: float = 0.0
    # Half-open: callers whose trial is under way, and callers whose trial failed.
    trials: frozenset[str] = frozenset()
    failed_trials: frozenset[str] = frozenset()

    @property
    def failures(self) -> int:
        """Failed calls in the window (as last pruned)."""
        return sum(1 for call in self.recent if not call.ok)

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
                return replace(self._closed(), state=BreakerState.OPEN, opened_at=now, recent=())
            return replace(self, trials=self.trials - {caller}, failed_trials=failed)
        if self.state == BreakerState.OPEN:
            # A call that went ahead before the circuit opened: already counted in.
            return self
        recent = tuple(c for c in self.recent if now - c.at < self.window_s)
        recent = (*recent, Call(now, caller, ok))[-MAX_RECENT_CALLS:]
        after = replace(self, recent=recent)
        return after._opened(now) if after._should_open() else after

    def abandon(self, caller: str = "") -> CircuitBreaker:
        """The breaker after ``caller``'s call ended with no outcome (it was cancelled).

        Its half-open trial is given back, so a trial that never returns cannot
        hold the circuit half-open, refusing everyone, for ever.
        """
        return replace(self, trials=self.trials - {caller})

    def _should_open(self) -> bool:
        failed = [call for call in self.recent if not call.ok]
        return (
            len(failed) >= self.failure_threshold
            and len(failed) >= self.failure_ratio * len(self.recent)
            and len({call.caller for call in failed}) >= self.min_callers
        )

    def _opened(self, now: float) -> CircuitBreaker:
        return replace(self, state=BreakerState.OPEN, opened_at=now, recent=())

    def _closed(self) -> CircuitBreaker:
        return replace(
            self,
            state=BreakerState.CLOSED,
            recent=(),
            trials=frozenset(),
            failed_trials=frozenset(),
        )
