"""The bench's load: its orders placed over Kafka or HTTP, closed or open loop, and their ends.

The tracker is where acceptance and end times are recorded; every figure of the
result is computed from it (``ordersaga.ops.bench.stats``).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ordersaga.ops.client import retry_after_s
from ordersaga.schemas.messages import Address, OrderEvent, OrderLine, PlaceOrder
from ordersaga.schemas.status import TERMINAL
from ordersaga.shell.codec import DecodeError, decode, encode
from ordersaga.shell.topics import ORDERS_COMMANDS

ADDRESS = {
    "name": "Bench Runner",
    "line1": "1 Throughput Way",
    "city": "London",
    "postal_code": "N1",
    "country": "GB",
}
# The web view takes at most this much stock per restock request.
MAX_RESTOCK = 1_000_000


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
    # 429 answers: orders the web view refused because enough were in flight.
    refused: int = 0
    # Over HTTP: how long each POST took to be answered (or to fail), and its status.
    post_s: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
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
    """``POST /orders`` on a keep-alive session, round-robin over the web view workers.

    aiohttp's client, not httpx's: httpcore's pool rescans every queued request
    whenever a connection frees, so an open loop that outran the server spent its
    own CPU on the queue and measured itself: in a kills phase the web view
    answered every POST within 0.25 s of receiving it while the bench counted a
    p50 of 1.2 s and 515 over 3 s (issue 21, BENCHMARKS.md ninth steps).
    """

    session: aiohttp.ClientSession
    tracker: Tracker
    skus: Sequence[str]
    urls: Sequence[str]
    # A closed loop retries a refused order after Retry-After, as a client should;
    # an open loop counts it refused and goes on (what it offers is fixed).
    retry_refused: bool = True

    async def place(self, index: int) -> str | None:
        """POST one order; accepted when the 202 arrives."""
        body = {
            "customer_id": self.tracker.customer_id,
            "items": [_line(index, self.skus)],
            "payment_token": "tok_visa",
            "shipping_address": ADDRESS,
        }
        statuses = self.tracker.statuses
        while True:
            posted = time.monotonic()
            try:
                url = f"{self.urls[index % len(self.urls)]}/orders"
                async with self.session.post(url, json=body) as r:
                    answer = await r.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.tracker.post_s.append(time.monotonic() - posted)
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                self.tracker.reject(f"{type(exc).__name__}: {exc}")
                return None
            self.tracker.post_s.append(time.monotonic() - posted)
            # A refusal by the limit that refused it: the system's, or this client's share.
            told = f"429 {_error_of(answer)}" if r.status == 429 else str(r.status)
            statuses[told] = statuses.get(told, 0) + 1
            if r.status != 429:
                break
            self.tracker.refused += 1
            if not self.retry_refused:
                return None
            await asyncio.sleep(retry_after_s(r))
        at = time.time()
        if r.status != 202:
            self.tracker.reject(f"HTTP {r.status}: {answer[:200].decode('utf-8', 'replace')}")
            return None
        order_id = str(orjson.loads(answer)["order_id"])
        self.tracker.accept(order_id, index, at)
        return order_id


def _error_of(answer: bytes) -> str:
    """The ``error`` code of an error answer's JSON, or ``?``."""
    try:
        return str(orjson.loads(answer).get("error", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        return "?"


def order_session(in_flight: int, timeout_s: float = 30.0) -> aiohttp.ClientSession:
    """The session an ``HttpInjector`` places orders on.

    At least 64 connections, as the bench's shared client, whatever the closed
    loop keeps in flight: an open loop may have more POSTs out at once.
    """
    connections = max(in_flight, 64)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )


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


# ---------------------------------------------------------------------- stock


async def register_customers(client: httpx.AsyncClient, customer_ids: Sequence[str]) -> None:
    """Register the bench's customers: an unknown customer's orders fail, by design."""
    for customer_id in customer_ids:
        r = await client.post(
            "/customers",
            json={
                "customer_id": customer_id,
                "name": "Bench Runner",
                "email": f"{customer_id}@bench.example.com",
            },
        )
        r.raise_for_status()


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
