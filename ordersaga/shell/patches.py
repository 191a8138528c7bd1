"""Every change ordersaga makes to Faust, aiokafka and aiohttp, each with its reason.

Every patch here was measured or read in the library's code (ARCHITECTURE.md, "Faust
patches, and why"), and names the upstream issue it works around where one exists.
``ordersaga.shell.faust_app.make_app`` applies them all through :func:`apply_process_patches`
and the per-app ones; nothing else in ordersaga patches a library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import Any, cast

import faust
import orjson
from aiohttp import web
from faust.sensors import Monitor
from mode import Service

from ordersaga.config.settings import Settings
from ordersaga.edge.http import HARDENING, HttpError, error_response, invalid, printable_text
from ordersaga.shell.changelog_end import read_changelogs_to_their_end
from ordersaga.shell.consumer_in_loop import consume_in_the_loop
from ordersaga.shell.direct_delivery import deliver_fetches_directly
from ordersaga.shell.recovery_watch import RecoveryWatch
from ordersaga.shell.unreadable import SafeMemoryRecords
from ordersaga.shell.wire_codec import compile_protocol_codecs

log = logging.getLogger("ordersaga.shell.node")
http_log = logging.getLogger("ordersaga.http")

_PROTOCOL_ERRORS = {400: "bad_request", 413: "body_too_large", 431: "headers_too_large"}


def apply_process_patches(settings: Settings, off_critical_path: bool = False) -> None:
    """Apply every process-wide patch; each applies once however often this is called.

    ``off_critical_path``: the process runs a group that no saga step waits for.
    """
    if off_critical_path:
        tune_fetch_wait(
            settings.off_path_fetch_max_wait_ms,
            settings.consumer_instance_id,
            min_bytes=settings.off_path_fetch_min_bytes,
        )
    else:
        tune_fetch_wait(settings.fetch_max_wait_ms, settings.consumer_instance_id)
    read_unreadable_records()
    compile_protocol_codecs()  # ordersaga.shell.wire_codec
    if settings.consumer_in_loop:
        consume_in_the_loop()  # ordersaga.shell.consumer_in_loop
    if settings.direct_delivery:
        deliver_fetches_directly()  # ordersaga.shell.direct_delivery
    send_without_yielding()
    send_bytes_straight_to_the_producer()
    drain_producer_buffer_before_commit()
    read_changelogs_to_their_end(settings.bootstrap_servers)  # ordersaga.shell.changelog_end
    retry_topic_declaration()
    _no_spinner_without_terminal()
    json_protocol_errors()


def _serve_no_faust_pages(app: faust.App) -> None:
    """Drop Faust's own blueprints that settings cannot turn off (the "/" status page).

    Every route a worker serves is one of ours and listed in docs/http-api.md; the
    settings in ``make_app`` turn off the table, router, stats and graph pages.
    """
    manager = cast(Any, app.web).blueprints
    manager._enabled = [
        (prefix, bp)
        for prefix, bp in manager._enabled
        if not (isinstance(bp, str) and bp.startswith("faust.web.apps."))
    ]


def _exit_when_stuck(app: faust.App, recovery_limit_s: float, interval_s: float = 2.0) -> None:
    """Exit the process when a core Faust service crashed or table recovery hangs.

    A crashed service (recovery, consumer, producer) leaves a worker that is up but
    processes nothing, and so does a recovery that waits forever for changelog
    events that never come (seen in the chaos test: "No event received for active
    tp ... since recovery start" for minutes; faust-streaming issues 176 and 651
    describe hangs of the same kind). No supervisor notices either. A recovery is
    stuck when it reads nothing for ``recovery_limit_s`` (ordersaga.shell.recovery_watch),
    however long a big changelog takes to replay. Exiting hands
    the partitions to another worker and lets the supervisor start a fresh one;
    with the memory store a fresh process rebuilds its tables from the changelogs.
    """

    recovery_watch = RecoveryWatch(recovery_limit_s)

    def services() -> list[Any]:
        found: list[Any] = [app]
        for name in ("consumer", "producer", "tables"):
            with contextlib.suppress(Exception):
                found.append(getattr(app, name))
        with contextlib.suppress(Exception):
            found.append(cast(Any, app.tables).recovery)
        return found

    def stuck_reason() -> str | None:
        for service in services():
            if getattr(service, "crashed", False):
                return f"{type(service).__name__} crashed ({service.crash_reason!r})"
        with contextlib.suppress(Exception):
            recovery = cast(Any, app.tables).recovery
            read = sum(recovery.active_offsets.values()) + sum(recovery.standby_offsets.values())
            return recovery_watch.stalled(bool(recovery.in_recovery), read, time.monotonic())
        return None

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            reason = stuck_reason()
            if reason:
                log.critical("%s: exiting so the worker is replaced", reason)
                logging.shutdown()
                os._exit(70)

    watching = threading.Event()

    # Not an app.task: Faust starts those only once the first recovery is complete,
    # the very thing to watch. Partitions are assigned only in a running worker,
    # never in agent.test_context(), and before each recovery begins.
    async def start_stuck_watch(sender: Any, *args: Any, **kwargs: Any) -> None:
        if not watching.is_set():
            watching.set()
            threading.Thread(target=watch, name="ordersaga-stuck-watch", daemon=True).start()

    app.on_partitions_assigned.connect(cast(Any, start_stuck_watch))


def tune_fetch_wait(max_wait_ms: int, instance_id: str | None = None, min_bytes: int = 1) -> None:
    """Make Faust's consumers ask the broker to answer a fetch within ``max_wait_ms``.

    Faust hard-codes fetch_max_wait_ms=1500 for its worker consumer. Kafka answers a
    fetch as soon as data arrives, but the embedded broker (Tansu) holds an empty
    fetch for the whole wait even when data arrives meanwhile, which cost every saga
    hop about 0.75 s (a saga took 5-6 s). Measured, not assumed: see BENCHMARKS.md.

    With ``instance_id`` the consumer is a static member of its group (Faust has no
    option for it): a worker SIGKILLed and restarted takes its partitions back at
    its first join, instead of its group waiting out the dead member's session.

    With ``min_bytes`` over 1 a fetch waits (up to ``max_wait_ms``) for that much
    data: fewer, larger batches for a group no saga step waits for.
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread_cls, "_ordersaga_original_create", None)
    if original is None:
        original = thread_cls._create_worker_consumer
        thread_cls._ordersaga_original_create = original  # type: ignore[attr-defined]

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        # Read when the consumer starts its fetcher, so setting it here takes effect.
        consumer._fetch_max_wait_ms = max_wait_ms
        consumer._fetch_min_bytes = min_bytes
        if instance_id is not None:
            # Read when the consumer starts its group coordinator.
            consumer._group_instance_id = instance_id
        return consumer

    thread_cls._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]


