"""HTTP response bodies: every JSON answer any worker gives is one of these models.

The views build their answers through these models (``model_dump(mode="json")``),
and the OpenAPI document (``ordersaga.web.openapi``) is generated from the same
models, so what is served cannot drift from what is documented: a field a view
adds or drops fails its construction (``extra="forbid"``) instead of going out
undocumented.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ordersaga.schemas.bounds import (
    Amount,
    Counter,
    Email,
    EventId,
    Id,
    Name,
    Reason,
    Sku,
    StockLevel,
    TypeName,
    UnitPrice,
)
from ordersaga.schemas.messages import OrderLine, PricedLine
from ordersaga.schemas.status import SagaStatus

# A page's cursor: the placing time (epoch seconds, six decimals) of its last order.
Cursor = Annotated[str, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,7})?$")]
ServiceState = Literal["up", "stale", "gone"]


class ResponseModel(BaseModel):
    """Base of every answer: no field the model does not name."""

    # Fields with defaults are always sent, so the document marks them required.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )

    def body(self) -> dict[str, Any]:
        """What goes on the wire (JSON types only)."""
        return self.model_dump(mode="json")


# ------------------------------------------------------------------- errors


class Problem(ResponseModel):
    """One thing wrong with the request: the field at fault, named as the client sent it."""

    field: str
    message: str


class FieldProblem(Problem):
    """A body field pydantic refused, with the kind of refusal (its error type)."""

    type: str = Field(description="e.g. missing, extra_forbidden, string_pattern_mismatch")


class ErrorResponse(ResponseModel):
    """Every answer that is not a success, from any worker."""

    error: str = Field(description="machine-readable code, e.g. validation_error, not_found")
    message: str
    problems: list[FieldProblem | Problem] = Field(default_factory=list)


class OrderConflict(ErrorResponse):
    """409: the order has ended; ``status`` is where it ended."""

    status: SagaStatus


# ------------------------------------------------------------------- orders


class OrderResponse(ResponseModel):
    """An order as the web view sees it (its projection, or what was accepted before it)."""

    order_id: Id
    status: SagaStatus
    failure_reason: Reason | None = None
    failure_detail: Reason | None = None
    customer_id: Id
    items: list[OrderLine]
    lines: list[PricedLine] = Field(
        default_factory=list, description="priced once stock is reserved"
    )
    total: Amount | None = Field(default=None, description="cents, once stock is reserved")
    charge_id: Id | None = None
    shipment_id: Id | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    events_seen: Counter = 0


class OrderLinks(ResponseModel):
    self: str


class PlacedOrder(OrderResponse):
    """202 of ``POST /orders``: the accepted order and where to read it."""

    links: OrderLinks


class OrderPage(ResponseModel):
    """A page of orders, newest first; ``next_cursor`` reads the next one (null: no more)."""

    orders: list[OrderResponse]
    next_cursor: Cursor | None


class CustomerOrderPage(OrderPage):
    customer_id: Id


class OrderEventEntry(ResponseModel):
    seq: Counter
    type: TypeName
    status: SagaStatus
    detail: Reason | None = None
    at: datetime


class OrderHistory(ResponseModel):
    """An order's events, oldest first."""

    order_id: Id
    events: list[OrderEventEntry]


class CancelRequested(ResponseModel):
    order_id: Id
    status: Literal["CANCEL_REQUESTED"] = "CANCEL_REQUESTED"


# ---------------------------------------------------------------- inventory


class StockResponse(ResponseModel):
    """A SKU's levels; ``low_stock`` is true at or below ``low_stock_at``."""

    sku: Sku
    available: StockLevel
    reserved: StockLevel
    committed: StockLevel
    put_in: StockLevel
    unit_price: UnitPrice
    version: Counter
    low_stock: bool = False
    low_stock_at: StockLevel = 0


class InventoryList(ResponseModel):
    items: list[StockResponse]
    # The last SKU looked at, to pass as ``cursor`` for the next page (None: no more).
    next_cursor: Sku | None = None


