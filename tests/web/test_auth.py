"""Tokens and roles on every route: none, a bad one, an expired one, another customer's, the
owner's and an admin's.

The routes are the webview app's own, served over aiohttp's test server with a
gatekeeper built from settings that turn auth on (HS256 with a secret), and
answer from the session's real valkey-server; nothing is mocked.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ordersaga.agents import webview
from ordersaga.config.settings import Settings
from ordersaga.edge.tokens import (
    BAD_CLAIMS,
    BAD_SIGNATURE,
    EXPIRED,
    FROM_THE_FUTURE,
    MALFORMED,
    TOO_LONG,
    TOO_LONG_LIVED,
    Role,
    mint_token,
)
from ordersaga.web.auth import ACCESS, Access, Gatekeeper
from ordersaga.web.read_model import ViewStore
from tests.harness import (
    ADDRESS,
    CUSTOMER_ID,
    JSON,
    ORDER_ID,
    Outbox,
    order_event,
    stock_changed,
    webview_routes,
)
from tests.unit.test_tokens import EC_PRIVATE, EC_PUBLIC, RSA_PRIVATE, RSA_PUBLIC

SECRET = "s" * 40
REFUSALS = {
    BAD_CLAIMS,
    BAD_SIGNATURE,
    EXPIRED,
    FROM_THE_FUTURE,
    MALFORMED,
    TOO_LONG,
    TOO_LONG_LIVED,
}
SETTINGS = Settings(auth_secret=SECRET, rate_limit_per_s=0)
OWNER = CUSTOMER_ID  # whose order ORDER_ID is (tests.harness)
OTHER = "cust-other"


def token(subject: str, *roles: Role, **claims: Any) -> str:
    return mint_token(SETTINGS, subject, list(roles or [Role.CUSTOMER]), **claims)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def forged(without: str | None = None, **claims: Any) -> str:
    """A token with ``claims`` over valid ones (and none called ``without``), rightly signed."""
    now = int(time.time())
    base = {
        "sub": OWNER,
        "roles": ["customer"],
        "iss": SETTINGS.auth_issuer,
        "aud": SETTINGS.auth_audience,
        "iat": now,
        "exp": now + 600,
    }
    full = {k: v for k, v in {**base, **claims}.items() if k != without}
    return jwt.encode(full, SECRET, algorithm="HS256")


BAD_TOKENS = {
    "garbage": "not-a-token",
    "another secret": jwt.encode(
        {"sub": OWNER, "roles": ["admin"], "iat": 1, "exp": 2**40}, "x" * 40, algorithm="HS256"
    ),
    "alg none": jwt.encode(
        {
            "sub": OWNER,
            "roles": ["admin"],
            "iss": "ordersaga",
            "aud": "ordersaga-api",
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
        },
        None,
        algorithm="none",
    ),
    "other issuer": forged(iss="someone-else"),
    "other audience": forged(aud="another-api"),
    "no exp": forged(without="exp"),
    "no sub": forged(without="sub"),
    "no roles": forged(roles=[]),
    "unknown role only": forged(roles=["root"]),
    "roles not a list": forged(roles="admin"),
    "sub not an id": forged(sub="../etc"),
    "lives too long": forged(exp=int(time.time()) + 10 * 24 * 3600),
    "issued in the future": forged(iat=int(time.time()) + 3600, exp=int(time.time()) + 4000),
    "too long": "a" * 5000,
    # PyJWT's message about a `crit` header quotes it: it must not reach the challenge.
    "crit header quoting": jwt.encode(
        {"sub": OWNER, "roles": ["admin"], "iat": 1, "exp": 2},
        SECRET,
        algorithm="HS256",
        headers={"crit": ['x", error="insufficient_scope", scope="admin']},
    ),
    "crit header with a newline": jwt.encode(
        {"sub": OWNER, "roles": ["admin"], "iat": 1, "exp": 2},
        SECRET,
        algorithm="HS256",
        headers={"crit": ["x\r\nINFO fake log line"]},
    ),
    "numeric strings for iat and exp": forged(
        iat=str(int(time.time())), exp=str(int(time.time()) + 60)
    ),
}


@pytest.fixture
async def secured(view_store: ViewStore, outbox: Outbox) -> AsyncIterator[TestClient]:
    """The webview's routes with auth on, its data arranged in Redis."""
    app = webview_routes(Gatekeeper(SETTINGS, lambda: webview.desk.rate_limiter))
    stock = stock_changed("SKU-A", version=1, available=10)
    await view_store.project_stock("SKU-A", 1, stock.model_dump(mode="json"))
    for customer_id in (OWNER, OTHER):
        await webview.desk.customers.project(customer_id, 1, account(customer_id))
    event = order_event("OrderPlaced", 1, "PENDING")
    order = event.order
    await view_store.project_order(
        ORDER_ID,
        1,
        order.model_dump(mode="json"),
        {
            "seq": 1,
            "type": event.name,
            "status": order.status,
            "detail": None,
            "at": order.placed_at.isoformat(),
            "at_epoch": order.placed_at.timestamp(),
        },
        terminal=False,
        placed_at=order.placed_at.timestamp(),
    )
    async with TestClient(TestServer(app)) as c:
        yield c


