"""The order routes: POST /orders (refused, accepted, retried), reads, long-polls, cancel.

Each test runs against the session's real valkey-server on a flushed database;
orders and stock reach the read model through the webview's own projections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest

from ordersaga.agents import webview
from ordersaga.schemas.messages import Address, CancelOrder, OrderLine, PlaceOrder
from ordersaga.shell.topics import ORDERS_COMMANDS, ORDERS_EVENTS
from ordersaga.web.client_share import MAX_COUNTED_AGE_S, ClientShare
from ordersaga.web.intake import OrderIntake, idempotency_key
from ordersaga.web.read_model import ViewStore
from ordersaga.web.redis_keys import IDEMPOTENCY
from ordersaga.web.watch import ClientWatchFull, OrderWatch
from tests.harness import (
    ADDRESS,
    JSON,
    ORDER_ID,
    order_body,
    order_event,
    post_order,
    stock,
)


async def assert_nothing_accepted(outbox, store: ViewStore) -> None:
    assert outbox.sent == []
    assert await OrderIntake(store.redis).accepted_ids() == set()
    assert [k async for k in store.redis.scan_iter(match=IDEMPOTENCY + "*")] == []


# ---------------------------------------------------------------- POST /orders rejected


async def test_malformed_json_is_400(client, outbox, store):
    resp = await client.post("/orders", data=b'{"customer_id": ', headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "malformed_json"
    await assert_nothing_accepted(outbox, store)


async def test_empty_body_is_400(client, outbox, store):
    resp = await client.post("/orders", data=b"", headers=JSON)
    assert resp.status == 400
    assert (await resp.json())["error"] == "empty_body"
    await assert_nothing_accepted(outbox, store)


async def test_missing_field_is_422_naming_it(client, outbox, store):
    body = order_body()
    del body["payment_token"]
    resp = await client.post("/orders", json=body)
    assert resp.status == 422
    answer = await resp.json()
    assert answer["error"] == "validation_error"
    assert answer["message"].startswith("payment_token:")
    assert [p["field"] for p in answer["problems"]] == ["payment_token"]
    await assert_nothing_accepted(outbox, store)


async def test_zero_quantity_is_422(client, outbox, store):
    resp = await client.post("/orders", json=order_body(items=[{"sku": "SKU-A", "quantity": 0}]))
    assert resp.status == 422
    answer = await resp.json()
    assert answer["problems"][0]["field"] == "items[0].quantity"
    await assert_nothing_accepted(outbox, store)


async def test_non_object_body_is_422(client, outbox, store):
    resp = await client.post("/orders", json=[order_body()])
    assert resp.status == 422
    assert (await resp.json())["message"] == "(body): must be a JSON object"
    await assert_nothing_accepted(outbox, store)


async def test_unknown_sku_is_422(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    items = [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-NOPE", "quantity": 1}]
    resp = await post_order(client, order_body(items=items), key="k-unknown")
    assert resp.status == 422
    answer = await resp.json()
    assert answer["error"] == "unknown_sku"
    assert answer["problems"] == [{"field": "items[1].sku", "message": "unknown SKU 'SKU-NOPE'"}]
    await assert_nothing_accepted(outbox, store)


async def test_a_body_over_the_limit_is_413(client, outbox, store):
    limit = webview.desk.settings.max_body_bytes
    declared = await client.post("/orders", data=b" " * (limit + 1), headers=JSON)
    assert declared.status == 413
    assert (await declared.json())["error"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    streamed = await client.post("/orders", data=chunks(), headers=JSON)
    assert streamed.status == 413
    assert (await streamed.json())["error"] == "body_too_large"
    await assert_nothing_accepted(outbox, store)


@pytest.mark.parametrize("key", ["k" * 129, "", "a b", "caf\u00e9"])
async def test_an_idempotency_key_out_of_bounds_is_422_naming_the_header(
    client, outbox, drive, store, key
):
    await stock(drive, "SKU-A")
    resp = await client.post(
        "/orders",
        data=orjson.dumps(order_body()),
        headers={**JSON, "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert resp.status == 422
    assert (await resp.json())["problems"][0]["field"] == "Idempotency-Key"
    await assert_nothing_accepted(outbox, store)


# ---------------------------------------------------------------- POST /orders accepted


async def test_an_order_for_known_skus_is_accepted_and_sent(client, outbox, drive, store, intake):
    await stock(drive, "SKU-A", "SKU-B")
    items = [
        {"sku": "SKU-A", "quantity": 1},
        {"sku": "SKU-B", "quantity": 1},
        {"sku": "SKU-A", "quantity": 2},
    ]
    resp = await post_order(client, order_body(items=items))

    assert resp.status == 202
    answer = await resp.json()
    order_id = answer["order_id"]
    assert order_id.startswith("ord_")
    assert resp.headers["Location"] == f"/orders/{order_id}"
    assert answer["links"] == {"self": f"/orders/{order_id}"}
    assert (answer["status"], answer["customer_id"]) == ("PENDING", "cust-1")
    merged = [{"sku": "SKU-A", "quantity": 3}, {"sku": "SKU-B", "quantity": 1}]
    assert answer["items"] == merged

    assert outbox.topics() == [ORDERS_COMMANDS]
    [sent] = outbox.on(ORDERS_COMMANDS)
    assert sent.key == order_id.encode()
    # The request's correlation id (made at the edge, answered back) travels with it.
    assert sent.envelope.correlation_id == resp.headers["X-Correlation-ID"]
    assert sent.message == PlaceOrder(
        order_id=order_id,
        customer_id="cust-1",
        items=(OrderLine(sku="SKU-A", quantity=3), OrderLine(sku="SKU-B", quantity=1)),
        payment_token="tok_ok",
        shipping_address=Address.model_validate(ADDRESS.model_dump()),
    )
    accepted = await intake.accepted(order_id)
    assert accepted is not None
    assert (accepted["order_id"], accepted["status"], accepted["items"]) == (
        order_id,
        "PENDING",
        merged,
    )


async def test_without_a_key_each_post_is_a_new_order(client, outbox, drive, store, intake):
    await stock(drive, "SKU-A")
    first = await post_order(client, order_body())
    second = await post_order(client, order_body())
    assert (first.status, second.status) == (202, 202)
    ids = {(await first.json())["order_id"], (await second.json())["order_id"]}
    assert len(ids) == 2
    assert {m.order_id for m in outbox.messages(ORDERS_COMMANDS)} == ids
    assert await intake.accepted_ids() == ids


async def test_a_retry_with_the_same_key_and_body_resends_the_same_order(
    client, outbox, drive, intake
):
    await stock(drive, "SKU-A")
    first = await post_order(client, order_body(), key="retry-1")
    again = await post_order(client, order_body(), key="retry-1")

    assert (first.status, again.status) == (202, 202)
    order_id = (await first.json())["order_id"]
    assert (await again.json())["order_id"] == order_id
    assert again.headers["Location"] == f"/orders/{order_id}"
    sent = outbox.on(ORDERS_COMMANDS)
    assert len(sent) == 2
    assert sent[0].message == sent[1].message
    assert sent[1].message.order_id == order_id
    assert [s.key for s in sent] == [order_id.encode()] * 2
    assert await intake.accepted_ids() == {order_id}


async def test_the_same_key_with_another_body_is_422(client, outbox, drive, store, intake):
    await stock(drive, "SKU-A", "SKU-B")
    first = await post_order(client, order_body(), key="reused-1")
    assert first.status == 202
    order_id = (await first.json())["order_id"]

    other = order_body(items=[{"sku": "SKU-B", "quantity": 1}])
    reused = await post_order(client, other, key="reused-1")
    assert reused.status == 422
    assert (await reused.json())["error"] == "idempotency_key_reused"
    assert [m.order_id for m in outbox.messages(ORDERS_COMMANDS)] == [order_id]

    # The first body is still the one the key stands for.
    retried = await post_order(client, order_body(), key="reused-1")
    assert (retried.status, (await retried.json())["order_id"]) == (202, order_id)
    assert await intake.accepted_ids() == {order_id}


async def test_a_retry_after_the_window_sends_nothing(client, outbox, drive, store, intake):
    await stock(drive, "SKU-A")
    first = await post_order(client, order_body(), key="late-retry")
    order_id = (await first.json())["order_id"]
    raw = await store.redis.get(idempotency_key("order", "cust-1/late-retry"))
    record = orjson.loads(raw)
    record["accepted_at"] -= webview.node.settings.redrive_window_s + 1
    await store.redis.set(idempotency_key("order", "cust-1/late-retry"), orjson.dumps(record))
    await intake.drop_unconfirmed(order_id)

    again = await post_order(client, order_body(), key="late-retry")

    assert (again.status, (await again.json())["order_id"]) == (202, order_id)
    assert len(outbox.messages(ORDERS_COMMANDS)) == 1
    # It answers with when the key was first used, not with the retry's time.
    body = await (await client.get(f"/orders/{order_id}")).json()
    placed_at = datetime.fromisoformat(body["placed_at"])
    assert placed_at == datetime.fromtimestamp(record["accepted_at"], UTC)


async def test_a_retry_of_a_projected_order_sends_nothing(client, outbox, drive, store, intake):
    await stock(drive, "SKU-A")
    order_id = (await (await post_order(client, order_body(), key="seen")).json())["order_id"]
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    again = await post_order(client, order_body(), key="seen")
    assert (await again.json())["order_id"] == order_id
    assert len(outbox.messages(ORDERS_COMMANDS)) == 1
    assert await intake.unconfirmed_ids() == set()


# -------------------------------------------------------------------------- order reads


async def test_an_order_is_readable_right_after_it_is_accepted(client, outbox, drive, store):
    await stock(drive, "SKU-A")
    placed = await post_order(client, order_body())
    order_id = (await placed.json())["order_id"]

    got = await client.get(f"/orders/{order_id}")
    assert got.status == 200
    body = await got.json()
    assert (body["order_id"], body["status"], body["customer_id"]) == (
        order_id,
        "PENDING",
        "cust-1",
    )
    assert body["items"] == [{"sku": "SKU-A", "quantity": 1}]
    history = await client.get(f"/orders/{order_id}/events")
    assert history.status == 200
    assert (await history.json()) == {"order_id": order_id, "events": []}

    cancel = await client.post(f"/orders/{order_id}/cancel", headers=JSON)
    assert cancel.status == 202
    assert outbox.messages(ORDERS_COMMANDS)[-1] == CancelOrder(order_id=order_id)

    # Once projected, the view answers instead (its customer is the event's).
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    body = await (await client.get(f"/orders/{order_id}")).json()
    assert (body["customer_id"], body["events_seen"]) == ("cust-42", 1)


async def test_order_routes_answer_from_the_view(client, outbox, drive):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        await d.put(
            order_event("OrderCancelled", 2, "CANCELLED", order_id="ord-done"),
            key="ord-done",
            topic=ORDERS_EVENTS,
        )

    got = await client.get(f"/orders/{ORDER_ID}")
    assert got.status == 200
    body = await got.json()
    assert (body["order_id"], body["status"], body["events_seen"]) == (ORDER_ID, "PENDING", 1)
    history = await client.get(f"/orders/{ORDER_ID}/events")
    assert [e["type"] for e in (await history.json())["events"]] == ["OrderPlaced"]
    bad_wait = await client.get(f"/orders/{ORDER_ID}?wait=soon")
    assert bad_wait.status == 422
    assert (await bad_wait.json())["problems"][0]["field"] == "wait"

    terminal = await client.post("/orders/ord-done/cancel", headers=JSON)
    assert terminal.status == 409
    assert (await terminal.json())["status"] == "CANCELLED"
    assert outbox.sent == []

    in_flight = await client.post(f"/orders/{ORDER_ID}/cancel", headers=JSON)
    assert in_flight.status == 202
    [sent] = outbox.on(ORDERS_COMMANDS)
    assert sent.key == ORDER_ID.encode()
    assert sent.message == CancelOrder(order_id=ORDER_ID)


async def test_unknown_orders_are_404(client, outbox):
    for resp in (
        await client.get("/orders/ord-nope"),
        await client.get("/orders/ord-nope/events"),
        await client.post("/orders/ord-nope/cancel", headers=JSON),
        await client.get("/orders/ord-nope?wait=0.2"),
    ):
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"
    assert outbox.sent == []


async def test_a_long_poll_answers_once_the_order_is_finished(client, outbox, drive):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
        started = time.monotonic()
        poll = asyncio.ensure_future(client.get(f"/orders/{ORDER_ID}?wait=10"))
        await asyncio.sleep(0.05)
        assert not poll.done()
        await d.put(
            order_event("OrderCancelled", 2, "CANCELLED"), key=ORDER_ID, topic=ORDERS_EVENTS
        )
        resp = await asyncio.wait_for(poll, timeout=2.0)
    assert resp.status == 200
    assert (await resp.json())["status"] == "CANCELLED"
    assert time.monotonic() - started < 2.0


async def test_one_client_holds_at_most_its_share_of_long_polls(client, outbox, drive):
    # The whole worker's bound is 1,000; one client may hold 2 here, so others still read.
    webview.desk.watch.per_client = 2
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
    polls = [asyncio.ensure_future(client.get(f"/orders/{ORDER_ID}?wait=2")) for _ in range(2)]
    await asyncio.sleep(0.1)
    third = await client.get(f"/orders/{ORDER_ID}?wait=2")
    assert third.status == 429 and third.headers["Retry-After"] == "1"
    body = await third.json()
    assert body["error"] == "too_many_waiters" and body["problems"][0]["field"] == "wait"
    assert [r.status for r in await asyncio.gather(*polls)] == [200, 200]
    # Once they answered, the client may wait again (its count went back to 0).
    assert webview.desk.watch._clients == {}


async def test_the_watch_counts_each_clients_long_polls_apart():
    watch = OrderWatch(per_client=1, limit=10)
    held = asyncio.ensure_future(watch.wait("ord-1", 0.3, "ip:10.0.0.1"))
    await asyncio.sleep(0.01)
    with pytest.raises(ClientWatchFull):
        await watch.wait("ord-2", 0.1, "ip:10.0.0.1")
    await watch.wait("ord-2", 0.01, "ip:10.0.0.2")  # another client: served
    await held
    assert watch.held == 0


# ---------------------------------------------------------------- overload


@pytest.fixture
def desk_settings(monkeypatch: pytest.MonkeyPatch):
    """Change the web view's settings for one test (the client share is rebuilt)."""

    def change(**updates: object) -> None:
        desk = webview.desk
        monkeypatch.setattr(desk, "settings", desk.settings.model_copy(update=updates))
        desk._share = None

    return change


