"""What a client sends besides the body's fields, read within its bounds.

The body is read no further than its limit; path parameters, the ``wait``
query parameter and the ``Idempotency-Key`` header are checked against
``ordersaga.schemas.bounds``, and each refusal names the parameter at fault.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, cast

from aiohttp import web
from faust.web import Request
from pydantic import StringConstraints, TypeAdapter, ValidationError

from ordersaga.edge.http import HttpError, invalid, require_json
from ordersaga.edge.operations import param
from ordersaga.schemas.bounds import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH, Id, Sku

MAX_WAIT_S = 60.0
# 0 to 60 seconds with at most three decimals, as one pattern: the document gives it
# as the parameter's schema, since a JSON number cannot say "three decimals" exactly.
WAIT_PATTERN = r"^(60(\.0{1,3})?|[0-5]?[0-9](\.[0-9]{1,3})?)$"
_WAIT = re.compile(WAIT_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_ID = TypeAdapter(Id)
WAIT = param(
    "wait",
    "query",
    Annotated[str, StringConstraints(pattern=WAIT_PATTERN)],
    f"long-poll up to this many seconds (0-{MAX_WAIT_S:.0f}, at most 3 decimals) "
    "until the order is terminal",
    examples=["30", "0.5"],
)
_SKU = TypeAdapter(Sku)
# How long a body may take to arrive once its request has: a client that promises
# more than it sends holds a request (and its slot) no longer than this.
BODY_TIMEOUT_S = 10.0


def too_large(max_bytes: int) -> HttpError:
    """The 413 of a body over the limit."""
    return HttpError(413, "body_too_large", f"body is over {max_bytes} bytes")


async def read_body(request: Request, max_bytes: int, timeout_s: float | None = None) -> bytes:
    """The whole body, read no further than one byte past the limit.

    A read returns what is buffered, not the whole body: one read took the first
    chunk of a chunked body (the rest unseen) or half of a body sent in two TCP
    writes. So the body is read until its end, whatever its framing, and refused
    once past the limit. A client that promises more than it sends is cut off
    after ``timeout_s`` (408), so it cannot hold a request open for ever.
    """
    raw = cast(web.Request, request)  # Faust's aiohttp driver hands views aiohttp requests
    timeout_s = BODY_TIMEOUT_S if timeout_s is None else timeout_s
    length = raw.content_length
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await raw.content.read(max_bytes + 1 - size):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                chunks.append(chunk)
    except TimeoutError:
        raise HttpError(
            408,
            "body_timeout",
            f"the body did not arrive within {timeout_s:g} s",
            headers={"Connection": "close"},
        ) from None
    return b"".join(chunks)


async def json_body(request: Request, max_bytes: int) -> bytes:
    """The body of a request declared JSON (415 otherwise), read within the limit."""
    require_json(cast(web.Request, request))
    return await read_body(request, max_bytes)


def path_id(value: str, field: str) -> str:
    """An id from the path, or the 422 naming ``field``."""
    try:
        return _ID.validate_python(value)
    except ValidationError:
        raise invalid(field, "not a valid id (1-64 of A-Z a-z 0-9 _ . : @ -)") from None


def path_sku(value: str, field: str = "sku") -> str:
    """A SKU from the path (or the query's ``field``), or the 422 naming it."""
    try:
        return _SKU.validate_python(value)
    except ValidationError:
        raise invalid(
            field, "not a valid SKU (1-64 of A-Z a-z 0-9 _ . -, a letter or digit first)"
        ) from None


def wait_seconds(request: Request) -> float:
    """How long ``?wait=`` asks a read to long-poll (0 without it)."""
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    if not _WAIT.fullmatch(raw):
        raise invalid("wait", f"must be a number of seconds from 0 to {MAX_WAIT_S:.0f}")
    return float(raw)


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key, if it sends one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise invalid(
            "Idempotency-Key",
            f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters",
        )
    return key
