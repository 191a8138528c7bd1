"""Every setting of ordersaga, read from the environment in this one place, in sections.

Each section is a class of its own module (broker, Kafka security, Redis, runtime, web edge, auth,
web view, saga policy, retention, payments, capacity, observability); ``Settings``
inherits them all, so every setting is still ``settings.<name>``. What spans two
sections (a check, a derived value) is here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Self

from pydantic import model_validator
from pydantic_settings import BaseSettings

from ordersaga.config.auth import AuthSettings
from ordersaga.config.broker import BrokerSettings
from ordersaga.config.capacity import CapacitySettings
from ordersaga.config.edge import EdgeSettings
from ordersaga.config.fields import SECTION_CONFIG
from ordersaga.config.kafka_security import KafkaSecuritySettings
from ordersaga.config.observability import ObservabilitySettings
from ordersaga.config.payments import PaymentsSettings
from ordersaga.config.redis_store import RedisSettings
from ordersaga.config.retention import RetentionSettings
from ordersaga.config.runtime import RuntimeSettings
from ordersaga.config.saga_policy import SagaPolicySettings
from ordersaga.config.sealing import SealingSettings
from ordersaga.config.web_view import WebViewSettings

#: The sections in the order they are shown and documented, with their titles.
SECTIONS: Final[tuple[tuple[str, type[BaseSettings]], ...]] = (
    ("Broker", BrokerSettings),
    ("Kafka security", KafkaSecuritySettings),
    ("Redis", RedisSettings),
    ("Runtime", RuntimeSettings),
    ("Web edge", EdgeSettings),
    ("Auth", AuthSettings),
    ("Web view", WebViewSettings),
    ("Saga policy", SagaPolicySettings),
    ("Retention", RetentionSettings),
    ("Payments", PaymentsSettings),
    ("Sealing", SealingSettings),
    ("Capacity", CapacitySettings),
    ("Observability", ObservabilitySettings),
)


class Settings(
    BrokerSettings,
    KafkaSecuritySettings,
    RedisSettings,
    RuntimeSettings,
    EdgeSettings,
    AuthSettings,
    WebViewSettings,
    SagaPolicySettings,
    RetentionSettings,
    PaymentsSettings,
    SealingSettings,
    CapacitySettings,
    ObservabilitySettings,
):
    """Runtime configuration.

    Each field is read from the environment variable of the same name in upper
    case with the ``ORDERSAGA_`` prefix (``ORDERSAGA_PARTITIONS``), except the
    two connection URLs, which also answer to the conventional ``KAFKA_BROKER``
    and ``REDIS_URL``, and ``OTEL_EXPORTER_OTLP_ENDPOINT``.
    """

    model_config = SECTION_CONFIG

    @model_validator(mode="after")
    def _charges_remembered_past_order_memory(self) -> Self:
        # The provider's idempotency must outlast any PlaceOrder that could still start.
        if self.gateway_journal_ttl_s <= self.order_memory_s:
            raise ValueError(
                "ORDERSAGA_GATEWAY_JOURNAL_TTL_S must be longer than ORDERSAGA_ORDER_MEMORY_S"
            )
        return self

    @model_validator(mode="after")
    def _redrive_within_retention(self) -> Self:
        if self.redrive_after_s >= self.redrive_window_s:
            raise ValueError(
                "ORDERSAGA_REDRIVE_AFTER_S must be under half of ORDERSAGA_RETENTION_S"
            )
        return self

    @property
    def allowed_host_names(self) -> frozenset[str] | None:
        """The Host names the web view answers to (None: any)."""
        named = {h.strip().lower().rstrip(".") for h in self.allowed_hosts.split(",")}
        if "*" in named:
            return None
        defaults = {"localhost", "127.0.0.1", "::1", self.web_host.lower()}
        return frozenset((named | defaults) - {"", "0.0.0.0", "::"})

    @property
    def redrive_window_s(self) -> float:
        """How long after acceptance a PlaceOrder may still be sent.

        The orchestrator forgets an order at the earliest ``retention_s`` after it
        ended, so after it was accepted; a PlaceOrder appended to the log before
        then finds the saga (and is ignored) or finds none because the first copy
        never arrived. Half the retention leaves the other half for a slow send.
        """
        return self.retention_s / 2


def env_name(name: str) -> str:
    """The environment variable a Settings field is read from."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else f"ORDERSAGA_{name.upper()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once: the one way code outside tests gets them."""
    return Settings()
