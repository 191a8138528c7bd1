"""Each client's share of the orders in flight, across every web view worker.

The global in-flight limit (``web.admission``) keeps the system's latency; this
keeps one client from filling it. Each client (the token's subject; the customer
an admin orders for; without auth, the address) has a sorted set in Redis of its
orders not yet ended. Admitting an order first drops from it the orders whose
views are terminal, so it needs no hook on the projection and stays right
whichever worker projected the end. One script, one round trip, at most
``share`` reads: the set never holds more than that.
"""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from ordersaga.schemas.status import TERMINAL
from ordersaga.web.redis_keys import ORDER, PREFIX

CLIENT_IN_FLIGHT = PREFIX + "in-flight-of:"  # sorted set per client: order id -> accepted at
# An order that never ended (its view lost, its PlaceOrder refused) stops counting
# after this long, so a client cannot be locked out by what it cannot see.
MAX_COUNTED_AGE_S = 600.0
_TERMINAL = "," + ",".join(sorted(TERMINAL)) + ","

# KEYS: the client's set. ARGV: order id, now, share, max age, order key prefix,
# terminal statuses (",A,B,"). Returns -1 when admitted, else the client's count.
_ADMIT = """
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local status = redis.call('HGET', ARGV[5] .. id, 'status')
  if status and string.find(ARGV[6], ',' .. status .. ',', 1, true) then
    redis.call('ZREM', KEYS[1], id)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) and redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  return count
end
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[7])
return -1
"""


class ClientShare:
    """Admits an order against its client's share of the in-flight limit."""

    def __init__(self, redis: aioredis.Redis, share: int, limit: int | None = None) -> None:
        self.redis = redis
        self.share = share
        # A share as large as the whole limit bounds nothing the limit does not.
        self.enabled = limit is None or share < limit
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, client: str, order_id: str, now: float) -> int | None:
        """Count ``order_id`` against ``client``; None if admitted, else what it holds."""
        if not self.enabled:
            return None
        answer = await self._admit(
            keys=[CLIENT_IN_FLIGHT + client],
            args=[
                order_id,
                now,
                self.share,
                MAX_COUNTED_AGE_S,
                ORDER,
                _TERMINAL,
                math.ceil(MAX_COUNTED_AGE_S),
            ],
        )
        return None if int(answer) < 0 else int(answer)

    async def release(self, client: str, order_id: str) -> None:
        """Stop counting an order that was not placed after all (its key was a retry's)."""
        if self.enabled:
            await self.redis.zrem(CLIENT_IN_FLIGHT + client, order_id)
