"""The order saga's one pure transition function, walking ``saga.definition.SAGA``.

``decide(state, message, now, policy)`` returns the next state, the commands to
send and the order events to publish (``saga`` takes another step table, as the
tests of a step added in a fixture do). The Faust shell in
``ordersaga.agents.orders`` only reads the table, calls it, writes the table
and sends what it returned.

Rules that make the saga safe under at-least-once delivery:
- a reply counts only if it is the one the saga waits for (``awaiting``);
  duplicates, late and out-of-order replies change nothing; a step no one
  answers is sent and passed in one decision (``saga.definition``);
- a deadline message counts only if it names the step and attempt still
  awaited, so a stale timer is harmless;
- when a step fails explicitly, that step did nothing and is not compensated;
  when it times out or the order is cancelled while it is in flight, it may
  have happened, so it is compensated too (every compensation is idempotent
  and also refuses a late forward command on the participant side).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ordersaga.saga.definition import SAGA, Step, Undo
from ordersaga.saga.state import Policy, SagaState
from ordersaga.schemas.messages import (
    CancelOrder,
    CommandRejected,
    Message,
    OrderEvent,
    PlaceOrder,
    RepublishOrder,
    StepDeadlineExpired,
)
from ordersaga.schemas.status import TERMINAL, TERMINAL_EVENTS, FailureReason, SagaStatus


@dataclass(frozen=True)
class Decision:
    """What one message did to a saga: its new state and what to send."""

    state: SagaState | None
    commands: tuple[Message, ...] = ()
    events: tuple[OrderEvent, ...] = ()
    changed: bool = False
    step_latency: tuple[str, float] | None = field(default=None)


def unchanged(state: SagaState | None) -> Decision:
    """The decision for a message that must not change anything (duplicate, late, stale)."""
    return Decision(state=state)


def one_event(events: tuple[OrderEvent, ...]) -> OrderEvent | None:
    """A decision's events as the one message published: the newest, the others earlier.

    Each published order event is sent, stored and projected once: seven per saga
    were a fifth of its CPU (issue 21). The history keeps every entry.
    """
    if len(events) <= 1:
        return events[0] if events else None
    *before, last = events
    earlier = tuple(entry for event in before for entry in event.entries())
    return last.model_copy(update={"earlier": (*earlier, *last.earlier)})


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def _undo(saga: tuple[Step, ...], name: str) -> Undo:
    """The undo called ``name`` in the step table ``saga``."""
    for step in saga:
        if step.undo is not None and step.undo.name == name:
            return step.undo
    raise KeyError(name)


class _Builder:
    """Accumulates one decision: state updates, commands and numbered events."""

    def __init__(self, state: SagaState, now: float, saga: tuple[Step, ...]) -> None:
        self._state = state
        # Updates since the state was last read, applied in one copy when it is
        # (a decision made five copies of the saga, one per update: issue 21).
        self._changes: dict[str, object] = {"updated_at": _at(now)}
        self._seq = state.seq
        self.now = now
        self.saga = saga
        self.commands: list[Message] = []
        self.events: list[OrderEvent] = []

    @property
    def state(self) -> SagaState:
        """The saga with every update so far."""
        if self._changes:
            self._state = self._state.model_copy(update=self._changes)
            self._changes = {}
        return self._state

    def update(self, **changes: object) -> None:
        self._changes.update(changes)

    def emit(self, name: str, detail: str | None = None) -> None:
        # One copy of the saga per event (its snapshot needs every update so far):
        # reading ``state`` three times made two (issue 21, BENCHMARKS.md eighth steps).
        self._seq += 1
        self.update(seq=self._seq)
        state = self.state
        self.events.append(
            OrderEvent(name=name, seq=self._seq, detail=detail, order=state.snapshot())
        )
        self.update(last_event=name, last_detail=detail)

    def send(self, step: Step | Undo, policy: Policy, attempt: int = 1) -> None:
        """Send a step's (or an undo's) command and wait for its reply until the deadline."""
        command = step.build(self.state)
        done = step.success if isinstance(step, Step) else step.done
        if done is None:
            raise ValueError(f"step {step.name} is not answered: pass it with send_unanswered")
        self.update(
            awaiting=done.TYPE,
            attempt=attempt,
            deadline=policy.deadline(self.now, attempt),
            sent_at=self.now,
        )
        self.commands.append(command)

    def send_unanswered(self, index: int) -> int:
        """Send the unanswered steps from ``index`` on; returns the first step to await."""
        while index < len(self.saga) and self.saga[index].success is None:
            self.commands.append(self.saga[index].build(self.state))
            index += 1
        return index

    def decision(self, step_latency: tuple[str, float] | None = None) -> Decision:
        return Decision(
            state=self.state,
            commands=tuple(self.commands),
            events=tuple(self.events),
            changed=True,
            step_latency=step_latency,
        )


def start(
    command: PlaceOrder, now: float, policy: Policy, saga: tuple[Step, ...] = SAGA
) -> Decision:
    """A new saga: record the order and ask inventory to reserve its stock."""
    state = SagaState(
        order_id=command.order_id,
        customer_id=command.customer_id,
        items=command.items,
        payment_token=command.payment_token,
        shipping_address=command.shipping_address,
        status=SagaStatus.PENDING,
        placed_at=_at(now),
        updated_at=_at(now),
    )
    b = _Builder(state, now, saga)
    b.emit("OrderPlaced")
    b.send(saga[0], policy)
    return b.decision()


def _undos_for(done: tuple[Step, ...]) -> tuple[str, ...]:
    """The undo of each done step, newest first, each once."""
    names: list[str] = []
    for step in reversed(done):
        if step.undo and step.undo.name not in names:
            names.append(step.undo.name)
    return tuple(names)


def _begin_compensation(
    b: _Builder,
    policy: Policy,
    *,
    include_in_flight: bool,
    outcome: SagaStatus,
    reason: FailureReason | None,
    detail: str,
) -> None:
    done_until = b.state.step_index + (1 if include_in_flight else 0)
    pending = _undos_for(b.saga[:done_until])
    b.update(
        payment_token=None,
        compensating=True,
        outcome=outcome,
        failure_reason=reason,
        pending_compensations=pending,
        status=SagaStatus.COMPENSATING,
    )
    b.emit("CompensationStarted", detail)
    _next_compensation_or_end(b, policy)


def _next_compensation_or_end(b: _Builder, policy: Policy) -> None:
    if b.state.pending_compensations:
        b.send(_undo(b.saga, b.state.pending_compensations[0]), policy)
        return
    outcome = b.state.outcome or SagaStatus.FAILED
    b.update(status=outcome, awaiting=None, deadline=None, sent_at=None, attempt=1)
    b.emit(TERMINAL_EVENTS[outcome])


def decide(
    state: SagaState | None,
    message: Message,
    now: float,
    policy: Policy,
    saga: tuple[Step, ...] = SAGA,
) -> Decision:
    """Apply one command, reply or deadline to a saga; the heart of the orchestrator."""
    if isinstance(message, PlaceOrder):
        return unchanged(state) if state is not None else start(message, now, policy, saga)
    if isinstance(message, RepublishOrder):
        return republish(state)
    if state is None or state.terminal:
        return unchanged(state)
    if isinstance(message, CancelOrder):
        return _cancel(state, now, policy, saga)
    if isinstance(message, StepDeadlineExpired):
        return _deadline_expired(state, message, now, policy, saga)
    if isinstance(message, CommandRejected):
        return _command_rejected(state, message, now, policy, saga)
    if not _is_awaited_reply(state, message, saga):
        return unchanged(state)
    if state.compensating:
        return _compensation_done(state, now, policy, saga)
    return _forward_reply(state, message, now, policy, saga)


def republish(state: SagaState | None) -> Decision:
    """The saga's latest event once more, as it was published; the state is unchanged."""
    if state is None or state.last_event is None:
        return unchanged(state)
    event = OrderEvent(
        name=state.last_event, seq=state.seq, detail=state.last_detail, order=state.snapshot()
    )
    return Decision(state=state, events=(event,))