@pytest.fixture
def limit_in_flight(desk_settings):
    """Set the web view's limit of sagas in flight for one test."""
    return lambda n: desk_settings(max_sagas_in_flight=n)


async def test_past_the_limit_in_flight_a_new_order_is_429_with_retry_after(
    client, outbox, drive, store, intake, limit_in_flight
):
    await stock(drive, "SKU-A")
    limit_in_flight(2)
    first = await post_order(client, order_body())
    second = await post_order(client, order_body(), key="k-2")
    assert (first.status, second.status) == (202, 202)
    assert await store.in_flight() == 2

    refused = await post_order(client, order_body(), key="k-3")
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    answer = await refused.json()
    assert answer["error"] == "overloaded" and "2 orders in flight" in answer["message"]
    # Nothing of the refused order is kept: its retry with the same key is new.
    assert len(outbox.messages(ORDERS_COMMANDS)) == 2
    assert len(await intake.accepted_ids()) == 2
    assert await store.redis.get(IDEMPOTENCY + idempotency_key("order", "cust-1/k-3")) is None


async def test_orders_ending_make_room_again(client, outbox, drive, store, limit_in_flight):
    await stock(drive, "SKU-A")
    limit_in_flight(1)
    first = await post_order(client, order_body())
    order_id = (await first.json())["order_id"]
    assert (await post_order(client, order_body())).status == 429
    # Its first event opens its view (still in flight), its last one closes it.
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderPlaced", 1, "PENDING", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
        await asyncio.sleep(0.06)  # past this worker's cached count
        assert (await post_order(client, order_body())).status == 429
        await d.put(
            order_event("OrderCancelled", 2, "CANCELLED", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    await asyncio.sleep(0.06)
    assert await store.in_flight() == 0
    assert (await post_order(client, order_body())).status == 202


async def test_a_clients_correlation_id_travels_with_the_order_and_comes_back(
    client, outbox, drive, store
):
    await stock(drive, "SKU-A")
    body = order_body(items=[{"sku": "SKU-A", "quantity": 1}])
    resp = await client.post("/orders", json=body, headers={"X-Correlation-ID": "req-42"})
    assert resp.status == 202 and resp.headers["X-Correlation-ID"] == "req-42"
    [sent] = outbox.on(ORDERS_COMMANDS)
    assert sent.envelope.correlation_id == sent.header("correlation_id") == "req-42"
    # The order id travels on its own.
    assert sent.envelope.order_id == (await resp.json())["order_id"]
    # X-Request-ID is read too; every answer carries the id, errors as well.
    other = await client.get("/orders/ord-missing", headers={"X-Request-ID": "req-43"})
    assert other.status == 404 and other.headers["X-Correlation-ID"] == "req-43"
    made = await client.get("/inventory")
    assert made.headers["X-Correlation-ID"].startswith("cor_")


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "-leading", "naïve"])
async def test_a_malformed_correlation_id_is_a_422_naming_the_header(client, store, bad):
    resp = await client.get("/inventory", headers={"X-Correlation-ID": bad})
    assert resp.status == 422
    body = await resp.json()
    assert body["problems"][0]["field"] == "X-Correlation-ID"
    assert resp.headers["X-Correlation-ID"].startswith("cor_")