def drain_producer_buffer_before_commit() -> None:
    """Make Faust's offset commit wait until every buffered table write is sent.

    ``Consumer._commit_offsets`` awaits ``Producer.flush()`` before committing, but
    ``ProducerBuffer.flush`` gives up after 0.1 s without progress, and its sender
    pops a message (the buffer looks empty) before handing it to the client. Table
    changelog writes go through that buffer, so offsets could be committed while
    the writes they reflect were still in memory: a SIGKILL then loses those table
    updates for good (the input is not replayed). Counting messages put and handed
    over lets ``flush`` wait for all of them. See docs/lost-updates.md.
    """
    from faust.transport.producer import ProducerBuffer

    if getattr(ProducerBuffer, "_ordersaga_drains", False):
        return
    original_put = ProducerBuffer.put
    original_send = ProducerBuffer._send_pending

    def put(self: Any, fut: Any) -> None:
        self._ordersaga_put = getattr(self, "_ordersaga_put", 0) + 1
        original_put(self, fut)

    async def send_pending(self: Any, fut: Any) -> None:
        self._ordersaga_sending = getattr(self, "_ordersaga_sending", 0) + 1
        try:
            await original_send(self, fut)
        finally:
            self._ordersaga_sending -= 1
            self._ordersaga_sent = getattr(self, "_ordersaga_sent", 0) + 1

    async def flush(self: Any) -> None:
        while getattr(self, "_ordersaga_sent", 0) < getattr(self, "_ordersaga_put", 0):
            if self.state != "running":
                raise RuntimeError("Cannot flush: producer buffer not running")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)

    ProducerBuffer.put = put  # type: ignore[method-assign]
    ProducerBuffer._send_pending = send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]
    ProducerBuffer._ordersaga_drains = True  # type: ignore[attr-defined]


