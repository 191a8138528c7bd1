"""The phases of a bench run after the system is up: stock, ceiling, sagas, lag, audit, RSS.

Each phase returns (or adds) its part of the result and appends its notes;
``ordersaga.ops.bench.run`` runs them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import httpx
from aiokafka import AIOKafkaProducer
from rich.progress import Progress, TaskID

from ordersaga.adapters.kafka_clients import new_producer
from ordersaga.config.settings import Settings
from ordersaga.ops.bench.config import BenchConfig
from ordersaga.ops.bench.costs import CostProbe, Snapshot, per_saga
from ordersaga.ops.bench.faults import fault_phases
from ordersaga.ops.bench.load import (
    HttpInjector,
    Injector,
    KafkaInjector,
    Tracker,
    closed_loop,
    open_loop,
    order_session,
    register_customers,
    stock_skus,
    wait_all_ended,
    watch_order_events,
)
from ordersaga.ops.bench.probes import (
    Monitor,
    consumer_lag,
    cpu_percent,
    cpu_use,
    group_join_s,
    processes,
    read_cpu_s,
    read_peak_rss_kb,
    settled_lag,
)
from ordersaga.ops.bench.stats import (
    cpu_ms_per_saga,
    latency_stats,
    rate_phases,
    rss_growth,
    saga_figures,
)
from ordersaga.ops.bench.stepup import step_up_phase
from ordersaga.ops.bench.wire import WireCapture
from ordersaga.ops.faustchain import run_faust_chain
from ordersaga.ops.relay import ChainResult, RelayResult, run_chain_relay, run_relay
from ordersaga.ops.tail import consumer_at_end
from ordersaga.runtime.system import Runtime
from ordersaga.shell.topics import ORDERS_EVENTS, ORDERS_OUTCOMES


@dataclass(frozen=True)
class Target:
    """The system the bench measures, started by it or attached to."""

    settings: Settings
    bootstrap: str
    fetch_wait_ms: int
    web: str
    # The web view workers that take orders: one with --attach, one per worker of ours.
    web_workers: list[str]
    runtime: Runtime | None = None  # None with --attach: those processes are not ours


def target_config(target: Target, partitions: int) -> dict[str, Any]:
    """What the result's ``config`` learns once the system is up."""
    return {
        "partitions": partitions,
        "fetch_wait_ms": target.fetch_wait_ms,
        "bootstrap": target.bootstrap,
        "web": target.web,
        "web_workers": target.web_workers,
    }


async def stock_phase(
    client: httpx.AsyncClient,
    skus: Sequence[str],
    needed: int,
    customer_ids: Sequence[str],
    progress: Progress,
) -> None:
    """Register the customers and stock every SKU for ``needed`` orders before the first one."""
    stocking = progress.add_task(f"stocking {len(skus)} SKUs", total=None, rate="")
    await register_customers(client, customer_ids)
    await stock_skus(client, skus, needed=needed)
    progress.update(stocking, total=1, completed=1)


async def relay_phase(
    bootstrap: str,
    messages: int,
    partitions: int,
    fetch_wait_ms: int,
    pids: Mapping[str, int],
    progress: Progress,
) -> dict[str, Any]:
    """Run the relay with a progress bar; its result as JSON-ready data, CPU use included."""
    task = progress.add_task("ceiling: relay", total=messages, rate="")
    with cpu_use(pids) as cpu:
        relay = await run_relay(
            bootstrap,
            messages=messages,
            partitions=partitions,
            fetch_max_wait_ms=fetch_wait_ms,
            on_progress=lambda n: progress.update(task, completed=n),
        )
    progress.update(task, rate=f"{relay.messages_per_s:.0f} msg/s", completed=relay.received)
    # The relay runs in the bench process: near 100% there means it limited the ceiling.
    return _ceiling_figures(relay, cpu)


def _ceiling_figures(
    run: RelayResult | ChainResult, cpu: dict[str, float | None]
) -> dict[str, Any]:
    """A relay's result as JSON-ready data: latency percentiles instead of every latency."""
    figures = {k: v for k, v in asdict(run).items() if k != "latencies_s"}
    figures["latency_s"] = latency_stats(run.latencies_s)
    figures["cpu_percent"] = cpu
    return figures


def broker_ports(bootstrap: str) -> list[int]:
    """The ports of ``host:port[,host:port]``."""
    return [int(h.rsplit(":", 1)[1]) for h in bootstrap.split(",") if ":" in h]


