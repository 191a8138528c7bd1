"""Whether a worker's dependencies answer (/health) and whether it can serve (/ready).

The web view serves its API from Redis: it can serve once it has started (its
first assignment done) while its Redis answers, through every later rebalance
of its group. A saga group serves no one but its partitions: it is ready while
it holds them with restored tables.

The pages (ordersaga.shell.pages) ask these; the groups add their own checks
(the web view its Redis, payments the gateway's) to :attr:`Health.checks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust

from ordersaga.schemas.responses import CheckState

log = logging.getLogger("ordersaga.shell.node")

# A dependency check: returns nothing when the dependency answers, raises when not.
HealthCheck = Callable[[], Awaitable[None]]
HEALTH_CHECK_TIMEOUT_S = 1.0
# /health answers from a result this young, so a flood of probes is not a flood on Redis.
HEALTH_CACHE_S = 1.0


class Health:
    """One worker's dependency checks, answered from a cache a second old at most."""

    def __init__(self, app: faust.App, bootstrap_servers: str) -> None:
        self.app = app
        self.bootstrap_servers = bootstrap_servers
        self.checks: dict[str, HealthCheck] = {"broker": self._broker_reachable}
        self._last: tuple[float, dict[str, CheckState]] | None = None
        self.started = time.monotonic()
        #: checks that decide readiness instead of the consumer's state (the web view's
        #: Redis); empty: ready while it holds its partitions with restored tables
        self.serves_from: tuple[str, ...] = ()
        self._first_assignment_done = False

    async def _broker_reachable(self) -> None:
        # Any one broker of the cluster will do: clients fail over between them.
        failure: Exception | None = None
        for server in self.bootstrap_servers.split(","):
            host, _, port = server.rpartition(":")
            try:
                _, writer = await asyncio.open_connection(host or "127.0.0.1", int(port))
            except OSError as exc:
                failure = exc
                continue
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        raise failure or OSError("no broker configured")

    def forget(self) -> None:
        """Drop the cached answer: the next :meth:`states` checks again."""
        self._last = None

    async def states(self) -> dict[str, CheckState]:
        """Each dependency's state: "ok" or why not (cached for a second)."""
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < HEALTH_CACHE_S:
            return self._last[1]

        async def check(fn: HealthCheck) -> CheckState:
            try:
                await asyncio.wait_for(fn(), HEALTH_CHECK_TIMEOUT_S)
            except TimeoutError:
                return "timeout"
            except Exception as exc:  # any failure is the answer, not an error
                # The answer is fixed words: an exception's text can hold addresses,
                # hosts or paths, and the probes are open to anyone on the port.
                log.warning("health check failed: %s: %s", type(exc).__name__, exc)
                return "down"
            return "ok"

        names = list(self.checks)
        states = await asyncio.gather(*(check(self.checks[n]) for n in names))
        result = dict(zip(names, states, strict=True))
        self._last = (now, result)
        return result

    async def readiness(self) -> list[str]:
        """Why this worker cannot serve now (empty: it can)."""
        app = cast(Any, self.app)
        recovery = app.tables.recovery
        if recovery.completed.is_set() and not recovery.in_recovery:
            self._first_assignment_done = True
        if self.serves_from:
            if not self._first_assignment_done:
                return ["not started yet: its first assignment is not done"]
            states = await self.states()
            return [f"{name} {states[name]}" for name in self.serves_from if states[name] != "ok"]
        reasons: list[str] = []
        if not recovery.completed.is_set():
            reasons.append("tables not recovered yet")
        elif recovery.in_recovery:
            reasons.append("tables recovering")
        if app.rebalancing:
            reasons.append("consumer group rebalancing")
        return reasons
