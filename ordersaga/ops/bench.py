"""``ordersaga bench``: sagas per second, latency, memory and lag, against a ceiling.

What one run does:

1. Starts the embedded system (broker, Redis, ``--workers`` workers per agent
   group, on free ports, no demo catalogue) or, with ``--attach``, uses the one
   that ``KAFKA_BROKER`` and ``ORDERSAGA_WEB_PORT`` (and ``ORDERSAGA_WEB_HOST``)
   point at.
2. Creates ``--skus`` SKUs with stock for every order over
   ``POST /inventory/{sku}/restock`` and waits until ``GET /inventory/{sku}``
   shows it.
3. Unless ``--no-relay``, measures the ceiling with the workers idle: a plain
   aiokafka relay of as many hops as a saga has (``ordersaga.ops.relay``).
4. Places ``--warmup`` then ``--orders`` orders (one SKU each, ``tok_visa``, an
   address the carrier accepts), either closed loop (``--concurrency`` orders
   in flight, the default) or open loop (``--rate`` orders per second whatever
   the system does), injected ``--via kafka`` (PlaceOrder envelopes produced
   straight onto ``orders.commands``, keyed by order id) or ``--via http``
   (``POST /orders`` over keep-alive connections).
5. Reads the outcome of every order from ``orders.events`` with a group-less
   consumer on every partition, starting at the end offsets taken before the
   first order, then reads the workers' peak RSS and the consumer lag of every
   agent group, writes a JSON file and prints a one-screen summary.

Definitions (every time is this machine's wall clock, in seconds):

- *accepted*: ``--via kafka``, when the broker acknowledged the produce of the
  PlaceOrder; ``--via http``, when the 202 arrived.
- *ended*: the envelope ``occurred_at`` of the first OrderEvent of the order
  whose snapshot status is COMPLETED, FAILED or CANCELLED (stamped by the
  orders worker when it decided). Against ``--attach`` on other machines their
  clock skew enters the latency.
- *latency*: ended - accepted, per measured order. Percentiles are nearest-rank:
  the smallest value with at least p% of the values at or below it.
- *warm-up*: the first ``--warmup`` orders injected; the ``--orders`` after
  them are the measured ones.
- *sagas/s*: the window opens when the first measured order is accepted and
  closes when the last measured order ends; the rate is the number of bench
  orders (warm-up ones included) that ended inside the window divided by its
  length. Counting every order that ended inside it, not only measured ones,
  gives what the system sustained during the window: in closed loop the
  warm-up orders still in flight when it opens end inside it, and excluding
  them would understate the rate by (K-1)/N.
- *accepted/s*: measured orders / (last measured accepted - first measured
  accepted); in open loop, how much of ``--rate`` was really offered.
- *ceiling*: the relay's messages per second (see ``ordersaga.ops.relay``);
  the summary gives sagas/s as a share of it.
- *peak RSS*: VmHWM of every worker process (and of the broker and Redis) from
  ``/proc/<pid>/status`` at the end; not available with ``--attach``.
- *lag*: per consumer group ``ordersaga-<group>``, end offset - committed offset
  summed per topic, read as soon as the last order ended and again once the
  groups have caught up (or ``--settle`` seconds passed): Faust commits every
  few seconds, so some lag right at the end is normal. Committed offsets are
  asked for per partition, because the embedded broker (Tansu) drops the
  connection on an OffsetFetch for all of a group's offsets; a group whose
  offsets cannot be read is reported n/a with the error.
- *CPU %*: CPU time of each process over the saga phase (and over the relay)
  as a share of one core; it shows which process limits the rate.

With ``--attach`` the relay topics ``relay.0 .. relay.13`` stay on that broker
(a later run reuses them), and the bench's SKUs stay in its inventory.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ordersaga.app.codec import DecodeError, decode, encode
from ordersaga.app.groups import GROUPS
from ordersaga.app.runtime import Runtime, free_port_block
from ordersaga.app.settings import Settings
from ordersaga.app.topics import ORDERS_COMMANDS, ORDERS_EVENTS
from ordersaga.ops.relay import run_relay
from ordersaga.ops.tail import consumer_at_end
from ordersaga.schemas.messages import Address, OrderEvent, OrderLine, PlaceOrder

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
ADDRESS = {
    "name": "Bench Runner",
    "line1": "1 Throughput Way",
    "city": "London",
    "postal_code": "N1",
    "country": "GB",
}
# The web view takes at most this much stock per restock request.
MAX_RESTOCK = 1_000_000
# What the bench's own consumers ask of a fetch when nothing says otherwise: the
# embedded profile's value, so the closed loop is not held back by fetch waits.
DEFAULT_FETCH_WAIT_MS = 20


# ---------------------------------------------------------------- pure helpers


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


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:.0f}"


def _fmt_lag(lag: Mapping[str, Any] | None) -> str:
    if not lag:
        return "-"
    return ", ".join(
        f"{group} n/a" if "error" in figures else f"{group} {figures['total']}"
        for group, figures in lag.items()
    )


def _row(label: str, text: str) -> str:
    return f"  {label:<14}{text}"


def _chunks(items: Sequence[str], size: int) -> list[str]:
    return [", ".join(items[i : i + size]) for i in range(0, len(items), size)] or ["-"]


def format_summary(result: Mapping[str, Any]) -> str:
    """The one-screen summary of a bench result (the dict written as JSON)."""
    cfg, saga = result["config"], result["saga"]
    loop = (
        f"open loop at {cfg['rate']:g}/s"
        if cfg.get("rate")
        else f"closed loop, {cfg['concurrency']} in flight"
    )
    where = "attached" if cfg.get("attach") else f"{cfg['workers']} worker(s) per group"
    lines = [
        f"ordersaga bench: {cfg['orders']} orders after {cfg['warmup']} warm-up, "
        f"via {cfg['via']}, {loop}, {where}, {cfg['partitions']} partitions",
    ]
    window = saga.get("window")
    if window:
        accepted = saga.get("accepted_per_s")
        lines.append(
            _row(
                "sagas/s",
                f"{saga['sagas_per_s']:.1f}   ({window['ended']} ended in the "
                f"{window['seconds']:.1f} s window)   accepted/s "
                + (f"{accepted:.1f}" if accepted else "-"),
            )
        )
    else:
        lines.append(_row("sagas/s", "n/a (no measured order both accepted and ended)"))
    lat = saga.get("latency_s")
    if lat:
        lines.append(
            _row(
                "latency",
                f"p50 {_fmt_s(lat['p50'])}   p95 {_fmt_s(lat['p95'])}   "
                f"p99 {_fmt_s(lat['p99'])}   max {_fmt_s(lat['max'])}   ({lat['count']} orders)",
            )
        )
    detail = ", ".join(f"{k} {v}" for k, v in saga.get("not_completed_by", {}).items())
    lines.append(
        _row(
            "outcomes",
            f"{saga['completed']} COMPLETED, {saga['not_completed']} not COMPLETED"
            f"{f' ({detail})' if detail else ''}, {saga['unfinished']} unfinished, "
            f"{saga['rejected']} rejected at injection",
        )
    )
    relay = result.get("relay")
    if relay is None:
        lines.append(_row("ceiling", "skipped (--no-relay)"))
    else:
        lines.append(
            _row(
                "ceiling",
                f"relay of {relay['hops']} hops, {relay['message_bytes']}-byte messages: "
                f"{relay['messages_per_s']:.1f} msg/s end to end ({relay['received']} of "
                f"{relay['messages']} in {relay['seconds']:.1f} s"
                + (
                    f", bench CPU {relay['cpu_percent']['bench']:.0f}%)"
                    if (relay.get("cpu_percent") or {}).get("bench") is not None
                    else ")"
                )
                + (f"  ERROR {relay['error']}" if relay.get("error") else ""),
            )
        )
        ratio = result.get("ratio")
        lines.append(
            _row(
                "saga/ceiling",
                "n/a" if ratio is None else f"{ratio * 100:.1f}% of the relay rate",
            )
        )
    rss = result.get("rss") or {}
    if rss.get("note"):
        lines.append(_row("peak RSS", rss["note"]))
    else:
        named = [f"{n} {_fmt_mb(kb)}" for n, kb in rss.get("workers_kb", {}).items()]
        named += [f"{n} {_fmt_mb(kb)}" for n, kb in rss.get("servers_kb", {}).items()]
        for i, chunk in enumerate(_chunks(named, 6)):
            lines.append(_row("peak RSS MB" if i == 0 else "", chunk))
    cpu = result.get("cpu_percent")
    if cpu:
        named = [f"{n} {'?' if v is None else f'{v:.0f}'}" for n, v in cpu.items()]
        for i, chunk in enumerate(_chunks(named, 6)):
            lines.append(_row("CPU % sagas" if i == 0 else "", chunk))
    memory = result.get("memory")
    if memory:
        named = [f"{n} {g * 100:+.0f}%" for n, g in memory["growth"].items()]
        for i, chunk in enumerate(_chunks(named, 6)):
            lines.append(
                _row(
                    f"RSS {memory['early']['ended']}->{memory['late']['ended']}" if i == 0 else "",
                    chunk,
                )
            )
    join = result.get("join")
    if join:
        rates = join["rates"]
        lines.append(
            _row(
                "worker joins",
                f"{len(join.get('workers', []))} at {join['ended_before']} ended: sagas/s before "
                f"{_fmt_rate(rates['before'])}, during {_fmt_rate(rates['during'])} "
                f"({rates.get('during_s', 0):.0f} s), after {_fmt_rate(rates['after'])}",
            )
        )
    audit = result.get("audit")
    if audit:
        failed = [c["name"] for c in audit["checks"] if not c["ok"]]
        lines.append(_row("audit", "PASS (5 invariants)" if audit["ok"] else f"FAIL {failed}"))
    lag = result.get("lag") or {}
    lines.append(_row("lag at end", _fmt_lag(lag.get("at_end"))))
    if lag.get("settled") is not None:
        lines.append(_row(f"lag +{lag.get('settled_after_s', 0):.0f} s", _fmt_lag(lag["settled"])))
    lines.extend(_row("note", note) for note in result.get("notes", []))
    if result.get("out"):
        lines.append(_row("results", str(result["out"])))
    return "\n".join(lines)


def _fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1f}"


def default_out_path(now: datetime) -> Path:
    """``bench-results/bench-<UTC timestamp>.json``."""
    return Path("bench-results") / f"bench-{now.strftime('%Y%m%d-%H%M%S')}.json"


# --------------------------------------------------------------- configuration


@dataclass
class BenchConfig:
    """What ``ordersaga bench`` was asked to do."""

    via: str = "kafka"
    orders: int = 3000
    warmup: int = 300
    rate: float | None = None
    concurrency: int = 32
    workers: int = 1
    skus: int = 4
    attach: bool = False
    relay: bool = True
    relay_messages: int | None = None
    fetch_wait_ms: int | None = None
    timeout_s: float = 120.0
    order_timeout_s: float = 60.0
    settle_s: float = 15.0
    retention_s: float | None = None
    join_at: float | None = None
    audit: bool = False
    out: Path | None = None

    def __post_init__(self) -> None:
        problems = [
            text
            for bad, text in (
                (self.via not in ("kafka", "http"), "--via must be kafka or http"),
                (self.orders < 1, "--orders must be at least 1"),
                (self.warmup < 0, "--warmup cannot be negative"),
                (self.rate is not None and self.rate <= 0, "--rate must be positive"),
                (self.concurrency < 1, "--concurrency must be at least 1"),
                (self.workers < 1, "--workers must be at least 1"),
                (self.skus < 1, "--skus must be at least 1"),
                (
                    self.join_at is not None and not 0 < self.join_at < 1,
                    "--join-at must be a fraction between 0 and 1",
                ),
                (
                    self.attach and (self.join_at is not None or self.retention_s is not None),
                    "--join-at and --retention need the embedded system (not --attach)",
                ),
                (
                    self.relay_messages is not None and self.relay_messages < 1,
                    "--relay-messages must be at least 1",
                ),
            )
            if bad
        ]
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def total(self) -> int:
        """Warm-up and measured orders."""
        return self.warmup + self.orders


# ------------------------------------------------------------------- tracking


@dataclass(frozen=True)
class Ended:
    """How and when an order ended."""

    at: float
    status: str
    reason: str | None


@dataclass
class Tracker:
    """Acceptances and ends of the bench's orders, and who waits for which."""

    customer_id: str
    accepted: dict[str, float] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    ended: dict[str, Ended] = field(default_factory=dict)
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    on_accepted: Callable[[], None] = lambda: None
    on_ended: Callable[[], None] = lambda: None
    _waiters: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def accept(self, order_id: str, index: int, at: float) -> None:
        """Record that order ``index`` was accepted as ``order_id`` at ``at``."""
        self.accepted[order_id] = at
        self.index[order_id] = index
        self.on_accepted()

    def reject(self, error: str) -> None:
        """Record an order that could not be injected (the first few reasons are kept)."""
        self.rejected += 1
        if len(self.rejections) < 5:
            self.rejections.append(error)
        self.on_accepted()

    def end(self, order_id: str, ended: Ended) -> None:
        """Record the first terminal event of an order; later duplicates are ignored."""
        if order_id in self.ended:
            return
        self.ended[order_id] = ended
        waiter = self._waiters.get(order_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.on_ended()

    async def wait_ended(self, order_id: str, timeout: float) -> bool:
        """Wait until ``order_id`` ended (True) or ``timeout`` passed (False)."""
        if order_id in self.ended:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[order_id] = waiter
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.pop(order_id, None)

    @property
    def pending(self) -> int:
        """Accepted orders that have not ended yet."""
        return sum(1 for o in self.accepted if o not in self.ended)


async def watch_order_events(consumer: AIOKafkaConsumer, tracker: Tracker) -> None:
    """Record every bench order's terminal event (ours: the bench's customer id)."""
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            for r in records:
                try:
                    envelope, message = decode(r.value)
                except DecodeError:
                    continue  # poison on the topic is the workers' business, not ours
                if not isinstance(message, OrderEvent):
                    continue
                order = message.order
                if order.customer_id != tracker.customer_id or order.status not in TERMINAL:
                    continue
                tracker.end(
                    order.order_id,
                    Ended(envelope.occurred_at.timestamp(), order.status, order.failure_reason),
                )


# ------------------------------------------------------------------ injection


class Injector(Protocol):
    """Places order number ``index``; records the acceptance or rejection in the tracker."""

    async def place(self, index: int) -> str | None: ...


def _line(index: int, skus: Sequence[str]) -> dict[str, Any]:
    # Round-robin over the SKUs spreads the per-SKU work over their partitions.
    return {"sku": skus[index % len(skus)], "quantity": 1}


@dataclass
class KafkaInjector:
    """PlaceOrder envelopes produced straight onto orders.commands, keyed by order id."""

    producer: AIOKafkaProducer
    tracker: Tracker
    skus: Sequence[str]

    async def place(self, index: int) -> str | None:
        """Produce one PlaceOrder; accepted when the broker acknowledges it."""
        order_id = f"bench-{uuid.uuid4().hex}"
        command = PlaceOrder(
            order_id=order_id,
            customer_id=self.tracker.customer_id,
            items=(OrderLine(**_line(index, self.skus)),),
            payment_token="tok_visa",
            shipping_address=Address(**ADDRESS),
        )
        encoded = encode(command, key=order_id, correlation_id=order_id)
        try:
            ack = await self.producer.send(
                ORDERS_COMMANDS, encoded.value, key=encoded.key, headers=encoded.headers
            )
            await ack
        except Exception as exc:  # counted and reported; the run goes on
            self.tracker.reject(f"{type(exc).__name__}: {exc}")
            return None
        self.tracker.accept(order_id, index, time.time())
        return order_id


@dataclass
class HttpInjector:
    """``POST /orders`` on a keep-alive client, round-robin over the web view workers."""

    client: httpx.AsyncClient
    tracker: Tracker
    skus: Sequence[str]
    urls: Sequence[str]

    async def place(self, index: int) -> str | None:
        """POST one order; accepted when the 202 arrives."""
        body = {
            "customer_id": self.tracker.customer_id,
            "items": [_line(index, self.skus)],
            "payment_token": "tok_visa",
            "shipping_address": ADDRESS,
        }
        try:
            r = await self.client.post(f"{self.urls[index % len(self.urls)]}/orders", json=body)
        except httpx.HTTPError as exc:
            self.tracker.reject(f"{type(exc).__name__}: {exc}")
            return None
        at = time.time()
        if r.status_code != 202:
            self.tracker.reject(f"HTTP {r.status_code}: {r.text[:200]}")
            return None
        order_id = str(r.json()["order_id"])
        self.tracker.accept(order_id, index, at)
        return order_id


async def closed_loop(
    injector: Injector, tracker: Tracker, total: int, concurrency: int, order_timeout: float
) -> None:
    """``concurrency`` clients, each placing an order and waiting for its end, ``total`` in all."""
    indices = iter(range(total))

    async def client() -> None:
        # One shared iterator: next() has no await, so no two clients take one index.
        for index in indices:
            order_id = await injector.place(index)
            if order_id is not None:
                await tracker.wait_ended(order_id, order_timeout)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def open_loop(injector: Injector, total: int, rate: float) -> float:
    """Start order i at i/rate seconds whatever happens; returns the worst lateness (s)."""
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[str | None]] = set()
    started, worst = loop.time(), 0.0
    try:
        for index in range(total):
            due = started + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            worst = max(worst, loop.time() - due)
            task = asyncio.create_task(injector.place(index))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
    return worst


