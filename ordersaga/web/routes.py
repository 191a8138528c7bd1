"""The web view's routes: orders, inventory, customers, services, the dashboard and the docs.

Bad input never reaches Kafka: every body, path parameter, query parameter and
header a client controls is validated by the views first (``ordersaga.web.inputs``
and ``ordersaga.web.errors``), against the bounds in ``ordersaga.schemas.bounds``,
and each error answer names the field at fault.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust

from ordersaga.schemas.responses import OpenApiDocument
from ordersaga.web.auth import Gatekeeper
from ordersaga.web.customers import (
    BlockCustomerView,
    Customer,
    CustomerOrders,
    Customers,
    UnblockCustomerView,
)
from ordersaga.web.dashboard import Dashboard, DashboardAsset, DashboardStats
from ordersaga.web.desk import Desk, DeskView
from ordersaga.web.docs import AsyncApi, Docs, DocsAsset, OpenApi
from ordersaga.web.inventory import Inventory, InventoryItem, Restock
from ordersaga.web.openapi import build_document
from ordersaga.web.orders import CancelOrderView, Order, OrderEvents, Orders
from ordersaga.web.services import GroupHealth, Services

# docs/http-api.md lists the same routes; tests/agents/test_served_routes.py holds them equal.
# Every method of every view here must carry its Operation (ordersaga.edge.operations):
# register_routes builds the OpenAPI document first and refuses an undocumented one.
ROUTES: tuple[tuple[str, type[DeskView]], ...] = (
    ("/orders", Orders),
    ("/orders/{order_id}", Order),
    ("/orders/{order_id}/events", OrderEvents),
    ("/orders/{order_id}/cancel", CancelOrderView),
    ("/inventory", Inventory),
    ("/inventory/{sku}", InventoryItem),
    ("/inventory/{sku}/restock", Restock),
    ("/customers", Customers),
    ("/customers/{customer_id}", Customer),
    ("/customers/{customer_id}/block", BlockCustomerView),
    ("/customers/{customer_id}/unblock", UnblockCustomerView),
    ("/customers/{customer_id}/orders", CustomerOrders),
    ("/services", Services),
    ("/services/{group}/health", GroupHealth),
    ("/dashboard", Dashboard),
    ("/dashboard/stats", DashboardStats),
    ("/dashboard/{name}", DashboardAsset),
    ("/openapi.json", OpenApi),
    ("/asyncapi.json", AsyncApi),
    ("/docs", Docs),
    ("/docs/{asset}", DocsAsset),
)


def desk_blocked(desk: Desk) -> Callable[[str], Awaitable[bool]]:
    """Whether the customer store holds ``customer_id`` as blocked (the gatekeeper asks)."""

    async def blocked(customer_id: str) -> bool:
        account = await desk.customers.account(customer_id)
        return bool(account is not None and account.get("blocked"))

    return blocked


def register_routes(app: faust.App, desk: Desk) -> None:
    """Add the HTTP API to the webview app, each view answering from ``desk``.

    The gatekeeper (tokens, access, rate limits) runs inside the correlation and
    error middlewares, so its refusals are JSON and carry the request's id. The
    document describes the worker's own pages (/health, /ready, /metrics) too.
    """
    middlewares = cast(Any, app.web).web_app.middlewares
    middlewares.append(Gatekeeper(desk.settings, lambda: desk.rate_limiter, desk_blocked(desk)))
    document = build_document([*desk.node.pages, *ROUTES], secured=desk.settings.auth_enabled)
    desk.openapi = OpenApiDocument.model_validate(document)
    for path, view in ROUTES:
        app.page(path)(view.on(desk))