async def test_since_is_iso_8601_only_as_documented(client):
    # pydantic alone would read a bare number as epoch seconds (schemathesis found it).
    for since in ("0.5", "1764581400", "yesterday"):
        resp = await client.get(f"/orders?since={since}")
        assert resp.status == 422, since
        assert [p["field"] for p in (await resp.json())["problems"]] == ["since"]
    ok = await client.get("/orders?since=2026-12-01T09:30:00Z")
    assert ok.status == 200


@pytest.fixture
def client_share(desk_settings):
    """Set the web view's per-client share of the orders in flight for one test."""
    return lambda n: desk_settings(max_sagas_in_flight_per_client=n)


async def test_one_client_holds_at_most_its_share_of_the_orders_in_flight(
    client, outbox, drive, store, intake, client_share
):
    await stock(drive, "SKU-A")
    client_share(2)
    first = await post_order(client, order_body())
    assert (await post_order(client, order_body(), key="k-2")).status == 202
    refused = await post_order(client, order_body(), key="k-3")
    assert refused.status == 429 and refused.headers["Retry-After"] == "1"
    answer = await refused.json()
    assert answer["error"] == "client_in_flight" and "2 orders in flight" in answer["message"]
    # The global limit is far: only this client's share refused it
    assert await store.in_flight() == 2
    assert await store.redis.get(IDEMPOTENCY + idempotency_key("order", "cust-1/k-3")) is None
    # A retry (same key) counts once: with room for one more, it takes none of it
    client_share(3)
    assert (await post_order(client, order_body(), key="k-2")).status == 202
    assert (await post_order(client, order_body(), key="k-3")).status == 202
    assert (await post_order(client, order_body(), key="k-4")).status == 429
    client_share(2)
    # With three in flight, one ending leaves it at its share of two...
    order_id = (await first.json())["order_id"]
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(
            order_event("OrderCancelled", 1, "CANCELLED", order_id=order_id),
            key=order_id,
            topic=ORDERS_EVENTS,
        )
    assert (await post_order(client, order_body(), key="k-5")).status == 429
    # ...and once they all ended it may place orders again
    async with drive(webview.project_orders, webview.node) as d:
        for placed in list(await intake.accepted_ids()):
            await d.put(
                order_event("OrderCancelled", 1, "CANCELLED", order_id=placed),
                key=placed,
                topic=ORDERS_EVENTS,
            )
    assert (await post_order(client, order_body(), key="k-5")).status == 202


