"""The capacity section: bounds that keep every table record and catalogue finite."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG


class CapacitySettings(BaseSettings):
    """Size bounds of records, SKUs and accounts."""

    model_config = SECTION_CONFIG

    # The broker refuses messages over 1 MB, and a changelog write it refused
    # would fail on every replay: the message is dead-lettered instead.
    max_record_bytes: int = Field(
        default=512 * 1024, gt=0, description="Largest table value a worker writes, bytes"
    )
    # Finished ones are dropped after the retention period; a reservation beyond
    # it is refused as out of stock, so no traffic grows a record without bound.
    max_holds_per_sku: int = Field(
        default=5_000, gt=0, description="Orders one SKU record remembers at once"
    )
    max_skus: int = Field(
        default=10_000, gt=0, description="SKUs the catalogue may hold (one more: 409)"
    )
    max_customers: int = Field(
        default=100_000, gt=0, description="Accounts the shop may hold (one more: 409)"
    )