async def chain_phase(
    target: Target, chains: int, in_flight: int, partitions: int, progress: Progress
) -> dict[str, Any]:
    """The closed-loop chain ceiling with a progress bar, as JSON-ready data."""
    task = progress.add_task("ceiling: chains", total=chains, rate="")
    with cpu_use(processes(target.runtime)) as cpu:
        chain = await run_chain_relay(
            target.bootstrap,
            chains=chains,
            in_flight=in_flight,
            partitions=partitions,
            fetch_max_wait_ms=target.fetch_wait_ms,
            linger_ms=target.settings.producer_linger_ms,
            on_progress=lambda n: progress.update(task, completed=n),
        )
    progress.update(task, rate=f"{chain.chains_per_s:.0f} chains/s", completed=chain.completed)
    return _ceiling_figures(chain, cpu)


async def faust_chain_phase(
    target: Target, chains: int, in_flight: int, partitions: int, progress: Progress
) -> dict[str, Any]:
    """The bare-Faust chain ceiling (``ordersaga.ops.faustchain``), as JSON-ready data."""
    if target.runtime is None:
        return {"note": "n/a with --attach (the bench starts its Faust apps beside its own system)"}
    task = progress.add_task("ceiling: Faust chains", total=chains, rate="")
    servers = {k: v for k, v in processes(target.runtime).items() if k in ("broker", "redis")}

    def measure(pids: Mapping[str, int]) -> contextlib.AbstractContextManager[dict[str, Any]]:
        return cpu_use({**pids, **servers, "bench": os.getpid()})

    chain, cpu, ready_s = await run_faust_chain(
        target.settings,
        target.bootstrap,
        target.runtime.data_dir / "faust-chain",
        chains=chains,
        in_flight=in_flight,
        partitions=partitions,
        measure=measure,
        on_progress=lambda n: progress.update(task, completed=n),
    )
    progress.update(task, rate=f"{chain.chains_per_s:.0f} chains/s", completed=chain.completed)
    figures = _ceiling_figures(chain, cpu)
    figures["ready_s"] = round(ready_s, 1)
    figures["cpu_ms_per_chain"] = cpu_ms_per_saga(cpu, chain.chains_per_s)
    return figures


@dataclass(frozen=True)
class SagaRun:
    """What the saga phase saw, for the figures."""

    tracker: Tracker
    monitor: Monitor | None
    ended_task: TaskID
    cpu_percent: dict[str, float | None]
    worst_lateness_s: float | None  # open loop only
    wire: dict[str, Any] | None = None  # with --wire: requests per saga
    costs: dict[str, Any] | None = None  # messages, requests and Redis calls per saga


async def place_orders(cfg: BenchConfig, injector: Injector, tracker: Tracker) -> float | None:
    """Every order, open loop at ``--rate`` or closed loop; the open loop's worst lateness."""
    if cfg.rate:
        return await open_loop(injector, cfg.total, cfg.rate)
    await closed_loop(injector, tracker, cfg.total, cfg.concurrency, cfg.order_timeout_s)
    return None


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _warmup_placed(tracker: Tracker, warmup: int) -> asyncio.Event:
    """Set once the warm-up's last order has been placed (accepted or rejected)."""
    placed = asyncio.Event()
    previous = tracker.on_accepted

    def on_accepted() -> None:
        previous()
        if len(tracker.accepted) + tracker.rejected >= warmup:
            placed.set()

    tracker.on_accepted = on_accepted
    if warmup == 0:
        placed.set()
    return placed


async def _snapshot_when(probe: CostProbe, ready: asyncio.Event) -> Snapshot:
    await ready.wait()
    return await probe.snapshot()


def cost_figures(before: Snapshot, after: Snapshot, tracker: Tracker) -> dict[str, Any]:
    """The counters' growth per saga that ended between the two snapshots."""
    sagas = sum(1 for e in tracker.ended.values() if before.at <= e.at <= after.at)
    return per_saga(before, after, sagas)