class RestockAccepted(ResponseModel):
    sku: Sku
    restock_id: Id
    quantity: int
    status: Literal["ACCEPTED"] = "ACCEPTED"


# ---------------------------------------------------------------- customers


class CustomerLinks(ResponseModel):
    orders: str


class CustomerResponse(ResponseModel):
    """A customer account as the customers group stored it."""

    customer_id: Id
    name: Name
    email: Email
    blocked: bool
    registered_at: datetime
    version: Counter
    links: CustomerLinks


class CustomerAccepted(ResponseModel):
    """202 of ``POST /customers``: sent, not yet stored within the wait (GET it later)."""

    customer_id: Id
    name: Name
    email: Email
    status: Literal["ACCEPTED"] = "ACCEPTED"


class BlockingAccepted(ResponseModel):
    """202 of block/unblock: sent, not yet stored within the wait."""

    customer_id: Id
    blocked: bool
    status: Literal["ACCEPTED"] = "ACCEPTED"


# ----------------------------------------------------------------- services


class ServiceEntry(ResponseModel):
    """One worker instance, from its last heartbeat."""

    group: TypeName
    instance: EventId
    host: str
    port: int
    pid: int
    started_at: datetime
    sent_at: datetime
    interval_s: float
    partitions: list[str]
    lag: Counter
    version: str
    state: ServiceState
    age_s: float


class ServiceCounts(ResponseModel):
    up: int
    stale: int
    gone: int


class ServiceList(ResponseModel):
    services: list[ServiceEntry]
    counts: ServiceCounts
    heartbeat_s: float


class GroupHealthResponse(ResponseModel):
    """A group's health: ok (every worker up), degraded (some stale), down (none up)."""

    group: TypeName
    status: Literal["ok", "degraded", "down"]
    up: int
    stale: int
    gone: int
    instances: list[ServiceEntry]


class GroupDown(GroupHealthResponse, ErrorResponse):
    """503: no worker of the group is up (the health fields and the error shape)."""


# ---------------------------------------------------------------- dashboard


class MinuteOutcomes(ResponseModel):
    minute: str
    counts: dict[str, int]


class StepLatency(ResponseModel):
    step: str
    mean_s: float
    count: int


class DeadLetters(ResponseModel):
    topic: str
    messages: int


class DashboardFigures(ResponseModel):
    """The operators' page's figures over the last minutes."""

    in_flight: dict[str, int]
    outcomes: list[MinuteOutcomes]
    step_latency: list[StepLatency]
    dead_letters: list[DeadLetters]


# ------------------------------------------------------- every worker's pages


# What a dependency check answers: fixed words, never an exception's text.
CheckState = Literal["ok", "down", "timeout"]


class HealthResponse(ResponseModel):
    status: Literal["ok"] = "ok"
    group: str
    app: str
    checks: dict[str, CheckState]


class HealthDown(ErrorResponse):
    """503: a dependency does not answer; ``checks`` says which."""

    status: Literal["unavailable"] = "unavailable"
    group: str
    app: str
    checks: dict[str, CheckState]


class LiveResponse(ResponseModel):
    """200: the worker's process runs and its event loop answers."""

    alive: Literal[True] = True
    group: str
    instance: str
    uptime_s: float


class ReadyResponse(ResponseModel):
    ready: bool
    group: str
    assigned: list[str]


class NotReady(ReadyResponse, ErrorResponse):
    """503: the worker cannot serve yet (or, the web view, cannot now); problems say why."""


class OpenApiDocument(ResponseModel):
    """The OpenAPI 3.1 document itself (``GET /openapi.json``): its sections are free-form."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class AsyncApiDocument(ResponseModel):
    """The AsyncAPI 3.0 document of the topics (``GET /asyncapi.json``): free-form sections."""

    model_config = ConfigDict(extra="allow")
    asyncapi: str
    info: dict[str, Any]
    channels: dict[str, Any]
