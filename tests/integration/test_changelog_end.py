"""Table recovery finds a changelog's real end on both brokers (ordersaga.shell.changelog_end)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP

from ordersaga.shell.changelog_end import true_ends
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def produce_batches(bootstrap: str, topic: str, sizes: list[int]) -> None:
    """Write one record batch of each size to partition 0 of ``topic``, as a worker's fetch does."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for size in sizes:
            batch = producer.create_batch()
            for i in range(size):
                batch.append(key=f"k{i}".encode(), value=b"{}", timestamp=None)
            batch.close()
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def reported_and_true(bootstrap: str, sizes: list[int]) -> tuple[int, int]:
    topic = f"test.changelog-end.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    await produce_batches(bootstrap, topic, sizes)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        written, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
        reported = await consumer.end_offsets([written, empty])
    finally:
        await consumer.stop()
    # Keyed as Faust's recovery keys them.
    ends = await true_ends(
        bootstrap, {TP(tp.topic, tp.partition): end for tp, end in reported.items()}
    )
    assert ends[TP(topic, 1)] == 0
    return reported[written], ends[TP(topic, 0)]


def test_the_end_is_past_the_last_record_of_the_last_batch(system: System) -> None:
    sizes = [3, 1, 5]
    reported, end = asyncio.run(reported_and_true(system.bootstrap, sizes))
    print(f"{system.broker}: {sum(sizes)} records, high watermark reported {reported}")
    assert end == sum(sizes)
