"""The orchestrator's record of one order, and the deadlines its steps get."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ordersaga.schemas.messages import Address, OrderLine, OrderSnapshot, PricedLine
from ordersaga.schemas.status import TERMINAL, FailureReason, SagaStatus


@dataclass(frozen=True)
class Policy:
    """Deadlines and retry bounds of the saga's steps."""

    step_timeout_s: float = 10.0
    step_max_attempts: int = 3
    compensation_stuck_after: int = 10
    max_backoff_s: float = 60.0
    # How long a command may wait in a participant's queue before its wait counts
    # as a timeout after all (Temporal's schedule-to-start): a participant that
    # never starts it, dead or stuck, still fails the step.
    queue_timeout_s: float = 120.0

    def deadline(self, now: float, attempt: int) -> float:
        """When the ``attempt``-th send of a step times out: doubling, capped."""
        return now + min(self.step_timeout_s * (2 ** (attempt - 1)), self.max_backoff_s)


class SagaState(BaseModel):
    """The orchestrator's record of one order (the ``sagas`` table value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: str
    customer_id: str
    items: tuple[OrderLine, ...]
    # Dropped once the charge is answered or the saga compensates: a stored card
    # token is a liability, and no later step needs it.
    payment_token: str | None
    # Sealed for shipping alone when the web view has its key (ordersaga.edge.sealing).
    shipping_address: Address | str
    status: SagaStatus
    failure_reason: FailureReason | None = None
    failure_detail: str | None = None
    lines: tuple[PricedLine, ...] = ()
    total: int | None = None
    charge_id: str | None = None
    shipment_id: str | None = None
    # How many forward steps are done: the index of the step in flight.
    step_index: int = 0
    compensating: bool = False
    # Names of the undos still to run, the one in flight first.
    pending_compensations: tuple[str, ...] = ()
    outcome: SagaStatus | None = None
    awaiting: str | None = None
    attempt: int = 1
    deadline: float | None = None
    sent_at: float | None = None
    seq: int = 0
    # The latest event's name and detail, so it can be published again unchanged.
    last_event: str | None = None
    last_detail: str | None = None
    placed_at: datetime
    updated_at: datetime
    # The correlation id of the request that placed the order: every command and
    # event of the saga carries it, timers' too (None in sagas stored before it).
    correlation_id: str | None = None

    @property
    def terminal(self) -> bool:
        """True once the saga has ended."""
        return self.status in TERMINAL

    def snapshot(self) -> OrderSnapshot:
        """The public view of this order."""
        return OrderSnapshot(
            order_id=self.order_id,
            customer_id=self.customer_id,
            status=self.status.value,
            failure_reason=self.failure_reason.value if self.failure_reason else None,
            failure_detail=self.failure_detail,
            items=self.items,
            lines=self.lines,
            total=self.total,
            charge_id=self.charge_id,
            shipment_id=self.shipment_id,
            placed_at=self.placed_at,
            updated_at=self.updated_at,
        )
