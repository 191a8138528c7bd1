"""Helpers for driving the running system over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any, Protocol

import httpx
import pytest


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; return it or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def new_sku(client: httpx.Client, quantity: int, unit_price: int) -> str:
    """Create a fresh SKU and wait until the web view knows it."""
    sku = f"sku-{uuid.uuid4().hex[:10]}"
    r = client.post(
        f"/inventory/{sku}/restock", json={"quantity": quantity, "unit_price": unit_price}
    )
    assert r.status_code == 202, r.text
    wait_for(lambda: client.get(f"/inventory/{sku}").status_code == 200)
    return sku


def stock(client: httpx.Client, sku: str) -> dict[str, Any]:
    """A SKU's levels from the web view."""
    r = client.get(f"/inventory/{sku}")
    assert r.status_code == 200, r.text
    return dict(r.json())


ADDRESS = {
    "name": "Grace Hopper",
    "line1": "1 Compiler Way",
    "city": "Arlington",
    "postal_code": "22201",
    "country": "US",
}


def order_body(
    items: list[tuple[str, int]],
    token: str = "tok_visa",
    country: str = "US",
    customer: str = "cust-1",
) -> dict[str, Any]:
    """A POST /orders body."""
    return {
        "customer_id": customer,
        "items": [{"sku": s, "quantity": q} for s, q in items],
        "payment_token": token,
        "shipping_address": {**ADDRESS, "country": country},
    }


def place(client: httpx.Client, body: dict, **headers: str) -> str:  # type: ignore[type-arg]
    """POST an order; return its id."""
    r = client.post("/orders", json=body, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["order_id"])


def final(client: httpx.Client, order_id: str) -> dict[str, Any]:
    """Long-poll the order until terminal; fail if it is not."""
    r = client.get(f"/orders/{order_id}", params={"wait": 40})
    assert r.status_code == 200, r.text
    order = dict(r.json())
    assert order["status"] in {"COMPLETED", "FAILED", "CANCELLED"}, order
    return order


def history(client: httpx.Client, order_id: str) -> list[str]:
    """The order's event types, oldest first."""
    r = client.get(f"/orders/{order_id}/events")
    assert r.status_code == 200, r.text
    return [e["type"] for e in r.json()["events"]]


def newest_first(client: httpx.Client, order_ids: list[str]) -> list[str]:
    """The orders by the time the orchestrator placed them, newest first (as listings are).

    Orders POSTed one after the other land on different partitions, so their
    placing order can differ from the order of the POSTs.
    """
    placed = {o: client.get(f"/orders/{o}").json()["placed_at"] for o in order_ids}
    return sorted(order_ids, key=lambda o: placed[o], reverse=True)


def register(client: httpx.Client, *customer_ids: str, name: str = "Test Customer") -> None:
    """Register customers (an unknown customer's orders fail customer_invalid)."""
    for customer_id in customer_ids:
        account = {
            "customer_id": customer_id,
            "name": name,
            "email": f"{customer_id}@test.example.com",
        }
        r = client.post("/customers", json=account)
        assert r.status_code in (200, 201), r.text


class Reachable(Protocol):
    """Where a running system's broker and Redis listen."""

    bootstrap: str
    redis_url: str


def ordersaga_cli(
    system: Reachable, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``ordersaga ARGS`` against the running system, with extra ``ORDERSAGA_*`` settings."""
    env = {
        **os.environ,
        "KAFKA_BROKER": system.bootstrap,
        "REDIS_URL": system.redis_url,
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", "ordersaga", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
