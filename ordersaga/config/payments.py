"""The payments section: the simulated gateway and the circuit breaker in front of it."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG


class PaymentsSettings(BaseSettings):
    """The payment gateway: retries, test faults, idempotency window, circuit breaker."""

    model_config = SECTION_CONFIG

    gateway_attempts: int = Field(default=3, ge=1, description="Tries of one gateway call")
    # Off, every token is charged: no client can inject a fault in production.
    # `ordersaga run` turns it on for its demo (and says so first); the tests too.
    gateway_faults: bool = Field(
        default=False,
        description="Whether test tokens (tok_decline, tok_timeout, tok_gateway_error) "
        "inject their faults",
    )
    # Longer than any replay: a PlaceOrder is never run twice, and dead letters
    # older than the retention are never replayed.
    gateway_journal_ttl_s: int = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="How long the gateway remembers an order's charge and refund, seconds",
    )
    # The breaker's minimum volume.
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="Gateway failures within the window that may open the payment circuit",
    )
    # So one customer's orders never open the circuit for everyone; in half-open,
    # trials of this many customers must fail before it opens again.
    breaker_min_callers: int = Field(
        default=3, ge=1, description="Distinct customers those failures must come from"
    )
    breaker_failure_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the window's calls that must have failed, 0 to 1",
    )
    breaker_window_s: float = Field(
        default=60.0, gt=0, description="How far back the breaker counts calls, seconds"
    )
    breaker_cool_down_s: float = Field(
        default=30.0, gt=0, description="How long the circuit stays open before trials, seconds"
    )
