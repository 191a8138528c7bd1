"""Customer accounts over HTTP, and the saga's first step on a real broker."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.support import (
    final,
    history,
    new_sku,
    newest_first,
    order_body,
    place,
    stock,
)
from tests.integration.test_hostile_attacks import assert_error_shape

pytestmark = pytest.mark.integration


def account(customer_id: str, name: str = "Katherine Johnson") -> dict[str, str]:
    return {"customer_id": customer_id, "name": name, "email": f"{customer_id}@example.com"}


def new_customer(client: httpx.Client) -> str:
    customer_id = f"cust-{uuid.uuid4().hex[:10]}"
    r = client.post("/customers", json=account(customer_id))
    assert r.status_code == 201, r.text
    return customer_id


def test_registering_is_idempotent_on_the_id(client: httpx.Client) -> None:
    customer_id = f"cust-{uuid.uuid4().hex[:10]}"
    first = client.post("/customers", json=account(customer_id))
    assert first.status_code == 201, first.text
    assert first.headers["Location"] == f"/customers/{customer_id}"
    body = first.json()
    assert (body["customer_id"], body["blocked"], body["version"]) == (customer_id, False, 1)
    # The same body again is the same account; other details are a conflict.
    again = client.post("/customers", json=account(customer_id))
    assert again.status_code == 200 and again.json() == body
    other = client.post("/customers", json=account(customer_id, name="Someone Else"))
    assert_error_shape(other, 409, "customer_id")
    assert other.json()["error"] == "customer_exists"
    assert client.get(f"/customers/{customer_id}").json() == body


def test_bad_accounts_get_a_4xx_naming_the_field(client: httpx.Client) -> None:
    assert_error_shape(
        client.post("/customers", json={**account("cust-x"), "email": "no-at-sign"}), 422, "email"
    )
    assert_error_shape(
        client.post("/customers", json={**account("cust-x"), "extra": 1}), 422, "extra"
    )
    assert_error_shape(client.post("/customers", json={"name": "A"}), 422, "customer_id")
    assert_error_shape(client.get("/customers/no%20spaces"), 422, "customer_id")
    assert_error_shape(client.get("/customers/cust-never-registered"), 404)
    assert_error_shape(client.post("/customers/cust-never-registered/block", json={}), 404)


def test_an_unknown_customers_order_fails_customer_invalid_and_touches_no_stock(
    client: httpx.Client,
) -> None:
    sku = new_sku(client, 5, 100)
    order_id = place(client, order_body([(sku, 2)], customer=f"cust-{uuid.uuid4().hex[:10]}"))
    order = final(client, order_id)
    assert (order["status"], order["failure_reason"]) == ("FAILED", "customer_invalid")
    assert history(client, order_id) == [
        "OrderPlaced",
        "CustomerRejected",
        "CompensationStarted",
        "OrderFailed",
    ]
    levels = stock(client, sku)
    assert (levels["available"], levels["reserved"], levels["committed"]) == (5, 0, 0)


def test_a_blocked_customer_cannot_order_until_unblocked(client: httpx.Client) -> None:
    sku = new_sku(client, 5, 100)
    customer_id = new_customer(client)
    blocked = client.post(f"/customers/{customer_id}/block", json={})
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    refused = final(client, place(client, order_body([(sku, 1)], customer=customer_id)))
    assert (refused["status"], refused["failure_reason"]) == ("FAILED", "customer_invalid")

    unblocked = client.post(f"/customers/{customer_id}/unblock", json={})
    assert unblocked.status_code == 200 and unblocked.json()["blocked"] is False
    assert unblocked.json()["version"] == 3
    done = final(client, place(client, order_body([(sku, 1)], customer=customer_id)))
    assert done["status"] == "COMPLETED"


def test_a_customers_orders_are_listed_newest_first_in_pages(client: httpx.Client) -> None:
    sku = new_sku(client, 10, 100)
    customer_id = new_customer(client)
    placed = [place(client, order_body([(sku, 1)], customer=customer_id)) for _ in range(3)]
    for order_id in placed:
        final(client, order_id)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/customers/{customer_id}/orders", params=params)
        assert page.status_code == 200, page.text
        seen += [o["order_id"] for o in page.json()["orders"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first(client, placed)
    assert_error_shape(client.get(f"/customers/{customer_id}/orders?limit=0"), 422, "limit")
    assert_error_shape(client.get(f"/customers/{customer_id}/orders?cursor=x"), 422, "cursor")
