"""The web view section: how long views and idempotency keys live, how listings are bounded."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG


class WebViewSettings(BaseSettings):
    """The web view's projections: lifetimes, re-sends, refreshes, listing bounds."""

    model_config = SECTION_CONFIG

    idempotency_ttl_s: int = Field(
        default=24 * 3600, description="Idempotency-Key lifetime, seconds"
    )
    finished_view_ttl_s: int = Field(
        default=7 * 24 * 3600,
        description="How long a finished order's view stays in Redis, seconds",
    )
    # Then after waits that double, for as long as half the retention allows.
    redrive_after_s: float = Field(
        default=2.0,
        gt=0,
        description="An accepted order with no projected event after this has its "
        "PlaceOrder re-sent, seconds",
    )
    # Then after waits that grow with the view's age, in case the view missed it.
    view_refresh_after_s: float = Field(
        default=10.0,
        gt=0,
        description="A live order view unchanged this long asks for its latest event, seconds",
    )
    # A sparse filter answers a short page and a cursor to go on.
    max_listing_scan: int = Field(
        default=500,
        ge=1,
        le=5_000,
        description="Orders one GET /orders page looks at in Redis, at most",
    )
    # Older ones stay readable by id for as long as their views live.
    max_listed_orders: int = Field(
        default=100_000, gt=0, description="Newest orders GET /orders can list"
    )
    max_orders_per_customer_view: int = Field(
        default=1_000,
        gt=0,
        description="Newest orders GET /customers/{id}/orders can list",
    )

    @model_validator(mode="after")
    def _views_outlive_idempotency_keys(self) -> Self:
        # A retried POST whose order is already projected is not re-sent (the
        # orchestrator may have forgotten it and would run it again), so the view
        # must last as long as the key that can bring the retry.
        if self.finished_view_ttl_s < self.idempotency_ttl_s:
            raise ValueError(
                "ORDERSAGA_FINISHED_VIEW_TTL_S must be at least ORDERSAGA_IDEMPOTENCY_TTL_S"
            )
        return self
