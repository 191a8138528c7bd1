"""Whether a command still waits in its participant's queue: read from the broker.

A participant's group commits the offsets it has worked through. The record at
a partition's committed offset is the oldest one it has not finished; if that
record is no newer than a command sent at ``sent_at`` (plus a little slack for
the send itself), the command is still waiting there, behind a backlog. Nothing
extra is sent for this: no "started" acknowledgement per step, just offsets
and one record per partition, read once per scan and only when a step is late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ordersaga.adapters.kafka_clients import new_admin, new_consumer

log = logging.getLogger(__name__)

# A command's CreateTime is set when the shell hands it to the producer, shortly
# after the saga records ``sent_at``; records within this of it may be the command.
SEND_SLACK_S = 1.0
PROBE_TIMEOUT_S = 2.0

# (group id, topic, partition)
Place = tuple[str, str, int]


class QueueProbe:
    """Reads, per (group, topic, partition), the timestamp of the oldest unfinished record."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        # Milliseconds; None: the group has finished every record there.
        self._oldest: dict[Place, int | None] = {}

    async def refresh(self, places: set[Place]) -> None:
        """Read the places asked for; any place that cannot be read is left unknown."""
        self._oldest = {}
        if not places:
            return
        try:
            await asyncio.wait_for(self._read(places), PROBE_TIMEOUT_S)
        except Exception as exc:  # unknown is the old behaviour: the deadline counts
            log.warning("queue probe failed: %r", exc)
            await self.close()

    def queued(self, place: Place, sent_at: float) -> bool:
        """True when a command sent at ``sent_at`` to ``place`` is still waiting there."""
        if place not in self._oldest:
            return False
        oldest = self._oldest[place]
        return oldest is not None and oldest <= (sent_at + SEND_SLACK_S) * 1000

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = new_consumer(
                bootstrap=self._bootstrap,
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
                max_partition_fetch_bytes=64 * 1024,
            )
            admin = new_admin(self._bootstrap)
            self._consumer, self._admin = consumer, admin
            await consumer.start()
            await admin.start()
        return self._consumer, self._admin

    async def _read(self, places: set[Place]) -> None:
        consumer, admin = await self._clients()
        committed: dict[Place, int] = {}
        for group in sorted({g for g, _, _ in places}):
            tps = [TopicPartition(t, p) for g, t, p in places if g == group]
            # The partitions are named: Tansu drops an OffsetFetch for "all of them".
            offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            for tp, meta in offsets.items():
                committed[(group, tp.topic, tp.partition)] = max(meta.offset, 0)
        # Each command topic has one consuming group, so a partition is one place.
        tps = sorted({TopicPartition(t, p) for _, t, p in committed})
        ends = await consumer.end_offsets(tps)
        wanted: dict[TopicPartition, int] = {}
        for (group, topic, partition), offset in committed.items():
            tp = TopicPartition(topic, partition)
            if offset >= ends.get(tp, 0):
                self._oldest[(group, topic, partition)] = None
            else:
                wanted[tp] = offset
        timestamps = await self._timestamps_at(consumer, wanted)
        for group, topic, partition in committed:
            tp = TopicPartition(topic, partition)
            if tp in timestamps:
                self._oldest[(group, topic, partition)] = timestamps[tp]

    async def messages_held(self, topics: list[str], partitions: int) -> dict[str, int]:
        """How many messages each topic holds now (its end offsets less its beginnings)."""
        consumer, _ = await self._clients()
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        held = dict.fromkeys(topics, 0)
        for tp in tps:
            held[tp.topic] += max(0, ends.get(tp, 0) - starts.get(tp, 0))
        return held

    async def _timestamps_at(
        self, consumer: AIOKafkaConsumer, wanted: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """The timestamp of the first record at or after each offset wanted."""
        found: dict[TopicPartition, int] = {}
        if not wanted:
            return found
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        while len(found) < len(wanted):
            missing = [tp for tp in wanted if tp not in found]
            batch = await consumer.getmany(*missing, timeout_ms=500)
            if not batch:
                break
            for tp, records in batch.items():
                if records and tp not in found:
                    found[tp] = records[0].timestamp
        return found

    async def close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()
        self._consumer = self._admin = None
