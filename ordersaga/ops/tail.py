"""Console tools for topics: read one to its end, or follow it (key, headers, value)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from ordersaga.adapters.kafka_clients import new_consumer
from ordersaga.shell.patches import read_unreadable_records
from ordersaga.shell.printable import printable
from ordersaga.shell.unreadable import UNREADABLE_HEADER, unreadable_reason


def render(
    key: bytes | None,
    headers: list[tuple[str, bytes | None]],
    value: bytes | None,
    partition: int,
    offset: int,
) -> str:
    """One message as a console line: where, key, headers, then the value.

    Everything from the record is escaped (ordersaga.shell.printable): a producer's
    bytes never reach the terminal as control sequences.
    """
    unreadable = unreadable_reason(headers)
    hdrs = " ".join(f"{printable(k)}={printable(v)}" for k, v in headers if k != UNREADABLE_HEADER)
    try:
        text = printable(orjson.dumps(orjson.loads(value or b"")))
    except orjson.JSONDecodeError:
        text = printable(value or b"")
    k = printable(key) if key is not None else "-"
    line = f"p{partition}@{offset} key={k} [{hdrs}]\n  {text}"
    if unreadable is not None:
        line += f"\n  unreadable: {printable(unreadable)}"
    return line


async def records(
    bootstrap: str,
    topic: str,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    idle_timeout: float = 10.0,
) -> AsyncIterator[Any]:
    """The topic's records (no consumer group), to its end or, with ``follow``, forever.

    A record aiokafka cannot parse comes as one carrying the reason in its
    headers (ordersaga.shell.unreadable), as it does to the workers.
    """
    read_unreadable_records()
    consumer = new_consumer(bootstrap=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            return
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        end = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while True:
            batch = await consumer.getmany(timeout_ms=300)
            for batch_records in batch.values():
                for record in batch_records:
                    last_progress = loop.time()
                    yield record
            if follow:
                continue
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                return
            if loop.time() - last_progress > idle_timeout:
                return
    finally:
        await consumer.stop()


async def consumer_at_end(
    bootstrap: str, topic: str, fetch_max_wait_ms: int = 500
) -> AIOKafkaConsumer:
    """A group-less consumer on every partition of ``topic``, positioned at its end now.

    The end offsets are read and sought explicitly: ``seek_to_end`` resolves lazily
    on the first fetch and could skip messages produced in between. Waits up to
    10 s for the topic to appear in the broker's metadata.
    """
    consumer = new_consumer(
        bootstrap=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
    )
    try:
        await consumer.start()
        parts: set[int] = set()
        for _ in range(100):
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
            if parts:
                break
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {topic} has no partitions on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        for tp, offset in (await consumer.end_offsets(tps)).items():
            consumer.seek(tp, offset)
    except BaseException:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise
    return consumer


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its current end."""
    return [r async for r in records(bootstrap, topic)]


async def tail(
    bootstrap: str,
    topic: str,
    *,
    from_beginning: bool,
    follow: bool,
    limit: int | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Print a topic's messages; with ``follow``, keep waiting for new ones."""
    shown = 0
    async for r in records(bootstrap, topic, from_beginning=from_beginning, follow=follow):
        print(
            render(r.key, list(r.headers or ()), r.value, r.partition, r.offset),
            file=out,
            flush=True,
        )
        shown += 1
        if limit is not None and shown >= limit:
            break
    return shown


def run_tail(
    bootstrap: str, topic: str, from_beginning: bool, follow: bool, limit: int | None
) -> int:
    """Synchronous entry point for the CLI."""
    return asyncio.run(
        tail(bootstrap, topic, from_beginning=from_beginning, follow=follow, limit=limit)
    )
