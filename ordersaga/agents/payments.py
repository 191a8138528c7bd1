"""The payments group: the payment ledger and the simulated gateway behind a breaker.

Run alone with ``faust -A ordersaga.agents.payments worker``.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
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
from ordersaga.schemas.messages import (
    ChargePayment,
    Envelope,
    ForgetOrders,
    Message,
    RefundPayment,
)

node = Node("payments")
app = node.app

#: order id -> PaymentRecord
payment_ledger = node.table("payment_ledger")
payment_commands = node.topic(PAYMENTS_COMMANDS)

# The simulated provider's journal: order id -> amount charged / refunded, and calls made.
GATEWAY_CHARGES = "ordersaga:gateway:charges"
GATEWAY_REFUNDS = "ordersaga:gateway:refunds"
GATEWAY_CALLS = "ordersaga:gateway:calls"

_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class PaymentGateway:
    """The simulated gateway, retried on errors, behind a circuit breaker (per worker).

    Like a real payment provider it keeps its own journal (in Redis) and takes an
    idempotency key, the order id: a charge repeated after a crash between the call
    and the ledger write returns the first charge instead of charging again. The
    journal is what the chaos test reads to prove nobody was charged twice.
    """

    name = "payment_gateway"

    def __init__(self) -> None:
        settings = node.settings
        self._redis: aioredis.Redis | None = None
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
        outcome: GatewayOutcome = await retrying(self._call, command)
        self.breaker = self.breaker.after_call(outcome != GatewayOutcome.ERROR, time.time())
        node.metrics.circuit_state.labels(self.name).set(_BREAKER_GAUGE[self.breaker.state])
        return outcome

    @property
    def redis(self) -> aioredis.Redis:
        """The gateway's journal (connects on first use, inside the worker's loop)."""
        if self._redis is None:
            self._redis = aioredis.from_url(node.settings.redis_url_or_default)
        return self._redis

    async def _call(self, command: ChargePayment) -> GatewayOutcome:
        outcome = simulate_gateway(command.payment_token)
        if outcome == GatewayOutcome.APPROVED:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(GATEWAY_CHARGES, command.order_id, command.amount)
                pipe.hincrby(GATEWAY_CALLS, command.order_id, 1)
                await pipe.execute()
        return outcome

    async def refund(self, order_id: str, amount: int) -> None:
        """Refund a charge at the gateway, once per order (same idempotency key)."""
        if amount > 0:
            await self.redis.hsetnx(GATEWAY_REFUNDS, order_id, amount)


gateway = PaymentGateway()


async def _gateway_answers() -> None:
    await gateway.redis.ping()


node.health_checks["gateway"] = _gateway_answers


async def settle_payment(envelope: Envelope, message: Message) -> str | None:
    """Charge or refund an order once, answering repeats as the first time."""
    if isinstance(message, ForgetOrders):
        return node.forget(payment_ledger, message.order_ids)
    if not isinstance(message, ChargePayment | RefundPayment):
        raise ValueError(f"{envelope.type} does not belong on {PAYMENTS_COMMANDS}")
    raw = payment_ledger.get(message.order_id)
    before = PaymentRecord.model_validate(raw) if raw else None
    if isinstance(message, ChargePayment):
        outcome = await gateway.charge(message) if needs_gateway(before) else None
        after, reply = charge(before, message, outcome or GatewayOutcome.APPROVED)
    else:
        after, reply = refund(before, message)
        await gateway.refund(message.order_id, reply.amount)
    value = node.fit(after) if after is not None and after != before else None
    if reply is not None:
        await node.send(
            reply, key=message.order_id, cause=envelope, event_id=f"{envelope.event_id}:reply"
        )
    if value is not None:
        payment_ledger[message.order_id] = value
    return None


@app.agent(payment_commands)
async def process_payments(stream: StreamT) -> None:
    """Charge and refund orders through the simulated gateway."""
    await node.consume(stream, settle_payment, "process_payments")
