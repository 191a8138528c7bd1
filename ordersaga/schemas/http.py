"""HTTP request bodies of the web view (validated strictly: no type coercion)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from ordersaga.schemas.bounds import (
    MAX_LINE_QUANTITY,
    MAX_LINES,
    Email,
    Id,
    Name,
    PaymentToken,
    RestockQuantity,
    StockLevel,
    UnitPrice,
)
from ordersaga.schemas.messages import Address, OrderLine


class PlaceOrderBody(BaseModel):
    """``POST /orders``: what a customer orders, how they pay and where it goes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    # With auth on, a customer's token names the customer; an admin's names none.
    customer_id: Id | None = None
    items: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    payment_token: PaymentToken
    shipping_address: Address

    @field_validator("items")
    @classmethod
    def _merged_lines_fit(cls, items: list[OrderLine]) -> list[OrderLine]:
        # Lines of one SKU are merged into one; the merged line must fit a line's bound.
        totals: dict[str, int] = {}
        for i, line in enumerate(items):
            totals[line.sku] = totals.get(line.sku, 0) + line.quantity
            if totals[line.sku] > MAX_LINE_QUANTITY:
                raise PydanticCustomError(
                    "merged_quantity",
                    "line {index} brings the quantity of SKU {sku} over {limit}",
                    {"index": i, "sku": line.sku, "limit": MAX_LINE_QUANTITY},
                )
        return items


class CustomerBody(BaseModel):
    """``POST /customers``: a customer account; the same body again is the same account."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    customer_id: Id
    name: Name
    email: Email


class RestockBody(BaseModel):
    """``POST /inventory/{sku}/restock``: stock to add; the price is needed for a new SKU."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    quantity: RestockQuantity
    unit_price: UnitPrice | None = None
    # Available stock at or below which the SKU is low (kept when not given).
    low_stock_at: StockLevel | None = None


class CancelBody(BaseModel):
    """``POST /orders/{id}/cancel``: an optional reason (the body may be empty)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
