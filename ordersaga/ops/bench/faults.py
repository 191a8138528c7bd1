"""The bench's fault phases: orders offered over HTTP while workers or a broker are SIGKILLed.

What issue 21 asks of answers under faults: with a saga worker SIGKILLed every
3-5 s at half the maximum sustained rate, most offered orders accepted (the
admission limit must not sink to its floor) and none FAILED ``step_timeout``;
with a broker of ``--brokers 3`` SIGKILLed, no ``POST /orders`` slower than the
bound (``ORDERSAGA_BROKER_ANSWER_WITHIN_S``, 3 s by default). Each phase reports
what it offered, what the web view answered, how long the answers took, and how
the accepted orders ended.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ordersaga.ops.bench.config import BenchConfig, offered_orders
from ordersaga.ops.bench.load import Tracker
from ordersaga.ops.bench.stats import latency_stats, saga_figures
from ordersaga.runtime.system import Runtime

# How often a saga worker is SIGKILLed during the kills phase (issue 21: every 3-5 s).
KILL_EVERY_S = (3.0, 5.0)
# The broker-loss phase: the broker goes at a third of it and comes back at two thirds.
BROKER_DOWN_FROM, BROKER_DOWN_UNTIL = 1 / 3, 2 / 3
# Orders per second offered while a broker is down: a steady shop's traffic, as in
# the measurement that found POSTs blocked for up to 41 s (issue 21).
BROKER_LOSS_RATE = 15.0
# A POST slower than this is counted apart (the answer bound's default).
SLOW_POST_S = 3.0

# Places ``cfg.orders`` orders in an open loop with the given customer and waits
# for them to end; what it returns has the run's ``tracker``.
OpenLoop = Callable[[BenchConfig, str], Awaitable[Any]]


def _answers(tracker: Tracker, rate: float, seconds: float) -> dict[str, Any]:
    saga = saga_figures(tracker, 0)
    offered = offered_orders(rate, seconds)
    accepted = len(tracker.accepted)
    return {
        "offered_per_s": round(rate, 1),
        "seconds": seconds,
        "offered": offered,
        "accepted": accepted,
        "accepted_share": round(accepted / offered, 3),
        "refused_429": tracker.refused,
        "answers": dict(sorted(tracker.statuses.items())),
        "post_s": latency_stats(tracker.post_s),
        "posts_over_3_s": sum(1 for s in tracker.post_s if s > SLOW_POST_S),
        "completed": saga["completed"],
        "unfinished": saga["unfinished"],
        "step_timeouts": saga["not_completed_by"].get("FAILED/step_timeout", 0),
        "not_completed_by": saga["not_completed_by"],
        "latency_s": saga["latency_s"],
    }


async def _kill_workers(runtime: Runtime, seconds: float, killed: list[str]) -> None:
    """SIGKILL a random live saga worker every 3-5 s for ``seconds``; the supervisor restarts it.

    The web view is spared: it is the one answering the POSTs this phase measures.
    """
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while True:
        await asyncio.sleep(random.uniform(*KILL_EVERY_S))
        if loop.time() >= until:
            return
        alive = [
            w
            for w in runtime.workers
            if w.group.name != "webview" and w.process is not None and w.process.returncode is None
        ]
        if alive:
            victim = random.choice(alive)
            assert victim.process is not None
            killed.append(victim.group.name)
            victim.process.kill()


async def kills_phase(
    cfg: BenchConfig, runtime: Runtime, open_loop: OpenLoop, customer_id: str, max_rate: float
) -> dict[str, Any]:
    """Half of ``max_rate`` offered over HTTP for ``--kills`` s while saga workers are killed."""
    rate = max(max_rate / 2, 5.0)
    killed: list[str] = []
    killing = asyncio.create_task(_kill_workers(runtime, cfg.kills_s, killed))
    try:
        run = await open_loop(cfg.over_http(rate, cfg.kills_s), customer_id)
    finally:
        killing.cancel()
        await asyncio.gather(killing, return_exceptions=True)
    figures = _answers(run.tracker, rate, cfg.kills_s)
    figures["kills"] = len(killed)
    figures["killed"] = {g: killed.count(g) for g in sorted(set(killed))}
    return figures


async def broker_loss_phase(
    cfg: BenchConfig, runtime: Runtime, open_loop: OpenLoop, customer_id: str, rate: float
) -> dict[str, Any]:
    """``rate`` offered over HTTP for ``--broker-loss`` s; one broker SIGKILLed in the middle third.

    A random broker, as an outage picks one: the partitions it led elect new
    leaders, and an acked send to one of them waits for the election.
    """
    if len(runtime.kafka_nodes) < 3:
        return {"skipped": "needs --brokers 3 (a cluster that keeps acks=all writes without one)"}
    victim = random.randrange(len(runtime.kafka_nodes))
    seconds = cfg.broker_loss_s

    async def lose_a_broker() -> None:
        await asyncio.sleep(seconds * BROKER_DOWN_FROM)
        await runtime.kill_broker(victim)
        await asyncio.sleep(seconds * (BROKER_DOWN_UNTIL - BROKER_DOWN_FROM))
        await runtime.restart_broker(victim)

    losing = asyncio.create_task(lose_a_broker())
    try:
        run = await open_loop(cfg.over_http(rate, seconds), customer_id)
        await losing
    finally:
        losing.cancel()
        await asyncio.gather(losing, return_exceptions=True)
    figures = _answers(run.tracker, rate, seconds)
    figures["broker_killed"] = victim + 1
    figures["down_s"] = round(seconds * (BROKER_DOWN_UNTIL - BROKER_DOWN_FROM), 1)
    return figures


async def fault_phases(
    cfg: BenchConfig,
    runtime: Runtime,
    open_loop: OpenLoop,
    customer_ids: Sequence[str],
    result: dict[str, Any],
) -> None:
    """``--kills`` then ``--broker-loss``, each as asked, into ``result``."""
    measured = (result.get("saga") or {}).get("sagas_per_s")
    if cfg.kills_s > 0 and measured:
        most = (result.get("step_up") or {}).get("max_sustained_per_s") or measured
        result["kills"] = await kills_phase(cfg, runtime, open_loop, customer_ids[0], most)
    if cfg.broker_loss_s > 0:
        result["broker_loss"] = await broker_loss_phase(
            cfg, runtime, open_loop, customer_ids[1], BROKER_LOSS_RATE
        )