def retry_topic_declaration(within_s: float = 60.0, pause_s: float = 1.0) -> None:
    """Make a worker's topic declarations at start survive a broker that is down.

    At start Faust declares each changelog topic, asking the first broker in its
    metadata for the controller and sending CreateTopics there, whether or not
    that broker is reachable. With one of three brokers down the worker's start
    failed (``NodeNotReadyError``) and the process exited, so in the broker chaos
    run both web view workers could be away for a minute at once. A declaration
    is retried on connection errors, with fresh metadata, for ``within_s``.
    """
    from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError
    from faust.transport.drivers.aiokafka import Transport

    if getattr(Transport, "_ordersaga_retries_declare", False):
        return
    original = Transport._create_topic
    transient = (NodeNotReadyError, KafkaConnectionError, RequestTimedOutError, TimeoutError)

    async def create_topic(
        self: Any, owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any
    ) -> None:
        deadline = time.monotonic() + within_s
        while True:
            try:
                await original(self, owner, client, topic, *args, **kwargs)
                return
            except transient as exc:
                if owner.should_stop or time.monotonic() > deadline:
                    raise
                log.warning("declaring topic %s: %r; retrying", topic, exc)
            await asyncio.sleep(pause_s)
            with contextlib.suppress(*transient):
                await client.force_metadata_update()

    Transport._create_topic = create_topic  # type: ignore[method-assign]
    Transport._ordersaga_retries_declare = True  # type: ignore[attr-defined]


def _no_spinner_without_terminal() -> None:
    """Stop Faust from setting the root logger to DEBUG when no one sees its spinner.

    At log level warn or above, ``faust worker`` feeds a terminal spinner from every
    log record and for that lowers the root logger to DEBUG, whether or not stdout is
    a terminal. Every debug call in Faust and aiokafka then builds a LogRecord (one
    per message sent, among others): the profile of a loaded worker showed ~5% of
    its CPU in ``Logger.debug``. A worker whose stdout is a log file keeps its level.
    """
    from faust.worker import Worker

    if getattr(Worker, "_ordersaga_spinner_checked", False):
        return
    original = Worker._setup_spinner_handler

    def setup_spinner_handler(self: Any, logger: logging.Logger, level: int) -> None:
        if self.spinner is not None and not self.spinner.file.isatty():
            self.spinner = None
        original(self, logger, level)

    Worker._setup_spinner_handler = setup_spinner_handler  # type: ignore[method-assign]
    Worker._ordersaga_spinner_checked = True  # type: ignore[attr-defined]


def _no_banner_in_json_logs(app: faust.App) -> None:
    """Log the facts of ``faust worker``'s start-up banner as one line, not a table.

    The command prints a box-drawn table to stdout before logging is set up, the
    only lines of a worker's log that would not be JSON. Its facts (app id,
    broker, web address, data dir) are logged instead once the worker runs.
    """
    from faust.cli.worker import worker as WorkerCommand

    if not getattr(WorkerCommand, "_ordersaga_no_banner", False):
        WorkerCommand.on_worker_created = lambda self, worker: None  # type: ignore[method-assign]
        WorkerCommand._ordersaga_no_banner = True  # type: ignore[attr-defined]

    @app.task
    async def log_start() -> None:
        conf = app.conf
        log.info(
            "worker %s started: broker %s, web %s, data dir %s, pid %d",
            conf.id,
            ";".join(str(url) for url in conf.broker),
            conf.canonical_url,
            conf.datadir,
            os.getpid(),
        )


# -- aiohttp: answers given before any middleware runs


