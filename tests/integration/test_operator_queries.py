"""The operators' queries and gauges on the running system."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.support import (
    final,
    new_sku,
    newest_first,
    order_body,
    place,
    wait_for,
)
from tests.integration.test_customers import new_customer
from tests.integration.test_hostile_attacks import assert_error_shape

pytestmark = pytest.mark.integration


def test_orders_are_listed_newest_first_by_status_customer_and_time(client: httpx.Client) -> None:
    sku = new_sku(client, 10, 100)
    customer_id = new_customer(client)
    started = datetime.now(UTC) - timedelta(seconds=1)
    ok = [place(client, order_body([(sku, 1)], customer=customer_id)) for _ in range(2)]
    declined = place(client, order_body([(sku, 1)], token="tok_decline", customer=customer_id))
    for order_id in (*ok, declined):
        final(client, order_id)

    expected = newest_first(client, [*ok, declined])
    mine = client.get("/orders", params={"customer_id": customer_id}).json()
    assert [o["order_id"] for o in mine["orders"]] == expected
    failed = client.get("/orders", params={"customer_id": customer_id, "status": "FAILED"})
    assert [o["order_id"] for o in failed.json()["orders"]] == [declined]
    # Every order of the shop, newest first, paged: ours are among the newest
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {
            "limit": "2",
            "since": started.isoformat(),
            **({"cursor": cursor} if cursor else {}),
        }
        page = client.get("/orders", params=params).json()
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [o for o in seen if o in (*ok, declined)] == expected
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get("/orders", params={"since": later}).json()["orders"] == []


def test_bad_listing_parameters_get_a_422_naming_them(client: httpx.Client) -> None:
    assert_error_shape(client.get("/orders?status=LOST"), 422, "status")
    assert_error_shape(client.get("/orders?since=yesterday"), 422, "since")
    assert_error_shape(client.get("/orders?limit=1000"), 422, "limit")
    assert_error_shape(client.get("/orders?customer_id=a%20b"), 422, "customer_id")
    assert_error_shape(client.get(f"/orders?cursor={uuid.uuid4().hex}"), 422, "cursor")


def test_the_gauges_operators_alert_on_are_served(system: System, client: httpx.Client) -> None:
    def metrics(offset: int) -> str:
        return httpx.get(f"http://127.0.0.1:{system.web_port + offset}/metrics").text

    assert "ordersaga_sagas_in_flight" in metrics(1)  # orders
    assert "ordersaga_low_stock_skus" in metrics(2)  # inventory
    assert "ordersaga_consumer_lag" in metrics(4)  # shipping
    live = 'ordersaga_group_live_workers{group="orders"} 1.0'
    assert wait_for(lambda: live in metrics(0), timeout=20)
    depth = 'ordersaga_dead_letter_depth{topic="orders.commands.dlq"}'
    assert wait_for(lambda: depth in metrics(0), timeout=30)
