"""A step that exists only here: a fraud check, added the way a real step is added.

What a new step needs, and all it needs: (a) its entry in the step table
(``FRAUD_SAGA``: the real ``SAGA`` with one more step, as ``saga/definition.py``
would have it), and (b) its participant (its messages, its declaration and its
pure rule here; its Faust agent in ``tests/agents/fraud_agent.py``). The routing,
the orchestrator's replies topic, the codec's registry and the topics to create
all come from ``FRAUD_TOPOLOGY`` without another line anywhere.
"""

from __future__ import annotations

from ordersaga.saga.definition import SAGA, Step
from ordersaga.schemas.bounds import Amount, Id, Reason
from ordersaga.schemas.messages import Message
from ordersaga.schemas.status import FailureReason, SagaStatus
from ordersaga.topology import PARTICIPANTS, Participant, Topology
from ordersaga.topology.topics import ORDERS_REPLIES

FRAUD_COMMANDS = "fraud.commands"
# Orders above this total (in cents) are held for fraud.
FRAUD_LIMIT = 100_000


class CheckFraud(Message):
    """May this order's total be charged to this customer?"""

    TYPE = "CheckFraud"
    order_id: Id
    customer_id: Id
    amount: Amount


class FraudCleared(Message):
    """Nothing suspicious."""

    TYPE = "FraudCleared"
    order_id: Id


class FraudSuspected(Message):
    """The order looks fraudulent: it fails, nothing to undo (a check changes nothing)."""

    TYPE = "FraudSuspected"
    order_id: Id
    reason: Reason


# ------------------------------------------------------------- (b) participant

FRAUD = Participant(
    "fraud",
    "tests.agents.fraud_agent",
    7,
    "fraud checks",
    consumes={FRAUD_COMMANDS: (CheckFraud,)},
    replies=(FraudCleared, FraudSuspected),
    reply_topic=ORDERS_REPLIES,
    reject_on=FRAUD_COMMANDS,
)


def check_fraud(command: CheckFraud) -> FraudCleared | FraudSuspected:
    """The participant's pure rule."""
    if command.amount > FRAUD_LIMIT:
        return FraudSuspected(order_id=command.order_id, reason="amount_over_limit")
    return FraudCleared(order_id=command.order_id)


# ------------------------------------------------------------ (a) step entry

CHECK_FRAUD = Step(
    "check_fraud",
    "fraud",
    CheckFraud,
    lambda s: CheckFraud(order_id=s.order_id, customer_id=s.customer_id, amount=s.total or 0),
    success=FraudCleared,
    # The check moves the order nowhere new: it stays reserved until it is paid.
    status_after=SagaStatus.STOCK_RESERVED,
    failure=FraudSuspected,
    failure_reason=FailureReason.INVALID_ORDER,
)


def _after(name: str) -> int:
    return next(i for i, step in enumerate(SAGA) if step.name == name) + 1


# After the reservation, which prices the order: the check needs its total.
FRAUD_SAGA: tuple[Step, ...] = (
    *SAGA[: _after("reserve_stock")],
    CHECK_FRAUD,
    *SAGA[_after("reserve_stock") :],
)
FRAUD_TOPOLOGY = Topology(FRAUD_SAGA, (*PARTICIPANTS, FRAUD))
