"""Who may call what: bearer tokens, each route's access, and per-client rate limits.

Every route the web view serves has an entry in :data:`ACCESS`; a route without
one needs an admin (fail closed), and ``tests/web/test_auth.py`` holds the table
equal to what is served. With auth off (no secret, no public key) every route is
open, for local use. Ownership (a customer reads only its own orders and account)
is decided by the views, which alone know whose a resource is
(:func:`require_owner`).

The rate limit runs here too, before the token is judged: a client sending bad
tokens is limited by its address like any anonymous client.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import TypeVar, cast

from aiohttp import web
from faust.web import Request as FaustRequest
from redis.exceptions import RedisError

from ordersaga.config.settings import Settings
from ordersaga.edge.http import Handler, HttpError, invalid, route_template
from ordersaga.edge.tokens import Principal, TokenError, TokenVerifier
from ordersaga.web.edge import HOST_EXEMPT, BlockedCustomers, check_host
from ordersaga.web.rate_limit import READ_PREFIX, RateLimiter, Verdict

REALM = "ordersaga"
# Methods that change state: rate-limited apart from reads.
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PRINCIPAL = web.RequestKey("ordersaga.principal", Principal)
_CLIENT = web.RequestKey("ordersaga.client", str)
# Set by the gatekeeper on every request it judges: whether it verified tokens.
_AUTH_ON = web.RequestKey("ordersaga.auth_on", bool)
T = TypeVar("T")
# What the views are handed: aiohttp's request under Faust's name for it.
AnyRequest = web.Request | FaustRequest


class Access(Enum):
    """What a caller needs for a route (when auth is on)."""

    PUBLIC = "public"  # no token: static assets, the API's own description, probes
    SIGNED_IN = "signed_in"  # any valid token; the view checks whose the resource is
    ADMIN = "admin"  # a token with the admin role


# (method, route template) -> access. HEAD is judged as GET.
ACCESS: Mapping[tuple[str, str], Access] = {
    ("GET", "/orders"): Access.SIGNED_IN,
    ("POST", "/orders"): Access.SIGNED_IN,
    ("GET", "/orders/{order_id}"): Access.SIGNED_IN,
    ("GET", "/orders/{order_id}/events"): Access.SIGNED_IN,
    ("POST", "/orders/{order_id}/cancel"): Access.SIGNED_IN,
    ("GET", "/inventory"): Access.SIGNED_IN,
    ("GET", "/inventory/{sku}"): Access.SIGNED_IN,
    ("POST", "/inventory/{sku}/restock"): Access.ADMIN,
    ("POST", "/customers"): Access.SIGNED_IN,
    ("GET", "/customers/{customer_id}"): Access.SIGNED_IN,
    ("POST", "/customers/{customer_id}/block"): Access.ADMIN,
    ("POST", "/customers/{customer_id}/unblock"): Access.ADMIN,
    ("GET", "/customers/{customer_id}/orders"): Access.SIGNED_IN,
    ("GET", "/services"): Access.ADMIN,
    ("GET", "/services/{group}/health"): Access.ADMIN,
    # The page and its script hold no data; what it shows comes from admin routes.
    ("GET", "/dashboard"): Access.PUBLIC,
    ("GET", "/dashboard/{name}"): Access.PUBLIC,
    ("GET", "/dashboard/stats"): Access.ADMIN,
    # Every worker's probes: open, and bindable apart from the API (docs/security.md).
    ("GET", "/health"): Access.PUBLIC,
    ("GET", "/live"): Access.PUBLIC,
    ("GET", "/metrics"): Access.PUBLIC,
    ("GET", "/ready"): Access.PUBLIC,
    # The API's own description and its page, for whoever may call it.
    ("GET", "/openapi.json"): Access.PUBLIC,
    ("GET", "/asyncapi.json"): Access.PUBLIC,
    ("GET", "/docs"): Access.PUBLIC,
    ("GET", "/docs/{asset}"): Access.PUBLIC,
}


def access_of(method: str, template: str | None) -> Access:
    """The access a request needs; anything not listed needs an admin."""
    if template is None:  # no route matched: the router answers 404 or 405
        return Access.PUBLIC
    judged = "GET" if method == "HEAD" else method
    return ACCESS.get((judged, template), Access.ADMIN)


def principal(request: AnyRequest) -> Principal | None:
    """The verified caller, or None when auth is off (or the route is public)."""
    return cast(web.Request, request).get(_PRINCIPAL)


# X-Forwarded-For entries looked at, from the right (each proxy appends one).
MAX_FORWARDED_HOPS = 8


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def peer_address(request: AnyRequest, trusted: frozenset[str] = frozenset()) -> str:
    """The client's address: the peer's, or behind trusted proxies what they forwarded.

    X-Forwarded-For is believed only from a trusted proxy, and read from the right:
    the first address no trusted proxy holds is the client's (anything to its left
    the client could have written itself).
    """
    req = cast(web.Request, request)
    remote = req.remote or "?"
    if remote not in trusted:
        return remote
    # Every X-Forwarded-For line, in order: a proxy may append a line of its own
    # rather than extend the client's, and the client writes the first one.
    forwarded = ",".join(req.headers.getall("X-Forwarded-For", ()))
    for hop in reversed(forwarded.split(",")[-MAX_FORWARDED_HOPS:]):
        address = _address(hop)
        if address is None:
            return remote  # a malformed entry: believe nothing further left
        if address not in trusted:
            return address
    return remote


def client_key(
    caller: Principal | None, request: AnyRequest, trusted: frozenset[str] = frozenset()
) -> str:
    """Who a per-client bound counts against: the token's subject, else the address."""
    if caller is not None:
        return f"sub:{caller.subject}"
    return f"ip:{peer_address(request, trusted)}"


