"""Per-client rate limits: one token bucket in Redis, whichever worker takes the request.

Against the session's real valkey-server. The limit across two real web view
worker processes is tested in tests/integration/test_auth_and_limits.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from ordersaga.agents import webview
from ordersaga.config.settings import Settings
from ordersaga.edge.tokens import Role, mint_token
from ordersaga.web.auth import Gatekeeper, peer_address
from ordersaga.web.rate_limit import PREFIX, RateLimiter
from ordersaga.web.read_model import ViewStore
from tests.harness import JSON, Outbox, webview_routes


async def test_the_bucket_gives_its_burst_then_refuses_until_it_refills(store: ViewStore):
    limiter = RateLimiter(store.redis, rate=10, burst=5)
    verdicts = [await limiter.take("ip:10.0.0.1") for _ in range(7)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
    assert 0 < verdicts[-1].retry_after_s <= 0.1 + 1e-6
    await asyncio.sleep(0.25)  # 2.5 tokens back
    assert (await limiter.take("ip:10.0.0.1")).allowed
    assert (await limiter.take("ip:10.0.0.2")).allowed  # another client, another bucket


async def test_two_limiters_on_two_connections_share_one_bucket(store: ViewStore, valkey_port):
    # As two web view workers would: each its own Redis client, one bucket between them.
    other = aioredis.Redis.from_url(f"redis://127.0.0.1:{valkey_port}/0")
    try:
        first = RateLimiter(store.redis, rate=0.5, burst=10)
        second = RateLimiter(other, rate=0.5, burst=10)
        takes = [(first if i % 2 else second).take("sub:cust-1") for i in range(40)]
        verdicts = await asyncio.gather(*takes)
        assert sum(v.allowed for v in verdicts) == 10
    finally:
        await other.aclose()


async def test_an_idle_bucket_expires_once_it_would_be_full(store: ViewStore):
    limiter = RateLimiter(store.redis, rate=100, burst=2)
    await limiter.take("ip:10.0.0.9")
    ttl_ms = await store.redis.pttl(PREFIX + "ip:10.0.0.9")
    assert 0 < ttl_ms <= math.ceil(1 / 100 * 1000) + 1000


@pytest.fixture
async def limited(store: ViewStore, outbox: Outbox) -> AsyncIterator[TestClient]:
    """The webview's routes with auth on and a burst of 3 a client (no refill to speak of)."""
    settings = Settings(auth_secret="s" * 32, rate_limit_per_s=0.01, rate_limit_burst=3)
    limiter = RateLimiter(store.redis, settings.rate_limit_per_s, settings.rate_limit_burst)
    app = webview_routes(Gatekeeper(settings, lambda: limiter))
    for customer_id, name in (("cust-1", "A"), ("cust-2", "B")):
        account = {
            "customer_id": customer_id,
            "name": name,
            "email": f"{name.lower()}@example.com",
            "blocked": False,
            "version": 1,
            "registered_at": "2026-12-01T00:00:00+00:00",
        }
        await webview.desk.customers.project(customer_id, 1, account)
    async with TestClient(TestServer(app)) as c:
        c.settings = settings  # type: ignore[attr-defined]
        yield c


def bearer(settings: Settings, subject: str) -> dict[str, str]:
    token = mint_token(settings, subject, [Role.CUSTOMER])
    return {**JSON, "Authorization": f"Bearer {token}"}


async def test_past_the_burst_a_post_is_429_with_retry_after_and_ratelimit_headers(limited):
    headers = bearer(limited.settings, "cust-1")
    body = orjson.dumps({"customer_id": "cust-1", "name": "A", "email": "a@example.com"})
    answers = [await limited.post("/customers", data=body, headers=headers) for _ in range(4)]
    assert [r.status for r in answers[:3]] == [200, 200, 200]
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    refused = answers[3]
    assert refused.status == 429
    payload = await refused.json()
    assert payload["error"] == "rate_limited" and set(payload) >= {"message", "problems"}
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Policy"].startswith("3;w=")
    # Another subject has a bucket of its own; reads are not limited.
    other = await limited.post(
        "/customers",
        data=orjson.dumps({"customer_id": "cust-2", "name": "B", "email": "b@example.com"}),
        headers=bearer(limited.settings, "cust-2"),
    )
    assert other.status == 200
    assert (await limited.get("/inventory", headers=headers)).status != 429


