"""The web edge section: who may call the web view, how often, how much, from where."""

from __future__ import annotations

import ipaddress
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG


class EdgeSettings(BaseSettings):
    """The HTTP edge: trusted proxies, allowed hosts, bodies, rate and in-flight limits."""

    model_config = SECTION_CONFIG

    # From them (only) X-Forwarded-For names the client whose address the
    # per-client limits count. Empty: the peer is the client.
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For "
        "is believed",
    )
    # Besides localhost, 127.0.0.1, ::1 and ORDERSAGA_WEB_HOST; a page on another
    # name (DNS rebinding) is refused 421.
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated extra names accepted in the Host header; `*` allows any",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, description="Largest request body the web view reads, bytes"
    )
    # A client is the token's subject, or the peer address without a valid token;
    # the budget is shared by every web view worker.
    rate_limit_per_s: float = Field(
        default=20.0,
        ge=0,
        description="POSTs one client may make per second, sustained; 0 turns limits off",
    )
    rate_limit_burst: int = Field(
        default=40, ge=1, description="POSTs one client may make at once before the rate applies"
    )
    # The API's GETs, not the probes, docs or page: a budget apart from the POSTs'.
    read_rate_limit_per_s: float = Field(
        default=50.0,
        ge=0,
        description="API GETs one client may make per second, sustained; 0 turns it off",
    )
    read_rate_limit_burst: int = Field(
        default=100,
        ge=1,
        description="API GETs one client may make at once before the rate applies",
    )
    # Past the limit POST /orders answers 429 with Retry-After.
    max_sagas_in_flight: int = Field(
        default=500,
        ge=1,
        description="Most orders accepted and not yet ended, across the web view workers",
    )
    # The token's subject (an admin's orders count against the customer named),
    # else the client's address: one client's slow orders never refuse another's.
    max_sagas_in_flight_per_client: int = Field(
        default=16, ge=1, description="Of those, how many one client may have in flight"
    )
    min_sagas_in_flight: int = Field(
        default=64,
        ge=1,
        description="Floor of the in-flight limit, however few orders end per second",
    )
    # Little's law: between the floor and the ceiling the limit is the orders
    # ended per second times this, so what is accepted ends in about this time.
    target_latency_s: float = Field(
        default=2.0, gt=0, description="Latency the in-flight limit aims at, seconds"
    )
    # A broker that lost its leader can hold an acked send for tens of seconds; past
    # this POST /orders answers 202 (the order is kept and re-driven) and the cancel 503.
    # 2.5 so the whole answer stays within 3 s (a broker loss in `make bench`'s
    # broker-loss phase: with 3.0, 21 of 675 POSTs took 3.00-3.06 s).
    broker_answer_within_s: float = Field(
        default=2.5,
        gt=0,
        le=60,
        description="Longest an HTTP command waits for the broker's ack, seconds",
    )
    overload_retry_after_s: int = Field(
        default=1,
        ge=1,
        le=60,
        description="Retry-After of an overload 429, seconds",
    )
    # Beyond it they answer 503 with Retry-After.
    max_long_polls: int = Field(
        default=1_000,
        gt=0,
        description="Concurrent `?wait=` requests one web view worker holds",
    )
    max_long_polls_per_client: int = Field(
        default=20,
        gt=0,
        description="Of those, how many one client may hold (beyond: 429)",
    )

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> Self:
        try:
            _ = self.trusted_proxy_addresses
        except ValueError as exc:
            raise ValueError(f"ORDERSAGA_TRUSTED_PROXIES: {exc}") from None
        return self

    @property
    def trusted_proxy_addresses(self) -> list[str]:
        """ORDERSAGA_TRUSTED_PROXIES as normalized addresses."""
        return [
            str(ipaddress.ip_address(a.strip()))
            for a in self.trusted_proxies.split(",")
            if a.strip()
        ]