def client_of(request: AnyRequest) -> str:
    """The client of a request the gatekeeper has judged (as it named it)."""
    known = cast(web.Request, request).get(_CLIENT)
    return known if known is not None else client_key(principal(request), request)


def forbidden(message: str, field: str = "Authorization") -> HttpError:
    """The 403 of a valid token that may not do this."""
    return HttpError(
        403,
        "forbidden",
        message,
        problems=[{"field": field, "message": message}],
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
    )


def authenticated(request: AnyRequest) -> Principal | None:
    """The caller when auth is on (never None then: a route without one fails closed).

    Auth is off only where the gatekeeper judged the request and said so; a request
    it never saw (an app without it) is treated as auth on.
    """
    if not cast(web.Request, request).get(_AUTH_ON, True):
        return None
    caller = principal(request)
    if caller is None:  # a public route, or an app without the gatekeeper
        raise unauthorized("a bearer token is required", error=None)
    return caller


def require_owner(
    request: AnyRequest, customer_id: str, what: str, *, hidden: bool = False
) -> None:
    """Refuse unless the caller may act for ``customer_id`` (an admin, or that customer).

    403, or 404 with ``hidden``: for what is found by an id, so that another
    customer cannot tell an order that exists from one that does not.
    """
    caller = authenticated(request)
    if caller is not None and not caller.may_act_for(customer_id):
        if hidden:
            raise HttpError(404, "not_found", f"no {what}")
        raise forbidden(f"{what} belongs to another customer")


def ordering_customer(request: AnyRequest, named: str | None) -> str:
    """Whose order a POST /orders places: the token's customer, or the one an admin names."""
    caller = authenticated(request)
    if caller is not None and not caller.is_admin:
        if named is not None and named != caller.subject:
            raise forbidden("a customer orders for itself only", field="customer_id")
        return caller.subject
    if named is None:
        raise invalid("customer_id", "required (unless the bearer token names the customer)")
    return named


def admission_client(request: AnyRequest, customer_id: str) -> str:
    """Whose share of the orders in flight an order counts against.

    A customer's token counts against its subject; an admin's, which may order for
    anyone, against the customer it names; without auth, the client's address.
    """
    caller = authenticated(request)
    if caller is not None and caller.is_admin:
        return f"cust:{customer_id}"
    return client_of(request)


def _description(text: str) -> str:
    # RFC 6750 3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')[:200]


def unauthorized(message: str, *, error: str | None) -> HttpError:
    """The 401 of a missing or bad token, with the challenge RFC 6750 asks for."""
    challenge = f'Bearer realm="{REALM}"'
    if error is not None:
        challenge += f', error="{error}", error_description="{_description(message)}"'
    return HttpError(
        401,
        "unauthorized",
        message,
        problems=[{"field": "Authorization", "message": message}],
        headers={"WWW-Authenticate": challenge},
    )


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, None without the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(
            "the Authorization header must be 'Bearer <token>'", error="invalid_request"
        )
    return token.strip()