async def test_bad_tokens_are_limited_by_address_before_they_are_judged(limited):
    bad = {**JSON, "Authorization": "Bearer not-a-token"}
    statuses = [(await limited.post("/orders", data=b"{}", headers=bad)).status for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


async def test_with_redis_down_a_post_is_503_in_the_json_shape(store: ViewStore, outbox: Outbox):
    settings = Settings(rate_limit_per_s=5, rate_limit_burst=5)
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RateLimiter(dead, settings.rate_limit_per_s, settings.rate_limit_burst)
    app = webview_routes(Gatekeeper(settings, lambda: limiter))
    try:
        async with TestClient(TestServer(app)) as c:
            r = await c.post("/orders", data=b"{}", headers=JSON)
            assert r.status == 503 and r.headers["Retry-After"] == "1"
            assert (await r.json())["error"] == "dependency_down"
    finally:
        await dead.aclose()


def _forwarded(remote: str, forwarded: str | None) -> web.Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return make_mocked_request("POST", "/orders", headers=headers, transport=_Peer(remote))


class _Peer:
    """What aiohttp reads the peer's address from."""

    def __init__(self, host: str) -> None:
        self.host = host

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.host, 40000) if name == "peername" else default


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "client"),
    [
        ("10.0.0.7", None, set(), "10.0.0.7"),
        # Not from a trusted proxy: what it forwards is the client's own writing.
        ("10.0.0.7", "1.2.3.4", set(), "10.0.0.7"),
        ("10.0.0.7", "1.2.3.4", {"10.0.0.9"}, "10.0.0.7"),
        # From a trusted proxy: the rightmost address no trusted proxy holds.
        ("10.0.0.9", "1.2.3.4", {"10.0.0.9"}, "1.2.3.4"),
        ("10.0.0.9", "6.6.6.6, 1.2.3.4", {"10.0.0.9"}, "1.2.3.4"),
        ("10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.8", {"10.0.0.9", "10.0.0.8"}, "1.2.3.4"),
        # A malformed entry stops the walk: nothing further left is believed.
        ("10.0.0.9", "1.2.3.4, not-an-ip", {"10.0.0.9"}, "10.0.0.9"),
        ("10.0.0.9", "", {"10.0.0.9"}, "10.0.0.9"),
        ("10.0.0.9", "::FFFF:1.2.3.4", {"10.0.0.9"}, "::ffff:102:304"),
    ],
)
def test_the_client_address_believes_x_forwarded_for_only_from_trusted_proxies(
    remote, forwarded, trusted, client
):
    assert peer_address(_forwarded(remote, forwarded), frozenset(trusted)) == client


def test_trusted_proxies_must_be_addresses():
    assert Settings(trusted_proxies=" 10.0.0.9, ::1 ").trusted_proxy_addresses == [
        "10.0.0.9",
        "::1",
    ]
    with pytest.raises(ValueError, match="ORDERSAGA_TRUSTED_PROXIES"):
        Settings(trusted_proxies="proxy.internal")


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_bucket(store, outbox):
    settings = Settings(rate_limit_per_s=0.01, rate_limit_burst=1, trusted_proxies="127.0.0.1")
    limiter = RateLimiter(store.redis, settings.rate_limit_per_s, settings.rate_limit_burst)
    app = webview_routes(Gatekeeper(settings, lambda: limiter))
    async with TestClient(TestServer(app)) as c:

        async def post(forwarded: str) -> int:
            headers = {**JSON, "X-Forwarded-For": forwarded}
            return (await c.post("/orders", data=b"{}", headers=headers)).status

        assert [await post("1.2.3.4"), await post("1.2.3.4")] == [422, 429]
        assert await post("5.6.7.8") == 422  # another client behind the same proxy
