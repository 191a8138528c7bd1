"""The runtime section: what `ordersaga run` and every worker process are started with."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG


class RuntimeSettings(BaseSettings):
    """Worker processes: data directory, ports, event loop, retries, timers."""

    model_config = SECTION_CONFIG

    data_dir: str = Field(default=".ordersaga", description="Directory of worker state and logs")
    web_host: str = Field(default="127.0.0.1", description="Interface the web view listens on")
    # The other agent groups serve /health and /metrics on the ports after it.
    web_port: int = Field(
        default=6066, description="Port of the web view; the other groups take the next ones"
    )
    probes_host: str = Field(
        default="127.0.0.1",
        description="Interface of the probes when they have a port of their own",
    )
    # Each worker adds its web port's offset from ORDERSAGA_WEB_PORT.
    probes_port: int | None = Field(
        default=None,
        gt=0,
        lt=65536,
        description="Port of /health, /live, /ready and /metrics apart from the web port "
        "(unset: on the web port)",
    )
    event_loop: str = Field(
        default="uvloop",
        pattern="^(aio|uvloop)$",
        description="Event loop of the workers: uvloop, or aio (asyncio's)",
    )
    seed_catalog: bool = Field(
        default=True, description="Whether `ordersaga run` stocks a small demo catalogue"
    )
    handler_max_attempts: int = Field(
        default=4,
        ge=1,
        description="Tries of a handler failing on a transient error before its "
        "message is dead-lettered",
    )
    # Off puts Faust's own per-record path back, for comparison (BENCHMARKS.md, issue 21).
    direct_delivery: bool = Field(
        default=True,
        description="Whether a worker hands each fetch to its agents in one turn of the loop",
    )
    # Off puts Faust's consumer thread back, for comparison (BENCHMARKS.md, issue 21).
    consumer_in_loop: bool = Field(
        default=True,
        description="Whether a worker's Kafka consumer runs in its event loop "
        "(false: in a thread of its own, as Faust does)",
    )
    deadline_scan_interval_s: float = Field(
        default=1.0, gt=0, description="How often workers look for passed deadlines, seconds"
    )