def account(customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "name": "Test Customer",
        "email": f"{customer_id}@example.com",
        "blocked": False,
        "version": 1,
        "registered_at": "2026-12-01T00:00:00+00:00",
    }


def order_body(customer_id: str | None = OWNER) -> dict[str, Any]:
    body: dict[str, Any] = {
        "items": [{"sku": "SKU-A", "quantity": 1}],
        "payment_token": "tok_ok",
        "shipping_address": ADDRESS.model_dump(),
    }
    if customer_id is not None:
        body["customer_id"] = customer_id
    return body


# (method, path, body, who may)
OWNED, ANY_CUSTOMER, ADMIN_ONLY, PUBLIC = "owned", "any customer", "admin only", "public"
# Owned and found by id: another customer is told it does not exist (404), so it
# cannot tell another's order from none.
BY_ID = "owned, by id"
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/orders", None, ANY_CUSTOMER),
    ("GET", f"/orders?customer_id={OWNER}", None, OWNED),
    ("POST", "/orders", order_body(), OWNED),
    ("GET", f"/orders/{ORDER_ID}", None, BY_ID),
    ("HEAD", f"/orders/{ORDER_ID}", None, BY_ID),
    ("GET", f"/orders/{ORDER_ID}/events", None, BY_ID),
    ("POST", f"/orders/{ORDER_ID}/cancel", {}, BY_ID),
    ("GET", "/inventory", None, ANY_CUSTOMER),
    ("GET", "/inventory/SKU-A", None, ANY_CUSTOMER),
    ("POST", "/inventory/SKU-A/restock", {"quantity": 1}, ADMIN_ONLY),
    ("POST", "/customers", account(OWNER) | {"blocked": None}, OWNED),
    ("GET", f"/customers/{OWNER}", None, OWNED),
    ("GET", f"/customers/{OWNER}/orders", None, OWNED),
    ("POST", f"/customers/{OWNER}/block", None, ADMIN_ONLY),
    ("POST", f"/customers/{OWNER}/unblock", None, ADMIN_ONLY),
    ("GET", "/services", None, ADMIN_ONLY),
    ("HEAD", "/services", None, ADMIN_ONLY),
    ("GET", "/services/orders/health", None, ADMIN_ONLY),
    ("GET", "/dashboard/stats", None, ADMIN_ONLY),
    ("GET", "/dashboard", None, PUBLIC),
    ("GET", "/dashboard/app.js", None, PUBLIC),
    ("GET", "/health", None, PUBLIC),
    ("GET", "/live", None, PUBLIC),
    ("GET", "/metrics", None, PUBLIC),
    ("GET", "/ready", None, PUBLIC),
    ("GET", "/openapi.json", None, PUBLIC),
    ("GET", "/asyncapi.json", None, PUBLIC),
    ("GET", "/docs", None, PUBLIC),
    ("GET", "/docs/swagger-ui.css", None, PUBLIC),
]


def _body(body: dict[str, Any] | None) -> bytes:
    if body is None:
        return b""
    if "blocked" in body:  # a registration carries the account's details only
        body = {k: body[k] for k in ("customer_id", "name", "email")}
    return orjson.dumps(body)