async def saga_phase(
    cfg: BenchConfig,
    target: Target,
    client: httpx.AsyncClient,
    skus: Sequence[str],
    customer_id: str,
    progress: Progress,
    costs: CostProbe | None = None,
) -> SagaRun:
    """Place the warm-up and the measured orders and wait until they ended (or ``--timeout``).

    With ``costs``, its counters are read as the warm-up ends and once every
    order ended: the saga's messages, requests and Redis calls come from those.
    """
    tracker = Tracker(customer_id=customer_id)
    accepted_task = progress.add_task("orders placed", total=cfg.total, rate="")
    ended_task = progress.add_task("orders ended", total=cfg.total, rate="")
    tracker.on_accepted = lambda: progress.advance(accepted_task)
    tracker.on_ended = lambda: progress.advance(ended_task)
    # Outcomes only: one message per order instead of its whole history.
    events = await consumer_at_end(target.bootstrap, ORDERS_OUTCOMES, target.fetch_wait_ms)
    watcher = asyncio.create_task(watch_order_events(events, tracker))
    # CPU per process over the saga phase shows which one is the bottleneck.
    pids = processes(target.runtime)
    cpu_before = {name: read_cpu_s(pid) for name, pid in pids.items()}
    phase_started = time.monotonic()
    producer: AIOKafkaProducer | None = None
    session: aiohttp.ClientSession | None = None
    monitor = (
        Monitor(target.runtime, tracker, cfg.total, cfg.join_at)
        if target.runtime is not None
        else None
    )
    monitoring = asyncio.create_task(monitor.run()) if monitor else None
    wire = WireCapture(broker_ports(target.bootstrap)) if cfg.wire else None
    opening = (
        asyncio.create_task(_snapshot_when(costs, _warmup_placed(tracker, cfg.warmup)))
        if costs
        else None
    )
    cost_part: dict[str, Any] | None = None
    try:
        if wire is not None:
            await wire.start()
            await wire.note_owners()
        injector: Injector
        if cfg.via == "kafka":
            # acks=all, as the web view's Faust producer (producer_acks=-1).
            producer = new_producer(target.bootstrap, acks="all")
            await producer.start()
            injector = KafkaInjector(producer, tracker, skus)
        else:
            session = order_session(cfg.concurrency)
            injector = HttpInjector(
                session, tracker, skus, target.web_workers, retry_refused=cfg.rate is None
            )
        lateness = await place_orders(cfg, injector, tracker)
        await wait_all_ended(tracker, cfg.timeout_s)
        if costs is not None and opening is not None:
            closing = await costs.snapshot()
            cost_part = cost_figures(await opening, closing, tracker)
        if wire is not None:
            await wire.note_owners()
            await wire.stop()
            pids = {**pids, "bench": os.getpid()}
            wire_figures = wire.figures(pids, len(tracker.ended))
        cpu = cpu_percent(
            cpu_before,
            {name: read_cpu_s(pid) for name, pid in pids.items()},
            time.monotonic() - phase_started,
        )
        if watcher.done() and watcher.exception() is not None:
            raise RuntimeError(f"order-event consumer failed: {watcher.exception()!r}")
    finally:
        if wire is not None:
            await wire.stop()
        await _cancel(watcher)
        if opening is not None and not opening.done():
            await _cancel(opening)
        if monitoring is not None:
            await _cancel(monitoring)
        with contextlib.suppress(Exception):
            await events.stop()
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
        if session is not None:
            await session.close()
    return SagaRun(
        tracker, monitor, ended_task, cpu, lateness, wire_figures if wire else None, cost_part
    )


