"""The hostile fuzzer's state, its sending, and the promises checked on every answer."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from hypothesis import strategies as st
from pydantic import ValidationError

from ordersaga.saga.order_stock import merge_lines
from ordersaga.schemas.bounds import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
)
from ordersaga.schemas.http import CancelBody, PlaceOrderBody, RestockBody
from tests.integration.conftest import System
from tests.integration.fuzz_headers import (
    content_types,
    seg,
)
from tests.integration.fuzz_requests import (
    _ID,
    _SKU,
    WORKER_OFFSETS,
    encode,
    hostile_value,
    strict_json_problem,
)

# ------------------------------------------------------------------ the fuzzer's state


@dataclass(frozen=True)
class Req:
    """One request exactly as sent."""

    method: str
    target: str  # raw path and query, ASCII
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes | None = None
    chunked: bool = False  # no Content-Length: the server reads until the stream ends
    port: int | None = None  # None: the web view


@dataclass
class Fuzz:
    system: System
    client: httpx.Client
    sku: str  # stocked, so valid-ish orders are accepted
    # The only valid-pattern SKU names a restock may create: the catalogue stays small.
    restock_skus: tuple[str, ...]
    known_skus: set[str]
    order_ids: list[str]
    tally: Counter[int] = field(default_factory=Counter)
    allow_checked: set[tuple[int, str, str]] = field(default_factory=set)

    @property
    def ports(self) -> set[int]:
        web = self.system.web_port
        return {web, *(web + i for i in WORKER_OFFSETS)}


def format_tally(tally: Counter[int]) -> str:
    return " ".join(f"{status}={n}" for status, n in sorted(tally.items()))


def run_fuzz(fuzz: Fuzz, name: str, test: Callable[[], None]) -> None:
    before = Counter(fuzz.tally)
    started = time.monotonic()
    try:
        test()
    finally:  # the count is worth having when the test failed too
        mine = fuzz.tally - before
        print(
            f"hostile fuzz {name}: {sum(mine.values())} requests in "
            f"{time.monotonic() - started:.1f}s, {format_tally(mine)}"
        )


# ------------------------------------------------------------------ sending and checking


def describe(req: Req, response: httpx.Response | None, why: str, port: int) -> str:
    target = (
        req.target if len(req.target) <= 600 else f"{req.target[:600]}... ({len(req.target)} chars)"
    )
    lines = [
        why,
        f"request:  {req.method} http://127.0.0.1:{port}{target}",
        f"headers:  {list(req.headers)!r}",
    ]
    if req.body is not None:
        shown = req.body if len(req.body) <= 800 else req.body[:800] + b"..."
        lines.append(
            f"body:     ({len(req.body)} bytes{', chunked' if req.chunked else ''}) {shown!r}"
        )
    if response is not None:
        lines += [
            f"response: {response.status_code} {dict(response.headers)!r}",
            f"          {response.content[:800]!r}",
        ]
    return "\n".join(lines)


ROUTES = (
    ("orders", re.compile(r"^/orders$")),
    ("order", re.compile(r"^/orders/([^/]+)$")),
    ("events", re.compile(r"^/orders/([^/]+)/events$")),
    ("cancel", re.compile(r"^/orders/([^/]+)/cancel$")),
    ("inventory", re.compile(r"^/inventory$")),
    ("stock", re.compile(r"^/inventory/([^/]+)$")),
    ("restock", re.compile(r"^/inventory/([^/]+)/restock$")),
    ("health", re.compile(r"^/health$")),
    ("ready", re.compile(r"^/ready$")),
    ("metrics", re.compile(r"^/metrics$")),
)


def route_of(raw_path: bytes) -> tuple[str, str | None]:
    """The route a raw path reaches and its path parameter, decoded as the server does."""
    path = raw_path.split(b"?", 1)[0].decode("ascii")
    for name, pattern in ROUTES:
        m = pattern.match(path)
        if m:
            return name, unquote(m.group(1), errors="replace") if m.groups() else None
    return "unknown", None


def header(req: Req, name: bytes) -> bytes | None:
    for key, value in req.headers:
        if key.lower() == name:
            return value
    return None


def declares_utf8_json(req: Req) -> bool:
    value = header(req, b"content-type")
    if value is None:
        return False
    media, _, params = value.decode("latin-1").partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        key, _, charset = param.partition("=")
        charset = charset.strip().strip('"').lower()
        # An empty "charset=" is malformed; aiohttp reads it as no charset, and the
        # body is still decoded as strict UTF-8, so a 202 for it breaks nothing.
        if key.strip().lower() == "charset" and charset not in {"", "utf-8", "utf8"}:
            return False
    return True


def key_is_valid(req: Req) -> bool:
    key = header(req, b"idempotency-key")
    if key is None:
        return True
    return 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and all(0x21 <= b <= 0x7E for b in key)


def sku_exists(fuzz: Fuzz, sku: str) -> bool:
    if sku in fuzz.known_skus:
        return True
    r = fuzz.client.get(f"/inventory/{seg(sku)}")
    return r.status_code == 200


def first_error(exc: ValidationError) -> dict[str, Any]:
    # Without the input: it may be a 64 KiB string.
    return dict(exc.errors(include_input=False, include_url=False)[0])


def why_not_accepted(fuzz: Fuzz, req: Req, route: str, param: str | None) -> str | None:
    """Why a 2xx to this mutating request breaks a promise, or None if it may be 2xx."""
    body = req.body or b""
    if not declares_utf8_json(req):
        return "accepted a body not declared as UTF-8 JSON"
    if route in {"orders", "restock"} and not key_is_valid(req):
        return "accepted an invalid Idempotency-Key"
    if route == "cancel":
        try:
            _ID.validate_python(param)
        except ValidationError:
            return f"accepted a cancel of an invalid order id {param!r}"
        if not body.strip():
            return None
        problem = strict_json_problem(body)
        if problem:
            return f"accepted a cancel body that is {problem}"
        try:
            CancelBody.model_validate_json(body, strict=True)
        except ValidationError as exc:
            return f"accepted a cancel body CancelBody refuses: {first_error(exc)}"
        return None
    problem = strict_json_problem(body)
    if problem:
        return f"accepted a body that is {problem}"
    if route == "orders":
        try:
            order = PlaceOrderBody.model_validate_json(body, strict=True)
            lines = merge_lines(order.items)
        except ValidationError as exc:
            return f"accepted an order PlaceOrderBody refuses: {first_error(exc)}"
        unknown = [line.sku for line in lines if not sku_exists(fuzz, line.sku)]
        if unknown:
            return f"accepted an order of unknown SKUs {unknown!r}"
        return None
    if route == "restock":
        try:
            sku = _SKU.validate_python(param)
            restock = RestockBody.model_validate_json(body, strict=True)
        except ValidationError as exc:
            return f"accepted a restock the bounds refuse: {first_error(exc)}"
        if restock.unit_price is None and not sku_exists(fuzz, sku):
            return f"accepted a restock of the new SKU {sku!r} without a unit_price"
        return None
    return None


def check_error_shape(response: httpx.Response, method: str) -> str | None:
    ctype = response.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        return f"error answer with Content-Type {ctype!r}, not application/json"
    if method == "HEAD":
        return None  # no body to HEAD; the Content-Type still has to say JSON
    try:
        body = json.loads(response.content)
    except ValueError:
        return "error answer whose body is not JSON"
    if not isinstance(body, dict):
        return "error answer whose body is not a JSON object"
    if not isinstance(body.get("error"), str) or not isinstance(body.get("message"), str):
        return "error answer without string 'error' and 'message'"
    problems = body.get("problems")
    if not isinstance(problems, list):
        return "error answer without a 'problems' list"
    for p in problems:
        if not (
            isinstance(p, dict)
            and isinstance(p.get("field"), str)
            and isinstance(p.get("message"), str)
        ):
            return f"error answer with a malformed problem {p!r}"
    return None


class ServerBug(AssertionError):
    """A broken promise of the HTTP edge; each kind is its own class so that
    hypothesis reports (and shrinks) each kind separately."""


class Answered5xx(ServerBug):
    pass


class WrongErrorShape(ServerBug):
    pass


class AcceptedOutOfBounds(ServerBug):
    pass


class BrokenAllow(ServerBug):
    pass


class HungUp(ServerBug):
    pass


def send(fuzz: Fuzz, req: Req, *, verify_allow: bool = True) -> httpx.Response:
    """Send ``req`` to 127.0.0.1 only, check every promise, and count the status."""
    port = req.port or fuzz.system.web_port
    url = httpx.URL(f"http://127.0.0.1:{port}").copy_with(raw_path=req.target.encode("ascii"))
    content: bytes | Iterator[bytes] | None = req.body
    if req.body is not None and req.chunked:
        content = iter([req.body])
    request = fuzz.client.build_request(req.method, url, headers=list(req.headers), content=content)
    assert request.url.host == "127.0.0.1" and request.url.port in fuzz.ports, request.url
    try:
        response = fuzz.client.send(request)
    except httpx.LocalProtocolError:
        raise  # the client refused to send it: a mistake of this fuzzer, not the server's
    except httpx.TransportError as exc:
        raise HungUp(describe(req, None, f"the server hung up: {exc!r}", port)) from None
    fuzz.tally[response.status_code] += 1
    status = response.status_code

    def show(why: str) -> str:
        return describe(req, response, why, port)

    if status >= 500 and not (status == 503 and response.headers.get("retry-after")):
        raise Answered5xx(show(f"a {status} (only a 503 with Retry-After may be 5xx)"))
    if status >= 400:
        problem = check_error_shape(response, req.method)
        if problem:
            raise WrongErrorShape(show(problem))
    route, param = route_of(request.url.raw_path)
    if 200 <= status < 300 and req.method == "POST" and route in {"orders", "restock", "cancel"}:
        problem = why_not_accepted(fuzz, req, route, param)
        if problem:
            raise AcceptedOutOfBounds(show(problem))
        remember(fuzz, route, param, req, response)
    if status == 405:
        allow = [m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()]
        if not allow:
            raise BrokenAllow(show("a 405 without an Allow header"))
        if req.method in allow:
            raise BrokenAllow(show(f"a 405 to {req.method} whose Allow lists {req.method}"))
        if verify_allow:
            check_allowed(fuzz, req, route, port, allow)
    return response


def check_allowed(fuzz: Fuzz, req: Req, route: str, port: int, allow: list[str]) -> None:
    """Every method a 405 offers answers something other than 405 on the same path.

    The probes carry no body and no Content-Type, so a POST is refused (415) before
    it could change anything.
    """
    path = req.target.split("?", 1)[0]
    for method in allow:
        key = (port, route if route != "unknown" else path, method)
        if key in fuzz.allow_checked:
            continue
        fuzz.allow_checked.add(key)
        probe = Req(method=method, target=path, port=req.port)
        r = send(fuzz, probe, verify_allow=False)
        if r.status_code == 405:
            raise BrokenAllow(
                describe(
                    probe,
                    r,
                    f"{method} is listed in the Allow of a 405 to {req.method} "
                    f"{req.target} but answers 405 itself",
                    port,
                )
            )


def remember(fuzz: Fuzz, route: str, param: str | None, req: Req, r: httpx.Response) -> None:
    """Accepted requests feed the fuzzer: real order ids, SKUs now in the catalogue."""
    if route == "orders":
        order_id = r.json().get("order_id")
        if isinstance(order_id, str) and order_id not in fuzz.order_ids:
            fuzz.order_ids.append(order_id)
            del fuzz.order_ids[2:-30]  # keep the two fixture orders and the latest ones
    elif route == "restock" and param is not None:
        fuzz.known_skus.add(param)


def headers_of(
    ctype: bytes | None, key: bytes | None, extra: list[tuple[bytes, bytes]]
) -> tuple[tuple[bytes, bytes], ...]:
    out = list(extra)
    if ctype is not None:
        out.append((b"Content-Type", ctype))
    if key is not None:
        out.append((b"Idempotency-Key", key))
    return tuple(out)


def cancel_bodies() -> st.SearchStrategy[bytes]:
    # CancelBody has no fields: empty, blank or {} is valid, anything else is not.
    return st.one_of(
        st.sampled_from([b"", b"{}", b"  \n", b"{ }", b"[]", b"null", b'{"reason":"x"}']),
        st.builds(encode, hostile_value()),
        st.builds(lambda k, v: encode({k: v}), st.text(max_size=8), hostile_value()),
        st.binary(max_size=64),
    )


def mostly_json() -> st.SearchStrategy[bytes | None]:
    # Most requests declare JSON, so the body is what gets judged.
    return st.one_of(st.just(b"application/json"), st.just(b"application/json"), content_types())
