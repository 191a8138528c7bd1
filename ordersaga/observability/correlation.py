"""Correlation ids at the HTTP edge: read ``X-Correlation-ID`` (or make one), answer it back.

Every request has one, returned on every response (errors too); the web view
sends it in the envelope and Kafka headers of the commands the request causes,
and every group copies it from cause to effect, so one id follows an order
through every topic. The order id travels on its own (``Envelope.order_id``).
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from aiohttp import web

from ordersaga.edge.http import Handler, error_response, invalid
from ordersaga.observability.log_format import bind, unbind

HEADER = "X-Correlation-ID"
# Accepted as well, for clients that send the more common name.
ALIASES = (HEADER, "X-Request-ID")
MAX_LENGTH = 128
# The envelope's id alphabet, so the id travels unchanged into Kafka.
PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{{0,{MAX_LENGTH - 1}}}$"
_VALID = re.compile(PATTERN)

_current: ContextVar[str | None] = ContextVar("ordersaga_correlation_id", default=None)


def new_correlation_id() -> str:
    return f"cor_{uuid.uuid4().hex[:24]}"


def current_correlation_id(default: str) -> str:
    """The correlation id of the request being answered, or ``default`` outside one."""
    return _current.get() or default


@web.middleware
async def correlation_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its correlation id and return it on the response."""
    raw = next((request.headers[h] for h in ALIASES if h in request.headers), None)
    if raw is not None and not _VALID.match(raw):
        problem = f"must be 1-{MAX_LENGTH} of A-Z a-z 0-9 _ . : @ -, a letter or digit first"
        response: web.StreamResponse = error_response(invalid(HEADER, problem))
        response.headers[HEADER] = new_correlation_id()
        return response
    correlation_id = raw or new_correlation_id()
    token = _current.set(correlation_id)
    # The request's ids on every line logged while it is answered.
    logged = bind(
        {"correlation_id": correlation_id, "http_method": request.method, "http_path": request.path}
    )
    try:
        response = await handler(request)
    finally:
        unbind(logged)
        _current.reset(token)
    response.headers[HEADER] = correlation_id
    return response