def join_figures(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    """When the joining workers started and were healthy, and sagas/s around their join."""
    join = monitor.join
    # The workers' rebalance timeout (the embedded profile sets its own), plus a few
    # seconds: the rebalance the join sets off lasts about that long.
    rebalance_s = (monitor.runtime.worker_settings or settings).rebalance_timeout_s + 5
    return {
        **join,
        "rates": rate_phases(
            [e.at for e in monitor.tracker.ended.values()],
            join["started_at"],
            join.get("healthy_at", join["started_at"]),
            rebalance_s,
        ),
    }


def saga_results(
    cfg: BenchConfig,
    settings: Settings,
    run: SagaRun,
    relay: Mapping[str, Any] | None,
    chain: Mapping[str, Any] | None,
    notes: list[str],
    progress: Progress,
) -> dict[str, Any]:
    """The saga phase's part of the result: CPU, saga figures, memory, the join, the ratio."""
    part: dict[str, Any] = {}
    if run.worst_lateness_s is not None:
        part["saga_schedule_worst_lateness_s"] = run.worst_lateness_s
    part["cpu_percent"] = run.cpu_percent
    if run.wire is not None:
        part["wire"] = run.wire
    saga = part["saga"] = saga_figures(run.tracker, cfg.warmup)
    part["cpu_ms_per_saga"] = cpu_ms_per_saga(run.cpu_percent, saga["sagas_per_s"])
    part["costs"] = run.costs
    if run.costs and run.costs["errors"]:
        notes.append(f"costs: {len(run.costs['errors'])} reading(s) failed: see costs.errors")
    if run.monitor is not None:
        part["memory"] = rss_growth(run.monitor.samples, cfg.total)
        if run.monitor.join:
            part["join"] = join_figures(run.monitor, settings)
            if "healthy_at" not in run.monitor.join:
                notes.append("the joining workers were not healthy before the end")
    if saga["sagas_per_s"]:
        progress.update(run.ended_task, rate=f"{saga['sagas_per_s']:.0f} sagas/s")
    if saga["warmup_not_completed"]:
        notes.append(f"{saga['warmup_not_completed']} warm-up orders not COMPLETED")
    relay_rate = (relay or {}).get("messages_per_s")
    part["ratio"] = saga["sagas_per_s"] / relay_rate if relay_rate and saga["sagas_per_s"] else None
    chain_rate = (chain or {}).get("chains_per_s")
    part["chain_ratio"] = (
        saga["sagas_per_s"] / chain_rate if chain_rate and saga["sagas_per_s"] else None
    )
    return part


async def load_phases(
    cfg: BenchConfig, target: Target, partitions: int, result: dict[str, Any], progress: Progress
) -> None:
    """Stocking, the relay ceiling and the sagas, over one keep-alive client to the web view."""
    notes: list[str] = result["notes"]
    run_id = uuid.uuid4().hex[:8]
    skus = [f"bench-{run_id}-{i}" for i in range(cfg.skus)]
    limits = httpx.Limits(max_connections=max(cfg.concurrency, 64), max_keepalive_connections=None)
    async with httpx.AsyncClient(
        base_url=target.web, timeout=httpx.Timeout(30.0, pool=None), limits=limits
    ) as client:
        # One customer per phase: a phase's tracker takes the ends of its customer's orders.
        customers = tuple(
            f"bench-{run_id}{s}" for s in ("", "-over", "-lone", "-step", "-kills", "-loss")
        )
        await stock_phase(client, skus, math.ceil(cfg.total / cfg.skus) + 1, customers, progress)
        result["relay"] = (
            await relay_phase(
                target.bootstrap,
                cfg.relay_messages or cfg.orders,
                partitions,
                target.fetch_wait_ms,
                processes(target.runtime),
                progress,
            )
            if cfg.relay
            else None
        )
        notes.extend(f"relay: {n}" for n in (result["relay"] or {}).get("notes", []))
        # The same number in flight as the bench keeps orders in flight.
        result["chain"] = (
            await chain_phase(
                target, cfg.relay_messages or cfg.orders, cfg.concurrency, partitions, progress
            )
            if cfg.relay
            else None
        )
        result["faust_chain"] = (
            await faust_chain_phase(target, cfg.faust_chains, cfg.concurrency, partitions, progress)
            if cfg.faust_chain
            else None
        )
        if cfg.lone > 0:
            result["lone"] = await lone_phase(cfg, target, client, skus, customers[2], progress)
        probe = CostProbe(target.bootstrap, target.settings.redis_url_or_default, target.runtime)
        await probe.start()
        try:
            run = await saga_phase(cfg, target, client, skus, customers[0], progress, probe)
        finally:
            await probe.stop()
        result.update(
            saga_results(
                cfg, target.settings, run, result["relay"], result["chain"], notes, progress
            )
        )
        measured = result["saga"].get("sagas_per_s")
        if cfg.step_up and measured:
            result["step_up"] = await step_up_phase(
                target.bootstrap, target.fetch_wait_ms, skus, customers[3], measured, progress
            )
        if cfg.overload_s > 0 and measured:
            result["overload"] = await overload_phase(
                cfg, target, client, skus, customers[1], measured, progress
            )

        # Settled and idle before the faults: a restarted worker is no idle system.
        result["lag"] = await lag_phase(target.bootstrap, cfg.settle_s, notes, progress)
        # Measured once the load has settled, so it is the broker's join alone.
        result["group_join_s"] = await group_join_s(target.bootstrap, ORDERS_EVENTS)
        if cfg.idle_s > 0:
            result["idle"] = await idle_phase(target, cfg.idle_s, progress)

        async def open_loop(over: BenchConfig, customer_id: str) -> SagaRun:
            return await saga_phase(over, target, client, skus, customer_id, progress)

        if target.runtime is not None:
            await fault_phases(cfg, target.runtime, open_loop, customers[4:], result)


async def lone_phase(
    cfg: BenchConfig,
    target: Target,
    client: httpx.AsyncClient,
    skus: Sequence[str],
    customer_id: str,
    progress: Progress,
) -> dict[str, Any]:
    """A lone saga's latency: ``--lone`` orders one at a time on the idle system.

    Three unmeasured orders go first: the first orders of a fresh system pay
    for connections and metadata no later saga pays for.
    """
    lone = dataclasses.replace(
        cfg, orders=cfg.lone, warmup=3, concurrency=1, rate=None, join_at=None, wire=False
    )
    run = await saga_phase(lone, target, client, skus, customer_id, progress)
    saga = saga_figures(run.tracker, lone.warmup)
    return {
        "orders": cfg.lone,
        "completed": saga["completed"],
        "unfinished": saga["unfinished"],
        "latency_s": saga["latency_s"],
    }


async def lag_phase(
    bootstrap: str, settle_s: float, notes: list[str], progress: Progress
) -> dict[str, Any]:
    """Consumer lag as the last order ended, and again once the groups caught up."""
    lagging = progress.add_task("consumer lag", total=None, rate="")
    at_end = await consumer_lag(bootstrap)
    settled, after = await settled_lag(bootstrap, settle_s)
    progress.update(lagging, total=1, completed=1)
    if any("error" in v for v in at_end.values()):
        notes.append("consumer lag n/a for some groups: see lag.at_end[*].error")
    return {"at_end": at_end, "settled": settled, "settled_after_s": after}


async def audit_figures(bootstrap: str, redis_url: str) -> dict[str, Any]:
    """``ordersaga audit`` on the benched system: every invariant, its figures and violations."""
    from ordersaga.ops.audit import check_invariants, load_state

    state, accepted = await load_state(bootstrap, redis_url or "redis://127.0.0.1:6379/0")
    checks = check_invariants(state, accepted)
    return {
        "ok": all(c.ok for c in checks),
        "checks": [
            {"name": c.name, "ok": c.ok, "figures": c.figures, "violations": c.violations[:5]}
            for c in checks
        ],
    }


async def audit_phase(target: Target, progress: Progress) -> dict[str, Any]:
    """The audit's figures, against the Redis of the system measured."""
    auditing = progress.add_task("audit", total=None, rate="")
    figures = await audit_figures(
        target.bootstrap,
        target.settings.redis_url_or_default,
    )
    progress.update(auditing, total=1, completed=1)
    return figures


def rss_phase(runtime: Runtime | None, notes: list[str], killed: int = 0) -> dict[str, Any]:
    """Peak RSS of our workers and servers; a restart we did not cause makes the run suspect."""
    if runtime is None:
        return {"note": "n/a with --attach (the workers are not ours to inspect)"}
    restarts = sum(w.restarts for w in runtime.workers) - killed
    if restarts > 0:
        notes.append(f"{restarts} worker restart(s) during the run: figures suspect")
    return {
        "workers_kb": {
            w.name: read_peak_rss_kb(w.process.pid) if w.process else None for w in runtime.workers
        },
        "servers_kb": {
            name: read_peak_rss_kb(p.pid)
            for name, p in zip(("broker", "redis"), runtime.servers, strict=False)
        },
    }


async def idle_phase(target: Target, seconds: float, progress: Progress) -> dict[str, Any]:
    """CPU of every process of ours with nothing sent, once the load has settled."""
    if target.runtime is None:
        return {"note": "n/a with --attach (the workers are not ours to inspect)"}
    task = progress.add_task(f"idle CPU ({seconds:.0f} s)", total=None, rate="")
    pids = {k: v for k, v in processes(target.runtime).items() if k != "bench"}
    with cpu_use(pids) as share:
        await asyncio.sleep(seconds)
    progress.update(task, total=1, completed=1)
    known = [v for v in share.values() if v is not None]
    return {"seconds": seconds, "percent": share, "total_percent": round(sum(known), 1)}


async def overload_phase(
    cfg: BenchConfig,
    target: Target,
    client: httpx.AsyncClient,
    skus: Sequence[str],
    customer_id: str,
    measured_rate: float,
    progress: Progress,
) -> dict[str, Any]:
    """Twice the measured saga rate offered over HTTP for ``--overload`` seconds.

    What overload must look like: the excess refused with 429, every accepted
    order ended, none of them FAILED ``step_timeout``.
    """
    rate = max(2 * measured_rate, 10.0)
    over = cfg.over_http(rate, cfg.overload_s)
    run = await saga_phase(over, target, client, skus, customer_id, progress)
    saga = saga_figures(run.tracker, 0)
    return {
        "offered_per_s": round(rate, 1),
        "seconds": cfg.overload_s,
        "offered": over.orders,
        "accepted": len(run.tracker.accepted),
        "refused_429": run.tracker.refused,
        "answers": dict(sorted(run.tracker.statuses.items())),
        "completed": saga["completed"],
        "unfinished": saga["unfinished"],
        "step_timeouts": saga["not_completed_by"].get("FAILED/step_timeout", 0),
        "not_completed_by": saga["not_completed_by"],
        "latency_s": saga["latency_s"],
    }