async def call(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> tuple[int, dict[str, Any] | None, Any]:
    resp = await client.request(method, path, data=_body(body), headers={**JSON, **headers})
    payload = None
    if resp.content_type == "application/json":
        payload = await resp.json()
    return resp.status, payload, resp.headers


# A route that answers 503 here for want of a broker or workers, not of a token.
NEEDS_THE_SYSTEM = {"/health", "/ready", "/services/orders/health"}
# RFC 6750 3: Bearer realm="...", then name="value" pairs of its character set.
CHALLENGE = re.compile(r'^Bearer realm="ordersaga"(, [a-z_]+="[\x20\x21\x23-\x5b\x5d-\x7e]*")*$')


def assert_served(status: int, payload: Any, path: str) -> None:
    if path.split("?")[0] in NEEDS_THE_SYSTEM:
        assert status in (200, 503), payload
    else:
        assert status < 400, payload


def assert_refused(
    status: int, payload: Any, headers: Any, expected: int, method: str = "GET"
) -> None:
    assert status == expected, payload
    if method == "HEAD":  # no body; the challenge is there all the same
        assert status != 401 or CHALLENGE.match(headers["WWW-Authenticate"])
        return
    assert payload is not None and set(payload) >= {"error", "message", "problems"}
    if expected == 404:
        assert payload["error"] == "not_found" and "WWW-Authenticate" not in headers
        return
    assert payload["problems"][0]["field"] in {"Authorization", "customer_id"}
    assert CHALLENGE.match(headers["WWW-Authenticate"]), headers["WWW-Authenticate"]


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
async def test_no_token_is_401_unless_the_route_is_public(secured, method, path, body, kind):
    status, payload, headers = await call(secured, method, path, body, {})
    if kind == PUBLIC:
        assert_served(status, payload, path)
    else:
        assert_refused(status, payload, headers, 401, method)
        assert "error=" not in headers["WWW-Authenticate"]  # RFC 6750 3.1: no token, no error


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
@pytest.mark.parametrize("bad", sorted(BAD_TOKENS))
async def test_a_bad_token_is_401_with_invalid_token(secured, method, path, body, kind, bad):
    status, payload, headers = await call(secured, method, path, body, bearer(BAD_TOKENS[bad]))
    if kind == PUBLIC:
        assert_served(status, payload, path)
        return
    assert_refused(status, payload, headers, 401, method)
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    if method != "HEAD":
        assert payload["message"] in REFUSALS  # never the token's own text


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
async def test_an_expired_token_is_401(secured, method, path, body, kind):
    expired = token(OWNER, Role.ADMIN, ttl_s=600, now=time.time() - 3600)
    status, payload, headers = await call(secured, method, path, body, bearer(expired))
    if kind == PUBLIC:
        assert_served(status, payload, path)
        return
    assert_refused(status, payload, headers, 401, method)
    if method != "HEAD":
        assert payload["message"] == "the token has expired"


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
async def test_another_customers_token_is_refused_what_is_not_its_own(
    secured, method, path, body, kind
):
    status, payload, headers = await call(secured, method, path, body, bearer(token(OTHER)))
    if kind in (PUBLIC, ANY_CUSTOMER):
        assert_served(status, payload, path)
    elif kind == BY_ID:
        assert_refused(status, payload, headers, 404, method)
    else:
        assert_refused(status, payload, headers, 403, method)


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
async def test_the_owners_token_may_do_what_is_its_own_and_no_admin_work(
    secured, method, path, body, kind
):
    status, payload, headers = await call(secured, method, path, body, bearer(token(OWNER)))
    if kind == ADMIN_ONLY:
        assert_refused(status, payload, headers, 403, method)
        if method != "HEAD":
            assert payload["message"] == "this needs the admin role"
    else:
        assert_served(status, payload, path)


@pytest.mark.parametrize(("method", "path", "body", "kind"), ENDPOINTS)
async def test_an_admins_token_may_do_everything(secured, method, path, body, kind):
    status, payload, _ = await call(secured, method, path, body, bearer(token("ops", Role.ADMIN)))
    assert_served(status, payload, path)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_a_public_key_verifies_tokens_through_the_gatekeeper(view_store, algorithm):
    private, public = (RSA_PRIVATE, RSA_PUBLIC) if algorithm == "RS256" else (EC_PRIVATE, EC_PUBLIC)
    settings = Settings(auth_public_key=public, auth_algorithm=algorithm, rate_limit_per_s=0)
    app = webview_routes(Gatekeeper(settings, lambda: webview.desk.rate_limiter))
    admin = mint_token(settings, "ops", [Role.ADMIN], private_key=private)
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/services", headers=bearer(admin))).status == 200
        assert (await c.get("/services", headers=bearer(token("ops", Role.ADMIN)))).status == 401


async def test_a_customer_lists_only_its_own_orders(secured):
    status, mine, _ = await call(secured, "GET", "/orders", None, bearer(token(OWNER)))
    assert status == 200 and [o["order_id"] for o in mine["orders"]] == [ORDER_ID]
    status, theirs, _ = await call(secured, "GET", "/orders", None, bearer(token(OTHER)))
    assert status == 200 and theirs["orders"] == []
    status, everyone, _ = await call(
        secured, "GET", "/orders", None, bearer(token("ops", Role.ADMIN))
    )
    assert status == 200 and [o["order_id"] for o in everyone["orders"]] == [ORDER_ID]


async def test_an_order_is_placed_for_the_tokens_customer(secured, outbox):
    status, placed, _ = await call(
        secured, "POST", "/orders", order_body(customer_id=None), bearer(token(OWNER))
    )
    assert status == 202 and placed["customer_id"] == OWNER
    sent = [s.message for s in outbox.sent]
    assert [m.customer_id for m in sent] == [OWNER]  # type: ignore[attr-defined]


async def test_a_body_naming_another_customer_is_403_naming_the_field(secured, outbox):
    status, payload, _ = await call(
        secured, "POST", "/orders", order_body(customer_id=OTHER), bearer(token(OWNER))
    )
    assert status == 403 and payload["problems"][0]["field"] == "customer_id"
    assert outbox.sent == []


async def test_an_admin_must_name_the_customer(secured, outbox):
    admin = bearer(token("ops", Role.ADMIN))
    status, payload, _ = await call(secured, "POST", "/orders", order_body(None), admin)
    assert status == 422 and payload["problems"][0]["field"] == "customer_id"
    status, placed, _ = await call(secured, "POST", "/orders", order_body(OTHER), admin)
    assert status == 202 and placed["customer_id"] == OTHER


async def test_one_customers_idempotency_key_never_finds_anothers_order(secured):
    key = {"Idempotency-Key": "same-key"}
    _, mine, _ = await call(
        secured, "POST", "/orders", order_body(None), bearer(token(OWNER)) | key
    )
    _, theirs, _ = await call(
        secured, "POST", "/orders", order_body(None), bearer(token(OTHER)) | key
    )
    assert mine["order_id"] != theirs["order_id"]
    assert (mine["customer_id"], theirs["customer_id"]) == (OWNER, OTHER)


async def test_a_non_bearer_authorization_is_401_invalid_request(secured):
    status, payload, headers = await call(
        secured, "GET", "/inventory", None, {"Authorization": "Basic b3BzOm9wcw=="}
    )
    assert_refused(status, payload, headers, 401)
    assert 'error="invalid_request"' in headers["WWW-Authenticate"]


def served_routes() -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in webview.app.web.web_app.router.routes()
        if route.method != "HEAD"
    }


def test_every_served_route_has_its_access_and_every_entry_is_served():
    assert served_routes() == set(ACCESS)


def test_every_route_of_the_table_is_in_the_matrix():
    tested = {(m, p.split("?")[0]) for m, p, _, _ in ENDPOINTS}
    covered = {
        (method, template)
        for method, template in ACCESS
        if any(m == method and _matches(template, path) for m, path in tested)
    }
    assert covered == set(ACCESS)


def test_only_pages_without_data_and_the_probes_are_public():
    public = {k for k, v in ACCESS.items() if v is Access.PUBLIC}
    assert public == {
        ("GET", "/dashboard"),
        ("GET", "/dashboard/{name}"),
        ("GET", "/health"),
        ("GET", "/live"),
        ("GET", "/metrics"),
        ("GET", "/ready"),
        ("GET", "/openapi.json"),
        ("GET", "/asyncapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/{asset}"),
    }


def _matches(template: str, path: str) -> bool:
    # A literal segment matches itself only; {name} matches what no literal route claims.
    t, p = template.strip("/").split("/"), path.strip("/").split("/")
    if len(t) != len(p):
        return False
    return all(a == b or (a.startswith("{") and b != "stats") for a, b in zip(t, p, strict=True))
