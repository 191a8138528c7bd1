"""Customer accounts and each customer's orders, as the web view keeps them in Redis.

Written by the webview's projections only: ``customers.events`` here, and each
customer's orders by the order projection (``ViewStore.project_order`` files an
order under its customer in the same script). Each write is one Lua script that
applies only what is newer, so duplicates and replays are harmless.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from ordersaga.web.read_model import KEEP_NEWER_VERSION
from ordersaga.web.redis_keys import PREFIX

CUSTOMER = PREFIX + "customer:"  # CustomerChanged JSON
CUSTOMERS = PREFIX + "customers"  # set of customer ids


class CustomerStore:
    """Accounts by id and each customer's orders, newest first."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._project = client.register_script(KEEP_NEWER_VERSION)

    async def project(self, customer_id: str, version: int, account: dict[str, Any]) -> bool:
        """Keep an account unless a newer version is stored; True if applied."""
        applied = await self._project(
            keys=[CUSTOMER + customer_id, CUSTOMERS],
            args=[version, orjson.dumps(account), customer_id],
        )
        return bool(applied)

    async def account(self, customer_id: str) -> dict[str, Any] | None:
        """The projected account, if any."""
        raw = await self.redis.get(CUSTOMER + customer_id)
        return orjson.loads(raw) if raw is not None else None

    async def count(self) -> int:
        """How many accounts are projected."""
        return int(await self.redis.scard(CUSTOMERS))
