"""Topic administration with plain aiokafka."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ordersaga.shell.topics import ALL_DLQ_TOPICS, ALL_TOPICS, CHANGELOG_TOPICS, SERVICES


async def list_topics(bootstrap: str) -> list[str]:
    """Every topic the broker knows, sorted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


# How often a compacted topic's active segment rolls, so the cleaner can compact it.
CHANGELOG_SEGMENT_MS = 60_000
# What a topic keeps when ensure_topics is not told (the Settings defaults).
DEFAULT_RETENTION_BYTES = 256 * 1024 * 1024
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000


def _topic_configs(
    topic: str,
    replication: int,
    retention_bytes: int = DEFAULT_RETENTION_BYTES,
    retention_ms: int = DEFAULT_RETENTION_MS,
) -> dict[str, str]:
    configs: dict[str, str] = {}
    if topic in CHANGELOG_TOPICS or topic == SERVICES:
        # As Faust makes changelogs: each key's last value is kept. Retention would
        # delete table state a restore needs; these are bounded by their keys instead
        # (tables forget finished orders, each value at most ORDERSAGA_MAX_RECORD_BYTES).
        configs["cleanup.policy"] = "compact"
        # The log cleaner never touches the active segment, which by default rolls
        # at 1 GiB or after 7 days: a restarted worker then replayed every write
        # ever made (tens of thousands after 10,000 orders, seconds of a stalled
        # step per SIGKILL in `make bench`'s kills phase). Rolled each minute, the
        # older segments compact to one record per key (or nothing, for a
        # forgotten key, once its tombstone's delete.retention.ms has passed).
        configs["segment.ms"] = str(CHANGELOG_SEGMENT_MS)
    else:
        # Bounded by size as well as by age: a flood of commands or dead letters
        # fills at most this per partition, then the oldest segments go.
        configs["retention.bytes"] = str(retention_bytes)
        configs["retention.ms"] = str(retention_ms)
        # Segments small enough that retention.bytes can act before a segment is full.
        configs["segment.bytes"] = str(max(1024 * 1024, min(retention_bytes // 4, 1 << 30)))
    if replication >= 3:
        # With acks=all a write then survives any one broker's loss.
        configs["min.insync.replicas"] = "2"
    return configs


async def ensure_topics(
    bootstrap: str,
    partitions: int,
    attempts: int = 30,
    replication: int = 1,
    retention_bytes: int = DEFAULT_RETENTION_BYTES,
    retention_ms: int = DEFAULT_RETENTION_MS,
) -> list[str]:
    """Create every ordersaga topic that does not exist yet; returns those created."""
    wanted = (*ALL_TOPICS, *ALL_DLQ_TOPICS, *CHANGELOG_TOPICS)
    for attempt in range(attempts):
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            break
        except KafkaError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            t,
                            num_partitions=partitions,
                            replication_factor=replication,
                            topic_configs=_topic_configs(
                                t, replication, retention_bytes, retention_ms
                            ),
                        )
                        for t in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await admin.close()