def json_protocol_errors() -> None:
    """Make the answers aiohttp gives before any middleware runs JSON as well.

    A malformed request line or header (control characters, a line over 8190
    bytes, an unknown method) is refused by aiohttp's connection handler, and an
    ``Expect`` header is answered by the route's expect handler, both before
    middlewares: their answers were text/plain, an undecodable ``Expect`` even a
    500, and each logged a traceback at ERROR. Applied once per process.
    """
    from aiohttp import hdrs, web_protocol, web_urldispatcher
    from aiohttp.http import HttpVersion11

    handler_cls: Any = web_protocol.RequestHandler
    if getattr(handler_cls, "_ordersaga_json_errors", False):
        return

    def handle_error(
        self: Any,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        if status >= 500 and status != 504:
            http_log.error("request from %s failed", request.remote, exc_info=exc)
            error = HttpError(status, "internal_error", "the server failed to answer")
        else:
            reason = printable_text(message or (str(exc) if exc else "") or "bad request")
            http_log.info("bad HTTP request from %s -> %d %s", request.remote, status, reason)
            error = HttpError(status, _PROTOCOL_ERRORS.get(status, "bad_request"), reason)
        response = error_response(error)
        response.headers.update(HARDENING)
        response.force_close()
        return response

    async def expect_handler(request: web.Request) -> None:
        expect = request.headers.get(hdrs.EXPECT, "")
        if request.version == HttpVersion11:
            if expect.lower() == "100-continue":
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the real answer is still to come
                return
            raise web.HTTPExpectationFailed(
                body=orjson.dumps(
                    invalid("Expect", "only 100-continue is supported", status=417).body
                ),
                content_type="application/json",
            )

    handler_cls.handle_error = handle_error
    # Looked up when each route is made, so routes made after this call use it.
    web_urldispatcher._default_expect_handler = expect_handler
    handler_cls._ordersaga_json_errors = True


# -- aiokafka: records the fetcher cannot parse


def read_unreadable_records() -> None:
    """Make every aiokafka consumer of this process hand on what it cannot parse.

    Patched at the fetcher's use of ``MemoryRecords`` (above both of aiokafka's
    record readers, C and Python): the consumer groups of the workers and the
    group-less consumers of ``ordersaga tail`` and ``dlq`` alike.
    """
    from aiokafka.consumer import fetcher

    if getattr(fetcher, "_ordersaga_safe_records", False):
        return
    fetcher.MemoryRecords = SafeMemoryRecords
    fetcher._ordersaga_safe_records = True


class LeanMonitor(Monitor):
    """Faust's Monitor sensor keeping only what Faust itself reads.

    The Monitor runs on every record in and out, every stream event, table read and
    write, send and commit (counters, timestamps, per-stream dicts): a few percent
    of a loaded worker for statistics whose only reader was the stats page, which
    ordersaga does not serve (its metrics are its own, in Prometheus). Faust's stuck
    stream check (``verify_event_path``) reads ``stream_inbound_time``, so that is kept.
    """

    @Service.task
    async def _sampler(self) -> None:
        # Faust's averages each second the counters this monitor no longer keeps:
        # a wake-up per second of an idle worker for figures no one reads.
        return None

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = time.monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_commit_initiated(self, consumer: Any) -> None:
        return None

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        return None


# -- aiokafka: every request sent, counted


class _RequestCounts:
    """The counter the patched ``send`` increments, and its child per request class."""

    def __init__(self) -> None:
        self.counter: Any = None
        self.children: dict[type, Any] = {}


_request_counts = _RequestCounts()


def count_kafka_requests(counter: Any) -> None:
    """Count every request this process's aiokafka clients send, by request class.

    A saga's CPU follows the Kafka requests and wake-ups it causes more than the
    messages it handles (issue 21: ~0.5-1.3 ms of worker CPU per request), and
    ``ordersaga bench`` divides this count by sagas. tshark (``bench --wire``)
    counts them too but needs capture rights; this costs one dict lookup and one
    increment per request. Patched at ``AIOKafkaConnection.send``, under every
    client (Faust's consumer thread, its producer, the admin calls). ``counter``
    is a labelled Prometheus counter (``api``); the last one given is the one
    counted, so a test's second node does not count into the first one's.
    """
    from aiokafka.conn import AIOKafkaConnection

    _request_counts.counter = counter
    _request_counts.children = {}
    if getattr(AIOKafkaConnection, "_ordersaga_counts_requests", False):
        return
    original = AIOKafkaConnection.send
    counts = _request_counts

    def send(self: Any, request: Any, expect_response: bool = True) -> Any:
        # Counted once written: a send refused for want of a connection raises first.
        sent = original(self, request, expect_response)
        cls = request.__class__
        child = counts.children.get(cls)
        if child is None:
            # Once per request class: labels() looks the child up under a lock.
            child = counts.children[cls] = counts.counter.labels(api=cls.__name__)
        child.inc()
        return sent

    AIOKafkaConnection.send = send
    AIOKafkaConnection._ordersaga_counts_requests = True


def send_without_yielding() -> None:
    """Make a send to a topic stop yielding to the loop three times once the producer runs.

    ``Topic.publish_message`` gets its producer from ``App.maybe_start_producer``,
    which mode's ``stampede`` wraps in three ``asyncio.sleep(0)``: every message a
    handler sent cost three turns of the event loop, and at the first of them the
    producer's sender sent what was there, so a handler's replies and table writes
    (and a fetch's worth of handlers' sends) left in one produce request each
    instead of together. Found by driving a handler's coroutine by hand and
    walking ``cr_await`` where it first suspended (issue 21). Outside a
    transaction and with the producer started, the producer is all it returns.
    """
    from faust.topics import Topic

    if getattr(Topic, "_ordersaga_no_yield", False):
        return
    original = Topic._get_producer

    async def _get_producer(self: Any) -> Any:
        app = self.app
        producer = app.producer
        if producer.started and not app.in_transaction:
            return producer
        return await original(self)

    Topic._get_producer = _get_producer  # type: ignore[method-assign]
    Topic._ordersaga_no_yield = True  # type: ignore[attr-defined]


def send_bytes_straight_to_the_producer() -> None:
    """Hand a send of ready bytes to the producer, past Faust's per-message objects.

    ``Topic.send`` builds a ``PendingMessage`` and a ``FutureMessage``, runs the key,
    value and header preparation, calls the send sensors and chains a callback per
    message, and Faust's ``Producer.send`` fires its ``on_produce_message`` signal
    (nothing here listens): for the bytes every node sends (raw serializers, no
    schema, no callback) none of it changes what reaches the client, and it was a
    third of the cost of a send in the orchestrator (issue 21). Such a send goes
    to the aiokafka producer Faust started, which partitions and batches it, and
    whose returned future resolves once the broker has the message; the offset
    commit still waits for the producer's flush. Anything else (a transaction,
    attachments, a schema, a callback, several topics) takes Faust's path.
    """
    from aiokafka.errors import KafkaError
    from faust.exceptions import ProducerSendError
    from faust.topics import Topic

    if getattr(Topic, "_ordersaga_straight", False):
        return
    original = Topic.send

    async def send(
        self: Any,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Any = None,
        schema: Any = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        callback: Any = None,
        force: bool = False,
    ) -> Any:
        app = self.app
        producer = app.producer
        if (
            type(key) is bytes
            and type(value) is bytes
            and schema is None
            and key_serializer is None
            and value_serializer is None
            and callback is None
            and self.key_serializer == "raw"
            and self.value_serializer == "raw"
            and len(self.topics) == 1
            and producer.started
            and not app.in_transaction
            and not app._attachments.enabled
        ):
            client = producer._producer
            if client is not None and producer.allow_headers:
                try:
                    return await client.send(
                        self.topics[0],
                        value,
                        key=key,
                        partition=partition,
                        timestamp_ms=int(timestamp * 1000) if timestamp else None,
                        headers=headers,
                    )
                except KafkaError as exc:  # as Faust's Producer.send raises it
                    raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        return await original(
            self,
            key=key,
            value=value,
            partition=partition,
            timestamp=timestamp,
            headers=headers,
            schema=schema,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            callback=callback,
            force=force,
        )

    Topic.send = send  # type: ignore[method-assign]
    Topic._ordersaga_straight = True  # type: ignore[attr-defined]