async def test_another_client_is_admitted_while_one_holds_its_share(
    client, outbox, drive, store, client_share
):
    await stock(drive, "SKU-A")
    client_share(1)
    assert (await post_order(client, order_body())).status == 202
    assert (await post_order(client, order_body())).status == 429
    # Another address (behind no proxy the peer is the client): its own share
    other = ClientShare(store.redis, 1)
    assert await other.admit("ip:192.0.2.7", "ord-x", time.time()) is None
    assert await other.admit("ip:192.0.2.7", "ord-y", time.time()) == 1
    # An order whose view never came stops counting after the age bound
    later = time.time() + MAX_COUNTED_AGE_S + 1
    assert await other.admit("ip:192.0.2.7", "ord-y", later) is None


async def test_an_order_refused_after_admission_holds_no_share(
    client, outbox, drive, store, client_share
):
    await stock(drive, "SKU-A")
    client_share(2)
    assert (await post_order(client, order_body(), key="k-1")).status == 202
    # The same key with another body is refused after the share was taken...
    other = order_body(items=[{"sku": "SKU-A", "quantity": 2}])
    assert (await post_order(client, other, key="k-1")).status == 422
    # ...and gave it back: one more order fits, then the share is full
    assert (await post_order(client, order_body())).status == 202
    assert (await post_order(client, order_body())).status == 429


