"""Faust's consumer hands a fetch to its agents in one turn of the loop: the batch shell.

A patch of Faust like those of ``ordersaga.shell.patches`` (which applies it),
kept in a module of its own for its size. ARCHITECTURE.md ("Faust patches, and
why") and BENCHMARKS.md (issue 21, third steps) say why and what it measured.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
import orjson
from faust.streams import current_event

log = logging.getLogger(__name__)


DirectHandler = Callable[[Any], Awaitable[None]]
# Takes consecutive records of one fetch at once; writes no table (no event context).
BatchHandler = Callable[[list[Any]], Awaitable[None]]
Reader = tuple[str, DirectHandler, BatchHandler | None]


def _direct_handlers(app: faust.App) -> dict[str, Reader | None]:
    """topic -> (agent, handlers) of the topics delivered directly; None: read by two agents."""
    found = cast(Any, app).__dict__.get("_ordersaga_direct")
    if found is None:
        found = cast(Any, app)._ordersaga_direct = {}
    return cast(dict[str, Reader | None], found)


class ChangelogWrites:
    """Table writes made while a record delivered here is handled, sent with its replies.

    Faust sends a table write as a ``FutureMessage`` through its producer buffer
    (a ``PendingMessage``, a callback, the buffer's task): a seventh of the
    orchestrator's CPU for six or seven writes a saga (issue 21). A write made
    while ``event`` is handled is queued here as the bytes Faust would have sent
    to the same changelog partition (the record's), and handed to the producer
    with the record's replies before the record is acked, so the offset commit,
    which waits for the producer's flush, still comes after it.
    """

    __slots__ = ("event", "pending")

    def __init__(self) -> None:
        #: The record being handled now (None between records).
        self.event: Any = None
        #: (changelog topic, partition, key, value or None for a tombstone)
        self.pending: list[tuple[Any, int, bytes, bytes | None]] = []


def _changelog_writes(app: Any) -> ChangelogWrites:
    found = app.__dict__.get("_ordersaga_writes")
    if found is None:
        found = app._ordersaga_writes = ChangelogWrites()
    return cast(ChangelogWrites, found)


def write_changelog(table: Any, key: str, value: bytes | None) -> bool:
    """Queue a write of ``table`` (``value`` None: a deletion) for the producer.

    True when queued, and the caller then changes the table's data itself; False
    when the write must take Faust's path (``table[key] = ...``): it is not made
    while a record delivered here is handled (an agent test, a Faust stream).
    """
    writes = table.app.__dict__.get("_ordersaga_writes")
    if writes is None or writes.event is None or table.use_partitioner:
        return False
    event = current_event()
    if event is not writes.event:
        return False
    # The key as Faust's json key serializer writes it.
    writes.pending.append(
        (table.changelog_topic, event.message.partition, orjson.dumps(key), value)
    )
    return True


def _failed_write(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("changelog write failed: %r", fut.exception())


def _rewinds(consumer: Any) -> dict[Any, int]:
    """tp -> first offset fetched and left unhandled (a rebalance began), to read again."""
    found = consumer.__dict__.get("_ordersaga_rewind")
    if found is None:
        found = consumer._ordersaga_rewind = {}
    return cast(dict[Any, int], found)


def deliver_directly(
    app: faust.App,
    agent: str,
    channel: Any,
    handle: DirectHandler,
    handle_many: BatchHandler | None = None,
) -> None:
    """Have the consumer hand every record of ``channel``'s topics to ``handle``.

    Called by the agent as it starts (again after a restart: the same agent then
    takes its place back). A topic a second agent reads stays on Faust's own path,
    which delivers each record to every reader. With ``handle_many``, a fetch's
    consecutive records of these topics go to it at once instead.
    """
    handlers = _direct_handlers(app)
    reader = (agent, handle, handle_many)
    for name in getattr(channel, "topics", ()):
        known = handlers.get(name, reader)
        handlers[name] = reader if known is not None and known[0] == agent else None


def deliver_fetches_directly() -> None:
    """Hand what one fetch returned to the agents' handlers in one turn of the loop.

    Faust's ``_drain_messages`` passes each record through ``wait_first`` (four
    tasks, a turn of the loop) into the stream's queue, and the stream iterator
    takes another turn per event: so the producer's sender runs between records
    and sends one produce request per record, and every record pays for the
    turns (issue 21: 1.4-1.8 ms of system CPU per handled message in the
    bare-Faust chain). Here a record of a topic whose only reader registered
    with :func:`deliver_directly` is collected; at the end of the fetch (or
    before a record that takes Faust's path, so order holds) the collected
    records are handled one after the other, each acked once handled, as the
    stream would. What the handlers send leaves in as few requests as the
    fetch allows, with no linger.

    What Faust guarantees stays: a record is tracked as unacked until handled,
    so a rebalance waits for it and a commit (after the producer's flush) never
    passes it; when the flow is suspended (a rebalance began) the records not
    yet handled are left unacked and unhandled, and the consumer seeks back to
    the first of them once the flow resumes (``read_again``). Table writes are
    handed to the producer after each record (``hand_over_table_writes``), so
    they leave in the same produce request as the record's replies.
    """
    from faust.events import Event
    from faust.streams import _current_event
    from faust.transport import consumer as faust_consumer
    from mode.utils.futures import notify

    consumer_cls = faust_consumer.Consumer
    if getattr(consumer_cls, "_ordersaga_direct", False):
        return
    fetching = faust_consumer.CONSUMER_FETCHING

    async def deliver(self: Any, batch: list[tuple[Reader, Any]]) -> None:
        app = self.app
        unacked = self._unacked_messages
        inbound = cast(Any, app.monitor).stream_inbound_time
        suspended = self.suspend_flow.is_set
        buffer = app.producer.buffer
        writes = _changelog_writes(app)
        for _, message in batch:
            unacked.add(message)
        handled = 0
        try:
            now = time.monotonic()
            while handled < len(batch) and not suspended():
                (_, handle, handle_many), message = batch[handled]
                if handle_many is None:
                    inbound[message.tp] = now
                    event = Event(app, message.key, message.value, message.headers, message)
                    token = _current_event.set(weakref.ref(event))
                    writes.event = event
                    try:
                        await handle(event)
                    finally:
                        writes.event = None
                        _current_event.reset(token)
                    await hand_over_table_writes(app, buffer, writes)
                    self.ack(message)
                    handled += 1
                    continue
                # The run of records that share this batch handler, handled at once.
                end = handled + 1
                while end < len(batch) and batch[end][0][2] is handle_many:
                    end += 1
                run = [m for _, m in batch[handled:end]]
                for m in run:
                    inbound[m.tp] = now
                await handle_many([Event(app, m.key, m.value, m.headers, m) for m in run])
                await hand_over_table_writes(app, buffer, writes)
                for m in run:
                    self.ack(m)
                handled = end
        finally:
            rewind = _rewinds(self)
            for _, message in batch[handled:]:
                unacked.discard(message)
                rewind.setdefault(message.tp, message.offset)
            notify(self._waiting_for_ack)

    async def hand_over_table_writes(app: Any, buffer: Any, writes: ChangelogWrites) -> None:
        # A table write waits in Faust's producer buffer for the buffer's own task,
        # a turn of the loop later, by when the handler's replies have left in a
        # produce request of their own. Handed to the producer here, they leave
        # together. Only while the buffer's task is not itself handing one over:
        # two writes of a key must reach the changelog in the order they were made.
        pending = buffer.pending
        while pending.qsize() and not getattr(buffer, "_ordersaga_sending", 0):
            await buffer._send_pending(pending.get_nowait())
            buffer.message_sent.set()
        if not writes.pending:
            return
        if pending.qsize() or getattr(buffer, "_ordersaga_sending", 0):
            # Writes that took Faust's path before these go first, for the same reason.
            await buffer.flush()
        queued, writes.pending = writes.pending, []
        client = app.producer._producer
        for changelog, partition, key, value in queued:
            if client is None:  # the producer is gone (stopping): Faust's path
                changelog.send_soon(
                    key=key,
                    value=value,
                    partition=partition,
                    key_serializer="raw",
                    value_serializer="raw",
                )
                continue
            sent = await client.send(changelog.topics[0], value, key=key, partition=partition)
            sent.add_done_callback(_failed_write)

    async def fetched(self: Any, direct: dict[str, Any]) -> list[tuple[Any, Any]]:
        # Faust's ``getmany``, less two losses: the records it drops (the flow was
        # stopped or the generation changed while the fetch was out, or their
        # partition is paused) had already moved aiokafka's position past them,
        # and only a partition with a committed offset above 0 is sought back.
        # Here a dropped record of a directly delivered topic is read again.
        records, active = await self._wait_next_records(1.0)
        if records is None or self.should_stop:
            return []
        generation = self.app.consumer_generation_id
        taken: list[tuple[Any, Any]] = []
        if self.flow_active:
            to_message = self._to_message
            buffered = self._buffered_partitions
            track_end = self.app.monitor.track_tp_end_offset
            for tp, record in self.scheduler.iterate(records):
                if not self.flow_active or self.app.consumer_generation_id != generation:
                    break
                if active is None or tp in active or tp in buffered:
                    track_end(tp, self.highwater(tp))
                    taken.append((tp, to_message(tp, record)))
        else:
            try:
                await self.perform_seek()
            except Exception as exc:
                log.warning("seek when the flow is not active failed: %r", exc)
        if len(taken) == sum(len(tp_records) for tp_records in records.values()):
            return taken  # nothing dropped: the usual case, no more to do
        kept = {(tp, message.offset) for tp, message in taken}
        rewind = _rewinds(self)
        for tp, tp_records in records.items():
            if tp.topic in direct:
                for record in tp_records:
                    if (tp, record.offset) not in kept:
                        rewind.setdefault(tp, record.offset)
                        break
        return taken

    async def read_again(self: Any) -> None:
        # After a rebalance aiokafka seeks only to a committed offset above 0, so
        # a partition with none would keep its position past records fetched and
        # left unhandled: seek back to the first of them. Safe whatever the
        # rebalance did: the records before it were handled here, and any after
        # it that another worker handled meanwhile are read twice, which every
        # handler absorbs.
        rewind = _rewinds(self)
        if not self.flow_active:
            await self.wait(self.can_resume_flow)
        assigned = self.assignment()
        for tp, offset in list(rewind.items()):
            del rewind[tp]
            if tp in assigned:
                log.warning("reading %s[%s] again from %d", tp.topic, tp.partition, offset)
                await self.seek(tp, offset)

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        direct = _direct_handlers(self.app)
        batch: list[tuple[Reader, Any]] = []
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                if _rewinds(self):
                    await read_again(self)
                self.diag.set_flag(fetching)
                records = await fetched(self, direct)
                await self.sleep(0)
                if not self.should_stop:
                    for tp, message in records:
                        offset = message.offset
                        r_offset = read_offset[tp]
                        if r_offset is not None and offset < r_offset:
                            continue
                        if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        reader = direct.get(message.topic)
                        if reader is not None:
                            batch.append((reader, message))
                            # Set now: a record left unhandled by a suspended flow is
                            # then never taken for a gap (acked) by the next one.
                            read_offset[tp] = offset
                            continue
                        if batch:
                            await deliver(self, batch)
                            batch = []
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        read_offset[tp] = offset
                    if batch:
                        await deliver(self, batch)
                        batch = []
                self.diag.unset_flag(fetching)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            # Collected but not yet handed over (cancelled meanwhile): read again.
            for _, message in batch:
                _rewinds(self).setdefault(message.tp, message.offset)
            self.diag.unset_flag(fetching)

    consumer_cls._drain_messages = _drain_messages  # type: ignore[method-assign]
    consumer_cls._ordersaga_direct = True  # type: ignore[attr-defined]
