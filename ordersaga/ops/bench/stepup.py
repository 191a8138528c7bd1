"""The maximum sustained rate: an open loop via Kafka, stepped up until the system falls behind.

After the closed loop, ``step_up_phase`` offers orders open loop (``PlaceOrder``
straight onto ``orders.commands``, as ``--via kafka``) in steps of ``STEP_S``
seconds, starting at ``START_SHARE`` of the closed loop's sagas/s and growing by
``GROWTH`` each step. After each step it waits up to ``P99_LIMIT_S`` for the
step's orders to end, then judges the step (``judge_step``): it held unless its
p99 passed ``P99_LIMIT_S``, its orders came out slower than ``ENDED_SHARE`` of
the rate they went in, or more than 1% of them had not ended. The first step
that does not hold ends the phase, and so does ``BUDGET_S``; the maximum
sustained rate is the accepted/s of the fastest step that held. The phase
then waits for the backlog of the last step to end (while orders still end),
so that the phases after it start on a drained system.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich.progress import Progress

from ordersaga.adapters.kafka_clients import new_producer
from ordersaga.ops.bench.load import (
    Injector,
    KafkaInjector,
    Tracker,
    open_loop,
    wait_all_ended,
    watch_order_events,
)
from ordersaga.ops.bench.stats import percentile, rate_between
from ordersaga.ops.tail import consumer_at_end
from ordersaga.shell.topics import ORDERS_EVENTS

STEP_S = 10.0
START_SHARE = 0.75
GROWTH = 1.25
P99_LIMIT_S = 2.0
ENDED_SHARE = 0.9
UNFINISHED_SHARE = 0.01
BUDGET_S = 90.0
# Once the steps are over: wait for the backlog while orders still end, at most this
# long without one ending.
DRAIN_IDLE_S = 15.0


@dataclass(frozen=True)
class Step:
    """One step's figures and, when it did not hold, why."""

    rate: float  # scheduled orders per second
    placed: int
    accepted_per_s: float | None  # what the open loop really offered
    ended_per_s: float | None  # the step's orders, from their first end to their last
    p50_s: float | None
    p99_s: float | None  # unfinished orders count as slower than any
    unfinished: int
    failed: str | None


def judge_step(
    rate: float,
    accepted: Sequence[float],
    ends: Sequence[float],
    latencies: Sequence[float],
    unfinished: int,
) -> Step:
    """A step's figures from its orders' accepted times, end times and latencies.

    ``latencies`` are those of the orders that ended; the ``unfinished`` ones
    enter the p99 as infinitely slow, so more than 1% unfinished passes it.
    """
    placed = len(accepted)
    offered = rate_between(accepted)
    ended_per_s = rate_between(ends)
    slowest = [*latencies, *([math.inf] * unfinished)]
    p99 = percentile(slowest, 99) if slowest else None
    p50 = percentile(slowest, 50) if slowest else None
    reasons = []
    if p99 is None or p99 > P99_LIMIT_S:
        reasons.append(f"p99 over {P99_LIMIT_S:g} s")
    if offered and (ended_per_s or 0) < ENDED_SHARE * offered:
        reasons.append(f"ended/s under {ENDED_SHARE:.0%} of accepted/s")
    if unfinished > max(1, UNFINISHED_SHARE * placed):
        reasons.append(f"{unfinished} unfinished {P99_LIMIT_S:g} s after the step")
    return Step(
        rate=round(rate, 1),
        placed=placed,
        accepted_per_s=None if offered is None else round(offered, 1),
        ended_per_s=None if ended_per_s is None else round(ended_per_s, 1),
        p50_s=None if p50 is None or math.isinf(p50) else round(p50, 3),
        p99_s=None if p99 is None or math.isinf(p99) else round(p99, 3),
        unfinished=unfinished,
        failed="; ".join(reasons) or None,
    )


def max_sustained(steps: Sequence[Step]) -> float | None:
    """The accepted/s of the fastest step that held (None when none did)."""
    held = [s.accepted_per_s for s in steps if s.failed is None and s.accepted_per_s]
    return max(held) if held else None


@dataclass
class _Numbered:
    """An injector whose order numbers carry on from ``first`` (the tracker's index is unique)."""

    injector: Injector
    first: int

    async def place(self, index: int) -> str | None:
        return await self.injector.place(self.first + index)


def _step_figures(tracker: Tracker, rate: float, first: int, count: int) -> Step:
    orders = [o for o, i in tracker.index.items() if first <= i < first + count]
    ended = [o for o in orders if o in tracker.ended]
    return judge_step(
        rate,
        [tracker.accepted[o] for o in orders],
        [tracker.ended[o].at for o in ended],
        [tracker.ended[o].at - tracker.accepted[o] for o in ended],
        len(orders) - len(ended),
    )


async def _settle(tracker: Tracker, orders: Sequence[str], within_s: float) -> None:
    # Every wait starts now, so all of them are over within ``within_s``.
    await asyncio.gather(*(tracker.wait_ended(o, within_s) for o in orders))


async def step_up_phase(
    bootstrap: str,
    fetch_wait_ms: int,
    skus: Sequence[str],
    customer_id: str,
    closed_loop_rate: float,
    progress: Progress,
    budget_s: float = BUDGET_S,
) -> dict[str, Any]:
    """Open-loop steps of growing rate until one does not hold; their figures."""
    task = progress.add_task("max rate: step-up", total=None, rate="")
    tracker = Tracker(customer_id=customer_id)
    events = await consumer_at_end(bootstrap, ORDERS_EVENTS, fetch_wait_ms)
    watcher = asyncio.create_task(watch_order_events(events, tracker))
    producer = new_producer(bootstrap, acks="all")
    steps: list[Step] = []
    started = time.monotonic()
    rate = max(START_SHARE * closed_loop_rate, 1.0)
    try:
        await producer.start()
        injector = KafkaInjector(producer, tracker, skus)
        first = 0
        while time.monotonic() - started + STEP_S + P99_LIMIT_S <= budget_s:
            count = max(1, round(rate * STEP_S))
            progress.update(task, rate=f"{rate:.0f}/s offered")
            await open_loop(_Numbered(injector, first), count, rate)
            orders = [o for o, i in tracker.index.items() if first <= i < first + count]
            await _settle(tracker, orders, P99_LIMIT_S)
            step = _step_figures(tracker, rate, first, count)
            steps.append(step)
            first += count
            if step.failed is not None:
                break
            rate *= GROWTH
        if watcher.done() and watcher.exception() is not None:
            raise RuntimeError(f"order-event consumer failed: {watcher.exception()!r}")
        # The step that did not hold left a backlog: what comes next starts without it.
        drain_started = time.monotonic()
        await wait_all_ended(tracker, DRAIN_IDLE_S)
        drained_s = time.monotonic() - drain_started
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        with contextlib.suppress(Exception):
            await events.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
    best = max_sustained(steps)
    progress.update(
        task, total=1, completed=1, rate="" if best is None else f"{best:.0f}/s sustained"
    )
    return {
        "max_sustained_per_s": best,
        "seconds": round(time.monotonic() - started, 1),
        "drained_s": round(drained_s, 1),
        "left_unfinished": tracker.pending,
        "budget_exhausted": bool(steps) and steps[-1].failed is None,
        "rule": {
            "step_s": STEP_S,
            "start_share": START_SHARE,
            "growth": GROWTH,
            "p99_limit_s": P99_LIMIT_S,
            "ended_share": ENDED_SHARE,
        },
        "steps": [asdict(s) for s in steps],
    }
