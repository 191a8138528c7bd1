"""The simulated payment provider, retried on errors, behind a circuit breaker.

The simulation (``simulate_gateway``: test tokens choose declines, silence and
errors) lives here with the rest of the provider; the ledger rules in
``ordersaga.saga.payments`` only read the ``GatewayOutcome`` it gives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from ordersaga.config.settings import Settings
from ordersaga.observability.metrics import Metrics
from ordersaga.saga.breaker import BreakerState, CircuitBreaker
from ordersaga.saga.payments import GatewayOutcome
from ordersaga.schemas.messages import ChargePayment

# Payment tokens that choose a failure while the simulator's faults are on
# (ORDERSAGA_GATEWAY_FAULTS).
DECLINE_TOKEN = "tok_decline"
NO_REPLY_TOKEN = "tok_timeout"
ERROR_TOKEN = "tok_gateway_error"


def simulate_gateway(payment_token: str, faults: bool = False) -> GatewayOutcome:
    """Deterministic stand-in for a card gateway: with ``faults``, test tokens choose.

    Without ``faults`` (production's default) every token is approved: a fault a
    client could inject is a fault an attacker can inject.
    """
    if not faults:
        return GatewayOutcome.APPROVED
    if payment_token == DECLINE_TOKEN:
        return GatewayOutcome.DECLINED
    if payment_token == NO_REPLY_TOKEN:
        return GatewayOutcome.NO_REPLY
    if payment_token == ERROR_TOKEN:
        return GatewayOutcome.ERROR
    return GatewayOutcome.APPROVED


# The simulated provider's journal: one hash per order (charged, refunded, calls),
# expiring like a real provider's idempotency records do.
GATEWAY_JOURNAL = "ordersaga:gateway:order:"

# A charge's journal entry in one call: the first amount stays, every call counts.
_RECORD_CHARGE = """
redis.call('HSETNX', KEYS[1], 'charged', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'calls', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass(frozen=True)
class JournalEntry:
    """What the provider recorded for one order."""

    charged: int | None
    refunded: int | None
    calls: int


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
        self._record_charge: AsyncScript | None = None
        self._metrics = metrics
        self.attempts = settings.gateway_attempts
        self.faults = settings.gateway_faults
        self.journal_ttl_s = settings.gateway_journal_ttl_s
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cool_down_s=settings.breaker_cool_down_s,
            min_callers=settings.breaker_min_callers,
            failure_ratio=settings.breaker_failure_ratio,
            window_s=settings.breaker_window_s,
        )
        metrics.circuit_state.labels(self.name).set(0)

    async def charge(self, command: ChargePayment) -> GatewayOutcome:
        """Ask the gateway to charge; fail fast while the circuit is open."""
        caller = command.customer_id
        self.breaker, allowed = self.breaker.before_call(time.time(), caller)
        if not allowed:
            self._metrics.circuit_rejections.labels(self.name).inc()
            return GatewayOutcome.CIRCUIT_OPEN
        try:
            # The first attempt outside tenacity: its retry state cost ~60 us a charge.
            outcome = await self._call(command)
            if outcome == GatewayOutcome.ERROR and self.attempts > 1:
                await asyncio.sleep(0.02)  # tenacity's first wait, had it run attempt 1
                outcome = await AsyncRetrying(
                    stop=stop_after_attempt(self.attempts - 1),
                    wait=wait_exponential_jitter(multiplier=0.02, max=0.5, jitter=0.02),
                    retry=retry_if_result(lambda o: o == GatewayOutcome.ERROR),
                    retry_error_callback=lambda state: GatewayOutcome.ERROR,
                )(self._call, command)
        except Exception:
            # The provider's journal failed: the dependency itself.
            self.breaker = self.breaker.after_call(False, time.time(), caller)
            raise
        except BaseException:
            self.breaker = self.breaker.abandon(caller)
            raise
        # A decline is the provider answering about the card: only its own errors count.
        ok = outcome != GatewayOutcome.ERROR
        self.breaker = self.breaker.after_call(ok, time.time(), caller)
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
        outcome = simulate_gateway(command.payment_token, self.faults)
        if outcome == GatewayOutcome.APPROVED:
            journal = self.redis
            if self._record_charge is None:
                # One script call: a pipelined MULTI/EXEC cost redis-py twice as much.
                self._record_charge = journal.register_script(_RECORD_CHARGE)
            await self._record_charge(
                keys=[GATEWAY_JOURNAL + command.order_id],
                args=[command.amount, self.journal_ttl_s],
                client=journal,
            )
        return outcome

    async def refund(self, order_id: str, amount: int) -> None:
        """Refund a charge at the gateway, once per order (same idempotency key)."""
        if amount > 0:
            key = GATEWAY_JOURNAL + order_id
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(key, "refunded", amount)
                pipe.expire(key, self.journal_ttl_s)
                await pipe.execute()


async def read_journal(redis: aioredis.Redis) -> AsyncIterator[tuple[str, JournalEntry]]:
    """Every order the provider remembers, with what it recorded (for the chaos test)."""
    async for key in redis.scan_iter(match=GATEWAY_JOURNAL + "*", count=500):
        fields = await redis.hgetall(key)
        name = key.decode() if isinstance(key, bytes) else str(key)
        values = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in fields.items()}
        yield (
            name.removeprefix(GATEWAY_JOURNAL),
            JournalEntry(
                charged=values.get("charged"),
                refunded=values.get("refunded"),
                calls=values.get("calls", 0),
            ),
        )
