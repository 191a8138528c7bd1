"""The bench's figures from what it recorded: percentiles, the throughput window, rates, growth.

Nothing here does I/O; the definitions behind these figures are in the package
docstring (``ordersaga.ops.bench``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ordersaga.ops.bench.load import Tracker
from ordersaga.ops.bench.probes import Sample


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank ``p``-th percentile (0 < p <= 100) of ``values`` (any order)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def latency_stats(values: Sequence[float]) -> dict[str, float] | None:
    """count, p50, p95, p99, max and mean of ``values``; None when there are none."""
    if not values:
        return None
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


@dataclass(frozen=True)
class Window:
    """The measurement window and how many bench orders ended inside it."""

    start: float
    end: float
    ended: int

    @property
    def seconds(self) -> float:
        """Length of the window."""
        return self.end - self.start

    @property
    def rate(self) -> float:
        """Orders ended per second inside the window (0 for an empty window)."""
        return self.ended / self.seconds if self.seconds > 0 else 0.0


def throughput_window(
    measured_accepted: Iterable[float],
    measured_ended: Iterable[float],
    all_ended: Iterable[float],
) -> Window | None:
    """From the first measured acceptance to the last measured end; None if either is missing.

    ``all_ended`` are the end times of every bench order (warm-up included); those
    inside the window count.
    """
    accepted, ended = list(measured_accepted), list(measured_ended)
    if not accepted or not ended:
        return None
    start, end = min(accepted), max(ended)
    return Window(start, end, sum(1 for t in all_ended if start <= t <= end))


def rate_between(times: Sequence[float]) -> float | None:
    """Events per second from the first to the last of ``times`` (None for < 2 events)."""
    if len(times) < 2:
        return None
    span = max(times) - min(times)
    return len(times) / span if span > 0 else None


def rss_growth(samples: list[Sample], total: int) -> dict[str, Any] | None:
    """Each worker's RSS once a tenth of the orders had ended, and at the end.

    Memory is flat when the second is not much above the first although ten
    times as many orders went through.
    """
    early = next((s for s in samples if s.ended >= total / 10), None)
    if early is None or not samples:
        return None
    late = samples[-1]
    growth = {
        name: round((late.rss_kb[name] or 0) / kb - 1, 4)
        for name, kb in early.rss_kb.items()
        if kb and late.rss_kb.get(name)
    }
    return {
        "early": {"ended": early.ended, "rss_kb": early.rss_kb},
        "late": {"ended": late.ended, "rss_kb": late.rss_kb},
        "growth": growth,
        "max_growth": max(growth.values()) if growth else None,
    }


def rate_phases(
    ends: list[float], started: float, healthy: float, settle_s: float
) -> dict[str, float | None]:
    """Sagas/s before a worker joins, while it joins and rebalances, and after.

    "During" runs from the join until ``settle_s`` after the new workers served
    their first request (the group's rebalance takes that long on the broker).
    """
    ends = sorted(ends)
    if not ends:
        return {"before": None, "during": None, "after": None}
    settled = healthy + settle_s

    def rate(lo: float, hi: float) -> float | None:
        n = sum(1 for t in ends if lo <= t < hi)
        return n / (hi - lo) if hi - lo > 1 and n else None

    return {
        "before": rate(ends[0], started),
        "during": rate(started, settled),
        "after": rate(settled, ends[-1]),
        "during_s": round(settled - started, 1),
    }


def saga_figures(tracker: Tracker, warmup: int) -> dict[str, Any]:
    """The saga part of the result from what the tracker saw."""
    measured = [o for o, i in tracker.index.items() if i >= warmup]
    ended = [o for o in measured if o in tracker.ended]
    outcomes = Counter(tracker.ended[o].status for o in ended)
    not_completed = Counter(
        f"{tracker.ended[o].status}/{tracker.ended[o].reason or '-'}"
        for o in ended
        if tracker.ended[o].status != "COMPLETED"
    )
    warmup_not_completed = sum(
        1
        for o, i in tracker.index.items()
        if i < warmup and o in tracker.ended and tracker.ended[o].status != "COMPLETED"
    )
    window = throughput_window(
        (tracker.accepted[o] for o in measured),
        (tracker.ended[o].at for o in ended),
        (e.at for e in tracker.ended.values()),
    )
    latencies = [tracker.ended[o].at - tracker.accepted[o] for o in ended]
    return {
        "measured": len(measured),
        "ended": len(ended),
        "completed": outcomes.get("COMPLETED", 0),
        "not_completed": sum(not_completed.values()),
        "not_completed_by": dict(not_completed),
        "warmup_not_completed": warmup_not_completed,
        "unfinished": len(measured) - len(ended),
        "rejected": tracker.rejected,
        "refused": tracker.refused,
        "rejections": tracker.rejections,
        "window": (
            {**asdict(window), "seconds": window.seconds, "rate": window.rate} if window else None
        ),
        "sagas_per_s": window.rate if window else None,
        "accepted_per_s": rate_between([tracker.accepted[o] for o in measured]),
        "latency_s": latency_stats(latencies),
    }


def cpu_ms_per_saga(
    cpu_percent: Mapping[str, float | None], sagas_per_s: float | None, bench: str = "bench"
) -> dict[str, Any] | None:
    """CPU milliseconds per saga of each process, the system's total and the load generator's.

    A process using p% of one core for s sagas per second spends p * 10 / s ms
    per saga (p/100 core-seconds per second, times 1000 ms, over s). The system
    total leaves out the load generator (``bench``), which is given apart; it is
    None when some process's CPU could not be read (the total would be short).
    """
    if not sagas_per_s or sagas_per_s <= 0:
        return None
    per = {
        name: None if pct is None else round(pct * 10 / sagas_per_s, 2)
        for name, pct in cpu_percent.items()
    }
    system = [v for k, v in per.items() if k != bench]
    known = [v for v in system if v is not None]
    return {
        "processes": {k: v for k, v in per.items() if k != bench},
        "system": round(sum(known), 2) if len(known) == len(system) else None,
        "load_generator": per.get(bench),
    }