async def wait_all_ended(tracker: Tracker, timeout: float) -> None:
    """Wait until every accepted order ended, or until nothing ended for ``timeout`` s."""
    last_count, last_progress = len(tracker.ended), time.monotonic()
    while tracker.pending:
        if len(tracker.ended) != last_count:
            last_count, last_progress = len(tracker.ended), time.monotonic()
        if time.monotonic() - last_progress > timeout:
            return
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- system bits


async def stock_skus(client: httpx.AsyncClient, skus: Sequence[str], needed: int) -> None:
    """Give every SKU at least ``needed`` units and wait until the web view shows them."""
    restocks = max(1, math.ceil(needed / MAX_RESTOCK))
    for sku in skus:
        for i in range(restocks):
            r = await client.post(
                f"/inventory/{sku}/restock",
                json={"quantity": MAX_RESTOCK, "unit_price": 100},
                headers={"Idempotency-Key": f"{sku}-{i}"},
            )
            r.raise_for_status()
    deadline = time.monotonic() + 60
    for sku in skus:
        while True:
            r = await client.get(f"/inventory/{sku}")
            if r.status_code == 200 and r.json()["available"] >= needed:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"SKU {sku} not stocked after 60 s: {r.status_code} {r.text}")
            await asyncio.sleep(0.2)


