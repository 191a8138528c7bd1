"""The hostile tier: each attack that once broke the running system, replayed.

Every attack is followed by an order that must complete, and the session ends
with a check that no worker restarted (test_no_restarts.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from ordersaga.ops.audit import read_table
from ordersaga.ops.tail import read_topic
from ordersaga.schemas.messages import SkuCommand
from ordersaga.shell.codec import encode
from ordersaga.shell.groups import GROUPS
from ordersaga.tables import SKU_HOLDS, STOCK
from tests.integration.conftest import System
from tests.integration.support import final, history, new_sku, order_body, place, stock, wait_for

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def assert_error_shape(r: httpx.Response, status: int, field: str | None = None) -> dict:  # type: ignore[type-arg]
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str), body
    assert all({"field", "message"} <= set(p) for p in body["problems"]), body
    if field is not None:
        assert field in [p["field"] for p in body["problems"]], body
    return dict(body)


def completes(client: httpx.Client) -> None:
    """A plain order still goes all the way through."""
    sku = new_sku(client, 5, 700)
    order = final(client, place(client, order_body([(sku, 1)])))
    assert order["status"] == "COMPLETED", order


# ---------------------------------------------------------------- client-sized state


def test_idempotency_keys_of_any_length_cannot_grow_a_sku_record(client: httpx.Client) -> None:
    sku = new_sku(client, 1, 300)
    for i in range(200):
        r = client.post(
            f"/inventory/{sku}/restock",
            json={"quantity": 1},
            headers={"Idempotency-Key": f"{i}-" + "k" * 8_000},
        )
        assert_error_shape(r, 422, "Idempotency-Key")
    # Keys within the bound are kept in Redis, hashed; the record keeps fixed-size ids.
    for i in range(200):
        r = client.post(
            f"/inventory/{sku}/restock",
            json={"quantity": 1},
            headers={"Idempotency-Key": f"{i}-" + "k" * 120},
        )
        assert r.status_code == 202, r.text
        assert len(r.json()["restock_id"]) == 28
    assert wait_for(lambda: stock(client, sku)["put_in"] == 201)
    completes(client)


def test_a_flood_of_holds_on_one_sku_stays_bounded_and_grows_no_record(
    system: System, client: httpx.Client
) -> None:
    # Straight onto the SKU's partition: 2,000 holds of orders that do not exist.
    # Each hold is a small record of its own, so no write grows with them (the
    # SKU record once did, until it passed the broker's limit); what bounds them
    # is ORDERSAGA_MAX_HOLDS_PER_SKU (500 in these tests): past it, sku_busy.
    sku = new_sku(client, 5_000, 100)

    async def flood() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for i in range(2_000):
                command = SkuCommand(op="reserve", order_id=f"flood-{i}", sku=sku, quantity=1)
                e = encode(command, key=sku, correlation_id=f"flood-{i}")
                await producer.send("inventory.sku-commands", e.value, key=e.key, headers=e.headers)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(flood())
    assert wait_for(lambda: stock(client, sku)["reserved"] == 500, timeout=60)

    async def largest_records() -> tuple[int, int]:
        stock_records = await read_table(system.bootstrap, STOCK)
        holds = await read_table(system.bootstrap, SKU_HOLDS)
        mine = [h for h in holds.values() if h["sku"] == sku]
        return len(orjson.dumps(stock_records[sku])), max(len(orjson.dumps(h)) for h in mine)

    sku_bytes, hold_bytes = asyncio.run(largest_records())
    assert sku_bytes < 1_000 and hold_bytes < 300, (sku_bytes, hold_bytes)
    dead = asyncio.run(read_topic(system.bootstrap, "inventory.sku-commands.dlq"))
    assert not [r for r in dead if r.key == sku.encode()]
    # The rest of the shop goes on.
    completes(client)


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("price", [10**23, 2**64 - 1, 2**63, 0, -1])
def test_prices_beyond_the_bounds_are_422(client: httpx.Client, price: int) -> None:
    r = client.post(
        f"/inventory/sku-{uuid.uuid4().hex[:8]}/restock", json={"quantity": 1, "unit_price": price}
    )
    assert_error_shape(r, 422, "unit_price")


def test_lines_of_one_sku_adding_up_past_the_line_bound_are_422(client: httpx.Client) -> None:
    sku = new_sku(client, 5, 100)
    r = client.post("/orders", json=order_body([(sku, 6_000), (sku, 6_000)]))
    assert_error_shape(r, 422, "items")
    completes(client)


def test_a_participant_rejection_fails_the_order_at_once_as_invalid(
    system: System, client: httpx.Client
) -> None:
    # An order waiting on a gateway that never answers, then a charge the payments
    # group must refuse for its content (as another producer could send it).
    sku = new_sku(client, 5, 100)
    order_id = place(client, order_body([(sku, 2)], token="tok_timeout"))
    wait_for(lambda: "StockReserved" in history(client, order_id))
    envelope = {
        "event_id": f"hostile-{order_id}",
        "type": "ChargePayment",
        "order_id": order_id,
        "correlation_id": order_id,
        "payload": {
            "order_id": order_id,
            "customer_id": "cust-1",
            "payment_token": "tok_visa",
            "amount": 2**64 - 1,
        },
    }

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                "payments.commands",
                orjson.dumps(envelope),
                key=order_id.encode(),
                headers=[("type", b"ChargePayment")],
            )
        finally:
            await producer.stop()

    asyncio.run(produce())
    order = final(client, order_id)
    assert (order["status"], order["failure_reason"]) == ("FAILED", "invalid_order"), order
    assert "CommandRejected" in history(client, order_id)
    assert wait_for(lambda: stock(client, sku)["available"] == 5)


# ---------------------------------------------------------------- shared resources


def test_long_polls_past_the_bound_answer_503_and_nothing_breaks(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 5, 100)
    order_id = place(client, order_body([(sku, 1)], token="tok_timeout"))
    url = f"{system.base_url}/orders/{order_id}"

    def poll(_: int) -> httpx.Response:
        return httpx.get(url, params={"wait": 3}, timeout=30)

    # The bound is 20 per worker in these tests (ORDERSAGA_MAX_LONG_POLLS).
    with ThreadPoolExecutor(60) as pool:
        answers = list(pool.map(poll, range(60)))
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 30, statuses
    for r in answers:
        if r.status_code == 503:
            assert r.headers["Retry-After"]
            assert_error_shape(r, 503, "wait")
    assert httpx.get(f"{system.base_url}/health").status_code == 200
    completes(client)


def test_a_long_poll_on_an_unknown_order_is_404_at_once(client: httpx.Client) -> None:
    # Waiting the full minute would trip the client's 5 s timeout.
    r = client.get("/orders/ord_unknown", params={"wait": 60}, timeout=5)
    assert_error_shape(r, 404)


# --------------------------------------------------------------------- exposure

INTERNAL_PATHS = (
    "/table/sagas/",
    "/table/stock/",
    "/table/payment_ledger/",
    "/router/",
    "/router/sagas/x/",
    "/graph/",
    "/stats/",
    "/assignments/",
    "/",
)


def test_no_worker_serves_faust_internal_pages(system: System, client: httpx.Client) -> None:
    order_id = place(client, order_body([(new_sku(client, 5, 100), 1)]))
    for group in GROUPS:
        port = group.web_port(system.web_port)
        for path in (*INTERNAL_PATHS, f"/table/sagas/{order_id}/"):
            r = httpx.get(f"http://127.0.0.1:{port}{path}")
            assert_error_shape(r, 404)
            assert "tok_visa" not in r.text


def test_views_never_show_the_payment_token(client: httpx.Client) -> None:
    order_id = place(client, order_body([(new_sku(client, 5, 100), 1)], token="tok_visa"))
    final(client, order_id)
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/events"):
        assert "tok_visa" not in client.get(path).text


# ---------------------------------------------------------------- quiet wrongs


def test_a_restock_key_reused_with_another_body_is_422(client: httpx.Client) -> None:
    sku = new_sku(client, 5, 100)
    key = {"Idempotency-Key": f"same-{sku}"}
    first = client.post(f"/inventory/{sku}/restock", json={"quantity": 1}, headers=key)
    assert first.status_code == 202
    r = client.post(f"/inventory/{sku}/restock", json={"quantity": 2}, headers=key)
    assert_error_shape(r, 422, "Idempotency-Key")


# Percent-encoded, so that "." and ".." reach the server instead of being resolved
# away by the client as path segments.
@pytest.mark.parametrize("sku", ["%2E", "%2E%2E", "-x", "a%20b", "a%00b", "x" * 65, "%C3%A9"])
def test_skus_that_are_not_names_are_422(client: httpx.Client, sku: str) -> None:
    r = client.post(f"/inventory/{sku}/restock", json={"quantity": 1, "unit_price": 1})
    assert_error_shape(r, 422, "sku")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_mutations_need_a_json_content_type(client: httpx.Client, content_type: str | None) -> None:
    sku = new_sku(client, 5, 100)
    body = json.dumps(order_body([(sku, 1)])).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    order_id = place(client, order_body([(sku, 1)]))
    for path, content in (
        ("/orders", body),
        (f"/orders/{order_id}/cancel", b"{}"),
        (f"/inventory/{sku}/restock", b'{"quantity": 1, "unit_price": 1}'),
    ):
        r = client.post(path, content=content, headers=headers)
        assert_error_shape(r, 415, "Content-Type")
    assert final(client, order_id)["status"] == "COMPLETED"  # the cancel never reached it


def test_duplicate_keys_blank_text_and_control_characters_are_refused(client: httpx.Client) -> None:
    sku = new_sku(client, 5, 100)
    raw = json.dumps(order_body([(sku, 1)]))
    dup = raw.replace('"quantity": 1', '"quantity": -5, "quantity": 1')
    assert_error_shape(client.post("/orders", content=dup, headers=JSON), 400)
    blank = order_body([(sku, 1)])
    blank["shipping_address"]["line1"] = "   "
    assert_error_shape(client.post("/orders", json=blank), 422, "shipping_address.line1")
    nul = order_body([(sku, 1)], customer="c\u0000x")
    assert_error_shape(client.post("/orders", json=nul), 422, "customer_id")
    completes(client)


def test_method_errors_are_json_and_allow_names_methods_that_work(
    system: System, client: httpx.Client
) -> None:
    r = client.delete("/orders")
    body = assert_error_shape(r, 405)
    assert body["error"] == "method_not_allowed"
    for method in r.headers["Allow"].split(", "):
        assert client.request(method, "/orders", json={}).status_code != 405, method
    assert_error_shape(client.delete("/inventory"), 405)
    assert_error_shape(client.get("/nowhere"), 404)
