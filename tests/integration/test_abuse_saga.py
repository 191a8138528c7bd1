"""Issue 19's saga-level attacks, made as a customer would, on running systems.

Each attack is followed by another customer's ordinary order, which must still
complete, and no worker may have restarted. The payment breaker and the replay
attacks run on the shared system of every broker; the admission and SKU attacks
on a system of their own (Tansu, the quicker to start; auth on), whose bounds they lower so a
few dozen requests reach them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from ordersaga.adapters.gateway import GATEWAY_JOURNAL
from ordersaga.config.settings import Settings
from ordersaga.edge.tokens import Role, mint_token
from ordersaga.ops.audit import read_table
from ordersaga.ops.tail import read_topic
from ordersaga.shell.groups import group
from ordersaga.shell.topics import ORDERS_COMMANDS
from ordersaga.tables import SAGAS, SHIPMENTS
from tests.integration.conftest import System, running_system
from tests.integration.support import (
    final,
    history,
    new_sku,
    order_body,
    place,
    register,
    wait_for,
)

pytestmark = pytest.mark.integration


def metric(system: System, group_name: str, prefix: str) -> float:
    """The sum of a worker's samples whose line starts with ``prefix``."""
    port = group(group_name).web_port(system.web_port)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def assert_no_restarts(system: System) -> None:
    status = json.loads((system.data_dir / "supervisor.json").read_text())
    assert [(w["name"], w["restarts"]) for w in status["workers"] if w["restarts"]] == []


# ------------------------------------------------------- finding 1: the breaker


def test_one_customers_failing_card_does_not_open_the_breaker_for_others(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 20, 300)
    # Given one customer whose charges all fail at the gateway, twice the threshold
    for _ in range(6):
        attack = order_body([(sku, 1)], token="tok_gateway_error", customer="cust-mallory")
        order = final(client, place(client, attack))
        assert (order["status"], order["failure_detail"]) == ("FAILED", "gateway_unavailable")
    # Then the circuit stayed closed, and another customer's order is charged
    assert metric(system, "payments", "ordersaga_circuit_state{") == 0
    assert final(client, place(client, order_body([(sku, 1)])))["status"] == "COMPLETED"
    assert_no_restarts(system)


# ---------------------------------------- finding 5: a PlaceOrder seen again


def place_order_records(bootstrap: str, order_id: str) -> list[tuple[bytes, bytes, list]]:
    """Every record of the order's PlaceOrder on the commands topic, as produced."""
    return [
        (r.key, r.value, list(r.headers))
        for r in asyncio.run(read_topic(bootstrap, ORDERS_COMMANDS))
        if r.key == order_id.encode() and dict(r.headers).get("type") == b"PlaceOrder"
    ]