def rate_limit_headers(verdict: Verdict) -> dict[str, str]:
    """The RateLimit-* headers (IETF httpapi draft) and, when refused, Retry-After."""
    headers = {
        "RateLimit-Limit": str(verdict.burst),
        "RateLimit-Remaining": str(max(0, math.floor(verdict.tokens))),
        "RateLimit-Reset": str(math.ceil(verdict.full_in_s)),
        "RateLimit-Policy": f"{verdict.burst};w={math.ceil(verdict.window_s)}",
    }
    if not verdict.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(verdict.retry_after_s)))
    return headers


class Gatekeeper:
    """The web view's middleware: the Host, the rate limits, then the token and its access."""

    # What @web.middleware marks; an instance is not marked by its method's mark.
    __middleware_version__ = 1

    def __init__(
        self,
        settings: Settings,
        limiter: Callable[[], RateLimiter],
        blocked: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.verifier = TokenVerifier(settings) if settings.auth_enabled else None
        # Looked up per request: the limiter follows the desk's Redis pool.
        self.limiter = limiter if settings.rate_limit_per_s > 0 else None
        self._pool_of = limiter
        self.read_rate, self.read_burst = (
            settings.read_rate_limit_per_s,
            settings.read_rate_limit_burst,
        )
        self._reads: RateLimiter | None = None
        self.trusted_proxies = frozenset(settings.trusted_proxy_addresses)
        self.allowed_hosts = settings.allowed_host_names
        self.blocked = BlockedCustomers(blocked) if blocked is not None else None

    def _bucket(self, method: str, access: Access) -> tuple[RateLimiter, str] | None:
        """The bucket a request draws on, and what it counts: writes and reads apart."""
        if method in MUTATING:
            return (self.limiter(), "requests") if self.limiter is not None else None
        if self.read_rate <= 0 or access is Access.PUBLIC:
            return None  # probes, the docs and the page: static, and cheap
        redis = self._pool_of().redis
        if self._reads is None or self._reads.redis is not redis:
            self._reads = RateLimiter(redis, self.read_rate, self.read_burst, prefix=READ_PREFIX)
        return self._reads, "reads (GET)"

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        template = route_template(request)
        if template not in HOST_EXEMPT:
            for host in request.headers.getall("Host", ()):
                check_host(host, self.allowed_hosts)
        access = access_of(request.method, template)
        caller, problem = self._caller(request, access)
        verdict = None
        client = client_key(caller, request, self.trusted_proxies)
        request[_CLIENT] = client
        bucket = self._bucket(request.method, access)
        if bucket is not None:
            limiter, counted = bucket
            verdict = await _guarded(limiter.take(client), "rate limiter")
            if not verdict.allowed:
                message = (
                    f"{counted}: more than {verdict.burst} at once or {verdict.rate:g} a "
                    "second from this client: retry after the Retry-After seconds"
                )
                raise HttpError(
                    429,
                    "rate_limited",
                    message,
                    problems=[{"field": "rate_limit", "message": message}],
                    headers=rate_limit_headers(verdict),
                )
        limit_headers = rate_limit_headers(verdict) if verdict is not None else {}
        if problem is None and caller is not None and not caller.is_admin and self.blocked:
            if await _guarded(self.blocked.blocked(caller.subject), "customer store"):
                problem = forbidden(f"customer {caller.subject} is blocked")
        if problem is not None:
            problem.headers.update(limit_headers)
            raise problem
        request[_AUTH_ON] = self.verifier is not None
        if caller is not None:
            request[_PRINCIPAL] = caller
        try:
            response = await handler(request)
        except HttpError as exc:  # a refused request still drew on the bucket: say so
            exc.headers.update(limit_headers)
            raise
        response.headers.update(limit_headers)
        return response

    def _caller(
        self, request: web.Request, access: Access
    ) -> tuple[Principal | None, HttpError | None]:
        """The caller's principal, or the 401/403 to answer once the limit is taken."""
        if self.verifier is None or access is Access.PUBLIC:
            return None, None
        try:
            token = bearer_token(request)
        except HttpError as exc:
            return None, exc
        if token is None:
            return None, unauthorized("a bearer token is required", error=None)
        try:
            caller = self.verifier.verify(token)
        except TokenError as exc:
            return None, unauthorized(str(exc), error="invalid_token")
        if access is Access.ADMIN and not caller.is_admin:
            return caller, forbidden("this needs the admin role")
        return caller, None


async def _guarded(call: Awaitable[T], what: str) -> T:
    """``call``'s answer, or the 503 of its Redis not answering."""
    try:
        return await call
    except RedisError as exc:
        raise HttpError(
            503,
            "dependency_down",
            f"the {what}'s store is unavailable ({type(exc).__name__})",
            headers={"Retry-After": "1"},
        ) from None
