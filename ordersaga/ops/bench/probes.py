"""What the bench reads off the system: /proc figures, consumer lag, the machine it ran on.

``Monitor`` samples the workers' RSS during the saga phase (and starts the
joining workers of ``--join-at``); the rest are one-shot readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from ordersaga.adapters.kafka_clients import new_admin, new_consumer
from ordersaga.ops.bench.load import Tracker
from ordersaga.runtime.system import Runtime
from ordersaga.shell.groups import GROUPS

# ------------------------------------------------------------------- parsing


def parse_vmhwm_kb(status: str, field_name: str = "VmHWM") -> int | None:
    """The ``VmHWM`` (peak resident set; or ``field_name``) in kB from ``/proc/<pid>/status``."""
    for line in status.splitlines():
        if line.startswith(f"{field_name}:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def parse_cpu_ticks(stat: str) -> int | None:
    """utime + stime (clock ticks) from a ``/proc/<pid>/stat`` text."""
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[11]) + int(fields[12])  # fields 14 and 15 of the full line
    except (IndexError, ValueError):
        return None


def cpu_percent(
    before: Mapping[str, float | None], after: Mapping[str, float | None], wall_s: float
) -> dict[str, float | None]:
    """Per process, CPU seconds used between two readings as a percentage of ``wall_s``."""
    share: dict[str, float | None] = {}
    for name, end in after.items():
        start = before.get(name)
        if start is None or end is None or end < start or wall_s <= 0:
            share[name] = None  # unreadable, or a restarted process (its counter restarted)
        else:
            share[name] = round((end - start) / wall_s * 100, 1)
    return share


@contextlib.contextmanager
def cpu_use(pids: Mapping[str, int]) -> Iterator[dict[str, float | None]]:
    """The CPU share of each process over the ``with`` block, filled in when it ends."""
    share: dict[str, float | None] = {}
    before = {name: read_cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    yield share
    after = {name: read_cpu_s(pid) for name, pid in pids.items()}
    share.update(cpu_percent(before, after, time.monotonic() - started))


# ----------------------------------------------------------------- processes


def read_peak_rss_kb(pid: int, field_name: str = "VmHWM") -> int | None:
    """VmHWM (or ``field_name``) of process ``pid`` in kB, None if it cannot be read."""
    try:
        return parse_vmhwm_kb(Path(f"/proc/{pid}/status").read_text(), field_name)
    except OSError:
        return None


def read_rss_kb(pid: int) -> int | None:
    """VmRSS (current resident set) of process ``pid`` in kB, None if it cannot be read."""
    return read_peak_rss_kb(pid, "VmRSS")


def read_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far, None if unreadable."""
    try:
        ticks = parse_cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return None
    return None if ticks is None else ticks / os.sysconf("SC_CLK_TCK")


def processes(runtime: Runtime | None) -> dict[str, int]:
    """Name -> pid of every process of the run: the bench, and the embedded system's."""
    found = {"bench": os.getpid()}
    if runtime is not None:
        found.update({w.name: w.process.pid for w in runtime.workers if w.process is not None})
        found.update(
            {name: p.pid for name, p in zip(("broker", "redis"), runtime.servers, strict=False)}
        )
    return found


def machine_info() -> dict[str, Any]:
    """Where the figures were taken, and the exact command line."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "command": shlex.join(sys.argv),
    }


# ------------------------------------------------------------------- monitor


@dataclass
class Sample:
    """What the monitor saw at one moment: orders ended so far and each worker's RSS."""

    at: float
    ended: int
    rss_kb: dict[str, int | None]


@dataclass
class Monitor:
    """Samples worker RSS every second and starts the joining workers when due."""

    runtime: Runtime
    tracker: Tracker
    total: int
    join_at: float | None = None
    samples: list[Sample] = field(default_factory=list)
    join: dict[str, Any] = field(default_factory=dict)

    async def run(self) -> None:
        """Sample until cancelled; cancelling stops a join still under way too."""
        joining: asyncio.Task[None] | None = None
        try:
            while True:
                ended = len(self.tracker.ended)
                self.samples.append(
                    Sample(
                        time.time(),
                        ended,
                        {
                            w.name: read_rss_kb(w.process.pid) if w.process else None
                            for w in self.runtime.workers
                        },
                    )
                )
                if (
                    self.join_at is not None
                    and joining is None
                    and ended >= self.join_at * self.total
                ):
                    joining = asyncio.create_task(self._join())
                await asyncio.sleep(1.0)
        finally:
            if joining is not None:
                joining.cancel()
                await asyncio.gather(joining, return_exceptions=True)

    async def _join(self) -> None:
        """One more worker for every group, as an operator scaling out under load would."""
        self.join["started_at"] = time.time()
        self.join["ended_before"] = len(self.tracker.ended)
        added = await asyncio.gather(*(self.runtime.add_worker(g.name) for g in GROUPS))
        self.join["healthy_at"] = time.time()
        self.join["workers"] = [w.name for w in added]


