"""What the web view checks of every request before its route: the Host it was sent to,
and whether the signed-in customer is still allowed in.

Both answer in the one JSON error shape. The probes (``/health``, ``/ready``,
``/metrics``) are exempt from the Host check: load balancers and Prometheus
reach them by whatever name their network gives the worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from ordersaga.edge.http import HttpError

# Reached by any name: the probes' callers do not know the public one.
HOST_EXEMPT = frozenset({"/health", "/live", "/ready", "/metrics"})
# How long a worker trusts what it read of a customer's blocked flag: a block takes
# effect within this, and a flood of requests costs one Redis read a second.
BLOCKED_CACHE_S = 1.0
BLOCKED_CACHE_SIZE = 10_000


def host_name(header: str) -> str:
    """The name of a Host header without its port (``[::1]:80`` -> ``::1``), lower case."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def check_host(header: str | None, allowed: frozenset[str] | None) -> None:
    """Refuse (421) a request sent to a name this web view does not answer to.

    A page on another site whose name is re-pointed at 127.0.0.1 (DNS rebinding)
    sends its own name: refused, it cannot reach an API whose auth is off.
    A request without Host (HTTP/1.0) is let through: browsers always send one.
    """
    if allowed is None or header is None:
        return
    if host_name(header) not in allowed:
        message = "this server does not answer to that name (ORDERSAGA_ALLOWED_HOSTS)"
        raise HttpError(
            421, "misdirected_request", message, problems=[{"field": "Host", "message": message}]
        )


class BlockedCustomers:
    """Whether a customer is blocked, as the customer store says, cached briefly per worker."""

    def __init__(self, read: Callable[[str], Awaitable[bool]]) -> None:
        self._read = read
        self._seen: dict[str, tuple[float, bool]] = {}

    async def blocked(self, customer_id: str) -> bool:
        now = time.monotonic()
        seen = self._seen.get(customer_id)
        if seen is not None and now - seen[0] < BLOCKED_CACHE_S:
            return seen[1]
        if len(self._seen) >= BLOCKED_CACHE_SIZE:
            self._seen.clear()  # many subjects: start over rather than grow
        answer = await self._read(customer_id)
        self._seen[customer_id] = (now, answer)
        return answer
