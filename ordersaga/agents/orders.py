"""The orders group: the saga orchestrator.

Run alone with ``faust -A ordersaga.agents.orders worker``.
"""

from __future__ import annotations

import time

from faust.types import StreamT

from ordersaga.app.node import Node
from ordersaga.app.topics import (
    FORGET_TOPICS,
    ORDERS_COMMANDS,
    ORDERS_EVENTS,
    ORDERS_REPLIES,
    partition_of,
)
from ordersaga.saga.orchestrator import (
    TERMINAL,
    Policy,
    SagaState,
    decide,
    expired,
    forget_batches,
    forgettable,
)
from ordersaga.schemas.messages import Envelope, ForgetOrders, Message

node = Node("orders")
app = node.app
policy = Policy(
    step_timeout_s=node.settings.step_timeout_s,
    step_max_attempts=node.settings.step_max_attempts,
    compensation_stuck_after=node.settings.compensation_stuck_after,
)

#: order id -> SagaState (as JSON)
sagas = node.table("sagas")
saga_inputs = node.topic(ORDERS_COMMANDS, ORDERS_REPLIES)
_TERMINAL_VALUES = {s.value for s in TERMINAL}


def load_saga(order_id: str) -> SagaState | None:
    """The saga of an order from the table, if any."""
    raw = sagas.get(order_id)
    return SagaState.model_validate(raw) if raw else None


async def forget_sagas(envelope: Envelope, message: ForgetOrders) -> str | None:
    """Delete ended sagas, then tell every participant to forget those orders too.

    The saga goes first, so that whoever reads the tables never finds a live saga
    whose participants forgot it. The participants are told about every id that
    is not in flight, deleted now or before: if a crash lost the forwarded copies,
    the replayed ForgetOrders sends them again although the saga is already gone.
    """
    in_flight = {
        order_id
        for order_id in message.order_ids
        if (raw := sagas.get(order_id)) and raw.get("status") not in _TERMINAL_VALUES
    }
    outcome = node.forget(sagas, message.order_ids, keep=lambda raw: raw["order_id"] in in_flight)
    done = tuple(order_id for order_id in message.order_ids if order_id not in in_flight)
    if done:
        forward = ForgetOrders(order_ids=done)
        partition = partition_of(done[0], node.settings.partitions)
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
    if isinstance(message, ForgetOrders):
        return await forget_sagas(envelope, message)
    order_id = envelope.order_id or getattr(message, "order_id", None)
    if not order_id:
        raise ValueError(f"{envelope.type} names no order")
    decision = decide(load_saga(order_id), message, time.time(), policy)
    if decision.state is None or not (decision.changed or decision.events):
        return "unchanged"
    state = decision.state
    value = node.fit(state) if decision.changed else None
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
    if value is None:
        return "republished"
    # Written last: if a send fails, the retry recomputes the same decision.
    sagas[order_id] = value
    if decision.step_latency:
        step, seconds = decision.step_latency
        node.metrics.step_latency.labels(step).observe(seconds)
    if state.terminal:
        node.metrics.saga_outcomes.labels(
            state.status.value, state.failure_reason.value if state.failure_reason else ""
        ).inc()
    return None


@app.agent(saga_inputs)
async def run_sagas(stream: StreamT) -> None:
    """Drive every saga from its commands, participant replies and deadlines."""
    await node.consume(stream, advance_saga, "run_sagas")


_last_deadline_sent: dict[tuple[str, str, int], float] = {}


@node.timer(interval=node.settings.deadline_scan_interval_s)
async def expire_overdue_steps() -> None:
    """Send a deadline message for every local saga whose awaited reply is overdue.

    Tables can only be written while handling a message of their partition, so
    the timer does not change sagas itself: it sends StepDeadlineExpired to the
    saga's own partition and ``advance_saga`` decides. After a restart the
    restored table is scanned the same way, so in-flight sagas resume alone.
    """
    now = time.time()
    for order_id, raw in list(sagas.items()):
        if not raw or raw.get("status") in _TERMINAL_VALUES:
            continue
        deadline = raw.get("deadline")
        if deadline is None or now < deadline:
            continue
        message = expired(SagaState.model_validate(raw), now)
        if message is None:
            continue
        memo = (order_id, message.awaiting, message.attempt)
        if now - _last_deadline_sent.get(memo, 0.0) < policy.step_timeout_s:
            continue
        _last_deadline_sent[memo] = now
        await node.send(
            message,
            key=order_id,
            event_id=f"{order_id}:deadline:{message.awaiting}:{message.attempt}",
        )
    for memo, sent in list(_last_deadline_sent.items()):
        if now - sent > 10 * policy.step_timeout_s:
            del _last_deadline_sent[memo]


_forget_sent: dict[str, float] = {}
# Ids per ForgetOrders message, so each stays a few kilobytes.
FORGET_BATCH = 200


@node.timer(interval=5.0)
async def forget_finished_orders() -> None:
    """Have every group drop the orders that ended more than the retention period ago.

    Without it the tables (and each SKU record, which keeps one hold per order)
    grow with every order ever placed. Tables change only while handling a message
    of their partition, so the timer sends ForgetOrders to the orchestrator's own
    input, on the partition the orders' keys hash to; ``forget_sagas`` does the rest.
    """
    now = time.time()
    retention = node.settings.retention_s
    due = [
        order_id
        for order_id, raw in list(sagas.items())
        if raw and forgettable(raw, now, retention) and now - _forget_sent.get(order_id, 0.0) > 60.0
    ]
    partitions = node.settings.partitions
    for partition, order_ids in forget_batches(
        due, lambda key: partition_of(key, partitions), FORGET_BATCH
    ):
        await node.send(
            ForgetOrders(order_ids=order_ids),
            key=order_ids[0],
            topic=ORDERS_COMMANDS,
            partition=partition,
            event_id=f"forget:{order_ids[0]}:{len(order_ids)}",
        )
        for order_id in order_ids:
            _forget_sent[order_id] = now
    for order_id, sent in list(_forget_sent.items()):
        if now - sent > 120.0:
            del _forget_sent[order_id]
