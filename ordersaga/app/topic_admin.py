"""Topic administration with plain aiokafka."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ordersaga.app.topics import ALL_DLQ_TOPICS, ALL_TOPICS, CHANGELOG_TOPICS, SERVICES


async def list_topics(bootstrap: str) -> list[str]:
    """Every topic the broker knows, sorted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def _topic_configs(topic: str, replication: int) -> dict[str, str]:
    configs: dict[str, str] = {}
    if topic in CHANGELOG_TOPICS or topic == SERVICES:
        # As Faust makes changelogs: each key's last value is kept.
        configs["cleanup.policy"] = "compact"
    if replication >= 3:
        # With acks=all a write then survives any one broker's loss.
        configs["min.insync.replicas"] = "2"
    return configs


async def ensure_topics(
    bootstrap: str, partitions: int, attempts: int = 30, replication: int = 1
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
                            topic_configs=_topic_configs(t, replication),
                        )
                        for t in missing
                    ]
                )
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        await admin.close()
