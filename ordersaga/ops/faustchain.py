"""The bare-Faust ceiling of ``ordersaga bench``: the saga's chain of hops through Faust agents.

The plain-aiokafka chain (``ordersaga.ops.relay``) is the ceiling for a client
with no framework; this one separates Faust's own cost from the saga's above
it. Seven ``faust worker`` processes, one in the place of each agent group,
each an app made by ``make_app`` with the workers' own settings (and so every
patch of ``ordersaga.shell.patches``), under a consumer group of its own
(``ordersaga-chain-<group>``). Their agents only pass messages on
(``ordersaga.ops.faustchain_app``): no tables, no decoding, no Redis. The
``SAGA_HOPS`` hops of the chain are spread over the apps as the saga's
critical path is over the groups (``HOP_GROUPS``); the web view's and the
notifications' stand-ins read the chain's last topic as the real ones read
every saga's events. Topics ``fchain.0 .. fchain.13``, as many partitions as
the saga's; the bench's closed loop (``drive_chains``) keeps the same number
of chains in flight as the saga phase keeps orders.

The apps are started once the sagas are done and stopped at the end of the
phase; the ordersaga workers stay up (idle) meanwhile. A chain starts only
once a probe has gone through every partition, so the group joins are not
measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer

from ordersaga.adapters.kafka_clients import new_producer
from ordersaga.config.settings import Settings
from ordersaga.ops.faustchain_app import (
    GROUP_ENV,
    HOPS_ENV,
    LAST_ENV,
    PREFIX_ENV,
    SINK_ENV,
)
from ordersaga.ops.relay import (
    SAGA_HOPS,
    ChainResult,
    drive_chains,
    ensure_relay_topics,
    relay_topics,
    typical_envelope_bytes,
)
from ordersaga.ops.tail import consumer_at_end
from ordersaga.runtime.servers import free_port_block
from ordersaga.runtime.worker_env import as_env, env_name
from ordersaga.shell.groups import GROUPS

PREFIX = "fchain."

#: The group that consumes each hop of the saga's critical path (``relay``'s table).
HOP_GROUPS: tuple[str, ...] = (
    "orders",  # PlaceOrder
    "customers",  # ValidateCustomer
    "orders",  # CustomerValidated
    "inventory",  # SkuCommand(reserve)
    "orders",  # StockReserved
    "payments",  # ChargePayment
    "orders",  # PaymentCharged
    "shipping",  # PrepareShipment
    "orders",  # ShipmentPrepared, which writes OrderCompleted
)
# The groups that read every saga's events without answering.
SINK_GROUPS = ("webview", "notifications")
READY_TIMEOUT_S = 120.0
# Given the apps' pids, a context that fills in each process's CPU % when it ends.
Measure = Callable[[Mapping[str, int]], AbstractContextManager[dict[str, float | None]]]


def topics() -> list[str]:
    """``fchain.0 .. fchain.<SAGA_HOPS>``."""
    return [t.replace("relay.", PREFIX, 1) for t in relay_topics(SAGA_HOPS)]


def hops_by_group() -> dict[str, list[int]]:
    """Every group's hops (maybe none): where each app's agents read."""
    spread: dict[str, list[int]] = {g.name: [] for g in GROUPS}
    for hop, name in enumerate(HOP_GROUPS):
        spread[name].append(hop)
    return spread


def app_env(settings_env: Mapping[str, str], group: str, data_dir: Path) -> dict[str, str]:
    """The environment of the app in ``group``'s place."""
    return {
        **settings_env,
        env_name("data_dir"): str(data_dir / group),
        GROUP_ENV: group,
        HOPS_ENV: ",".join(str(h) for h in hops_by_group()[group]),
        PREFIX_ENV: PREFIX,
        LAST_ENV: str(SAGA_HOPS),
        **({SINK_ENV: "1"} if group in SINK_GROUPS else {}),
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class ChainApps:
    """The seven ``faust worker`` processes, started and stopped together."""

    settings: Settings
    data_dir: Path
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def start(self) -> None:
        settings_env = {**os.environ, **as_env(self.settings)}
        base = free_port_block(len(GROUPS))
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for i, g in enumerate(GROUPS):
            argv = [sys.executable, "-m", "faust", "--loop", self.settings.event_loop]
            argv += ["-A", "ordersaga.ops.faustchain_app", "worker"]
            argv += ["-l", self.settings.log_level, "--web-port", str(base + i)]
            argv += ["--web-host", "127.0.0.1"]
            with (logs / f"chain-{g.name}.log").open("ab") as log:
                self.processes[f"chain-{g.name}"] = await asyncio.create_subprocess_exec(
                    *argv,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=app_env(settings_env, g.name, self.data_dir),
                    start_new_session=True,
                )

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items()}

    def check(self) -> None:
        """Raise if an app exited."""
        for name, p in self.processes.items():
            if p.returncode is not None:
                raise RuntimeError(f"{name} exited with {p.returncode} (see its log)")

    async def stop(self, grace_s: float = 15.0) -> None:
        for p in self.processes.values():
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for p in self.processes.values():
            try:
                await asyncio.wait_for(p.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()


async def _until_ready(
    injector: AIOKafkaProducer, sink_topic: str, apps: ChainApps, bootstrap: str, partitions: int
) -> float:
    """Probe every partition once a second until each probe came out; seconds it took."""
    sink = await consumer_at_end(bootstrap, sink_topic, 20)
    started = time.monotonic()
    waiting: set[bytes] = set()
    try:
        while True:
            apps.check()
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise TimeoutError(f"the Faust chain passed nothing on in {READY_TIMEOUT_S:.0f} s")
            run = uuid.uuid4().hex[:6]
            waiting = set()
            for p in range(partitions):
                key = f"probe-{run}-{p}".encode()
                waiting.add(key)
                await injector.send_and_wait(topics()[0], b"{}", key=key, partition=p)
            deadline = time.monotonic() + 1.0
            while waiting and time.monotonic() < deadline:
                batch = await sink.getmany(timeout_ms=200)
                for records in batch.values():
                    waiting.difference_update(r.key for r in records if r.key is not None)
            if not waiting:
                return time.monotonic() - started
    finally:
        with contextlib.suppress(Exception):
            await sink.stop()


async def run_faust_chain(
    settings: Settings,
    bootstrap: str,
    data_dir: Path,
    *,
    chains: int,
    in_flight: int,
    partitions: int,
    measure: Measure,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[ChainResult, dict[str, float | None], float]:
    """Start the apps, wait until they pass messages on, run the closed loop, stop them.

    ``measure(pids)`` wraps the closed loop alone (the apps' pids by name): its
    CPU figures are returned with the chain's result and the seconds the apps
    took to pass a probe through every partition.
    """
    names = topics()
    await ensure_relay_topics(bootstrap, names, partitions)
    result = ChainResult(
        hops=SAGA_HOPS,
        partitions=partitions,
        message_bytes=typical_envelope_bytes(),
        in_flight=in_flight,
        chains=chains,
    )
    apps = ChainApps(settings, data_dir)
    injector = new_producer(bootstrap, acks="all", linger_ms=settings.producer_linger_ms)
    try:
        await apps.start()
        await injector.start()
        ready_s = await _until_ready(injector, names[-1], apps, bootstrap, partitions)
        sink = await consumer_at_end(bootstrap, names[-1], settings.fetch_max_wait_ms)
        try:
            with measure(apps.pids()) as cpu:
                await drive_chains(
                    injector, names[0], sink, result, check=apps.check, on_progress=on_progress
                )
        finally:
            with contextlib.suppress(Exception):
                await sink.stop()
        return result, cpu, ready_s
    finally:
        with contextlib.suppress(Exception):
            await injector.stop()
        await apps.stop()
