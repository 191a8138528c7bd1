"""Prometheus metrics of one worker, on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Saga steps take milliseconds on a quiet system and seconds under load or retry.
STEP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The counters and histograms every worker exposes at /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None, circuits: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        # The API's port (the web view's) shows no breaker: whether the payment circuit
        # is open tells a client how its own attack is going.
        breakers = self.registry if circuits else None
        self.messages_handled = Counter(
            "ordersaga_messages_handled",
            "Messages handled, by agent, message type and outcome",
            ["agent", "type", "outcome"],
            registry=self.registry,
        )
        # Incremented by the aiokafka patch (ordersaga.shell.patches.count_kafka_requests):
        # the bench divides it by sagas, as the cost follows requests.
        self.kafka_requests = Counter(
            "ordersaga_kafka_requests",
            "Requests this process's Kafka clients sent to a broker, by request class "
            "(ProduceRequest, FetchRequest, ...)",
            ["api"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "ordersaga_dead_letters",
            "Messages sent to a dead-letter topic, by source topic",
            ["topic"],
            registry=self.registry,
        )
        self.undecodable_records = Counter(
            "ordersaga_undecodable_records",
            "Records dead-lettered because they could not be read, by source topic and "
            "layer: record (aiokafka could not parse it), key (not UTF-8) or envelope "
            "(not JSON, unknown type or version, headers disagreeing, invalid payload)",
            ["topic", "layer"],
            registry=self.registry,
        )
        self.dead_letters_cut = Counter(
            "ordersaga_dead_letters_cut",
            "Dead letters too large for the producer, parked as a stub naming where the "
            "original record is, by source topic",
            ["topic"],
            registry=self.registry,
        )
        self.entries_forgotten = Counter(
            "ordersaga_entries_forgotten",
            "Table entries of finished orders deleted after the retention period, by table",
            ["table"],
            registry=self.registry,
        )
        self.offsets_skipped = Counter(
            "ordersaga_offsets_skipped",
            "Offsets the consumer jumped over within one consumer generation, by topic "
            "(messages Faust delivered to no handler; re-drives recover their effects)",
            ["topic"],
            registry=self.registry,
        )
        self.orders_redriven = Counter(
            "ordersaga_orders_redriven",
            "PlaceOrder commands re-sent because no event of the order was projected yet",
            registry=self.registry,
        )
        self.orders_refused = Counter(
            "ordersaga_orders_refused",
            "New orders refused with 429: as many sagas in flight as the system may take",
            registry=self.registry,
        )
        self.slow_broker_answers = Counter(
            "ordersaga_slow_broker_answers",
            "HTTP commands answered before the broker acknowledged them (within the bound)",
            ["type"],
            registry=self.registry,
        )
        self.orders_unstarted = Counter(
            "ordersaga_orders_unstarted",
            "Accepted orders given up on: no event projected within the re-drive window",
            registry=self.registry,
        )
        self.views_refreshed = Counter(
            "ordersaga_views_refreshed",
            "RepublishOrder requests for open order views that stayed unchanged",
            registry=self.registry,
        )
        self.saga_outcomes = Counter(
            "ordersaga_saga_outcomes",
            "Sagas that reached a terminal state, by status and failure reason",
            ["status", "reason"],
            registry=self.registry,
        )
        self.step_latency = Histogram(
            "ordersaga_step_latency_seconds",
            "Time from sending a saga step's command to its reply",
            ["step"],
            buckets=STEP_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.records_refused = Counter(
            "ordersaga_records_refused",
            "Table writes refused as over ORDERSAGA_MAX_RECORD_BYTES, by record type "
            "(the message that led to each was dead-lettered)",
            ["record"],
            registry=self.registry,
        )
        self.timer_failures = Counter(
            "ordersaga_timer_failures",
            "Timer runs that raised (logged; the timer runs again at its next tick)",
            ["timer"],
            registry=self.registry,
        )
        self.http_rejected = Counter(
            "ordersaga_http_rejected",
            "Requests refused at the HTTP edge, by status",
            ["status"],
            registry=self.registry,
        )
        self.long_polls = Gauge(
            "ordersaga_long_polls",
            "`?wait=` requests being held by this worker",
            registry=self.registry,
        )

        self.sagas_in_flight = Gauge(
            "ordersaga_sagas_in_flight",
            "Sagas of this worker's partitions not yet ended, by status "
            "(COMPENSATION_STUCK: an undo keeps failing)",
            ["status"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "ordersaga_consumer_lag",
            "Messages of this worker's partitions not read yet, as its last heartbeat saw",
            registry=self.registry,
        )
        self.group_live_workers = Gauge(
            "ordersaga_group_live_workers",
            "Workers of each group whose heartbeat is fresh (the web view's registry)",
            ["group"],
            registry=self.registry,
        )
        self.dead_letter_depth = Gauge(
            "ordersaga_dead_letter_depth",
            "Messages held by each dead-letter topic",
            ["topic"],
            registry=self.registry,
        )
        self.low_stock_skus = Gauge(
            "ordersaga_low_stock_skus",
            "SKUs of this worker's partitions at or below their low-stock threshold",
            registry=self.registry,
        )
        self.circuit_state = Gauge(
            "ordersaga_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            ["circuit"],
            registry=breakers,
        )
        self.circuit_rejections = Counter(
            "ordersaga_circuit_rejections",
            "Calls refused because the circuit was open",
            ["circuit"],
            registry=breakers,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