def _is_awaited_reply(state: SagaState, message: Message, saga: tuple[Step, ...]) -> bool:
    """The awaited reply, or the explicit failure of the forward step in flight."""
    if message.TYPE == state.awaiting:
        return True
    if state.compensating or state.awaiting is None:
        return False
    failure = saga[state.step_index].failure
    return failure is not None and isinstance(message, failure)


def _cancel(state: SagaState, now: float, policy: Policy, saga: tuple[Step, ...]) -> Decision:
    if state.compensating:
        return unchanged(state)
    b = _Builder(state, now, saga)
    _begin_compensation(
        b,
        policy,
        include_in_flight=True,
        outcome=SagaStatus.CANCELLED,
        reason=None,
        detail="cancelled by the customer",
    )
    return b.decision()


def _fail_step(
    b: _Builder,
    policy: Policy,
    event: str,
    detail: str | None,
    reason: FailureReason | None,
    *,
    undo_in_flight: bool,
    summary: str,
) -> None:
    """Record why the step in flight failed, then compensate towards FAILED."""
    b.update(failure_detail=detail)
    b.emit(event, detail)
    _begin_compensation(
        b,
        policy,
        include_in_flight=undo_in_flight,
        outcome=SagaStatus.FAILED,
        reason=reason,
        detail=summary,
    )


