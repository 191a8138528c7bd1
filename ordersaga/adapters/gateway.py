"""The simulated payment provider, retried on errors, behind a circuit breaker."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from ordersaga.app.metrics import Metrics
from ordersaga.app.settings import Settings
from ordersaga.saga.breaker import BreakerState, CircuitBreaker
from ordersaga.saga.payments import GatewayOutcome, simulate_gateway
from ordersaga.schemas.messages import ChargePayment

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

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._redis_url = settings.redis_url_or_default
        self._redis: aioredis.Redis | None = None
        self._metrics = metrics
        self.attempts = settings.gateway_attempts
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cool_down_s=settings.breaker_cool_down_s,
        )
        metrics.circuit_state.labels(self.name).set(0)

    async def charge(self, command: ChargePayment) -> GatewayOutcome:
        """Ask the gateway to charge; fail fast while the circuit is open."""
        self.breaker, allowed = self.breaker.before_call(time.time())
        if not allowed:
            self._metrics.circuit_rejections.labels(self.name).inc()
            return GatewayOutcome.CIRCUIT_OPEN
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=0.02, max=0.5, jitter=0.02),
            retry=retry_if_result(lambda o: o == GatewayOutcome.ERROR),
            retry_error_callback=lambda state: GatewayOutcome.ERROR,
        )
        outcome: GatewayOutcome = await retrying(self._call, command)
        self.breaker = self.breaker.after_call(outcome != GatewayOutcome.ERROR, time.time())
        self._metrics.circuit_state.labels(self.name).set(_BREAKER_GAUGE[self.breaker.state])
        return outcome

    @property
    def redis(self) -> aioredis.Redis:
        """The gateway's journal (connects on first use, inside the worker's loop)."""
        if self._redis is None:
            self._redis = aioredis.from_url(self._redis_url)
        return self._redis

    async def answers(self) -> None:
        """Raises when the journal cannot be reached (a /health check)."""
        await self.redis.ping()

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