# ------------------------------------------------------ a broker that does not acknowledge


async def test_an_order_the_broker_does_not_acknowledge_is_202_within_the_bound(
    client, outbox, drive, store, intake, monkeypatch
):
    await stock(drive, "SKU-A")
    desk = webview.desk
    monkeypatch.setattr(
        desk, "settings", desk.settings.model_copy(update={"broker_answer_within_s": 0.3})
    )
    outbox.unacked.add(ORDERS_COMMANDS)
    started = time.monotonic()
    resp = await post_order(client, order_body())
    assert resp.status == 202
    assert time.monotonic() - started < 2.0
    order_id = (await resp.json())["order_id"]
    # Kept for the re-drive, which sends it again until an event of it is projected.
    assert order_id in await intake.unconfirmed_ids()
    assert [m.order_id for m in outbox.messages(ORDERS_COMMANDS)] == [order_id]


async def test_a_cancel_the_broker_does_not_acknowledge_is_503_with_retry_after(
    client, outbox, drive, store, monkeypatch
):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
    desk = webview.desk
    monkeypatch.setattr(
        desk, "settings", desk.settings.model_copy(update={"broker_answer_within_s": 0.3})
    )
    outbox.unacked.add(ORDERS_COMMANDS)
    started = time.monotonic()
    resp = await client.post(f"/orders/{ORDER_ID}/cancel", data=b"{}", headers=JSON)
    assert resp.status == 503
    assert time.monotonic() - started < 2.0
    assert resp.headers["Retry-After"] == "1"
    assert (await resp.json())["error"] == "broker_slow"
    assert outbox.messages(ORDERS_COMMANDS) == [CancelOrder(order_id=ORDER_ID)]