def _command_rejected(
    state: SagaState,
    message: CommandRejected,
    now: float,
    policy: Policy,
    saga: tuple[Step, ...],
) -> Decision:
    """A participant refused the awaited command for its content: it will never succeed."""
    if state.awaiting is None:
        return unchanged(state)
    b = _Builder(state, now, saga)
    detail = f"{message.command} rejected: {message.reason}"[:500]
    if state.compensating:
        if not _names_command(message, _undo(saga, state.pending_compensations[0]), state):
            return unchanged(state)
        if state.status == SagaStatus.COMPENSATION_STUCK:
            return unchanged(state)
        # An undo cannot be given up; it stays retried, and an operator must look.
        b.update(status=SagaStatus.COMPENSATION_STUCK)
        b.emit("CompensationStuck", detail)
        return b.decision()
    step = saga[state.step_index]
    if not _names_command(message, step, state):
        return unchanged(state)
    # The participant may have acted before it refused (a reservation made, then a
    # reply too large to send): undo the step in flight too; undos are idempotent.
    _fail_step(
        b,
        policy,
        CommandRejected.TYPE,
        detail,
        FailureReason.INVALID_ORDER,
        undo_in_flight=True,
        summary=f"{step.name} rejected",
    )
    return b.decision()


def _names_command(message: CommandRejected, step: Step | Undo, state: SagaState) -> bool:
    """True when a rejection is about the command ``step`` sends (or its general form)."""
    return message.command in (step.command.TYPE, step.command_for(state).TYPE)


def _deadline_expired(
    state: SagaState,
    message: StepDeadlineExpired,
    now: float,
    policy: Policy,
    saga: tuple[Step, ...],
) -> Decision:
    if message.awaiting != state.awaiting or message.attempt != state.attempt:
        return unchanged(state)
    if message.deadline is not None and message.deadline != state.deadline:
        return unchanged(state)
    b = _Builder(state, now, saga)
    if message.queued and now - (state.sent_at or now) < policy.queue_timeout_s:
        # Still in the queue of a participant that works through its backlog: the
        # deadline moves (the same command, not re-sent; the attempt not counted).
        b.update(deadline=now + policy.step_timeout_s)
        return b.decision()
    if state.compensating:
        # A compensation is never given up: it is retried with capped backoff and
        # reported stuck once it has failed for long enough.
        name = state.pending_compensations[0]
        attempt = state.attempt + 1
        b.send(_undo(saga, name), policy, attempt)
        if (
            attempt > policy.compensation_stuck_after
            and state.status != SagaStatus.COMPENSATION_STUCK
        ):
            b.update(status=SagaStatus.COMPENSATION_STUCK)
            b.emit("CompensationStuck", f"{name} unanswered after {state.attempt} attempts")
        return b.decision()
    step = saga[state.step_index]
    if step.success is None:
        # Stored by a definition that awaited this step's reply: no longer awaited.
        _advance(b, state, state.step_index, policy, "StepPassed")
        return b.decision()
    if state.attempt < policy.step_max_attempts:
        b.send(step, policy, state.attempt + 1)
        b.emit("StepRetried", f"{step.name} attempt {state.attempt + 1}")
        return b.decision()
    _begin_compensation(
        b,
        policy,
        include_in_flight=True,
        outcome=SagaStatus.FAILED,
        reason=FailureReason.STEP_TIMEOUT,
        detail=f"{step.name} timed out after {state.attempt} attempts",
    )
    return b.decision()


def _compensation_done(
    state: SagaState, now: float, policy: Policy, saga: tuple[Step, ...]
) -> Decision:
    b = _Builder(state, now, saga)
    name, *rest = state.pending_compensations
    # Back from COMPENSATION_STUCK once the stuck step is answered.
    b.update(pending_compensations=tuple(rest), status=SagaStatus.COMPENSATING)
    b.emit(_undo(saga, name).done.TYPE)
    _next_compensation_or_end(b, policy)
    return b.decision()


