"""The five scenarios over HTTP, with stock levels and history checked afterwards."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.support import final, history, new_sku, order_body, place, stock, wait_for

pytestmark = pytest.mark.integration

UNIT_PRICE = 1250


def levels(client: httpx.Client, sku: str) -> tuple[int, int, int]:
    s = stock(client, sku)
    return s["available"], s["reserved"], s["committed"]


def test_completed_order_charges_the_catalogue_price_and_commits_stock(
    client: httpx.Client,
) -> None:
    # Given a SKU with 10 in stock
    sku = new_sku(client, 10, UNIT_PRICE)
    # When a customer orders 3 of it
    order_id = place(client, order_body([(sku, 3)]))
    order = final(client, order_id)
    # Then the order completes at the catalogue price, and 3 units left the shelf
    assert order["status"] == "COMPLETED"
    assert order["failure_reason"] is None
    assert order["total"] == 3 * UNIT_PRICE
    assert order["items"] == [{"sku": sku, "quantity": 3}]
    assert order["shipment_id"] and order["charge_id"]
    assert history(client, order_id) == [
        "OrderPlaced",
        "CustomerValidated",
        "StockReserved",
        "PaymentCharged",
        "ShipmentPrepared",
        "OrderCompleted",
    ]
    # The commit, which nobody awaits, reaches the shelf just after
    assert wait_for(lambda: levels(client, sku) == (7, 0, 3))


def test_ordering_more_than_available_fails_out_of_stock(client: httpx.Client) -> None:
    sku = new_sku(client, 2, UNIT_PRICE)
    order = final(client, place(client, order_body([(sku, 3)])))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "out_of_stock")
    assert history(client, order["order_id"])[-1] == "OrderFailed"
    assert levels(client, sku) == (2, 0, 0)


def test_one_short_sku_releases_the_others_reserved_for_the_same_order(
    client: httpx.Client,
) -> None:
    # Given two SKUs, the second with too little stock
    plenty, scarce = new_sku(client, 10, 100), new_sku(client, 1, 200)
    # When an order asks for both
    order = final(client, place(client, order_body([(plenty, 4), (scarce, 2)])))
    # Then it fails out of stock and the first SKU's reservation was released
    assert (order["status"], order["failure_reason"]) == ("FAILED", "out_of_stock")
    assert wait_for(lambda: levels(client, plenty) == (10, 0, 0))
    assert levels(client, scarce) == (1, 0, 0)


def test_declined_payment_fails_and_releases_stock(client: httpx.Client) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    order = final(client, place(client, order_body([(sku, 2)], token="tok_decline")))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "payment_declined")
    assert history(client, order["order_id"]) == [
        "OrderPlaced",
        "CustomerValidated",
        "StockReserved",
        "PaymentDeclined",
        "CompensationStarted",
        "StockReleased",
        "OrderFailed",
    ]
    assert wait_for(lambda: levels(client, sku) == (5, 0, 0))


def test_refused_shipping_refunds_then_releases_newest_first(client: httpx.Client) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    order = final(client, place(client, order_body([(sku, 1)], country="XX")))
    assert (order["status"], order["failure_reason"]) == ("FAILED", "shipping_failed")
    events = history(client, order["order_id"])
    assert events[:5] == [
        "OrderPlaced",
        "CustomerValidated",
        "StockReserved",
        "PaymentCharged",
        "ShipmentRefused",
    ]
    assert events.index("PaymentRefunded") < events.index("StockReleased")
    assert events[-1] == "OrderFailed"
    assert wait_for(lambda: levels(client, sku) == (5, 0, 0))


def test_cancelled_order_is_compensated_and_cannot_be_cancelled_again(
    client: httpx.Client,
) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    # When the customer cancels right after placing the order (its charge gets no
    # answer, so the saga waits a step deadline, 1 s here: a lone saga completes
    # in ~40 ms, and on a busy machine it finished before the cancel arrived).
    order_id = place(client, order_body([(sku, 2)], token="tok_timeout"))
    r = client.post(f"/orders/{order_id}/cancel", json={})
    assert r.status_code == 202, r.text
    # Then it ends CANCELLED with its stock back on the shelf
    order = final(client, order_id)
    assert (order["status"], order["failure_reason"]) == ("CANCELLED", None)
    # A cancel that came while the customer was checked had nothing to undo.
    events = history(client, order_id)
    assert ("StockReleased" in events) == ("CustomerValidated" in events), events
    assert wait_for(lambda: levels(client, sku) == (5, 0, 0))
    # And a terminal order answers 409 to a second cancel
    again = client.post(f"/orders/{order_id}/cancel", json={})
    assert again.status_code == 409
    assert again.json()["status"] == "CANCELLED"


def test_completed_order_cannot_be_cancelled(client: httpx.Client) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    order = final(client, place(client, order_body([(sku, 1)])))
    assert order["status"] == "COMPLETED"
    assert client.post(f"/orders/{order['order_id']}/cancel", json={}).status_code == 409


def test_retried_post_with_the_same_idempotency_key_returns_the_same_order(
    client: httpx.Client,
) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    body = order_body([(sku, 1)])
    first = place(client, body, **{"Idempotency-Key": f"key-{sku}"})
    second = place(client, body, **{"Idempotency-Key": f"key-{sku}"})
    assert first == second
    assert final(client, first)["status"] == "COMPLETED"
    # Only one order ran: one unit left the shelf
    assert wait_for(lambda: levels(client, sku) == (4, 0, 1))
    # A different body under the same key is refused
    other = client.post(
        "/orders", json=order_body([(sku, 2)]), headers={"Idempotency-Key": f"key-{sku}"}
    )
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"


def test_order_is_readable_right_after_it_is_accepted(client: httpx.Client) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    order_id = place(client, order_body([(sku, 1)]))
    r = client.get(f"/orders/{order_id}")
    assert r.status_code == 200
    assert r.json()["order_id"] == order_id


def test_restock_tops_up_an_existing_sku_without_a_price(client: httpx.Client) -> None:
    sku = new_sku(client, 5, UNIT_PRICE)
    r = client.post(f"/inventory/{sku}/restock", json={"quantity": 7})
    assert r.status_code == 202, r.text
    assert wait_for(lambda: levels(client, sku) == (12, 0, 0))
    assert stock(client, sku)["unit_price"] == UNIT_PRICE
    listed = {s["sku"]: s for s in client.get("/inventory").json()["items"]}
    assert listed[sku]["available"] == 12
