"""The orders group: the saga orchestrator.

Run alone with ``faust -A ordersaga.agents.orders worker``. The rules are in
``ordersaga.saga.orchestrator``; this shell reads a saga, calls ``decide``,
sends what it returned and writes the saga back.
"""

from __future__ import annotations

import time

from faust.types import StreamT

from ordersaga.adapters.queue_probe import Place, QueueProbe
from ordersaga.app.dispatch import Dispatch
from ordersaga.app.groups import group as agent_group
from ordersaga.app.node import Node
from ordersaga.app.topics import (
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
from ordersaga.saga.orchestrator import (
    Policy,
    SagaState,
    awaited_command,
    decide,
    expired,
    forget_batches,
    forgettable,
    split_forgettable,
)
from ordersaga.saga.throttle import Throttle
from ordersaga.schemas.messages import Envelope, ForgetOrders, Message
from ordersaga.schemas.status import TERMINAL
from ordersaga.tables import SAGAS

node = Node("orders")
app = node.app
settings = node.settings
policy = Policy(
    step_timeout_s=settings.step_timeout_s,
    step_max_attempts=settings.step_max_attempts,
    compensation_stuck_after=settings.compensation_stuck_after,
    queue_timeout_s=settings.step_queue_timeout_s,
)
sagas = node.table(SAGAS)


def _status_of(order_id: str) -> str | None:
    stored = sagas.get(order_id)
    return stored.get("status") if stored else None


async def forget_sagas(envelope: Envelope, message: ForgetOrders) -> str | None:
    """Delete ended sagas, then tell every participant to forget those orders too.

    The saga goes first, so that whoever reads the tables never finds a live saga
    whose participants forgot it.
    """
    in_flight, done = split_forgettable(message.order_ids, _status_of)
    outcome = sagas.forget(message.order_ids, keep=lambda stored: stored["order_id"] in in_flight)
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
    decision = decide(sagas.load(order_id), message, time.time(), policy)
    if decision.state is None or not (decision.changed or decision.events):
        return "unchanged"
    state = decision.state
    stored = sagas.fit(state) if decision.changed else None
    # Ids derive from the saga's event sequence, so a replayed decision resends the
    # very same messages and consumers can recognise them.
    for i, command in enumerate(decision.commands):
        await node.send(
            command,
            key=order_id,
            cause=envelope,
            event_id=f"{order_id}:{state.seq}:{state.attempt}:{i}:{command.TYPE}",
        )
    for event in decision.events:
        await node.send(
            event,
            key=order_id,
            cause=envelope,
            topic=ORDERS_EVENTS,
            event_id=f"{order_id}:{event.seq}",
        )
    if stored is None:
        return "republished"
    # Written last: if a send fails, the retry recomputes the same decision.
    sagas[order_id] = stored
    if decision.step_latency:
        step, seconds = decision.step_latency
        node.metrics.step_latency.labels(step).observe(seconds)
    if state.terminal:
        node.metrics.saga_outcomes.labels(
            state.status.value, state.failure_reason.value if state.failure_reason else ""
        ).inc()
    return None


run_saga = Dispatch(
    f"on {ORDERS_COMMANDS} or {ORDERS_REPLIES}", forget=forget_sagas, otherwise=advance_saga
)


@app.agent(node.topic(ORDERS_COMMANDS, ORDERS_REPLIES))
async def run_sagas(stream: StreamT) -> None:
    """Drive every saga from its commands, participant replies and deadlines."""
    await node.consume(stream, run_saga, "run_sagas")


# A deadline message is sent once per step timeout: the first may still be queued.
deadlines_sent = Throttle(every_s=policy.step_timeout_s, forget_after_s=10 * policy.step_timeout_s)


queue_probe = QueueProbe(settings.bootstrap_servers)


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
    places = {(app_id, topic, partition_of(state.order_id, partitions))}
    if topic == INVENTORY_COMMANDS:
        places |= {
            (app_id, INVENTORY_SKU_COMMANDS, partition_of(line.sku, partitions))
            for line in state.items
        }
    return places


@node.timer(interval=settings.deadline_scan_interval_s)
async def expire_overdue_steps() -> None:
    """Send a deadline message for every local saga whose awaited reply is overdue.

    Tables can only be written while handling a message of their partition, so
    the timer does not change sagas itself: it sends StepDeadlineExpired to the
    saga's own partition and ``advance_saga`` decides. After a restart the
    restored table is scanned the same way, so in-flight sagas resume alone.
    Whether each late command still waits in its participant's queue is read
    from the broker once per scan, and only when some step is late.
    """
    now = time.time()
    overdue = []
    for order_id, stored in sagas.items():
        if not stored or stored.get("status") in TERMINAL:
            continue
        deadline = stored.get("deadline")
        if deadline is None or now < deadline:
            continue
        memo = (order_id, stored.get("awaiting"), stored.get("attempt"), deadline)
        if deadlines_sent.due(memo, now):
            state = SAGAS.load(stored)
            overdue.append((memo, state, waiting_places(state)))
    if overdue:
        await queue_probe.refresh(set().union(*(places for _, _, places in overdue)))
    for memo, state, places in overdue:
        sent_at = state.sent_at or now
        queued = any(queue_probe.queued(p, sent_at) for p in places)
        message = expired(state, now, queued=queued)
        if message is None:
            continue
        deadlines_sent.sent(memo, now)
        await node.send(
            message,
            key=state.order_id,
            event_id=f"{state.order_id}:deadline:{message.awaiting}:{message.attempt}"
            f":{message.deadline:.3f}",
        )
    deadlines_sent.prune(now)


forgets_sent = Throttle(
    every_s=settings.forget_resend_after_s, forget_after_s=2 * settings.forget_resend_after_s
)


@node.timer(interval=settings.forget_scan_interval_s)
async def forget_finished_orders() -> None:
    """Have every group drop the orders that ended more than the retention period ago.

    Without it the tables (and each SKU record, which keeps one hold per order)
    grow with every order ever placed. Tables change only while handling a message
    of their partition, so the timer sends ForgetOrders to the orchestrator's own
    input, on the partition the orders' keys hash to; ``forget_sagas`` does the rest.
    """
    now = time.time()
    due = [
        order_id
        for order_id, stored in sagas.items()
        if stored
        and forgettable(stored, now, settings.retention_s)
        and forgets_sent.due(order_id, now)
    ]
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
        for order_id in order_ids:
            forgets_sent.sent(order_id, now)
    forgets_sent.prune(now)
