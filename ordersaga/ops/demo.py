"""``ordersaga demo``: the seven scenarios against a running system, over HTTP."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from ordersaga.config.settings import get_settings
from ordersaga.edge.tokens import operator_headers
from ordersaga.ops.client import post_admitted
from ordersaga.runtime.seed import DEMO_CUSTOMERS
from ordersaga.shell.codec import new_id

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical St",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}


@dataclass(frozen=True)
class Scenario:
    """One demo order and the outcome it should reach."""

    name: str
    quantity: int
    payment_token: str = "tok_visa"
    country: str = "GB"
    cancel: bool = False
    customer_id: str = DEMO_CUSTOMERS[0][0]
    expect_status: str = "COMPLETED"
    expect_reason: str | None = None


SCENARIOS = (
    Scenario("completed order", 2),
    Scenario("out of stock", 10_000, expect_status="FAILED", expect_reason="out_of_stock"),
    Scenario(
        "payment declined",
        1,
        payment_token="tok_decline",
        expect_status="FAILED",
        expect_reason="payment_declined",
    ),
    Scenario(
        "shipping refused", 1, country="XX", expect_status="FAILED", expect_reason="shipping_failed"
    ),
    Scenario("cancellation", 1, cancel=True, expect_status="CANCELLED"),
    Scenario(
        "unknown customer",
        1,
        customer_id="cust-nobody-registered",
        expect_status="FAILED",
        expect_reason="customer_invalid",
    ),
    Scenario(
        "blocked customer",
        1,
        customer_id="cust-demo-blocked",
        expect_status="FAILED",
        expect_reason="customer_invalid",
    ),
)
# The customer the demo orders as (`make run` registers it; the demo does too, which
# changes nothing when it exists), and one the demo blocks.
DEMO_CUSTOMER = dict(zip(("customer_id", "name", "email"), DEMO_CUSTOMERS[0], strict=True))
BLOCKED_CUSTOMER = {
    "customer_id": "cust-demo-blocked",
    "name": "Blocked Customer",
    "email": "blocked@example.com",
}


def order_body(sku: str, scenario: Scenario) -> dict[str, Any]:
    """The POST /orders body of a scenario."""
    return {
        "customer_id": scenario.customer_id,
        "items": [{"sku": sku, "quantity": scenario.quantity}],
        "payment_token": scenario.payment_token,
        "shipping_address": {**ADDRESS, "country": scenario.country},
    }


async def play(client: httpx.AsyncClient, sku: str, scenario: Scenario) -> dict[str, Any]:
    """Place the scenario's order (cancelling it if asked) and wait for its outcome."""
    placed = await post_admitted(client, "/orders", json=order_body(sku, scenario))
    placed.raise_for_status()
    order_id = placed.json()["order_id"]
    if scenario.cancel:
        (await client.post(f"/orders/{order_id}/cancel", json={})).raise_for_status()
    final = await client.get(f"/orders/{order_id}", params={"wait": 30})
    final.raise_for_status()
    return dict(final.json())


async def run_demo(url: str | None) -> int:
    """Play every scenario on a fresh demo SKU; 0 when all end as expected."""
    settings = get_settings()
    base = url or f"http://{settings.web_host}:{settings.web_port}"
    sku = f"demo-{new_id()[:8]}"
    failures = 0
    # With auth on, the demo acts as an admin (it orders for its customers and restocks).
    headers = operator_headers(settings, "ordersaga-demo")
    if headers is None:
        print("auth verifies tokens with a public key: the demo cannot sign one", file=sys.stderr)
        return 2
    async with httpx.AsyncClient(base_url=base, timeout=40, headers=headers) as client:
        (
            await client.post(
                f"/inventory/{sku}/restock", json={"quantity": 20, "unit_price": 1999}
            )
        ).raise_for_status()
        for _ in range(100):  # the restock reaches the web view's stock view asynchronously
            if (await client.get(f"/inventory/{sku}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        for account in (DEMO_CUSTOMER, BLOCKED_CUSTOMER):
            (await client.post("/customers", json=account)).raise_for_status()
        blocked = BLOCKED_CUSTOMER["customer_id"]
        (await client.post(f"/customers/{blocked}/block", json={})).raise_for_status()
        ordering = DEMO_CUSTOMER["customer_id"]
        print(f"demo SKU {sku}: 20 in stock at 19.99; customers {ordering}, {blocked} (blocked)\n")
        for scenario in SCENARIOS:
            order = await play(client, sku, scenario)
            ok = order["status"] == scenario.expect_status and (
                order.get("failure_reason") == scenario.expect_reason
            )
            failures += not ok
            history = await client.get(f"/orders/{order['order_id']}/events")
            steps = " > ".join(e["type"] for e in history.json()["events"])
            print(
                f"{'ok ' if ok else 'BAD'} {scenario.name:<17} {order['status']:<10} "
                f"{order.get('failure_reason') or '':<17} {order['order_id']}\n    {steps}"
            )
        stock = (await client.get(f"/inventory/{sku}")).json()
        print(
            f"\n{sku}: available {stock['available']}, reserved {stock['reserved']}, "
            f"committed {stock['committed']} (expected 18 / 0 / 2)"
        )
    return 1 if failures else 0
