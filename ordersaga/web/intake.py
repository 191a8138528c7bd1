"""The web view's intake in Redis: orders accepted over HTTP until their saga shows.

What the HTTP edge remembers of what it accepted, apart from the read model:
the accepted record (readable before the order's first event is projected),
clients' Idempotency-Keys, and the accepted PlaceOrders awaiting confirmation,
which the re-send loop (``ordersaga.agents.repairs``) claims. The read model's
projection confirms an order (drops it from the awaiting set) when it projects
any event of it, in the same Lua script.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from ordersaga.web.redis_keys import (
    ACCEPTED,
    IDEMPOTENCY,
    ORDER,
    UNCONFIRMED,
    UNCONFIRMED_ORDERS,
    text_of,
)

# KEYS: order hash, unconfirmed set, unconfirmed hash. ARGV: order id, record, re-send at.
# An order already projected needs no re-send; one already waiting keeps its record.
_AWAIT_CONFIRMATION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""

# KEYS: unconfirmed set, unconfirmed hash. ARGV: now, after, limit.
# Claims the due entries (so two webview workers never re-send the same order at
# once) and moves each one's next re-send to now + max(after, its age): the waits
# double while the orchestrator's group is down or far behind.
_CLAIM_UNCONFIRMED = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, order_id in ipairs(due) do
  local raw = redis.call('HGET', KEYS[2], order_id)
  if raw then
    local accepted_at = tonumber(cjson.decode(raw)['accepted_at'])
    local now = tonumber(ARGV[1])
    local wait = math.max(tonumber(ARGV[2]), now - accepted_at)
    redis.call('ZADD', KEYS[1], now + wait, order_id)
    table.insert(out, raw)
  else
    redis.call('ZREM', KEYS[1], order_id)
  end
end
return out
"""


def idempotency_key(kind: str, key: str) -> str:
    """The Redis key of a client's Idempotency-Key for ``kind`` (order, restock)."""
    return f"{IDEMPOTENCY}{kind}:{hashlib.sha256(key.encode()).hexdigest()}"


class OrderIntake:
    """Accepted orders, Idempotency-Keys and the PlaceOrders awaiting confirmation."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._await_confirmation = client.register_script(_AWAIT_CONFIRMATION)
        self._claim_unconfirmed = client.register_script(_CLAIM_UNCONFIRMED)

    async def remember_accepted(self, order_id: str, record: dict[str, Any], ttl_s: int) -> None:
        """Keep what the HTTP edge accepted, so the order is readable before its first event."""
        await self.redis.set(ACCEPTED + order_id, orjson.dumps(record), ex=ttl_s)

    async def accepted(self, order_id: str) -> dict[str, Any] | None:
        """The accepted record of an order, if still kept."""
        raw = await self.redis.get(ACCEPTED + order_id)
        return orjson.loads(raw) if raw else None

    async def accepted_ids(self) -> set[str]:
        """Ids of every order accepted over HTTP that is still remembered."""
        return {
            text_of(key).removeprefix(ACCEPTED)
            async for key in self.redis.scan_iter(match=ACCEPTED + "*", count=1000)
        }

    async def claim_key(
        self, kind: str, key: str, record: dict[str, Any], ttl_s: int
    ) -> dict[str, Any]:
        """Store ``record`` under an Idempotency-Key unless one is there; return the winner.

        The key is stored hashed, so what a client sends sizes nothing in Redis.
        """
        name = idempotency_key(kind, key)
        while True:
            if await self.redis.set(name, orjson.dumps(record), nx=True, ex=ttl_s):
                return record
            raw = await self.redis.get(name)
            if raw is not None:  # else it expired between the two calls: try again
                return dict(orjson.loads(raw))

    async def await_confirmation(
        self,
        order_id: str,
        command: dict[str, Any],
        accepted_at: float,
        redrive_at: float,
        correlation_id: str | None = None,
    ) -> bool:
        """Remember an accepted PlaceOrder until an event of its order is projected.

        False if the order is projected already. A record already kept stays as it
        was, so a retried request does not make the order look younger. A re-send
        carries the request's correlation id.
        """
        record = orjson.dumps(
            {"accepted_at": accepted_at, "command": command, "correlation_id": correlation_id}
        )
        waiting = await self._await_confirmation(
            keys=[ORDER + order_id, UNCONFIRMED, UNCONFIRMED_ORDERS],
            args=[order_id, record, redrive_at],
        )
        return bool(waiting)

    async def claim_unconfirmed(
        self, now: float, after_s: float, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Accepted orders due for a re-send (``accepted_at`` and ``command`` each)."""
        raw = await self._claim_unconfirmed(
            keys=[UNCONFIRMED, UNCONFIRMED_ORDERS], args=[now, after_s, limit]
        )
        return [orjson.loads(r) for r in raw]

    async def drop_unconfirmed(self, order_id: str) -> None:
        """Stop re-sending an order."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(UNCONFIRMED, order_id)
            pipe.hdel(UNCONFIRMED_ORDERS, order_id)
            await pipe.execute()

    async def unconfirmed_ids(self) -> set[str]:
        """Orders accepted over HTTP whose first event is not projected yet."""
        members = await self.redis.zrange(UNCONFIRMED, 0, -1)
        return {text_of(cast(bytes, m)) for m in members}
