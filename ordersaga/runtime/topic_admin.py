"""Topic administration with plain aiokafka: create what is declared, report what drifted."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ordersaga.adapters.kafka_clients import new_admin
from ordersaga.config.kafka_security import KafkaSecuritySettings
from ordersaga.shell.topics import ALL_DLQ_TOPICS, ALL_TOPICS, CHANGELOG_TOPICS, SERVICES


async def list_topics(bootstrap: str) -> list[str]:
    """Every topic the broker knows, sorted."""
    admin = new_admin(bootstrap)
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
    security: KafkaSecuritySettings | None = None,
) -> list[str]:
    """Create every ordersaga topic that does not exist yet; returns those created.

    ``security`` says how to log in (default: the process's settings).
    """
    wanted = (*ALL_TOPICS, *ALL_DLQ_TOPICS, *CHANGELOG_TOPICS)
    for attempt in range(attempts):
        try:
            admin = new_admin(bootstrap, settings=security)
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


@dataclass(frozen=True)
class TopicShape:
    """What a topic is: partitions, replicas per partition, and the configs that matter."""

    partitions: int
    replication: int
    configs: Mapping[str, str] = field(default_factory=dict)


def declared_topics(
    partitions: int,
    replication: int = 1,
    retention_bytes: int = DEFAULT_RETENTION_BYTES,
    retention_ms: int = DEFAULT_RETENTION_MS,
) -> dict[str, TopicShape]:
    """Every ordersaga topic as ``ensure_topics`` creates it."""
    return {
        topic: TopicShape(
            partitions,
            replication,
            _topic_configs(topic, replication, retention_bytes, retention_ms),
        )
        for topic in (*ALL_TOPICS, *ALL_DLQ_TOPICS, *CHANGELOG_TOPICS)
    }


def topic_drift(declared: Mapping[str, TopicShape], found: Mapping[str, TopicShape]) -> list[str]:
    """One line per way a found topic differs from its declaration (none: no drift).

    Only declared topics and declared configs are compared: the cluster may hold
    other applications' topics, and a config left at the broker's default is
    reported only if ordersaga declares a value for it. Fewer partitions than
    declared is drift (a group cannot spread over partitions that are not
    there, and a changelog must match its source); more is drift too (keys
    would map to other partitions than the data already written).
    """
    lines: list[str] = []
    for name, want in sorted(declared.items()):
        have = found.get(name)
        if have is None:
            lines.append(f"{name}: missing")
            continue
        if have.partitions != want.partitions:
            lines.append(f"{name}: {have.partitions} partitions, declared {want.partitions}")
        if have.replication != want.replication:
            lines.append(
                f"{name}: replication factor {have.replication}, declared {want.replication}"
            )
        for key, value in sorted(want.configs.items()):
            actual = have.configs.get(key)
            if actual != value:
                lines.append(f"{name}: {key}={actual}, declared {value}")
    return lines


def _config_entries(response: Any) -> dict[str, dict[str, str]]:
    """Topic -> {config: value} from DescribeConfigs responses (tuples, any version)."""
    out: dict[str, dict[str, str]] = {}
    for resource in response.resources:
        # (error_code, error_message, resource_type, resource_name, config_entries)
        error_code, _, _, name, entries = resource[:5]
        if error_code:
            continue
        out[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
    return out


async def describe_topics(bootstrap: str, names: list[str]) -> dict[str, TopicShape]:
    """The shape of each of ``names`` that exists on the broker."""
    admin = new_admin(bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [n for n in names if n in existing]
        if not present:
            return {}
        metadata = {t["topic"]: t for t in await admin.describe_topics(present)}
        configs: dict[str, dict[str, str]] = {}
        for response in await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
        ):
            configs.update(_config_entries(response))
        shapes: dict[str, TopicShape] = {}
        for name in present:
            parts = metadata.get(name, {}).get("partitions") or []
            replicas = min((len(p.get("replicas") or ()) for p in parts), default=0)
            shapes[name] = TopicShape(len(parts), replicas, configs.get(name, {}))
        return shapes
    finally:
        await admin.close()


async def check_topics(bootstrap: str, declared: Mapping[str, TopicShape]) -> list[str]:
    """How the broker's ordersaga topics differ from ``declared`` (empty: they do not)."""
    return topic_drift(declared, await describe_topics(bootstrap, sorted(declared)))