def _forward_reply(
    state: SagaState, message: Message, now: float, policy: Policy, saga: tuple[Step, ...]
) -> Decision:
    step = saga[state.step_index]
    b = _Builder(state, now, saga)
    latency = (step.name, max(0.0, now - (state.sent_at or now)))
    if step.failure is not None and isinstance(message, step.failure):
        _fail_step(
            b,
            policy,
            message.TYPE,
            getattr(message, "reason", None),
            step.reason_of(message),
            undo_in_flight=False,
            summary=f"{step.name} failed",
        )
        return b.decision(latency)
    b.update(**step.record(message))
    _advance(b, state, state.step_index + 1, policy, message.TYPE)
    return b.decision(latency)


def _advance(b: _Builder, state: SagaState, index: int, policy: Policy, event: str) -> None:
    """Go on from step ``index``: past unanswered steps, to the next awaited one or the end."""
    reached = b.send_unanswered(index)
    status = b.saga[reached - 1].status_after
    last = reached == len(b.saga)
    # The terminal status appears first on the terminal event: a reader that saw it
    # may take the history to be complete.
    b.update(step_index=reached, status=state.status if last else status)
    b.emit(event)
    if not last:
        b.send(b.saga[reached], policy)
    else:
        b.update(awaiting=None, deadline=None, sent_at=None, attempt=1, status=status)
        b.emit(TERMINAL_EVENTS[status])


def expired(state: SagaState, now: float, queued: bool = False) -> StepDeadlineExpired | None:
    """The deadline message to send for a saga whose awaited step is overdue, if any.

    ``queued`` says the awaited command still waits in its participant's queue.
    """
    if state.terminal or state.deadline is None or state.awaiting is None or now < state.deadline:
        return None
    return StepDeadlineExpired(
        order_id=state.order_id,
        awaiting=state.awaiting,
        attempt=state.attempt,
        queued=queued,
        deadline=state.deadline,
    )


def awaited_command(state: SagaState, saga: tuple[Step, ...] = SAGA) -> type[Message] | None:
    """The command whose reply the saga awaits (a forward step's or an undo's), if any."""
    if state.awaiting is None:
        return None
    if state.compensating and state.pending_compensations:
        return _undo(saga, state.pending_compensations[0]).command_for(state)
    if not state.compensating and state.step_index < len(saga):
        return saga[state.step_index].command_for(state)
    return None


def forgettable(saga: Mapping[str, Any], now: float, retention_s: float) -> bool:
    """True when a saga (as stored in the table) ended at least ``retention_s`` ago.

    Takes the stored JSON, not a SagaState: the timer asks this of every saga and
    validating each full record would cost more than the question.
    """
    if saga.get("status") not in TERMINAL:
        return False
    ended = datetime.fromisoformat(saga["updated_at"]).timestamp()
    return now - ended >= retention_s


def forget_batches(
    order_ids: Iterable[str], partition_of: Callable[[str], int], size: int
) -> list[tuple[int, tuple[str, ...]]]:
    """Group order ids by partition into batches of at most ``size``: one ForgetOrders each."""
    by_partition: dict[int, list[str]] = {}
    for order_id in order_ids:
        by_partition.setdefault(partition_of(order_id), []).append(order_id)
    return [
        (partition, tuple(ids[i : i + size]))
        for partition, ids in sorted(by_partition.items())
        for i in range(0, len(ids), size)
    ]


__all__ = [
    "Decision",
    "Policy",
    "SagaState",
    "awaited_command",
    "decide",
    "expired",
    "forget_batches",
    "forgettable",
    "republish",
    "split_forgettable",
    "start",
    "unchanged",
]


def split_forgettable(
    order_ids: Iterable[str], status_of: Callable[[str], str | None]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """The ids of a ForgetOrders split into sagas still in flight and ids to forget.

    An id whose saga is gone (deleted before, or never here) is to be forgotten
    too: if a crash lost the forwarded copies, the replayed ForgetOrders must send
    them again although the saga is already gone.
    """
    ids = tuple(order_ids)
    in_flight = frozenset(
        i for i in ids if (status := status_of(i)) is not None and status not in TERMINAL
    )
    return in_flight, tuple(i for i in ids if i not in in_flight)