def produce(bootstrap: str, records: list[tuple[bytes, bytes, list]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for key, value, headers in records:
                await producer.send_and_wait(ORDERS_COMMANDS, value, key=key, headers=headers)
        finally:
            await producer.stop()

    asyncio.run(send())


def gateway_calls(system: System, order_id: str) -> int:
    async def read() -> int:
        redis = aioredis.from_url(system.redis_url)
        try:
            return int(await redis.hget(GATEWAY_JOURNAL + order_id, "calls") or 0)
        finally:
            await redis.aclose()

    return asyncio.run(read())


def test_a_place_order_replayed_after_retention_runs_nothing_again(
    system: System, client: httpx.Client
) -> None:
    sku = new_sku(client, 10, 300)
    order_id = place(client, order_body([(sku, 2)], customer="cust-retention"))
    assert final(client, order_id)["status"] == "COMPLETED"
    assert gateway_calls(system, order_id) == 1
    events = history(client, order_id)

    # Given the order was forgotten by the orchestrator (retention 6 s here)
    def forgotten() -> bool:
        return order_id not in asyncio.run(read_table(system.bootstrap, SAGAS))

    wait_for(forgotten, timeout=60, interval=1)
    refused_before = metric(
        system, "orders", 'ordersaga_messages_handled_total{agent="run_sagas",outcome="already_run'
    )
    # When its PlaceOrder is produced again, byte for byte (an offset reset, a copy)
    records = place_order_records(system.bootstrap, order_id)
    assert records, "the order's PlaceOrder is on the commands topic"
    produce(system.bootstrap, records[:1])
    # Then the orchestrator answers it with nothing
    wait_for(
        lambda: (
            metric(
                system,
                "orders",
                'ordersaga_messages_handled_total{agent="run_sagas",outcome="already_run',
            )
            > refused_before
        ),
        timeout=30,
    )
    assert order_id not in asyncio.run(read_table(system.bootstrap, SAGAS))
    assert order_id not in asyncio.run(read_table(system.bootstrap, SHIPMENTS))
    assert gateway_calls(system, order_id) == 1
    assert history(client, order_id) == events
    assert wait_for(lambda: client.get(f"/inventory/{sku}").json()["committed"] == 2)
    # And another customer's order still completes
    assert final(client, place(client, order_body([(sku, 1)])))["status"] == "COMPLETED"
    assert_no_restarts(system)


# --------------------------------------------- a shop with auth on and low bounds

SECRET = "abuse-tests-secret-of-forty-characters!!"
SHARE = 4
# More than one client may have in flight: no one client makes a SKU busy.
MAX_HOLDS = SHARE + 2


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    env = {
        "ORDERSAGA_AUTH_SECRET": SECRET,
        "ORDERSAGA_MAX_SAGAS_IN_FLIGHT_PER_CLIENT": str(SHARE),
        "ORDERSAGA_MAX_HOLDS_PER_SKU": str(MAX_HOLDS),
        # Orders the gateway never answers stay in flight for a while (5, 10, 20 s
        # deadlines), unless cancelled.
        "ORDERSAGA_STEP_TIMEOUT_S": "5",
        # Holds of ended orders and tombstones stay for the length of a test.
        "ORDERSAGA_RETENTION_S": "120",
    }
    with running_system("tansu", tmp_path_factory.mktemp("ordersaga-abuse"), env=env) as up:
        yield up


def bearer(subject: str, role: Role) -> dict[str, str]:
    settings = Settings(auth_secret=SECRET)
    return {"Authorization": f"Bearer {mint_token(settings, subject, [role])}"}


@pytest.fixture(scope="module")
def shop_client(shop: System) -> Iterator[httpx.Client]:
    admin = bearer("ops", Role.ADMIN)
    with httpx.Client(base_url=shop.base_url, timeout=60, headers=admin) as c:
        register(c, "cust-mallory", "cust-alice", "cust-bob")
        yield c


def as_customer(body: dict, customer_id: str) -> dict:
    return {k: v for k, v in body.items() if k != "customer_id"} | {"customer_id": customer_id}


def test_one_customers_slow_orders_never_refuse_another_customers(
    shop: System, shop_client: httpx.Client
) -> None:
    sku = new_sku(shop_client, 100, 200)
    mallory, alice = bearer("cust-mallory", Role.CUSTOMER), bearer("cust-alice", Role.CUSTOMER)
    # Given a customer whose orders never get an answer from the gateway
    slow = as_customer(order_body([(sku, 1)], token="tok_timeout"), "cust-mallory")
    held = [shop_client.post("/orders", json=slow, headers=mallory) for _ in range(SHARE)]
    assert [r.status_code for r in held] == [202] * SHARE
    # When it places more while they are in flight, it is refused, naming its share
    refused = shop_client.post("/orders", json=slow, headers=mallory)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "client_in_flight"
    assert refused.headers["Retry-After"]
    # Then another customer's ordinary order is accepted and completes
    ordinary = as_customer(order_body([(sku, 1)]), "cust-alice")
    accepted = shop_client.post("/orders", json=ordinary, headers=alice)
    assert accepted.status_code == 202, accepted.text
    assert final(shop_client, accepted.json()["order_id"])["status"] == "COMPLETED"
    # And once its slow ones ended (cancelled here) the first customer may order again
    for r in held:
        order_id = r.json()["order_id"]
        shop_client.post(f"/orders/{order_id}/cancel", json={}, headers=mallory)
        assert final(shop_client, order_id)["status"] in {"CANCELLED", "FAILED"}
    again = shop_client.post("/orders", json=slow, headers=mallory)
    assert again.status_code == 202, again.text
    shop_client.post(f"/orders/{again.json()['order_id']}/cancel", json={}, headers=mallory)
    assert_no_restarts(shop)


def wait_status(client: httpx.Client, order_id: str, statuses: set[str]) -> None:
    wait_for(lambda: client.get(f"/orders/{order_id}").json()["status"] in statuses, timeout=30)


def test_refused_or_cancelled_reservations_never_lock_a_sku(
    shop: System, shop_client: httpx.Client
) -> None:
    sku = new_sku(shop_client, 5, 200)
    mallory, alice = bearer("cust-mallory", Role.CUSTOMER), bearer("cust-alice", Role.CUSTOMER)
    # Given one customer's orders, three times the SKU's bound, all refused out of stock
    greedy = as_customer(order_body([(sku, 6)]), "cust-mallory")
    for _ in range(3 * MAX_HOLDS):
        r = shop_client.post("/orders", json=greedy, headers=mallory)
        assert r.status_code == 202, r.text
        assert final(shop_client, r.json()["order_id"])["failure_reason"] == "out_of_stock"
    # And as many again that reserved a unit and were cancelled, a share at a time
    slow = as_customer(order_body([(sku, 1)], token="tok_timeout"), "cust-mallory")
    for _ in range(3):
        placed = [
            shop_client.post("/orders", json=slow, headers=mallory).json()["order_id"]
            for _ in range(SHARE)
        ]
        for order_id in placed:
            wait_status(shop_client, order_id, {"STOCK_RESERVED"})
            cancel = shop_client.post(f"/orders/{order_id}/cancel", json={}, headers=mallory)
            assert cancel.status_code == 202, cancel.text
        for order_id in placed:
            assert final(shop_client, order_id)["status"] == "CANCELLED"
    # Then another customer's order for 1 unit on the shelf is served
    ordinary = as_customer(order_body([(sku, 1)]), "cust-alice")
    r = shop_client.post("/orders", json=ordinary, headers=alice)
    assert final(shop_client, r.json()["order_id"])["status"] == "COMPLETED"
    assert_no_restarts(shop)


def test_a_sku_held_by_as_many_orders_as_its_bound_answers_sku_busy(
    shop: System, shop_client: httpx.Client
) -> None:
    hot = new_sku(shop_client, 100, 100)
    bob, alice = bearer("cust-bob", Role.CUSTOMER), bearer("cust-alice", Role.CUSTOMER)
    mallory = bearer("cust-mallory", Role.CUSTOMER)
    # Given as many orders as the SKU's bound (of two customers) holding it now
    held = []
    for customer, token, count in (("cust-bob", bob, SHARE), ("cust-mallory", mallory, 2)):
        slow = as_customer(order_body([(hot, 1)], token="tok_timeout"), customer)
        for _ in range(count):
            r = shop_client.post("/orders", json=slow, headers=token)
            assert r.status_code == 202, r.text
            held.append((r.json()["order_id"], token))
    assert len(held) == MAX_HOLDS
    for order_id, _ in held:
        wait_status(shop_client, order_id, {"STOCK_RESERVED"})
    # When another order asks for it, it fails for that reason, not out of stock
    one = as_customer(order_body([(hot, 1)]), "cust-alice")
    order = final(
        shop_client, shop_client.post("/orders", json=one, headers=alice).json()["order_id"]
    )
    assert (order["status"], order["failure_reason"]) == ("FAILED", "sku_busy")
    # And once they ended the SKU serves again
    for order_id, token in held:
        shop_client.post(f"/orders/{order_id}/cancel", json={}, headers=token)
        assert final(shop_client, order_id)["status"] == "CANCELLED"
    order = final(
        shop_client, shop_client.post("/orders", json=one, headers=alice).json()["order_id"]
    )
    assert order["status"] == "COMPLETED"
    assert_no_restarts(shop)