# ---------------------------------------------------------------------- lag


def lag_by_topic(
    committed: Mapping[tuple[str, int], int], end: Mapping[tuple[str, int], int]
) -> dict[str, int]:
    """Per topic, end offset - committed offset summed over the partitions committed."""
    lag: dict[str, int] = {}
    for (topic, partition), offset in committed.items():
        if offset < 0:  # the group has never committed this partition
            continue
        behind = max(0, end.get((topic, partition), offset) - offset)
        lag[topic] = lag.get(topic, 0) + behind
    return dict(sorted(lag.items()))


async def group_join_s(bootstrap: str, topic: str, timeout_s: float = 60.0) -> float | None:
    """Seconds from a fresh consumer's start to its first assignment, alone in a new group.

    What any new worker pays before it reads anything: the broker's join and sync
    (Apache Kafka with no initial rebalance delay; Tansu waits out the rebalance
    timeout). None when no assignment came within ``timeout_s``.
    """
    consumer = new_consumer(
        topic,
        bootstrap=bootstrap,
        group_id=f"ordersaga-bench-join-{os.getpid()}-{time.monotonic_ns()}",
        enable_auto_commit=False,
    )
    started = time.monotonic()
    await consumer.start()
    try:
        while not consumer.assignment():
            if time.monotonic() - started > timeout_s:
                return None
            await consumer.getmany(timeout_ms=50)
        return time.monotonic() - started
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, topic: str) -> int | None:
    """How many partitions ``topic`` has, None if it does not exist."""
    consumer = new_consumer(bootstrap=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
        return len(parts) if parts else None
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def consumer_lag(bootstrap: str) -> dict[str, dict[str, Any]]:
    """Per agent group: ``{"total", "topics"}``, or ``{"error"}`` where it cannot be read.

    The committed offsets are asked for explicitly for every partition of every
    topic: the embedded broker (Tansu) drops the connection when asked for "all
    of the group's offsets" (an OffsetFetch with no topics).
    """
    consumer = new_consumer(bootstrap=bootstrap, enable_auto_commit=False)
    admin = new_admin(bootstrap)
    lag: dict[str, dict[str, Any]] = {}
    try:
        await consumer.start()
        await admin.start()
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in sorted(await consumer.topics())
            if not t.startswith(("relay.", "__"))
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        end = {(tp.topic, tp.partition): o for tp, o in (await consumer.end_offsets(tps)).items()}
        for g in GROUPS:
            group_id = f"ordersaga-{g.name}"
            try:
                offsets = await asyncio.wait_for(
                    admin.list_consumer_group_offsets(group_id, partitions=tps), 30
                )
                topics = lag_by_topic(
                    {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()}, end
                )
                lag[g.name] = {"total": sum(topics.values()), "topics": topics}
            except Exception as exc:  # reported as n/a; a lag we cannot read fails nothing
                lag[g.name] = {"error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        return {g.name: {"error": f"{type(exc).__name__}: {exc}"} for g in GROUPS}
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        with contextlib.suppress(Exception):
            await consumer.stop()
    return lag


async def settled_lag(bootstrap: str, settle_s: float) -> tuple[dict[str, dict[str, Any]], float]:
    """Lag once every readable group is at 0, or after ``settle_s``; and how long it took."""
    started = time.monotonic()
    while True:
        lag = await consumer_lag(bootstrap)
        caught_up = all(v.get("total", 0) == 0 for v in lag.values())
        elapsed = time.monotonic() - started
        if caught_up or elapsed >= settle_s:
            return lag, elapsed
        await asyncio.sleep(1.0)
