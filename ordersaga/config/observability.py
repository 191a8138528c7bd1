"""The observability section: logs, traces and the registry of running workers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG, URL_WITH_CREDENTIALS


class ObservabilitySettings(BaseSettings):
    """Log format and rotation, OTLP tracing, worker heartbeats."""

    model_config = SECTION_CONFIG

    # Faust's names, as its `worker -l` takes them: any other word made every worker
    # exit with a usage error at start. Python's own spellings are taken too.
    log_level: Literal["debug", "info", "warn", "error", "crit"] = Field(
        default="info", description="Lowest level logged: debug, info, warn, error or crit"
    )
    # auto is JSON under `ordersaga run`, which writes the logs to files.
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="Log lines as json, console (for people), or auto: console on a terminal",
    )
    # Of a worker, the broker or Redis (<data_dir>/logs/<name>.log).
    log_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="Size at which `ordersaga run` rotates a process's log, bytes; 0 never",
    )
    # With none the log would never rotate.
    log_backups: int = Field(
        default=3, ge=1, description="Rotated logs kept per process (`<name>.log.1` is the newest)"
    )
    # The standard unprefixed variable; read as a setting so that `ordersaga run`
    # hands it to its workers like the others. Unset, tracing costs nothing.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        json_schema_extra=URL_WITH_CREDENTIALS,
        description="OTLP/HTTP collector URL (http://host:4318); set, workers export "
        "their spans; unset, tracing is off",
    )
    # GET /services calls a worker stale after two periods without one, gone after three.
    heartbeat_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often every worker announces itself on ordersaga.services, seconds",
    )
    # Heartbeats of further instances are dead-lettered until gone ones are dropped.
    max_services: int = Field(
        default=1_000, gt=0, description="Worker instances the service registry remembers"
    )
    forget_gone_services_after_s: float = Field(
        default=600.0,
        gt=0,
        description="How long a gone worker stays listed after its last heartbeat, seconds",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _faust_level_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            name = value.strip().lower()
            return {"warning": "warn", "critical": "crit", "fatal": "crit"}.get(name, name)
        return value
