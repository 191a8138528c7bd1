"""The web view's edge (issue 19, findings 7, 8 and 10): who a client is, what its reads
cost, which names it answers to, what every answer says of itself, and who may still in.

Against the webview's real routes on the session's real valkey-server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from multidict import CIMultiDict

from ordersaga.agents import webview
from ordersaga.config.settings import Settings
from ordersaga.edge.tokens import Role, mint_token
from ordersaga.observability.metrics import Metrics
from ordersaga.shell.topics import ORDERS_EVENTS
from ordersaga.web.auth import Gatekeeper, peer_address
from ordersaga.web.edge import check_host, host_name
from ordersaga.web.rate_limit import READ_PREFIX, RateLimiter
from ordersaga.web.read_model import ViewStore
from ordersaga.web.routes import desk_blocked
from tests.harness import JSON, ORDER_ID, Outbox, order_event, webview_routes
from tests.web.test_auth import OWNER, SETTINGS, account, bearer, secured, token
from tests.web.test_rate_limit import _Peer

__all__ = ["secured"]


def assert_error_shape(payload: dict[str, Any], error: str) -> None:
    assert payload["error"] == error
    assert set(payload) >= {"error", "message", "problems"}


# ------------------------------------------------------- finding 7: X-Forwarded-For lines


def test_x_forwarded_for_is_read_across_every_header_line_from_the_right():
    # The client writes the first line; the trusted proxy appends its own line.
    headers = CIMultiDict([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "1.2.3.4")])
    request = make_mocked_request("GET", "/orders", headers=headers, transport=_Peer("10.0.0.9"))
    assert peer_address(request, frozenset({"10.0.0.9"})) == "1.2.3.4"
    headers = CIMultiDict(
        [("X-Forwarded-For", "6.6.6.6, 7.7.7.7"), ("X-Forwarded-For", "1.2.3.4, 10.0.0.8")]
    )
    request = make_mocked_request("GET", "/orders", headers=headers, transport=_Peer("10.0.0.9"))
    assert peer_address(request, frozenset({"10.0.0.9", "10.0.0.8"})) == "1.2.3.4"


async def test_a_client_writing_its_own_first_line_still_draws_on_its_one_bucket(
    store: ViewStore, outbox: Outbox
):
    settings = Settings(rate_limit_per_s=0.01, rate_limit_burst=1, trusted_proxies="127.0.0.1")
    limiter = RateLimiter(store.redis, settings.rate_limit_per_s, settings.rate_limit_burst)
    async with TestClient(TestServer(webview_routes(Gatekeeper(settings, lambda: limiter)))) as c:

        async def post(chosen: str) -> int:
            headers = CIMultiDict([*JSON.items(), ("X-Forwarded-For", chosen)])
            headers.add("X-Forwarded-For", "1.2.3.4")  # what the proxy saw
            return (await c.post("/orders", data=b"{}", headers=headers)).status

        assert [await post("9.9.9.1"), await post("9.9.9.2"), await post("9.9.9.3")] == [
            422,
            429,
            429,
        ]


# ------------------------------------------------------------- finding 8: the GET budget


@pytest.fixture
async def reads(store: ViewStore, outbox: Outbox) -> Any:
    """The routes with a read budget of 3 GETs a client (no refill to speak of), auth off."""
    settings = Settings(read_rate_limit_per_s=0.01, read_rate_limit_burst=3)
    app = webview_routes(Gatekeeper(settings, lambda: webview.desk.rate_limiter))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_past_the_read_budget_a_get_is_429_naming_the_read_limit(reads, store):
    answers = [await reads.get("/inventory") for _ in range(4)]
    assert [r.status for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    refused = answers[3]
    payload = await refused.json()
    assert_error_shape(payload, "rate_limited")
    assert payload["message"].startswith("reads (GET)")
    assert payload["problems"][0]["field"] == "rate_limit"
    assert int(refused.headers["Retry-After"]) >= 1
    # Every GET of the API shares the one budget, a long-poll and a listing alike.
    assert (await reads.get("/orders")).status == 429
    assert (await reads.get(f"/orders/{ORDER_ID}?wait=1")).status == 429
    # The bucket is the reads' own: the POST budget is untouched.
    assert await store.redis.exists(READ_PREFIX + "ip:127.0.0.1")


async def test_the_probes_docs_and_page_are_not_counted(reads):
    for _ in range(3):
        assert (await reads.get("/inventory")).status == 200
    for path in ("/health", "/metrics", "/openapi.json", "/docs", "/dashboard"):
        for _ in range(2):
            assert (await reads.get(path)).status != 429, path


async def test_reads_do_not_spend_what_a_client_may_write(store: ViewStore, outbox: Outbox):
    settings = Settings(read_rate_limit_per_s=0.01, read_rate_limit_burst=1, rate_limit_per_s=0.01)
    limiter = RateLimiter(store.redis, settings.rate_limit_per_s, settings.rate_limit_burst)
    async with TestClient(TestServer(webview_routes(Gatekeeper(settings, lambda: limiter)))) as c:
        assert [(await c.get("/inventory")).status for _ in range(2)] == [200, 429]
        assert (await c.post("/orders", data=b"{}", headers=JSON)).status == 422


async def test_a_read_budget_of_0_is_off(store: ViewStore, outbox: Outbox):
    settings = Settings(read_rate_limit_per_s=0)
    app = webview_routes(Gatekeeper(settings, lambda: webview.desk.rate_limiter))
    async with TestClient(TestServer(app)) as c:
        statuses = {(await c.get("/inventory")).status for _ in range(150)}
    assert statuses == {200}


# ------------------------------------------------------- finding 10: the Host allow-list


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:6066", "localhost"),
        ("LOCALHOST.", "localhost"),
        ("[::1]:6066", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("shop.example.com:443", "shop.example.com"),
    ],
)
def test_a_host_header_names_its_host_without_the_port(header, name):
    assert host_name(header) == name


def test_the_allowed_hosts_are_the_local_names_the_web_host_and_the_setting():
    assert Settings().allowed_host_names == {"localhost", "127.0.0.1", "::1"}
    named = Settings(web_host="10.0.0.5", allowed_hosts="Shop.Example.com, api.example.com")
    assert named.allowed_host_names == {
        "localhost",
        "127.0.0.1",
        "::1",
        "10.0.0.5",
        "shop.example.com",
        "api.example.com",
    }
    assert Settings(web_host="0.0.0.0").allowed_host_names == {"localhost", "127.0.0.1", "::1"}
    assert Settings(allowed_hosts="*").allowed_host_names is None
    check_host("evil.example", None)  # `*`: any name


async def test_a_request_to_another_name_is_421_in_the_json_shape(client: TestClient):
    # A page at evil.example re-pointed at 127.0.0.1 (DNS rebinding) sends its own name.
    for path in ("/orders", "/inventory", "/docs", "/no-such-route"):
        refused = await client.get(path, headers={"Host": "evil.example:6066"})
        assert refused.status == 421, path
        assert_error_shape(await refused.json(), "misdirected_request")
        assert (await refused.json())["problems"][0]["field"] == "Host"
    posted = await client.post("/orders", data=b"{}", headers={**JSON, "Host": "evil.example"})
    assert posted.status == 421
    assert (await client.get("/inventory", headers={"Host": "localhost:6066"})).status == 200
    # The probes answer to any name: load balancers call them by the pod's.
    assert (await client.get("/health", headers={"Host": "10.1.2.3:6066"})).status != 421


async def test_an_allowed_name_and_star_are_let_through(store: ViewStore, outbox: Outbox):
    for settings in (Settings(allowed_hosts="shop.example.com"), Settings(allowed_hosts="*")):
        app = webview_routes(Gatekeeper(settings, lambda: webview.desk.rate_limiter))
        async with TestClient(TestServer(app)) as c:
            r = await c.get("/inventory", headers={"Host": "shop.example.com"})
            assert r.status == 200


# ------------------------------------------------- finding 10: what every answer says


async def test_every_answer_is_no_store_nosniff_and_names_no_server_version(
    client: TestClient, drive: Any
):
    answers = [
        await client.get("/inventory"),
        await client.get("/orders/nope"),
        await client.get("/no-such-route"),
        await client.delete("/inventory"),
        await client.post("/orders", data=b"x", headers={"Content-Type": "text/plain"}),
        await client.get("/dashboard"),
        await client.get("/openapi.json"),
        await client.get("/health"),
    ]
    for r in answers:
        assert r.headers["Cache-Control"] == "no-store", (r.url, r.status)
        assert r.headers["X-Content-Type-Options"] == "nosniff", (r.url, r.status)
        assert r.headers["Server"] == "ordersaga", (r.url, r.headers["Server"])


async def test_a_protocol_error_answer_names_no_server_version_either(client: TestClient):
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /inventory HTTP/1.1\r\nHost: 127.0.0.1\r\nBad\x01Header: x\r\n\r\n")
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
    writer.close()
    assert head.split()[1] == "400"
    assert "Server: ordersaga\r\n" in head and "aiohttp" not in head.lower()
    assert "Cache-Control: no-store" in head


# ------------------------------------------------------------- finding 10: small items


async def test_an_orders_history_key_read_as_an_order_is_404_not_503(client, outbox, drive):
    async with drive(webview.project_orders, webview.node) as d:
        await d.put(order_event("OrderPlaced", 1, "PENDING"), key=ORDER_ID, topic=ORDERS_EVENTS)
    for path in (f"/orders/{ORDER_ID}:events", f"/orders/{ORDER_ID}:events/events"):
        r = await client.get(path)
        assert r.status == 404, (path, await r.text())
        assert_error_shape(await r.json(), "not_found")
    assert (await client.get(f"/orders/{ORDER_ID}")).status == 200


async def test_health_answers_fixed_words_never_the_exceptions_text(client: TestClient):
    node = webview.node
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    saved = dict(node.health.checks)
    node.health.checks["redis"] = dead.ping
    node.health.forget()
    try:
        r = await client.get("/health")
        text = await r.text()
        assert r.status == 503
        assert orjson.loads(text)["checks"]["redis"] == "down"
        assert "127.0.0.1" not in text and "Error" not in text and "Connect" not in text
    finally:
        node.health.checks.clear()
        node.health.checks.update(saved)
        node.health.forget()
        await dead.aclose()


async def test_the_api_ports_metrics_carry_no_circuit_breaker(client: TestClient):
    text = await (await client.get("/metrics")).text()
    assert "ordersaga_long_polls" in text
    assert "ordersaga_circuit" not in text
    payments = Metrics()
    payments.circuit_state.labels("gateway").set(2)
    assert b"ordersaga_circuit_state{" in payments.render()


@pytest.mark.parametrize("action", ["block", "unblock"])
async def test_block_and_unblock_refuse_a_body_not_declared_json(secured, action):
    admin = bearer(token("ops", Role.ADMIN))
    for kind, data in (
        ("application/x-www-form-urlencoded", b"a=1"),
        ("text/plain", b"x"),
        ("multipart/form-data; boundary=x", b"--x--"),
    ):
        r = await secured.post(
            f"/customers/{OWNER}/{action}", data=data, headers={**admin, "Content-Type": kind}
        )
        assert r.status == 415, kind
        assert_error_shape(await r.json(), "unsupported_media_type")
    # Without a body at all, and without a Content-Type: refused too.
    r = await secured.post(f"/customers/{OWNER}/{action}", headers=admin)
    assert r.status == 415


async def test_a_blocked_customers_token_is_refused_and_works_again_once_unblocked(
    store: ViewStore, outbox: Outbox
):
    app = webview_routes(
        Gatekeeper(SETTINGS, lambda: webview.desk.rate_limiter, desk_blocked(webview.desk))
    )
    await webview.desk.customers.project(OWNER, 1, account(OWNER))
    mine = bearer(token(OWNER))
    admin = bearer(token("ops", Role.ADMIN))
    async with TestClient(TestServer(app)) as c:
        assert (await c.get(f"/customers/{OWNER}", headers=mine)).status == 200
        await webview.desk.customers.project(OWNER, 2, {**account(OWNER), "blocked": True})
        await asyncio.sleep(1.1)  # what a worker read of the flag is trusted a second
        for method, path in (("GET", f"/customers/{OWNER}"), ("GET", "/orders")):
            r = await c.request(method, path, headers=mine)
            assert r.status == 403, path
            payload = await r.json()
            assert_error_shape(payload, "forbidden")
            assert "blocked" in payload["message"]
        posted = await c.post("/orders", data=b"{}", headers={**JSON, **mine})
        assert posted.status == 403
        # An admin still reads the account; another customer is not affected.
        assert (await c.get(f"/customers/{OWNER}", headers=admin)).status == 200
        other = bearer(mint_token(SETTINGS, "cust-free", [Role.CUSTOMER]))
        assert (await c.get("/orders", headers=other)).status == 200
        await webview.desk.customers.project(OWNER, 3, {**account(OWNER), "version": 3})
        await asyncio.sleep(1.1)
        assert (await c.get(f"/customers/{OWNER}", headers=mine)).status == 200
