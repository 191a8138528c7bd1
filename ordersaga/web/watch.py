"""Long-polls that share one watcher per worker instead of a Redis connection each.

``GET /orders/{id}?wait=`` holds a request until the order is terminal. Each
held request used to poll Redis on its own every 100 ms, so ~120 of them took
every connection of the pool and the rest failed. Now one task per worker reads
the statuses of every watched order in one round trip per tick and wakes their
waiters; a projection in the same process wakes them at once. The number of
held requests is bounded: past it the caller answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Statuses = Callable[[list[str]], Awaitable[dict[str, str | None]]]


class WatchFull(Exception):
    """As many long-polls as allowed are already held here."""


class ClientWatchFull(WatchFull):
    """As many long-polls as one client may hold here are already held for it."""


class OrderWatch:
    """Wakes long-polling requests when their order reaches a terminal status."""

    def __init__(
        self,
        statuses: Statuses | None = None,
        terminal: frozenset[str] = frozenset(),
        limit: int = 1_000,
        interval_s: float = 0.1,
        per_client: int | None = None,
    ) -> None:
        self._statuses = statuses
        self._terminal = terminal
        self.limit = limit
        # So that one client cannot hold every slot and make the others' reads 503.
        self.per_client = per_client
        self._clients: dict[str, int] = {}
        self._interval_s = interval_s
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}
        self.held = 0
        self._poller: asyncio.Task[None] | None = None

    def changed(self, order_id: str) -> None:
        """Wake whoever waits on ``order_id`` here, to read the order again."""
        # A fresh event for the next wait: a set one would wake it at once, forever.
        event = self._events.pop(order_id, None)
        if event is not None:
            event.set()

    async def wait(self, order_id: str, timeout: float, client: str = "") -> None:
        """Wait until ``order_id`` changes here or is seen terminal, or ``timeout`` passes.

        Raises WatchFull when ``limit`` requests are already waiting, ClientWatchFull
        when ``per_client`` of them are ``client``'s.
        """
        if self.held >= self.limit:
            raise WatchFull
        held_by_client = self._clients.get(client, 0)
        if self.per_client is not None and held_by_client >= self.per_client:
            raise ClientWatchFull
        self.held += 1
        self._clients[client] = held_by_client + 1
        event = self._events.setdefault(order_id, asyncio.Event())
        self._waiters[order_id] = self._waiters.get(order_id, 0) + 1
        self._ensure_poller()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self.held -= 1
            if self._clients[client] > 1:
                self._clients[client] -= 1
            else:
                del self._clients[client]
            left = self._waiters[order_id] - 1
            if left:
                self._waiters[order_id] = left
            else:
                # Forget the order once nobody waits, or ids would pile up here.
                del self._waiters[order_id]
                if self._events.get(order_id) is event:
                    del self._events[order_id]

    def _ensure_poller(self) -> None:
        if self._statuses is None:
            return
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        # One reader for every waiter: another worker may project the change.
        assert self._statuses is not None
        while self._waiters:
            await asyncio.sleep(self._interval_s)
            ids = list(self._waiters)
            if not ids:
                break
            try:
                statuses = await self._statuses(ids)
            except Exception as exc:  # Redis away: the waiters time out and answer
                log.warning("long-poll watcher could not read statuses: %s", exc)
                continue
            for order_id, status in statuses.items():
                if status in self._terminal:
                    self.changed(order_id)

    async def close(self) -> None:
        """Stop the watcher task."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
