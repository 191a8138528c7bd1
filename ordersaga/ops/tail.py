"""Console tools for topics: list them and follow one (key, headers, value)."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


def render(key: bytes | None, headers: list[tuple[str, bytes]], value: bytes | None,
           partition: int, offset: int) -> str:
    """One message as a console line: where, key, headers, then the value."""
    hdrs = " ".join(f"{k}={v.decode(errors='replace')}" for k, v in headers)
    text = (value or b"").decode(errors="replace")
    try:
        text = orjson.dumps(orjson.loads(value or b"")).decode()
    except orjson.JSONDecodeError:
        pass
    k = key.decode(errors="replace") if key is not None else "-"
    return f"p{partition}@{offset} key={k} [{hdrs}]\n  {text}"


async def tail(bootstrap: str, topic: str, *, from_beginning: bool, follow: bool,
               limit: int | None = None, out: TextIO = sys.stdout) -> int:
    """Print a topic's messages; with ``follow``, keep waiting for new ones."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    shown = 0
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            print(f"no topic {topic}", file=sys.stderr)
            return 0
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    print(render(r.key, list(r.headers or ()), r.value, r.partition, r.offset),
                          file=out, flush=True)
                    shown += 1
                    if limit is not None and shown >= limit:
                        return shown
            if not follow and all(await _at_end(consumer, tp, end[tp]) for tp in tps):
                return shown
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    return await consumer.position(tp) >= end


def run_tail(bootstrap: str, topic: str, from_beginning: bool, follow: bool,
             limit: int | None) -> int:
    """Synchronous entry point for the CLI."""
    return asyncio.run(tail(bootstrap, topic, from_beginning=from_beginning, follow=follow,
                            limit=limit))
