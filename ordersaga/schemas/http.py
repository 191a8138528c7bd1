"""HTTP request bodies of the web view (validated strictly: no type coercion)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ordersaga.schemas.messages import Address, Cents, OrderLine


class PlaceOrderBody(BaseModel):
    """``POST /orders``: what a customer orders, how they pay and where it goes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    customer_id: str = Field(min_length=1, max_length=100)
    items: list[OrderLine] = Field(min_length=1, max_length=100)
    payment_token: str = Field(min_length=1, max_length=200)
    shipping_address: Address


class RestockBody(BaseModel):
    """``POST /inventory/{sku}/restock``: stock to add; the price is needed for a new SKU."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Cents | None = None
