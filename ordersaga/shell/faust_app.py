"""The Faust app of one agent group, configured from settings: every Faust option in one place."""

from __future__ import annotations

import functools
import gc
from collections.abc import Sequence
from pathlib import Path

import faust
from aiokafka.partitioner import DefaultPartitioner, murmur2

from ordersaga.config.settings import Settings
from ordersaga.shell.groups import AgentGroup
from ordersaga.shell.patches import LeanMonitor, apply_process_patches


class RememberingPartitioner:
    """aiokafka's default partitioner (murmur2 of the key), remembering recent keys' hashes.

    aiokafka's murmur2 is pure Python, ~10 us a key; a node sends several messages
    per order with the order's id as key (2.6% of the orchestrator's CPU, issue 21).
    Same partitions as the default; the memory is bounded by the cache's size.
    """

    def __init__(self, remembered: int = 16_384) -> None:
        self._hash = functools.lru_cache(maxsize=remembered)(murmur2)
        self._keyless = DefaultPartitioner()

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: list[int]
    ) -> int:
        if key is None:
            return int(self._keyless(key, all_partitions, available))
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


# Young objects allocated between two collections of the youngest generation.
# CPython's 700 made a worker collect every few messages (a handled message
# allocates hundreds: pydantic models, envelopes, aiokafka records).
GC_GEN0_THRESHOLD = 20_000


def collect_less(app: faust.App) -> None:
    """Freeze what the worker built at start and collect the young generation less often.

    The imports and the app (Faust, aiokafka, pydantic's validators: hundreds of
    thousands of objects) live as long as the process; frozen, the collector never
    scans them again. Cyclic garbage is still collected, in larger, rarer rounds.
    """

    @app.task
    async def freeze_startup_objects() -> None:
        # A task runs only in a started worker, never in agent.test_context().
        gc.collect()
        gc.freeze()
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The Faust form of the Kafka security settings (None: a plaintext listener)."""
    context = settings.kafka_ssl_context()
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # the settings' validator saw to it
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def make_app(agent_group: AgentGroup, settings: Settings) -> faust.App:
    """The Faust app of one agent group, configured from ``settings``."""
    apply_process_patches(settings, off_critical_path=agent_group.off_critical_path)
    # Faust creates its data dir without parents.
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        agent_group.app_id,
        broker=settings.broker_url,
        broker_credentials=broker_credentials(settings),
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        # Nothing here runs on the leader only; the leader topic would be one more
        # topic each worker declares at start.
        topic_disable_leader=True,
        key_serializer="raw",
        value_serializer="raw",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 4),
        consumer_auto_offset_reset="earliest",
        # The check compares RocksDB's persisted offsets with the broker's high
        # watermark. With the memory store it only compares an offset this process
        # read with a high watermark the embedded broker can report late, and then
        # crashes recovery for good (seen in the chaos test: 741 > 740).
        recovery_consistency_check=False,
        broker_commit_interval=settings.commit_interval_s,
        producer_acks=-1,
        producer_partitioner=RememberingPartitioner(),
        producer_linger=settings.producer_linger_ms / 1000,
        table_standby_replicas=settings.table_standby_replicas,
        web_enabled=True,
        # Faust's own pages show table contents (payment data, holds) and routing
        # internals to anyone who can reach the port: none of them is served.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=agent_group.web_port(settings.web_port),
        datadir=f"{settings.data_dir}/{agent_group.name}",
        logging_config=None,
        Monitor=LeanMonitor,
    )
    collect_less(app)
    return app
