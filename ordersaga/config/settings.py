"""Every setting of ordersaga, read from the environment in this one place."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ordersaga.config.edge import EdgeSettings
from ordersaga.schemas.messages import MAX_FORGET_BATCH


class Settings(EdgeSettings):
    """Runtime configuration.

    Each field is read from the environment variable of the same name in upper
    case with the ``ORDERSAGA_`` prefix (``ORDERSAGA_PARTITIONS``), except the
    two connection URLs, which also answer to the conventional ``KAFKA_BROKER``
    and ``REDIS_URL``.
    """

    model_config = SettingsConfigDict(env_prefix="ORDERSAGA_", frozen=True, extra="ignore")

    kafka_broker: str | None = Field(
        default=None,
        validation_alias="KAFKA_BROKER",
        description="KAFKA_BROKER: bootstrap server, host:port or kafka://host:port. "
        "Unset means `ordersaga run` starts the embedded broker.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="REDIS_URL: redis://host:port/db. Unset means `ordersaga run` starts "
        "an embedded Redis-protocol server.",
    )
    broker: Literal["auto", "kafka", "tansu"] = Field(
        default="auto",
        description="ORDERSAGA_BROKER: the broker `ordersaga run` starts when KAFKA_BROKER "
        "is unset: `kafka` (Apache Kafka, fetched with Maven, data kept under the data "
        "dir), `tansu` (embedded, memory only), or `auto` (Apache Kafka where a JDK 17+ "
        "and Maven, or its cached jars, are at hand; else Tansu).",
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        description="ORDERSAGA_REPLICATION_FACTOR: replicas of every topic, changelogs "
        "included (`ordersaga run --brokers 3` sets 3, with min.insync.replicas 2).",
    )
    kafka_cache: str | None = Field(
        default=None,
        description="ORDERSAGA_KAFKA_CACHE: where Apache Kafka's jars are kept "
        "(default ~/.cache/ordersaga/kafka-<version>).",
    )
    embedded_kafka_port: int = Field(
        default=9092, description="ORDERSAGA_EMBEDDED_KAFKA_PORT: preferred embedded broker port."
    )
    embedded_redis_port: int = Field(
        default=6379, description="ORDERSAGA_EMBEDDED_REDIS_PORT: preferred embedded Redis port."
    )
    partitions: int = Field(default=4, ge=1, description="ORDERSAGA_PARTITIONS: per topic.")
    web_host: str = Field(default="127.0.0.1", description="ORDERSAGA_WEB_HOST")
    probes_host: str = Field(
        default="127.0.0.1",
        description="ORDERSAGA_PROBES_HOST: where the probes listen when "
        "ORDERSAGA_PROBES_PORT is set (an internal interface, say).",
    )
    probes_port: int | None = Field(
        default=None,
        gt=0,
        lt=65536,
        description="ORDERSAGA_PROBES_PORT: when set, every worker serves /health, /ready "
        "and /metrics on this port (plus its web port's offset from ORDERSAGA_WEB_PORT) "
        "instead of on its web port. Unset: on the web port.",
    )
    web_port: int = Field(
        default=6066,
        description="ORDERSAGA_WEB_PORT: the web view's port; the other agent groups "
        "serve /health and /metrics on the ports after it.",
    )
    rebalance_timeout_s: float = Field(
        default=60.0,
        description="ORDERSAGA_REBALANCE_TIMEOUT_S: consumer-group rebalance timeout. "
        "The embedded broker holds every join for this long, so it is set to a few "
        "seconds there.",
    )
    fetch_max_wait_ms: int = Field(
        default=1500,
        ge=1,
        description="ORDERSAGA_FETCH_MAX_WAIT_MS: longest a consumer fetch may wait for "
        "data. Faust's 1500 suits Kafka, which answers as soon as data arrives; the "
        "embedded broker waits it out, so the embedded profile sets 20.",
    )
    commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="ORDERSAGA_COMMIT_INTERVAL_S: how often consumer offsets are committed. "
        "Everything processed since the last commit is replayed after a crash, so a "
        "shorter interval means fewer duplicates to absorb (Faust's default is 2.8).",
    )
    recovery_limit_s: float = Field(
        default=90.0,
        gt=0,
        description="ORDERSAGA_RECOVERY_LIMIT_S: a worker whose table recovery runs longer "
        "exits to be replaced (Faust's recovery can hang waiting for changelog events).",
    )
    session_timeout_s: float = Field(default=10.0, description="ORDERSAGA_SESSION_TIMEOUT_S")
    step_timeout_s: float = Field(
        default=10.0, gt=0, description="ORDERSAGA_STEP_TIMEOUT_S: deadline of one saga step."
    )
    step_queue_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="ORDERSAGA_STEP_QUEUE_TIMEOUT_S: how long a step's command may wait in "
        "the queue of a participant working through its backlog before the wait counts "
        "as a timeout (a late step still queued moves its deadline instead).",
    )
    step_max_attempts: int = Field(
        default=3,
        ge=1,
        description="ORDERSAGA_STEP_MAX_ATTEMPTS: sends of a forward step before it "
        "counts as timed out.",
    )
    compensation_stuck_after: int = Field(
        default=10,
        ge=1,
        description="ORDERSAGA_COMPENSATION_STUCK_AFTER: attempts after which a "
        "compensation that keeps failing is reported COMPENSATION_STUCK (it is still retried).",
    )
    handler_max_attempts: int = Field(
        default=4,
        ge=1,
        description="ORDERSAGA_HANDLER_MAX_ATTEMPTS: tries of a handler that fails on a "
        "transient error before its message is dead-lettered.",
    )
    gateway_attempts: int = Field(
        default=3, ge=1, description="ORDERSAGA_GATEWAY_ATTEMPTS: tries of one gateway call."
    )
    gateway_faults: bool = Field(
        default=False,
        description="ORDERSAGA_GATEWAY_FAULTS: the simulated gateway's test tokens "
        "(tok_decline, tok_timeout, tok_gateway_error) decline, never answer or fail. Off, "
        "every token is charged: no client can inject a fault in production. `ordersaga "
        "run` turns it on for its demo (and says so first); the tests do too.",
    )
    gateway_journal_ttl_s: int = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="ORDERSAGA_GATEWAY_JOURNAL_TTL_S: how long the simulated gateway "
        "remembers an order's charge and refund (its idempotency window). Longer than any "
        "replay: a PlaceOrder is never run twice, and dead letters older than the "
        "retention are never replayed.",
    )
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="ORDERSAGA_BREAKER_FAILURE_THRESHOLD: gateway failures within "
        "ORDERSAGA_BREAKER_WINDOW_S that may open the payment circuit (its minimum volume).",
    )
    breaker_min_callers: int = Field(
        default=3,
        ge=1,
        description="ORDERSAGA_BREAKER_MIN_CALLERS: different customers those failures must "
        "come from, so one customer's orders never open the circuit for everyone; in "
        "half-open, trials of this many customers must fail before it opens again.",
    )
    breaker_failure_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="ORDERSAGA_BREAKER_FAILURE_RATIO: the share of the window's calls that "
        "must have failed.",
    )
    breaker_window_s: float = Field(
        default=60.0,
        gt=0,
        description="ORDERSAGA_BREAKER_WINDOW_S: how far back the breaker counts calls.",
    )
    breaker_cool_down_s: float = Field(
        default=30.0,
        gt=0,
        description="ORDERSAGA_BREAKER_COOL_DOWN_S: how long the circuit stays open "
        "before trial calls.",
    )
    deadline_scan_interval_s: float = Field(
        default=1.0, gt=0, description="ORDERSAGA_DEADLINE_SCAN_INTERVAL_S"
    )
    forget_scan_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="ORDERSAGA_FORGET_SCAN_INTERVAL_S: how often the orchestrator looks for "
        "orders past their retention.",
    )
    forget_resend_after_s: float = Field(
        default=60.0,
        gt=0,
        description="ORDERSAGA_FORGET_RESEND_AFTER_S: an order asked to be forgotten is not "
        "asked again before this (its ForgetOrders may still be on its way).",
    )
    forget_batch: int = Field(
        default=200,
        ge=1,
        le=MAX_FORGET_BATCH,
        description="ORDERSAGA_FORGET_BATCH: order ids per ForgetOrders, so each message "
        "stays a few kilobytes.",
    )
    producer_linger_ms: float = Field(
        default=0.0,
        ge=0,
        description="ORDERSAGA_PRODUCER_LINGER_MS: how long a worker's producer waits to "
        "batch messages before sending.",
    )
    event_loop: str = Field(
        default="uvloop",
        pattern="^(aio|uvloop)$",
        description="ORDERSAGA_EVENT_LOOP: the workers' event loop, uvloop or aio (asyncio's).",
    )
    retention_s: float = Field(
        default=120.0,
        gt=0,
        description="ORDERSAGA_RETENTION_S: how long after its end an order's state stays "
        "in the tables (sagas, holds, ledger, shipments, notifications) before it is "
        "forgotten. It must outlast any redelivery: a duplicate older than this would "
        "find no memory of the order.",
    )
    order_memory_s: float = Field(
        default=3600.0,
        gt=0,
        description="ORDERSAGA_ORDER_MEMORY_S: how long the orchestrator remembers that it "
        "ran a forgotten order (one small entry each), and the age past which a PlaceOrder "
        "is too old to start: no order id ever runs twice. At least the retention; an "
        "order not started within it (the orchestrator down longer) is not started at all.",
    )
    redrive_after_s: float = Field(
        default=2.0,
        gt=0,
        description="ORDERSAGA_REDRIVE_AFTER_S: an order accepted over HTTP whose first "
        "event is not projected after this long has its PlaceOrder sent again (then "
        "after waits that double), for as long as half the retention period allows.",
    )
    view_refresh_after_s: float = Field(
        default=10.0,
        gt=0,
        description="ORDERSAGA_VIEW_REFRESH_AFTER_S: an order view that is not terminal and "
        "has not changed for this long asks the orchestrator for the order's latest event "
        "(then after waits that grow with the view's age), in case the view missed it.",
    )
    idempotency_ttl_s: int = Field(
        default=24 * 3600, description="ORDERSAGA_IDEMPOTENCY_TTL_S: Idempotency-Key lifetime."
    )
    finished_view_ttl_s: int = Field(
        default=7 * 24 * 3600,
        description="ORDERSAGA_FINISHED_VIEW_TTL_S: how long the web view keeps a finished "
        "order's view in Redis.",
    )
    max_body_bytes: int = Field(default=64 * 1024, description="ORDERSAGA_MAX_BODY_BYTES")
    max_record_bytes: int = Field(
        default=512 * 1024,
        gt=0,
        description="ORDERSAGA_MAX_RECORD_BYTES: the largest table value a worker writes. "
        "A message whose effect would write a larger one is dead-lettered instead (the "
        "broker refuses messages over 1 MB, and a changelog write it refuses would fail "
        "on every replay).",
    )
    max_holds_per_sku: int = Field(
        default=5_000,
        gt=0,
        description="ORDERSAGA_MAX_HOLDS_PER_SKU: orders one SKU record remembers at once "
        "(finished ones are dropped after the retention period); a reservation beyond it "
        "is refused as out of stock, so no traffic grows a SKU record without bound.",
    )
    max_skus: int = Field(
        default=10_000,
        gt=0,
        description="ORDERSAGA_MAX_SKUS: SKUs the catalogue may hold; a restock creating "
        "one more answers 409.",
    )
    heartbeat_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="ORDERSAGA_HEARTBEAT_S: how often every worker announces itself on "
        "ordersaga.services; GET /services calls a worker stale after two periods "
        "without one and gone after three.",
    )
    max_services: int = Field(
        default=1_000,
        gt=0,
        description="ORDERSAGA_MAX_SERVICES: worker instances the registry remembers; "
        "heartbeats of further instances are dead-lettered until gone ones are dropped.",
    )
    forget_gone_services_after_s: float = Field(
        default=600.0,
        gt=0,
        description="ORDERSAGA_FORGET_GONE_SERVICES_AFTER_S: a gone worker stays listed "
        "this long after its last heartbeat.",
    )
    max_customers: int = Field(
        default=100_000,
        gt=0,
        description="ORDERSAGA_MAX_CUSTOMERS: accounts the shop may hold; a registration "
        "of one more answers 409.",
    )
    max_orders_per_customer_view: int = Field(
        default=1_000,
        gt=0,
        description="ORDERSAGA_MAX_ORDERS_PER_CUSTOMER_VIEW: the newest orders GET "
        "/customers/{id}/orders can list (older ones stay readable by id).",
    )
    max_listed_orders: int = Field(
        default=100_000,
        gt=0,
        description="ORDERSAGA_MAX_LISTED_ORDERS: the newest orders GET /orders can list "
        "(older ones stay readable by id for as long as their views live).",
    )
    max_sagas_in_flight: int = Field(
        default=500,
        ge=1,
        description="ORDERSAGA_MAX_SAGAS_IN_FLIGHT: the most orders accepted and not yet "
        "ended (across every web view worker); past the limit POST /orders answers 429 "
        "with Retry-After.",
    )
    max_sagas_in_flight_per_client: int = Field(
        default=16,
        ge=1,
        description="ORDERSAGA_MAX_SAGAS_IN_FLIGHT_PER_CLIENT: of those, how many one client "
        "may have in flight (the token's subject; an admin's orders count against the "
        "customer named; without auth, the client's address); past it POST /orders answers "
        "429 `client_in_flight`, so one client's slow orders never refuse another's.",
    )
    min_sagas_in_flight: int = Field(
        default=64,
        ge=1,
        description="ORDERSAGA_MIN_SAGAS_IN_FLIGHT: the limit never falls below this, "
        "however few orders end per second.",
    )
    target_latency_s: float = Field(
        default=2.0,
        gt=0,
        description="ORDERSAGA_TARGET_LATENCY_S: between the two, the limit is the orders "
        "ended per second times this (Little's law), so what is accepted ends in about "
        "this time.",
    )
    overload_retry_after_s: int = Field(
        default=1,
        ge=1,
        le=60,
        description="ORDERSAGA_OVERLOAD_RETRY_AFTER_S: the Retry-After of that 429.",
    )
    max_long_polls: int = Field(
        default=1_000,
        gt=0,
        description="ORDERSAGA_MAX_LONG_POLLS: concurrent `?wait=` requests one web view "
        "worker holds; beyond it they answer 503 with Retry-After.",
    )
    max_long_polls_per_client: int = Field(
        default=20,
        gt=0,
        description="ORDERSAGA_MAX_LONG_POLLS_PER_CLIENT: of those, how many one client "
        "(the token's subject, else its address) may hold; beyond it 429 with Retry-After.",
    )
    redis_max_connections: int = Field(
        default=50,
        gt=0,
        description="ORDERSAGA_REDIS_MAX_CONNECTIONS: the web view's Redis pool; a request "
        "finding it busy waits up to ORDERSAGA_REDIS_POOL_TIMEOUT_S, then answers 503.",
    )
    redis_pool_timeout_s: float = Field(
        default=5.0, gt=0, description="ORDERSAGA_REDIS_POOL_TIMEOUT_S"
    )
    seed_catalog: bool = Field(
        default=True,
        description="ORDERSAGA_SEED_CATALOG: `ordersaga run` stocks a small demo catalogue.",
    )
    data_dir: str = Field(
        default=".ordersaga", description="ORDERSAGA_DATA_DIR: worker state and logs."
    )
    log_level: str = Field(default="info", description="ORDERSAGA_LOG_LEVEL")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="ORDERSAGA_LOG_FORMAT: how workers write their log lines: `json` (one "
        "object a line, with the ids of the order, message or request), `console` (for "
        "people), or `auto`: console when stdout is a terminal, JSON otherwise (so always "
        "JSON under `ordersaga run`, which writes them to files).",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description="OTEL_EXPORTER_OTLP_ENDPOINT: base URL of an OTLP/HTTP collector "
        "(http://host:4318); set, every worker exports its spans there (to /v1/traces) as "
        "ordersaga-<group>. Unset, tracing is off and costs nothing. Read as a setting, so "
        "`ordersaga run` hands it to its workers like the others.",
    )
    log_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="ORDERSAGA_LOG_MAX_BYTES: size at which `ordersaga run` rotates the log "
        "of a worker, the broker or Redis (<data_dir>/logs/<name>.log); 0 never rotates.",
    )
    log_backups: int = Field(
        default=3,
        ge=1,
        description="ORDERSAGA_LOG_BACKUPS: rotated logs kept per process "
        "(<name>.log.1 is the newest). At least 1: with none the log would never rotate.",
    )

    max_listing_scan: int = Field(
        default=500,
        ge=1,
        le=5_000,
        description="ORDERSAGA_MAX_LISTING_SCAN: orders one GET /orders page looks at in "
        "Redis, at most; a sparse filter answers a short page and a cursor to go on.",
    )
    topic_retention_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        description="ORDERSAGA_TOPIC_RETENTION_BYTES: bytes each partition of every "
        "non-compacted topic (dead letters included) keeps before its oldest segment "
        "goes, besides ORDERSAGA_TOPIC_RETENTION_HOURS.",
    )
    topic_retention_hours: int = Field(
        default=7 * 24,
        ge=1,
        description="ORDERSAGA_TOPIC_RETENTION_HOURS: how long "
        "every non-compacted topic keeps a message.",
    )
    redis_max_memory_mb: int = Field(
        default=512,
        ge=16,
        description="ORDERSAGA_REDIS_MAX_MEMORY_MB: maxmemory of the Redis `ordersaga run` "
        "starts (policy noeviction: full, writes fail 503, nothing the saga needs is "
        "evicted).",
    )

    @model_validator(mode="after")
    def _views_outlive_idempotency_keys(self) -> Settings:
        # A retried POST whose order is already projected is not re-sent (the
        # orchestrator may have forgotten it and would run it again), so the view
        # must last as long as the key that can bring the retry.
        if self.finished_view_ttl_s < self.idempotency_ttl_s:
            raise ValueError(
                "ORDERSAGA_FINISHED_VIEW_TTL_S must be at least ORDERSAGA_IDEMPOTENCY_TTL_S"
            )
        return self

    @model_validator(mode="after")
    def _orders_remembered_past_retention(self) -> Settings:
        if self.order_memory_s < self.retention_s:
            raise ValueError("ORDERSAGA_ORDER_MEMORY_S must be at least ORDERSAGA_RETENTION_S")
        # The provider's idempotency must outlast any PlaceOrder that could still start.
        if self.gateway_journal_ttl_s <= self.order_memory_s:
            raise ValueError(
                "ORDERSAGA_GATEWAY_JOURNAL_TTL_S must be longer than ORDERSAGA_ORDER_MEMORY_S"
            )
        return self

    @model_validator(mode="after")
    def _redrive_within_retention(self) -> Settings:
        if self.redrive_after_s >= self.redrive_window_s:
            raise ValueError(
                "ORDERSAGA_REDRIVE_AFTER_S must be under half of ORDERSAGA_RETENTION_S"
            )
        return self

    @property
    def allowed_host_names(self) -> frozenset[str] | None:
        """The Host names the web view answers to (None: any)."""
        named = {h.strip().lower().rstrip(".") for h in self.allowed_hosts.split(",")}
        if "*" in named:
            return None
        defaults = {"localhost", "127.0.0.1", "::1", self.web_host.lower()}
        return frozenset((named | defaults) - {"", "0.0.0.0", "::"})

    @property
    def redrive_window_s(self) -> float:
        """How long after acceptance a PlaceOrder may still be sent.

        The orchestrator forgets an order at the earliest ``retention_s`` after it
        ended, so after it was accepted; a PlaceOrder appended to the log before
        then finds the saga (and is ignored) or finds none because the first copy
        never arrived. Half the retention leaves the other half for a slow send.
        """
        return self.retention_s / 2

    @property
    def redis_url_or_default(self) -> str:
        """The Redis to use: REDIS_URL, or the conventional local one."""
        return self.redis_url or "redis://127.0.0.1:6379/0"

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
