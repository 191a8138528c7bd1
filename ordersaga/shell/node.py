"""The thin-shell plumbing every agent group shares.

A :class:`Node` is one agent group's Faust app (configured in
ordersaga.shell.faust_app) plus what its agents need around the pure rules: a
typed send that writes the envelope and headers, and a consume loop that
parses, retries and dead-letters. Its health checks are in ordersaga.shell.health;
the worker pages and heartbeat attach to it in ordersaga.shell.worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import faust
from aiohttp import web
from faust.types import EventT, StreamT
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from ordersaga.config.settings import Settings, get_settings
from ordersaga.edge.http import json_errors
from ordersaga.observability.correlation import correlation_ids
from ordersaga.observability.log_format import (
    bind,
    logging_config,
    message_ids,
    resolve_format,
    unbind,
)
from ordersaga.observability.metrics import Metrics
from ordersaga.observability.tracing import Tracing, tracing_for
from ordersaga.schemas.messages import CommandRejected, Envelope, Message
from ordersaga.shell import dead_letters
from ordersaga.shell.codec import DecodeError, decode, encode, header_pairs
from ordersaga.shell.direct_delivery import deliver_directly
from ordersaga.shell.faust_app import make_app
from ordersaga.shell.groups import AgentGroup
from ordersaga.shell.health import Health
from ordersaga.shell.patches import (
    _exit_when_stuck,
    _no_banner_in_json_logs,
    _serve_no_faust_pages,
    count_kafka_requests,
    drain_producer_buffer_before_commit,
)
from ordersaga.shell.printable import printable
from ordersaga.shell.records import RecordTable, RecordTooLarge
from ordersaga.shell.topics import ALL_DLQ_TOPICS, ALL_TOPICS, dlq_topic
from ordersaga.shell.unreadable import raw_headers, why_unreadable
from ordersaga.tables import TableSpec
from ordersaga.topology import TOPOLOGY, Topology

R = TypeVar("R")

log = logging.getLogger(__name__)

# A handler may name the outcome it reached ("unchanged" for a duplicate); None is "ok".
Outcome = str | None
Handler = Callable[[Envelope, Message], Awaitable[Outcome]]
# Several messages at once: per message its outcome, or the exception that stopped it.
ManyHandler = Callable[[list[tuple[Envelope, Any]]], Awaitable[Sequence[Outcome | Exception]]]


def _is_transient(exc: BaseException) -> bool:
    # ValueError covers pydantic's ValidationError, DecodeError and RecordTooLarge:
    # the same message fails the same way every time, so retrying only delays the answer.
    return not isinstance(exc, ValueError)


class Node:
    """One agent group's Faust app and its shared shell plumbing."""

    def __init__(
        self,
        group_name: str | AgentGroup,
        settings: Settings | None = None,
        topology: Topology = TOPOLOGY,
    ) -> None:
        # What this node routes by; a test builds a node of a topology of its own.
        self.topology = topology
        self.group: AgentGroup = (
            topology.participant(group_name) if isinstance(group_name, str) else group_name
        )
        self.settings = settings or get_settings()
        self.metrics = Metrics(circuits=self.group.name != "webview")
        count_kafka_requests(self.metrics.kafka_requests)
        self.app = make_app(self.group, self.settings)
        self._topics: dict[str, faust.TopicT] = {}
        # /health's checks (a group adds its own) and /ready's reasons.
        self.health = Health(self.app, self.settings.bootstrap_servers)
        # None when tracing is off: then nothing of it runs but an `is None` check.
        self.tracing = tracing_for(self.group.app_id, self.settings.otel_exporter_otlp_endpoint)
        # Registered before the web server starts: aiohttp freezes its middlewares then.
        middlewares = cast(Any, self.app.web).web_app.middlewares
        if self.tracing is not None:
            middlewares.append(self.tracing.middleware())  # outermost: every answer has a span
        middlewares.append(correlation_ids)  # around json_errors: error answers carry the id
        middlewares.append(json_errors)
        _serve_no_faust_pages(self.app)
        # Set when the probes have a listener of their own (ORDERSAGA_PROBES_PORT).
        self.probes_runner: web.AppRunner | None = None
        # What this worker's web port serves besides its group's own routes: the
        # worker pages attach themselves here (ordersaga.shell.worker).
        self.pages: list[tuple[str, type[Any]]] = []
        self.pid = os.getpid()
        # Drawn per start: in a container the pid is the same on every start (often
        # 1) and so is the port, and two pods of a group share both.
        self.start_token = secrets.token_hex(3)
        self.host = _instance_host(socket.gethostname())
        self._handled: dict[tuple[str, str, str], Any] = {}
        _exit_when_stuck(self.app, self.settings.recovery_limit_s)
        # Read by `faust worker` when it sets logging up, after its command line
        # set the web port that the worker's name includes.
        self.app.conf.logging_config = logging_config(
            self.group.name,
            lambda: self.instance,
            self.settings.log_format,
            traced=self.tracing is not None,
        )
        if resolve_format(self.settings.log_format) == "json":
            _no_banner_in_json_logs(self.app)

    @property
    def instance(self) -> str:
        """Unique per host and per start: group@host:port:pid.token.

        A restarted worker is a new instance on the same port, and so is a pod
        restarted as pid 1; two pods of one group differ by host (the pod's name).
        """
        port = self.app.conf.web_port
        return f"{self.group.name}@{self.host}:{port}:{self.pid}.{self.start_token}"

    # ------------------------------------------------------------------ topics

    def topic(self, *names: str) -> faust.TopicT:
        """A raw-bytes topic (or a subscription to several), keys as bytes."""
        key = ",".join(names)
        if key not in self._topics:
            self._topics[key] = self.app.topic(
                *names,
                # Bytes, decoded by Node.consume: a key Faust fails to decode as
                # str raises in Faust's own loop, past any dead-letter path.
                key_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self.settings.partitions,
            )
        return self._topics[key]

    def table(self, spec: TableSpec[R]) -> RecordTable[R]:
        """The table ``spec`` declares: changelog-backed, str keys, JSON values."""
        if spec.group != self.group.name:
            raise ValueError(f"table {spec.name} belongs to {spec.group}, not {self.group.name}")
        faust_table = self.app.Table(
            spec.name, default=None, key_type=str, partitions=self.settings.partitions
        )
        return RecordTable(spec, faust_table, self.metrics, self.settings.max_record_bytes)

    def timer(self, interval: float) -> Callable[[Callable[[], Awaitable[None]]], Any]:
        """``app.timer`` whose failures are logged and counted, never fatal.

        An exception escaping a Faust timer crashes the whole app (seen: a Redis pool
        exhausted by long-polls made a web view timer raise and the worker die).
        """

        def register(fn: Callable[[], Awaitable[None]]) -> Any:
            name = fn.__name__

            @functools.wraps(fn)
            async def guarded() -> None:
                try:
                    await fn()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.metrics.timer_failures.labels(name).inc()
                    log.warning("timer %s failed: %s: %s", name, type(exc).__name__, exc)

            return self.app.timer(interval=interval)(guarded)

        return register

    # -------------------------------------------------------------------- send

    async def send(
        self,
        message: Message,
        *,
        key: str,
        cause: Envelope | None = None,
        topic: str | None = None,
        event_id: str | None = None,
        correlation_id: str | None = None,
        partition: int | None = None,
        acked: bool = False,
    ) -> Awaitable[Any]:
        """Send one message, enveloped, to its topic (its declared route unless given).

        A message of a type no participant declares raises ``Unrouted``: it would
        reach nobody.

        With ``acked`` it returns only once the broker has the message. Inside an
        agent that is not needed (offsets are committed after a flush); at the HTTP
        edge it is, because the 202 tells the client it need not retry. Returns the
        delivery, which resolves once the broker has the message: awaiting several
        sent at once costs one round trip, where ``acked`` on each costs one each.
        """
        encoded = encode(
            message,
            key=key,
            correlation_id=correlation_id or (cause.correlation_id if cause else key),
            causation_id=cause.event_id if cause else None,
            event_id=event_id,
        )
        headers = encoded.headers
        if self.tracing is not None:
            headers = [*headers, *self.tracing.headers()]
        delivery = await self.topic(topic or self.topology.topic_of(type(message))).send(
            key=encoded.key, value=encoded.value, headers=headers, partition=partition
        )
        if acked:
            await delivery
        return cast(Awaitable[Any], delivery)

    async def reply(self, reply: Message, *, to: Envelope, key: str) -> None:
        """Answer the command ``to``; the reply's id derives from it, so a replay sends it again.

        One INFO line per command answered: what an operator follows an order by
        (the ids come from the message being handled), at a rate of one line per
        step rather than one per message.
        """
        await self.send(reply, key=key, cause=to, event_id=f"{to.event_id}:reply")
        log.info("%s -> %s", to.type, reply.TYPE)

    async def answer(
        self,
        table: RecordTable[R],
        key: str,
        before: R | None,
        after: R | None,
        reply: Message | None,
        *,
        to: Envelope,
    ) -> None:
        """A participant's usual end: check the new record, answer, then store it.

        Checked first so that a refused record leaves no answer behind; stored last,
        so that a crash before it replays the command, which answers the same again.
        """
        stored = table.fit(after) if after is not None and after != before else None
        if reply is not None:
            await self.reply(reply, to=to, key=key)
        if stored is not None:
            table[key] = stored

    async def dead_letter(self, event: EventT, reason: str, attempts: int) -> None:
        """Park a message, raw, on its topic's DLQ with the reason and where it was read.

        One too large for the producer once the ``dlq.*`` headers are added is
        parked as a stub naming where the original is (ordersaga.shell.dead_letters).
        """
        record = event.message
        source = record.topic
        key = event.key.encode() if isinstance(event.key, str) else event.key
        timestamp = getattr(record, "timestamp", None)
        letter = dead_letters.dead_letter(
            topic=source,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=int(timestamp * 1000) if timestamp is not None else None,
            key=key,
            value=event.value,
            headers=raw_headers(event.headers),
            reason=reason,
            attempts=attempts,
            group=self.group.name,
            max_bytes=self.dead_letter_max_bytes,
        )
        await self.topic(dlq_topic(source)).send(
            key=letter.key, value=letter.value, headers=letter.headers
        )
        self.metrics.dead_letters.labels(source).inc()
        if letter.cut:
            self.metrics.dead_letters_cut.labels(source).inc()
        log.warning(
            "dead-lettered %s[%s]@%s%s: %s",
            source,
            record.partition,
            record.offset,
            f" (cut to a stub: {letter.size} bytes)" if letter.cut else "",
            printable(reason),
        )

    @property
    def dead_letter_max_bytes(self) -> int:
        """The largest dead letter this worker's producer can send."""
        limit = int(self.app.conf.producer_max_request_size)
        return limit - dead_letters.PRODUCER_MARGIN

    # ----------------------------------------------------------------- consume

    async def consume(
        self,
        stream: StreamT,
        handler: Handler,
        agent: str,
        *,
        many: ManyHandler | None = None,
        many_types: tuple[type[Message], ...] = (),
    ) -> None:
        """Run ``handler`` on every message of ``stream``: parse, retry, dead-letter.

        In a running worker the consumer hands each fetch of the stream's topics
        straight to :meth:`handle_event`, a fetch in one turn of the loop
        (``patches.deliver_fetches_directly``); the stream still carries whatever
        Faust delivers itself (a topic with a second reader, ``agent.test_context()``).
        With ``many``, the messages of ``many_types`` among a fetch's consecutive
        records go to it at once (it must write no table); what it cannot apply
        goes through ``handler`` one by one, with its retries and dead letters.
        """
        last_offsets: dict[Any, tuple[int, int]] = {}  # tp -> (generation, offset)

        async def handle(event: EventT) -> None:
            await self.handle_event(event, handler, agent, last_offsets)

        async def handle_many(events: list[EventT]) -> None:
            assert many is not None
            await self.handle_events(events, handler, many, many_types, agent, last_offsets)

        batched = many is not None and self.tracing is None
        deliver_directly(self.app, agent, stream.channel, handle, handle_many if batched else None)
        async for event in stream.events():
            await handle(event)

    async def handle_event(
        self,
        event: EventT,
        handler: Handler,
        agent: str,
        last_offsets: dict[Any, tuple[int, int]],
    ) -> None:
        """One message through ``handler``, its ids the log context while it is handled."""
        self._note_skipped_offsets(event, last_offsets)
        envelope, message, failure = self._decode(event)
        await self._handle_in_context(event, envelope, message, failure, handler, agent)

    async def handle_events(
        self,
        events: list[EventT],
        handler: Handler,
        many: ManyHandler,
        many_types: tuple[type[Message], ...],
        agent: str,
        last_offsets: dict[Any, tuple[int, int]],
    ) -> None:
        """Consecutive messages of one fetch: ``many`` takes those of ``many_types`` at once."""
        ready: list[tuple[EventT, Envelope, Message]] = []
        for event in events:
            self._note_skipped_offsets(event, last_offsets)
            envelope, message, failure = self._decode(event)
            if envelope is not None and isinstance(message, many_types) and failure is None:
                ready.append((event, envelope, message))
            else:
                await self._handle_in_context(event, envelope, message, failure, handler, agent)
        if not ready:
            return
        try:
            outcomes: list[Outcome | Exception] = list(
                await many([(envelope, message) for _, envelope, message in ready])
            )
        except Exception as exc:  # each goes one by one then, with its retries
            outcomes = [exc] * len(ready)
        for (event, envelope, message), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, Exception):
                await self._handle_in_context(event, envelope, message, None, handler, agent)
            else:
                self._count_handled(agent, envelope.type, outcome or "ok")

    def _decode(self, event: EventT) -> tuple[Envelope | None, Message | None, DecodeError | None]:
        record = event.message
        headers = raw_headers(event.headers)
        unreadable = why_unreadable(event.key, headers)
        if unreadable is not None:
            layer, reason = unreadable
            self.metrics.undecodable_records.labels(record.topic, layer).inc()
            return None, None, DecodeError(reason)
        try:
            envelope, message = decode(event.value, headers, types=self.topology.message_types)
        except DecodeError as exc:
            self.metrics.undecodable_records.labels(record.topic, "envelope").inc()
            return exc.envelope, None, exc
        return envelope, message, None

    async def _handle_in_context(
        self,
        event: EventT,
        envelope: Envelope | None,
        message: Message | None,
        failure: DecodeError | None,
        handler: Handler,
        agent: str,
    ) -> None:
        # Each message's ids (order, correlation, event, where it was read) are the
        # log context while it is handled, so every line it causes carries them.
        record = event.message
        token = bind(
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                **message_ids(envelope),
            }
        )
        try:
            if self.tracing is None:
                await self._handle(event, envelope, message, failure, handler, agent)
            else:
                await self._handle_traced(
                    self.tracing, event, envelope, message, failure, handler, agent
                )
        finally:
            unbind(token)

    async def _handle_traced(
        self,
        tracing: Tracing,
        event: EventT,
        envelope: Envelope | None,
        message: Message | None,
        failure: DecodeError | None,
        handler: Handler,
        agent: str,
    ) -> None:
        """``_handle`` in a span, the child of the one that sent the message."""
        record = event.message
        with tracing.handling(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=event.key,
            headers=header_pairs(event.headers),
            envelope=envelope,
        ) as span:
            outcome = await self._handle(event, envelope, message, failure, handler, agent)
            span.set_attribute("ordersaga.outcome", outcome)

    async def _handle(
        self,
        event: EventT,
        envelope: Envelope | None,
        message: Message | None,
        failure: DecodeError | None,
        handler: Handler,
        agent: str,
    ) -> str:
        """Run ``handler`` on one message, retrying what may pass next time; the outcome."""
        if failure is not None or envelope is None or message is None:
            reason = str(failure)
            self._count_handled(agent, "?", "dead_letter")
            await self.dead_letter(event, reason, attempts=1)
            if envelope is not None:
                await self._reject(event, envelope, reason)
            return "dead_letter"
        attempts = self.settings.handler_max_attempts
        tried = 1
        outcome: str | None = None
        try:
            try:
                # The first attempt outside tenacity: building its retry state for
                # every message cost ~4% of a loaded worker's CPU.
                outcome = await handler(envelope, message)
            except Exception as first:
                if attempts <= 1 or not _is_transient(first):
                    raise
                await asyncio.sleep(0.05)  # tenacity's first wait, had it run attempt 1
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(attempts - 1),
                    wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
                    retry=retry_if_exception(_is_transient),
                    reraise=True,
                ):
                    with attempt:
                        tried += 1
                        outcome = await handler(envelope, message)
        except Exception as exc:  # the worker keeps going whatever the input
            self._count_handled(agent, envelope.type, "dead_letter")
            reason = _reason(exc)
            await self.dead_letter(event, reason, attempts=tried)
            if not _is_transient(exc):
                await self._reject(event, envelope, reason)
            return "dead_letter"
        self._count_handled(agent, envelope.type, outcome or "ok")
        return outcome or "ok"

    def _count_handled(self, agent: str, message_type: str, outcome: str) -> None:
        # prometheus_client's labels() checks and locks on every call; the children
        # are kept here (few: agents x known types x outcomes).
        key = (agent, message_type, outcome)
        child = self._handled.get(key)
        if child is None:
            child = self._handled[key] = self.metrics.messages_handled.labels(*key)
        child.inc()

    async def _reject(self, event: EventT, envelope: Envelope, reason: str) -> None:
        """Tell the orchestrator that a command about an order can never be applied.

        Without this the saga waits out the step's deadline, re-sends the same
        command (refused the same way) and ends ``step_timeout``, which is untrue.
        """
        topic = event.message.topic
        if topic not in self.topology.rejection_reply_topics or not envelope.order_id:
            return
        if not self.topology.carries(topic, envelope.type):  # misrouted: not this step's command
            return
        rejected = CommandRejected(
            order_id=envelope.order_id, command=envelope.type, reason=reason[:500]
        )
        await self.send(
            rejected,
            key=envelope.order_id,
            cause=envelope,
            event_id=f"{envelope.event_id}:rejected",
        )

    def _note_skipped_offsets(self, event: EventT, last: dict[Any, tuple[int, int]]) -> None:
        """Count offsets a partition jumped over within one consumer generation.

        Our topics have no gaps (no compaction, no transactions), so a jump means
        messages that reached no handler. Faust skips (and acks) messages around a
        rebalance; the re-drives (step deadlines, unconfirmed orders) recover what
        they carried, and this metric shows how often they have to.
        """
        message = event.message
        generation = getattr(message, "generation_id", 0) or 0
        previous = last.get(message.tp)
        last[message.tp] = (generation, message.offset)
        if previous is None or previous[0] != generation or message.offset <= previous[1] + 1:
            return
        skipped = message.offset - previous[1] - 1
        self.metrics.offsets_skipped.labels(message.topic).inc(skipped)
        log.warning(
            "skipped offsets %s[%s] %d..%d within generation %s",
            message.topic,
            message.partition,
            previous[1] + 1,
            message.offset - 1,
            generation,
        )


def _reason(exc: BaseException) -> str:
    """A dead-letter reason: the exception's type and its first line, bounded."""
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        return f"ValidationError: {exc.title}.{where}: {err['msg']}"[:1000]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:1000]


__all__ = [
    "ALL_DLQ_TOPICS",
    "ALL_TOPICS",
    "Node",
    "RecordTooLarge",
    "drain_producer_buffer_before_commit",
]


def _instance_host(hostname: str) -> str:
    """``hostname`` in the characters an instance id may hold, at most 63 of them."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", hostname)[:63] or "host"