async def partitions_of(bootstrap: str, topic: str) -> int | None:
    """How many partitions ``topic`` has, None if it does not exist."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
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
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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


def _embedded_environment(data_dir: str, workers: int, retention_s: float | None) -> None:
    """Point Settings (and the workers, which inherit it) at fresh ports and a fresh dir."""
    # Group ports base+0..5, +100 per extra worker; then the broker, its KRaft
    # controller (Apache Kafka takes the broker's port + 1) and Redis.
    span = (workers - 1) * 100 + len(GROUPS)
    base = free_port_block(span + 3)
    os.environ.update(
        {
            "ORDERSAGA_DATA_DIR": data_dir,
            "ORDERSAGA_WEB_PORT": str(base),
            "ORDERSAGA_EMBEDDED_KAFKA_PORT": str(base + span),
            "ORDERSAGA_EMBEDDED_REDIS_PORT": str(base + span + 2),
            "ORDERSAGA_SEED_CATALOG": "false",
        }
    )
    # Info logging of six workers costs CPU the bench should measure saga work with.
    os.environ.setdefault("ORDERSAGA_LOG_LEVEL", "warn")
    if retention_s is not None:
        os.environ["ORDERSAGA_RETENTION_S"] = str(retention_s)
    os.environ.pop("KAFKA_BROKER", None)
    os.environ.pop("REDIS_URL", None)


# ------------------------------------------------------------------------ run


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


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
    before = {name: read_cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    relay = await run_relay(
        bootstrap,
        messages=messages,
        partitions=partitions,
        fetch_max_wait_ms=fetch_wait_ms,
        on_progress=lambda n: progress.update(task, completed=n),
    )
    after = {name: read_cpu_s(pid) for name, pid in pids.items()}
    progress.update(task, rate=f"{relay.messages_per_s:.0f} msg/s", completed=relay.received)
    figures = {k: v for k, v in asdict(relay).items() if k != "latencies_s"}
    figures["latency_s"] = latency_stats(relay.latencies_s)
    # The relay runs in the bench process: near 100% there means it limited the ceiling.
    figures["cpu_percent"] = cpu_percent(before, after, time.monotonic() - started)
    return figures


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
        "rejections": tracker.rejections,
        "window": (
            {**asdict(window), "seconds": window.seconds, "rate": window.rate} if window else None
        ),
        "sagas_per_s": window.rate if window else None,
        "accepted_per_s": rate_between([tracker.accepted[o] for o in measured]),
        "latency_s": latency_stats(latencies),
    }


async def run_bench(cfg: BenchConfig, console: Console | None = None) -> tuple[int, dict[str, Any]]:
    """Run the whole benchmark; returns the exit status and the result written as JSON."""
    console = console or Console(stderr=True)
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main_task is not None:
        # SIGTERM ends the run like Ctrl-C does: through the finally blocks below.
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    started_at = datetime.now(UTC)
    out = cfg.out or default_out_path(started_at)
    result: dict[str, Any] = {
        "started_at": started_at.isoformat(),
        "machine": machine_info(),
        "config": {**asdict(cfg), "out": str(out)},
        "notes": [],
    }
    notes: list[str] = result["notes"]
    runtime: Runtime | None = None
    supervisor: asyncio.Future[None] | None = None
    data_dir: str | None = None
    keep_logs = True  # unless the run ends well or is interrupted: then they tell nothing
    try:
        with _progress(console) as progress:
            if cfg.attach:
                settings = Settings()
                if not settings.kafka_broker:
                    raise SystemExit("--attach needs KAFKA_BROKER (and ORDERSAGA_WEB_PORT)")
                bootstrap = settings.bootstrap_servers
                fetch_wait = cfg.fetch_wait_ms or int(
                    os.environ.get("ORDERSAGA_FETCH_MAX_WAIT_MS", DEFAULT_FETCH_WAIT_MS)
                )
            else:
                data_dir = tempfile.mkdtemp(prefix="ordersaga-bench-")
                _embedded_environment(data_dir, cfg.workers, cfg.retention_s)
                settings = Settings()
                starting = progress.add_task(
                    f"starting {cfg.workers} worker(s) per group", total=None, rate=""
                )
                runtime = Runtime(settings, workers_per_group=cfg.workers, quiet=True)
                await runtime.start()
                supervisor = asyncio.ensure_future(runtime.supervise())
                progress.update(starting, total=1, completed=1)
                bootstrap = runtime.env["KAFKA_BROKER"]
                fetch_wait = cfg.fetch_wait_ms or int(
                    runtime.env.get("ORDERSAGA_FETCH_MAX_WAIT_MS", DEFAULT_FETCH_WAIT_MS)
                )
            partitions = await partitions_of(bootstrap, ORDERS_COMMANDS) or settings.partitions
            result["config"].update(
                partitions=partitions,
                fetch_wait_ms=fetch_wait,
                bootstrap=bootstrap,
                web=f"http://{settings.web_host}:{settings.web_port}",
                # Every web view worker of ours takes orders (the others are on +100 each).
                web_workers=[
                    f"http://{settings.web_host}:{settings.web_port + k * 100}"
                    for k in range(1 if cfg.attach else cfg.workers)
                ],
            )
            run_id = uuid.uuid4().hex[:8]
            skus = [f"bench-{run_id}-{i}" for i in range(cfg.skus)]
            limits = httpx.Limits(
                max_connections=max(cfg.concurrency, 64), max_keepalive_connections=None
            )
            async with httpx.AsyncClient(
                base_url=result["config"]["web"],
                timeout=httpx.Timeout(30.0, pool=None),
                limits=limits,
            ) as client:
                stocking = progress.add_task(f"stocking {cfg.skus} SKUs", total=None, rate="")
                await stock_skus(client, skus, needed=math.ceil(cfg.total / cfg.skus) + 1)
                progress.update(stocking, total=1, completed=1)

                result["relay"] = (
                    await relay_phase(
                        bootstrap,
                        cfg.relay_messages or cfg.orders,
                        partitions,
                        fetch_wait,
                        processes(runtime),
                        progress,
                    )
                    if cfg.relay
                    else None
                )
                notes.extend(f"relay: {n}" for n in (result["relay"] or {}).get("notes", []))

                tracker = Tracker(customer_id=f"bench-{run_id}")
                accepted_task = progress.add_task("orders placed", total=cfg.total, rate="")
                ended_task = progress.add_task("orders ended", total=cfg.total, rate="")
                tracker.on_accepted = lambda: progress.advance(accepted_task)
                tracker.on_ended = lambda: progress.advance(ended_task)
                events = await consumer_at_end(bootstrap, ORDERS_EVENTS, fetch_wait)
                watcher = asyncio.create_task(watch_order_events(events, tracker))
                # CPU per process over the saga phase shows which one is the bottleneck.
                pids = processes(runtime)
                cpu_before = {name: read_cpu_s(pid) for name, pid in pids.items()}
                phase_started = time.monotonic()
                producer: AIOKafkaProducer | None = None
                monitor = (
                    Monitor(runtime, tracker, cfg.total, cfg.join_at)
                    if runtime is not None
                    else None
                )
                monitoring = asyncio.create_task(monitor.run()) if monitor else None
                try:
                    injector: Injector
                    if cfg.via == "kafka":
                        # acks=all, as the web view's Faust producer (producer_acks=-1).
                        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
                        await producer.start()
                        injector = KafkaInjector(producer, tracker, skus)
                    else:
                        injector = HttpInjector(
                            client, tracker, skus, result["config"]["web_workers"]
                        )
                    if cfg.rate:
                        late = await open_loop(injector, cfg.total, cfg.rate)
                        result["saga_schedule_worst_lateness_s"] = late
                    else:
                        await closed_loop(
                            injector, tracker, cfg.total, cfg.concurrency, cfg.order_timeout_s
                        )
                    await wait_all_ended(tracker, cfg.timeout_s)
                    result["cpu_percent"] = cpu_percent(
                        cpu_before,
                        {name: read_cpu_s(pid) for name, pid in pids.items()},
                        time.monotonic() - phase_started,
                    )
                    if watcher.done() and watcher.exception() is not None:
                        raise RuntimeError(f"order-event consumer failed: {watcher.exception()!r}")
                finally:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                    if monitoring is not None:
                        monitoring.cancel()
                        await asyncio.gather(monitoring, return_exceptions=True)
                    with contextlib.suppress(Exception):
                        await events.stop()
                    if producer is not None:
                        with contextlib.suppress(Exception):
                            await producer.stop()
                saga = saga_figures(tracker, cfg.warmup)
                result["saga"] = saga
                if monitor is not None:
                    result["memory"] = rss_growth(monitor.samples, cfg.total)
                    if monitor.join:
                        join = monitor.join
                        result["join"] = {
                            **join,
                            "rates": rate_phases(
                                [e.at for e in tracker.ended.values()],
                                join["started_at"],
                                join.get("healthy_at", join["started_at"]),
                                # The workers' rebalance timeout (the embedded
                                # profile sets its own), plus a few seconds.
                                float(
                                    runtime.env.get(
                                        "ORDERSAGA_REBALANCE_TIMEOUT_S",
                                        settings.rebalance_timeout_s,
                                    )
                                    if runtime is not None
                                    else settings.rebalance_timeout_s
                                )
                                + 5,
                            ),
                        }
                        if "healthy_at" not in join:
                            notes.append("the joining workers were not healthy before the end")
                if saga["sagas_per_s"]:
                    progress.update(ended_task, rate=f"{saga['sagas_per_s']:.0f} sagas/s")
                if saga["warmup_not_completed"]:
                    notes.append(f"{saga['warmup_not_completed']} warm-up orders not COMPLETED")
                relay_rate = (result["relay"] or {}).get("messages_per_s")
                result["ratio"] = (
                    saga["sagas_per_s"] / relay_rate if relay_rate and saga["sagas_per_s"] else None
                )

            lagging = progress.add_task("consumer lag", total=None, rate="")
            at_end = await consumer_lag(bootstrap)
            settled, after = await settled_lag(bootstrap, cfg.settle_s)
            result["lag"] = {"at_end": at_end, "settled": settled, "settled_after_s": after}
            progress.update(lagging, total=1, completed=1)
            if any("error" in v for v in at_end.values()):
                notes.append("consumer lag n/a for some groups: see lag.at_end[*].error")

            if cfg.audit or cfg.join_at is not None:
                auditing = progress.add_task("audit", total=None, rate="")
                result["audit"] = await audit_figures(
                    bootstrap, (runtime.env if runtime else os.environ).get("REDIS_URL", "")
                )
                progress.update(auditing, total=1, completed=1)
            if runtime is None:
                result["rss"] = {"note": "n/a with --attach (the workers are not ours to inspect)"}
            else:
                result["rss"] = {
                    "workers_kb": {
                        w.name: read_peak_rss_kb(w.process.pid) if w.process else None
                        for w in runtime.workers
                    },
                    "servers_kb": {
                        name: read_peak_rss_kb(p.pid)
                        for name, p in zip(("broker", "redis"), runtime.servers, strict=False)
                    },
                }
                restarts = sum(w.restarts for w in runtime.workers)
                if restarts:
                    notes.append(f"{restarts} worker restart(s) during the run: figures suspect")
        result["machine"]["loadavg_at_end"] = (
            list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        )
        result["finished_at"] = datetime.now(UTC).isoformat()
        result["out"] = str(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        saga = result["saga"]
        clean = (
            saga["not_completed"] == 0
            and saga["unfinished"] == 0
            and saga["rejected"] == 0
            and (result.get("audit") or {}).get("ok", True)
        )
        keep_logs = not clean
        return (0 if clean else 1), result
    except (asyncio.CancelledError, KeyboardInterrupt):
        keep_logs = False
        raise
    finally:
        if supervisor is not None:
            supervisor.cancel()
        if runtime is not None:
            console.print("stopping the embedded system ...")
            await runtime.stop()
        if main_task is not None:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signal.SIGTERM)
        if data_dir is not None:
            if keep_logs:
                console.print(f"worker logs kept in {data_dir}/logs")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)


def main(cfg: BenchConfig) -> int:
    """Synchronous entry point for the CLI: run, print the summary, return the exit status."""
    try:
        status, result = asyncio.run(run_bench(cfg))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # CancelledError: SIGTERM cancelled the run (see run_bench).
        print("bench interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except (httpx.HTTPError, KafkaError, OSError, TimeoutError) as exc:
        # The system or broker is not there or not answering: say so, no traceback.
        print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(format_summary(result))
    return status
