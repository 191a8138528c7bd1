"""The retention section: how long an ended order is kept, and how it is forgotten."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG
from ordersaga.schemas.messages import MAX_FORGET_BATCH


class RetentionSettings(BaseSettings):
    """The forgetting of ended orders, which keeps memory flat."""

    model_config = SECTION_CONFIG

    # In sagas, holds, ledger, shipments and notifications. It must outlast any
    # redelivery: a duplicate older than this would find no memory of the order.
    retention_s: float = Field(
        default=120.0,
        gt=0,
        description="How long an ended order's state stays in the tables, seconds",
    )
    # One small entry each. Also the age past which a PlaceOrder is too old to
    # start, so no order id ever runs twice; an order not started within it (the
    # orchestrator down longer) is not started at all.
    order_memory_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long a forgotten order's id is remembered; an older PlaceOrder "
        "never starts, seconds",
    )
    forget_scan_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the orchestrator looks for orders past retention, seconds",
    )
    # Its ForgetOrders may still be on its way.
    forget_resend_after_s: float = Field(
        default=60.0,
        gt=0,
        description="An order asked to be forgotten is not asked again before this, seconds",
    )
    # So that each message stays a few kilobytes.
    forget_batch: int = Field(
        default=200,
        ge=1,
        le=MAX_FORGET_BATCH,
        description="Order ids per ForgetOrders message",
    )

    @model_validator(mode="after")
    def _orders_remembered_past_retention(self) -> Self:
        if self.order_memory_s < self.retention_s:
            raise ValueError("ORDERSAGA_ORDER_MEMORY_S must be at least ORDERSAGA_RETENTION_S")
        return self
