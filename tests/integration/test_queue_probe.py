"""The queue probe against the real broker: a group's committed offset says what waits."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from ordersaga.adapters.queue_probe import SEND_SLACK_S, QueueProbe
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


async def _scenario(bootstrap: str) -> None:
    topic, group = f"probe-{uuid.uuid4().hex[:8]}", f"probe-group-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await (await producer.send(topic, b"{}", key=b"k")) for _ in range(3)]
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    committer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await committer.start()
    probe = QueueProbe(bootstrap)
    place = (group, topic, 0)
    try:
        # The group has finished the first record only: the second waits.
        committer.assign([tp])
        await committer.commit({tp: OffsetAndMetadata(1, "")})
        await probe.refresh({place})
        second_at = sent[1].timestamp / 1000
        assert probe.queued(place, sent_at=second_at)
        # A command sent well before the oldest waiting record was read already.
        assert not probe.queued(place, sent_at=second_at - SEND_SLACK_S - 5)
        # Everything finished: nothing waits.
        await committer.commit({tp: OffsetAndMetadata(3, "")})
        await probe.refresh({place})
        assert not probe.queued(place, sent_at=second_at)
        # A place it was not asked about is unknown, so not queued.
        assert not probe.queued((group, topic, 7), sent_at=second_at)
    finally:
        await probe.close()
        await committer.stop()


def test_the_probe_reads_what_a_group_has_not_finished(system: System) -> None:
    asyncio.run(asyncio.wait_for(_scenario(system.bootstrap), 60))
