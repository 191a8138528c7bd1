"""The customer views: register an account, read it, block or unblock it, list its orders."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from aiohttp import web
from faust.web import Request, Response

from ordersaga.edge.http import HttpError, invalid, require_json
from ordersaga.edge.operations import (
    BODY_ERRORS,
    CUSTOMER_ID,
    Operation,
    Reply,
    documented,
    error,
    errors,
)
from ordersaga.observability.correlation import current_correlation_id
from ordersaga.schemas.http import CustomerBody
from ordersaga.schemas.messages import BlockCustomer, RegisterCustomer
from ordersaga.schemas.responses import (
    BlockingAccepted,
    CustomerAccepted,
    CustomerLinks,
    CustomerOrderPage,
    CustomerResponse,
)
from ordersaga.web.auth import require_owner
from ordersaga.web.desk import Desk, DeskView
from ordersaga.web.errors import answers, not_found, parse_body
from ordersaga.web.inputs import json_body, path_id
from ordersaga.web.orders import find_order
from ordersaga.web.paging import PAGING, page_cursor, page_limit, page_response

# How long a write waits for its projection, so that its answer shows the account
# as the customers group stored it; past this it answers 202 and the client may GET.
PROJECTION_WAIT_S = 3.0
PROJECTION_POLL_S = 0.05


def customer_response(account: dict[str, Any]) -> CustomerResponse:
    """What GET answers for a projected account."""
    return CustomerResponse(
        customer_id=account["customer_id"],
        name=account["name"],
        email=account["email"],
        blocked=account["blocked"],
        registered_at=account["registered_at"],
        version=account["version"],
        links=CustomerLinks(orders=f"/customers/{account['customer_id']}/orders"),
    )


REGISTER = Operation(
    summary="Register a customer account",
    description="The same body again is 200 with the same account; other details for a "
    "known id are 409 customer_exists. Waits up to 3 s for the customers group to store it.",
    tag="customers",
    body=CustomerBody,
    replies=(
        Reply(200, "the account existed with these details", (CustomerResponse,)),
        Reply(201, "registered and stored", (CustomerResponse,), headers=("Location",)),
        Reply(202, "sent, not stored within 3 s", (CustomerAccepted,), headers=("Location",)),
        *BODY_ERRORS,
        error(409, "customer_exists (other details), or customers_full"),
        error(503),
    ),
)
READ_CUSTOMER = Operation(
    summary="A customer account",
    tag="customers",
    params=(CUSTOMER_ID,),
    replies=(Reply(200, "the account", (CustomerResponse,)), *errors(404, 422, 503)),
)
_BLOCKING_REPLIES = (
    Reply(200, "the account, changed and stored (or already so)", (CustomerResponse,)),
    Reply(202, "sent, not stored within 3 s", (BlockingAccepted,)),
    *errors(404, 415, 422, 503),
)
BLOCK = Operation(
    summary="Block a customer: their next orders fail customer_invalid",
    description="Orders already past the customer check go on; the customer's tokens are "
    "refused from then on (403). No body is read, but Content-Type must be "
    "application/json (415 otherwise).",
    tag="customers",
    params=(CUSTOMER_ID,),
    replies=_BLOCKING_REPLIES,
)
UNBLOCK = Operation(
    summary="Unblock a customer: they may order again",
    description="No body is read, but Content-Type must be application/json (415 otherwise).",
    tag="customers",
    params=(CUSTOMER_ID,),
    replies=_BLOCKING_REPLIES,
)
CUSTOMER_ORDERS = Operation(
    summary="A customer's orders, newest first",
    tag="customers",
    params=(CUSTOMER_ID, *PAGING),
    replies=(Reply(200, "a page of orders", (CustomerOrderPage,)), *errors(404, 422, 503)),
)


async def projected(desk: Desk, customer_id: str, ready: Any) -> dict[str, Any] | None:
    """The account once ``ready(account)`` holds, waiting for the projection a while."""
    deadline = time.monotonic() + PROJECTION_WAIT_S
    while True:
        account = await desk.customers.account(customer_id)
        if account is not None and ready(account):
            return account
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(PROJECTION_POLL_S)


def same_details(account: dict[str, Any], body: CustomerBody) -> bool:
    return account["name"] == body.name and account["email"] == body.email


def exists_otherwise(customer_id: str) -> HttpError:
    return invalid(
        "customer_id",
        f"customer {customer_id} exists with other details",
        status=409,
        error="customer_exists",
    )


class Customers(DeskView):
    """``POST /customers``."""

    @documented(REGISTER)
    @answers
    async def post(self, request: Request) -> Response:
        """Register an account: 201 once stored, 200 if it was already, 409 if it differs."""
        desk, settings = self.desk, self.desk.settings
        raw = await json_body(request, settings.max_body_bytes)
        body = parse_body(CustomerBody, raw, settings.max_body_bytes)
        require_owner(request, body.customer_id, f"account {body.customer_id}")
        known = await desk.customers.account(body.customer_id)
        if known is not None:
            if not same_details(known, body):
                raise exists_otherwise(body.customer_id)
            return self.answer(customer_response(known))
        if await desk.customers.count() >= settings.max_customers:
            raise invalid(
                "customer_id",
                f"the shop holds {settings.max_customers} customers, its limit",
                status=409,
                error="customers_full",
            )
        command = RegisterCustomer(customer_id=body.customer_id, name=body.name, email=body.email)
        await desk.send(
            command,
            key=command.customer_id,
            correlation_id=current_correlation_id(command.customer_id),
        )
        account = await projected(desk, body.customer_id, lambda a: True)
        location = {"Location": f"/customers/{body.customer_id}"}
        if account is None:
            accepted = CustomerAccepted(**body.model_dump())
            return self.answer(accepted, status=202, headers=location)
        if not same_details(account, body):  # another client registered it first
            raise exists_otherwise(body.customer_id)
        return self.answer(customer_response(account), status=201, headers=location)


class Customer(DeskView):
    """``GET /customers/{customer_id}``."""

    @documented(READ_CUSTOMER)
    @answers
    async def get(self, request: Request, customer_id: str) -> Response:
        """The account."""
        customer_id = path_id(customer_id, "customer_id")
        require_owner(request, customer_id, f"account {customer_id}")
        account = await self.desk.customers.account(customer_id)
        if account is None:
            raise not_found(f"customer {customer_id}")
        return self.answer(customer_response(account))


class _Blocking(DeskView):
    blocked: bool = True

    @answers
    async def change(self, request: Request, customer_id: str) -> Response:
        """Block or unblock (``blocked``), answering once the change is stored."""
        desk = self.desk
        # No body is read, but a form or text/plain POST is what a page on another
        # site can send without a preflight: only the JSON type is taken, as elsewhere.
        require_json(cast(web.Request, request))
        customer_id = path_id(customer_id, "customer_id")
        account = await desk.customers.account(customer_id)
        if account is None:
            raise not_found(f"customer {customer_id}")
        if account["blocked"] != self.blocked:
            command = BlockCustomer(customer_id=customer_id, blocked=self.blocked)
            await desk.send(
                command, key=customer_id, correlation_id=current_correlation_id(customer_id)
            )
            account = await projected(desk, customer_id, lambda a: a["blocked"] == self.blocked)
            if account is None:
                return self.answer(
                    BlockingAccepted(customer_id=customer_id, blocked=self.blocked), status=202
                )
        return self.answer(customer_response(account))


class BlockCustomerView(_Blocking):
    """``POST /customers/{customer_id}/block``: refuse the customer's next orders."""

    blocked = True

    @documented(BLOCK)
    async def post(self, request: Request, customer_id: str) -> Response:
        return await self.change(request, customer_id=customer_id)


class UnblockCustomerView(_Blocking):
    """``POST /customers/{customer_id}/unblock``: let the customer order again."""

    blocked = False

    @documented(UNBLOCK)
    async def post(self, request: Request, customer_id: str) -> Response:
        return await self.change(request, customer_id=customer_id)


class CustomerOrders(DeskView):
    """``GET /customers/{customer_id}/orders``."""

    @documented(CUSTOMER_ORDERS)
    @answers
    async def get(self, request: Request, customer_id: str) -> Response:
        """The customer's orders, newest first; ``limit`` and ``cursor`` page through them."""
        desk = self.desk
        customer_id = path_id(customer_id, "customer_id")
        require_owner(request, customer_id, f"the orders of customer {customer_id}")
        limit, cursor = page_limit(request), page_cursor(request)
        if await desk.customers.account(customer_id) is None:
            raise not_found(f"customer {customer_id}")
        ids, next_cursor = await desk.order_index.page(
            limit=limit, customer_id=customer_id, before=cursor
        )
        found = await asyncio.gather(*(find_order(desk, order_id) for order_id in ids))
        return self.answer(
            CustomerOrderPage(customer_id=customer_id, **page_response(found, next_cursor))
        )
