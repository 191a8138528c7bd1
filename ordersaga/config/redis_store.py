"""The Redis section: where the web view keeps its views, and the Redis `ordersaga run` starts."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG, URL_WITH_CREDENTIALS


class RedisSettings(BaseSettings):
    """Redis: its address, the web view's connection pool, the embedded server."""

    model_config = SECTION_CONFIG

    # Also the conventional REDIS_URL, unprefixed; it may carry a password.
    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        json_schema_extra=URL_WITH_CREDENTIALS,
        description="Redis address, redis://[:password@]host:port/db; "
        "unset: `ordersaga run` starts its own",
    )
    embedded_redis_port: int = Field(
        default=6379, description="Preferred port of the Redis `ordersaga run` starts"
    )
    # A request finding the pool busy waits up to the pool timeout, then answers 503.
    redis_max_connections: int = Field(
        default=50, gt=0, description="Connections in one web view worker's Redis pool"
    )
    redis_pool_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest a request waits for a pooled connection before a 503, seconds",
    )
    # Policy noeviction: full, writes fail 503, nothing the saga needs is evicted.
    redis_max_memory_mb: int = Field(
        default=512, ge=16, description="maxmemory of the Redis `ordersaga run` starts, MiB"
    )

    @property
    def redis_url_or_default(self) -> str:
        """The Redis to use: REDIS_URL, or the conventional local one."""
        return self.redis_url or "redis://127.0.0.1:6379/0"
