"""Bad input gets a 4xx naming the problem and never reaches Kafka."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import System
from tests.integration.support import new_sku, order_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sku(system, client: httpx.Client) -> str:  # type: ignore[no-untyped-def]
    return new_sku(client, 5, 100)


def post_raw(client: httpx.Client, content: bytes) -> httpx.Response:
    return client.post("/orders", content=content, headers={"Content-Type": "application/json"})


def test_malformed_json_is_400(client: httpx.Client) -> None:
    r = post_raw(client, b'{"customer_id": ')
    assert r.status_code == 400
    assert r.json()["error"] == "malformed_json"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("customer_id"), "customer_id"),
        (lambda b: b.update(items=[]), "items"),
        (lambda b: b["items"][0].update(quantity=0), "items[0].quantity"),
        (lambda b: b["items"][0].update(quantity=-2), "items[0].quantity"),
        (lambda b: b["items"][0].update(quantity="2"), "items[0].quantity"),
        (lambda b: b["shipping_address"].pop("city"), "shipping_address.city"),
        (lambda b: b.update(payment_token=42), "payment_token"),
        (lambda b: b.update(surprise=True), "surprise"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: httpx.Client, sku: str, mutate, field
) -> None:  # type: ignore[no-untyped-def]
    body = order_body([(sku, 1)])
    mutate(body)
    r = client.post("/orders", json=body)
    assert r.status_code == 422, r.text
    assert field in [p["field"] for p in r.json()["problems"]], r.json()


def test_unknown_sku_is_422(client: httpx.Client) -> None:
    r = client.post("/orders", json=order_body([("no-such-sku", 1)]))
    assert r.status_code == 422
    assert r.json()["problems"][0]["field"] == "items[0].sku"


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    r = post_raw(client, b'{"customer_id": "' + b"x" * 100_000 + b'"}')
    assert r.status_code == 413


def test_unknown_order_is_404(client: httpx.Client) -> None:
    assert client.get("/orders/ord_nope").status_code == 404
    assert client.get("/orders/ord_nope/events").status_code == 404
    assert client.post("/orders/ord_nope/cancel", json={}).status_code == 404


def test_unknown_sku_is_404(client: httpx.Client) -> None:
    assert client.get("/inventory/no-such-sku").status_code == 404


def test_new_sku_needs_a_price(client: httpx.Client) -> None:
    r = client.post("/inventory/brand-new-sku/restock", json={"quantity": 3})
    assert r.status_code == 422
    assert r.json()["problems"][0]["field"] == "unit_price"


def test_restock_quantity_must_be_positive(client: httpx.Client, sku: str) -> None:
    r = client.post(f"/inventory/{sku}/restock", json={"quantity": 0})
    assert r.status_code == 422
    assert r.json()["problems"][0]["field"] == "quantity"


def test_web_view_survives_a_burst_of_garbage(client: httpx.Client, sku: str) -> None:
    for i in range(200):
        client.post("/orders", content=bytes([i % 256]) * (i + 1))
    assert client.get("/health").status_code == 200
    assert client.get(f"/inventory/{sku}").status_code == 200


def test_run_says_first_that_auth_is_off_and_how_to_turn_it_on(system: System) -> None:
    # Without a secret every route is open: the first thing `make run` says.
    assert system.output[0].startswith("auth      OFF: every route is open")
    assert "ORDERSAGA_AUTH_SECRET" in system.output[0]
