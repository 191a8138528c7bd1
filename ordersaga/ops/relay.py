"""The ceiling of ``ordersaga bench``: a plain-aiokafka relay through the same broker.

A saga that completes is a chain of ``SAGA_HOPS`` messages, each consumed by an
agent that then produces the next one. The relay does the same chain with no
Faust, no tables, no decoding and no other work: topics ``relay.0 .. relay.H``
(as many partitions as the saga topics), one consumer per hop reading
``relay.i`` (manual assignment of every partition, no consumer group) and
forwarding each message, same key and same value, with its own plain producer
to ``relay.i+1``; a sink reads ``relay.H``. Messages are as big as the saga's
own envelopes (the mean encoded size of the critical-path messages below).

``M`` messages are injected onto ``relay.0`` as fast as the producer takes
them. The relay rate is end to end: ``M / (last message out of the last hop -
first message injected)``. It is the honest figure for a flood: all of ``M``
is in the pipeline at once, so its length counts, and the hops share the CPU
with each other. (The rate out of the last hop alone, from the sink's first
fetch to its last, is kept as ``out_per_s``; it comes in a few big bursts, so
it is noisy unless ``M`` is large, and the two converge as ``M`` grows.) Each
relayed message makes the same number of consumed hops as a saga, so the rate
is the ceiling of sagas per second on this broker and this machine for a
client as light as plain aiokafka. It is a ceiling, not a model: a saga also
writes table changelogs, order events and stock events that are not on its
critical path, and the relay does none of that.

The whole relay runs in the bench process: on a small machine that one
process can itself be what limits the ceiling (its CPU use is the price of
13 consumers and producers in one Python interpreter).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ordersaga.adapters.kafka_clients import new_admin, new_producer
from ordersaga.ops.tail import consumer_at_end
from ordersaga.schemas.messages import (
    Address,
    ChargePayment,
    CustomerValidated,
    Message,
    OrderLine,
    PaymentCharged,
    PlaceOrder,
    PrepareShipment,
    PricedLine,
    ShipmentPrepared,
    SkuCommand,
    StockReserved,
    ValidateCustomer,
)
from ordersaga.shell.codec import Encoded, encode

#: Consumed messages, one after the other, on the critical path of a saga that
#: completes (one SKU per order, whose stock commands the orchestrator sends to
#: the SKU's partition itself; counted from agents/ and saga/):
#:
#:  1. PlaceOrder             orders.commands        -> orders (run_sagas)
#:  2. ValidateCustomer       customers.commands     -> customers (keep_customers)
#:  3. CustomerValidated      orders.replies         -> orders
#:  4. SkuCommand(reserve)    inventory.sku-commands -> inventory (change_stock)
#:  5. StockReserved          orders.replies         -> orders
#:  6. ChargePayment          payments.commands      -> payments
#:  7. PaymentCharged         orders.replies         -> orders
#:  8. PrepareShipment        shipping.commands      -> shipping
#:  9. ShipmentPrepared       orders.replies         -> orders, which writes OrderCompleted
#:
#: OrderCompleted on orders.events is what the bench waits for; it is produced by
#: the 9th hop, and the bench's own consumer reading it is the relay's sink. The
#: 9th hop also sends SkuCommand(commit) to inventory, which nobody awaits (an
#: unanswered step, ``saga.definition``): off the critical path. An order of
#: several SKUs takes two hops more per stock command (ReserveStock through the
#: gather on inventory.commands).
SAGA_HOPS = 9

RELAY_PREFIX = "relay."
# Records per fetch a hop forwards before awaiting its producer's acks: big
# enough to batch, small enough that a hop never holds much unacknowledged.
HOP_MAX_RECORDS = 500


def relay_topics(hops: int) -> list[str]:
    """``relay.0 .. relay.<hops>``: the injection topic, then one per hop."""
    return [f"{RELAY_PREFIX}{i}" for i in range(hops + 1)]


def critical_path_messages(order_id: str = "bench-0123456789abcdef") -> list[Message]:
    """One real message per hop of ``SAGA_HOPS``, as a completing saga sends them."""
    line = OrderLine(sku="bench-sku-0", quantity=1)
    priced = PricedLine(sku=line.sku, quantity=1, unit_price=100)
    address = Address(
        name="Bench Runner", line1="1 Throughput Way", city="London", postal_code="N1", country="GB"
    )
    return [
        PlaceOrder(
            order_id=order_id,
            customer_id="bench-customer",
            items=(line,),
            payment_token="tok_visa",
            shipping_address=address,
        ),
        ValidateCustomer(order_id=order_id, customer_id="bench-customer"),
        CustomerValidated(order_id=order_id, customer_id="bench-customer"),
        SkuCommand(
            op="reserve", order_id=order_id, sku=line.sku, quantity=1, reply_to="orchestrator"
        ),
        StockReserved(order_id=order_id, lines=(priced,), total=100),
        ChargePayment(
            order_id=order_id, customer_id="bench-customer", payment_token="tok_visa", amount=100
        ),
        PaymentCharged(order_id=order_id, amount=100, charge_id=f"ch_{uuid.uuid4().hex[:24]}"),
        PrepareShipment(order_id=order_id, address=address, items=(line,)),
        ShipmentPrepared(
            order_id=order_id, shipment_id=f"shp_{uuid.uuid4().hex[:24]}", carrier="bench-post"
        ),
    ]


def encode_like_a_saga(message: Message, order_id: str) -> Encoded:
    """Encode as the agents do: causation and event ids of the same shape as theirs."""
    return encode(
        message,
        key=order_id,
        correlation_id=order_id,
        causation_id=uuid.uuid4().hex,
        event_id=f"{order_id}:3:1:0:{message.TYPE}",
    )


def typical_envelope_bytes() -> int:
    """Mean size in bytes of the encoded critical-path envelopes (value only)."""
    order_id = "bench-" + uuid.uuid4().hex
    sizes = [len(encode_like_a_saga(m, order_id).value) for m in critical_path_messages(order_id)]
    return round(sum(sizes) / len(sizes))


def relay_payload(size: int, order_id: str) -> Encoded:
    """A real envelope (the smallest of the critical path) padded with JSON spaces to ``size``.

    The smallest, so that padding reaches the mean size; never cut, so it stays
    a valid envelope if ``size`` is smaller still.
    """
    encoded = min(
        (encode_like_a_saga(m, order_id) for m in critical_path_messages(order_id)),
        key=lambda e: len(e.value),
    )
    value = encoded.value + b" " * max(0, size - len(encoded.value))
    return Encoded(key=encoded.key, value=value, headers=encoded.headers)


@dataclass
class RelayResult:
    """What one relay run measured (times are wall-clock seconds)."""

    hops: int
    partitions: int
    message_bytes: int
    messages: int
    received: int = 0
    inject_s: float = 0.0
    # From the first message injected to the last out, and the rate over it.
    seconds: float = 0.0
    messages_per_s: float = 0.0
    # Out of the last hop only: from the sink's first fetch to its last.
    out_s: float = 0.0
    out_per_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # End-to-end latency of each message under flood (the record's CreateTime is
    # forwarded unchanged): mostly queueing, kept for the record only.
    latencies_s: list[float] = field(default_factory=list, repr=False)


async def ensure_relay_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    admin = new_admin(bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _hop(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, out_topic: str) -> None:
    """Forward everything read to ``out_topic``: same key, value, headers and timestamp."""
    while True:
        batch = await consumer.getmany(timeout_ms=200, max_records=HOP_MAX_RECORDS)
        acks = []
        for records in batch.values():
            for r in records:
                acks.append(
                    await producer.send(
                        out_topic,
                        r.value,
                        key=r.key,
                        headers=list(r.headers or ()),
                        timestamp_ms=r.timestamp,
                    )
                )
        # Awaited per batch, as a Faust worker flushes before it commits.
        if acks:
            await asyncio.gather(*acks)


class _Pipeline:
    """The relay's topology: ``relay.0 .. relay.H``, a forwarding task per hop, a sink.

    Every hop's consumer and producer use the given fetch wait and linger, as the
    workers' own do, so the ceiling is that of these client settings too.
    """

    def __init__(
        self, bootstrap: str, hops: int, partitions: int, fetch_max_wait_ms: int, linger_ms: float
    ) -> None:
        self.bootstrap = bootstrap
        self.hops = hops
        self.partitions = partitions
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.linger_ms = linger_ms
        self.topics = relay_topics(hops)
        self.consumers: list[AIOKafkaConsumer] = []
        self.producers: list[AIOKafkaProducer] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.notes: list[str] = []

    async def start(self) -> None:
        await ensure_relay_topics(self.bootstrap, self.topics, self.partitions)
        for topic in self.topics:
            self.consumers.append(
                await consumer_at_end(self.bootstrap, topic, self.fetch_max_wait_ms)
            )
        actual = {len(c.assignment()) for c in self.consumers}
        if actual != {self.partitions}:
            self.notes.append(f"relay topics have {sorted(actual)} partitions (existing topics)")
        for _ in range(self.hops + 1):
            # acks=all, as the workers' producers (producer_acks=-1).
            producer = new_producer(self.bootstrap, acks="all", linger_ms=self.linger_ms)
            self.producers.append(producer)  # before start: a failed start is stopped too
            await producer.start()
        for i in range(self.hops):
            self.tasks.append(
                asyncio.create_task(
                    _hop(self.consumers[i], self.producers[i + 1], self.topics[i + 1])
                )
            )

    @property
    def sink(self) -> AIOKafkaConsumer:
        return self.consumers[self.hops]

    @property
    def injector(self) -> AIOKafkaProducer:
        return self.producers[0]

    def check(self) -> None:
        """Raise if a hop (or another task of the run) failed."""
        for t in self.tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise RuntimeError(f"relay failed: {t.exception()!r}")

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for c in self.consumers:
            with contextlib.suppress(Exception):
                await c.stop()
        for p in self.producers:
            with contextlib.suppress(Exception):
                await p.stop()


async def run_relay(
    bootstrap: str,
    *,
    messages: int,
    partitions: int,
    hops: int = SAGA_HOPS,
    fetch_max_wait_ms: int = 20,
    linger_ms: float = 0.0,
    idle_timeout_s: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
) -> RelayResult:
    """Flood ``messages`` messages through ``hops`` hops; the result holds the rate.

    ``on_progress(n)`` is called with the number of messages out of the last hop.
    The run ends when all are out or nothing arrived for ``idle_timeout_s``; a
    shortfall is reported in ``received`` and ``error``, not raised.
    """
    size = typical_envelope_bytes()
    result = RelayResult(hops=hops, partitions=partitions, message_bytes=size, messages=messages)
    pipeline = _Pipeline(bootstrap, hops, partitions, fetch_max_wait_ms, linger_ms)
    try:
        await pipeline.start()
        result.notes.extend(pipeline.notes)
        sink, injector, topics = pipeline.sink, pipeline.injector, pipeline.topics
        run = uuid.uuid4().hex[:8]
        payloads = [relay_payload(size, f"relay-{run}-{i}") for i in range(messages)]

        async def inject() -> None:
            acks = []
            for p in payloads:
                acks.append(
                    await injector.send(topics[0], p.value, key=p.key, headers=list(p.headers))
                )
            await asyncio.gather(*acks)
            result.inject_s = time.time() - started

        started = time.time()
        pipeline.tasks.append(asyncio.create_task(inject()))
        seen: set[bytes] = set()
        latencies: list[float] = []
        first_out: float | None = None
        first_batch = 0
        last_out = time.time()
        while len(seen) < messages:
            batch = await sink.getmany(timeout_ms=200)
            now = time.time()
            for records in batch.values():
                for r in records:
                    if r.key is not None and r.key not in seen:
                        seen.add(r.key)
                        last_out = now
                        if first_out is None:
                            first_out = now
                        if first_out == now:
                            first_batch += 1
                        latencies.append(max(0.0, now - r.timestamp / 1000))
            if on_progress is not None:
                on_progress(len(seen))
            pipeline.check()
            if now - last_out > idle_timeout_s:
                result.error = f"only {len(seen)} of {messages} out after {idle_timeout_s}s idle"
                break
        result.received = len(seen)
        result.seconds = max(last_out - started, 1e-9)
        result.messages_per_s = result.received / result.seconds
        if first_out is not None and last_out > first_out:
            # The first fetch's messages were out before the span starts: not counted.
            result.out_s = last_out - first_out
            result.out_per_s = (result.received - first_batch) / result.out_s
        result.latencies_s = latencies
        return result
    finally:
        await pipeline.stop()


@dataclass
class ChainResult:
    """What one closed-loop chain run measured (times are wall-clock seconds)."""

    hops: int
    partitions: int
    message_bytes: int
    in_flight: int
    chains: int
    completed: int = 0
    seconds: float = 0.0
    # Chains completed per second, from the first chain injected to the last out.
    chains_per_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # Injection to the last hop's output, per chain: the latency floor of a saga.
    latencies_s: list[float] = field(default_factory=list, repr=False)


async def run_chain_relay(
    bootstrap: str,
    *,
    chains: int,
    in_flight: int,
    partitions: int,
    hops: int = SAGA_HOPS,
    fetch_max_wait_ms: int = 20,
    linger_ms: float = 0.0,
    idle_timeout_s: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
) -> ChainResult:
    """Keep ``in_flight`` chains going through ``hops`` hops until ``chains`` are done.

    The closed-loop twin of the bench's saga load: a chain, like an order, is
    started only when one in flight has come out of its last hop, so the rate is
    the ceiling for sagas at that many in flight, with the same clients'
    settings, on this broker and this machine.
    """
    size = typical_envelope_bytes()
    result = ChainResult(
        hops=hops, partitions=partitions, message_bytes=size, in_flight=in_flight, chains=chains
    )
    pipeline = _Pipeline(bootstrap, hops, partitions, fetch_max_wait_ms, linger_ms)
    try:
        await pipeline.start()
        result.notes.extend(pipeline.notes)
        await drive_chains(
            pipeline.injector,
            pipeline.topics[0],
            pipeline.sink,
            result,
            check=pipeline.check,
            idle_timeout_s=idle_timeout_s,
            on_progress=on_progress,
        )
        return result
    finally:
        await pipeline.stop()


async def drive_chains(
    injector: AIOKafkaProducer,
    first_topic: str,
    sink: AIOKafkaConsumer,
    result: ChainResult,
    *,
    check: Callable[[], None] = lambda: None,
    idle_timeout_s: float = 30.0,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """The closed loop of ``result.chains`` chains, ``result.in_flight`` at a time, into ``result``.

    Whatever relays ``first_topic`` to what ``sink`` reads (these hops, or
    ``ordersaga.ops.faustchain``'s Faust apps), a chain starts when one ends.
    """
    chains, size = result.chains, result.message_bytes
    run = uuid.uuid4().hex[:8]
    started_at: dict[bytes, float] = {}

    async def start_chain(index: int) -> None:
        payload = relay_payload(size, f"chain-{run}-{index}")
        started_at[payload.key] = time.monotonic()
        await injector.send(
            first_topic, payload.value, key=payload.key, headers=list(payload.headers)
        )

    begun = time.monotonic()
    injected = 0
    for _ in range(min(result.in_flight, chains)):
        await start_chain(injected)
        injected += 1
    last_out = time.monotonic()
    while result.completed < chains:
        batch = await sink.getmany(timeout_ms=200)
        now = time.monotonic()
        for records in batch.values():
            for r in records:
                sent = started_at.pop(r.key, None) if r.key is not None else None
                if sent is None:
                    continue  # a duplicate, or a chain of another run
                result.completed += 1
                result.latencies_s.append(now - sent)
                last_out = now
                if injected < chains:
                    await start_chain(injected)
                    injected += 1
        if on_progress is not None:
            on_progress(result.completed)
        check()
        if now - last_out > idle_timeout_s:
            result.error = f"only {result.completed} of {chains} out after {idle_timeout_s}s idle"
            break
    result.seconds = max(last_out - begun, 1e-9)
    result.chains_per_s = result.completed / result.seconds


__all__ = [
    "SAGA_HOPS",
    "ChainResult",
    "RelayResult",
    "critical_path_messages",
    "drive_chains",
    "ensure_relay_topics",
    "relay_topics",
    "run_chain_relay",
    "run_relay",
    "typical_envelope_bytes",
]
