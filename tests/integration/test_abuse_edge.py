"""Issue 19 at the HTTP edge, attacked as a client would, on the running system.

Findings 6-10: bodies framed to slip past the limit, X-Forwarded-For lines a
client writes itself, GETs without a budget, listings whose cost has no bound,
storage without a bound, and the smaller leaks. Each attack ends as the issue
asks: another customer's ordinary order still completes, and no worker exited
or restarted. The main system (``system``, both brokers) runs with auth and
limits off, as `make run` does; the limits are attacked on a system of their own
(Tansu, behind a trusted proxy: every test client is 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ordersaga.shell.topics import ALL_DLQ_TOPICS, ALL_TOPICS
from tests.integration.conftest import System, running_system
from tests.integration.support import final, new_sku, order_body, place, register
from tests.raw_http import chunk, post_head

pytestmark = pytest.mark.integration

ATTACKER, OTHER = "cust-edge-attacker", "cust-edge-other"
LIMIT = 64 * 1024  # ORDERSAGA_MAX_BODY_BYTES, default


@pytest.fixture(scope="module")
def customers(client: httpx.Client) -> None:
    register(client, ATTACKER, OTHER)


def restarts(system: System) -> list[tuple[str, int, int]]:
    """Workers that exited or restarted so far (the supervisor's own account)."""
    status = json.loads((system.data_dir / "supervisor.json").read_text())
    return [
        (w["name"], w["restarts"], w["exits"])
        for w in status["workers"]
        if w["restarts"] or w["exits"]
    ]


def others_still_served(system: System, client: httpx.Client) -> None:
    """The end of every attack: another customer's order completes, no worker restarted."""
    sku = new_sku(client, 5, 300)
    order = final(client, place(client, order_body([(sku, 1)], customer=OTHER)))
    assert order["status"] == "COMPLETED", order
    assert restarts(system) == []
    assert not [line for line in system.output if "exited with" in line]


def raw_exchange(
    system: System, parts: list[bytes], pause_s: float = 0.0, timeout_s: float = 30.0
) -> tuple[int, dict[str, str], bytes]:
    """Write ``parts`` as separate TCP writes to the web view; its status, headers, body."""
    with socket.create_connection(("127.0.0.1", system.web_port), timeout=timeout_s) as sock:
        for i, part in enumerate(parts):
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # answered and closed before the rest: read the answer
            if pause_s and i < len(parts) - 1:
                time.sleep(pause_s)
        data = b""
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            assert got, f"closed without an answer: {data!r}"
            data += got
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        while len(body) < int(headers["content-length"]):
            got = sock.recv(65536)
            if not got:
                break
            body += got
        return int(lines[0].split()[1]), headers, body


# ------------------------------------------------------------- finding 6: the body limit


def test_a_chunked_order_with_300_kb_after_its_first_chunk_is_413_and_nothing_is_placed(
    system: System, client: httpx.Client, customers: None
) -> None:
    sku = new_sku(client, 5, 100)
    valid = json.dumps(order_body([(sku, 1)], customer=ATTACKER)).encode()
    parts = [post_head({"Transfer-Encoding": "chunked"}) + chunk(valid)]
    parts += [chunk(b" " * 30_000) for _ in range(10)] + [b"0\r\n\r\n"]
    status, _, body = raw_exchange(system, parts, pause_s=0.05)
    assert status == 413, body
    assert json.loads(body)["error"] == "body_too_large"
    mine = client.get("/orders", params={"customer_id": ATTACKER}).json()["orders"]
    assert [o for o in mine if o["items"][0]["sku"] == sku] == []
    assert client.get(f"/inventory/{sku}").json()["reserved"] == 0
    others_still_served(system, client)


def test_a_valid_30_kb_order_in_two_tcp_writes_is_placed_and_completes(
    system: System, client: httpx.Client, customers: None
) -> None:
    sku = new_sku(client, 5, 100)
    compact = json.dumps(order_body([(sku, 1)], customer=ATTACKER)).encode()
    valid = b"{" + b" " * 30_000 + compact[1:]  # the first write alone is no JSON
    head = post_head({"Content-Length": str(len(valid))})
    status, _, body = raw_exchange(system, [head + valid[:12_000], valid[12_000:]], 0.5)
    assert status == 202, body
    assert final(client, json.loads(body)["order_id"])["status"] == "COMPLETED"
    others_still_served(system, client)


def test_lying_content_lengths_are_refused_without_holding_the_request(
    system: System, client: httpx.Client, customers: None
) -> None:
    valid = json.dumps(order_body([("sku-none", 1)], customer=ATTACKER)).encode()
    # Over the limit: refused before a byte of the body is read.
    status, _, body = raw_exchange(system, [post_head({"Content-Length": str(LIMIT + 1)})])
    assert status == 413 and json.loads(body)["error"] == "body_too_large"
    # Promising more than it sends: cut off after the body timeout (10 s), not held.
    started = time.monotonic()
    head = post_head({"Content-Length": str(len(valid) + 500)})
    status, _, body = raw_exchange(system, [head + valid])
    assert status == 408 and json.loads(body)["error"] == "body_timeout"
    assert time.monotonic() - started < 20
    # Less than it sends: only the declared bytes are the body (no JSON), the rest no request.
    status, _, body = raw_exchange(system, [post_head({"Content-Length": "20"}) + valid])
    assert status == 400, body
    others_still_served(system, client)


# ---------------------------------------------------------- finding 10: the small items


def test_rebinding_a_name_to_127_0_0_1_does_not_reach_the_api(
    system: System, client: httpx.Client, customers: None
) -> None:
    for method, path in (("GET", "/orders"), ("POST", "/inventory/sku-x/restock")):
        r = client.request(
            method, path, headers={"Host": "attacker.example:80"}, json={"quantity": 1}
        )
        assert r.status_code == 421, r.text
        assert r.json()["error"] == "misdirected_request"
        assert r.json()["problems"][0]["field"] == "Host"
    assert client.get("/orders", headers={"Host": f"localhost:{system.web_port}"}).is_success
    others_still_served(system, client)


def test_the_small_leaks_are_closed(system: System, client: httpx.Client, customers: None) -> None:
    sku = new_sku(client, 5, 100)
    order_id = place(client, order_body([(sku, 1)], customer=ATTACKER))
    final(client, order_id)
    # Reading an order's history key as an order: 404, not a WRONGTYPE 503.
    for path in (f"/orders/{order_id}:events", f"/orders/{order_id}:events/events"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    # Every answer: not cached, not sniffed, no server version.
    for r in (client.get("/inventory"), client.get("/nowhere"), client.get("/health")):
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["server"] == "ordersaga"
    # /health answers fixed words, and the API port's /metrics has no breaker.
    health = client.get("/health").json()
    assert set(health["checks"].values()) <= {"ok", "down", "timeout"}
    assert "ordersaga_circuit" not in client.get("/metrics").text
    # Block and unblock take the JSON type only, like every other POST.
    for action in ("block", "unblock"):
        r = client.post(
            f"/customers/{ATTACKER}/{action}",
            content=b"blocked=true",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    assert client.get(f"/customers/{ATTACKER}").json()["blocked"] is False
    others_still_served(system, client)


# ------------------------------------------------ finding 8: listings bounded per call


def test_a_sparse_status_listing_answers_a_bounded_page_with_a_cursor(
    system: System, client: httpx.Client, customers: None
) -> None:
    # Hardly any order is ever COMPENSATION_STUCK: each page looks at its budget of
    # orders and says where to go on; walking every cursor ends.
    cursor, pages, started = None, 0, time.monotonic()
    while True:
        params = {"status": "COMPENSATION_STUCK", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/orders", params=params)
        assert r.status_code == 200, r.text
        pages += 1
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert pages < 1_000
    assert time.monotonic() - started < 60
    levels = client.get("/inventory", params={"limit": 2}).json()
    assert len(levels["items"]) == 2 and levels["next_cursor"] == levels["items"][-1]["sku"]
    others_still_served(system, client)


# ----------------------------------------------------------- finding 9: bounded storage


def test_every_topic_and_the_redis_are_bounded(system: System, client: httpx.Client) -> None:
    async def configs() -> dict[str, dict[str, str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=system.bootstrap)
        await admin.start()
        try:
            wanted = [*ALL_TOPICS, *ALL_DLQ_TOPICS]
            found = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t) for t in wanted]
            )
        finally:
            await admin.close()
        out: dict[str, dict[str, str]] = {}
        for response in found:
            for resource in response.resources:
                out[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
        return out

    if system.broker == "kafka":  # Tansu answers no DescribeConfigs
        described = asyncio.run(configs())
        for topic in (*ALL_TOPICS, *ALL_DLQ_TOPICS):
            if described[topic].get("cleanup.policy") == "compact":
                continue  # the registry's: bounded by its keys, as the changelogs are
            assert int(described[topic]["retention.bytes"]) == 256 * 1024 * 1024, topic
            assert int(described[topic]["retention.ms"]) == 7 * 24 * 3600 * 1000, topic
    store = redis.Redis.from_url(system.redis_url, decode_responses=True)
    try:
        config = store.config_get("maxmemory*")
        assert config["maxmemory-policy"] == "noeviction"
        assert int(config["maxmemory"]) == 512 * 1024 * 1024
    finally:
        store.close()


# ----------------------------------- findings 7 and 8: the limits, behind a trusted proxy

RATE, BURST, READ_RATE, READ_BURST = 0.2, 6, 0.5, 20


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    env = {
        "ORDERSAGA_TRUSTED_PROXIES": "127.0.0.1",
        "ORDERSAGA_RATE_LIMIT_PER_S": str(RATE),
        "ORDERSAGA_RATE_LIMIT_BURST": str(BURST),
        "ORDERSAGA_READ_RATE_LIMIT_PER_S": str(READ_RATE),
        "ORDERSAGA_READ_RATE_LIMIT_BURST": str(READ_BURST),
    }
    with running_system("tansu", tmp_path_factory.mktemp("ordersaga-edge"), env=env) as started:
        yield started


def behind_proxy(system: System, client_address: str) -> httpx.Client:
    """A client as the trusted proxy (127.0.0.1) forwards it."""
    return httpx.Client(
        base_url=system.base_url, timeout=60, headers={"X-Forwarded-For": client_address}
    )


def limited_others_still_served(system: System) -> None:
    with behind_proxy(system, f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}") as c:
        register(c, OTHER)
        sku = new_sku(c, 5, 300)  # a restock and a read: within any fresh budget
        order = final(c, place(c, order_body([(sku, 1)], customer=OTHER)))
        assert order["status"] == "COMPLETED", order
    assert restarts(system) == []


def test_a_client_writing_its_own_x_forwarded_for_line_keeps_its_one_bucket(
    limited: System,
) -> None:
    with httpx.Client(base_url=limited.base_url, timeout=30) as attacker:
        statuses = []
        for i in range(BURST + 4):
            # The client's own line first, the proxy's appended line last.
            headers = [
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", f"203.0.113.{i}"),
                ("X-Forwarded-For", "198.51.100.7"),
            ]
            r = attacker.post("/orders", content=b"{}", headers=headers)
            statuses.append(r.status_code)
        assert statuses[:BURST] == [422] * BURST
        assert statuses[BURST:] == [429] * 4
        refused = attacker.post(
            "/orders",
            content=b"{}",
            headers=[("Content-Type", "application/json"), ("X-Forwarded-For", "198.51.100.7")],
        )
        assert refused.status_code == 429
    limited_others_still_served(limited)


def test_a_client_flooding_gets_is_refused_past_its_read_budget_and_others_read_on(
    limited: System,
) -> None:
    said = [line for line in limited.output[:5] if line.startswith("limits")]
    assert said and f"GETs {READ_RATE:g}/s, bursts of {READ_BURST}" in said[0], said
    with behind_proxy(limited, "198.51.100.99") as flooder:
        statuses = [flooder.get("/inventory").status_code for _ in range(READ_BURST + 10)]
        assert statuses[:READ_BURST] == [200] * READ_BURST
        assert set(statuses[READ_BURST:]) == {429}
        refused = flooder.get("/orders", params={"status": "PENDING"})
        assert refused.status_code == 429
        body = refused.json()
        assert body["error"] == "rate_limited" and body["message"].startswith("reads (GET)")
        assert int(refused.headers["Retry-After"]) >= 1
        # Its POST budget is its own: reading did not spend it.
        assert flooder.post("/orders", json={}).status_code == 422
        # The probes are not counted against it.
        assert flooder.get("/health").status_code == 200
    limited_others_still_served(limited)
