"""What ``ordersaga bench`` was asked to do: the CLI's options, checked."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


def offered_orders(rate: float, seconds: float) -> int:
    """Orders an open loop of ``rate`` per second offers in ``seconds`` (at least one)."""
    return max(1, round(rate * seconds))


@dataclass
class BenchConfig:
    """What ``ordersaga bench`` was asked to do."""

    via: str = "kafka"
    orders: int = 3000
    warmup: int = 300
    rate: float | None = None
    concurrency: int = 32
    workers: int = 1
    skus: int = 4
    attach: bool = False
    relay: bool = True
    relay_messages: int | None = None
    fetch_wait_ms: int | None = None
    timeout_s: float = 120.0
    order_timeout_s: float = 60.0
    settle_s: float = 15.0
    retention_s: float | None = None
    # Seconds of twice the measured rate offered over HTTP after the run (0: skip).
    overload_s: float = 0.0
    # Seconds of half the maximum sustained rate offered over HTTP while a saga
    # worker is SIGKILLed every 3-5 s (0: skip).
    kills_s: float = 0.0
    # Apache Kafka nodes of the embedded system (3: a cluster that survives one loss).
    brokers: int = 1
    # Seconds of BROKER_LOSS_RATE orders/s over HTTP with one broker SIGKILLed for
    # the middle third (0: skip; needs --brokers 3).
    broker_loss_s: float = 0.0
    # The bare-Faust chain ceiling: seven Faust apps passing messages on.
    faust_chain: bool = True
    # Chains of the bare-Faust ceiling: enough for a steady closed loop, not
    # --orders (at its 40-100 chains/s that would be a minute more of make bench).
    faust_chains: int = 1000
    # Orders placed one at a time on the idle system before the load (0: skip).
    lone: int = 30
    # The open-loop step-up to the maximum sustained rate after the closed loop.
    step_up: bool = True
    # Seconds of idle CPU measured at the end, nothing sent (0: skip).
    idle_s: float = 15.0
    # Capture the Kafka requests of the saga phase with tshark (requests per saga).
    wire: bool = False
    # The broker the bench's own system starts (ORDERSAGA_BROKER's values).
    broker: str | None = None
    join_at: float | None = None
    audit: bool = False
    out: Path | None = None

    def __post_init__(self) -> None:
        problems = [
            text
            for bad, text in (
                (self.via not in ("kafka", "http"), "--via must be kafka or http"),
                (self.orders < 1, "--orders must be at least 1"),
                (self.warmup < 0, "--warmup cannot be negative"),
                (self.rate is not None and self.rate <= 0, "--rate must be positive"),
                (self.concurrency < 1, "--concurrency must be at least 1"),
                (self.workers < 1, "--workers must be at least 1"),
                (self.skus < 1, "--skus must be at least 1"),
                (self.lone < 0, "--lone cannot be negative"),
                (self.kills_s < 0, "--kills cannot be negative"),
                (self.brokers not in (1, 3), "--brokers must be 1 or 3"),
                (
                    self.broker_loss_s > 0 and self.brokers < 3,
                    "--broker-loss needs --brokers 3",
                ),
                (
                    self.attach and (self.kills_s > 0 or self.broker_loss_s > 0),
                    "--kills and --broker-loss need the embedded system (not --attach)",
                ),
                (self.faust_chains < 1, "--faust-chains must be at least 1"),
                (
                    self.join_at is not None and not 0 < self.join_at < 1,
                    "--join-at must be a fraction between 0 and 1",
                ),
                (
                    self.attach and (self.join_at is not None or self.retention_s is not None),
                    "--join-at and --retention need the embedded system (not --attach)",
                ),
                (
                    self.relay_messages is not None and self.relay_messages < 1,
                    "--relay-messages must be at least 1",
                ),
            )
            if bad
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def over_http(self, rate: float, seconds: float) -> BenchConfig:
        """These options for an open loop of ``rate`` orders/s over HTTP for ``seconds``."""
        return dataclasses.replace(
            self,
            via="http",
            rate=rate,
            orders=offered_orders(rate, seconds),
            warmup=0,
            join_at=None,
            wire=False,
        )

    @property
    def total(self) -> int:
        """Warm-up and measured orders."""
        return self.warmup + self.orders
