"""The payments group: the payment ledger and the simulated gateway behind a breaker.

Run alone with ``faust -A ordersaga.agents.payments worker``.
"""

from __future__ import annotations

import time

from faust.types import StreamT
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from ordersaga.app.node import Node
from ordersaga.app.topics import PAYMENTS_COMMANDS
from ordersaga.saga.breaker import BreakerState, CircuitBreaker
from ordersaga.saga.payments import (
    GatewayOutcome,
    PaymentRecord,
    charge,
    needs_gateway,
    refund,
    simulate_gateway,
)
from ordersaga.schemas.messages import ChargePayment, Envelope, Message, RefundPayment

node = Node("payments")
app = node.app

#: order id -> PaymentRecord
payment_ledger = node.table("payment_ledger")
payment_commands = node.topic(PAYMENTS_COMMANDS)

_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class PaymentGateway:
    """The simulated gateway, retried on errors, behind a circuit breaker (per worker)."""

    name = "payment_gateway"

    def __init__(self) -> None:
        settings = node.settings
        self.attempts = settings.gateway_attempts
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cool_down_s=settings.breaker_cool_down_s,
        )
        node.metrics.circuit_state.labels(self.name).set(0)

    async def charge(self, command: ChargePayment) -> GatewayOutcome:
        """Ask the gateway to charge; fail fast while the circuit is open."""
        self.breaker, allowed = self.breaker.before_call(time.time())
        if not allowed:
            node.metrics.circuit_rejections.labels(self.name).inc()
            return GatewayOutcome.CIRCUIT_OPEN
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=0.02, max=0.5, jitter=0.02),
            retry=retry_if_result(lambda o: o == GatewayOutcome.ERROR),
            retry_error_callback=lambda state: GatewayOutcome.ERROR,
        )
        outcome: GatewayOutcome = await retrying(self._call, command.payment_token)
        self.breaker = self.breaker.after_call(outcome != GatewayOutcome.ERROR, time.time())
        node.metrics.circuit_state.labels(self.name).set(_BREAKER_GAUGE[self.breaker.state])
        return outcome

    async def _call(self, payment_token: str) -> GatewayOutcome:
        return simulate_gateway(payment_token)


gateway = PaymentGateway()


async def settle_payment(envelope: Envelope, message: Message) -> None:
    """Charge or refund an order once, answering repeats as the first time."""
    if not isinstance(message, ChargePayment | RefundPayment):
        raise ValueError(f"{envelope.type} does not belong on {PAYMENTS_COMMANDS}")
    raw = payment_ledger.get(message.order_id)
    before = PaymentRecord.model_validate(raw) if raw else None
    if isinstance(message, ChargePayment):
        outcome = await gateway.charge(message) if needs_gateway(before) else None
        after, reply = charge(before, message, outcome or GatewayOutcome.APPROVED)
    else:
        after, reply = refund(before, message)
    if reply is not None:
        await node.send(
            reply, key=message.order_id, cause=envelope, event_id=f"{envelope.event_id}:reply"
        )
    if after is not None and after != before:
        payment_ledger[message.order_id] = after.model_dump(mode="json")


@app.agent(payment_commands)
async def process_payments(stream: StreamT) -> None:
    """Charge and refund orders through the simulated gateway."""
    await node.consume(stream, settle_payment, "process_payments")
