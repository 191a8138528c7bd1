"""The broker section: where Kafka is, how topics are laid out, how workers poll it."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG, URL_WITH_CREDENTIALS

# What each broker needs its workers to run with, unless the user set it. Tansu
# answers a fetch only when its wait is over and a join only when the rebalance
# timeout is, so its workers poll every 20 ms and rebalance within seconds;
# Apache Kafka (started or external) keeps the defaults: the normal long poll.
BROKER_PROFILES: Final[dict[str, dict[str, Any]]] = {
    "tansu": {
        "rebalance_timeout_s": 3.0,
        "session_timeout_s": 6.0,
        "fetch_max_wait_ms": 20,
        # Tansu ignores the minimum and waits the whole wait: as for every group.
        "off_path_fetch_max_wait_ms": 20,
        "off_path_fetch_min_bytes": 1,
    },
    "kafka": {},
    "external": {},
}


class BrokerSettings(BaseSettings):
    """Kafka: its address, the broker `ordersaga run` starts, topics and consumer timing."""

    model_config = SECTION_CONFIG

    # Also the conventional KAFKA_BROKER, unprefixed. Unset: `ordersaga run`
    # starts a broker of its own (ORDERSAGA_BROKER picks which).
    kafka_broker: str | None = Field(
        default=None,
        validation_alias="KAFKA_BROKER",
        json_schema_extra=URL_WITH_CREDENTIALS,
        description="Bootstrap servers, host:port[,host:port] (kafka:// allowed); "
        "unset: `ordersaga run` starts its own broker",
    )
    # `kafka`: Apache Kafka fetched with Maven, data kept under the data dir;
    # `tansu`: embedded, memory only; `auto`: Kafka where a JDK 17+ and Maven (or
    # the cached jars) are at hand, else Tansu.
    broker: Literal["auto", "kafka", "tansu"] = Field(
        default="auto",
        description="Broker `ordersaga run` starts when KAFKA_BROKER is unset: "
        "kafka, tansu or auto",
    )
    kafka_cache: str | None = Field(
        default=None,
        description="Directory of Apache Kafka's jars "
        "(unset: `~/.cache/ordersaga/kafka-<version>`)",
    )
    embedded_kafka_port: int = Field(
        default=9092, description="Preferred port of the broker `ordersaga run` starts"
    )
    partitions: int = Field(default=4, ge=1, description="Partitions of every topic")
    # `ordersaga run --brokers 3` sets 3, with min.insync.replicas 2.
    replication_factor: int = Field(
        default=1, ge=1, description="Replicas of every topic, changelogs included"
    )
    topic_retention_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes one partition of a non-compacted topic keeps before its "
        "oldest segment goes",
    )
    topic_retention_hours: int = Field(
        default=7 * 24, ge=1, description="Hours a non-compacted topic keeps a message"
    )
    # The embedded broker holds every join for this long, so its profile sets a
    # few seconds.
    rebalance_timeout_s: float = Field(
        default=60.0, description="Consumer-group rebalance timeout, seconds"
    )
    session_timeout_s: float = Field(default=10.0, description="Consumer session timeout, seconds")
    # Faust's 1500 suits Kafka, which answers as soon as data arrives; the embedded
    # broker waits it out, so its profile sets 20.
    fetch_max_wait_ms: int = Field(
        default=1500, ge=1, description="Longest a consumer fetch waits for data, milliseconds"
    )
    # Notifications are off the saga's critical path: its fetches wait for a batch
    # (up to this long) instead of answering each message, half its CPU per saga
    # (issue 21; BENCHMARKS.md). The web view is off the path too, but measured
    # worse with it (Redis and the broker did more), so it keeps the normal fetch.
    off_path_fetch_min_bytes: int = Field(
        default=65536,
        ge=1,
        le=16 * 1024 * 1024,
        description="Bytes a fetch of a group off the critical path (notifications) waits for",
    )
    # 500: at 100 an idle notifications worker still fetched ten times a second, and
    # under load each fetch waited out the 100 ms with a fraction of its bytes; a
    # customer's notification a few tenths of a second later is no worse (issue 21).
    off_path_fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Longest a fetch of a group off the critical path waits for "
        "those bytes, milliseconds",
    )
    # What was processed since the last commit is replayed after a crash: a
    # shorter interval leaves fewer duplicates to absorb (Faust's default is 2.8).
    commit_interval_s: float = Field(
        default=1.0, gt=0, description="How often consumer offsets are committed, seconds"
    )
    producer_linger_ms: float = Field(
        default=0.0, ge=0, description="How long a producer waits to batch messages, milliseconds"
    )
    # Kafka's static membership (KIP-345): a worker restarted under the same id takes
    # its partitions back at once, where a new member waits for the killed one's
    # session to expire first. `ordersaga run` gives each worker its own.
    consumer_instance_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Static group membership id of this worker's consumer "
        "(unique per live worker; unset: dynamic membership)",
    )
    # Faust's recovery can hang waiting for changelog events. A long replay that keeps
    # reading is fine however long it takes (ordersaga.shell.recovery_watch).
    recovery_limit_s: float = Field(
        default=90.0,
        gt=0,
        description="Table recovery reading nothing this long makes a worker exit to be "
        "replaced, seconds",
    )
    # A standby keeps a copy of another worker's table partitions up to date, so the
    # worker taking them over after a crash replays only the tail of the changelog.
    table_standby_replicas: int = Field(
        default=0,
        ge=0,
        le=3,
        description="Warm copies of each table partition kept by other workers of the group",
    )

    @property
    def broker_url(self) -> str:
        """The brokers as Faust wants them (kafka://host:port[;kafka://host:port])."""
        return ";".join(f"kafka://{host}" for host in self.bootstrap_servers.split(","))

    @property
    def bootstrap_servers(self) -> str:
        """The brokers as aiokafka wants them (host:port[,host:port])."""
        broker = self.kafka_broker or "127.0.0.1:9092"
        hosts = [h.strip().split("://", 1)[-1] for h in broker.replace(";", ",").split(",")]
        return ",".join(h for h in hosts if h)
