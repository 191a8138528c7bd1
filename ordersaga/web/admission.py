"""How many orders the system may have in flight: Little's law on what it can finish.

In flight = throughput x latency, so to keep an accepted order's time to its end
near ``target_latency_s``, no more may be in flight than the orders the system
ends per second times that. The rate is measured from the view store's counter
of ended orders, smoothed, and the best of it lately is taken as what the
system can end (a stall does not lower it); the limit never falls below a floor
(a system just started still takes work) nor rises above the configured cap.
"""

from __future__ import annotations

from dataclasses import dataclass

# Weight of the newest sample in the smoothed rate: about ten samples of memory.
SMOOTHING = 0.2
# A sample needs this much time behind it to say anything about a rate.
MIN_SAMPLE_S = 0.5
# The best rate seen halves every this many seconds unless it is seen again.
CAPACITY_HALF_LIFE_S = 60.0
# Ending fewer than this share of the best rate lately, the system is stalled.
STALL_SHARE = 0.5
# After a stall, the backlog it left drains for about this long: still taken as one.
DRAIN_S = 10.0


@dataclass
class CompletionRate:
    """Orders ended per second, smoothed, and the best of it lately (pure, no I/O).

    ``best`` is what the limit is taken from: the rate the system showed it can
    end orders at, decaying slowly. A worker SIGKILLed and restarting stalls its
    step for seconds; the orders ended per second drop meanwhile, then the
    backlog drains. A limit taken from the current rate sank to its floor at
    every kill and refused orders the system could carry (issue 21: 34% of an
    offered half of the maximum rate accepted). The best recent rate does not
    sink with a stall; a lasting loss of capacity still lowers it, within
    minutes (half-life ``CAPACITY_HALF_LIFE_S``).
    """

    rate: float = 0.0
    best: float = 0.0
    # Whether the system is stalled, or draining what a stall left (see ``sample``).
    stalled: bool = False
    _at: float | None = None
    _ended: int = 0
    _stalled_at: float | None = None

    def sample(self, now: float, ended_total: int) -> None:
        """Take the counter of ended orders as read at ``now``."""
        if self._at is None or ended_total < self._ended:
            self._at, self._ended = now, ended_total  # first reading, or a reset counter
            return
        elapsed = now - self._at
        if elapsed < MIN_SAMPLE_S:
            return
        current = (ended_total - self._ended) / elapsed
        self.rate = (
            current if self.rate == 0.0 else (1 - SMOOTHING) * self.rate + SMOOTHING * current
        )
        self.best = max(self.rate, self.best * 0.5 ** (elapsed / CAPACITY_HALF_LIFE_S))
        # Stalled: this sample ended far fewer orders than the system lately showed
        # it can. Overload keeps it busy ending orders at what it can; a stall (a
        # worker SIGKILLed and restarting, its partitions waiting) ends few while
        # the rest of the system idles, and refusing orders then protects nothing:
        # the stalled step drains its backlog at full speed once back, during
        # DRAIN_S. The sample, not the smoothed rate, so it shows within 0.5 s.
        if self.best > 0.0 and current < STALL_SHARE * self.best:
            self._stalled_at = now
        self.stalled = self._stalled_at is not None and now - self._stalled_at < DRAIN_S
        self._at, self._ended = now, ended_total


def in_flight_limit(rate: float, target_latency_s: float, floor: int, cap: int) -> int:
    """The most orders to have in flight at this completion rate (the cap wins over the floor)."""
    return min(cap, max(floor, round(rate * target_latency_s)))


def admission_limit(
    completions: CompletionRate, target_latency_s: float, floor: int, cap: int
) -> int:
    """The in-flight limit now: Little's law on the best rate lately, the cap while stalled.

    While stalled (or draining a stall's backlog), orders are taken up to the cap
    (``ORDERSAGA_MAX_SAGAS_IN_FLIGHT``, the bound on what may wait) and their
    latency grows by the stall; a stall that lasts (a group that cannot start)
    fills the cap and then refuses. A quiet system counts as stalled too: it ends
    few because few arrive, and a flood then meets the cap before the rate rises.
    """
    if completions.stalled:
        return cap
    return in_flight_limit(completions.best, target_latency_s, floor, cap)
