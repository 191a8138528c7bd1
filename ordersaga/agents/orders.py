"""The orders group: the saga orchestrator.

Run alone with ``faust -A ordersaga.agents.orders worker``. The rules are in
``ordersaga.saga.orchestrator``; this shell reads a saga, calls ``decide``,
sends what it returned and writes the saga back. :func:`build` makes the group
from explicit settings; the module's attributes are those of the default group
(``ordersaga.agents.building``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
from faust.types import AgentT, StreamT

from ordersaga.adapters.queue_probe import Place, QueueProbe
from ordersaga.agents.building import DefaultGroup, toplevel
from ordersaga.config.settings import Settings
from ordersaga.saga.agenda import Agenda
from ordersaga.saga.orchestrator import (
    Policy,
    SagaState,
    awaited_command,
    decide,
    expired,
    forget_batches,
    forgettable,
    one_event,
    split_forgettable,
)
from ordersaga.saga.order_ids import may_start
from ordersaga.saga.order_stock import direct_holds
from ordersaga.schemas.messages import (
    Envelope,
    ForgetHolds,
    ForgetOrders,
    Message,
    OrderEnded,
    OrderLine,
    PlaceOrder,
)
from ordersaga.schemas.status import TERMINAL, TERMINAL_EVENT_NAMES
from ordersaga.shell.dispatch import Dispatch, Handler
from ordersaga.shell.groups import group as agent_group
from ordersaga.shell.records import RecordTable
from ordersaga.shell.topics import (
    CONSUMING_GROUP,
    FORGET_TOPICS,
    INVENTORY_COMMANDS,
    INVENTORY_SKU_COMMANDS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_REPLIES,
    partition_of,
    topic_of,
)
from ordersaga.shell.worker import Worker
from ordersaga.tables import FORGOTTEN_ORDERS, SAGAS

log = logging.getLogger(__name__)


@dataclass
class Orders:
    """One orders group: its worker, the sagas, the agendas its timers read, and its agent.

    ``queue_probe`` is read through the group when a scan runs, so a test without
    a broker may put a probe of its own in its place.
    """

    node: Worker
    app: faust.App
    settings: Settings
    policy: Policy
    sagas: RecordTable[SagaState]
    forgotten: RecordTable[float]
    deadlines: Agenda
    forgets: Agenda
    in_flight: dict[str, str]
    memory_ends: dict[int, Agenda]
    remember_forgotten: Callable[[str, float], None]
    file_restored_forgotten: Callable[[], Awaitable[None]]
    count_in_flight: Callable[[str, str | None], None]
    file_saga: Callable[[str, Any], None]
    file_restored_sagas: Callable[[], Awaitable[None]]
    forget_sagas: Callable[[Envelope, ForgetOrders], Awaitable[str | None]]
    advance_saga: Handler
    run_saga: Dispatch
    run_sagas: AgentT[Any]
    queue_probe: QueueProbe
    waiting_places: Callable[[SagaState], set[Place]]
    expire_overdue_steps: Callable[[], Awaitable[None]]
    forget_finished_orders: Callable[[], Awaitable[None]]


def build(settings: Settings) -> Orders:
    """The orders group, configured from ``settings`` alone."""
    node = Worker("orders", settings)
    app = node.app
    policy: Policy = settings.saga_policy()
    sagas = node.table(SAGAS)
    forgotten = node.table(FORGOTTEN_ORDERS)
    # What the timers read instead of the whole table: each saga under its next deadline
    # while in flight, under the time it may be forgotten once ended.
    deadlines = Agenda()
    forgets = Agenda()
    #: order id -> status of every saga not yet ended (the in-flight gauge counts them)
    in_flight: dict[str, str] = {}
    #: partition -> its forgotten orders under the time their memory may go (the table
    #: is written only while handling a message of the key's partition)
    memory_ends: dict[int, Agenda] = {}

    def remember_forgotten(order_id: str, ended_at: float) -> None:
        """File a forgotten order under the time its memory may go."""
        partition = partition_of(order_id, settings.partitions)
        memory_ends.setdefault(partition, Agenda()).at(order_id, ended_at + settings.order_memory_s)

    @forgotten.faust_table.on_recover
    async def file_restored_forgotten() -> None:
        """File every remembered order of this worker's partitions again."""
        memory_ends.clear()
        for order_id, ended_at in forgotten.items():
            remember_forgotten(order_id, float(ended_at))

    #: status or step -> its gauge or histogram child: labels() takes a lock per call,
    #: three times a decision (issue 21)
    in_flight_gauges: dict[str, Any] = {}
    step_histograms: dict[str, Any] = {}

    def in_flight_gauge(status: str) -> Any:
        child = in_flight_gauges.get(status)
        if child is None:
            child = in_flight_gauges[status] = node.metrics.sagas_in_flight.labels(status)
        return child

    def count_in_flight(order_id: str, status: str | None) -> None:
        """Move one saga between the in-flight gauge's statuses (None: it ended or left)."""
        before = in_flight.pop(order_id, None)
        if before is not None:
            in_flight_gauge(before).dec()
        if status is not None and status not in TERMINAL:
            in_flight[order_id] = status
            in_flight_gauge(status).inc()

    def file_saga(order_id: str, stored: Any) -> None:
        """File a saga just written (or restored) in the agenda its state calls for."""
        count_in_flight(order_id, stored.get("status"))
        if stored.get("status") in TERMINAL:
            deadlines.drop(order_id)
            ended = datetime.fromisoformat(stored["updated_at"]).timestamp()
            forgets.at(order_id, ended + settings.retention_s)
        elif stored.get("deadline") is not None:
            deadlines.at(order_id, stored["deadline"])

    @sagas.faust_table.on_recover
    async def file_restored_sagas() -> None:
        """File every saga of this worker's partitions, which may just have changed."""
        deadlines.clear()
        forgets.clear()
        in_flight.clear()
        node.metrics.sagas_in_flight.clear()
        in_flight_gauges.clear()
        for order_id, stored in sagas.items():
            if stored:
                file_saga(order_id, stored)

    def _status_of(order_id: str) -> str | None:
        stored = sagas.get(order_id)
        return stored.get("status") if stored else None

    async def forget_sagas(envelope: Envelope, message: ForgetOrders) -> str | None:
        """Delete ended sagas, then tell every participant to forget those orders too.

        The saga goes first, so that whoever reads the tables never finds a live saga
        whose participants forgot it.
        """
        in_flight, done = split_forgettable(message.order_ids, _status_of)
        ended = {
            order_id: datetime.fromisoformat(stored["updated_at"]).timestamp()
            for order_id in done
            if (stored := sagas.get(order_id))
        }
        # A one-SKU order's holds have no gather record to name them: its SKU is
        # told here, acked before the saga goes, so that a replay after a crash
        # still finds the saga's items to tell it again.
        direct = direct_holds(
            (order_id, tuple(map(OrderLine.model_validate, stored["items"])))
            for order_id in ended
            if (stored := sagas.get(order_id))
        )
        # Sent together and acknowledged together: one round trip, not one per SKU,
        # while this handler holds up the orchestrator's partitions.
        deliveries = [
            await node.send(
                ForgetHolds(sku=sku, order_ids=tuple(order_ids)),
                key=sku,
                cause=envelope,
                event_id=f"{envelope.event_id}:{sku}",
            )
            for sku, order_ids in direct.items()
        ]
        await asyncio.gather(*deliveries)
        # Remembered before the saga goes: a crash in between replays this, which
        # finds the saga still there and writes the same.
        for order_id, ended_at in ended.items():
            forgotten[order_id] = forgotten.fit(ended_at)
            remember_forgotten(order_id, ended_at)
        outcome = sagas.forget(
            message.order_ids, keep=lambda stored: stored["order_id"] in in_flight
        )
        for order_id in done:
            forgets.drop(order_id)
        # This partition's orders forgotten longer than the memory ago go now: their
        # ids are too old to start anyway.
        if message.order_ids:
            partition = partition_of(message.order_ids[0], settings.partitions)
            expired = memory_ends.get(partition, Agenda()).due(time.time())
            if expired:
                forgotten.forget(expired)
        if done:
            forward = ForgetOrders(order_ids=done)
            partition = partition_of(done[0], settings.partitions)
            for topic in FORGET_TOPICS:
                await node.send(
                    forward,
                    key=done[0],
                    cause=envelope,
                    topic=topic,
                    partition=partition,
                    event_id=f"{envelope.event_id}:{topic}",
                )
        return outcome

    async def advance_saga(envelope: Envelope, message: Message) -> str | None:
        """Apply one command, reply or deadline to its saga; send what the rules decide."""
        order_id = envelope.order_id or getattr(message, "order_id", None)
        if not order_id:
            raise ValueError(f"{envelope.type} names no order")
        before = sagas.load(order_id)
        now = time.time()
        if (
            before is None
            and isinstance(message, PlaceOrder)
            and not may_start(
                order_id,
                envelope.occurred_at.timestamp(),
                now,
                settings.order_memory_s,
                forgotten=order_id in forgotten,
            )
        ):
            # It ran and was forgotten, or may have: running it again could charge twice.
            log.warning("PlaceOrder of an order already run (or too old to tell): not started")
            return "already_run"
        decision = decide(before, message, now, policy)
        if decision.state is None or not (decision.changed or decision.events):
            return "unchanged"
        state = decision.state
        if before is None:
            # The request's correlation id stays with the saga for all it causes.
            state = state.model_copy(update={"correlation_id": envelope.correlation_id})
        correlation_id = state.correlation_id or envelope.correlation_id
        stored = sagas.fit(state) if decision.changed else None
        # Ids derive from the saga's event sequence, so a replayed decision resends the
        # very same messages and consumers can recognise them.
        for i, command in enumerate(decision.commands):
            await node.send(
                command,
                # A customer's commands are keyed by customer, to meet its account.
                key=command.routing_key() or order_id,
                cause=envelope,
                correlation_id=correlation_id,
                event_id=f"{order_id}:{state.seq}:{state.attempt}:{i}:{command.TYPE}",
            )
        event = one_event(decision.events)
        if event is not None:
            await node.send(
                event,
                key=order_id,
                cause=envelope,
                correlation_id=correlation_id,
                topic=ORDERS_EVENTS,
                event_id=f"{order_id}:{event.seq}",
            )
            if event.name in TERMINAL_EVENT_NAMES:
                await node.send(
                    OrderEnded.of(event),
                    key=order_id,
                    cause=envelope,
                    correlation_id=correlation_id,
                    event_id=f"{order_id}:{event.seq}:ended",
                )
        if stored is None:
            return "republished"
        # Written last: if a send fails, the retry recomputes the same decision.
        sagas[order_id] = stored
        file_saga(order_id, stored)
        if decision.step_latency:
            step, seconds = decision.step_latency
            histogram = step_histograms.get(step)
            if histogram is None:
                histogram = step_histograms[step] = node.metrics.step_latency.labels(step)
            histogram.observe(seconds)
        # A saga's first and last lines; the steps between are logged by the
        # participants that apply them.
        if before is None:
            log.info("saga started: %s", state.status.value)
        if state.terminal and (before is None or not before.terminal):
            reason = f" {state.failure_reason.value}" if state.failure_reason else ""
            log.info("saga ended: %s%s", state.status.value, reason)
        if state.terminal:
            node.metrics.saga_outcomes.labels(
                state.status.value, state.failure_reason.value if state.failure_reason else ""
            ).inc()
        return None

    run_saga = Dispatch(
        f"on {ORDERS_COMMANDS} or {ORDERS_REPLIES}", forget=forget_sagas, otherwise=advance_saga
    )

    @app.agent(node.topic(ORDERS_COMMANDS, ORDERS_REPLIES))
    @toplevel
    async def run_sagas(stream: StreamT) -> None:
        """Drive every saga from its commands, participant replies and deadlines."""
        await node.consume(stream, run_saga, "run_sagas")

    def waiting_places(state: SagaState) -> set[Place]:
        """Where the awaited command (and, for stock, its per-SKU commands) may be waiting."""
        command = awaited_command(state)
        if command is None:
            return set()
        topic = topic_of(command)
        group = CONSUMING_GROUP.get(topic)
        if group is None:
            return set()
        app_id, partitions = agent_group(group).app_id, settings.partitions
        places: set[Place] = set()
        if topic != INVENTORY_SKU_COMMANDS:
            # Keyed as it was sent: by the field the command routes on (the order's by default).
            key = str(getattr(state, command.ROUTING_FIELD, state.order_id))
            places.add((app_id, topic, partition_of(key, partitions)))
        if topic in (INVENTORY_COMMANDS, INVENTORY_SKU_COMMANDS):
            places |= {
                (app_id, INVENTORY_SKU_COMMANDS, partition_of(line.sku, partitions))
                for line in state.items
            }
        return places

    @node.timer(interval=settings.deadline_scan_interval_s)
    @toplevel
    async def expire_overdue_steps() -> None:
        """Send a deadline message for every local saga whose awaited reply is overdue.

        Tables can only be written while handling a message of their partition, so
        the timer does not change sagas itself: it sends StepDeadlineExpired to the
        saga's own partition and ``advance_saga`` decides. It reads the agenda, not
        the table, so a tick costs the sagas that are due; after a restart the
        restored sagas are filed again, so in-flight sagas resume alone. Whether each
        late command still waits in its participant's queue is read from the broker
        once per scan, and only when some step is late.
        """
        now = time.time()
        overdue = []
        for order_id in deadlines.due(now):
            stored = sagas.get(order_id)
            if not stored or stored.get("status") in TERMINAL or stored.get("deadline") is None:
                continue
            # Looked at again one step timeout from now, unless the saga changes first:
            # the deadline message may still be queued, and one per timeout is enough.
            deadlines.at(order_id, max(stored["deadline"], now + policy.step_timeout_s))
            if now < stored["deadline"]:
                continue
            state = SAGAS.load(stored)
            overdue.append((state, waiting_places(state)))
        if overdue:
            await built.queue_probe.refresh(set().union(*(places for _, places in overdue)))
        for state, places in overdue:
            sent_at = state.sent_at or now
            queued = any(built.queue_probe.queued(p, sent_at) for p in places)
            message = expired(state, now, queued=queued)
            if message is None:
                continue
            await node.send(
                message,
                key=state.order_id,
                correlation_id=state.correlation_id,
                event_id=f"{state.order_id}:deadline:{message.awaiting}:{message.attempt}"
                f":{message.deadline:.3f}",
            )

    @node.timer(interval=settings.forget_scan_interval_s)
    @toplevel
    async def forget_finished_orders() -> None:
        """Have every group drop the orders that ended more than the retention period ago.

        Without it the tables grow with every order ever placed. Tables change only
        while handling a message of their partition, so the timer sends ForgetOrders
        to the orchestrator's own input, on the partition the orders' keys hash to;
        ``forget_sagas`` does the rest. An order not deleted within
        ``ORDERSAGA_FORGET_RESEND_AFTER_S`` (a lost message) is asked for again.
        """
        now = time.time()
        due = []
        for order_id in forgets.due(now):
            stored = sagas.get(order_id)
            if stored and forgettable(stored, now, settings.retention_s):
                due.append(order_id)
                forgets.at(order_id, now + settings.forget_resend_after_s)
        partitions = settings.partitions
        for partition, order_ids in forget_batches(
            due, lambda key: partition_of(key, partitions), settings.forget_batch
        ):
            await node.send(
                ForgetOrders(order_ids=order_ids),
                key=order_ids[0],
                topic=ORDERS_COMMANDS,
                partition=partition,
                event_id=f"forget:{order_ids[0]}:{len(order_ids)}",
            )

    built = Orders(
        node=node,
        app=app,
        settings=settings,
        policy=policy,
        sagas=sagas,
        forgotten=forgotten,
        deadlines=deadlines,
        forgets=forgets,
        in_flight=in_flight,
        memory_ends=memory_ends,
        remember_forgotten=remember_forgotten,
        file_restored_forgotten=file_restored_forgotten,
        count_in_flight=count_in_flight,
        file_saga=file_saga,
        file_restored_sagas=file_restored_sagas,
        forget_sagas=forget_sagas,
        advance_saga=advance_saga,
        run_saga=run_saga,
        run_sagas=run_sagas,
        queue_probe=QueueProbe(settings.bootstrap_servers),
        waiting_places=waiting_places,
        expire_overdue_steps=expire_overdue_steps,
        forget_finished_orders=forget_finished_orders,
    )
    return built


default = DefaultGroup(__name__, build, Orders)


def __getattr__(name: str) -> Any:
    # PEP 562: the default group's parts, built on first access.
    return default.attribute(name)


def __dir__() -> list[str]:
    return sorted({*globals(), *default.names()})
